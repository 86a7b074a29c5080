#include "proto/sort.h"
#include "data_plane/upstream/balancer.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SCHEDULE 4096

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static char *dupz(const char *s)
{
    return s ? strdup(s) : NULL;
}

uint32_t dp_lb_hash(const char *p, size_t n)
{
    /* FNV-1a for the bytes, then a 64-bit finalizer so nearby keys spread over the ring */
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return (uint32_t)h;
}

static dp_hash_on hash_kind(const char *s)
{
    static const char *const names[] = {"none",   "consumer", "ip",        "header",
                                        "cookie", "path",     "query_arg", "uri_capture"};
    for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i]) == 0)
            return (dp_hash_on)i;
    return DP_HASH_NONE;
}

/* "host:port", "[v6]:port" or "host" (Kong's default target port is 8000). */
static int parse_target(const char *t, char **host, int *port)
{
    const char *colon = strrchr(t, ':');
    *port = 8000;
    *host = NULL;
    if (t[0] == '[') {
        const char *end = strchr(t, ']');
        if (!end)
            return -1;
        *host = strndup(t + 1, (size_t)(end - t - 1));
        if (end[1] == ':')
            *port = atoi(end + 2);
    } else if (colon && strchr(t, ':') == colon) {
        *host = strndup(t, (size_t)(colon - t));
        *port = atoi(colon + 1);
    } else {
        *host = strdup(t);
    }
    return *host && **host && *port > 0 && *port < 65536 ? 0 : -1;
}

static unsigned gcd(unsigned a, unsigned b)
{
    while (b) {
        unsigned t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* nginx's smooth weighted round-robin, unrolled once: 1:3 gives B A B B, never A A ... */
static int build_schedule(dp_balancer *b)
{
    unsigned g = 0;
    unsigned long long total = 0;
    for (size_t i = 0; i < b->ntargets; i++)
        g = gcd(g, b->targets[i].weight);
    if (!g)
        return 0; /* every weight is 0 */
    for (size_t i = 0; i < b->ntargets; i++)
        total += b->targets[i].weight / g;
    double scale = total > MAX_SCHEDULE ? (double)MAX_SCHEDULE / (double)total : 1.0;
    long long *w = calloc(b->ntargets, sizeof(long long));
    long long *cur = calloc(b->ntargets, sizeof(long long));
    long long sum = 0;
    if (!w || !cur)
        goto oom;
    for (size_t i = 0; i < b->ntargets; i++) {
        if (!b->targets[i].weight)
            continue;
        w[i] = (long long)((b->targets[i].weight / g) * scale);
        if (w[i] < 1)
            w[i] = 1;
        sum += w[i];
    }
    b->schedule = malloc((size_t)sum * sizeof(uint32_t));
    if (!b->schedule)
        goto oom;
    for (long long k = 0; k < sum; k++) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < b->ntargets; i++) {
            if (!w[i])
                continue;
            cur[i] += w[i];
            if (best == SIZE_MAX || cur[i] > cur[best])
                best = i;
        }
        cur[best] -= sum;
        b->schedule[k] = (uint32_t)best;
    }
    b->nschedule = (size_t)sum;
    free(w);
    free(cur);
    return 0;
oom:
    free(w);
    free(cur);
    return -1;
}

static int point_cmp(const void *a, const void *b)
{
    const dp_lb_point *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->target < y->target ? -1 : x->target > y->target;
}

/* Points per target scale with weight relative to the average, so a target's points depend
 * only on its own name and share: removing one of N equal targets leaves the others' points
 * where they were and only its keys move. */
static int build_ring(dp_balancer *b)
{
    size_t nweighted = 0;
    for (size_t i = 0; i < b->ntargets; i++)
        nweighted += b->targets[i].weight > 0;
    if (!nweighted)
        return 0;
    size_t *npoints = calloc(b->ntargets, sizeof(size_t));
    size_t total = 0;
    if (!npoints)
        return -1;
    for (size_t i = 0; i < b->ntargets; i++) {
        if (!b->targets[i].weight)
            continue;
        double share = (double)b->targets[i].weight * (double)nweighted / (double)b->total_weight;
        size_t n = (size_t)(DP_LB_POINTS * share + 0.5);
        npoints[i] = n ? n : 1;
        total += npoints[i];
    }
    b->ring = malloc(total * sizeof(dp_lb_point));
    if (!b->ring) {
        free(npoints);
        return -1;
    }
    char key[600];
    for (size_t i = 0; i < b->ntargets; i++) {
        for (size_t k = 0; k < npoints[i]; k++) {
            int n = snprintf(key, sizeof(key), "%s#%zu", b->targets[i].name, k);
            b->ring[b->nring].hash = dp_lb_hash(key, (size_t)n);
            b->ring[b->nring].target = (uint32_t)i;
            b->nring++;
        }
    }
    free(npoints);
    sl_sort(b->ring, b->nring, sizeof(dp_lb_point), point_cmp);
    return 0;
}

