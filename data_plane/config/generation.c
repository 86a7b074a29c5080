#include "data_plane/config/generation.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_plane/config/route_fields.h"
#include "data_plane/upstream/balancer.h"
#include "proto/log.h"
#include "proto/parallel.h"

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static const char *fk(const json_t *o, const char *k)
{
    return str(json_object_get(o, k), "id");
}

static char *dupz(const char *s)
{
    return s ? strdup(s) : NULL;
}

static json_t *arr(json_t *config, const char *k)
{
    json_t *a = json_object_get(config, k);
    return json_is_array(a) ? a : NULL;
}

/* ---- string -> row index, for the references between entities ----
 * Open addressing over strings that live in the config; built once per generation, so
 * resolving 100,000 routes' services costs one probe each and no allocation per key. */
typedef struct {
    const char **keys;
    size_t *vals;
    size_t mask;
} id_index;

/* Ids are uuids: 36 bytes hashed eight at a time (a byte-wise hash is a multiply per byte in
 * one dependency chain, and every one of 100,000 routes looks its service up). */
static size_t hash_str(const char *s)
{
    size_t n = strlen(s);
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    for (; n >= 8; s += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    for (; n; s++, n--)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    h ^= h >> 29;
    return (size_t)(h * 0xc4ceb9fe1a85ec53ull >> 17) ^ (size_t)h;
}

static int id_index_init(id_index *x, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n + 2)
        cap *= 2;
    x->mask = cap - 1;
    x->keys = calloc(cap, sizeof(*x->keys));
    x->vals = malloc(cap * sizeof(*x->vals));
    return x->keys && x->vals ? 0 : -1;
}

/* A later row with the same key replaces an earlier one. */
static void id_index_put(id_index *x, const char *k, size_t v)
{
    if (!k)
        return;
    for (size_t i = hash_str(k) & x->mask;; i = (i + 1) & x->mask) {
        if (!x->keys[i] || strcmp(x->keys[i], k) == 0) {
            x->keys[i] = k;
            x->vals[i] = v;
            return;
        }
    }
}

/* Index of k, or (size_t)-1. */
static size_t id_index_get(const id_index *x, const char *k)
{
    if (!k || !x->keys)
        return (size_t)-1;
    for (size_t i = hash_str(k) & x->mask; x->keys[i]; i = (i + 1) & x->mask)
        if (strcmp(x->keys[i], k) == 0)
            return x->vals[i];
    return (size_t)-1;
}

static void id_index_free(id_index *x)
{
    free(x->keys);
    free(x->vals);
}

static int build_upstreams(dp_generation *g, json_t *config, char *err, size_t errlen)
{
    json_t *ups = arr(config, "upstreams");
    g->nupstreams = ups ? json_array_size(ups) : 0;
    g->upstreams = calloc(g->nupstreams + 1, sizeof(dp_upstream));
    /* Targets grouped by upstream id once, so each balancer reads only its own. */
    json_t *by_upstream = json_object();
    size_t i;
    json_t *u, *t;
    json_array_foreach(arr(config, "targets"), i, t)
    {
        const char *uid = fk(t, "upstream");
        if (!uid)
            continue;
        json_t *list = json_object_get(by_upstream, uid);
        if (!list) {
            list = json_array();
            json_object_set_new(by_upstream, uid, list);
        }
        json_array_append(list, t);
    }
    int rc = 0;
    json_array_foreach(ups, i, u)
    {
        dp_upstream *du = &g->upstreams[i];
        du->id = dupz(str(u, "id"));
        du->name = dupz(str(u, "name"));
        du->host_header = dupz(str(u, "host_header"));
        json_t *mine = du->id ? json_object_get(by_upstream, du->id) : NULL;
        json_t *none = mine ? NULL : json_array();
        du->lb = dp_balancer_build(u, mine ? mine : none, err, errlen);
        json_decref(none);
        if (!du->lb) {
            rc = -1;
            break;
        }
    }
    json_decref(by_upstream);
    return rc;
}

static json_t *ca_pems(json_t *config, const json_t *ids)
{
    json_t *out = json_array();
    size_t i, k;
    json_t *id, *ca;
    json_array_foreach(ids, i, id)
    {
        json_array_foreach(arr(config, "ca_certificates"), k, ca)
        {
            const char *cid = str(ca, "id");
            if (cid && json_string_value(id) && strcmp(cid, json_string_value(id)) == 0 &&
                str(ca, "cert"))
                json_array_append_new(out, json_string(str(ca, "cert")));
        }
    }
    return out;
}

