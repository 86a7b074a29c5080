/* Plugin chains: precedence resolved per route and consumer, disabled plugins, unknown plugin
 * names refused; shared rate-limit counters exact across threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "data_plane/plugins/counters.h"
#include "data_plane/plugins/plugin.h"

static const char *CONFIG =
    "{\"routes\": [{\"id\": \"r1\", \"service\": {\"id\": \"s1\"}},"
    "              {\"id\": \"r2\", \"service\": {\"id\": \"s1\"}},"
    "              {\"id\": \"r3\", \"service\": {\"id\": \"s2\"}}],"
    " \"consumers\": [{\"id\": \"c1\", \"username\": \"alice\"}, {\"id\": \"c2\"}],"
    " \"acls\": [{\"consumer\": {\"id\": \"c1\"}, \"group\": \"g1\"},"
    "            {\"consumer\": {\"id\": \"c1\"}, \"group\": \"g2\"}],"
    " \"plugins\": ["
    "  {\"id\": \"p1\", \"name\": \"rate-limiting\", \"config\": {\"hour\": 1}},"
    "  {\"id\": \"p2\", \"name\": \"rate-limiting\", \"service\": {\"id\": \"s1\"},"
    "   \"config\": {\"hour\": 2}},"
    "  {\"id\": \"p3\", \"name\": \"rate-limiting\", \"route\": {\"id\": \"r1\"},"
    "   \"config\": {\"hour\": 3}},"
    "  {\"id\": \"p4\", \"name\": \"rate-limiting\", \"consumer\": {\"id\": \"c1\"},"
    "   \"config\": {\"hour\": 4}},"
    "  {\"id\": \"p5\", \"name\": \"rate-limiting\", \"route\": {\"id\": \"r1\"},"
    "   \"consumer\": {\"id\": \"c1\"}, \"config\": {\"hour\": 5}},"
    "  {\"id\": \"p6\", \"name\": \"rate-limiting\", \"route\": {\"id\": \"r2\"},"
    "   \"config\": {\"hour\": 6}, \"enabled\": false}"
    " ]}";

/* The hour limit the chain applies on route index r for consumer id cid (NULL: none). */
static long limit_for(const dp_plugin_chain *c, size_t r, const char *cid)
{
    static char buf[8192];
    dp_arena a;
    dp_arena_init(&a, buf, sizeof(buf));
    dp_plugin_req req = {.arena = &a, .client_ip = DP_SLICE_LIT("10.0.0.1")};
    assert_int_equal(dp_plugin_req_begin(&req, c, r), 0);
    req.consumer = cid ? dp_plugin_consumer_by_id(req.gen, cid) : NULL;
    dp_plugin_run_access(c, &req);
    const dp_slice *v = dp_plugin_resp_header(&req, "X-RateLimit-Limit-Hour");
    long out = v ? strtol(v->p, NULL, 10) : -1;
    dp_arena_reset(&a);
    return out;
}

static void test_precedence(void **st)
{
    json_t *cfg = json_loads(CONFIG, 0, NULL);
    dp_plugin_chain c;
    char err[256] = "";
    assert_int_equal(dp_plugin_chain_build(&c, cfg, err, sizeof(err)), 0);
    assert_int_equal(c.n, 5);                     /* the disabled one is left out */
    assert_int_equal(limit_for(&c, 0, NULL), 3);  /* route > service > global */
    assert_int_equal(limit_for(&c, 0, "c1"), 5);  /* route+consumer > route */
    assert_int_equal(limit_for(&c, 0, "c2"), 3);  /* another consumer: the route's */
    assert_int_equal(limit_for(&c, 1, NULL), 2);  /* disabled route config: the service's */
    assert_int_equal(limit_for(&c, 1, "c1"), 4);  /* consumer > service */
    assert_int_equal(limit_for(&c, 2, NULL), 1);  /* global */
    assert_int_equal(limit_for(&c, 99, NULL), 1); /* no route: globals */
    dp_plugin_chain_free(&c);
    json_decref(cfg);
}

