/* The log thread and its ring. Producers (workers) claim a ring cell with one CAS (Vyukov's
 * bounded MPMC queue), so pushing never waits on another thread; the consumer is the log
 * thread alone. A sink is freed by the log thread once its last reference is gone, which also
 * means no entry for it is left in the ring. */
#include "data_plane/plugins/log_queue.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "data_plane/plugins/metrics.h"
#include "proto/log.h"

enum { SINK_FILE, SINK_CUSTOM };

struct dp_log_sink {
    struct dp_log_sink *next; /* registry list (reg_lock) */
    struct dp_log_sink *dead_next;
    int kind;
    char *key;
    const char *plugin;
    _Atomic int refs;
    _Atomic long queued; /* pushed and not yet done */
    long max_queued;
    _Atomic long queued_bytes;
    long max_bytes; /* <= 0: no bound */
    _Atomic uint64_t dropped, failed;
    /* files (log thread only) */
    char *path;
    int reopen, fd, warned;
    /* custom */
    const dp_log_sink_ops *ops;
    void *ud;
};

typedef struct {
    _Atomic size_t seq;
    dp_log_sink *sink;
    char *line;
    size_t len;
} cell;

static cell ring[DP_LOG_RING];
static _Atomic size_t enq_pos;
static size_t deq_pos; /* log thread only */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int started;
static sem_t wake;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static dp_log_sink *registry;
static dp_log_sink *dead; /* reg_lock */
static _Atomic long outstanding;

static void *log_thread(void *arg);

static void start_once(void)
{
    for (size_t i = 0; i < DP_LOG_RING; i++)
        atomic_store_explicit(&ring[i].seq, i, memory_order_relaxed);
    if (sem_init(&wake, 0, 0) != 0)
        return;
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &a, log_thread, NULL) == 0)
        started = 1;
    pthread_attr_destroy(&a);
}

static int ring_push(dp_log_sink *s, char *line, size_t len)
{
    size_t pos = atomic_load_explicit(&enq_pos, memory_order_relaxed);
    for (;;) {
        cell *c = &ring[pos & (DP_LOG_RING - 1)];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)pos;
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&enq_pos, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                c->sink = s;
                c->line = line;
                c->len = len;
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                return 0;
            }
        } else if (dif < 0) {
            return -1; /* full */
        } else {
            pos = atomic_load_explicit(&enq_pos, memory_order_relaxed);
        }
    }
}

static int ring_pop(dp_log_sink **s, char **line, size_t *len)
{
    cell *c = &ring[deq_pos & (DP_LOG_RING - 1)];
    size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
    if ((intptr_t)seq - (intptr_t)(deq_pos + 1) < 0)
        return -1; /* empty (or a producer is mid-write: picked up on its post) */
    *s = c->sink;
    *line = c->line;
    *len = c->len;
    atomic_store_explicit(&c->seq, deq_pos + DP_LOG_RING, memory_order_release);
    deq_pos++;
    return 0;
}

static void count(dp_metric_family f, const dp_log_sink *s, uint64_t n)
{
    dp_metric_labels l = {.service = s->plugin};
    dp_metrics_add(f, &l, n);
}

/* --- references --- */

static dp_log_sink *sink_ref_if_live(dp_log_sink *s)
{
    int r = atomic_load(&s->refs);
    while (r > 0)
        if (atomic_compare_exchange_weak(&s->refs, &r, r + 1))
            return s;
    return NULL;
}

static void sink_unref_n(dp_log_sink *s, int n)
{
    if (atomic_fetch_sub(&s->refs, n) != n)
        return;
    pthread_mutex_lock(&reg_lock);
    s->dead_next = dead;
    dead = s;
    pthread_mutex_unlock(&reg_lock);
    sem_post(&wake);
}

void dp_log_sink_release(dp_log_sink *s)
{
    if (s)
        sink_unref_n(s, 1);
}

