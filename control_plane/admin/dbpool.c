/* DB threads for the Admin API: see dbpool.h. */

#include "control_plane/admin/dbpool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_plane/admin/http_out.h"
#include "proto/log.h"

struct cp_dbpool {
    uv_async_t async; /* wakes the loop when jobs are done */
    const sl_settings *settings;
    const cp_admin_ctx *ctx;
    cp_dbpool_done_cb cb;
    void *cb_arg;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    cp_admin_job *queue_head, *queue_tail; /* waiting jobs, FIFO */
    int queued, max_queue;
    cp_admin_job *done_head, *done_tail; /* finished jobs for the loop, FIFO */
    int stopping;
    int db_down_logged; /* one error line per outage, not one per request */

    pthread_t *threads;
    int nthreads;
};

void cp_admin_job_free(cp_admin_job *job)
{
    if (!job)
        return;
    free(job->req.path);
    free(job->req.query);
    free(job->req.content_type);
    free(job->req.body);
    free(job->out);
    free(job);
}

static void push(cp_admin_job **head, cp_admin_job **tail, cp_admin_job *job)
{
    job->next = NULL;
    if (*tail)
        (*tail)->next = job;
    else
        *head = job;
    *tail = job;
}

static void run_job(cp_dbpool *p, cp_store **st, cp_admin_job *job)
{
    if (!*st) {
        char err[512];
        *st = cp_store_connect(p->settings, err, sizeof(err));
        pthread_mutex_lock(&p->lock);
        int log = !*st && !p->db_down_logged;
        p->db_down_logged = !*st;
        pthread_mutex_unlock(&p->lock);
        if (log)
            sl_error("admin: database unreachable: %s", err);
    }
    cp_admin_response resp;
    memset(&resp, 0, sizeof(resp));
    cp_admin_dispatch(p->ctx, *st, &job->req, &resp);
    /* A 5xx may mean the connection broke: check it now (cp_store_ping reconnects once), and
     * drop it if it stays down so the next request on this thread connects afresh. */
    if (*st && resp.status >= 500 && !cp_store_ping(*st)) {
        cp_store_close(*st);
        *st = NULL;
    }
    uint64_t ms = (uv_hrtime() - job->received_ns) / 1000000u;
    job->out = cp_http_response(&resp, job->head, job->keepalive, (unsigned long)ms, &job->outlen);
    json_decref(resp.body);
}

static void *thread_main(void *arg)
{
    cp_dbpool *p = arg;
    cp_store *st = NULL;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->stopping && !p->queue_head)
            pthread_cond_wait(&p->cond, &p->lock);
        if (p->stopping) {
            pthread_mutex_unlock(&p->lock);
            break;
        }
        cp_admin_job *job = p->queue_head;
        p->queue_head = job->next;
        if (!p->queue_head)
            p->queue_tail = NULL;
        p->queued--;
        pthread_mutex_unlock(&p->lock);

        run_job(p, &st, job);

        pthread_mutex_lock(&p->lock);
        push(&p->done_head, &p->done_tail, job);
        pthread_mutex_unlock(&p->lock);
        uv_async_send(&p->async);
    }
    if (st)
        cp_store_close(st);
    return NULL;
}

/* Loop thread: delivers finished jobs. */
static void on_async(uv_async_t *h)
{
    cp_dbpool *p = h->data;
    pthread_mutex_lock(&p->lock);
    cp_admin_job *job = p->done_head;
    p->done_head = p->done_tail = NULL;
    pthread_mutex_unlock(&p->lock);
    while (job) {
        cp_admin_job *next = job->next;
        p->cb(job, p->cb_arg);
        job = next;
    }
}

cp_dbpool *cp_dbpool_start(uv_loop_t *loop, const sl_settings *s, const cp_admin_ctx *ctx,
                           int nthreads, int max_queue, cp_dbpool_done_cb cb, void *arg, char *err,
                           size_t errlen)
{
    cp_dbpool *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->settings = s;
    p->ctx = ctx;
    p->cb = cb;
    p->cb_arg = arg;
    p->max_queue = max_queue;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->threads = calloc((size_t)nthreads, sizeof(pthread_t));
    if (!p->threads || uv_async_init(loop, &p->async, on_async)) {
        snprintf(err, errlen, "admin: cannot create the DB thread pool");
        free(p->threads);
        free(p);
        return NULL;
    }
    p->async.data = p;
    for (int i = 0; i < nthreads; i++) {
        int rc = pthread_create(&p->threads[i], NULL, thread_main, p);
        if (rc) {
            snprintf(err, errlen, "admin: cannot start DB thread %d: %s", i, strerror(rc));
            cp_dbpool_stop(p);
            return NULL;
        }
        p->nthreads++;
    }
    return p;
}

int cp_dbpool_submit(cp_dbpool *p, cp_admin_job *job)
{
    pthread_mutex_lock(&p->lock);
    if (p->stopping || p->queued >= p->max_queue) {
        pthread_mutex_unlock(&p->lock);
        return -1;
    }
    push(&p->queue_head, &p->queue_tail, job);
    p->queued++;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

static void on_pool_closed(uv_handle_t *h)
{
    cp_dbpool *p = h->data;
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->threads);
    free(p);
}

void cp_dbpool_stop(cp_dbpool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);

    /* No thread runs now: hand back what is left, finished jobs first. */
    on_async(&p->async);
    cp_admin_job *job = p->queue_head;
    p->queue_head = p->queue_tail = NULL;
    p->queued = 0;
    while (job) {
        cp_admin_job *next = job->next;
        job->cancelled = 1;
        p->cb(job, p->cb_arg);
        job = next;
    }
    uv_close((uv_handle_t *)&p->async, on_pool_closed);
}