static void test_consumers_and_groups(void **st)
{
    json_t *cfg = json_loads(CONFIG, 0, NULL);
    dp_plugin_chain c;
    char err[256] = "";
    assert_int_equal(dp_plugin_chain_build(&c, cfg, err, sizeof(err)), 0);
    char buf[4096];
    dp_arena a;
    dp_arena_init(&a, buf, sizeof(buf));
    dp_plugin_req req = {.arena = &a};
    dp_plugin_req_begin(&req, &c, 0);
    const dp_consumer *alice = dp_plugin_consumer_by_username(req.gen, "alice");
    assert_non_null(alice);
    assert_string_equal(alice->id, "c1");
    assert_int_equal(alice->ngroups, 2);
    assert_string_equal(alice->groups[1], "g2");
    assert_null(dp_plugin_consumer_by_id(req.gen, "nope"));
    dp_plugin_chain_free(&c);
    json_decref(cfg);
}

static void test_unknown_plugin_refused(void **st)
{
    json_t *cfg = json_loads("{\"plugins\": [{\"id\": \"x\", \"name\": \"lua-magic\"}]}", 0, NULL);
    dp_plugin_chain c;
    char err[256] = "";
    assert_int_equal(dp_plugin_chain_build(&c, cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "lua-magic"));
    json_decref(cfg);
}

static void test_header_edits(void **st)
{
    char buf[8192];
    dp_arena a;
    dp_arena_init(&a, buf, sizeof(buf));
    dp_header hs[] = {{DP_SLICE_LIT("X-Consumer-ID"), DP_SLICE_LIT("forged")},
                      {DP_SLICE_LIT("Accept"), DP_SLICE_LIT("*/*")}};
    dp_plugin_req req = {.arena = &a, .headers = hs, .nheaders = 2};
    dp_consumer con = {.id = "c9", .username = "zed"};
    dp_plugin_authenticate(&req, &con, "cred1");
    const dp_slice *v = dp_plugin_req_header(&req, "x-consumer-id");
    assert_non_null(v);
    assert_int_equal(v->len, 2);
    assert_memory_equal(v->p, "c9", 2);
    assert_null(dp_plugin_req_header(&req, "X-Consumer-Custom-ID"));
    assert_non_null(dp_plugin_req_header(&req, "accept"));
    int n = 0;
    for (size_t i = 0; i < req.up_headers.n; i++)
        n += dp_slice_ieq(req.up_headers.items[i].name, "x-consumer-id");
    assert_int_equal(n, 1);
    assert_int_equal(dp_plugin_respond(&req, 403, "say \"no\"\n"), DP_PLUGIN_RESPOND);
    assert_string_equal(req.response_message, "say \\\"no\\\"\\u000a");
}

#define THREADS 4
#define TRIES 2000
#define LIMIT 3001

static dp_counter_key shared_key;
static int taken_by[THREADS];

static void *taker(void *arg)
{
    int *mine = arg;
    uint64_t count;
    for (int i = 0; i < TRIES; i++)
        *mine += dp_counter_take(&shared_key, LIMIT, 1000, &count);
    return NULL;
}

static void test_counters_exact_under_threads(void **st)
{
    dp_counter_key_digest(&shared_key, "exact", 5);
    shared_key.window_start = 0;
    shared_key.window_end = 3600;
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, taker, &taken_by[i]);
    int total = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        total += taken_by[i];
    }
    assert_int_equal(total, LIMIT);
    assert_int_equal(dp_counter_get(&shared_key, 1000), LIMIT);
    dp_counter_give_back(&shared_key, 1000);
    assert_int_equal(dp_counter_get(&shared_key, 1000), LIMIT - 1);
    /* an expired window counts from zero again */
    assert_int_equal(dp_counter_get(&shared_key, 3600), 0);
}

static void test_counters_stay_bounded(void **st)
{
    /* far more windows than slots: no failure, the newest ones are counted */
    uint64_t count = 0;
    for (int i = 0; i < DP_COUNTER_SHARDS * DP_COUNTER_SLOTS * 2; i++) {
        dp_counter_key k;
        dp_counter_key_digest(&k, &i, sizeof(i));
        k.window_start = 0;
        k.window_end = 100;
        assert_int_equal(dp_counter_take(&k, 10, 50, &count), 1);
    }
    assert_int_equal(count, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_consumers_and_groups),
        cmocka_unit_test(test_unknown_plugin_refused),
        cmocka_unit_test(test_header_edits),
        cmocka_unit_test(test_counters_exact_under_threads),
        cmocka_unit_test(test_counters_stay_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
