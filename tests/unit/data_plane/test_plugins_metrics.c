/* Metrics: per-thread shards summed exactly at scrape time while threads record, histogram
 * buckets in Prometheus' cumulative form, label escaping, the bounded series table, and the
 * prometheus plugin's log phase feeding /metrics according to its config flags. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "data_plane/plugins/metrics.h"
#include "data_plane/plugins/plugin.h"
#include "proto/schema.h"

/* The value of the sample line that starts with prefix (name and labels), -1 when absent. */
static double sample(const char *text, const char *prefix)
{
    size_t pl = strlen(prefix);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, prefix, pl) == 0 && l[pl] == ' ')
            return strtod(l + pl + 1, NULL);
    return -1;
}

static char *render(void)
{
    dp_metrics_buf b = {0};
    dp_metrics_render(&b);
    assert_false(b.oom);
    dp_metrics_printf(&b, "%s", ""); /* NUL-terminated even when empty */
    return b.p;
}

#define THREADS 4
#define PER_THREAD 50000

static void *recorder(void *arg)
{
    dp_metric_labels l = {.service = "svc", .route = "r1", .code = 200, .source = "service"};
    dp_metric_labels h = {.service = "svc", .route = "r1"};
    for (int i = 0; i < PER_THREAD; i++) {
        dp_metrics_add(DP_METRIC_HTTP_REQUESTS, &l, 1);
        dp_metrics_observe(DP_METRIC_REQUEST_LATENCY, &h, (double)(i % 3 == 0 ? 3 : 150));
    }
    return NULL;
}

static void test_threads_sum_exactly(void **state)
{
    dp_metrics_reset();
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, recorder, NULL);
    /* scrapes while writers run never crash and never go backwards */
    double last = 0;
    for (int k = 0; k < 20; k++) {
        char *text = render();
        double v =
            sample(text, "sluice_http_requests_total{service=\"svc\",route=\"r1\",code=\"200\","
                         "source=\"service\",consumer=\"\"}");
        assert_true(v >= last || v == -1);
        if (v > 0)
            last = v;
        free(text);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    char *text = render();
    assert_true(sample(text, "sluice_http_requests_total{service=\"svc\",route=\"r1\",code="
                             "\"200\",source=\"service\",consumer=\"\"}") == THREADS * PER_THREAD);
    /* i % 3 == 0 -> 3 ms (bucket le=5), else 150 ms (bucket le=200) */
    double low = (PER_THREAD + 2) / 3 * THREADS;
    assert_true(sample(text, "sluice_request_latency_ms_bucket{service=\"svc\",route=\"r1\","
                             "le=\"00002.0\"}") == 0);
    assert_true(sample(text, "sluice_request_latency_ms_bucket{service=\"svc\",route=\"r1\","
                             "le=\"00005.0\"}") == low);
    assert_true(sample(text, "sluice_request_latency_ms_bucket{service=\"svc\",route=\"r1\","
                             "le=\"00100.0\"}") == low);
    assert_true(sample(text, "sluice_request_latency_ms_bucket{service=\"svc\",route=\"r1\","
                             "le=\"00200.0\"}") == THREADS * PER_THREAD);
    assert_true(sample(text, "sluice_request_latency_ms_bucket{service=\"svc\",route=\"r1\","
                             "le=\"+Inf\"}") == THREADS * PER_THREAD);
    assert_true(sample(text, "sluice_request_latency_ms_count{service=\"svc\",route=\"r1\"}") ==
                THREADS * PER_THREAD);
    assert_true(sample(text, "sluice_request_latency_ms_sum{service=\"svc\",route=\"r1\"}") ==
                low * 3 + (THREADS * PER_THREAD - low) * 150);
    assert_non_null(strstr(text, "# TYPE sluice_http_requests_total counter\n"));
    assert_non_null(strstr(text, "# TYPE sluice_request_latency_ms histogram\n"));
    free(text);
}

