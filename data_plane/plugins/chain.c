/* Plugin chains: built once per generation (instances, consumers, per-route slots with the
 * precedence already applied), then run per request without allocation beyond the arena. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_plane/config/route_fields.h"
#include "data_plane/plugins/chain_internal.h"
#include "proto/plugin_schemas.h"
#include "proto/sort.h"

/* Kong's precedence (plugins_iterator.lua), as a level: higher wins. */
enum {
    LVL_GLOBAL = 1,
    LVL_SERVICE = 2,
    LVL_ROUTE = 3,
    LVL_CONSUMER = 4,
    LVL_ROUTE_SERVICE = 5,
    LVL_SERVICE_CONSUMER = 6,
    LVL_ROUTE_CONSUMER = 7,
    LVL_ALL = 8,
};

static const char *fk(const json_t *p, const char *field)
{
    return json_string_value(json_object_get(json_object_get(p, field), "id"));
}

static int streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static int cmp_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "");
}

/* ------------------------------------------------------------------ consumers */

static int consumer_by_id_cmp(const void *a, const void *b)
{
    return cmp_str(((const dp_consumer *)a)->id, ((const dp_consumer *)b)->id);
}

static int consumer_by_name_cmp(const void *a, const void *b)
{
    return cmp_str((*(const dp_consumer *const *)a)->username,
                   (*(const dp_consumer *const *)b)->username);
}

static int build_consumers(dp_plugin_gen *g, const json_t *config)
{
    const json_t *cs = json_object_get(config, "consumers");
    const json_t *acls = json_object_get(config, "acls");
    size_t n = json_is_array(cs) ? json_array_size(cs) : 0;
    g->consumers = calloc(n + 1, sizeof(dp_consumer));
    g->by_name = calloc(n + 1, sizeof(dp_consumer *));
    if (!g->consumers || !g->by_name)
        return -1;
    size_t i;
    const json_t *c;
    json_array_foreach(cs, i, c)
    {
        dp_consumer *d = &g->consumers[g->nconsumers];
        d->id = json_string_value(json_object_get(c, "id"));
        if (!d->id)
            continue;
        d->username = json_string_value(json_object_get(c, "username"));
        d->custom_id = json_string_value(json_object_get(c, "custom_id"));
        g->nconsumers++;
    }
    sl_sort(g->consumers, g->nconsumers, sizeof(dp_consumer), consumer_by_id_cmp);
    /* ACL groups: one pass counts, one fills, so each consumer's groups are contiguous */
    size_t nacl = json_is_array(acls) ? json_array_size(acls) : 0;
    g->groups = calloc(nacl + 1, sizeof(char *));
    size_t *count = calloc(g->nconsumers + 1, sizeof(size_t));
    if (!g->groups || !count) {
        free(count);
        return -1;
    }
    const json_t *a;
    json_array_foreach(acls, i, a)
    {
        const dp_consumer *d = dp_plugin_consumer_by_id(g, fk(a, "consumer"));
        if (d && json_string_value(json_object_get(a, "group")))
            count[d - g->consumers]++;
    }
    size_t off = 0;
    for (size_t k = 0; k < g->nconsumers; k++) {
        g->consumers[k].groups = (const char *const *)&g->groups[off];
        off += count[k];
        count[k] = 0;
    }
    json_array_foreach(acls, i, a)
    {
        const dp_consumer *d = dp_plugin_consumer_by_id(g, fk(a, "consumer"));
        const char *grp = json_string_value(json_object_get(a, "group"));
        if (!d || !grp)
            continue;
        size_t k = (size_t)(d - g->consumers);
        dp_consumer *m = &g->consumers[k];
        ((const char **)m->groups)[count[k]++] = grp;
        m->ngroups = count[k];
    }
    free(count);
    for (size_t k = 0; k < g->nconsumers; k++)
        if (g->consumers[k].username)
            g->by_name[g->nnamed++] = &g->consumers[k];
    sl_sort(g->by_name, g->nnamed, sizeof(dp_consumer *), consumer_by_name_cmp);
    return 0;
}

const dp_consumer *dp_plugin_consumer_by_id(const dp_plugin_gen *g, const char *id)
{
    if (!g || !id)
        return NULL;
    dp_consumer key = {.id = id};
    return bsearch(&key, g->consumers, g->nconsumers, sizeof(dp_consumer), consumer_by_id_cmp);
}

