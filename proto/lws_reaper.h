#ifndef SL_LWS_REAPER_H
#define SL_LWS_REAPER_H

/* Ending a libwebsockets context that runs on a foreign libuv loop (the cluster listener of the
 * control plane and the cluster client of the data plane).
 *
 * lws 4.1 stops after the first lws_context_destroy: it closes every connection and starts
 * closing its libuv handles, then waits to be called again, once those close callbacks have
 * run, to free the context, which writes NULL through info.pcontext. Only then may the state
 * its callbacks use go. The reaper polls every 10 ms: when lws's handles are gone it calls
 * destroy again; when the context is freed and the owner has nothing else pending it calls
 * done(arg) to free the owner's state. If that never happens within 3 s it keeps the memory
 * rather than risk a callback into freed state, and lets the loop end. */

#include <libwebsockets.h>
#include <uv.h>

typedef struct {
    uv_timer_t timer;
    struct lws_context **ctx; /* the owner's info.pcontext */
    int ticks;
    int (*pending)(void *arg); /* NULL, or 1 while the owner still waits on something else */
    void (*done)(void *arg);   /* frees the owner (which may hold this reaper) */
    void *arg;
    const char *what; /* names the owner in the warning when it gives up */
} sl_lws_reaper;

/* Starts reaping on loop. The owner has called lws_context_destroy(*ctx) once already. */
void sl_lws_reaper_start(sl_lws_reaper *r, uv_loop_t *loop, struct lws_context **ctx,
                         int (*pending)(void *arg), void (*done)(void *arg), void *arg,
                         const char *what);

#endif
