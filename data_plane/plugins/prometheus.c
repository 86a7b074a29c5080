/* prometheus (PRIORITY 13), Kong's kong/plugins/prometheus: the log phase records the request
 * in the calling worker's metric shard (metrics.h) for the families the config turns on
 * (status_code_metrics, latency_metrics, bandwidth_metrics; per_consumer adds the consumer
 * label), and GET /metrics on the status listener renders node gauges, the config version,
 * the recorded families and, when some instance sets upstream_health_metrics, the health of
 * every upstream target of the current generation. Kong's kong_* names become sluice_*;
 * kong_kong_latency_ms is sluice_gateway_latency_ms. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_plane/config/apply.h"
#include "data_plane/config/generation.h"
#include "data_plane/plugins/metrics.h"
#include "data_plane/plugins/plugin.h"
#include "data_plane/upstream/balancer.h"
#include "proto/version.h"

typedef struct {
    int per_consumer, status_codes, latency, bandwidth, upstream_health;
} prom_conf;

/* Live instances asking for target health: a scrape shows the family while any exists. */
static _Atomic int health_wanted;

static int prom_init(const json_t *config, const char *id, void *shared, void **state, char *err,
                     size_t errlen)
{
    prom_conf *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "prometheus: out of memory");
        return -1;
    }
    c->per_consumer = json_is_true(json_object_get(config, "per_consumer"));
    c->status_codes = json_is_true(json_object_get(config, "status_code_metrics"));
    c->latency = json_is_true(json_object_get(config, "latency_metrics"));
    c->bandwidth = json_is_true(json_object_get(config, "bandwidth_metrics"));
    c->upstream_health = json_is_true(json_object_get(config, "upstream_health_metrics"));
    if (c->upstream_health)
        atomic_fetch_add(&health_wanted, 1);
    *state = c;
    return 0;
}

static void prom_free(void *state)
{
    prom_conf *c = state;
    if (c && c->upstream_health)
        atomic_fetch_sub(&health_wanted, 1);
    free(c);
}

static void prom_log(void *state, dp_plugin_req *req, void **ctx)
{
    const prom_conf *c = state;
    dp_metric_labels l = {
        /* Kong: service name (else its id), route name (else its id) */
        .service = req->service_name ? req->service_name : req->service_id,
        .route = req->route_name ? req->route_name : req->route_id,
        .consumer = c->per_consumer && req->consumer ? req->consumer->username : NULL,
    };
    /* the response came from a plugin (exit), from the upstream (service), or from the gateway
     * itself: an error before any upstream answer (kong) */
    int proxied = req->upstream_latency_ms >= 0 && !req->response_status;
    if (c->status_codes) {
        l.code = req->status;
        l.source = req->response_status ? "exit" : proxied ? "service" : "kong";
        dp_metrics_add(DP_METRIC_HTTP_REQUESTS, &l, 1);
        l.code = 0;
        l.source = NULL;
    }
    if (c->latency) {
        dp_metric_labels h = {.service = l.service, .route = l.route};
        dp_metrics_observe(DP_METRIC_REQUEST_LATENCY, &h, (double)req->latency_ms);
        if (proxied) {
            dp_metrics_observe(DP_METRIC_UPSTREAM_LATENCY, &h, (double)req->upstream_latency_ms);
            long gw = req->latency_ms - req->upstream_latency_ms;
            dp_metrics_observe(DP_METRIC_GATEWAY_LATENCY, &h, (double)(gw > 0 ? gw : 0));
        } else {
            dp_metrics_observe(DP_METRIC_GATEWAY_LATENCY, &h, (double)req->latency_ms);
        }
    }
    if (c->bandwidth) {
        l.source = "ingress";
        dp_metrics_add(DP_METRIC_BANDWIDTH, &l, req->bytes_in);
        l.source = "egress";
        dp_metrics_add(DP_METRIC_BANDWIDTH, &l, req->bytes_out);
    }
}

const dp_plugin dp_plugin_prometheus = {
    .name = "prometheus",
    .init = prom_init,
    .free_state = prom_free,
    .log = prom_log,
};

/* --- the scrape --- */

static void target_health(dp_metrics_buf *b, const dp_generation *g)
{
    static const char *const states[] = {"healthy", "unhealthy", "dns_error", "healthchecks_off"};
    dp_metrics_printf(b, "# HELP sluice_upstream_target_health Health of each upstream target: 1 "
                         "for its current state\n"
                         "# TYPE sluice_upstream_target_health gauge\n");
    for (size_t i = 0; i < g->nupstreams; i++) {
        const dp_balancer *lb = g->upstreams[i].lb;
        if (!lb)
            continue;
        int checks = lb->hc.active_on || lb->hc.passive_on;
        for (size_t t = 0; t < lb->ntargets; t++) {
            const dp_lb_target *x = &lb->targets[t];
            const char *now =
                !checks ? "healthchecks_off"
                : x->hs && !atomic_load_explicit(&x->hs->healthy, memory_order_relaxed)
                    ? "unhealthy"
                    : "healthy";
            for (size_t s = 0; s < sizeof(states) / sizeof(states[0]); s++) {
                dp_metrics_printf(b, "sluice_upstream_target_health{upstream=\"");
                dp_metrics_escape(b, lb->name ? lb->name : "");
                dp_metrics_printf(b, "\",target=\"");
                dp_metrics_escape(b, x->name ? x->name : "");
                dp_metrics_printf(b, "\",state=\"%s\"} %d\n", states[s],
                                  strcmp(states[s], now) == 0);
            }
        }
    }
}

char *dp_prometheus_scrape(const dp_metrics_conns *conns, size_t *len)
{
    dp_metrics_buf b = {0};
    dp_metrics_printf(&b,
                      "# HELP sluice_node_info Information about this data plane\n"
                      "# TYPE sluice_node_info gauge\n"
                      "sluice_node_info{version=\"" SL_VERSION "\"} 1\n"
                      "# HELP sluice_connections_total Client connections by state\n"
                      "# TYPE sluice_connections_total gauge\n"
                      "sluice_connections_total{state=\"accepted\"} %lld\n"
                      "sluice_connections_total{state=\"active\"} %lld\n"
                      "sluice_connections_total{state=\"handled\"} %lld\n"
                      "# HELP sluice_requests_total Requests received by this node\n"
                      "# TYPE sluice_requests_total counter\n"
                      "sluice_requests_total %lld\n",
                      conns->accepted, conns->active, conns->handled, conns->requests);
    dp_generation *g = dp_config_current();
    dp_metrics_printf(&b,
                      "# HELP sluice_data_plane_config_version Version of the configuration in "
                      "use (-1: none yet)\n"
                      "# TYPE sluice_data_plane_config_version gauge\n"
                      "sluice_data_plane_config_version %lld\n",
                      g ? (long long)g->version : -1LL);
    if (g && g->hash[0])
        dp_metrics_printf(&b,
                          "# HELP sluice_data_plane_config_hash Hash of the configuration in use\n"
                          "# TYPE sluice_data_plane_config_hash gauge\n"
                          "sluice_data_plane_config_hash{hash=\"%s\"} 1\n",
                          g->hash);
    if (g && atomic_load(&health_wanted) > 0)
        target_health(&b, g);
    dp_generation_unref(g);
    dp_metrics_render(&b);
    dp_metrics_printf(&b,
                      "# HELP sluice_metrics_series_refused_total Observations not recorded "
                      "because a metrics table was full\n"
                      "# TYPE sluice_metrics_series_refused_total counter\n"
                      "sluice_metrics_series_refused_total %llu\n",
                      (unsigned long long)dp_metrics_refused());
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
