#ifndef DP_METRICS_H
#define DP_METRICS_H

/* Shared counters and histograms of the data plane, exported by GET /metrics (prometheus.c).
 * Each thread that records gets its own shard (lazily, on first use): a fixed open-addressing
 * table whose only writer is that thread, so recording is a lookup and a relaxed load+store,
 * no lock and no shared cache line. A scrape (any thread) walks every shard and adds them up.
 * Label values are bounded by the caller (route, service and consumer names from the config,
 * status codes); past the table size new series are refused and counted, never grown. */

#include <stddef.h>
#include <stdint.h>

/* The metric families; each has a fixed label set (see dp_metrics_render). */
typedef enum {
    DP_METRIC_HTTP_REQUESTS,    /* counter {service,route,code,source,consumer} */
    DP_METRIC_BANDWIDTH,        /* counter {service,route,direction,consumer} */
    DP_METRIC_REQUEST_LATENCY,  /* histogram ms {service,route} */
    DP_METRIC_UPSTREAM_LATENCY, /* histogram ms {service,route} */
    DP_METRIC_GATEWAY_LATENCY,  /* histogram ms {service,route} */
    DP_METRIC_LOG_DROPPED,      /* counter {plugin}: log entries dropped (queue full) */
    DP_METRIC_LOG_FAILED,       /* counter {plugin}: entries given up after retries */
    DP_METRIC__COUNT,
} dp_metric_family;

/* Kong's prometheus plugin buckets (milliseconds). */
#define DP_METRICS_NBUCKETS 20
extern const double dp_metrics_buckets[DP_METRICS_NBUCKETS];

/* Series per shard; a power of two. */
#define DP_METRICS_SLOTS 4096
/* Longest label value kept; longer values are cut (names are bounded by the schema anyway). */
#define DP_METRICS_LABEL_MAX 256

/* The labels of one series. NULL strings are "". code: status code (HTTP_REQUESTS) or 0.
 * source: "service", "kong" or "exit" (HTTP_REQUESTS); direction "ingress"/"egress"
 * (BANDWIDTH) goes in source too; plugin name (LOG_*) goes in service. */
typedef struct {
    const char *service, *route, *consumer, *source;
    int code;
} dp_metric_labels;

/* Adds n to a counter series. Lock-free; the calling thread's shard. */
void dp_metrics_add(dp_metric_family f, const dp_metric_labels *l, uint64_t n);

/* Records one observation (ms, >= 0) in a histogram series. */
void dp_metrics_observe(dp_metric_family f, const dp_metric_labels *l, double ms);

/* A growable text buffer for rendering. */
typedef struct {
    char *p;
    size_t len, cap;
    int oom; /* an allocation failed: the text is cut */
} dp_metrics_buf;

/* Appends formatted text. */
void dp_metrics_printf(dp_metrics_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends a label value escaped for the Prometheus text format (\\, \" and \n). */
void dp_metrics_escape(dp_metrics_buf *b, const char *s);

/* Appends every family with data (HELP, TYPE and samples summed over all shards, in a stable
 * order) in Prometheus text format 0.0.4. Any thread. */
void dp_metrics_render(dp_metrics_buf *b);

/* Series that could not be recorded because a shard's table was full (all shards). */
uint64_t dp_metrics_refused(void);

/* Node-wide connection counters (the workers' stats, summed by the caller). */
typedef struct {
    long long accepted, active, handled, requests;
} dp_metrics_conns;

/* GET /metrics (prometheus.c): the whole exposition text (node gauges, config version, the
 * recorded families, upstream target health when a prometheus plugin asks for it). Returns a
 * malloc'd buffer the caller frees, *len its length; NULL when out of memory. Any thread
 * (the status listener's). */
char *dp_prometheus_scrape(const dp_metrics_conns *conns, size_t *len);

/* Tests: zero every shard's values (series stay). Not safe against concurrent writers. */
void dp_metrics_reset(void);

#endif