const dp_consumer *dp_plugin_consumer_by_username(const dp_plugin_gen *g, const char *name)
{
    if (!g || !name)
        return NULL;
    dp_consumer key = {.username = name};
    const dp_consumer *kp = &key;
    const dp_consumer *const *r =
        bsearch(&kp, g->by_name, g->nnamed, sizeof(dp_consumer *), consumer_by_name_cmp);
    return r ? *r : NULL;
}

/* ------------------------------------------------------------------ building */

static int inst_cmp_priority(const void *a, const void *b)
{
    const dp_plugin_instance *x = *(const dp_plugin_instance *const *)a;
    const dp_plugin_instance *y = *(const dp_plugin_instance *const *)b;
    if (x->priority != y->priority)
        return x->priority < y->priority ? 1 : -1;
    int c = strcmp(x->plugin->name, y->plugin->name);
    if (c)
        return c;
    c = cmp_str(x->consumer_id, y->consumer_id);
    if (c)
        return c;
    return y->level - x->level;
}

/* Candidates of one slot with a consumer: sorted by consumer id, then level descending, so
 * the first entry for a consumer is its best. */
static int cand_cmp(const void *a, const void *b)
{
    const dp_plugin_instance *x = *(const dp_plugin_instance *const *)a;
    const dp_plugin_instance *y = *(const dp_plugin_instance *const *)b;
    int c = cmp_str(x->consumer_id, y->consumer_id);
    return c ? c : y->level - x->level;
}

/* The level at which `in` applies to a route (rid, sid); 0: it doesn't. */
static int level_for(const dp_plugin_instance *in, const char *rid, const char *sid)
{
    if (in->route_id && !streq(in->route_id, rid))
        return 0;
    if (in->service_id && !streq(in->service_id, sid))
        return 0;
    int r = in->route_id != NULL, s = in->service_id != NULL, c = in->consumer_id != NULL;
    if (r && s)
        return c ? LVL_ALL : LVL_ROUTE_SERVICE;
    if (r)
        return c ? LVL_ROUTE_CONSUMER : LVL_ROUTE;
    if (s)
        return c ? LVL_SERVICE_CONSUMER : LVL_SERVICE;
    return c ? LVL_CONSUMER : LVL_GLOBAL;
}

/* Builds one route's slots from the instances that apply to it (cands, any order). */
static int build_route_chain(dp_route_chain *rc, const dp_plugin_instance **cands, size_t n,
                             const char *rid, const char *sid)
{
    for (size_t i = 0; i < n; i++)
        ((dp_plugin_instance *)cands[i])->level = level_for(cands[i], rid, sid);
    sl_sort(cands, n, sizeof(*cands), inst_cmp_priority);
    rc->slots = calloc(n + 1, sizeof(dp_slot));
    rc->cands = calloc(n + 1, sizeof(*cands));
    if (!rc->slots || !rc->cands)
        return -1;
    size_t nc = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && cands[j]->plugin == cands[i]->plugin)
            j++;
        dp_slot *s = &rc->slots[rc->n++];
        s->plugin = cands[i]->plugin;
        s->cands = &rc->cands[nc];
        for (size_t k = i; k < j; k++) {
            if (s->plugin->wants_body && s->plugin->wants_body(cands[k]->state))
                rc->wants_body = 1;
            if (!cands[k]->consumer_id) {
                if (!s->dflt || cands[k]->level > s->dflt->level)
                    s->dflt = cands[k];
            } else {
                rc->cands[nc++] = cands[k];
                s->ncands++;
            }
        }
        sl_sort(s->cands, s->ncands, sizeof(*s->cands), cand_cmp);
        if (s->plugin->body_filter)
            rc->has_body_filter = 1;
        if (s->plugin->request_body)
            rc->has_request_body = 1;
        if (s->plugin->header_filter)
            rc->has_header_filter = 1;
        if (s->plugin->log)
            rc->has_log = 1;
        i = j;
    }
    return 0;
}

static int shared_for(dp_plugin_chain_data *d, const dp_plugin *pl, const json_t *config,
                      void **shared, char *err, size_t errlen)
{
    for (size_t i = 0; i < d->ntypes; i++)
        if (d->types[i] == pl) {
            *shared = d->shared[i];
            return 0;
        }
    *shared = NULL;
    if (pl->gen_init && pl->gen_init(config, &d->gen, shared, err, errlen) != 0)
        return -1;
    d->types[d->ntypes] = pl;
    d->shared[d->ntypes++] = *shared;
    return 0;
}

