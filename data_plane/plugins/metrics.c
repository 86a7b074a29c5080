/* Per-thread metric shards, summed at scrape time. A slot's key is written once by its owning
 * thread and published with a release store of `ready`; readers acquire it, so they never see
 * a half-written key. Values are relaxed atomics written by one thread only (load + store, no
 * locked instruction on the request path). Label strings are interned once per process (a
 * mutex taken only when a shard meets a new series), so slots hold stable pointers. */
#include "proto/sort.h"
#include "data_plane/plugins/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double dp_metrics_buckets[DP_METRICS_NBUCKETS] = {
    1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 2000, 5000, 10000, 30000, 60000};

/* values[]: counters use [0]; histograms use [0..NBUCKETS) per bucket (not cumulative),
 * [NBUCKETS] the +Inf overflow, [NBUCKETS+1] the count, [NBUCKETS+2] the sum in microseconds */
#define NVALUES (DP_METRICS_NBUCKETS + 3)

typedef struct {
    _Atomic int ready;
    int family, code;
    uint32_t hash;
    const char *service, *route, *consumer, *source; /* interned */
    _Atomic uint64_t v[NVALUES];
} slot;

typedef struct shard {
    struct shard *next;
    _Atomic uint64_t refused;
    slot slots[DP_METRICS_SLOTS];
} shard;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(shard *) shards;
static _Thread_local shard *mine;

/* --- interned label strings (never freed; bounded) --- */

#define INTERN_MAX_BYTES (4u * 1024 * 1024)
#define INTERN_BUCKETS 4096

typedef struct istr {
    struct istr *next;
    char s[];
} istr;

static istr *interned[INTERN_BUCKETS];
static size_t interned_bytes;

