/* The balancer and shared health state: weighted round-robin order, ring stability,
 * least-connections, hashing keys, retries skipping tried targets, health counting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "data_plane/upstream/balancer.h"

static json_t *upstream(const char *name, const char *extra_json)
{
    char buf[2048];
    snprintf(buf, sizeof(buf), "{\"id\":\"id-%s\",\"name\":\"%s\"%s%s}", name, name,
             extra_json ? "," : "", extra_json ? extra_json : "");
    json_error_t e;
    json_t *u = json_loads(buf, 0, &e);
    assert_non_null(u);
    return u;
}

/* targets "host:port=weight" for upstream name */
static json_t *targets(const char *name, const char *const *specs, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        char t[128];
        int w;
        assert_int_equal(sscanf(specs[i], "%127[^=]=%d", t, &w), 2);
        char id[64], uid[64];
        snprintf(id, sizeof(id), "t%zu", i);
        snprintf(uid, sizeof(uid), "id-%s", name);
        json_array_append_new(a, json_pack("{s:s, s:s, s:i, s:{s:s}}", "id", id, "target", t,
                                           "weight", w, "upstream", "id", uid));
    }
    return a;
}

static dp_balancer *build(const char *name, const char *extra, const char *const *specs, size_t n)
{
    json_t *u = upstream(name, extra), *t = targets(name, specs, n);
    char err[256] = "";
    dp_balancer *b = dp_balancer_build(u, t, err, sizeof(err));
    if (!b)
        fail_msg("build: %s", err);
    json_decref(u);
    json_decref(t);
    return b;
}

static void test_wrr_weights_and_interleaving(void **state)
{
    const char *specs[] = {"10.0.0.1:80=1", "10.0.0.2:80=3", "10.0.0.3:80=0"};
    dp_balancer *b = build("wrr", NULL, specs, 3);
    int counts[3] = {0};
    int prev = -1, a_twice = 0;
    for (int i = 0; i < 400; i++) {
        const dp_lb_target *t = dp_balancer_pick(b, NULL, NULL);
        assert_non_null(t);
        int k = (int)dp_balancer_index(b, t);
        counts[k]++;
        if (k == 0 && prev == 0)
            a_twice++;
        prev = k;
    }
    assert_int_equal(counts[0], 100);
    assert_int_equal(counts[1], 300);
    assert_int_equal(counts[2], 0); /* weight 0: no traffic */
    assert_int_equal(a_twice, 0);
    dp_balancer_free(b);
}

static void test_wrr_skips_unhealthy_and_all_down_gives_null(void **state)
{
    const char *extra = "\"healthchecks\":{\"passive\":{\"unhealthy\":{\"http_failures\":1}}}";
    const char *specs[] = {"10.0.1.1:80=100", "10.0.1.2:80=100"};
    dp_balancer *b = build("down", extra, specs, 2);
    assert_true(b->hc.passive_on);
    dp_health_report_status(b->targets[0].hs, &b->hc, 0, 500);
    for (int i = 0; i < 10; i++)
        assert_ptr_equal(dp_balancer_pick(b, NULL, NULL), &b->targets[1]);
    dp_health_report_status(b->targets[1].hs, &b->hc, 0, 503);
    assert_null(dp_balancer_pick(b, NULL, NULL));
    dp_balancer_free(b);
}

static void test_threshold_makes_upstream_unhealthy(void **state)
{
    const char *extra =
        "\"healthchecks\":{\"threshold\":60,\"passive\":{\"unhealthy\":{\"tcp_failures\":1}}}";
    const char *specs[] = {"10.0.2.1:80=100", "10.0.2.2:80=100"};
    dp_balancer *b = build("thr", extra, specs, 2);
    assert_non_null(dp_balancer_pick(b, NULL, NULL));
    dp_health_report_tcp_failure(b->targets[0].hs, &b->hc, 0);
    /* 50% healthy weight < 60%: no peer even though one target is up */
    assert_null(dp_balancer_pick(b, NULL, NULL));
    dp_balancer_free(b);
}

static const char *key_target(dp_balancer *b, int k)
{
    char key[32];
    snprintf(key, sizeof(key), "client-%d", k);
    dp_header h = {DP_SLICE_LIT("x-user"), dp_slice_cstr(key)};
    dp_lb_request rq = {.headers = &h, .nheaders = 1};
    const dp_lb_target *t = dp_balancer_pick(b, &rq, NULL);
    assert_non_null(t);
    return t->name;
}

