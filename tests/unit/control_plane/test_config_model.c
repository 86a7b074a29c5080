/* The control plane's in-memory config: after any sequence of changes its hash is exactly the
 * hash of a full snapshot of the same config (what data planes verify), its deltas carry the
 * right base and only the real changes, and the plugin list that gates data planes follows
 * enabled plugins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control_plane/cluster/config_model.h"
#include "proto/config_hash.h"
#include "proto/schema.h"
#include "proto/snapshot.h"
#include "proto/snapshot_delta.h"

#define SVC1 "11111111-1111-4111-8111-111111111111"
#define SVC2 "22222222-2222-4222-8222-222222222222"
#define RT1 "33333333-3333-4333-8333-333333333333"
#define RT2 "44444444-4444-4444-8444-444444444444"
#define RT3 "55555555-5555-4555-8555-555555555555"
#define PL1 "66666666-6666-4666-8666-666666666666"
#define PL2 "77777777-7777-4777-8777-777777777777"
#define PL3 "88888888-8888-4888-8888-888888888888"

/* A row as the store returns it: defaults filled by the schema, every field present. */
static json_t *stored(const char *entity, json_t *row)
{
    const sl_entity *e = sl_entity_by_name(entity);
    assert_non_null(e);
    json_object_set_new(row, "created_at", json_integer(1700000000));
    if (sl_entity_field(e, "updated_at"))
        json_object_set_new(row, "updated_at", json_integer(1700000001));
    json_t *errs = NULL;
    assert_int_equal(sl_schema_validate(e, row, SL_VALIDATE_JSON, &errs), 0);
    json_decref(errs);
    for (size_t i = 0; i < e->nfields; i++)
        if (!json_object_get(row, e->fields[i].name))
            json_object_set_new(row, e->fields[i].name, json_null());
    return row;
}

static json_t *service(const char *id, const char *name, const char *host)
{
    return stored("services", json_pack("{s:s, s:s, s:s}", "id", id, "name", name, "host", host));
}

static json_t *route(const char *id, const char *path, const char *svc)
{
    return stored("routes", json_pack("{s:s, s:[s], s:{s:s}}", "id", id, "paths", path, "service",
                                      "id", svc));
}

static json_t *plugin(const char *id, const char *name, int enabled)
{
    return stored("plugins",
                  json_pack("{s:s, s:s, s:b}", "id", id, "name", name, "enabled", enabled));
}

/* The hash a full snapshot of config has: what the model must agree with. */
static void full_hash(const json_t *config, char hash[SL_SNAPSHOT_HASH_HEX])
{
    sl_snapshot s;
    char err[256];
    assert_int_equal(sl_snapshot_encode(config, 1, &s, err, sizeof(err)), 0);
    memcpy(hash, s.hash, SL_SNAPSHOT_HASH_HEX);
    sl_snapshot_free(&s);

    /* and the same from the digests alone */
    sl_row_digests *d = calloc(sl_entity_count, sizeof(*d));
    char hex[65];
    assert_int_equal(sl_config_digests(config, d, err, sizeof(err)), 0);
    sl_config_hash(d, hex);
    assert_string_equal(hex, hash);
    sl_config_digests_free(d);
    free(d);
}

/* v1: two services, routes 1 and 2, a cors plugin and a disabled key-auth plugin. */
static json_t *config_v1(void)
{
    return json_pack("{s:[o,o], s:[o,o], s:[o,o]}", "services", service(SVC1, "one", "one.example"),
                     service(SVC2, "two", "two.example"), "routes", route(RT1, "/one", SVC1),
                     route(RT2, "/two", SVC2), "plugins", plugin(PL1, "cors", 1),
                     plugin(PL2, "key-auth", 0));
}

static void load_v1(cp_config_model *m)
{
    json_t *cfg = config_v1();
    char err[256];
    int has_delta = 1;
    sl_delta d;
    memset(&d, 0, sizeof(d));
    assert_int_equal(cp_config_model_init(m), 0);
    assert_int_equal(cp_config_model_load(m, cfg, 7, &d, &has_delta, err, sizeof(err)), 0);
    assert_int_equal(has_delta, 0); /* nothing to compare with */
    json_decref(cfg);
}

static int has_name(const json_t *arr, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (strcmp(json_string_value(v), name) == 0) return 1;
    return 0;
}