static uint32_t fnv(uint32_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static size_t label_len(const char *s)
{
    return strnlen(s, DP_METRICS_LABEL_MAX);
}

/* Returns the process-wide copy of s[0..n), NULL when over the bound. Caller holds lock. */
static const char *intern_locked(const char *s)
{
    size_t n = label_len(s);
    uint32_t h = fnv(2166136261u, s, n) & (INTERN_BUCKETS - 1);
    for (istr *i = interned[h]; i; i = i->next)
        if (strncmp(i->s, s, n) == 0 && i->s[n] == 0)
            return i->s;
    if (interned_bytes + n + 1 > INTERN_MAX_BYTES)
        return NULL;
    istr *i = malloc(sizeof(*i) + n + 1);
    if (!i)
        return NULL;
    memcpy(i->s, s, n);
    i->s[n] = 0;
    i->next = interned[h];
    interned[h] = i;
    interned_bytes += n + 1;
    return i->s;
}

static shard *my_shard(void)
{
    if (mine)
        return mine;
    shard *s = calloc(1, sizeof(*s)); /* large: the kernel commits only pages we touch */
    if (!s)
        return NULL;
    pthread_mutex_lock(&lock);
    s->next = atomic_load(&shards);
    atomic_store_explicit(&shards, s, memory_order_release);
    pthread_mutex_unlock(&lock);
    mine = s;
    return s;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

static int label_eq(const char *interned_s, const char *s)
{
    size_t n = label_len(s);
    return strncmp(interned_s, s, n) == 0 && interned_s[n] == 0;
}

static uint32_t key_hash(int f, const dp_metric_labels *l)
{
    uint32_t h = 2166136261u;
    h = fnv(h, (const char *)&f, sizeof(f));
    h = fnv(h, (const char *)&l->code, sizeof(l->code));
    const char *parts[4] = {nz(l->service), nz(l->route), nz(l->consumer), nz(l->source)};
    for (int i = 0; i < 4; i++)
        h = fnv(h, parts[i], label_len(parts[i]) + 1);
    return h;
}

/* The calling thread's slot for (f, labels), inserted when new; NULL when the table is full. */
static slot *find_slot(int f, const dp_metric_labels *l)
{
    shard *s = my_shard();
    if (!s)
        return NULL;
    uint32_t h = key_hash(f, l);
    for (unsigned probe = 0; probe < DP_METRICS_SLOTS; probe++) {
        slot *x = &s->slots[(h + probe) & (DP_METRICS_SLOTS - 1)];
        /* only this thread writes `ready`, so a relaxed load is exact here */
        if (!atomic_load_explicit(&x->ready, memory_order_relaxed)) {
            if (probe > DP_METRICS_SLOTS / 2)
                break; /* keep probes short: a nearly full table refuses instead */
            pthread_mutex_lock(&lock);
            const char *sv = intern_locked(nz(l->service)), *rt = intern_locked(nz(l->route));
            const char *cs = intern_locked(nz(l->consumer)), *so = intern_locked(nz(l->source));
            pthread_mutex_unlock(&lock);
            if (!sv || !rt || !cs || !so)
                break;
            x->family = f;
            x->code = l->code;
            x->hash = h;
            x->service = sv;
            x->route = rt;
            x->consumer = cs;
            x->source = so;
            atomic_store_explicit(&x->ready, 1, memory_order_release);
            return x;
        }
        if (x->hash == h && x->family == f && x->code == l->code &&
            label_eq(x->service, nz(l->service)) && label_eq(x->route, nz(l->route)) &&
            label_eq(x->consumer, nz(l->consumer)) && label_eq(x->source, nz(l->source)))
            return x;
    }
    atomic_store_explicit(&s->refused, atomic_load_explicit(&s->refused, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    return NULL;
}

static void bump(_Atomic uint64_t *v, uint64_t n)
{
    /* single writer: a plain read-modify-write of a relaxed atomic is enough */
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

void dp_metrics_add(dp_metric_family f, const dp_metric_labels *l, uint64_t n)
{
    slot *x = find_slot(f, l);
    if (x)
        bump(&x->v[0], n);
}

void dp_metrics_observe(dp_metric_family f, const dp_metric_labels *l, double ms)
{
    slot *x = find_slot(f, l);
    if (!x)
        return;
    if (ms < 0)
        ms = 0;
    int b = 0;
    while (b < DP_METRICS_NBUCKETS && ms > dp_metrics_buckets[b])
        b++;
    bump(&x->v[b], 1);
    bump(&x->v[DP_METRICS_NBUCKETS + 1], 1);
    bump(&x->v[DP_METRICS_NBUCKETS + 2], (uint64_t)(ms * 1000.0));
}

uint64_t dp_metrics_refused(void)
{
    uint64_t n = 0;
    for (shard *s = atomic_load_explicit(&shards, memory_order_acquire); s; s = s->next)
        n += atomic_load_explicit(&s->refused, memory_order_relaxed);
    return n;
}

void dp_metrics_reset(void)
{
    for (shard *s = atomic_load_explicit(&shards, memory_order_acquire); s; s = s->next) {
        atomic_store(&s->refused, 0);
        for (size_t i = 0; i < DP_METRICS_SLOTS; i++)
            for (int k = 0; k < NVALUES; k++)
                atomic_store(&s->slots[i].v[k], 0);
    }
}

/* --- text --- */

void dp_metrics_printf(dp_metrics_buf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 8192;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

void dp_metrics_escape(dp_metrics_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            dp_metrics_printf(b, "\\\\");
        else if (*s == '"')
            dp_metrics_printf(b, "\\\"");
        else if (*s == '\n')
            dp_metrics_printf(b, "\\n");
        else
            dp_metrics_printf(b, "%c", *s);
    }
}

/* One aggregated series: the first shard's slot gives the key, values are summed. */
typedef struct {
    const slot *key;
    uint64_t v[NVALUES];
} agg;

static int same_key(const slot *a, const slot *b)
{
    /* interned strings: equal text means the same pointer */
    return a->family == b->family && a->code == b->code && a->service == b->service &&
           a->route == b->route && a->consumer == b->consumer && a->source == b->source;
}

static int agg_order(const void *pa, const void *pb)
{
    const slot *a = ((const agg *)pa)->key, *b = ((const agg *)pb)->key;
    int c;
    if (a->family != b->family)
        return a->family - b->family;
    if ((c = strcmp(a->service, b->service)) || (c = strcmp(a->route, b->route)))
        return c;
    if (a->code != b->code)
        return a->code - b->code;
    if ((c = strcmp(a->source, b->source)))
        return c;
    return strcmp(a->consumer, b->consumer);
}

static const struct {
    const char *name, *help;
    int histogram;
} families[DP_METRIC__COUNT] = {
    [DP_METRIC_HTTP_REQUESTS] = {"sluice_http_requests_total",
                                 "HTTP requests by service, route, status code, source and "
                                 "consumer",
                                 0},
    [DP_METRIC_BANDWIDTH] = {"sluice_bandwidth_bytes",
                             "Bytes of request (ingress) and response (egress) bodies", 0},
    [DP_METRIC_REQUEST_LATENCY] = {"sluice_request_latency_ms",
                                   "Total request latency: first byte in to last byte out", 1},
    [DP_METRIC_UPSTREAM_LATENCY] = {"sluice_upstream_latency_ms",
                                    "Time from sending the request upstream to its response head",
                                    1},
    [DP_METRIC_GATEWAY_LATENCY] = {"sluice_gateway_latency_ms",
                                   "Time spent in the gateway: request latency minus upstream "
                                   "latency",
                                   1},
    [DP_METRIC_LOG_DROPPED] = {"sluice_log_entries_dropped_total",
                               "Log entries dropped because a log queue was full", 0},
    [DP_METRIC_LOG_FAILED] = {"sluice_log_entries_failed_total",
                              "Log entries given up after the retries ran out", 0},
};

static void render_labels(dp_metrics_buf *b, const slot *k)
{
    dp_metrics_printf(b, "{");
    switch (k->family) {
    case DP_METRIC_HTTP_REQUESTS:
        dp_metrics_printf(b, "service=\"");
        dp_metrics_escape(b, k->service);
        dp_metrics_printf(b, "\",route=\"");
        dp_metrics_escape(b, k->route);
        dp_metrics_printf(b, "\",code=\"%d\",source=\"", k->code);
        dp_metrics_escape(b, k->source);
        dp_metrics_printf(b, "\",consumer=\"");
        dp_metrics_escape(b, k->consumer);
        dp_metrics_printf(b, "\"");
        break;
    case DP_METRIC_BANDWIDTH:
        dp_metrics_printf(b, "service=\"");
        dp_metrics_escape(b, k->service);
        dp_metrics_printf(b, "\",route=\"");
        dp_metrics_escape(b, k->route);
        dp_metrics_printf(b, "\",direction=\"");
        dp_metrics_escape(b, k->source);
        dp_metrics_printf(b, "\",consumer=\"");
        dp_metrics_escape(b, k->consumer);
        dp_metrics_printf(b, "\"");
        break;
    case DP_METRIC_LOG_DROPPED:
    case DP_METRIC_LOG_FAILED:
        dp_metrics_printf(b, "plugin=\"");
        dp_metrics_escape(b, k->service);
        dp_metrics_printf(b, "\"");
        break;
    default: /* latency histograms */
        dp_metrics_printf(b, "service=\"");
        dp_metrics_escape(b, k->service);
        dp_metrics_printf(b, "\",route=\"");
        dp_metrics_escape(b, k->route);
        dp_metrics_printf(b, "\"");
    }
}

static void render_one(dp_metrics_buf *b, const agg *a)
{
    const char *name = families[a->key->family].name;
    if (!families[a->key->family].histogram) {
        dp_metrics_printf(b, "%s", name);
        render_labels(b, a->key);
        dp_metrics_printf(b, "} %llu\n", (unsigned long long)a->v[0]);
        return;
    }
    uint64_t cum = 0;
    for (int i = 0; i <= DP_METRICS_NBUCKETS; i++) {
        cum += a->v[i];
        dp_metrics_printf(b, "%s_bucket", name);
        render_labels(b, a->key);
        if (i < DP_METRICS_NBUCKETS)
            dp_metrics_printf(b, ",le=\"%07.1f\"} %llu\n", dp_metrics_buckets[i],
                              (unsigned long long)cum);
        else
            dp_metrics_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    dp_metrics_printf(b, "%s_count", name);
    render_labels(b, a->key);
    dp_metrics_printf(b, "} %llu\n", (unsigned long long)a->v[DP_METRICS_NBUCKETS + 1]);
    dp_metrics_printf(b, "%s_sum", name);
    render_labels(b, a->key);
    dp_metrics_printf(b, "} %.3f\n", (double)a->v[DP_METRICS_NBUCKETS + 2] / 1000.0);
}

void dp_metrics_render(dp_metrics_buf *b)
{
    size_t n = 0, cap = 0;
    agg *all = NULL;
    /* a small chained index over the aggregate, so summing N shards stays linear */
    size_t nidx = DP_METRICS_SLOTS * 2;
    int32_t *head = malloc(nidx * sizeof(*head));
    int32_t *next = NULL;
    if (!head) {
        b->oom = 1;
        return;
    }
    for (size_t i = 0; i < nidx; i++)
        head[i] = -1;
    for (shard *s = atomic_load_explicit(&shards, memory_order_acquire); s; s = s->next) {
        for (size_t i = 0; i < DP_METRICS_SLOTS; i++) {
            const slot *x = &s->slots[i];
            if (!atomic_load_explicit(&x->ready, memory_order_acquire))
                continue;
            size_t h = x->hash % nidx;
            int32_t j = head[h];
            while (j >= 0 && !same_key(all[j].key, x))
                j = next[j];
            if (j < 0) {
                if (n == cap) {
                    size_t nc = cap ? cap * 2 : 256;
                    agg *na = realloc(all, nc * sizeof(*na));
                    int32_t *nn = na ? realloc(next, nc * sizeof(*nn)) : NULL;
                    if (na)
                        all = na;
                    if (!nn) {
                        b->oom = 1;
                        goto out;
                    }
                    next = nn;
                    cap = nc;
                }
                j = (int32_t)n++;
                memset(&all[j], 0, sizeof(all[j]));
                all[j].key = x;
                next[j] = head[h];
                head[h] = j;
            }
            for (int k = 0; k < NVALUES; k++)
                all[j].v[k] += atomic_load_explicit(&x->v[k], memory_order_relaxed);
        }
    }
    sl_sort(all, n, sizeof(*all), agg_order);
    for (size_t i = 0; i < n; i++) {
        int f = all[i].key->family;
        if (i == 0 || all[i - 1].key->family != f)
            dp_metrics_printf(b, "# HELP %s %s\n# TYPE %s %s\n", families[f].name, families[f].help,
                              families[f].name, families[f].histogram ? "histogram" : "counter");
        render_one(b, &all[i]);
    }
out:
    free(head);
    free(next);
    free(all);
}