static void test_ring_moves_only_removed_targets_keys(void **state)
{
    const char *extra = "\"algorithm\":\"consistent-hashing\",\"hash_on\":\"header\","
                        "\"hash_on_header\":\"x-user\"";
    const char *four[] = {"10.1.0.1:80=100", "10.1.0.2:80=100", "10.1.0.3:80=100",
                          "10.1.0.4:80=100"};
    const char *three[] = {"10.1.0.1:80=100", "10.1.0.2:80=100", "10.1.0.4:80=100"};
    dp_balancer *b4 = build("ring4", extra, four, 4);
    dp_balancer *b3 = build("ring3", extra, three, 3);
    enum { KEYS = 10000 };
    int moved = 0, per[4] = {0};
    for (int k = 0; k < KEYS; k++) {
        const char *before = key_target(b4, k), *after = key_target(b3, k);
        per[before[7] - '1']++;
        if (strcmp(before, after) != 0) {
            moved++;
            assert_string_equal(before, "10.1.0.3:80"); /* only the removed target's keys */
        }
        assert_string_equal(before, key_target(b4, k)); /* stable for the same key */
    }
    assert_true(moved <= KEYS * 30 / 100);
    assert_true(moved >= KEYS * 15 / 100);
    for (int i = 0; i < 4; i++) /* roughly even spread */
        assert_true(per[i] > KEYS * 15 / 100 && per[i] < KEYS * 35 / 100);
    dp_balancer_free(b4);
    dp_balancer_free(b3);
}

static void test_hash_fallback_and_ip(void **state)
{
    const char *extra = "\"algorithm\":\"consistent-hashing\",\"hash_on\":\"header\","
                        "\"hash_on_header\":\"x-user\",\"hash_fallback\":\"ip\"";
    const char *specs[] = {"10.2.0.1:80=100", "10.2.0.2:80=100", "10.2.0.3:80=100"};
    dp_balancer *b = build("fb", extra, specs, 3);
    /* without the header: the client ip decides, the same each time; different ips spread */
    int seen[3] = {0};
    for (int ip = 0; ip < 60; ip++) {
        char a[32];
        snprintf(a, sizeof(a), "192.0.2.%d", ip);
        dp_lb_request rq = {.client_ip = dp_slice_cstr(a)};
        const dp_lb_target *t = dp_balancer_pick(b, &rq, NULL);
        for (int again = 0; again < 3; again++)
            assert_ptr_equal(dp_balancer_pick(b, &rq, NULL), t);
        seen[dp_balancer_index(b, t)] = 1;
    }
    assert_true(seen[0] && seen[1] && seen[2]);
    dp_balancer_free(b);
}

static void test_query_arg_and_cookie_keys(void **state)
{
    const char *specs[] = {"10.3.0.1:80=100", "10.3.0.2:80=100", "10.3.0.3:80=100",
                           "10.3.0.4:80=100"};
    dp_balancer *q = build("qa",
                           "\"algorithm\":\"consistent-hashing\",\"hash_on\":\"query_arg\","
                           "\"hash_on_query_arg\":\"user\"",
                           specs, 4);
    for (int i = 0; i < 20; i++) {
        char qs[64], qs2[64];
        snprintf(qs, sizeof(qs), "a=1&user=u%d&b=2", i);
        snprintf(qs2, sizeof(qs2), "user=u%d", i);
        dp_lb_request r1 = {.query = dp_slice_cstr(qs)}, r2 = {.query = dp_slice_cstr(qs2)};
        const dp_lb_target *t = dp_balancer_pick(q, &r1, NULL);
        assert_ptr_equal(dp_balancer_pick(q, &r2, NULL), t); /* only the argument counts */
    }
    dp_balancer_free(q);

    dp_balancer *c = build("ck",
                           "\"algorithm\":\"consistent-hashing\",\"hash_on\":\"cookie\","
                           "\"hash_on_cookie\":\"sticky\",\"hash_on_cookie_path\":\"/app\"",
                           specs, 4);
    dp_lb_ctx ctx = {0};
    const dp_lb_target *first = dp_balancer_pick(c, &(dp_lb_request){0}, &ctx);
    assert_non_null(first);
    assert_true(ctx.cookie_is_new);
    assert_int_equal(strlen(ctx.cookie), 32);
    char setc[256];
    assert_true(dp_balancer_cookie(c, &ctx, setc, sizeof(setc)) > 0);
    char want[128];
    snprintf(want, sizeof(want), "sticky=%s; Path=/app; HttpOnly", ctx.cookie);
    assert_string_equal(setc, want);
    /* the client sends it back: same target, nothing new to set */
    char cookie[128];
    snprintf(cookie, sizeof(cookie), "a=b; sticky=%s; c=d", ctx.cookie);
    dp_header h = {DP_SLICE_LIT("Cookie"), dp_slice_cstr(cookie)};
    for (int i = 0; i < 5; i++) {
        dp_lb_ctx ctx2 = {0};
        dp_lb_request rq = {.headers = &h, .nheaders = 1};
        assert_ptr_equal(dp_balancer_pick(c, &rq, &ctx2), first);
        assert_false(ctx2.cookie_is_new);
    }
    dp_balancer_free(c);
}

