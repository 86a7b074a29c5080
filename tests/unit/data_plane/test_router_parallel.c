/* A whole generation of many routes is read and compiled on several threads, in parts whose
 * records are joined and sorted afterwards (data_plane/config/generation.c take_all,
 * data_plane/router/build.c dp_router_builder_split). It must route every request exactly as
 * the serial build of the same routes (dp_router_build) does: rows in id order (the sort then
 * takes the order of the rows for the order of the ids) and rows in any order (ties on
 * priority and created_at broken by id, then position), with overlapping paths, hosts, equal
 * created_at and regexes, so a sub-route sorted to the wrong rank picks another route for some
 * request. A bad route is refused with the error the serial build gives (the first one), and a
 * parallel generation is a sound base for the next, incremental one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_plane/config/generation.h"
#include "data_plane/router/internal.h"

#define NSVC 5
#define NROUTES 12000 /* above the parallel build's threshold: three parts or more */
#define N(a) (sizeof(a) / sizeof((a)[0]))

static uint32_t seed;

static uint32_t rnd(uint32_t n)
{
    seed = seed * 1103515245u + 12345u;
    return (seed >> 8) % n;
}

static const char *host_pool[] = {"a.test", "b.test", "*.w.test", "x.*", "a.test:8000"};
static const char *path_pool[] = {"/", "/a", "/a/b", "/ab", "~/r/\\d+$", "~/a/[a-z]+", "/r/"};

static int multi; /* every route three paths of three lengths: three sub-routes each */

static json_t *new_route(const char *id, uint32_t n)
{
    char svc[32], own[32];
    snprintf(svc, sizeof(svc), "svc-%u", rnd(NSVC));
    /* created_at and regex_priority from small sets: most order ties reach the id */
    json_t *r = json_pack("{s:s, s:s, s:{s:s}, s:i, s:i}", "id", id, "name", id, "service", "id",
                          svc, "created_at", (int)rnd(3), "regex_priority", (int)rnd(2));
    if (rnd(10) < 3) {
        json_t *h = json_array();
        json_array_append_new(h, json_string(host_pool[rnd(N(host_pool))]));
        json_object_set_new(r, "hosts", h);
    }
    json_t *paths = json_array();
    uint32_t kind = rnd(10);
    if (kind < 5) { /* a path of its own, of one of a few lengths */
        snprintf(own, sizeof(own), "/p/%u", n % 2000);
        json_array_append_new(paths, json_string(own));
    } else if (kind < 9) {
        json_array_append_new(paths, json_string(path_pool[rnd(N(path_pool))]));
        if (rnd(2))
            json_array_append_new(paths, json_string(path_pool[rnd(N(path_pool))]));
    }
    if (multi) {
        json_array_clear(paths);
        snprintf(own, sizeof(own), "/p/%u", n % 2000);
        json_array_append_new(paths, json_string(own));
        json_array_append_new(paths, json_string("/a"));
        json_array_append_new(paths, json_string("/a/b"));
    }
    json_object_set_new(r, "paths", paths);
    if (rnd(10) == 0)
        json_object_set_new(r, "methods", json_pack("[s]", "POST"));
    if (rnd(40) == 0)
        json_object_set_new(r, "headers", json_pack("{s:[s]}", "x-v", "1"));
    uint32_t p = rnd(40);
    json_object_set_new(r, "protocols",
                        p == 0   ? json_pack("[s]", "https")
                        : p == 1 ? json_pack("[s]", "grpc")
                                 : json_pack("[s,s]", "http", "https"));
    return r;
}

/* services (one disabled: its routes are left out) and n routes; ids ascend with the rows
 * unless shuffled; with dup, some rows repeat an earlier row's id; with wrap, the ids ascend
 * but start again lower at row wrap */
static json_t *make_config(size_t n, int shuffled, int dup, size_t wrap)
{
    json_t *svcs = json_array(), *routes = json_array();
    for (int i = 0; i < NSVC; i++) {
        char id[32];
        snprintf(id, sizeof(id), "svc-%d", i);
        json_array_append_new(svcs,
                              json_pack("{s:s, s:s, s:s, s:i, s:b}", "id", id, "host", "127.0.0.1",
                                        "protocol", "http", "port", 80, "enabled", i != 3));
    }
    json_t **rows = malloc(n * sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        char id[32];
        size_t k = dup && i > 10 && rnd(50) == 0 ? rnd((uint32_t)i) : i;
        snprintf(id, sizeof(id), "r-%06zu", wrap && k < wrap ? 500000 + k * 7 : k * 7);
        rows[i] = new_route(id, (uint32_t)i);
    }
    for (size_t i = n; shuffled && i > 1; i--) {
        size_t j = rnd((uint32_t)i);
        json_t *t = rows[i - 1];
        rows[i - 1] = rows[j];
        rows[j] = t;
    }
    for (size_t i = 0; i < n; i++)
        json_array_append_new(routes, rows[i]);
    free(rows);
    return json_pack("{s:o, s:o}", "services", svcs, "routes", routes);
}

