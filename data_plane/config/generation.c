#include "data_plane/config/generation.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_plane/upstream/balancer.h"
#include "proto/log.h"

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static long long num(const json_t *o, const char *k, long long dflt)
{
    const json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static int boolean(const json_t *o, const char *k, int dflt)
{
    const json_t *v = json_object_get(o, k);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
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

static int build_services_indexed(dp_generation *g, json_t *config, json_t *upstream_index,
                                  char *err, size_t errlen);

/* key value -> index in the array, so references resolve in constant time (100,000 routes
 * over 10,000 services must not cost 10^9 comparisons). Caller frees. */
static json_t *index_by(const json_t *rows, const char *key)
{
    json_t *idx = json_object();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *k = json_string_value(json_object_get(row, key));
        if (k)
            json_object_set_new(idx, k, json_integer((json_int_t)i));
    }
    return idx;
}

static int build_services(dp_generation *g, json_t *config, char *err, size_t errlen)
{
    json_t *upstream_index = index_by(arr(config, "upstreams"), "name");
    int rc = build_services_indexed(g, config, upstream_index, err, errlen);
    json_decref(upstream_index);
    return rc;
}

static int build_services_indexed(dp_generation *g, json_t *config, json_t *upstream_index,
                                  char *err, size_t errlen)
{
    json_t *svcs = arr(config, "services");
    g->nservices = svcs ? json_array_size(svcs) : 0;
    g->services = calloc(g->nservices + 1, sizeof(dp_service));
    size_t i;
    json_t *s;
    json_array_foreach(svcs, i, s)
    {
        dp_service *d = &g->services[i];
        d->id = dupz(str(s, "id"));
        d->name = dupz(str(s, "name"));
        const char *proto = str(s, "protocol");
        d->https = proto && strcmp(proto, "https") == 0;
        d->host = dupz(str(s, "host"));
        d->port = (int)num(s, "port", d->https ? 443 : 80);
        d->path = dupz(str(s, "path"));
        d->retries = (int)num(s, "retries", 5);
        d->connect_timeout = (int)num(s, "connect_timeout", 60000);
        d->write_timeout = (int)num(s, "write_timeout", 60000);
        d->read_timeout = (int)num(s, "read_timeout", 60000);
        d->tls_verify = boolean(s, "tls_verify", 0);
        if (!d->host) {
            snprintf(err, errlen, "services %s: no host", d->id ? d->id : "?");
            return -1;
        }
        /* Kong leaves routes of disabled services out of the router; stream and gRPC
         * services are not served by this engine, which must not refuse the whole config. */
        d->served = !json_is_false(json_object_get(s, "enabled")) &&
                    (!proto || !strcmp(proto, "http") || !strcmp(proto, "https"));
        if (proto && strcmp(proto, "http") != 0 && strcmp(proto, "https") != 0)
            sl_warn("services %s: protocol '%s' is not served by this data plane; its routes "
                    "are left out",
                    d->id ? d->id : "?", proto);
        json_t *up = json_object_get(upstream_index, d->host);
        if (up)
            d->upstream = &g->upstreams[json_integer_value(up)];
        if (d->https) {
            json_t *pems = ca_pems(config, json_object_get(s, "ca_certificates"));
            d->tls_ctx = dp_tls_client_ctx_new(d->tls_verify, pems, err, errlen);
            json_decref(pems);
            if (!d->tls_ctx)
                return -1;
            /* Kong's tls_verify_depth: how many intermediates may sit below the trusted CA */
            if (num(s, "tls_verify_depth", -1) >= 0)
                SSL_CTX_set_verify_depth(d->tls_ctx, (int)num(s, "tls_verify_depth", -1));
        }
    }
    return 0;
}

static int build_routes(dp_generation *g, json_t *config, char *err, size_t errlen)
{
    json_t *routes = arr(config, "routes");
    g->nroutes = routes ? json_array_size(routes) : 0;
    g->routes = calloc(g->nroutes + 1, sizeof(dp_route));
    unsigned char *skip = calloc(g->nroutes + 1, 1);
    json_t *service_index = index_by(arr(config, "services"), "id");
    size_t i;
    json_t *r;
    json_array_foreach(routes, i, r)
    {
        dp_route *d = &g->routes[i];
        d->id = str(r, "id");
        d->name = str(r, "name");
        d->strip_path = boolean(r, "strip_path", 1);
        d->preserve_host = boolean(r, "preserve_host", 0);
        d->https_redirect_status_code = (int)num(r, "https_redirect_status_code", 426);
        const json_t *protos = json_object_get(r, "protocols");
        if (!json_is_array(protos) || !json_array_size(protos)) {
            d->protocols = DP_PROTO_HTTP | DP_PROTO_HTTPS;
        } else {
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
            if (!d->protocols)
                skip[i] = 1; /* stream/grpc routes: not served by this engine */
        }
        const char *sid = fk(r, "service");
        json_t *si = sid ? json_object_get(service_index, sid) : NULL;
        if (si)
            d->service = &g->services[json_integer_value(si)];
        if (d->service && !d->service->served)
            skip[i] = 1;
    }
    json_decref(service_index);
    g->router = dp_router_build(routes, skip, err, errlen);
    free(skip);
    return g->router ? 0 : -1;
}

dp_generation *dp_generation_build(json_t *config, int64_t version, const char *hash, char *err,
                                   size_t errlen)
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
        build_routes(g, config, err, errlen)) {
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