static void test_labels_escaped_and_sorted(void **state)
{
    dp_metrics_reset();
    dp_metric_labels a = {.service = "b\"q\\s\nx", .route = "r", .code = 404, .source = "kong"};
    dp_metric_labels b = {.service = "a", .route = "r", .code = 200, .source = "service"};
    dp_metrics_add(DP_METRIC_HTTP_REQUESTS, &a, 2);
    dp_metrics_add(DP_METRIC_HTTP_REQUESTS, &b, 5);
    char *text = render();
    const char *pa = strstr(text, "service=\"b\\\"q\\\\s\\nx\",route=\"r\",code=\"404\"");
    const char *pb = strstr(text, "service=\"a\",route=\"r\",code=\"200\"");
    assert_non_null(pa);
    assert_non_null(pb);
    assert_true(pb < pa); /* stable order: by service */
    free(text);
}

static void *many_series(void *arg)
{
    char name[32];
    for (int i = 0; i < DP_METRICS_SLOTS; i++) {
        snprintf(name, sizeof(name), "route-%d", i);
        dp_metric_labels l = {.service = "s", .route = name, .code = 200, .source = "service"};
        dp_metrics_add(DP_METRIC_HTTP_REQUESTS, &l, 1);
    }
    return NULL;
}

static void test_bounded_series(void **state)
{
    dp_metrics_reset();
    uint64_t before = dp_metrics_refused();
    pthread_t t; /* a fresh thread: its own, empty shard */
    pthread_create(&t, NULL, many_series, NULL);
    pthread_join(t, NULL);
    assert_true(dp_metrics_refused() > before); /* past the bound: refused and counted */
    char *text = render();
    assert_true(sample(text, "sluice_http_requests_total{service=\"s\",route=\"route-0\","
                             "code=\"200\",source=\"service\",consumer=\"\"}") == 1);
    free(text);
}

/* --- the plugin --- */

static json_t *plugin_config(const char *conf)
{
    json_error_t je;
    json_t *p = json_loads(conf, 0, &je);
    assert_non_null(p);
    json_t *errors = NULL;
    if (sl_schema_validate(sl_entity_by_name("plugins"), p, SL_VALIDATE_JSON, &errors) != 0)
        fail_msg("refused: %s", json_dumps(errors, 0));
    json_decref(errors);
    json_object_set_new(p, "id", json_string("5a1b0000-0000-4000-8000-000000000009"));
    return json_pack("{s:[o],s:[]}", "plugins", p, "routes");
}

static void log_request(dp_plugin_chain *c, const char *route, int status, long latency,
                        long upstream, int exit_status, const char *consumer)
{
    char mem[8192];
    dp_arena a;
    dp_arena_init(&a, mem, sizeof(mem));
    dp_plugin_req r = {0};
    r.arena = &a;
    r.route_name = route;
    r.service_name = "orders";
    r.status = status;
    r.latency_ms = latency;
    r.upstream_latency_ms = upstream;
    r.response_status = exit_status;
    r.bytes_in = 10;
    r.bytes_out = 1000;
    dp_consumer cons = {.id = "c1", .username = consumer};
    r.consumer = consumer ? &cons : NULL;
    assert_int_equal(dp_plugin_req_begin(&r, c, 0), 0);
    dp_plugin_run_log(c, &r);
    dp_arena_reset(&a);
}