static int load_targets(dp_balancer *b, const json_t *targets, char *err, size_t errlen)
{
    size_t n = 0, i;
    const json_t *t;
    json_array_foreach(targets, i, t)
    {
        const char *uid = str(json_object_get(t, "upstream"), "id");
        if (uid && b->id && strcmp(uid, b->id) == 0)
            n++;
    }
    if (n > DP_LB_MAX_TARGETS) {
        snprintf(err, errlen, "upstreams %s: more than %d targets", b->id, DP_LB_MAX_TARGETS);
        return -1;
    }
    b->targets = calloc(n + 1, sizeof(dp_lb_target));
    if (!b->targets)
        goto oom;
    json_array_foreach(targets, i, t)
    {
        const char *uid = str(json_object_get(t, "upstream"), "id");
        if (!uid || !b->id || strcmp(uid, b->id) != 0)
            continue;
        dp_lb_target *d = &b->targets[b->ntargets];
        const char *ts = str(t, "target");
        const json_t *w = json_object_get(t, "weight");
        long long weight = json_is_integer(w) ? json_integer_value(w) : 100;
        if (!ts || parse_target(ts, &d->host, &d->port) != 0 || weight < 0 || weight > 65535) {
            free(d->host);
            d->host = NULL;
            snprintf(err, errlen, "targets %s: bad target '%s'", str(t, "id") ? str(t, "id") : "?",
                     ts ? ts : "");
            return -1;
        }
        d->id = dupz(str(t, "id"));
        d->name = strdup(ts);
        d->weight = (unsigned)weight;
        b->ntargets++; /* counted now so dp_balancer_free releases what is set */
        d->hs = dp_health_target_get(b->name, ts);
        if (!d->name || !d->hs)
            goto oom;
        b->total_weight += d->weight;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

dp_balancer *dp_balancer_build(const json_t *upstream, const json_t *targets, char *err,
                               size_t errlen)
{
    dp_balancer *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->id = dupz(str(upstream, "id"));
    b->name = dupz(str(upstream, "name"));
    if (!b->name) {
        snprintf(err, errlen, "upstreams %s: no name", b->id ? b->id : "?");
        goto fail;
    }
    const char *alg = str(upstream, "algorithm");
    b->algorithm = !alg || strcmp(alg, "round-robin") == 0  ? DP_LB_ROUND_ROBIN
                   : strcmp(alg, "consistent-hashing") == 0 ? DP_LB_CONSISTENT_HASHING
                   : strcmp(alg, "least-connections") == 0  ? DP_LB_LEAST_CONNECTIONS
                                                            : DP_LB_ROUND_ROBIN; /* latency */
    b->hash_on = hash_kind(str(upstream, "hash_on"));
    b->hash_fallback = hash_kind(str(upstream, "hash_fallback"));
    b->hash_on_header = dupz(str(upstream, "hash_on_header"));
    b->hash_fallback_header = dupz(str(upstream, "hash_fallback_header"));
    b->hash_on_cookie = dupz(str(upstream, "hash_on_cookie"));
    b->hash_on_cookie_path =
        strdup(str(upstream, "hash_on_cookie_path") ? str(upstream, "hash_on_cookie_path") : "/");
    b->hash_on_query_arg = dupz(str(upstream, "hash_on_query_arg"));
    b->hash_fallback_query_arg = dupz(str(upstream, "hash_fallback_query_arg"));
    if (dp_health_conf_parse(&b->hc, json_object_get(upstream, "healthchecks"), err, errlen)) {
        char inner[256];
        snprintf(inner, sizeof(inner), "%s", err);
        snprintf(err, errlen, "upstreams %s: healthchecks: %s", b->id ? b->id : b->name, inner);
        goto fail;
    }
    if (load_targets(b, json_is_array(targets) ? targets : NULL, err, errlen))
        goto fail;
    if (build_schedule(b) || (b->algorithm == DP_LB_CONSISTENT_HASHING && build_ring(b))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (b->hc.active_on)
        dp_health_prober_ensure();
    return b;
fail:
    dp_balancer_free(b);
    return NULL;
}

void dp_balancer_free(dp_balancer *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->ntargets; i++) {
        free(b->targets[i].id);
        free(b->targets[i].name);
        free(b->targets[i].host);
        if (b->targets[i].hs)
            dp_health_target_put(b->targets[i].hs);
    }
    free(b->targets);
    free(b->schedule);
    free(b->ring);
    dp_health_conf_free(&b->hc);
    free(b->id);
    free(b->name);
    free(b->hash_on_header);
    free(b->hash_fallback_header);
    free(b->hash_on_cookie);
    free(b->hash_on_cookie_path);
    free(b->hash_on_query_arg);
    free(b->hash_fallback_query_arg);
    free(b);
}

/* ---------------------------------------------------------------- picking */

static int tried(const dp_lb_ctx *ctx, size_t i)
{
    return ctx && i < 64 && (ctx->tried >> i) & 1;
}

static int eligible(const dp_balancer *b, size_t i, const dp_lb_ctx *ctx, int ignore_tried)
{
    const dp_lb_target *t = &b->targets[i];
    return t->weight && dp_health_usable(t->hs, &b->hc) && (ignore_tried || !tried(ctx, i));
}

/* Kong's threshold: below this share of healthy weight the whole upstream is unhealthy. */
static int below_threshold(const dp_balancer *b)
{
    if (b->hc.threshold <= 0 || !b->total_weight)
        return 0;
    unsigned long long healthy = 0;
    for (size_t i = 0; i < b->ntargets; i++)
        if (dp_health_usable(b->targets[i].hs, &b->hc))
            healthy += b->targets[i].weight;
    return (double)healthy * 100.0 / (double)b->total_weight < b->hc.threshold;
}

static const dp_lb_target *pick_rr(dp_balancer *b, const dp_lb_ctx *ctx, int ignore_tried)
{
    uint32_t n = atomic_fetch_add_explicit(&b->next, 1, memory_order_relaxed);
    for (size_t k = 0; k < b->nschedule; k++) {
        uint32_t i = b->schedule[(n + k) % b->nschedule];
        if (eligible(b, i, ctx, ignore_tried))
            return &b->targets[i];
    }
    return NULL;
}

static const dp_lb_target *pick_least(dp_balancer *b, const dp_lb_ctx *ctx, int ignore_tried)
{
    /* smallest (in flight + 1) / weight; the rotating start spreads ties */
    uint32_t start = atomic_fetch_add_explicit(&b->next, 1, memory_order_relaxed);
    const dp_lb_target *best = NULL;
    double best_score = 0;
    for (size_t k = 0; k < b->ntargets; k++) {
        size_t i = (start + k) % b->ntargets;
        if (!eligible(b, i, ctx, ignore_tried))
            continue;
        int conns = atomic_load_explicit(&b->targets[i].hs->active_conns, memory_order_relaxed);
        double score = (double)(conns + 1) / (double)b->targets[i].weight;
        if (!best || score < best_score) {
            best = &b->targets[i];
            best_score = score;
        }
    }
    return best;
}

static const dp_lb_target *pick_ring(dp_balancer *b, uint32_t h, const dp_lb_ctx *ctx,
                                     int ignore_tried)
{
    if (!b->nring)
        return NULL;
    size_t lo = 0, hi = b->nring; /* first point with hash >= h, wrapping */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->ring[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = 0; k < b->nring; k++) {
        uint32_t i = b->ring[(lo + k) % b->nring].target;
        if (eligible(b, i, ctx, ignore_tried))
            return &b->targets[i];
    }
    return NULL;
}

static dp_slice header_value(const dp_lb_request *rq, const char *name)
{
    const dp_header *h = name ? dp_headers_find(rq->headers, rq->nheaders, name) : NULL;
    return h ? h->value : (dp_slice){NULL, 0};
}

static dp_slice cookie_value(const dp_lb_request *rq, const char *name)
{
    size_t nl = name ? strlen(name) : 0;
    for (size_t i = 0; nl && i < rq->nheaders; i++) {
        if (!dp_slice_ieq(rq->headers[i].name, "cookie"))
            continue;
        const char *p = rq->headers[i].value.p, *end = p + rq->headers[i].value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *e = semi ? semi : end;
            if ((size_t)(e - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=')
                return (dp_slice){p + nl + 1, (size_t)(e - p - nl - 1)};
            p = e;
        }
    }
    return (dp_slice){NULL, 0};
}

static dp_slice query_value(const dp_lb_request *rq, const char *name)
{
    size_t nl = name ? strlen(name) : 0;
    const char *p = rq->query.p, *end = p + rq->query.len;
    while (nl && p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if ((size_t)(e - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=' && e > p + nl + 1)
            return (dp_slice){p + nl + 1, (size_t)(e - p - nl - 1)};
        p = e + 1;
    }
    return (dp_slice){NULL, 0};
}

/* The key for one hash_on kind; empty when the request has none. */
static dp_slice hash_key(const dp_balancer *b, dp_hash_on kind, int fallback,
                         const dp_lb_request *rq, dp_lb_ctx *ctx)
{
    switch (kind) {
    case DP_HASH_CONSUMER:
        return rq->consumer_id;
    case DP_HASH_IP:
        return rq->client_ip;
    case DP_HASH_HEADER:
        return header_value(rq, fallback ? b->hash_fallback_header : b->hash_on_header);
    case DP_HASH_PATH:
        return rq->path;
    case DP_HASH_QUERY_ARG:
        return query_value(rq, fallback ? b->hash_fallback_query_arg : b->hash_on_query_arg);
    case DP_HASH_COOKIE: {
        dp_slice v = cookie_value(rq, b->hash_on_cookie);
        if (v.len || !ctx)
            return v;
        /* no cookie yet: make one, hash on it, and hand it to the client (Kong's behaviour) */
        if (!ctx->cookie[0]) {
            static const char hx[] = "0123456789abcdef";
            unsigned char r[16];
            if (RAND_bytes(r, sizeof(r)) != 1)
                return v;
            for (int i = 0; i < 16; i++) {
                ctx->cookie[2 * i] = hx[r[i] >> 4];
                ctx->cookie[2 * i + 1] = hx[r[i] & 15];
            }
            ctx->cookie[32] = 0;
            ctx->cookie_is_new = 1;
        }
        return dp_slice_cstr(ctx->cookie);
    }
    default:
        return (dp_slice){NULL, 0};
    }
}

static const dp_lb_target *pick_hash(dp_balancer *b, const dp_lb_request *rq, dp_lb_ctx *ctx,
                                     int ignore_tried)
{
    dp_slice key = hash_key(b, b->hash_on, 0, rq, ctx);
    if (!key.len && b->hash_on != DP_HASH_COOKIE) /* cookie hashing has no fallback */
        key = hash_key(b, b->hash_fallback, 1, rq, ctx);
    uint32_t h = key.len ? dp_lb_hash(key.p, key.len)
                         : atomic_fetch_add_explicit(&b->next, 2654435761u, memory_order_relaxed);
    return pick_ring(b, h, ctx, ignore_tried);
}

static const dp_lb_target *pick_once(dp_balancer *b, const dp_lb_request *rq, dp_lb_ctx *ctx,
                                     int ignore_tried)
{
    switch (b->algorithm) {
    case DP_LB_CONSISTENT_HASHING:
        return pick_hash(b, rq, ctx, ignore_tried);
    case DP_LB_LEAST_CONNECTIONS:
        return pick_least(b, ctx, ignore_tried);
    default:
        return pick_rr(b, ctx, ignore_tried);
    }
}

const dp_lb_target *dp_balancer_pick(dp_balancer *b, const dp_lb_request *rq, dp_lb_ctx *ctx)
{
    static const dp_lb_request none = {0};
    if (!b->ntargets || below_threshold(b))
        return NULL;
    if (!rq)
        rq = &none;
    const dp_lb_target *t = pick_once(b, rq, ctx, 0);
    if (!t && ctx && ctx->tried) /* every usable target was tried: start over */
        t = pick_once(b, rq, ctx, 1);
    if (ctx)
        ctx->target = t;
    if (t && ctx) {
        size_t i = dp_balancer_index(b, t);
        if (i < 64)
            ctx->tried |= 1ULL << i;
    }
    return t;
}

size_t dp_balancer_cookie(const dp_balancer *b, const dp_lb_ctx *ctx, char *out, size_t cap)
{
    if (!ctx->cookie_is_new || !b->hash_on_cookie)
        return 0;
    int n = snprintf(out, cap, "%s=%s; Path=%s; HttpOnly", b->hash_on_cookie, ctx->cookie,
                     b->hash_on_cookie_path ? b->hash_on_cookie_path : "/");
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
