/* GET /upstreams/{name}/health on the status listener, in Kong's shape:
 * {"data":[{"target":"127.0.0.1:9001","weight":100,"health":"HEALTHY","data":{...}}],
 *  "node_id":"..."}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_plane/config/apply.h"
#include "data_plane/upstream/balancer.h"
#include "data_plane/upstream/health.h"

static char node_id[40];

void dp_health_set_node_id(const char *id)
{
    snprintf(node_id, sizeof(node_id), "%s", id ? id : "");
}

static const char *health_name(const dp_balancer *b, const dp_lb_target *t)
{
    if (!b->hc.active_on && !b->hc.passive_on)
        return "HEALTHCHECKS_OFF";
    return atomic_load_explicit(&t->hs->healthy, memory_order_relaxed) ? "HEALTHY" : "UNHEALTHY";
}

static json_t *target_json(const dp_balancer *b, const dp_lb_target *t)
{
    const char *health = health_name(b, t);
    json_t *addr = json_pack("{s:s, s:i, s:s, s:i}", "ip", t->host, "port", t->port, "health",
                             health, "weight", (json_int_t)t->weight);
    json_t *o =
        json_pack("{s:s?, s:s, s:i, s:s, s:{s:s?}, s:{s:[o], s:i}}", "id", t->id, "target", t->name,
                  "weight", (json_int_t)t->weight, "health", health, "upstream", "id", b->id,
                  "data", "addresses", addr, "active_connections",
                  (json_int_t)atomic_load_explicit(&t->hs->active_conns, memory_order_relaxed));
    return o;
}

char *dp_health_upstream_report(const char *name, int *status)
{
    dp_generation *g = dp_config_current();
    const dp_balancer *b = NULL;
    for (size_t i = 0; g && i < g->nupstreams; i++) {
        const dp_balancer *x = g->upstreams[i].lb;
        if (x && ((x->name && strcmp(x->name, name) == 0) || (x->id && strcmp(x->id, name) == 0)))
            b = x;
    }
    json_t *body;
    if (!b) {
        *status = 404;
        body = json_pack("{s:s}", "message", "Not found");
    } else {
        *status = 200;
        json_t *data = json_array();
        for (size_t i = 0; i < b->ntargets; i++)
            json_array_append_new(data, target_json(b, &b->targets[i]));
        body = json_pack("{s:o, s:s?}", "data", data, "node_id", node_id[0] ? node_id : NULL);
    }
    char *out = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    dp_generation_unref(g);
    return out;
}

int dp_health_status_route(const char *method, const char *path, int *status, char **body)
{
    static const char prefix[] = "/upstreams/", suffix[] = "/health";
    size_t pl = sizeof(prefix) - 1, sl = sizeof(suffix) - 1, n = strlen(path);
    if (n <= pl + sl || strncmp(path, prefix, pl) != 0 || strcmp(path + n - sl, suffix) != 0)
        return 0;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        *status = 405;
        *body = strdup("{\"message\":\"Method not allowed\"}");
        return 1;
    }
    char name[300];
    size_t nl = n - pl - sl;
    if (nl >= sizeof(name) || memchr(path + pl, '/', nl)) {
        *status = 404;
        *body = strdup("{\"message\":\"Not found\"}");
        return 1;
    }
    memcpy(name, path + pl, nl);
    name[nl] = 0;
    *body = dp_health_upstream_report(name, status);
    return 1;
}