/* The serial router over the routes g serves. */
static dp_router *serial_router(const dp_generation *g, char *err, size_t errlen)
{
    unsigned char *skip = calloc(g->nroutes + 1, 1);
    for (size_t i = 0; i < g->nroutes; i++) {
        const dp_route *d = &g->routes[i];
        skip[i] = !d->protocols || (d->service && !d->service->served);
    }
    dp_router *r = dp_router_build(json_object_get(g->config, "routes"), skip, err, errlen);
    free(skip);
    return r;
}

/* Every request of the grid picks the same route (position) and matched length on a and b. */
static void same_routing(const dp_router *a, const dp_router *b)
{
    static const char *hosts[] = {"a.test", "B.test", "q.w.test", "x.org", "zz.test"};
    static const char *fixed[] = {"/", "/a", "/a/b/c", "/ab", "/r/12", "/a/xyz", "/r/", "/zzz"};
    static const char *methods[] = {"GET", "POST"};
    size_t checked = 0, matched = 0;
    for (size_t h = 0; h < N(hosts); h++) {
        for (size_t p = 0; p < N(fixed) + 60; p++) {
            char path[64];
            if (p < N(fixed))
                snprintf(path, sizeof(path), "%s", fixed[p]);
            else /* routes' own paths, some with a tail */
                snprintf(path, sizeof(path), "/p/%zu%s", (p * 37) % 2100, p % 3 ? "" : "/x");
            for (int mi = 0; mi < 2; mi++) {
                for (int https = 0; https < 2; https++) {
                    dp_header hdr = {dp_slice_cstr("X-V"), dp_slice_cstr("1")};
                    dp_router_input in = {
                        .method = dp_slice_cstr(methods[mi]),
                        .host = dp_slice_cstr(hosts[h]),
                        .port = 8000,
                        .path = dp_slice_cstr(path),
                        .sni = dp_slice_cstr(https ? "a.test" : ""),
                        .https = https,
                        .headers = &hdr,
                        .nheaders = (size_t)(p % 2),
                    };
                    dp_router_match ma = {-1, 0}, mb = {-1, 0};
                    int ra = dp_router_find(a, &in, &ma);
                    int rb = dp_router_find(b, &in, &mb);
                    if (ra != rb || ma.route != mb.route || ma.prefix_len != mb.prefix_len)
                        fail_msg("%s %s%s (https %d): parallel %d/%zu, serial %d/%zu", methods[mi],
                                 hosts[h], path, https, ra ? -1 : ma.route, ma.prefix_len,
                                 rb ? -1 : mb.route, mb.prefix_len);
                    checked++;
                    matched += ra == 0;
                }
            }
        }
    }
    /* the grid must reach routes, not only misses */
    assert_true(matched > checked / 2);
}

static void check_config(int shuffled, int dup, size_t wrap)
{
    json_t *c = make_config(NROUTES, shuffled, dup, wrap);
    char err[512] = "";
    dp_generation *g = dp_generation_build(c, 1, "h", err, sizeof(err));
    json_decref(c);
    if (!g)
        fail_msg("build: %s", err);
    dp_router *s = serial_router(g, err, sizeof(err));
    if (!s)
        fail_msg("serial build: %s", err);
    size_t rp, rs, mp, ms;
    dp_router_stats(g->router, &rp, &mp, NULL, NULL);
    dp_router_stats(s, &rs, &ms, NULL, NULL);
    assert_int_equal(rp, rs);
    assert_int_equal(mp, ms);
    assert_true(rp > NROUTES / 2); /* most routes served, so the comparison covers them */
    same_routing(g->router, s);
    dp_router_free(s);
    dp_generation_unref(g);
}

static void rows_in_id_order(void **st)
{
    (void)st;
    seed = 2024;
    check_config(0, 0, 0);
}

/* Three sub-routes per route: a part's sub-routes outgrow its share of the builder's array
 * (sized for one per route, where the other tests stay) and move to an array of its own. */
