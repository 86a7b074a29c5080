/* Admin API URL routing: which endpoint a method and path reach, with the captured keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "control_plane/admin/api_paths.h"

static cp_api_route route;

static cp_api_kind match(const char *method, const char *path)
{
    return cp_api_match(method, path, &route);
}

static void test_collections(void **state)
{
    (void)state;
    assert_int_equal(match("GET", "/services"), CP_API_COLLECTION);
    assert_string_equal(route.entity->name, "services");
    assert_true(route.allowed);

    /* the Kong tutorial posts to "/services/" */
    assert_int_equal(match("POST", "/services/"), CP_API_COLLECTION);
    assert_string_equal(route.entity->name, "services");
    assert_true(route.allowed);

    static const char *const top[] = {
        "/routes",    "/consumers",   "/plugins", "/upstreams",    "/snis",
        "/key-auths", "/basic-auths", "/acls",    "/certificates", "/ca_certificates"};
    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++) {
        assert_int_equal(match("GET", top[i]), CP_API_COLLECTION);
        assert_string_equal(route.entity->endpoint, top[i] + 1);
    }
}

static void test_collection_methods(void **state)
{
    (void)state;
    assert_int_equal(match("DELETE", "/services"), CP_API_COLLECTION);
    assert_false(route.allowed);
    assert_int_equal(match("PATCH", "/routes"), CP_API_COLLECTION);
    assert_false(route.allowed);
    assert_int_equal(match("OPTIONS", "/routes"), CP_API_COLLECTION);
    assert_false(route.allowed);
}

static void test_entity(void **state)
{
    (void)state;
    static const char *const ok[] = {"GET", "PUT", "PATCH", "DELETE"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(match(ok[i], "/services/httpbin-service"), CP_API_ENTITY);
        assert_true(route.allowed);
        assert_string_equal(route.key, "httpbin-service");
        assert_string_equal(route.entity->name, "services");
        assert_null(route.parent);
    }
    assert_int_equal(match("POST", "/services/httpbin-service"), CP_API_ENTITY);
    assert_false(route.allowed);

    assert_int_equal(match("GET", "/consumers/0b9a5d66-7c5a-4a5e-9f0b-1f2a3b4c5d6e/"),
                     CP_API_ENTITY);
    assert_string_equal(route.key, "0b9a5d66-7c5a-4a5e-9f0b-1f2a3b4c5d6e");
}

