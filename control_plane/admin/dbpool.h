#ifndef CP_ADMIN_DBPOOL_H
#define CP_ADMIN_DBPOOL_H

/* The Admin API's DB threads: a bounded queue of requests served by a fixed set of pthreads,
 * each with its own store connection, each running cp_admin_dispatch. Finished jobs go back to
 * the loop through a uv_async_t. A request stuck in PostgreSQL pins only its own thread. */

#include <stdint.h>
#include <uv.h>

#include "control_plane/admin/admin.h"

typedef struct cp_admin_job {
    struct cp_admin_job *next;
    cp_admin_request req; /* owned: path, query, content_type, body (free with the job) */
    void *owner;          /* the connection (loop side; the pool never touches it) */
    int head;             /* HEAD: headers only */
    int keepalive;        /* Connection: keep-alive on the response */
    uint64_t received_ns; /* uv_hrtime() when the request was complete */
    char *out;            /* the serialized response, set by the DB thread (owned) */
    size_t outlen;
    int cancelled; /* set when the pool stopped before the job ran */
} cp_admin_job;

typedef struct cp_dbpool cp_dbpool;

/* Called on the loop thread for every submitted job, once: with out set, or with cancelled
 * set (from cp_dbpool_stop). The callee owns the job (free with cp_admin_job_free). */
typedef void (*cp_dbpool_done_cb)(cp_admin_job *job, void *arg);

/* Starts nthreads threads with a queue of at most max_queue waiting jobs. settings and ctx must
 * outlive the pool. NULL with err on failure. */
cp_dbpool *cp_dbpool_start(uv_loop_t *loop, const sl_settings *s, const cp_admin_ctx *ctx,
                           int nthreads, int max_queue, cp_dbpool_done_cb cb, void *arg, char *err,
                           size_t errlen);

/* Queues a job (the pool owns it until the callback). -1 when the queue is full: the caller
 * keeps the job and answers 503. Loop thread only. */
int cp_dbpool_submit(cp_dbpool *p, cp_admin_job *job);

/* Stops the threads (waiting for the requests they are running), hands every job not yet
 * delivered to the callback (cancelled or finished), and closes the async handle; the pool's
 * memory is freed by its close callback, so the loop must run afterwards. Loop thread only. */
void cp_dbpool_stop(cp_dbpool *p);

/* Frees a job and everything it owns. */
void cp_admin_job_free(cp_admin_job *job);

#endif
