/* The router against a table of (routes, request, expected route) cases: one or more cases per
 * matching rule, and for each priority rule a pair of overlapping routes where applying the
 * wrong rule would pick the other one. Routes are named by their id; created_at defaults to
 * their position, so without a priority difference the first listed wins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "data_plane/router/router.h"

typedef struct {
    const char *name;
    const char *routes; /* JSON array */
    const char *method, *host;
    int port;
    const char *path, *headers; /* headers: "name:value|name:value" */
    int https;
    const char *sni;
    const char *expect; /* route id, or NULL: no route */
    long prefix_len;    /* -1: not checked */
} rcase;

#define GET "GET"
#define NOH NULL

static const rcase cases[] = {
    /* ---- hosts */
    {"exact host", "[{\"id\":\"a\",\"hosts\":[\"api.test\"]}]", GET, "api.test", 8000, "/", NOH, 0,
     NULL, "a", 0},
    {"exact host mismatch", "[{\"id\":\"a\",\"hosts\":[\"api.test\"]}]", GET, "web.test", 8000, "/",
     NOH, 0, NULL, NULL, -1},
    {"host is case-insensitive", "[{\"id\":\"a\",\"hosts\":[\"Api.Test\"]}]", GET, "API.test", 8000,
     "/", NOH, 0, NULL, "a", -1},
    {"suffix wildcard", "[{\"id\":\"a\",\"hosts\":[\"*.example.com\"]}]", GET, "x.example.com",
     8000, "/", NOH, 0, NULL, "a", -1},
    {"suffix wildcard, several labels", "[{\"id\":\"a\",\"hosts\":[\"*.example.com\"]}]", GET,
     "x.y.example.com", 8000, "/", NOH, 0, NULL, "a", -1},
    {"suffix wildcard needs a label", "[{\"id\":\"a\",\"hosts\":[\"*.example.com\"]}]", GET,
     "example.com", 8000, "/", NOH, 0, NULL, NULL, -1},
    {"suffix wildcard is not a substring", "[{\"id\":\"a\",\"hosts\":[\"*.example.com\"]}]", GET,
     "x.badexample.com", 8000, "/", NOH, 0, NULL, NULL, -1},
    {"prefix wildcard", "[{\"id\":\"a\",\"hosts\":[\"example.*\"]}]", GET, "example.org", 8000, "/",
     NOH, 0, NULL, "a", -1},
    {"prefix wildcard, several labels", "[{\"id\":\"a\",\"hosts\":[\"example.*\"]}]", GET,
     "example.co.uk", 8000, "/", NOH, 0, NULL, "a", -1},
    {"prefix wildcard needs the dot", "[{\"id\":\"a\",\"hosts\":[\"example.*\"]}]", GET,
     "examples.org", 8000, "/", NOH, 0, NULL, NULL, -1},
    {"host:port, same port", "[{\"id\":\"a\",\"hosts\":[\"api.test:8000\"]}]", GET, "api.test",
     8000, "/", NOH, 0, NULL, "a", -1},
    {"host:port, other port", "[{\"id\":\"a\",\"hosts\":[\"api.test:9000\"]}]", GET, "api.test",
     8000, "/", NOH, 0, NULL, NULL, -1},
    {"one of several hosts", "[{\"id\":\"a\",\"hosts\":[\"one.test\",\"*.two.test\"]}]", GET,
     "x.two.test", 8000, "/", NOH, 0, NULL, "a", -1},
    /* ---- paths */
    {"plain path is a prefix", "[{\"id\":\"a\",\"paths\":[\"/api\"]}]", GET, "h", 8000, "/api/x",
     NOH, 0, NULL, "a", 4},
    {"plain prefix is a string prefix", "[{\"id\":\"a\",\"paths\":[\"/api\"]}]", GET, "h", 8000,
     "/apix", NOH, 0, NULL, "a", 4},
    {"plain prefix mismatch", "[{\"id\":\"a\",\"paths\":[\"/api\"]}]", GET, "h", 8000, "/ap", NOH,
     0, NULL, NULL, -1},
    {"paths are case-sensitive", "[{\"id\":\"a\",\"paths\":[\"/api\"]}]", GET, "h", 8000, "/API",
     NOH, 0, NULL, NULL, -1},
    {"regex path", "[{\"id\":\"a\",\"paths\":[\"~/users/\\\\d+$\"]}]", GET, "h", 8000, "/users/42",
     NOH, 0, NULL, "a", 9},
    {"regex is anchored at the start", "[{\"id\":\"a\",\"paths\":[\"~/users/\\\\d+\"]}]", GET, "h",
     8000, "/v1/users/42", NOH, 0, NULL, NULL, -1},
    {"regex matched length", "[{\"id\":\"a\",\"paths\":[\"~/users/\\\\d+\"]}]", GET, "h", 8000,
     "/users/42/x", NOH, 0, NULL, "a", 9},
    {"one of several paths", "[{\"id\":\"a\",\"paths\":[\"/one\",\"/two\"]}]", GET, "h", 8000,
     "/two/x", NOH, 0, NULL, "a", 4},
    /* ---- methods */
    {"method", "[{\"id\":\"a\",\"methods\":[\"GET\",\"POST\"]}]", "POST", "h", 8000, "/", NOH, 0,
     NULL, "a", -1},
    {"method mismatch", "[{\"id\":\"a\",\"methods\":[\"GET\"]}]", "PUT", "h", 8000, "/", NOH, 0,
     NULL, NULL, -1},
    /* ---- headers */
    {"header value, any case", "[{\"id\":\"a\",\"headers\":{\"X-Version\":[\"V2\"]}}]", GET, "h",
     8000, "/", "x-version:v2", 0, NULL, "a", -1},
    {"header missing", "[{\"id\":\"a\",\"headers\":{\"x-version\":[\"v2\"]}}]", GET, "h", 8000, "/",
     "x-other:v2", 0, NULL, NULL, -1},
    {"header value is exact", "[{\"id\":\"a\",\"headers\":{\"x-version\":[\"v2\"]}}]", GET, "h",
     8000, "/", "x-version:v22", 0, NULL, NULL, -1},
    {"header values OR", "[{\"id\":\"a\",\"headers\":{\"x-version\":[\"v1\",\"v2\"]}}]", GET, "h",
     8000, "/", "x-version:v2", 0, NULL, "a", -1},
    {"repeated request header", "[{\"id\":\"a\",\"headers\":{\"x-version\":[\"v2\"]}}]", GET, "h",
     8000, "/", "x-version:v1|x-version:v2", 0, NULL, "a", -1},
    {"headers AND (one missing)", "[{\"id\":\"a\",\"headers\":{\"x-a\":[\"1\"],\"x-b\":[\"2\"]}}]",
     GET, "h", 8000, "/", "x-a:1", 0, NULL, NULL, -1},
    {"headers AND (both)", "[{\"id\":\"a\",\"headers\":{\"x-a\":[\"1\"],\"x-b\":[\"2\"]}}]", GET,
     "h", 8000, "/", "x-b:2|x-a:1", 0, NULL, "a", -1},
    {"header regex value", "[{\"id\":\"a\",\"headers\":{\"x-version\":[\"~*^v\\\\d$\"]}}]", GET,
     "h", 8000, "/", "x-version:V7", 0, NULL, "a", -1},
    {"header regex mismatch", "[{\"id\":\"a\",\"headers\":{\"x-version\":[\"~*^v\\\\d$\"]}}]", GET,
     "h", 8000, "/", "x-version:v77", 0, NULL, NULL, -1},
    /* ---- snis */
    {"sni on https", "[{\"id\":\"a\",\"snis\":[\"s.test\"]}]", GET, "h", 8443, "/", NOH, 1,
     "s.test", "a", -1},
    {"sni mismatch on https", "[{\"id\":\"a\",\"snis\":[\"s.test\"]}]", GET, "h", 8443, "/", NOH, 1,
     "o.test", NULL, -1},
    {"sni trailing dot", "[{\"id\":\"a\",\"snis\":[\"s.test.\"]}]", GET, "h", 8443, "/", NOH, 1,
     "s.test", "a", -1},
    {"sni ignored on http", "[{\"id\":\"a\",\"snis\":[\"s.test\"]}]", GET, "h", 8000, "/", NOH, 0,
     NULL, "a", -1},
    /* ---- protocols */
    {"http-only route skipped on https",
     "[{\"id\":\"a\",\"paths\":[\"/a\"],\"protocols\":[\"http\"]},{\"id\":\"b\"}]", GET, "h", 8443,
     "/a", NOH, 1, "s", "b", -1},
    {"https-only route still matches http (for 426)",
     "[{\"id\":\"a\",\"paths\":[\"/a\"],\"protocols\":[\"https\"]},{\"id\":\"b\"}]", GET, "h", 8000,
     "/a", NOH, 0, NULL, "a", -1},
    {"no route at all", "[]", GET, "h", 8000, "/", NOH, 0, NULL, NULL, -1},

    /* ---- priority: each pair is listed so that creation order alone would pick the loser */
    {"more fields beat a longer prefix",
     "[{\"id\":\"long\",\"paths\":[\"/a/b/c/d\"]},{\"id\":\"meth\",\"methods\":[\"GET\"],"
     "\"paths\":[\"/a\"]}]",
     GET, "h", 8000, "/a/b/c/d/e", NOH, 0, NULL, "meth", 2},
    {"hosts count as a field",
     "[{\"id\":\"long\",\"paths\":[\"/a/b/c\"]},{\"id\":\"wild\",\"hosts\":[\"*.ex.com\"],"
     "\"paths\":[\"/\"]}]",
     GET, "x.ex.com", 8000, "/a/b/c", NOH, 0, NULL, "wild", -1},
    {"plain hosts beat wildcards",
     "[{\"id\":\"wild\",\"hosts\":[\"*.ex.com\"],\"paths\":[\"/long/path\"]},"
     "{\"id\":\"plain\",\"hosts\":[\"api.ex.com\"],\"paths\":[\"/\"]}]",
     GET, "api.ex.com", 8000, "/long/path", NOH, 0, NULL, "plain", 1},
    {"a wildcard among hosts clears the plain bit",
     "[{\"id\":\"mixed\",\"hosts\":[\"api.ex.com\",\"*.ex.org\"],\"paths\":[\"/long/path\"]},"
     "{\"id\":\"plain\",\"hosts\":[\"api.ex.com\"],\"paths\":[\"/\"]}]",
     GET, "api.ex.com", 8000, "/long/path", NOH, 0, NULL, "plain", -1},
    {"more headers beat a longer prefix",
     "[{\"id\":\"one\",\"headers\":{\"x-a\":[\"1\"]},\"paths\":[\"/long/path\"]},"
     "{\"id\":\"two\",\"headers\":{\"x-a\":[\"1\"],\"x-b\":[\"2\"]},\"paths\":[\"/\"]}]",
     GET, "h", 8000, "/long/path", "x-a:1|x-b:2", 0, NULL, "two", -1},
    {"regex beats a longer prefix",
     "[{\"id\":\"prefix\",\"paths\":[\"/users/42/profile\"]},"
     "{\"id\":\"regex\",\"paths\":[\"~/users/\\\\d+\"]}]",
     GET, "h", 8000, "/users/42/profile", NOH, 0, NULL, "regex", 9},
    {"regex_priority orders regexes",
     "[{\"id\":\"low\",\"paths\":[\"~/items/\\\\d+\"]},"
     "{\"id\":\"high\",\"paths\":[\"~/items/.*\"],\"regex_priority\":10}]",
     GET, "h", 8000, "/items/7", NOH, 0, NULL, "high", -1},
    {"negative regex_priority ranks below zero",
     "[{\"id\":\"neg\",\"paths\":[\"~/items/\\\\d+\"],\"regex_priority\":-5},"
     "{\"id\":\"zero\",\"paths\":[\"~/items/.*\"]}]",
     GET, "h", 8000, "/items/7", NOH, 0, NULL, "zero", -1},
    {"regex_priority does not lift a prefix route",
     "[{\"id\":\"long\",\"paths\":[\"/a/b/c\"]},"
     "{\"id\":\"rp\",\"paths\":[\"/a\"],\"regex_priority\":100}]",
     GET, "h", 8000, "/a/b/c", NOH, 0, NULL, "long", 6},
    {"longer prefix wins",
     "[{\"id\":\"short\",\"paths\":[\"/api\"]},{\"id\":\"long\",\"paths\":[\"/api/v1\"]}]", GET,
     "h", 8000, "/api/v1/x", NOH, 0, NULL, "long", 7},
    {"shorter prefix when the longer doesn't match",
     "[{\"id\":\"short\",\"paths\":[\"/api\"]},{\"id\":\"long\",\"paths\":[\"/api/v1\"]}]", GET,
     "h", 8000, "/api/v2", NOH, 0, NULL, "short", 4},
    {"older route wins a tie",
     "[{\"id\":\"a\",\"created_at\":20,\"paths\":[\"/api\"]},"
     "{\"id\":\"b\",\"created_at\":10,\"paths\":[\"/api\"]}]",
     GET, "h", 8000, "/api", NOH, 0, NULL, "b", -1},
    {"then the smaller id",
     "[{\"id\":\"b\",\"created_at\":10,\"paths\":[\"/api\"]},"
     "{\"id\":\"a\",\"created_at\":10,\"paths\":[\"/api\"]}]",
     GET, "h", 8000, "/api", NOH, 0, NULL, "a", -1},
    {"split route: each prefix length has its own priority",
     "[{\"id\":\"split\",\"paths\":[\"/x\",\"/a/b/c/d\"]},{\"id\":\"mid\",\"paths\":[\"/x/y\"]}]",
     GET, "h", 8000, "/x/y/z", NOH, 0, NULL, "mid", 4},
    {"split route: its long path still wins there",
     "[{\"id\":\"mid\",\"paths\":[\"/a/b\"]},{\"id\":\"split\",\"paths\":[\"/x\",\"/a/b/c/d\"]}]",
     GET, "h", 8000, "/a/b/c/d/e", NOH, 0, NULL, "split", 8},
    {"split route: its regex group ranks as a regex",
     "[{\"id\":\"prefix\",\"paths\":[\"/r/long/prefix\"]},"
     "{\"id\":\"split\",\"paths\":[\"/q\",\"~/r/\\\\w+\"]}]",
     GET, "h", 8000, "/r/long/prefix", NOH, 0, NULL, "split", 7},
    {"snis count as a field even on http",
     "[{\"id\":\"long\",\"paths\":[\"/long\"]},{\"id\":\"sni\",\"snis\":[\"s.test\"],"
     "\"paths\":[\"/\"]}]",
     GET, "h", 8000, "/long", NOH, 0, NULL, "sni", -1},
    {"exact host bucket and catch-all compete on priority",
     "[{\"id\":\"host\",\"hosts\":[\"h.test\"]},{\"id\":\"nohost\",\"methods\":[\"GET\"],"
     "\"paths\":[\"/p\"]}]",
     GET, "h.test", 8000, "/p", NOH, 0, NULL, "nohost", -1},
    {"empty hosts array keeps Kong's plain-host bit",
     "[{\"id\":\"wild\",\"hosts\":[\"*.t\"],\"paths\":[\"/a/b/c\"]},"
     "{\"id\":\"empty\",\"hosts\":[],\"methods\":[\"GET\"],\"paths\":[\"/a\"]}]",
     GET, "x.t", 8000, "/a/b/c", NOH, 0, NULL, "empty", 2},
};