static void test_nested(void **state)
{
    (void)state;
    assert_int_equal(match("POST", "/services/httpbin-service/routes"), CP_API_NESTED_COLLECTION);
    assert_true(route.allowed);
    assert_string_equal(route.entity->name, "routes");
    assert_string_equal(route.parent->name, "services");
    assert_string_equal(route.fk->name, "service");
    assert_string_equal(route.parent_key, "httpbin-service");

    assert_int_equal(match("DELETE", "/services/s1/routes/r1"), CP_API_NESTED_ENTITY);
    assert_true(route.allowed);
    assert_string_equal(route.parent_key, "s1");
    assert_string_equal(route.key, "r1");
    assert_string_equal(route.entity->name, "routes");

    static const struct {
        const char *path, *child_endpoint, *fk;
    } cases[] = {
        {"/services/s/plugins", "plugins", "service"},
        {"/routes/r/plugins", "plugins", "route"},
        {"/consumers/c/plugins", "plugins", "consumer"},
        {"/upstreams/u/targets", "targets", "upstream"},
        {"/certificates/c/snis", "snis", "certificate"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(match("GET", cases[i].path), CP_API_NESTED_COLLECTION);
        assert_string_equal(cp_api_nested_segment(route.entity), cases[i].child_endpoint);
        assert_string_equal(route.fk->name, cases[i].fk);
    }
}

static void test_consumer_credentials(void **state)
{
    (void)state;
    assert_int_equal(match("POST", "/consumers/alice/key-auth"), CP_API_NESTED_COLLECTION);
    assert_string_equal(route.entity->endpoint, "key-auths");
    assert_string_equal(route.fk->name, "consumer");
    assert_int_equal(match("POST", "/consumers/alice/basic-auth"), CP_API_NESTED_COLLECTION);
    assert_string_equal(route.entity->endpoint, "basic-auths");
    assert_int_equal(match("GET", "/consumers/alice/acls/admins"), CP_API_NESTED_ENTITY);
    assert_string_equal(route.entity->endpoint, "acls");
    assert_string_equal(route.key, "admins");
    assert_int_equal(match("DELETE", "/consumers/alice/key-auth/k1"), CP_API_NESTED_ENTITY);
    assert_string_equal(route.key, "k1");

    /* under a consumer, credentials use their nested name only */
    assert_int_equal(match("GET", "/consumers/alice/key-auths"), CP_API_NOT_FOUND);
    /* credentials do not nest under services */
    assert_int_equal(match("GET", "/services/s/key-auth"), CP_API_NOT_FOUND);
}

static void test_foreign_entity(void **state)
{
    (void)state;
    assert_int_equal(match("GET", "/routes/r1/service"), CP_API_FOREIGN_ENTITY);
    assert_true(route.allowed);
    assert_string_equal(route.entity->name, "services");
    assert_string_equal(route.parent->name, "routes");
    assert_string_equal(route.fk->name, "service");
    assert_string_equal(route.parent_key, "r1");

    /* DELETE reaches the handler, which answers 405 (or 404 without a service) */
    assert_int_equal(match("DELETE", "/routes/r1/service"), CP_API_FOREIGN_ENTITY);
    assert_true(route.allowed);
    assert_int_equal(match("POST", "/routes/r1/service"), CP_API_FOREIGN_ENTITY);
    assert_false(route.allowed);
    /* the referenced entity has no nested path below it */
    assert_int_equal(match("GET", "/routes/r1/service/x"), CP_API_NOT_FOUND);
}

static void test_targets_only_nested(void **state)
{
    (void)state;
    assert_int_equal(match("GET", "/targets"), CP_API_NOT_FOUND);
    assert_int_equal(match("GET", "/targets/t1"), CP_API_NOT_FOUND);
    assert_int_equal(match("GET", "/targets/t1/upstream"), CP_API_NOT_FOUND);
    assert_int_equal(match("PATCH", "/upstreams/u/targets/10.0.0.1:80"), CP_API_NESTED_ENTITY);
    assert_string_equal(route.key, "10.0.0.1:80");
}

static void test_fixed_endpoints(void **state)
{
    (void)state;
    assert_int_equal(match("GET", "/"), CP_API_ROOT);
    assert_true(route.allowed);
    assert_int_equal(match("POST", "/"), CP_API_ROOT);
    assert_false(route.allowed);
    assert_int_equal(match("GET", "/status"), CP_API_STATUS);
    assert_int_equal(match("GET", "/status/"), CP_API_STATUS);
    assert_int_equal(match("GET", "/clustering/data-planes"), CP_API_DATA_PLANES);
    assert_int_equal(match("GET", "/clustering/status"), CP_API_CLUSTER_STATUS);
    assert_int_equal(match("GET", "/clustering/other"), CP_API_NOT_FOUND);
    assert_int_equal(match("GET", "/schemas/services"), CP_API_SCHEMA);
    assert_string_equal(route.entity->name, "services");
    assert_int_equal(match("POST", "/schemas/routes/validate"), CP_API_SCHEMA_VALIDATE);
    assert_true(route.allowed);
    assert_string_equal(route.entity->name, "routes");
    assert_int_equal(match("GET", "/schemas/unicorns"), CP_API_NOT_FOUND);
}

static void test_allow_list(void **state)
{
    (void)state;
    char allow[128];
    match("OPTIONS", "/services");
    cp_api_allow_list(&route, allow, sizeof(allow));
    assert_string_equal(allow, "GET, POST, OPTIONS");
    match("OPTIONS", "/consumers/c/acls/a");
    cp_api_allow_list(&route, allow, sizeof(allow));
    assert_string_equal(allow, "GET, PUT, PATCH, DELETE, OPTIONS");
    match("OPTIONS", "/status");
    cp_api_allow_list(&route, allow, sizeof(allow));
    assert_string_equal(allow, "GET, OPTIONS");
    /* a short buffer stays terminated */
    match("OPTIONS", "/services");
    cp_api_allow_list(&route, allow, 6);
    assert_true(strlen(allow) < 6);
}

static void test_unknown_paths(void **state)
{
    (void)state;
    assert_int_equal(match("GET", "/unicorns"), CP_API_NOT_FOUND);
    assert_int_equal(match("GET", "/services/s/unicorns"), CP_API_NOT_FOUND);
    assert_int_equal(match("GET", "/services/s/routes/r/plugins"), CP_API_NOT_FOUND);
    assert_int_equal(match("GET", "/services//routes"), CP_API_NOT_FOUND);
    assert_int_equal(match("GET", "services"), CP_API_NOT_FOUND);
    assert_int_equal(match("GET", ""), CP_API_NOT_FOUND);
    assert_int_equal(match("GET", "/a/b/c/d/e/f/g"), CP_API_NOT_FOUND);
}

static void test_key_length_bound(void **state)
{
    (void)state;
    char path[CP_API_MAX_KEY + 64];
    strcpy(path, "/services/");
    size_t n = strlen(path);
    memset(path + n, 'a', CP_API_MAX_KEY);
    path[n + CP_API_MAX_KEY] = '\0';
    assert_int_equal(match("GET", path), CP_API_ENTITY);
    assert_int_equal(strlen(route.key), CP_API_MAX_KEY);

    strcat(path, "a");
    assert_int_equal(match("GET", path), CP_API_NOT_FOUND);

    /* same bound for the parent key */
    strcat(path, "/routes");
    assert_int_equal(match("GET", path), CP_API_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collections),
        cmocka_unit_test(test_collection_methods),
        cmocka_unit_test(test_entity),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_consumer_credentials),
        cmocka_unit_test(test_foreign_entity),
        cmocka_unit_test(test_targets_only_nested),
        cmocka_unit_test(test_fixed_endpoints),
        cmocka_unit_test(test_allow_list),
        cmocka_unit_test(test_unknown_paths),
        cmocka_unit_test(test_key_length_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