static void test_plugin_records_by_flags(void **state)
{
    dp_metrics_reset();
    dp_plugin_chain c;
    char err[256] = "";
    json_t *config = plugin_config(
        "{\"name\":\"prometheus\",\"config\":{\"status_code_metrics\":true,"
        "\"latency_metrics\":true,\"bandwidth_metrics\":true,\"per_consumer\":true}}");
    assert_int_equal(dp_plugin_chain_build(&c, config, err, sizeof(err)), 0);
    log_request(&c, "list", 200, 30, 20, 0, "alice"); /* proxied */
    log_request(&c, "list", 200, 40, 25, 0, "alice");
    log_request(&c, "list", 401, 1, -1, 401, NULL); /* a plugin answered */
    log_request(&c, "list", 502, 5, -1, 0, NULL);   /* the gateway answered */
    dp_metrics_conns conns = {.accepted = 7, .active = 2, .handled = 5, .requests = 9};
    size_t len;
    char *text = dp_prometheus_scrape(&conns, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    assert_true(sample(text, "sluice_http_requests_total{service=\"orders\",route=\"list\","
                             "code=\"200\",source=\"service\",consumer=\"alice\"}") == 2);
    assert_true(sample(text, "sluice_http_requests_total{service=\"orders\",route=\"list\","
                             "code=\"401\",source=\"exit\",consumer=\"\"}") == 1);
    assert_true(sample(text, "sluice_http_requests_total{service=\"orders\",route=\"list\","
                             "code=\"502\",source=\"kong\",consumer=\"\"}") == 1);
    assert_true(sample(text, "sluice_upstream_latency_ms_count{service=\"orders\",route="
                             "\"list\"}") == 2);
    assert_true(sample(text, "sluice_upstream_latency_ms_sum{service=\"orders\",route="
                             "\"list\"}") == 45);
    assert_true(sample(text, "sluice_gateway_latency_ms_sum{service=\"orders\",route="
                             "\"list\"}") == 10 + 15 + 1 + 5);
    assert_true(sample(text, "sluice_request_latency_ms_count{service=\"orders\",route="
                             "\"list\"}") == 4);
    assert_true(sample(text, "sluice_bandwidth_bytes{service=\"orders\",route=\"list\","
                             "direction=\"egress\",consumer=\"alice\"}") == 2000);
    assert_true(sample(text, "sluice_bandwidth_bytes{service=\"orders\",route=\"list\","
                             "direction=\"ingress\",consumer=\"\"}") == 20);
    assert_true(sample(text, "sluice_connections_total{state=\"accepted\"}") == 7);
    assert_true(sample(text, "sluice_connections_total{state=\"active\"}") == 2);
    assert_true(sample(text, "sluice_requests_total") == 9);
    assert_true(sample(text, "sluice_data_plane_config_version") == -1); /* none loaded */
    free(text);
    dp_plugin_chain_free(&c);
    json_decref(config);

    /* Kong's defaults: every optional family off, so nothing is recorded */
    dp_metrics_reset();
    config = plugin_config("{\"name\":\"prometheus\"}");
    assert_int_equal(dp_plugin_chain_build(&c, config, err, sizeof(err)), 0);
    log_request(&c, "quiet", 200, 3, 1, 0, NULL);
    text = dp_prometheus_scrape(&conns, &len);
    assert_null(strstr(text, "route=\"quiet\""));
    free(text);
    dp_plugin_chain_free(&c);
    json_decref(config);
}

static void test_refused_configs(void **state)
{
    json_t *p =
        json_loads("{\"name\":\"prometheus\",\"config\":{\"per_consumer\":\"yes\"}}", 0, NULL);
    json_t *errors = NULL;
    assert_true(sl_schema_validate(sl_entity_by_name("plugins"), p, SL_VALIDATE_JSON, &errors) > 0);
    json_decref(errors);
    json_decref(p);
    p = json_loads("{\"name\":\"prometheus\",\"config\":{\"no_such_flag\":true}}", 0, NULL);
    errors = NULL;
    assert_true(sl_schema_validate(sl_entity_by_name("plugins"), p, SL_VALIDATE_JSON, &errors) > 0);
    json_decref(errors);
    json_decref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_sum_exactly),
        cmocka_unit_test(test_labels_escaped_and_sorted),
        cmocka_unit_test(test_bounded_series),
        cmocka_unit_test(test_plugin_records_by_flags),
        cmocka_unit_test(test_refused_configs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