static void load_headers(const char *spec, dp_header *h, size_t *n, char *buf, size_t cap)
{
    *n = 0;
    if (!spec)
        return;
    snprintf(buf, cap, "%s", spec);
    char *save = NULL;
    for (char *tok = strtok_r(buf, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
        char *colon = strchr(tok, ':');
        *colon = 0;
        h[*n].name = dp_slice_cstr(tok);
        h[*n].value = dp_slice_cstr(colon + 1);
        (*n)++;
    }
}

static dp_router *build(const char *routes_json)
{
    json_error_t je;
    json_t *routes = json_loads(routes_json, 0, &je);
    if (!routes)
        fail_msg("bad test JSON: %s", je.text);
    /* created_at defaults to the position, so list order is creation order */
    size_t i;
    json_t *r;
    json_array_foreach(routes, i, r) if (!json_object_get(r, "created_at"))
        json_object_set_new(r, "created_at", json_integer((json_int_t)i));
    char err[256];
    dp_router *rt = dp_router_build(routes, NULL, err, sizeof(err));
    json_decref(routes);
    if (!rt)
        fail_msg("build: %s", err);
    return rt;
}

static const char *route_id(const char *routes_json, int index)
{
    static char id[64];
    json_t *routes = json_loads(routes_json, 0, NULL);
    snprintf(id, sizeof(id), "%s",
             json_string_value(json_object_get(json_array_get(routes, (size_t)index), "id")));
    json_decref(routes);
    return id;
}

static void table(void **st)
{
    int failed = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const rcase *c = &cases[i];
        dp_router *r = build(c->routes);
        dp_header hdrs[8];
        size_t nh;
        char hbuf[256];
        load_headers(c->headers, hdrs, &nh, hbuf, sizeof(hbuf));
        dp_router_input in = {.method = dp_slice_cstr(c->method),
                              .host = dp_slice_cstr(c->host),
                              .port = c->port,
                              .path = dp_slice_cstr(c->path),
                              .sni = dp_slice_cstr(c->sni ? c->sni : ""),
                              .https = c->https,
                              .headers = hdrs,
                              .nheaders = nh};
        dp_router_match m;
        int rc = dp_router_find(r, &in, &m);
        const char *got = rc == 0 ? route_id(c->routes, m.route) : NULL;
        int ok = (got == NULL) == (c->expect == NULL) && (!got || strcmp(got, c->expect) == 0);
        if (ok && got && c->prefix_len >= 0 && (long)m.prefix_len != c->prefix_len)
            ok = 0;
        if (!ok) {
            print_error("case '%s': expected %s (prefix %ld), got %s (prefix %zu)\n", c->name,
                        c->expect ? c->expect : "no route", c->prefix_len, got ? got : "no route",
                        rc == 0 ? m.prefix_len : 0);
            failed++;
        }
        dp_router_free(r);
    }
    assert_int_equal(failed, 0);
}

