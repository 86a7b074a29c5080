/* Shared target health: the registry, the counters, and parsing `healthchecks`. The active
 * prober is in probe.c, the status report in health_report.c. */
#include "data_plane/upstream/health.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_plane/tls/tls.h"
#include "proto/log.h"

#define REGISTRY_BUCKETS 1024
#define MAX_PROBE_HEADERS_BYTES 8192

/* ---------------------------------------------------------------- config */

static void set_add(dp_status_set *s, long long st)
{
    if (st >= 100 && st < 600)
        s->bits[(st - 100) / 64] |= 1ULL << ((st - 100) % 64);
}

static int set_has(const dp_status_set *s, int st)
{
    return st >= 100 && st < 600 && (s->bits[(st - 100) / 64] >> ((st - 100) % 64)) & 1;
}

static void set_load(dp_status_set *s, const json_t *arr, const int *dflt, size_t ndflt)
{
    memset(s, 0, sizeof(*s));
    if (!json_is_array(arr)) {
        for (size_t i = 0; i < ndflt; i++)
            set_add(s, dflt[i]);
        return;
    }
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v) set_add(s, json_integer_value(v));
}

static unsigned count(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    long long n = json_is_integer(v) ? json_integer_value(v) : 0;
    return n < 0 ? 0 : n > 255 ? 255 : (unsigned)n;
}

