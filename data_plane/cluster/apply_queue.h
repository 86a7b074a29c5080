#ifndef DP_APPLY_QUEUE_H
#define DP_APPLY_QUEUE_H

/* Config messages from the control plane, applied one at a time, in the order they came, on a
 * libuv work thread. Decoding and building a large config takes a second or more; on the
 * control loop that would leave /status, /status/ready (Kubernetes probes), signals and the
 * cluster heartbeats unanswered for as long. Results are reported back on the loop.
 *
 * A whole snapshot makes everything queued before it pointless, so it replaces what waits
 * (not what runs). What waits is bounded; a message past the bound is dropped with a warning:
 * the next delta then fails its base check and the control plane sends the whole config. */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef enum { DP_APPLY_SNAPSHOT, DP_APPLY_DELTA } dp_apply_kind;

typedef struct dp_apply_job {
    struct dp_apply_job *next;
    dp_apply_kind kind;
    unsigned char *bytes;
    size_t len;
    /* set by prepare, for done's messages */
    int64_t version, base_version;
    char hash[65];
    /* set by the work */
    int rc;
    char err[1024];
    json_t *errors;
    uv_work_t req;
} dp_apply_job;

typedef struct {
    /* On the loop before the work; returns 1 to apply the job, 0 when it needs no work (it
     * was answered here, e.g. the same config at the same version). */
    int (*prepare)(void *arg, dp_apply_job *j);
    /* On a work thread: fills j->rc (0 applied, -1 refused), j->err and j->errors. Gets
     * work_arg, never arg: the loop side may go away while a job runs. */
    void (*work)(void *work_arg, dp_apply_job *j);
    /* On the loop after the work (not once the queue is stopped). */
    void (*done)(void *arg, dp_apply_job *j);
    void *arg, *work_arg;
    /* Called on work_arg when the queue is freed (NULL: nothing to do). */
    void (*free_work_arg)(void *work_arg);
} dp_apply_queue_ops;

typedef struct dp_apply_queue dp_apply_queue;

/* NULL when out of memory. max_waiting_bytes bounds the bytes of queued, not yet running
 * messages (one whole snapshot always fits). */
dp_apply_queue *dp_apply_queue_new(uv_loop_t *loop, const dp_apply_queue_ops *ops,
                                   size_t max_waiting_bytes);

/* Queues a copy of bytes and starts it when nothing runs. 0, or -1 when dropped (out of
 * memory or over the bound; logged). */
int dp_apply_queue_push(dp_apply_queue *q, dp_apply_kind kind, const unsigned char *bytes,
                        size_t len);

/* The version being applied now, or -1 when nothing runs. */
int64_t dp_apply_queue_running_version(const dp_apply_queue *q);

/* Drops what waits; the queue frees itself once a running job returns (done is not called).
 * NULL is ignored. */
void dp_apply_queue_stop(dp_apply_queue *q);

#endif