/* The skip mask leaves routes out (disabled services). */
static void skipped_routes(void **st)
{
    json_t *routes = json_loads("[{\"id\":\"a\",\"paths\":[\"/a\"]},{\"id\":\"b\"}]", 0, NULL);
    unsigned char skip[2] = {1, 0};
    char err[128];
    dp_router *r = dp_router_build(routes, skip, err, sizeof(err));
    json_decref(routes);
    assert_non_null(r);
    dp_router_input in = {
        .method = DP_SLICE_LIT("GET"), .host = DP_SLICE_LIT("h"), .path = DP_SLICE_LIT("/a")};
    dp_router_match m;
    assert_int_equal(dp_router_find(r, &in, &m), 0);
    assert_int_equal(m.route, 1);
    dp_router_free(r);
}

static void bad_regex_is_refused(void **st)
{
    json_t *routes = json_loads("[{\"id\":\"r1\",\"paths\":[\"~/(unclosed\"]}]", 0, NULL);
    char err[256] = "";
    assert_null(dp_router_build(routes, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "r1"));
    json_decref(routes);
}

/* Many routes: the one in the middle is still found, and priorities hold across buckets. */
static void many_routes(void **st)
{
    json_t *routes = json_array();
    for (int i = 0; i < 20000; i++) {
        char id[32], path[32], host[32];
        snprintf(id, sizeof(id), "r%05d", i);
        snprintf(path, sizeof(path), "/svc%d", i);
        snprintf(host, sizeof(host), "h%d.test", i % 100);
        json_array_append_new(routes, json_pack("{s:s, s:[s], s:[s], s:i}", "id", id, "paths", path,
                                                "hosts", host, "created_at", i));
    }
    json_array_append_new(routes, json_pack("{s:s, s:[s]}", "id", "catchall", "paths", "/"));
    char err[128];
    dp_router *r = dp_router_build(routes, NULL, err, sizeof(err));
    json_decref(routes);
    assert_non_null(r);
    size_t n, bytes;
    dp_router_stats(r, &n, NULL, &bytes, NULL);
    assert_int_equal(n, 20001);
    dp_router_input in = {.method = DP_SLICE_LIT("GET"),
                          .host = DP_SLICE_LIT("h34.test"),
                          .path = DP_SLICE_LIT("/svc10034/x")};
    dp_router_match m;
    assert_int_equal(dp_router_find(r, &in, &m), 0);
    assert_int_equal(m.route, 10034);
    assert_int_equal(m.prefix_len, 9);
    in.host = DP_SLICE_LIT("h35.test"); /* that path lives under another host */
    assert_int_equal(dp_router_find(r, &in, &m), 0);
    assert_int_equal(m.route, 20000);
    dp_router_free(r);
}