static dp_log_sink *find_locked(int kind, const char *key, const dp_log_sink_ops *ops)
{
    for (dp_log_sink *s = registry; s; s = s->next)
        if (s->kind == kind && s->ops == ops && strcmp(s->key, key) == 0 && sink_ref_if_live(s))
            return s;
    return NULL;
}

static dp_log_sink *sink_new(int kind, const char *key, long max_queued, const char *plugin)
{
    dp_log_sink *s = calloc(1, sizeof(*s));
    if (!s || !(s->key = strdup(key))) {
        free(s);
        return NULL;
    }
    s->kind = kind;
    s->plugin = plugin;
    s->max_queued = max_queued;
    s->fd = -1;
    atomic_store(&s->refs, 1);
    return s;
}

dp_log_sink *dp_log_sink_file(const char *path, int reopen)
{
    pthread_once(&once, start_once);
    if (!started)
        return NULL;
    size_t kl = strlen(path) + 4;
    char *key = malloc(kl);
    if (!key)
        return NULL;
    snprintf(key, kl, "%d:%s", reopen ? 1 : 0, path);
    pthread_mutex_lock(&reg_lock);
    dp_log_sink *s = find_locked(SINK_FILE, key, NULL);
    if (!s && (s = sink_new(SINK_FILE, key, DP_LOG_FILE_MAX, "file-log")) != NULL) {
        s->path = strdup(path);
        s->reopen = reopen;
        if (!s->path) {
            free(s->key);
            free(s);
            s = NULL;
        } else {
            s->next = registry;
            registry = s;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    free(key);
    return s;
}

dp_log_sink *dp_log_sink_custom(const char *key, const dp_log_sink_ops *ops, long max_queued,
                                long max_bytes, const char *plugin,
                                void *(*make)(void *arg, dp_log_sink *s), void *arg)
{
    pthread_once(&once, start_once);
    if (!started)
        return NULL;
    pthread_mutex_lock(&reg_lock);
    dp_log_sink *s = find_locked(SINK_CUSTOM, key, ops);
    if (!s && (s = sink_new(SINK_CUSTOM, key, max_queued, plugin)) != NULL) {
        s->ops = ops;
        s->max_bytes = max_bytes;
        s->ud = make(arg, s);
        if (!s->ud) {
            free(s->key);
            free(s);
            s = NULL;
        } else {
            s->next = registry;
            registry = s;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    return s;
}

/* --- producers --- */

int dp_log_push(dp_log_sink *s, char *line, size_t len)
{
    if (!s || !line || len > DP_LOG_MAX_LINE)
        goto drop;
    if (atomic_fetch_add_explicit(&s->queued, 1, memory_order_relaxed) >= s->max_queued) {
        atomic_fetch_sub_explicit(&s->queued, 1, memory_order_relaxed);
        goto drop;
    }
    if (atomic_fetch_add_explicit(&s->queued_bytes, (long)len, memory_order_relaxed) + (long)len >
            s->max_bytes &&
        s->max_bytes > 0) {
        atomic_fetch_sub_explicit(&s->queued_bytes, (long)len, memory_order_relaxed);
        atomic_fetch_sub_explicit(&s->queued, 1, memory_order_relaxed);
        goto drop;
    }
    atomic_fetch_add(&s->refs, 1); /* the entry's reference: we hold one, so refs > 0 */
    atomic_fetch_add(&outstanding, 1);
    if (ring_push(s, line, len) != 0) {
        atomic_fetch_sub(&outstanding, 1);
        atomic_fetch_sub_explicit(&s->queued, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&s->queued_bytes, (long)len, memory_order_relaxed);
        atomic_fetch_sub(&s->refs, 1); /* not the last: the caller's reference remains */
        goto drop;
    }
    sem_post(&wake);
    return 0;
drop:
    free(line);
    if (s) {
        atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
        count(DP_METRIC_LOG_DROPPED, s, 1);
    }
    return -1;
}

void dp_log_done(dp_log_sink *s, size_t n, size_t bytes, int failed)
{
    if (failed) {
        atomic_fetch_add(&s->failed, n);
        count(DP_METRIC_LOG_FAILED, s, n);
    }
    atomic_fetch_sub(&s->queued, (long)n);
    atomic_fetch_sub(&s->queued_bytes, (long)bytes);
    atomic_fetch_sub(&outstanding, (long)n);
    sink_unref_n(s, (int)n); /* the entries' references: s may be gone after this */
}

uint64_t dp_log_sink_dropped(const dp_log_sink *s)
{
    return atomic_load(&s->dropped);
}

uint64_t dp_log_sink_failed(const dp_log_sink *s)
{
    return atomic_load(&s->failed);
}

int dp_log_flush(long timeout_ms)
{
    for (long waited = 0; atomic_load(&outstanding) > 0; waited += 5) {
        if (waited >= timeout_ms)
            return -1;
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* --- the log thread --- */

#define BATCH 512 /* lines per writev */

typedef struct {
    dp_log_sink *sink;
    struct iovec iov[2 * BATCH];
    char *lines[BATCH];
    size_t n;
} file_batch;

static int write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n > IOV_MAX ? IOV_MAX : n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0 && w > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

static void file_flush(file_batch *b)
{
    dp_log_sink *s = b->sink;
    if (!s || !b->n)
        return;
    int failed = 0;
    if (s->fd < 0) {
        s->fd = open(s->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (s->fd < 0) {
            if (!s->warned)
                sl_warn("file-log: cannot open %s: %s", s->path, strerror(errno));
            s->warned = 1;
            failed = 1;
        }
    }
    if (!failed && write_all(s->fd, b->iov, (int)(2 * b->n)) != 0) {
        if (!s->warned)
            sl_warn("file-log: cannot write %s: %s", s->path, strerror(errno));
        s->warned = 1;
        failed = 1;
        close(s->fd);
        s->fd = -1;
    } else if (!failed) {
        s->warned = 0;
    }
    if (s->reopen && s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    size_t n = b->n, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += b->iov[2 * i].iov_len;
        free(b->lines[i]);
    }
    b->n = 0;
    b->sink = NULL;
    dp_log_done(s, n, bytes, failed);
}

static void file_add(file_batch *b, dp_log_sink *s, char *line, size_t len)
{
    if (b->sink != s || b->n == BATCH)
        file_flush(b);
    b->sink = s;
    b->lines[b->n] = line;
    b->iov[2 * b->n] = (struct iovec){line, len};
    b->iov[2 * b->n + 1] = (struct iovec){"\n", 1};
    b->n++;
}

static void reap_dead(void)
{
    pthread_mutex_lock(&reg_lock);
    dp_log_sink *d = dead;
    dead = NULL;
    for (dp_log_sink *s = d; s; s = s->dead_next)
        for (dp_log_sink **pp = &registry; *pp; pp = &(*pp)->next)
            if (*pp == s) {
                *pp = s->next;
                break;
            }
    pthread_mutex_unlock(&reg_lock);
    while (d) {
        dp_log_sink *s = d;
        d = d->dead_next;
        if (s->fd >= 0)
            close(s->fd);
        if (s->kind == SINK_CUSTOM)
            s->ops->destroy(s->ud);
        free(s->path);
        free(s->key);
        free(s);
    }
}

static void *log_thread(void *arg)
{
    static file_batch fb; /* large: kept off the thread's stack */
    for (;;) {
        while (sem_wait(&wake) != 0 && errno == EINTR)
            ;
        dp_log_sink *s;
        char *line;
        size_t len;
        while (ring_pop(&s, &line, &len) == 0) {
            if (s->kind == SINK_FILE) {
                file_add(&fb, s, line, len);
            } else {
                s->ops->deliver(s->ud, line, len); /* its reference goes with dp_log_done */
            }
        }
        file_flush(&fb);
        reap_dead();
    }
    return NULL;
}
