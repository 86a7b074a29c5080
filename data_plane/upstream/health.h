#ifndef DP_HEALTH_H
#define DP_HEALTH_H

/* Target health shared by every worker: one state record per (upstream name, target), kept in
 * a process-wide registry so it survives config swaps for targets that still exist. Workers
 * report passive events (statuses, TCP failures, timeouts) with atomics only; the control
 * thread runs active checks (one prober per node, on the control loop). Counting follows
 * lua-resty-healthcheck, which Kong uses: a success clears the failure counters, a failure
 * clears the success counter, and crossing a configured count flips the state. */

#include <jansson.h>
#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* A set of HTTP statuses 100..599. */
typedef struct {
    uint64_t bits[10];
} dp_status_set;

/* An upstream's `healthchecks`, parsed once per generation. A count or interval of 0 is
 * "disabled", as in Kong. */
typedef struct {
    /* active */
    int active_type; /* DP_HC_HTTP, DP_HC_HTTPS or DP_HC_TCP */
    unsigned active_timeout_ms;
    unsigned active_concurrency;
    char *http_path;
    char *https_sni;
    int https_verify;
    char *headers; /* "Name: value\r\n" lines sent with each probe */
    unsigned healthy_interval_ms, unhealthy_interval_ms;
    dp_status_set a_healthy_statuses, a_unhealthy_statuses;
    unsigned a_successes, a_tcp_failures, a_timeouts, a_http_failures;
    SSL_CTX *tls_ctx; /* https probes */
    /* passive */
    dp_status_set p_healthy_statuses, p_unhealthy_statuses;
    unsigned p_successes, p_tcp_failures, p_timeouts, p_http_failures;
    double threshold; /* % of healthy weight under which the whole upstream is unhealthy */
    int active_on, passive_on;
} dp_health_conf;

enum { DP_HC_HTTP, DP_HC_HTTPS, DP_HC_TCP };

/* The shared state of one target. Counters are packed in one word so an update is one CAS. */
typedef struct dp_health_target {
    struct dp_health_target *next; /* registry chain (registry lock) */
    int refs;                      /* registry lock */
    _Atomic int healthy;           /* 1 healthy (the start state), 0 unhealthy */
    _Atomic uint64_t counters;     /* successes | tcp << 16 | timeouts << 32 | http << 48 */
    _Atomic int active_conns;      /* requests in flight on this target, all workers */
    /* the active prober's bookkeeping (control thread only) */
    uint64_t next_probe_ms;
    int probing;
    char key[]; /* "<upstream name>\n<target>" */
} dp_health_target;

/* Parses hc (an upstream's "healthchecks" object, may be NULL: all off) into conf. -1 with err
 * on a bad value. Free with dp_health_conf_free. */
int dp_health_conf_parse(dp_health_conf *conf, const json_t *hc, char *err, size_t errlen);
void dp_health_conf_free(dp_health_conf *conf);

/* The state record of target in upstream, created healthy when new; one reference for the
 * caller, dropped with dp_health_target_put. NULL when out of memory. Any thread. */
dp_health_target *dp_health_target_get(const char *upstream, const char *target);
void dp_health_target_put(dp_health_target *t);

/* Events. active selects the active or passive thresholds of conf. Any thread. */
void dp_health_report_status(dp_health_target *t, const dp_health_conf *conf, int active,
                             int status);
void dp_health_report_tcp_failure(dp_health_target *t, const dp_health_conf *conf, int active);
void dp_health_report_timeout(dp_health_target *t, const dp_health_conf *conf, int active);
/* A TCP connect that worked (tcp active checks). */
void dp_health_report_tcp_success(dp_health_target *t, const dp_health_conf *conf);

/* Whether t may get traffic under conf (always when checks are off). */
static inline int dp_health_usable(const dp_health_target *t, const dp_health_conf *conf)
{
    return !(conf->active_on || conf->passive_on) ||
           atomic_load_explicit(&t->healthy, memory_order_relaxed);
}

/* Starts the active prober on the calling thread's loop the first time it is called (the
 * control loop: generations are built there). Its handles don't keep the loop alive. */
void dp_health_prober_ensure(void);
/* Closes the prober (at exit, on the control loop). */
void dp_health_stop(void);

/* The node id shown by /upstreams/{name}/health (copied). */
void dp_health_set_node_id(const char *node_id);

/* GET /upstreams/{name}/health for the current generation: *status is 200 or 404; returns a
 * malloc'd JSON body the caller frees (NULL when out of memory). */
char *dp_health_upstream_report(const char *name, int *status);

/* The status listener's hook: when path is /upstreams/{name}/health, sets *status and *body (a
 * malloc'd JSON text the caller frees; NULL when out of memory) and returns 1; else 0. */
int dp_health_status_route(const char *method, const char *path, int *status, char **body);

#endif
