/* The store's pure parts: SQL built from a schema table keeps values out of the SQL text,
 * rows decode back to Admin API JSON, offsets round-trip, and PostgreSQL constraint errors are
 * traced back to the schema key Kong would name. No database needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control_plane/store/store_internal.h"

/* A small entity shaped like the real ones, so the tests do not move with schema edits. */
static const sl_field widget_fields[] = {
    {.name = "id", .type = SL_T_UUID, .flags = SL_F_AUTO},
    {.name = "created_at", .type = SL_T_TIMESTAMP, .flags = SL_F_AUTO},
    {.name = "updated_at", .type = SL_T_TIMESTAMP, .flags = SL_F_AUTO},
    {.name = "name", .type = SL_T_STRING, .flags = SL_F_UNIQUE},
    {.name = "port", .type = SL_T_INTEGER},
    {.name = "enabled", .type = SL_T_BOOLEAN},
    {.name = "service", .type = SL_T_FOREIGN, .ref = "services"},
    {.name = "paths", .type = SL_T_ARRAY, .elem = SL_T_STRING},
    {.name = "codes", .type = SL_T_ARRAY, .elem = SL_T_INTEGER},
    {.name = "config", .type = SL_T_JSON},
    {.name = "snis", .type = SL_T_SET, .elem = SL_T_STRING, .flags = SL_F_TRANSIENT},
};

static const sl_entity widgets = {
    .name = "widgets",
    .singular = "widget",
    .endpoint = "widgets",
    .fields = widget_fields,
    .nfields = sizeof(widget_fields) / sizeof(widget_fields[0]),
    .unique_together = (const char *const[]){"name", "service", NULL},
};

static const sl_field *field(const char *name)
{
    for (size_t i = 0; i < widgets.nfields; i++)
        if (strcmp(widget_fields[i].name, name) == 0)
            return &widget_fields[i];
    return NULL;
}

static void test_lua_pretty_matches_kong_messages(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:s}", "name", "x");
    char *s = cp_lua_pretty(v);
    assert_string_equal(s, "{name=\"x\"}");
    free(s);
    json_decref(v);

    /* Keys sorted, nulls spelled null, foreign keys nested: Kong's plugin cache key. */
    v = json_pack("{s:{s:s},s:s,s:n,s:n}", "service", "id", "abc", "name", "basic-auth", "route",
                  "consumer");
    s = cp_lua_pretty(v);
    assert_string_equal(s, "{consumer=null,name=\"basic-auth\",route=null,service={id=\"abc\"}}");
    free(s);
    json_decref(v);

    v = json_pack("{s:s,s:i,s:b}", "my-key", "a\"b", "n", 5, "ok", 1);
    s = cp_lua_pretty(v);
    assert_string_equal(s, "{[\"my-key\"]=\"a\\\"b\",n=5,ok=true}");
    free(s);
    json_decref(v);
}

static void test_offset_round_trip_and_garbage(void **state)
{
    (void)state;
    const char *id = "3f2b8c9e-1d4a-4b6f-9a7e-0c5d2e1f4a6b";
    char *off = cp_offset_encode(id);
    assert_non_null(off);
    assert_null(strpbrk(off, "+/=")); /* travels in a query string unescaped */
    char back[37];
    assert_int_equal(cp_offset_decode(off, back), 0);
    assert_string_equal(back, id);
    free(off);

    assert_int_equal(cp_offset_decode("x", back), -1);
    assert_int_equal(cp_offset_decode("", back), -1);
    /* Valid base64 of something that is not an id. */
    char *other = cp_offset_encode("not-a-uuid-but-thirty-six-chars-long");
    assert_int_equal(cp_offset_decode(other, back), -1);
    free(other);
}

static void test_unique_key_from_constraint_or_detail(void **state)
{
    (void)state;
    const sl_field *key[8];
    assert_int_equal(cp_unique_key_fields(&widgets, "widgets_name_key", NULL, key, 8), 1);
    assert_ptr_equal(key[0], field("name"));

    assert_int_equal(cp_unique_key_fields(&widgets, "widgets_pkey", NULL, key, 8), 1);
    assert_ptr_equal(key[0], field("id"));

    assert_int_equal(cp_unique_key_fields(&widgets, "widgets_name_service_id_key", NULL, key, 8),
                     2);
    assert_ptr_equal(key[0], field("name"));
    assert_ptr_equal(key[1], field("service"));

    /* A custom index name: the detail's column list decides, expressions included. */
    int n = cp_unique_key_fields(
        &widgets, "widgets_cache_key_idx",
        "Key (name, COALESCE(service_id, '00000000-0000-0000-0000-000000000000'::uuid))=(a, b) "
        "already exists.",
        key, 8);
    assert_int_equal(n, 2);
    assert_ptr_equal(key[1], field("service"));

    assert_int_equal(cp_unique_key_fields(&widgets, "other_thing", "no detail", key, 8), 0);
}

static void test_foreign_field_from_constraint_or_detail(void **state)
{
    (void)state;
    assert_ptr_equal(cp_foreign_field_for(&widgets, "widgets_service_id_fkey", NULL),
                     field("service"));
    assert_ptr_equal(cp_foreign_field_for(&widgets, "fk1",
                                          "Key (service_id)=(3f2b8c9e-1d4a-4b6f-9a7e-"
                                          "0c5d2e1f4a6b) is not present in table \"services\"."),
                     field("service"));
    assert_null(cp_foreign_field_for(&widgets, "fk1", "Key (other_id)=(x)"));
}

