/* Kong declarative files: nesting, name references, stable ids, errors that say where, and
 * export (nest + YAML) reading back to the same config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/declarative.h"
#include "proto/yaml_json.h"

static const char *const kong_file = "_format_version: \"3.0\"\n"
                                     "_transform: true\n"
                                     "services:\n"
                                     "- name: orders\n"
                                     "  url: http://orders.internal:8080/api\n"
                                     "  routes:\n"
                                     "  - name: orders-route\n"
                                     "    paths: [/orders, \"~/v[0-9]+/orders$\"]\n"
                                     "    plugins:\n"
                                     "    - name: key-auth\n"
                                     "  plugins:\n"
                                     "  - name: rate-limiting\n"
                                     "    config:\n"
                                     "      minute: 5\n"
                                     "routes:\n"
                                     "- name: health\n"
                                     "  service: orders\n"
                                     "  paths: [/health]\n"
                                     "consumers:\n"
                                     "- username: alice\n"
                                     "  keyauth_credentials:\n"
                                     "  - key: alice-secret-key\n"
                                     "  acls:\n"
                                     "  - group: admins\n"
                                     "upstreams:\n"
                                     "- name: orders.internal\n"
                                     "  targets:\n"
                                     "  - target: 127.0.0.1:9001\n"
                                     "    weight: 50\n"
                                     "  - target: 127.0.0.1:9002\n";

static const json_t *find(const json_t *config, const char *entity, const char *field,
                          const char *value)
{
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(config, entity), i, row)
    {
        const char *v = json_string_value(json_object_get(row, field));
        if (v && strcmp(v, value) == 0)
            return row;
    }
    return NULL;
}

static const char *id_of(const json_t *row)
{
    return json_string_value(json_object_get(row, "id"));
}

static void test_flattens_nested_entities(void **state)
{
    char err[512];
    json_t *config = sl_declarative_load(kong_file, strlen(kong_file), NULL, err, sizeof(err));
    assert_non_null(config);
    const json_t *svc = find(config, "services", "name", "orders");
    assert_non_null(svc);
    assert_string_equal(json_string_value(json_object_get(svc, "host")), "orders.internal");
    assert_int_equal(json_integer_value(json_object_get(svc, "port")), 8080);
    assert_string_equal(json_string_value(json_object_get(svc, "path")), "/api");

    const json_t *route = find(config, "routes", "name", "orders-route");
    assert_string_equal(json_string_value(json_object_get(json_object_get(route, "service"), "id")),
                        id_of(svc));
    /* The top-level route names its service; the reference becomes the service's id. */
    const json_t *health = find(config, "routes", "name", "health");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(health, "service"), "id")), id_of(svc));

    const json_t *ka = find(config, "plugins", "name", "key-auth");
    assert_string_equal(json_string_value(json_object_get(json_object_get(ka, "route"), "id")),
                        id_of(route));
    const json_t *rl = find(config, "plugins", "name", "rate-limiting");
    assert_string_equal(json_string_value(json_object_get(json_object_get(rl, "service"), "id")),
                        id_of(svc));

    const json_t *alice = find(config, "consumers", "username", "alice");
    const json_t *cred = find(config, "keyauth_credentials", "key", "alice-secret-key");
    assert_string_equal(json_string_value(json_object_get(json_object_get(cred, "consumer"), "id")),
                        id_of(alice));
    assert_int_equal(json_array_size(json_object_get(config, "targets")), 2);
    const json_t *t1 = find(config, "targets", "target", "127.0.0.1:9001");
    assert_int_equal(json_integer_value(json_object_get(t1, "weight")), 50);
    json_decref(config);
}

static void test_ids_are_stable_across_loads(void **state)
{
    char err[512];
    json_t *a = sl_declarative_load(kong_file, strlen(kong_file), NULL, err, sizeof(err));
    json_t *b = sl_declarative_load(kong_file, strlen(kong_file), NULL, err, sizeof(err));
    assert_string_equal(id_of(find(a, "routes", "name", "health")),
                        id_of(find(b, "routes", "name", "health")));
    assert_string_equal(id_of(find(a, "targets", "target", "127.0.0.1:9002")),
                        id_of(find(b, "targets", "target", "127.0.0.1:9002")));
    json_decref(a);
    json_decref(b);
}