static void test_load_matches_full_snapshot(void **state)
{
    cp_config_model m;
    load_v1(&m);
    json_t *cfg = config_v1();
    char want[SL_SNAPSHOT_HASH_HEX];
    full_hash(cfg, want);
    assert_true(m.loaded);
    assert_int_equal(m.version, 7);
    assert_string_equal(m.hash, want);
    assert_int_equal(cp_config_model_count(&m, "routes"), 2);

    /* The model's own full snapshot decodes to the same config and hash. */
    sl_snapshot s;
    char err[256];
    assert_int_equal(cp_config_model_snapshot(&m, &s, err, sizeof(err)), 0);
    assert_int_equal(s.version, 7);
    assert_string_equal(s.hash, want);
    json_t *back = NULL;
    int64_t v;
    char h[SL_SNAPSHOT_HASH_HEX];
    assert_int_equal(sl_snapshot_decode(s.bytes, s.len, 0, &back, &v, h, NULL, err, sizeof(err)),
                     0);
    assert_int_equal(json_array_size(json_object_get(back, "routes")), 2);
    assert_int_equal(json_array_size(json_object_get(back, "services")), 2);
    json_decref(back);
    sl_snapshot_free(&s);
    json_decref(cfg);
    cp_config_model_free(&m);
}

static void test_apply_gives_full_hash_and_a_delta_from_the_base(void **state)
{
    cp_config_model m;
    load_v1(&m);
    char base_hash[SL_SNAPSHOT_HASH_HEX];
    memcpy(base_hash, m.hash, sizeof(base_hash));

    /* v9: route 1 moves to /uno, route 3 added, route 2 deleted. */
    json_t *up =
        json_pack("{s:[o,o]}", "routes", route(RT1, "/uno", SVC1), route(RT3, "/three", SVC2));
    json_t *del = json_pack("{s:[s]}", "routes", RT2);
    sl_delta d;
    char err[256];
    assert_int_equal(cp_config_model_apply(&m, up, del, 9, &d, err, sizeof(err)), 0);

    json_t *expect = json_pack(
        "{s:[o,o], s:[o,o], s:[o,o]}", "services", service(SVC1, "one", "one.example"),
        service(SVC2, "two", "two.example"), "routes", route(RT1, "/uno", SVC1),
        route(RT3, "/three", SVC2), "plugins", plugin(PL1, "cors", 1), plugin(PL2, "key-auth", 0));
    char want[SL_SNAPSHOT_HASH_HEX];
    full_hash(expect, want);
    assert_int_equal(m.version, 9);
    assert_string_equal(m.hash, want);
    assert_string_not_equal(m.hash, base_hash);

    assert_int_equal(d.base_version, 7);
    assert_string_equal(d.base_hash, base_hash);
    assert_int_equal(d.version, 9);
    assert_string_equal(d.hash, want);
    sl_delta_decoded dd;
    assert_int_equal(sl_delta_decode(d.bytes, d.len, NULL, &dd, NULL, err, sizeof(err)), 0);
    assert_int_equal(dd.nupserts, 2);
    assert_string_equal(dd.upserts[0].id, RT1);
    assert_string_equal(dd.upserts[1].id, RT3);
    assert_int_equal(dd.ndeletes, 1);
    assert_string_equal(dd.deletes[0].id, RT2);
    assert_string_equal(dd.deletes[0].entity->name, "routes");
    sl_delta_decoded_free(&dd);
    sl_delta_free(&d);

    /* The full snapshot now has the new rows. */
    json_t *cfg = cp_config_model_config(&m);
    json_t *routes = json_object_get(cfg, "routes");
    assert_int_equal(json_array_size(routes), 2);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(json_array_get(routes, 0), "paths"), 0)),
        "/uno");
    json_decref(cfg);
    json_decref(expect);
    json_decref(up);
    json_decref(del);
    cp_config_model_free(&m);
}

static void test_unchanged_rows_and_unknown_deletes_are_left_out(void **state)
{
    cp_config_model m;
    load_v1(&m);
    char before[SL_SNAPSHOT_HASH_HEX];
    memcpy(before, m.hash, sizeof(before));
    /* Route 1 written again as it was; a row created and deleted since version 7. */
    json_t *up = json_pack("{s:[o]}", "routes", route(RT1, "/one", SVC1));
    json_t *del = json_pack("{s:[s]}", "routes", RT3);
    sl_delta d;
    char err[256];
    assert_int_equal(cp_config_model_apply(&m, up, del, 8, &d, err, sizeof(err)), 0);
    assert_int_equal(m.version, 8);
    assert_string_equal(m.hash, before);
    sl_delta_decoded dd;
    assert_int_equal(sl_delta_decode(d.bytes, d.len, NULL, &dd, NULL, err, sizeof(err)), 0);
    assert_int_equal(dd.nupserts, 0);
    assert_int_equal(dd.ndeletes, 0);
    assert_int_equal(dd.base_version, 7);
    assert_int_equal(dd.version, 8);
    sl_delta_decoded_free(&dd);
    sl_delta_free(&d);
    json_decref(up);
    json_decref(del);
    cp_config_model_free(&m);
}