static void test_insert_keeps_values_out_of_sql(void **state)
{
    (void)state;
    json_t *w = json_pack("{s:s,s:i,s:b,s:{s:s},s:[s,s],s:[i],s:{s:i},s:[s]}", "name",
                          "x'); DROP TABLE widgets; --", "port", 8080, "enabled", 0, "service",
                          "id", "3f2b8c9e-1d4a-4b6f-9a7e-0c5d2e1f4a6b", "paths", "/a", "/b",
                          "codes", 200, "config", "minute", 5, "snis", "a.example");
    cp_sql q;
    cp_params p;
    char err[128];
    cp_sql_init(&q);
    cp_params_init(&p);
    assert_int_equal(cp_sql_build_insert(&widgets, w, 0, &q, &p, err, sizeof(err)), 0);
    assert_null(strstr(q.s, "DROP"));
    assert_null(strstr(q.s, "snis")); /* transient fields are not columns */
    assert_non_null(strstr(q.s, "\"service_id\""));
    assert_non_null(strstr(q.s, "gen_random_uuid()"));
    assert_int_equal(p.n, 10); /* every column field, absent ones as NULL */
    assert_null(p.v[0]);       /* id absent: generated */
    assert_string_equal(p.v[3], "x'); DROP TABLE widgets; --");
    assert_string_equal(p.v[4], "8080");
    assert_string_equal(p.v[5], "false");
    assert_string_equal(p.v[6], "3f2b8c9e-1d4a-4b6f-9a7e-0c5d2e1f4a6b");
    assert_string_equal(p.v[7], "[\"/a\",\"/b\"]");
    assert_string_equal(p.v[8], "[200]");
    assert_string_equal(p.v[9], "{\"minute\":5}");
    assert_null(strstr(q.s, "ON CONFLICT"));
    cp_sql_free(&q);
    cp_params_free(&p);

    cp_sql_init(&q);
    assert_int_equal(cp_sql_build_insert(&widgets, w, 1, &q, &p, err, sizeof(err)), 0);
    assert_non_null(strstr(q.s, "ON CONFLICT (\"id\") DO UPDATE"));
    assert_null(strstr(q.s, "\"created_at\" = EXCLUDED")); /* an upsert keeps created_at */
    cp_sql_free(&q);
    cp_params_free(&p);
    json_decref(w);
}

static void test_update_and_type_errors(void **state)
{
    (void)state;
    json_t *w = json_pack("{s:s,s:s,s:i}", "id", "3f2b8c9e-1d4a-4b6f-9a7e-0c5d2e1f4a6b", "name",
                          "x", "created_at", 5);
    cp_sql q;
    cp_params p;
    char err[128];
    cp_sql_init(&q);
    cp_params_init(&p);
    assert_int_equal(cp_sql_build_update(&widgets, w, &q, &p, err, sizeof(err)), 0);
    assert_string_equal(p.v[0], "3f2b8c9e-1d4a-4b6f-9a7e-0c5d2e1f4a6b");
    assert_null(strstr(q.s, "\"created_at\" =")); /* created_at never rewritten */
    assert_non_null(strstr(q.s, "WHERE \"id\" = $1::uuid"));
    cp_sql_free(&q);
    cp_params_free(&p);

    json_object_set_new(w, "port", json_string("eighty"));
    cp_sql_init(&q);
    assert_int_equal(cp_sql_build_insert(&widgets, w, 0, &q, &p, err, sizeof(err)), -1);
    assert_string_equal(err, "port: expected an integer");
    cp_sql_free(&q);
    cp_params_free(&p);
    json_decref(w);
}

static void test_values_decode_to_admin_json(void **state)
{
    (void)state;
    json_t *v = cp_value_from_text(field("service"), "3f2b8c9e-1d4a-4b6f-9a7e-0c5d2e1f4a6b");
    assert_string_equal(json_string_value(json_object_get(v, "id")),
                        "3f2b8c9e-1d4a-4b6f-9a7e-0c5d2e1f4a6b");
    json_decref(v);
    v = cp_value_from_text(field("service"), NULL);
    assert_true(json_is_null(v));
    json_decref(v);
    v = cp_value_from_text(field("created_at"), "1700000000");
    assert_int_equal(json_integer_value(v), 1700000000);
    json_decref(v);
    v = cp_value_from_text(field("enabled"), "f");
    assert_true(json_is_false(v));
    json_decref(v);
    v = cp_value_from_text(field("paths"), "[\"/a\",\"/b\"]");
    assert_int_equal(json_array_size(v), 2);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lua_pretty_matches_kong_messages),
        cmocka_unit_test(test_offset_round_trip_and_garbage),
        cmocka_unit_test(test_unique_key_from_constraint_or_detail),
        cmocka_unit_test(test_foreign_field_from_constraint_or_detail),
        cmocka_unit_test(test_insert_keeps_values_out_of_sql),
        cmocka_unit_test(test_update_and_type_errors),
        cmocka_unit_test(test_values_decode_to_admin_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