static void several_sub_routes_each(void **st)
{
    (void)st;
    seed = 4096;
    multi = 1;
    check_config(0, 0, 0);
    check_config(1, 0, 0);
    multi = 0;
}

static void rows_in_any_order(void **st)
{
    (void)st;
    seed = 31337;
    check_config(1, 0, 0);
}

static void repeated_ids(void **st)
{
    (void)st;
    seed = 5150;
    check_config(0, 1, 0);
}

/* Each part's rows in id order, but not the parts one after another: the build starts a
 * part every 4096 rows, so the ids starting again at row 8192 step back exactly where two
 * parts meet. */
static void ids_step_back_between_parts(void **st)
{
    (void)st;
    seed = 606;
    check_config(0, 0, 8192);
}

/* Two bad regexes in different parts: the build is refused naming the first, as the serial
 * build does. */
static void first_error_reported(void **st)
{
    (void)st;
    seed = 77;
    json_t *c = make_config(NROUTES, 0, 0, 0);
    json_t *routes = json_object_get(c, "routes");
    size_t bad[] = {9000, 2500}; /* the later one is set first: order of edits is no hint */
    for (size_t k = 0; k < N(bad); k++) {
        json_t *r = json_array_get(routes, bad[k]);
        json_object_set_new(r, "paths", json_pack("[s]", "~/(unclosed"));
        json_object_set_new(r, "protocols", json_pack("[s]", "http"));
        json_object_set_new(r, "service", json_pack("{s:s}", "id", "svc-0"));
    }
    char err[512] = "", serr[512] = "";
    assert_null(dp_generation_build(c, 1, "h", err, sizeof(err)));
    assert_null(dp_router_build(routes, NULL, serr, sizeof(serr)));
    const char *first = json_string_value(json_object_get(json_array_get(routes, 2500), "id"));
    assert_non_null(strstr(err, first));
    assert_string_equal(err, serr);
    json_decref(c);
}

/* A generation built in parallel is the base of an incremental one: the changed route and the
 * kept ones route as a full build of the new config does, after the base is freed. */
static void next_builds_on_parallel(void **st)
{
    (void)st;
    seed = 8;
    json_t *c = make_config(NROUTES, 0, 0, 0);
    char err[512] = "";
    dp_generation *g = dp_generation_build(c, 1, "h", err, sizeof(err));
    if (!g)
        fail_msg("build: %s", err);
    /* a delta's config: every row shared but one replaced */
    json_t *routes = json_array();
    for (size_t i = 0; i < json_array_size(json_object_get(c, "routes")); i++)
        json_array_append(routes, json_array_get(json_object_get(c, "routes"), i));
    json_t *row = json_deep_copy(json_array_get(routes, 4321));
    json_object_set_new(row, "paths", json_pack("[s]", "/a"));
    json_object_set_new(row, "protocols", json_pack("[s]", "http"));
    json_object_set_new(row, "service", json_pack("{s:s}", "id", "svc-0"));
    json_object_set_new(row, "created_at", json_integer(-1)); /* first among its equals */
    json_array_set_new(routes, 4321, row);
    json_t *c2 =
        json_pack("{s:O, s:o}", "services", json_object_get(c, "services"), "routes", routes);
    dp_generation *next = dp_generation_build_next(c2, 2, "h2", g, err, sizeof(err));
    if (!next)
        fail_msg("build_next: %s", err);
    size_t kept = 0;
    for (size_t i = 0; i < next->nroutes; i++)
        kept += next->router->by_index[i] && next->router->by_index[i] == g->router->by_index[i];
    assert_true(kept > NROUTES / 2); /* incremental indeed */
    dp_generation_unref(g);
    dp_generation *full = dp_generation_build(c2, 2, "h2", err, sizeof(err));
    if (!full)
        fail_msg("build: %s", err);
    same_routing(next->router, full->router);
    dp_router_input in = {.method = dp_slice_cstr("GET"),
                          .host = dp_slice_cstr("zz.test"),
                          .port = 8000,
                          .path = dp_slice_cstr("/a/q")};
    dp_router_match m;
    assert_int_equal(dp_router_find(next->router, &in, &m), 0);
    dp_generation_unref(full);
    dp_generation_unref(next);
    json_decref(c2);
    json_decref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rows_in_id_order),
        cmocka_unit_test(rows_in_any_order),
        cmocka_unit_test(repeated_ids),
        cmocka_unit_test(first_error_reported),
        cmocka_unit_test(next_builds_on_parallel),
        cmocka_unit_test(ids_step_back_between_parts),
        cmocka_unit_test(several_sub_routes_each),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