static void test_malformed_changes_leave_the_model_as_it_was(void **state)
{
    cp_config_model m;
    load_v1(&m);
    char before[SL_SNAPSHOT_HASH_HEX];
    memcpy(before, m.hash, sizeof(before));
    sl_delta d;
    char err[256];
    /* A valid upsert next to one of an entity nobody knows: neither is applied. */
    json_t *up =
        json_pack("{s:[o], s:[{s:s}]}", "routes", route(RT3, "/three", SVC1), "widgets", "id", RT1);
    assert_int_equal(cp_config_model_apply(&m, up, NULL, 8, &d, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "widgets"));
    json_decref(up);
    /* A row without an id. */
    up = json_pack("{s:[{s:[s]}]}", "routes", "paths", "/x");
    assert_int_equal(cp_config_model_apply(&m, up, NULL, 8, &d, err, sizeof(err)), -1);
    json_decref(up);
    assert_true(m.loaded);
    assert_int_equal(m.version, 7);
    assert_string_equal(m.hash, before);
    assert_int_equal(cp_config_model_count(&m, "routes"), 2);
    cp_config_model_free(&m);
}

static void test_reload_gives_the_difference_as_a_delta(void **state)
{
    cp_config_model m;
    load_v1(&m);
    char base_hash[SL_SNAPSHOT_HASH_HEX];
    memcpy(base_hash, m.hash, sizeof(base_hash));
    /* v12 read whole: service 2 renamed, route 2 gone. */
    json_t *cfg =
        json_pack("{s:[o,o], s:[o], s:[o,o]}", "services", service(SVC1, "one", "one.example"),
                  service(SVC2, "deux", "two.example"), "routes", route(RT1, "/one", SVC1),
                  "plugins", plugin(PL1, "cors", 1), plugin(PL2, "key-auth", 0));
    sl_delta d;
    memset(&d, 0, sizeof(d));
    int has_delta = 0;
    char err[256], want[SL_SNAPSHOT_HASH_HEX];
    assert_int_equal(cp_config_model_load(&m, cfg, 12, &d, &has_delta, err, sizeof(err)), 0);
    full_hash(cfg, want);
    assert_string_equal(m.hash, want);
    assert_int_equal(has_delta, 1);
    sl_delta_decoded dd;
    assert_int_equal(sl_delta_decode(d.bytes, d.len, NULL, &dd, NULL, err, sizeof(err)), 0);
    assert_int_equal(dd.base_version, 7);
    assert_string_equal(dd.base_hash, base_hash);
    assert_int_equal(dd.version, 12);
    assert_string_equal(dd.hash, want);
    assert_int_equal(dd.nupserts, 1);
    assert_string_equal(dd.upserts[0].id, SVC2);
    assert_int_equal(dd.ndeletes, 1);
    assert_string_equal(dd.deletes[0].id, RT2);
    sl_delta_decoded_free(&dd);
    sl_delta_free(&d);
    json_decref(cfg);
    cp_config_model_free(&m);
}

static void test_plugins_used_follows_enabled_plugins(void **state)
{
    cp_config_model m;
    load_v1(&m);
    json_t *used = cp_config_model_plugins_used(&m);
    assert_int_equal(json_array_size(used), 1);
    assert_true(has_name(used, "cors"));
    json_decref(used);

    /* key-auth enabled, a second cors plugin, the first cors deleted: cors still listed once. */
    json_t *up =
        json_pack("{s:[o,o]}", "plugins", plugin(PL2, "key-auth", 1), plugin(PL3, "cors", 1));
    sl_delta d;
    char err[256];
    assert_int_equal(cp_config_model_apply(&m, up, NULL, 8, &d, err, sizeof(err)), 0);
    sl_delta_free(&d);
    used = cp_config_model_plugins_used(&m);
    assert_int_equal(json_array_size(used), 2);
    assert_true(has_name(used, "cors"));
    assert_true(has_name(used, "key-auth"));
    json_decref(used);
    json_decref(up);

    json_t *del = json_pack("{s:[s,s]}", "plugins", PL1, PL3);
    assert_int_equal(cp_config_model_apply(&m, NULL, del, 9, &d, err, sizeof(err)), 0);
    sl_delta_free(&d);
    used = cp_config_model_plugins_used(&m);
    assert_int_equal(json_array_size(used), 1);
    assert_true(has_name(used, "key-auth"));
    json_decref(used);
    json_decref(del);
    cp_config_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_matches_full_snapshot),
        cmocka_unit_test(test_apply_gives_full_hash_and_a_delta_from_the_base),
        cmocka_unit_test(test_unchanged_rows_and_unknown_deletes_are_left_out),
        cmocka_unit_test(test_malformed_changes_leave_the_model_as_it_was),
        cmocka_unit_test(test_reload_gives_the_difference_as_a_delta),
        cmocka_unit_test(test_plugins_used_follows_enabled_plugins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
