/* The data plane registry behind GET /clustering/data-planes: what an operator sees about each
 * data plane as it connects, acks, rejects, reconnects and goes away. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "control_plane/cluster/registry.h"

#define A "11111111-1111-4111-8111-111111111111"
#define B "22222222-2222-4222-8222-222222222222"
#define C "33333333-3333-4333-8333-333333333333"
#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"

static json_t *entry(cp_registry *r, const char *id)
{
    json_t *list = cp_registry_list(r);
    json_t *found = NULL, *e;
    size_t i;
    json_array_foreach(list, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "id")), id) == 0)
            found = json_incref(e);
    }
    json_decref(list);
    return found;
}

static const char *str(json_t *e, const char *k)
{
    return json_string_value(json_object_get(e, k));
}

static long long num(json_t *e, const char *k)
{
    return (long long)json_integer_value(json_object_get(e, k));
}

static void test_connect_shows_every_field(void **state)
{
    cp_registry *r = cp_registry_new(0);
    assert_true(cp_registry_connect(r, A, "dp-a", "10.0.0.5", "0.1.0", 3, H1, 1000) > 0);
    json_t *e = entry(r, A);
    assert_non_null(e);
    assert_string_equal(str(e, "hostname"), "dp-a");
    assert_string_equal(str(e, "ip"), "10.0.0.5");
    assert_string_equal(str(e, "version"), "0.1.0");
    assert_int_equal(num(e, "config_version"), 3);
    assert_string_equal(str(e, "config_hash"), H1);
    assert_int_equal(num(e, "last_seen"), 1000);
    assert_string_equal(str(e, "sync_status"), "unknown");
    assert_true(json_is_true(json_object_get(e, "connected")));
    assert_true(json_is_null(json_object_get(e, "error")));
    json_decref(e);
    cp_registry_free(r);
}

static void test_ack_error_ping_status(void **state)
{
    cp_registry *r = cp_registry_new(0);
    cp_registry_connect(r, A, "dp-a", "10.0.0.5", "0.1.0", 0, "", 1000);
    cp_registry_ack(r, A, 4, H1, 1001);
    json_t *e = entry(r, A);
    assert_string_equal(str(e, "sync_status"), "normal");
    assert_int_equal(num(e, "config_version"), 4);
    assert_string_equal(str(e, "config_hash"), H1);
    json_decref(e);

    json_t *errors = json_pack("[{s:s,s:s}]", "entity", "routes", "id", "r1");
    cp_registry_error(r, A, 5, H2, "route r1: unknown service", errors, 1002);
    json_decref(errors);
    e = entry(r, A);
    assert_string_equal(str(e, "sync_status"), "config_rejected");
    /* The rejected snapshot does not change what the data plane serves. */
    assert_int_equal(num(e, "config_version"), 4);
    json_t *err = json_object_get(e, "error");
    assert_string_equal(str(err, "message"), "route r1: unknown service");
    assert_int_equal(num(err, "version"), 5);
    assert_string_equal(str(json_array_get(json_object_get(err, "errors"), 0), "id"), "r1");
    json_decref(e);

    cp_registry_seen(r, A, 4, H1, 1010);
    e = entry(r, A);
    assert_int_equal(num(e, "last_seen"), 1010);
    assert_string_equal(str(e, "sync_status"), "config_rejected");
    json_decref(e);

    cp_registry_ack(r, A, 6, H2, 1011);
    e = entry(r, A);
    assert_string_equal(str(e, "sync_status"), "normal");
    assert_true(json_is_null(json_object_get(e, "error")));
    json_decref(e);

    cp_registry_set_status(r, A, "plugin_set_incompatible");
    e = entry(r, A);
    assert_string_equal(str(e, "sync_status"), "plugin_set_incompatible");
    json_decref(e);
    cp_registry_free(r);
}