static int build_instances(dp_plugin_chain_data *d, const json_t *config, char *err, size_t errlen)
{
    const json_t *arr = json_object_get(config, "plugins");
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    d->inst = calloc(n + 1, sizeof(dp_plugin_instance));
    d->types = calloc(n + 1, sizeof(*d->types));
    d->shared = calloc(n + 1, sizeof(void *));
    if (!d->inst || !d->types || !d->shared) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t i;
    const json_t *p;
    json_array_foreach(arr, i, p)
    {
        if (json_is_false(json_object_get(p, "enabled")))
            continue;
        const char *name = json_string_value(json_object_get(p, "name"));
        const char *id = json_string_value(json_object_get(p, "id"));
        const dp_plugin *pl = name ? dp_plugin_find(name) : NULL;
        const sl_plugin_schema *sc = name ? sl_plugin_schema_find(name) : NULL;
        if (!pl || !sc) {
            snprintf(err, errlen, "plugins %s: plugin '%s' is not available on this data plane",
                     id ? id : "?", name ? name : "?");
            return -1;
        }
        dp_plugin_instance *in = &d->inst[d->ninst];
        in->plugin = pl;
        in->priority = sc->priority;
        in->id = id;
        in->route_id = fk(p, "route");
        in->service_id = fk(p, "service");
        in->consumer_id = fk(p, "consumer");
        void *shared;
        char e[200] = "";
        if (shared_for(d, pl, config, &shared, e, sizeof(e)) != 0 ||
            (pl->init && pl->init(json_object_get(p, "config"), id ? id : "", shared, &in->state, e,
                                  sizeof(e)) != 0)) {
            snprintf(err, errlen, "plugins %s (%s): %s", id ? id : "?", name, e);
            return -1;
        }
        in->initialized = 1;
        d->ninst++;
    }
    return 0;
}

/* Instances sorted by a key field, for the range lookups of build_routes. */
typedef struct {
    const char *key;
    const dp_plugin_instance *in;
} keyed;

static int keyed_cmp(const void *a, const void *b)
{
    return cmp_str(((const keyed *)a)->key, ((const keyed *)b)->key);
}