/* The members of a service row the generation reads (see route_fields.h for why one walk). */
typedef struct {
    const char *id, *name, *protocol, *host, *path;
    const json_t *port, *retries, *connect_timeout, *write_timeout, *read_timeout;
    const json_t *tls_verify, *tls_verify_depth, *enabled, *ca_certificates;
} service_fields;

static void read_service(const json_t *row, service_fields *f)
{
    memset(f, 0, sizeof(*f));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)row, k, v)
    {
        if (!strcmp(k, "id"))
            f->id = json_string_value(v);
        else if (!strcmp(k, "name"))
            f->name = json_string_value(v);
        else if (!strcmp(k, "protocol"))
            f->protocol = json_string_value(v);
        else if (!strcmp(k, "host"))
            f->host = json_string_value(v);
        else if (!strcmp(k, "path"))
            f->path = json_string_value(v);
        else if (!strcmp(k, "port"))
            f->port = v;
        else if (!strcmp(k, "retries"))
            f->retries = v;
        else if (!strcmp(k, "connect_timeout"))
            f->connect_timeout = v;
        else if (!strcmp(k, "write_timeout"))
            f->write_timeout = v;
        else if (!strcmp(k, "read_timeout"))
            f->read_timeout = v;
        else if (!strcmp(k, "tls_verify"))
            f->tls_verify = v;
        else if (!strcmp(k, "tls_verify_depth"))
            f->tls_verify_depth = v;
        else if (!strcmp(k, "enabled"))
            f->enabled = v;
        else if (!strcmp(k, "ca_certificates"))
            f->ca_certificates = v;
    }
}

