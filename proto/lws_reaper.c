/* Ending a libwebsockets context on a foreign libuv loop (proto/lws_reaper.h). */
#include "proto/lws_reaper.h"

#include <stdint.h>

#include "proto/log.h"

#define TICK_MS 10
#define GIVE_UP_TICKS 300 /* 3 s */

static void timer_closed(uv_handle_t *h)
{
    sl_lws_reaper *r = h->data;
    r->done(r->arg); /* last: it may free r */
}

/* Counts the loop's handles that belong to lws's context (its timers and other static handles
 * carry the context in data). */
static void count_lws_handle(uv_handle_t *h, void *arg)
{
    void **a = arg;
    if (h->data == a[0])
        a[1] = (void *)((uintptr_t)a[1] + 1);
}

static int still_busy(const sl_lws_reaper *r)
{
    return *r->ctx || (r->pending && r->pending(r->arg));
}

static void tick(uv_timer_t *t)
{
    sl_lws_reaper *r = t->data;
    if (*r->ctx) {
        void *a[2] = {*r->ctx, NULL};
        uv_walk(t->loop, count_lws_handle, a);
        if (a[1] == NULL && r->ticks >= 1)
            lws_context_destroy(*r->ctx);
    }
    if (still_busy(r) && ++r->ticks < GIVE_UP_TICKS)
        return;
    uv_timer_stop(t);
    if (still_busy(r)) {
        sl_warn("%s did not finish closing; leaving its state allocated", r->what);
        uv_close((uv_handle_t *)t, NULL);
        return;
    }
    uv_close((uv_handle_t *)t, timer_closed);
}

void sl_lws_reaper_start(sl_lws_reaper *r, uv_loop_t *loop, struct lws_context **ctx,
                         int (*pending)(void *arg), void (*done)(void *arg), void *arg,
                         const char *what)
{
    r->ctx = ctx;
    r->ticks = 0;
    r->pending = pending;
    r->done = done;
    r->arg = arg;
    r->what = what;
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, tick, 0, TICK_MS);
}