static void test_least_connections_weighted(void **state)
{
    const char *specs[] = {"10.4.0.1:80=100", "10.4.0.2:80=100", "10.4.0.3:80=300"};
    dp_balancer *b = build("lc", "\"algorithm\":\"least-connections\"", specs, 3);
    /* A has 2 in flight, B 1, C (weight 3x) 3: scores 3/100, 2/100, 4/300 -> C */
    for (int i = 0; i < 2; i++)
        dp_lb_acquire(&b->targets[0]);
    dp_lb_acquire(&b->targets[1]);
    for (int i = 0; i < 3; i++)
        dp_lb_acquire(&b->targets[2]);
    assert_ptr_equal(dp_balancer_pick(b, NULL, NULL), &b->targets[2]);
    for (int i = 0; i < 6; i++) /* C now has 9: 10/300 > 2/100 -> B */
        dp_lb_acquire(&b->targets[2]);
    assert_ptr_equal(dp_balancer_pick(b, NULL, NULL), &b->targets[1]);
    /* counts are shared: a second balancer of the same upstream sees them */
    dp_balancer *b2 = build("lc", "\"algorithm\":\"least-connections\"", specs, 3);
    assert_int_equal(atomic_load(&b2->targets[2].hs->active_conns), 9);
    dp_lb_release(&b->targets[1]);
    dp_lb_release(&b->targets[0]);
    dp_lb_release(&b->targets[0]);
    assert_ptr_equal(dp_balancer_pick(b2, NULL, NULL), &b2->targets[0]);
    dp_balancer_free(b);
    dp_balancer_free(b2);
}

static void test_retry_skips_tried_targets(void **state)
{
    const char *specs[] = {"10.5.0.1:80=100", "10.5.0.2:80=100", "10.5.0.3:80=100"};
    const char *extra = "\"algorithm\":\"consistent-hashing\",\"hash_on\":\"ip\"";
    dp_balancer *b = build("retry", extra, specs, 3);
    dp_lb_request rq = {.client_ip = DP_SLICE_LIT("198.51.100.7")};
    dp_lb_ctx ctx = {0};
    const dp_lb_target *seen[3];
    for (int i = 0; i < 3; i++) {
        seen[i] = dp_balancer_pick(b, &rq, &ctx);
        assert_non_null(seen[i]);
        for (int k = 0; k < i; k++)
            assert_ptr_not_equal(seen[i], seen[k]);
    }
    /* all tried: the sticky one again rather than nothing */
    assert_ptr_equal(dp_balancer_pick(b, &rq, &ctx), seen[0]);
    dp_balancer_free(b);
}

static void test_health_counters_and_shared_state(void **state)
{
    const char *extra =
        "\"healthchecks\":{\"passive\":{\"unhealthy\":{\"http_failures\":3,\"timeouts\":2},"
        "\"healthy\":{\"successes\":2}}}";
    const char *specs[] = {"10.6.0.1:80=100"};
    dp_balancer *b = build("hc", extra, specs, 1);
    dp_health_target *hs = b->targets[0].hs;
    dp_health_report_status(hs, &b->hc, 0, 500);
    dp_health_report_status(hs, &b->hc, 0, 500);
    dp_health_report_status(hs, &b->hc, 0, 200); /* a success clears the failures */
    dp_health_report_status(hs, &b->hc, 0, 500);
    dp_health_report_status(hs, &b->hc, 0, 404); /* in neither list */
    assert_int_equal(atomic_load(&hs->healthy), 1);
    dp_health_report_timeout(hs, &b->hc, 0);
    dp_health_report_timeout(hs, &b->hc, 0);
    assert_int_equal(atomic_load(&hs->healthy), 0);
    /* a new generation of the same upstream sees the state */
    dp_balancer *b2 = build("hc", extra, specs, 1);
    assert_ptr_equal(b2->targets[0].hs, hs);
    assert_null(dp_balancer_pick(b2, NULL, NULL));
    dp_balancer_free(b);
    dp_health_report_status(hs, &b2->hc, 0, 200);
    assert_int_equal(atomic_load(&hs->healthy), 0);
    dp_health_report_status(hs, &b2->hc, 0, 201);
    assert_int_equal(atomic_load(&hs->healthy), 1);
    assert_non_null(dp_balancer_pick(b2, NULL, NULL));
    dp_balancer_free(b2);
    /* once no generation has it, the state is gone: a new one starts healthy */
    dp_balancer *b3 = build("hc", extra, specs, 1);
    assert_int_equal(atomic_load(&b3->targets[0].hs->healthy), 1);
    dp_balancer_free(b3);
}

static void test_bad_target_is_refused(void **state)
{
    json_t *u = upstream("bad", NULL);
    json_t *t = json_pack("[{s:s, s:s, s:i, s:{s:s}}]", "id", "tb", "target", "host:99999",
                          "weight", 100, "upstream", "id", "id-bad");
    char err[256] = "";
    assert_null(dp_balancer_build(u, t, err, sizeof(err)));
    assert_non_null(strstr(err, "targets tb"));
    json_decref(u);
    json_decref(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrr_weights_and_interleaving),
        cmocka_unit_test(test_wrr_skips_unhealthy_and_all_down_gives_null),
        cmocka_unit_test(test_threshold_makes_upstream_unhealthy),
        cmocka_unit_test(test_ring_moves_only_removed_targets_keys),
        cmocka_unit_test(test_hash_fallback_and_ip),
        cmocka_unit_test(test_query_arg_and_cookie_keys),
        cmocka_unit_test(test_least_connections_weighted),
        cmocka_unit_test(test_retry_skips_tried_targets),
        cmocka_unit_test(test_health_counters_and_shared_state),
        cmocka_unit_test(test_bad_target_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