static void test_reconnect_before_old_close_stays_connected(void **state)
{
    cp_registry *r = cp_registry_new(0);
    uint64_t first = cp_registry_connect(r, A, "dp-a", "10.0.0.5", "0.1.0", 0, "", 1000);
    uint64_t second = cp_registry_connect(r, A, "dp-a", "10.0.0.6", "0.1.0", 0, "", 1001);
    assert_true(second != first);
    cp_registry_disconnect(r, A, first); /* the old connection closes late */
    json_t *e = entry(r, A);
    assert_true(json_is_true(json_object_get(e, "connected")));
    assert_string_equal(str(e, "ip"), "10.0.0.6");
    json_decref(e);
    cp_registry_disconnect(r, A, second);
    e = entry(r, A);
    assert_true(json_is_false(json_object_get(e, "connected")));
    json_decref(e);
    json_t *list = cp_registry_list(r);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    cp_registry_free(r);
}

static void test_bounded_table_evicts_longest_disconnected(void **state)
{
    cp_registry *r = cp_registry_new(2);
    uint64_t a = cp_registry_connect(r, A, "a", "1.1.1.1", "0.1.0", 0, "", 1000);
    uint64_t b = cp_registry_connect(r, B, "b", "1.1.1.2", "0.1.0", 0, "", 1001);
    /* Full of connected planes: a third is refused rather than hiding a live one. */
    assert_int_equal(cp_registry_connect(r, C, "c", "1.1.1.3", "0.1.0", 0, "", 1002), 0);
    cp_registry_disconnect(r, B, b);
    cp_registry_disconnect(r, A, a);
    cp_registry_seen(r, B, 0, "", 1005); /* B was seen more recently than A */
    assert_true(cp_registry_connect(r, C, "c", "1.1.1.3", "0.1.0", 0, "", 1006) > 0);
    json_t *ea = entry(r, A), *eb = entry(r, B), *ec = entry(r, C);
    assert_null(ea);
    assert_non_null(eb);
    assert_non_null(ec);
    json_decref(eb);
    json_decref(ec);
    cp_registry_free(r);
}

typedef struct {
    cp_registry *r;
    int stop;
} race;

static void *reader(void *arg)
{
    race *rc = arg;
    size_t reads = 0;
    while (!__atomic_load_n(&rc->stop, __ATOMIC_ACQUIRE) || reads < 100) {
        json_t *l = cp_registry_list(rc->r);
        size_t i;
        json_t *e;
        json_array_foreach(l, i, e)
        {
            /* Every listed entry is whole: never a half-written hash. */
            const char *h = str(e, "config_hash");
            if (!h || (strlen(h) != 0 && strlen(h) != 64))
                return (void *)1;
        }
        json_decref(l);
        reads++;
    }
    return NULL;
}

static void test_readers_on_other_threads(void **state)
{
    race rc = {cp_registry_new(0), 0};
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, reader, &rc);
    json_t *errors = json_pack("[{s:s}]", "entity", "routes");
    for (int i = 0; i < 2000; i++) {
        const char *id = (i % 2) ? A : B;
        uint64_t conn = cp_registry_connect(rc.r, id, "h", "1.1.1.1", "0.1.0", i, H1, i);
        cp_registry_ack(rc.r, id, i, (i % 3) ? H1 : H2, i);
        cp_registry_error(rc.r, id, i, H2, "rejected", errors, i);
        cp_registry_disconnect(rc.r, id, conn);
    }
    json_decref(errors);
    __atomic_store_n(&rc.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 3; i++) {
        void *res;
        pthread_join(t[i], &res);
        assert_null(res);
    }
    cp_registry_free(rc.r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_shows_every_field),
        cmocka_unit_test(test_ack_error_ping_status),
        cmocka_unit_test(test_reconnect_before_old_close_stays_connected),
        cmocka_unit_test(test_bounded_table_evicts_longest_disconnected),
        cmocka_unit_test(test_readers_on_other_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