static double number(const json_t *o, const char *k, double dflt)
{
    const json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static unsigned seconds_ms(double s)
{
    return s <= 0 ? 0 : s > 65535 ? 65535000u : (unsigned)(s * 1000 + 0.5);
}

/* The probe's custom headers: {"name": ["v1", "v2"]} (Kong) or {"name": "v"}. */
static int load_headers(dp_health_conf *c, const json_t *h, char *err, size_t errlen)
{
    size_t cap = 1, len = 0;
    const char *k;
    const json_t *v;
    c->headers = calloc(1, MAX_PROBE_HEADERS_BYTES);
    if (!c->headers)
        return -1;
    json_object_foreach((json_t *)h, k, v)
    {
        const json_t *vals = json_is_array(v) ? v : NULL;
        size_t n = vals ? json_array_size(vals) : 1;
        for (size_t i = 0; i < n; i++) {
            const char *s = json_string_value(vals ? json_array_get(vals, i) : v);
            if (!s || strpbrk(s, "\r\n") || strpbrk(k, "\r\n: ")) {
                snprintf(err, errlen, "active.headers: bad header '%s'", k);
                return -1;
            }
            int w = snprintf(c->headers + len, MAX_PROBE_HEADERS_BYTES - len, "%s: %s\r\n", k, s);
            if (w < 0 || len + (size_t)w + cap >= MAX_PROBE_HEADERS_BYTES) {
                snprintf(err, errlen, "active.headers: more than %d bytes",
                         MAX_PROBE_HEADERS_BYTES);
                return -1;
            }
            len += (size_t)w;
        }
    }
    return 0;
}

int dp_health_conf_parse(dp_health_conf *c, const json_t *hc, char *err, size_t errlen)
{
    static const int a_ok[] = {200, 302};
    static const int a_bad[] = {429, 404, 500, 501, 502, 503, 504, 505};
    static const int p_ok[] = {200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
                               300, 301, 302, 303, 304, 305, 306, 307, 308};
    static const int p_bad[] = {429, 500, 503};
    memset(c, 0, sizeof(*c));
    const json_t *a = json_object_get(hc, "active"), *p = json_object_get(hc, "passive");
    const json_t *ah = json_object_get(a, "healthy"), *au = json_object_get(a, "unhealthy");
    const json_t *ph = json_object_get(p, "healthy"), *pu = json_object_get(p, "unhealthy");
    const char *type = json_string_value(json_object_get(a, "type"));
    c->active_type = !type || strcmp(type, "http") == 0 ? DP_HC_HTTP
                     : strcmp(type, "https") == 0       ? DP_HC_HTTPS
                     : strcmp(type, "tcp") == 0         ? DP_HC_TCP
                                                        : -1;
    c->active_timeout_ms = seconds_ms(number(a, "timeout", 1));
    if (!c->active_timeout_ms)
        c->active_timeout_ms = 1;
    c->active_concurrency = (unsigned)number(a, "concurrency", 10);
    if (!c->active_concurrency)
        c->active_concurrency = 1;
    const char *path = json_string_value(json_object_get(a, "http_path"));
    c->http_path = strdup(path && path[0] == '/' && !strpbrk(path, " \r\n") ? path : "/");
    const char *sni = json_string_value(json_object_get(a, "https_sni"));
    c->https_sni = sni ? strdup(sni) : NULL;
    const json_t *verify = json_object_get(a, "https_verify_certificate");
    c->https_verify = json_is_boolean(verify) ? json_is_true(verify) : 1;
    if (load_headers(c, json_object_get(a, "headers"), err, errlen))
        return -1;
    c->healthy_interval_ms = seconds_ms(number(ah, "interval", 0));
    c->unhealthy_interval_ms = seconds_ms(number(au, "interval", 0));
    set_load(&c->a_healthy_statuses, json_object_get(ah, "http_statuses"), a_ok, 2);
    set_load(&c->a_unhealthy_statuses, json_object_get(au, "http_statuses"), a_bad, 8);
    c->a_successes = count(ah, "successes");
    c->a_tcp_failures = count(au, "tcp_failures");
    c->a_timeouts = count(au, "timeouts");
    c->a_http_failures = count(au, "http_failures");
    set_load(&c->p_healthy_statuses, json_object_get(ph, "http_statuses"), p_ok, 19);
    set_load(&c->p_unhealthy_statuses, json_object_get(pu, "http_statuses"), p_bad, 3);
    c->p_successes = count(ph, "successes");
    c->p_tcp_failures = count(pu, "tcp_failures");
    c->p_timeouts = count(pu, "timeouts");
    c->p_http_failures = count(pu, "http_failures");
    c->threshold = number(hc, "threshold", 0);
    /* Kong: active checks run when either interval is set; passive when any count is */
    c->active_on = c->healthy_interval_ms || c->unhealthy_interval_ms;
    c->passive_on = c->p_successes || c->p_tcp_failures || c->p_timeouts || c->p_http_failures;
    if (c->active_on && c->active_type < 0) { /* grpc(s): only refused when it would run */
        snprintf(err, errlen, "active.type '%s' is not supported by this data plane", type);
        return -1;
    }
    if (c->active_type < 0)
        c->active_type = DP_HC_HTTP;
    if (c->active_on && c->active_type == DP_HC_HTTPS) {
        c->tls_ctx = dp_tls_client_ctx_new(c->https_verify, NULL, err, errlen);
        if (!c->tls_ctx)
            return -1;
    }
    return 0;
}

void dp_health_conf_free(dp_health_conf *c)
{
    free(c->http_path);
    free(c->https_sni);
    free(c->headers);
    if (c->tls_ctx)
        SSL_CTX_free(c->tls_ctx);
    memset(c, 0, sizeof(*c));
}

/* ---------------------------------------------------------------- registry */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static dp_health_target *buckets[REGISTRY_BUCKETS];

static size_t bucket_of(const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = key; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    }
    return (size_t)(h % REGISTRY_BUCKETS);
}

dp_health_target *dp_health_target_get(const char *upstream, const char *target)
{
    size_t kl = strlen(upstream) + strlen(target) + 2;
    char *key = malloc(kl);
    if (!key)
        return NULL;
    snprintf(key, kl, "%s\n%s", upstream, target);
    size_t b = bucket_of(key);
    pthread_mutex_lock(&reg_lock);
    dp_health_target *t = buckets[b];
    while (t && strcmp(t->key, key) != 0)
        t = t->next;
    if (!t) {
        t = calloc(1, sizeof(*t) + kl);
        if (t) {
            memcpy(t->key, key, kl);
            atomic_init(&t->healthy, 1);
            t->next = buckets[b];
            buckets[b] = t;
        }
    }
    if (t)
        t->refs++;
    pthread_mutex_unlock(&reg_lock);
    free(key);
    return t;
}

