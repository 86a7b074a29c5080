/* Config messages applied off the control loop (data_plane/cluster/apply_queue.h). */
#include "data_plane/cluster/apply_queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/log.h"

/* Deltas waiting behind a long apply: past this many the control plane is far ahead, and the
 * whole config costs less than replaying them one by one. */
#define MAX_WAITING_JOBS 256

struct dp_apply_queue {
    uv_loop_t *loop;
    dp_apply_queue_ops ops; /* never changes: the work thread reads ops.work */
    size_t max_bytes;
    dp_apply_job *head, *tail; /* waiting */
    size_t waiting, waiting_bytes;
    dp_apply_job *running;
    int stopped;
};

static void queue_free(dp_apply_queue *q)
{
    if (q->ops.free_work_arg)
        q->ops.free_work_arg(q->ops.work_arg);
    free(q);
}

static void job_free(dp_apply_job *j)
{
    if (!j)
        return;
    json_decref(j->errors);
    free(j->bytes);
    free(j);
}

static void drop_waiting(dp_apply_queue *q)
{
    while (q->head) {
        dp_apply_job *j = q->head;
        q->head = j->next;
        job_free(j);
    }
    q->tail = NULL;
    q->waiting = q->waiting_bytes = 0;
}

static void run_work(uv_work_t *req)
{
    dp_apply_queue *q = req->data;
    dp_apply_job *j = q->running;
    j->rc = -1;
    j->err[0] = '\0';
    j->errors = NULL;
    q->ops.work(q->ops.work_arg, j);
}

static void start_next(dp_apply_queue *q);

static void after_work(uv_work_t *req, int status)
{
    dp_apply_queue *q = req->data;
    dp_apply_job *j = q->running;
    q->running = NULL;
    if (q->stopped) {
        job_free(j);
        queue_free(q);
        return;
    }
    if (status != 0) { /* cancelled: cannot happen once started, but say so if it does */
        j->rc = -1;
        snprintf(j->err, sizeof(j->err), "apply did not run: %s", uv_strerror(status));
    }
    q->ops.done(q->ops.arg, j);
    job_free(j);
    start_next(q);
}

static void start_next(dp_apply_queue *q)
{
    while (!q->running && q->head) {
        dp_apply_job *j = q->head;
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
        q->waiting--;
        q->waiting_bytes -= j->len;
        j->next = NULL;
        if (!q->ops.prepare(q->ops.arg, j)) {
            job_free(j);
            continue;
        }
        q->running = j;
        j->req.data = q;
        int rc = uv_queue_work(q->loop, &j->req, run_work, after_work);
        if (rc) { /* no work thread: apply here rather than not at all */
            sl_warn("cluster: applying on the control loop: %s", uv_strerror(rc));
            run_work(&j->req);
            after_work(&j->req, 0);
            return;
        }
    }
}

dp_apply_queue *dp_apply_queue_new(uv_loop_t *loop, const dp_apply_queue_ops *ops,
                                   size_t max_waiting_bytes)
{
    dp_apply_queue *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->loop = loop;
    q->ops = *ops;
    q->max_bytes = max_waiting_bytes;
    return q;
}

int dp_apply_queue_push(dp_apply_queue *q, dp_apply_kind kind, const unsigned char *bytes,
                        size_t len)
{
    if (kind == DP_APPLY_SNAPSHOT) /* the whole config: what waits before it is moot */
        drop_waiting(q);
    if (q->head && (q->waiting >= MAX_WAITING_JOBS || q->waiting_bytes + len > q->max_bytes)) {
        sl_warn("cluster: %zu config messages (%zu bytes) wait to be applied; dropping one of %zu "
                "bytes (the control plane will send the whole config)",
                q->waiting, q->waiting_bytes, len);
        return -1;
    }
    dp_apply_job *j = calloc(1, sizeof(*j));
    unsigned char *copy = j ? malloc(len ? len : 1) : NULL;
    if (!copy) {
        free(j);
        sl_error("cluster: out of memory queueing a config message of %zu bytes", len);
        return -1;
    }
    memcpy(copy, bytes, len);
    j->kind = kind;
    j->bytes = copy;
    j->len = len;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->waiting++;
    q->waiting_bytes += len;
    start_next(q);
    return 0;
}

int64_t dp_apply_queue_running_version(const dp_apply_queue *q)
{
    return q && q->running ? q->running->version : -1;
}

void dp_apply_queue_stop(dp_apply_queue *q)
{
    if (!q)
        return;
    drop_waiting(q);
    if (q->running)
        q->stopped = 1; /* after_work frees it */
    else
        queue_free(q);
}
