/* Route choice as Kong makes it: priorities, wildcards, regex, headers, methods, snis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "data_plane/router/router.h"

static dp_router *build(const char *json)
{
    json_error_t je;
    json_t *routes = json_loads(json, 0, &je);
    assert_non_null(routes);
    char err[256];
    dp_router *r = dp_router_build(routes, NULL, err, sizeof(err));
    json_decref(routes);
    if (!r)
        fail_msg("build: %s", err);
    return r;
}

static int find(dp_router *r, const char *method, const char *host, const char *path,
                size_t *prefix)
{
    dp_header hdr[1] = {{DP_SLICE_LIT("X-Version"), DP_SLICE_LIT("V2")}};
    dp_router_input in = {.method = dp_slice_cstr(method),
                          .host = dp_slice_cstr(host),
                          .port = 8000,
                          .path = dp_slice_cstr(path),
                          .headers = hdr,
                          .nheaders = 1};
    dp_router_match m;
    if (dp_router_find(r, &in, &m) != 0)
        return -1;
    if (prefix)
        *prefix = m.prefix_len;
    return m.route;
}

static void priorities(void **st)
{
    dp_router *r = build("["
                         "{\"id\":\"a\",\"paths\":[\"/\"]},"
                         "{\"id\":\"b\",\"paths\":[\"/api\"]},"
                         "{\"id\":\"c\",\"paths\":[\"/api/v1\"]},"
                         "{\"id\":\"d\",\"hosts\":[\"*.example.com\"],\"paths\":[\"/api\"]},"
                         "{\"id\":\"e\",\"hosts\":[\"api.example.com\"],\"paths\":[\"/api\"]},"
                         "{\"id\":\"f\",\"paths\":[\"~/users/\\\\d+$\"],\"regex_priority\":5},"
                         "{\"id\":\"g\",\"methods\":[\"POST\"],\"paths\":[\"/api\"]},"
                         "{\"id\":\"h\",\"headers\":{\"x-version\":[\"v2\"]},\"paths\":[\"/hdr\"]},"
                         "{\"id\":\"i\",\"hosts\":[\"static.*\"],\"paths\":[\"/\"]}"
                         "]");
    size_t pl = 0;
    assert_int_equal(find(r, "GET", "x.org", "/other", &pl), 0);
    assert_int_equal(pl, 1);
    assert_int_equal(find(r, "GET", "x.org", "/api/x", &pl), 1);
    assert_int_equal(pl, 4);
    assert_int_equal(find(r, "GET", "x.org", "/api/v1/z", NULL), 2);
    assert_int_equal(find(r, "GET", "www.example.com", "/api/x", NULL), 3); /* host beats length */
    assert_int_equal(find(r, "GET", "API.example.com", "/api/x", NULL), 4); /* plain host first */
    assert_int_equal(find(r, "GET", "example.com", "/api/x", NULL), 1);     /* "*." needs a label */
    assert_int_equal(find(r, "GET", "x.org", "/users/42", &pl), 5);
    assert_int_equal(pl, 9);
    assert_int_equal(find(r, "GET", "x.org", "/users/42/x", NULL), 0);
    assert_int_equal(find(r, "POST", "x.org", "/api/x", NULL), 6);
    assert_int_equal(find(r, "GET", "x.org", "/hdr", NULL), 7);
    assert_int_equal(find(r, "GET", "static.cdn", "/q", NULL), 8);
    dp_router_free(r);
}

static void no_match(void **st)
{
    dp_router *r = build("[{\"id\":\"a\",\"paths\":[\"/only\"],\"methods\":[\"GET\"]}]");
    assert_int_equal(find(r, "GET", "h", "/other", NULL), -1);
    assert_int_equal(find(r, "PUT", "h", "/only", NULL), -1);
    dp_router_free(r);
}

static void bad_regex(void **st)
{
    json_t *routes = json_loads("[{\"id\":\"a\",\"paths\":[\"~/(unclosed\"]}]", 0, NULL);
    char err[256] = "";
    assert_null(dp_router_build(routes, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "invalid regex"));
    json_decref(routes);
}

static void normalize(void **st)
{
    static const char *const cases[][2] = {
        {"/a/b/../c", "/a/c"}, {"/a/./b/", "/a/b/"}, {"/a/%62", "/a/b"}, {"/%2f", "/%2F"},
        {"/..", "/"},          {"/a/..", "/"},       {"/a/b/..", "/a/"}, {"/a//b", "/a//b"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64];
        long n = dp_path_normalize(cases[i][0], strlen(cases[i][0]), out);
        assert_true(n >= 0);
        out[n] = 0;
        assert_string_equal(out, cases[i][1]);
    }
    char out[8];
    assert_int_equal(dp_path_normalize("/%zz", 4, out), -1);
    assert_int_equal(dp_path_normalize("/%2", 3, out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(priorities),
        cmocka_unit_test(no_match),
        cmocka_unit_test(bad_regex),
        cmocka_unit_test(normalize),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dp_router_thread_done();
    return rc;
}