void dp_health_target_put(dp_health_target *t)
{
    pthread_mutex_lock(&reg_lock);
    if (--t->refs == 0) {
        dp_health_target **pp = &buckets[bucket_of(t->key)];
        while (*pp && *pp != t)
            pp = &(*pp)->next;
        if (*pp)
            *pp = t->next;
        free(t);
    }
    pthread_mutex_unlock(&reg_lock);
}

/* ---------------------------------------------------------------- counting */

enum { CTR_SUCCESS, CTR_TCP, CTR_TIMEOUT, CTR_HTTP };

static void set_health(dp_health_target *t, int healthy)
{
    int was = atomic_exchange_explicit(&t->healthy, healthy, memory_order_relaxed);
    atomic_store_explicit(&t->counters, 0, memory_order_relaxed);
    size_t ul = strcspn(t->key, "\n");
    if (was != healthy)
        sl_notice("upstream %.*s target %s is now %s", (int)ul, t->key, t->key + ul + 1,
                  healthy ? "healthy" : "unhealthy");
}

/* One event: a success counts toward healthy and clears the failures; a failure of kind ctr
 * counts toward unhealthy and clears the successes. limit 0: this kind is not counted. */
static void count_event(dp_health_target *t, int ctr, unsigned limit)
{
    int healthy = atomic_load_explicit(&t->healthy, memory_order_relaxed);
    int success = ctr == CTR_SUCCESS;
    if (!limit || success == healthy) {
        /* nothing to count toward; a success still clears failures seen so far */
        if (success && atomic_load_explicit(&t->counters, memory_order_relaxed))
            atomic_store_explicit(&t->counters, 0, memory_order_relaxed);
        return;
    }
    uint64_t old = atomic_load_explicit(&t->counters, memory_order_relaxed), next;
    unsigned n;
    do {
        uint64_t keep = success ? 0 : old & ~0xffffULL; /* a failure clears the successes */
        n = (unsigned)((old >> (16 * ctr)) & 0xffff) + 1;
        if (n > 0xffff)
            n = 0xffff;
        next = (keep & ~(0xffffULL << (16 * ctr))) | ((uint64_t)n << (16 * ctr));
    } while (!atomic_compare_exchange_weak_explicit(&t->counters, &old, next, memory_order_relaxed,
                                                    memory_order_relaxed));
    if (n >= limit)
        set_health(t, success);
}

void dp_health_report_status(dp_health_target *t, const dp_health_conf *c, int active, int st)
{
    if (!active && !c->passive_on)
        return;
    const dp_status_set *ok = active ? &c->a_healthy_statuses : &c->p_healthy_statuses;
    const dp_status_set *bad = active ? &c->a_unhealthy_statuses : &c->p_unhealthy_statuses;
    if (set_has(bad, st))
        count_event(t, CTR_HTTP, active ? c->a_http_failures : c->p_http_failures);
    else if (set_has(ok, st))
        count_event(t, CTR_SUCCESS, active ? c->a_successes : c->p_successes);
}

void dp_health_report_tcp_failure(dp_health_target *t, const dp_health_conf *c, int active)
{
    if (active || c->passive_on)
        count_event(t, CTR_TCP, active ? c->a_tcp_failures : c->p_tcp_failures);
}

void dp_health_report_timeout(dp_health_target *t, const dp_health_conf *c, int active)
{
    if (active || c->passive_on)
        count_event(t, CTR_TIMEOUT, active ? c->a_timeouts : c->p_timeouts);
}

void dp_health_report_tcp_success(dp_health_target *t, const dp_health_conf *c)
{
    count_event(t, CTR_SUCCESS, c->a_successes);
}