static long long int_or(const json_t *v, long long dflt)
{
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static int build_services(dp_generation *g, json_t *config, char *err, size_t errlen)
{
    json_t *svcs = arr(config, "services");
    json_t *ups = arr(config, "upstreams");
    g->nservices = svcs ? json_array_size(svcs) : 0;
    g->services = calloc(g->nservices + 1, sizeof(dp_service));
    /* a service whose host names an upstream balances over it */
    id_index up_by_name = {0};
    size_t nups = ups ? json_array_size(ups) : 0;
    if (!g->services || (nups && id_index_init(&up_by_name, nups))) {
        id_index_free(&up_by_name);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < nups; i++)
        id_index_put(&up_by_name, str(json_array_get(ups, i), "name"), i);
    int rc = 0;
    size_t i;
    json_t *s;
    json_array_foreach(svcs, i, s)
    {
        dp_service *d = &g->services[i];
        service_fields f;
        read_service(s, &f);
        d->id = dupz(f.id);
        d->name = dupz(f.name);
        const char *proto = f.protocol;
        d->https = proto && strcmp(proto, "https") == 0;
        d->host = dupz(f.host);
        d->port = (int)int_or(f.port, d->https ? 443 : 80);
        d->path = dupz(f.path);
        d->retries = (int)int_or(f.retries, 5);
        d->connect_timeout = (int)int_or(f.connect_timeout, 60000);
        d->write_timeout = (int)int_or(f.write_timeout, 60000);
        d->read_timeout = (int)int_or(f.read_timeout, 60000);
        d->tls_verify = json_is_boolean(f.tls_verify) ? json_is_true(f.tls_verify) : 0;
        if (!d->host) {
            snprintf(err, errlen, "services %s: no host", d->id ? d->id : "?");
            rc = -1;
            break;
        }
        /* Kong leaves routes of disabled services out of the router; stream and gRPC
         * services are not served by this engine, which must not refuse the whole config. */
        d->served = !json_is_false(f.enabled) &&
                    (!proto || !strcmp(proto, "http") || !strcmp(proto, "https"));
        if (proto && strcmp(proto, "http") != 0 && strcmp(proto, "https") != 0)
            sl_warn("services %s: protocol '%s' is not served by this data plane; its routes "
                    "are left out",
                    d->id ? d->id : "?", proto);
        size_t up = id_index_get(&up_by_name, d->host);
        if (up != (size_t)-1)
            d->upstream = &g->upstreams[up];
        if (d->https) {
            json_t *pems = ca_pems(config, f.ca_certificates);
            d->tls_ctx = dp_tls_client_ctx_new(d->tls_verify, pems, err, errlen);
            json_decref(pems);
            if (!d->tls_ctx) {
                rc = -1;
                break;
            }
            /* Kong's tls_verify_depth: how many intermediates may sit below the trusted CA */
            if (int_or(f.tls_verify_depth, -1) >= 0)
                SSL_CTX_set_verify_depth(d->tls_ctx, (int)int_or(f.tls_verify_depth, -1));
        }
    }
    id_index_free(&up_by_name);
    return rc;
}

/* Reading the route rows is bound by memory latency: each row is a few KB of small blocks
 * (object, pairs, values), touched for the first time here. The decoder allocated each row's
 * blocks one after another, so the row spans from its object to the next row's object;
 * asking for that range a few rows ahead lets the loads overlap. Only a hint: a row laid out
 * otherwise just gets fewer lines prefetched. */
#define ROW_AHEAD 4
#define ROW_SPAN_MAX 8192

static void prefetch_row(const json_t *rows, size_t i)
{
    const char *p = (const char *)json_array_get(rows, i);
    const char *next = (const char *)json_array_get(rows, i + 1);
    size_t span = next > p && (size_t)(next - p) <= ROW_SPAN_MAX ? (size_t)(next - p) : 256;
    for (size_t off = 0; off < span; off += 64)
        __builtin_prefetch(p + off);
}

/* Walks the previous generation's routes beside the new ones: both arrays are in id order and
 * share every unchanged row (data_plane/config/delta.c), so an unchanged row is recognised by
 * its pointer and its route is taken from prev without walking its members (that walk is
 * most of a build: the rows are cold in the cache). */
typedef struct {
    const json_t *rows;
    const dp_route *routes;
    size_t n, j;
} prev_routes;

/* How far past a row that is not prev's next one prev_find looks for it by pointer: rows
 * deleted just before it (a delete makes the next unchanged row not prev's next one). */
#define PREV_LOOKAHEAD 8

/* Where row sits in prev when it is one of prev's next rows (the rows of prev before it were
 * deleted), else (size_t)-1: the caller reads the row (prev_skip). */
static size_t prev_find(prev_routes *p, const json_t *row)
{
    for (size_t k = p->j; k < p->n && k < p->j + PREV_LOOKAHEAD; k++) {
        if (json_array_get(p->rows, k) == row) {
            p->j = k + 1;
            return k;
        }
    }
    return (size_t)-1;
}

/* After prev_find missed row, read into f: prev skips the rows it had up to f's id (deleted or
 * replaced). Returns row's position in prev when more rows were deleted before it than the
 * look-ahead covers, else (size_t)-1. */
static size_t prev_skip(prev_routes *p, const json_t *row, const dp_route_fields *f)
{
    while (p->j < p->n && f->id && p->routes[p->j].id && strcmp(p->routes[p->j].id, f->id) < 0)
        p->j++;
    if (p->j < p->n && json_array_get(p->rows, p->j) == row)
        return p->j++;
    while (p->j < p->n && f->id && p->routes[p->j].id && strcmp(p->routes[p->j].id, f->id) == 0)
        p->j++;
    return (size_t)-1;
}

/* A route read from its row: everything but the service. */
static void route_from_fields(dp_route *d, const dp_route_fields *f)
{
    d->id = f->id;
    d->name = f->name;
    d->strip_path = json_is_boolean(f->strip_path) ? json_is_true(f->strip_path) : 1;
    d->preserve_host = json_is_boolean(f->preserve_host) ? json_is_true(f->preserve_host) : 0;
    d->https_redirect_status_code = (int)int_or(f->https_redirect_status_code, 426);
    const json_t *protos = f->protocols;
    if (!json_is_array(protos) || !json_array_size(protos)) {
        d->protocols = DP_PROTO_HTTP | DP_PROTO_HTTPS;
        return;
    }
    size_t k;
    const json_t *p;
    json_array_foreach(protos, k, p)
    {
        const char *ps = json_string_value(p);
        if (ps && strcmp(ps, "http") == 0)
            d->protocols |= DP_PROTO_HTTP;
        else if (ps && strcmp(ps, "https") == 0)
            d->protocols |= DP_PROTO_HTTPS;
    }
    /* no http nor https (stream/grpc routes): protocols 0, not served by this engine */
}

/* A whole build (no prev) of at least this many routes reads and compiles them on several
 * threads, in parts of ROUTES_PER_PART: reading the rows is bound by memory latency and page
 * faults, which each core waits out on its own. The parts hand their routes to parts of the
 * router builder (dp_router_builder_split), so the result is the serial one. */
#define ROUTES_PARALLEL_MIN 8192
#define ROUTES_PER_PART 4096
#define ROUTES_THREADS 4

/* Route i of the config: its record (with its service) and, when it is served, its compiled
 * records in rb. -1 with rb's error when the router refuses it. */
static int take_route(dp_generation *g, const json_t *routes, const id_index *services,
                      dp_router_builder *rb, size_t i)
{
    dp_route *d = &g->routes[i];
    dp_route_fields f;
    dp_route_fields_read(json_array_get(routes, i), &f);
    memset(d, 0, sizeof(*d));
    route_from_fields(d, &f);
    size_t si = id_index_get(services, f.service_id);
    if (si != (size_t)-1)
        d->service = &g->services[si];
    if (!d->protocols || (d->service && !d->service->served))
        return 0;
    return dp_router_builder_add(rb, i, &f);
}

typedef struct {
    dp_generation *g;
    const json_t *routes;
    const id_index *services;
    dp_router_builder *rb; /* split into parts of ROUTES_PER_PART routes */
} routes_job;

/* sl_parallel_for body: one part (begin is a multiple of ROUTES_PER_PART). */
static void take_part(void *arg, size_t begin, size_t end)
{
    routes_job *job = arg;
    dp_router_builder *part = dp_router_builder_part(job->rb, begin / ROUTES_PER_PART);
    for (size_t i = begin; i < end; i++) {
        if (i + ROW_AHEAD < end)
            prefetch_row(job->routes, i + ROW_AHEAD);
        if (take_route(job->g, job->routes, job->services, part, i) != 0)
            return; /* the part keeps its error for finish */
    }
}

/* Every route of the config, none taken from a previous generation. */
static int take_all(dp_generation *g, const json_t *routes, const id_index *services,
                    dp_router_builder *rb)
{
    if (g->nroutes < ROUTES_PARALLEL_MIN) {
        for (size_t i = 0; i < g->nroutes; i++) {
            if (i + ROW_AHEAD < g->nroutes)
                prefetch_row(routes, i + ROW_AHEAD);
            if (take_route(g, routes, services, rb, i) != 0)
                return -1;
        }
        return 0;
    }
    if (dp_router_builder_split(rb, ROUTES_PER_PART) != 0)
        return -1;
    routes_job job = {g, routes, services, rb};
    sl_parallel_for(g->nroutes, ROUTES_PER_PART, ROUTES_THREADS, take_part, &job);
    return 0; /* a part's error comes out of dp_router_builder_finish */
}

/* Every route of the config, those whose rows prev shares taken over from it. */
static int take_next(dp_generation *g, const json_t *routes, const id_index *services,
                     const dp_generation *prev, dp_router_builder *rb, char *err, size_t errlen)
{
    prev_routes pr = {arr(prev->config, "routes"), prev->routes, prev->nroutes, 0};
    if (!pr.rows)
        pr.n = 0;
    /* prev's services by position -> this generation's service of the same id, so a route
     * taken over from prev finds its service without a look-up by id */
    dp_service **svc_map = calloc(prev->nservices + 1, sizeof(*svc_map));
    if (!svc_map) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < prev->nservices; i++) {
        size_t si = id_index_get(services, prev->services[i].id);
        svc_map[i] = si != (size_t)-1 ? &g->services[si] : NULL;
    }
    int rc = 0;
    for (size_t i = 0; i < g->nroutes && rc == 0; i++) {
        dp_route *d = &g->routes[i];
        const json_t *row = json_array_get(routes, i);
        dp_route_fields f;
        int have = 0; /* f read */
        size_t j = prev_find(&pr, row);
        if (j == (size_t)-1) {
            dp_route_fields_read(row, &f);
            have = 1;
            j = prev_skip(&pr, row, &f);
        }
        if (j != (size_t)-1) {
            /* the same row as prev's route j: the same route, but its service may differ */
            *d = prev->routes[j];
            d->service = d->service ? svc_map[d->service - prev->services] : NULL;
        } else {
            memset(d, 0, sizeof(*d));
            route_from_fields(d, &f);
        }
        if (!d->service) {
            if (!have) {
                dp_route_fields_read(row, &f);
                have = 1;
            }
            size_t si = id_index_get(services, f.service_id);
            if (si != (size_t)-1)
                d->service = &g->services[si];
        }
        if (!d->protocols || (d->service && !d->service->served))
            continue;
        /* into the router now, while the row is in the cache */
        if (j != (size_t)-1 && (rc = dp_router_builder_keep(rb, i, j, have ? &f : NULL)) <= 0)
            continue;
        if (!have)
            dp_route_fields_read(row, &f); /* prev's router has no such route to take over */
        rc = dp_router_builder_add(rb, i, &f);
    }
    free(svc_map);
    return rc;
}