typedef struct {
    const char *in, *out; /* out NULL: refused */
} ncase;

static void normalize(void **st)
{
    static const ncase t[] = {
        {"/a/./b/../c", "/a/c"},
        {"/a//b///c", "/a/b/c"},
        {"/%7Euser/%41%62", "/~user/Ab"},
        {"/a%2fb", "/a%2Fb"},
        {"/a%20b", "/a b"},
        {"/%0d%0a", "/%0D%0A"},
        {"/a/%2e%2e/b", "/b"},
        {"/..", "/"},
        {"/a/b/", "/a/b/"},
        {"/a/..", "/"},
        {"/a/b/../../..", "/"},
        {"/a/./", "/a/"},
        {"/caf%C3%A9", "/caf\xC3\xA9"},
        {"%zz", NULL},
        {"/%4", NULL},
        {"/", "/"},
        {"*", "*"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char out[64];
        long n = dp_path_normalize(t[i].in, strlen(t[i].in), out);
        if (!t[i].out) {
            assert_int_equal(n, -1);
            continue;
        }
        if (n < 0 || (size_t)n != strlen(t[i].out) || memcmp(out, t[i].out, (size_t)n) != 0)
            fail_msg("normalize '%s': expected '%s', got '%.*s'", t[i].in, t[i].out, (int)n, out);
    }
}

typedef struct {
    const char *svc_path;
    int strip;
    const char *path;
    size_t prefix;
    const char *out;
} ucase;

static void upstream_path(void **st)
{
    static const ucase t[] = {
        {"/", 1, "/api/x", 4, "/x"},
        {NULL, 1, "/api", 4, "/"},
        {"/svc", 1, "/api", 4, "/svc"},
        {"/svc", 1, "/api/", 4, "/svc/"},
        {"/svc/", 1, "/api", 4, "/svc"},
        {"/svc/", 1, "/api/", 4, "/svc/"},
        {"/svc/", 1, "/api/x", 4, "/svc/x"},
        {"/svc", 1, "/api/x", 4, "/svc/x"},
        {"/svc", 1, "/apix", 4, "/svc/x"},
        {"/svc/", 1, "/apix", 4, "/svc/x"},
        {"/svc", 0, "/api/x", 4, "/svc/api/x"},
        {"/svc/", 0, "/api/x", 4, "/svc/api/x"},
        {"/svc", 0, "/", 1, "/svc"},
        {"/", 0, "/api", 4, "/api"},
        {"/svc", 1, "/api/a b", 4, "/svc/a%20b"},
        {"/svc", 1, "/foo", 0, "/svc/foo"},
        {"/svc", 1, "/api..", 4, "/svc"},
        {"/", 1, "/users/42/x", 9, "/x"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char out[128];
        dp_slice p = dp_slice_cstr(t[i].path);
        assert_true(dp_router_upstream_path_cap(t[i].svc_path, p.len) <= sizeof(out));
        long n =
            dp_router_upstream_path(t[i].svc_path, t[i].strip, p, t[i].prefix, out, sizeof(out));
        if (n < 0 || (size_t)n != strlen(t[i].out) || memcmp(out, t[i].out, (size_t)n) != 0)
            fail_msg("upstream path (%s, strip %d, %s, %zu): expected '%s', got '%.*s'",
                     t[i].svc_path ? t[i].svc_path : "NULL", t[i].strip, t[i].path, t[i].prefix,
                     t[i].out, (int)n, out);
    }
    char tiny[4];
    assert_int_equal(
        dp_router_upstream_path("/service", 0, DP_SLICE_LIT("/x"), 0, tiny, sizeof(tiny)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table),
        cmocka_unit_test(skipped_routes),
        cmocka_unit_test(bad_regex_is_refused),
        cmocka_unit_test(many_routes),
        cmocka_unit_test(normalize),
        cmocka_unit_test(upstream_path),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dp_router_thread_done();
    return rc;
}
