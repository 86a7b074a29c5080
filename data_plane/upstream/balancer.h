#ifndef DP_BALANCER_H
#define DP_BALANCER_H

/* Kong's ring balancer for one upstream of a generation: weighted round-robin (smooth, nginx's
 * order, precomputed so a pick is one atomic increment), consistent hashing (a ring of points
 * per target, scaled by weight, so removing one of N targets moves about 1/N of the keys) and
 * least-connections (weighted, with in-flight counts shared by all workers). Unhealthy targets
 * (health.h) and targets a request already tried are skipped. Built on the control thread,
 * then read-only except for atomics; picks run on any worker. */

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "data_plane/upstream/health.h"
#include "data_plane/util/slice.h"

#define DP_LB_MAX_TARGETS 65535
#define DP_LB_POINTS 160 /* ring points of a target of average weight (Ketama's figure) */

typedef enum {
    DP_LB_ROUND_ROBIN,
    DP_LB_CONSISTENT_HASHING,
    DP_LB_LEAST_CONNECTIONS,
} dp_lb_algorithm;

/* What a consistent-hashing key is made of (Kong's hash_on / hash_fallback). */
typedef enum {
    DP_HASH_NONE,
    DP_HASH_CONSUMER,
    DP_HASH_IP,
    DP_HASH_HEADER,
    DP_HASH_COOKIE,
    DP_HASH_PATH,
    DP_HASH_QUERY_ARG,
    DP_HASH_URI_CAPTURE, /* not supported by this data plane: behaves as none */
} dp_hash_on;

typedef struct {
    char *id;
    char *name; /* the target as configured, "host:port" */
    char *host;
    int port;
    unsigned weight; /* 0: listed in health, never picked */
    dp_health_target *hs;
} dp_lb_target;

typedef struct {
    uint32_t hash;
    uint32_t target;
} dp_lb_point;

typedef struct dp_balancer {
    char *id, *name;
    dp_lb_algorithm algorithm;
    dp_hash_on hash_on, hash_fallback;
    char *hash_on_header, *hash_fallback_header;
    char *hash_on_cookie, *hash_on_cookie_path;
    char *hash_on_query_arg, *hash_fallback_query_arg;
    dp_lb_target *targets;
    size_t ntargets;
    unsigned long long total_weight;
    uint32_t *schedule; /* round-robin order: target indexes */
    size_t nschedule;
    dp_lb_point *ring; /* sorted by hash */
    size_t nring;
    _Atomic uint32_t next;
    dp_health_conf hc;
} dp_balancer;

/* The request facts hashing may use. Slices may be empty. */
typedef struct {
    dp_slice consumer_id; /* set by an authentication plugin */
    dp_slice client_ip;
    dp_slice path;
    dp_slice query; /* without '?' */
    const dp_header *headers;
    size_t nheaders;
} dp_lb_request;

/* Per-request balancer state (lives in the client connection). */
typedef struct {
    const dp_lb_target *target; /* the current pick */
    uint64_t tried;             /* targets (by index, the first 64) this request already tried */
    char cookie[33];            /* a hash cookie value generated for this request; "" if none */
    int cookie_is_new;          /* send it back with Set-Cookie */
    int cookie_sent;            /* ... which was done */
} dp_lb_ctx;

/* Builds the balancer of upstream (a config "upstreams" row) over the rows of targets that
 * belong to it. Health state records come from the shared registry. NULL with err naming the
 * entity on a bad value. Caller frees with dp_balancer_free. */
dp_balancer *dp_balancer_build(const json_t *upstream, const json_t *targets, char *err,
                               size_t errlen);
void dp_balancer_free(dp_balancer *b);

/* Picks a target for rq, skipping unhealthy targets and those ctx says were tried (when every
 * usable one was tried, tried ones become eligible again). NULL when no target may get
 * traffic (Kong answers 503 "failure to get a peer from the ring-balancer"). The result
 * belongs to b. The caller counts the request in flight with dp_lb_acquire/dp_lb_release. */
const dp_lb_target *dp_balancer_pick(dp_balancer *b, const dp_lb_request *rq, dp_lb_ctx *ctx);

/* The index of t in b (for the tried mask). */
static inline size_t dp_balancer_index(const dp_balancer *b, const dp_lb_target *t)
{
    return (size_t)(t - b->targets);
}

/* In-flight accounting for least-connections (and the health report). */
static inline void dp_lb_acquire(const dp_lb_target *t)
{
    atomic_fetch_add_explicit(&t->hs->active_conns, 1, memory_order_relaxed);
}
static inline void dp_lb_release(const dp_lb_target *t)
{
    atomic_fetch_sub_explicit(&t->hs->active_conns, 1, memory_order_relaxed);
}

/* The consistent-hashing key of a string (exposed for tests). */
uint32_t dp_lb_hash(const char *p, size_t n);

/* The Set-Cookie value ("name=value; Path=...; HttpOnly") for a cookie a pick generated,
 * written into out; 0 when none is due or it does not fit. */
size_t dp_balancer_cookie(const dp_balancer *b, const dp_lb_ctx *ctx, char *out, size_t cap);

#endif