static int build_routes(dp_generation *g, json_t *config, const dp_generation *prev, char *err,
                        size_t errlen)
{
    json_t *routes = arr(config, "routes");
    json_t *svcs = arr(config, "services");
    size_t nsvcs = svcs ? json_array_size(svcs) : 0;
    g->nroutes = routes ? json_array_size(routes) : 0;
    /* not zeroed: the loops write every entry (zeroing 100,000 of them costs more than the
     * rest of an incremental build); the spare last entry is zeroed */
    g->routes = malloc((g->nroutes + 1) * sizeof(dp_route));
    if (g->routes)
        memset(&g->routes[g->nroutes], 0, sizeof(dp_route));
    id_index service_index = {0};
    if (!g->routes || id_index_init(&service_index, nsvcs)) {
        id_index_free(&service_index);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < nsvcs; i++)
        id_index_put(&service_index, g->services[i].id, i);
    /* a previous router too wasteful to build on gives a whole build, which runs in parallel */
    if (prev && !dp_router_builder_builds_on(prev->router))
        prev = NULL;
    dp_router_builder *rb =
        dp_router_builder_new_next(g->nroutes, prev ? prev->router : NULL, err, errlen);
    int rc = rb ? 0 : -1;
    if (rb)
        rc = prev ? take_next(g, routes, &service_index, prev, rb, err, errlen)
                  : take_all(g, routes, &service_index, rb);
    id_index_free(&service_index);
    if (rc != 0) {
        dp_router_builder_abort(rb);
        return -1;
    }
    g->router = dp_router_builder_finish(rb);
    return g->router ? 0 : -1;
}