static void test_errors_name_entity_and_field(void **state)
{
    const char *bad = "_format_version: \"3.0\"\n"
                      "services:\n"
                      "- name: s1\n"
                      "  host: example.com\n"
                      "  routes:\n"
                      "  - name: r1\n"
                      "    paths: [nope]\n";
    char err[512];
    json_t *errors = NULL;
    assert_null(sl_declarative_load(bad, strlen(bad), &errors, err, sizeof(err)));
    assert_non_null(strstr(err, "services[0].routes[0] (name 'r1')"));
    assert_non_null(strstr(err, "paths"));
    assert_int_equal(json_array_size(errors), 1);
    json_decref(errors);

    const char *dangling = "_format_version: \"3.0\"\n"
                           "routes:\n"
                           "- name: r1\n"
                           "  service: missing\n"
                           "  paths: [/a]\n";
    assert_null(sl_declarative_load(dangling, strlen(dangling), NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "no services named 'missing'"));

    const char *version = "_format_version: \"1.1\"\nservices: []\n";
    assert_null(sl_declarative_load(version, strlen(version), NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "_format_version"));

    const char *unknown = "_format_version: \"3.0\"\nservicez: []\n";
    assert_null(sl_declarative_load(unknown, strlen(unknown), NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "unknown field"));

    const char *alias = "_format_version: \"3.0\"\nx: &a [1]\ny: *a\n";
    assert_null(sl_declarative_load(alias, strlen(alias), NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "aliases"));
}

static void test_export_reads_back_identically(void **state)
{
    char err[512];
    json_t *config = sl_declarative_load(kong_file, strlen(kong_file), NULL, err, sizeof(err));
    json_t *doc = sl_declarative_nest(config);
    /* Routes of the service sit under it; the credential under its consumer. */
    json_t *svc = json_array_get(json_object_get(doc, "services"), 0);
    assert_int_equal(json_array_size(json_object_get(svc, "routes")), 2);
    assert_null(json_object_get(doc, "routes"));
    char *yaml = sl_yaml_dump(doc);
    json_t *again = sl_declarative_load(yaml, strlen(yaml), NULL, err, sizeof(err));
    if (!again)
        fail_msg("re-import failed: %s\n%s", err, yaml);
    for (const char *const *e =
             (const char *const[]){"services", "routes", "plugins", "consumers",
                                   "keyauth_credentials", "acls", "upstreams", "targets", NULL};
         *e; e++) {
        json_t *a = json_object_get(config, *e), *b = json_object_get(again, *e);
        assert_int_equal(json_array_size(a), json_array_size(b));
        size_t i;
        json_t *row;
        json_array_foreach(a, i, row)
        {
            const json_t *match = find(again, *e, "id", id_of(row));
            assert_non_null(match);
            assert_true(json_equal(row, (json_t *)match));
        }
    }
    free(yaml);
    json_decref(again);
    json_decref(doc);
    json_decref(config);
}

static void test_yaml_scalars_and_quoting(void **state)
{
    char err[256];
    const char *y = "a: 80\nb: \"80\"\nc: true\nd: ~\ne: 1.5\nf: 007\ng: |\n  line1\n  line2\n";
    json_t *v = sl_yaml_parse(y, strlen(y), err, sizeof(err));
    assert_non_null(v);
    assert_true(json_is_integer(json_object_get(v, "a")));
    assert_true(json_is_string(json_object_get(v, "b")));
    assert_true(json_is_true(json_object_get(v, "c")));
    assert_true(json_is_null(json_object_get(v, "d")));
    assert_true(json_is_real(json_object_get(v, "e")));
    assert_string_equal(json_string_value(json_object_get(v, "f")), "007");
    assert_string_equal(json_string_value(json_object_get(v, "g")), "line1\nline2\n");
    char *out = sl_yaml_dump(v);
    json_t *back = sl_yaml_parse(out, strlen(out), err, sizeof(err));
    assert_true(json_equal(v, back));
    free(out);
    json_decref(back);
    json_decref(v);
    assert_null(sl_yaml_parse("a: [1, 2", 8, err, sizeof(err)));
    assert_non_null(strstr(err, "line"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flattens_nested_entities),
        cmocka_unit_test(test_ids_are_stable_across_loads),
        cmocka_unit_test(test_errors_name_entity_and_field),
        cmocka_unit_test(test_export_reads_back_identically),
        cmocka_unit_test(test_yaml_scalars_and_quoting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