static size_t keyed_lower(const keyed *k, size_t n, const char *key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cmp_str(k[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Per route: the global instances, those bound to the route, and those bound to its
 * service (with or without a route: level_for filters). Found through sorted indexes so a
 * config with many routes and many route-bound plugins builds in n log n. A route that no
 * route- or service-bound instance names runs exactly the globals, the chain of requests
 * without a route: it shares that chain (d->routes[nr]) instead of a copy, so 100,000 routes
 * under global plugins (or none) cost no allocation and no look-up each. When no instance is
 * bound to a route or a service, every route runs that chain: the table then has no per-route
 * entries at all (dp_plugin_req_begin maps any route past the end to it), so a generation
 * with many routes builds its chains in a time that does not depend on the route count. */
static int build_routes(dp_plugin_chain_data *d, const json_t *config)
{
    const json_t *routes = json_object_get(config, "routes");
    size_t nr = json_is_array(routes) ? json_array_size(routes) : 0;
    int bound = 0;
    for (size_t i = 0; i < d->ninst; i++)
        bound |= d->inst[i].route_id || d->inst[i].service_id;
    if (!bound)
        nr = 0;
    d->routes = calloc(nr + 1, sizeof(dp_route_chain));
    keyed *by_route = calloc(d->ninst + 1, sizeof(keyed));
    keyed *by_service = calloc(d->ninst + 1, sizeof(keyed));
    const dp_plugin_instance **globals = calloc(d->ninst + 1, sizeof(*globals));
    const dp_plugin_instance **cands = calloc(d->ninst + 1, sizeof(*cands));
    int rc = -1;
    if (!d->routes || !by_route || !by_service || !globals || !cands)
        goto out;
    d->nroutes = nr;
    size_t nbr = 0, nbs = 0, ng = 0;
    for (size_t i = 0; i < d->ninst; i++) {
        const dp_plugin_instance *in = &d->inst[i];
        if (in->route_id)
            by_route[nbr++] = (keyed){in->route_id, in};
        else if (in->service_id)
            by_service[nbs++] = (keyed){in->service_id, in};
        else
            globals[ng++] = in;
    }
    sl_sort(by_route, nbr, sizeof(keyed), keyed_cmp);
    sl_sort(by_service, nbs, sizeof(keyed), keyed_cmp);
    for (size_t i = 0; i < ng; i++)
        cands[i] = globals[i];
    if (build_route_chain(&d->routes[nr], cands, ng, NULL, NULL) != 0)
        goto out;
    for (size_t r = 0; r < nr; r++) {
        const char *rid = NULL, *sid = NULL;
        if (nbr || nbs) { /* two look-ups, not a walk of every field: 100,000 routes */
            const json_t *row = json_array_get(routes, r);
            rid = json_string_value(json_object_get(row, "id"));
            sid = dp_route_fields_ref_id(json_object_get(row, "service"));
        }
        size_t n = 0;
        for (size_t i = 0; i < ng; i++)
            cands[n++] = globals[i];
        for (size_t i = rid ? keyed_lower(by_route, nbr, rid) : nbr;
             i < nbr && streq(by_route[i].key, rid); i++)
            if (level_for(by_route[i].in, rid, sid))
                cands[n++] = by_route[i].in;
        for (size_t i = sid ? keyed_lower(by_service, nbs, sid) : nbs;
             i < nbs && streq(by_service[i].key, sid); i++)
            cands[n++] = by_service[i].in;
        if (n == ng) {
            d->routes[r] = d->routes[nr];
            continue;
        }
        if (build_route_chain(&d->routes[r], cands, n, rid, sid) != 0)
            goto out;
    }
    rc = 0;
out:
    free(by_route);
    free(by_service);
    free(globals);
    free(cands);
    return rc;
}

int dp_plugin_chain_build(dp_plugin_chain *c, const json_t *config, char *err, size_t errlen)
{
    c->n = 0;
    c->d = calloc(1, sizeof(dp_plugin_chain_data));
    if (!c->d || build_consumers(&c->d->gen, config) != 0) {
        snprintf(err, errlen, "out of memory");
        dp_plugin_chain_free(c);
        return -1;
    }
    if (build_instances(c->d, config, err, errlen) != 0 || build_routes(c->d, config) != 0) {
        if (!err[0])
            snprintf(err, errlen, "out of memory");
        dp_plugin_chain_free(c);
        return -1;
    }
    c->n = c->d->ninst;
    return 0;
}

void dp_plugin_chain_free(dp_plugin_chain *c)
{
    dp_plugin_chain_data *d = c->d;
    c->n = 0;
    c->d = NULL;
    if (!d)
        return;
    for (size_t i = 0; i < d->ninst + 1 && d->inst; i++)
        if (d->inst[i].initialized && d->inst[i].plugin->free_state)
            d->inst[i].plugin->free_state(d->inst[i].state);
    for (size_t i = 0; i < d->ntypes; i++)
        if (d->types[i]->gen_free)
            d->types[i]->gen_free(d->shared[i]);
    /* routes that share the no-route chain (build_routes) hold its pointers, not copies */
    for (size_t r = 0; d->routes && r <= d->nroutes; r++) {
        if (r < d->nroutes && d->routes[r].slots == d->routes[d->nroutes].slots)
            continue;
        free(d->routes[r].slots);
        free(d->routes[r].cands);
    }
    free(d->routes);
    free(d->inst);
    free(d->types);
    free(d->shared);
    free(d->gen.consumers);
    free(d->gen.by_name);
    free(d->gen.groups);
    free(d);
}

/* ------------------------------------------------------------------ running */

/* The config a slot runs with for the current consumer. */
static const dp_plugin_instance *pick(const dp_slot *s, const dp_consumer *consumer)
{
    const dp_plugin_instance *best = s->dflt;
    if (!consumer || !s->ncands)
        return best;
    size_t lo = 0, hi = s->ncands;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cmp_str(s->cands[mid]->consumer_id, consumer->id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->ncands && streq(s->cands[lo]->consumer_id, consumer->id) &&
        (!best || s->cands[lo]->level > best->level))
        best = s->cands[lo];
    return best;
}

/* The config of slot i: chosen when access reached it, else picked now. */
static const dp_plugin_instance *slot_inst(dp_plugin_req *req, size_t i)
{
    if (!req->chosen[i])
        req->chosen[i] = pick(&req->chain->slots[i], req->consumer);
    return req->chosen[i];
}

int dp_plugin_req_begin(dp_plugin_req *req, const dp_plugin_chain *c, size_t route_index)
{
    req->chain = NULL;
    if (!c->d)
        return 0;
    req->gen = &c->d->gen;
    if (!c->n)
        return 0;
    const dp_route_chain *rc =
        &c->d->routes[route_index < c->d->nroutes ? route_index : c->d->nroutes];
    if (!rc->n)
        return 0;
    req->chosen = dp_arena_alloc(req->arena, rc->n * sizeof(*req->chosen));
    req->ctx = dp_arena_alloc(req->arena, rc->n * sizeof(*req->ctx));
    if (!req->chosen || !req->ctx)
        return -1;
    memset(req->chosen, 0, rc->n * sizeof(*req->chosen));
    memset(req->ctx, 0, rc->n * sizeof(*req->ctx));
    req->chain = rc;
    return 0;
}

dp_plugin_result dp_plugin_run_access(const dp_plugin_chain *c, dp_plugin_req *req)
{
    (void)c;
    const dp_route_chain *rc = req->chain;
    for (size_t i = 0; rc && i < rc->n; i++) {
        /* picked now: authentication by an earlier slot decides consumer-scoped configs */
        const dp_plugin_instance *in = slot_inst(req, i);
        if (in && in->plugin->access &&
            in->plugin->access(in->state, req, &req->ctx[i]) == DP_PLUGIN_RESPOND)
            return DP_PLUGIN_RESPOND;
    }
    return DP_PLUGIN_CONTINUE;
}

int dp_plugin_wants_body(const dp_plugin_req *req)
{
    return req->chain && req->chain->wants_body;
}

dp_plugin_result dp_plugin_run_request_body(dp_plugin_req *req, const char *data, size_t len)
{
    const dp_route_chain *rc = req->chain;
    req->body_seen += len;
    if (!rc || !rc->has_request_body)
        return DP_PLUGIN_CONTINUE;
    for (size_t i = 0; i < rc->n; i++) {
        const dp_plugin_instance *in = slot_inst(req, i);
        if (in && in->plugin->request_body &&
            in->plugin->request_body(in->state, req, &req->ctx[i], data, len) == DP_PLUGIN_RESPOND)
            return DP_PLUGIN_RESPOND;
    }
    return DP_PLUGIN_CONTINUE;
}

void dp_plugin_run_header_filters(dp_plugin_req *req)
{
    const dp_route_chain *rc = req->chain;
    if (!rc || !rc->has_header_filter)
        return;
    for (size_t i = 0; i < rc->n; i++) {
        const dp_plugin_instance *in = slot_inst(req, i);
        if (in && in->plugin->header_filter)
            in->plugin->header_filter(in->state, req, &req->ctx[i]);
    }
}

int dp_plugin_has_body_filter(const dp_plugin_req *req)
{
    return req->chain && req->chain->has_body_filter;
}

void dp_plugin_run_body_filter(dp_plugin_req *req, dp_slice *chunk, int eof)
{
    const dp_route_chain *rc = req->chain;
    if (!rc || !rc->has_body_filter)
        return;
    for (size_t i = 0; i < rc->n; i++) {
        const dp_plugin_instance *in = slot_inst(req, i);
        if (in && in->plugin->body_filter)
            in->plugin->body_filter(in->state, req, &req->ctx[i], chunk, eof);
    }
}

void dp_plugin_run_log(const dp_plugin_chain *c, dp_plugin_req *req)
{
    (void)c;
    const dp_route_chain *rc = req->chain;
    for (size_t i = 0; rc && i < rc->n; i++) {
        const dp_plugin_instance *in = slot_inst(req, i);
        if (in && in->plugin->log)
            in->plugin->log(in->state, req, &req->ctx[i]);
    }
}

/* ------------------------------------------------------------------ names for the hello */

static const char *names[DP_PLUGIN_MAX + 1];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void names_init(void)
{
    size_t n = 0;
    for (size_t i = 0; dp_plugin_table[i] && n < DP_PLUGIN_MAX; i++)
        names[n++] = dp_plugin_table[i]->name;
    names[n] = NULL;
}

const char *const *dp_plugin_names(void)
{
    pthread_once(&names_once, names_init);
    return names;
}