dp_generation *dp_generation_build_next(json_t *config, int64_t version, const char *hash,
                                        const dp_generation *prev, char *err, size_t errlen)
{
    if (!json_is_object(config)) {
        snprintf(err, errlen, "config is not an object");
        return NULL;
    }
    dp_generation *g = calloc(1, sizeof(*g));
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&g->refs, 1);
    g->version = version;
    snprintf(g->hash, sizeof(g->hash), "%s", hash ? hash : "");
    g->config = json_incref(config);
    if (build_upstreams(g, config, err, errlen) || build_services(g, config, err, errlen) ||
        build_routes(g, config, prev, err, errlen)) {
        dp_generation_unref(g);
        return NULL;
    }
    g->certs = dp_certs_build(arr(config, "certificates"), arr(config, "snis"), err, errlen);
    if (!g->certs || dp_plugin_chain_build(&g->plugins, config, err, errlen)) {
        dp_generation_unref(g);
        return NULL;
    }
    return g;
}

dp_generation *dp_generation_build(json_t *config, int64_t version, const char *hash, char *err,
                                   size_t errlen)
{
    return dp_generation_build_next(config, version, hash, NULL, err, errlen);
}

dp_generation *dp_generation_ref(dp_generation *g)
{
    if (g)
        atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
    return g;
}

void dp_generation_unref(dp_generation *g)
{
    if (!g || atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1)
        return;
    dp_plugin_chain_free(&g->plugins);
    dp_certs_free(g->certs);
    dp_router_free(g->router);
    for (size_t i = 0; i < g->nservices; i++) {
        dp_service *s = &g->services[i];
        free(s->id);
        free(s->name);
        free(s->host);
        free(s->path);
        if (s->tls_ctx)
            SSL_CTX_free(s->tls_ctx);
    }
    free(g->services);
    for (size_t i = 0; i < g->nupstreams; i++) {
        dp_upstream *u = &g->upstreams[i];
        dp_balancer_free(u->lb);
        free(u->id);
        free(u->name);
        free(u->host_header);
    }
    free(g->upstreams);
    free(g->routes);
    json_decref(g->config);
    free(g);
}
