/* dp_generation_build_next after config changes (routes upserted, deleted, changed; services
 * disabled, re-enabled; routes moved to another service) must route every request exactly as
 * a full build of the same config does, while taking the unchanged routes' compiled records
 * over from the previous router. The configs are generated from a fixed seed with many
 * overlapping routes (same paths, same hosts, equal created_at), so a sub-route merged at the
 * wrong rank, a route kept at its old position or an index list left stale picks another
 * route for some request. Each generation is freed before the one built from it, so shared
 * records that were not properly referenced would be used after free (valgrind/ASan). */
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

#define NSVC 6
#define MAXR 512

static uint32_t seed = 12345;

static uint32_t rnd(uint32_t n)
{
    seed = seed * 1103515245u + 12345u;
    return (seed >> 8) % n;
}

static const char *host_pool[] = {"a.test", "b.test", "*.w.test", "x.*", "a.test:8000", "c.test"};
static const char *path_pool[] = {"/",   "/a",         "/a/b",         "/ab",
                                  "/b",  "~/r/\\d+$",  "~/a/[a-z]+",   "/a/b/c",
                                  "/r/", "/a/b/c/d/e", "~/(a|b)/c.*$", "/zz"};
#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The config under test: rows in id order, as delta.c hands them over; a change replaces a
 * row by a new object and keeps every other row (pointer) as it was. */
typedef struct {
    json_t *svcs[NSVC];
    json_t *routes[MAXR];
    size_t nroutes;
    int next_id;
} model;

static json_t *new_service(int i, int enabled)
{
    char id[32], name[32];
    snprintf(id, sizeof(id), "svc-%d", i);
    snprintf(name, sizeof(name), "s%d", i);
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:b}", "id", id, "name", name, "host", "127.0.0.1",
                     "protocol", "http", "port", 80, "enabled", enabled);
}

static json_t *pick_array(const char **pool, size_t n, uint32_t max)
{
    json_t *a = json_array();
    uint32_t k = 1 + rnd(max);
    for (uint32_t i = 0; i < k; i++)
        json_array_append_new(a, json_string(pool[rnd((uint32_t)n)]));
    return a;
}

static json_t *new_route(const char *id)
{
    char svc[32];
    snprintf(svc, sizeof(svc), "svc-%u", rnd(NSVC));
    json_t *r = json_pack("{s:s, s:s, s:{s:s}, s:i, s:i}", "id", id, "name", id, "service", "id",
                          svc, "created_at", (int)rnd(8), "regex_priority", (int)rnd(3));
    if (rnd(10) < 6)
        json_object_set_new(r, "hosts", pick_array(host_pool, N(host_pool), 2));
    if (rnd(10) < 8)
        json_object_set_new(r, "paths", pick_array(path_pool, N(path_pool), 3));
    uint32_t m = rnd(10);
    if (m < 2)
        json_object_set_new(r, "methods", json_pack("[s]", "GET"));
    else if (m < 3)
        json_object_set_new(r, "methods", json_pack("[s,s]", "POST", "GET"));
    uint32_t h = rnd(12);
    if (h == 0)
        json_object_set_new(r, "headers", json_pack("{s:[s]}", "x-v", "1"));
    else if (h == 1)
        json_object_set_new(r, "headers", json_pack("{s:[s,s]}", "x-r", "~*^ab", "zz"));
    if (rnd(20) == 0)
        json_object_set_new(r, "snis", json_pack("[s]", "a.test"));
    uint32_t p = rnd(20);
    json_object_set_new(r, "protocols",
                        p < 2   ? json_pack("[s]", "https")
                        : p < 3 ? json_pack("[s]", "grpc")
                                : json_pack("[s,s]", "http", "https"));
    return r;
}

static void route_id(char *out, size_t cap, int n)
{
    snprintf(out, cap, "r-%06d", n);
}

static void model_init(model *m, size_t n)
{
    memset(m, 0, sizeof(*m));
    for (int i = 0; i < NSVC; i++)
        m->svcs[i] = new_service(i, i != 5);
    for (size_t i = 0; i < n; i++) {
        char id[32];
        route_id(id, sizeof(id), m->next_id += 10);
        m->routes[m->nroutes++] = new_route(id);
    }
}

static json_t *model_config(const model *m)
{
    json_t *svcs = json_array(), *routes = json_array();
    for (int i = 0; i < NSVC; i++)
        json_array_append(svcs, m->svcs[i]);
    for (size_t i = 0; i < m->nroutes; i++)
        json_array_append(routes, m->routes[i]);
    return json_pack("{s:o, s:o}", "services", svcs, "routes", routes);
}

static void model_free(model *m)
{
    for (int i = 0; i < NSVC; i++)
        json_decref(m->svcs[i]);
    for (size_t i = 0; i < m->nroutes; i++)
        json_decref(m->routes[i]);
}

/* A copy of row with key set to v (a changed row is a new object). */
static json_t *changed(json_t *row, const char *key, json_t *v)
{
    json_t *c = json_deep_copy(row);
    json_object_set_new(c, key, v);
    json_decref(row);
    return c;
}

/* One random change of the kinds a delta carries. */
static void mutate(model *m)
{
    uint32_t kind = rnd(9);
    size_t i = m->nroutes ? rnd((uint32_t)m->nroutes) : 0;
    if (kind == 0 && m->nroutes < MAXR) { /* insert a route, usually between two ids */
        char id[32];
        route_id(id, sizeof(id), (int)rnd((uint32_t)m->next_id + 20));
        size_t at = 0;
        while (at < m->nroutes &&
               strcmp(json_string_value(json_object_get(m->routes[at], "id")), id) < 0)
            at++;
        if (at < m->nroutes && !strcmp(json_string_value(json_object_get(m->routes[at], "id")), id))
            return;
        memmove(&m->routes[at + 1], &m->routes[at], (m->nroutes - at) * sizeof(json_t *));
        m->routes[at] = new_route(id);
        m->nroutes++;
    } else if (kind == 1 && m->nroutes > 1) { /* delete */
        json_decref(m->routes[i]);
        memmove(&m->routes[i], &m->routes[i + 1], (m->nroutes - i - 1) * sizeof(json_t *));
        m->nroutes--;
    } else if (kind == 2) {
        m->routes[i] = changed(m->routes[i], "paths", pick_array(path_pool, N(path_pool), 3));
    } else if (kind == 3) {
        m->routes[i] = changed(m->routes[i], "hosts", pick_array(host_pool, N(host_pool), 2));
    } else if (kind == 4) {
        m->routes[i] = changed(m->routes[i], "created_at", json_integer(rnd(8)));
    } else if (kind == 5) {
        m->routes[i] = changed(m->routes[i], "regex_priority", json_integer(rnd(3)));
    } else if (kind == 6) { /* the route moves to another service */
        char svc[32];
        snprintf(svc, sizeof(svc), "svc-%u", rnd(NSVC));
        m->routes[i] = changed(m->routes[i], "service", json_pack("{s:s}", "id", svc));
    } else if (kind == 7) { /* a service is disabled or enabled: its routes' rows stay */
        int s = (int)rnd(NSVC);
        int on = json_is_true(json_object_get(m->svcs[s], "enabled"));
        json_decref(m->svcs[s]);
        m->svcs[s] = new_service(s, !on);
    } else { /* the route is replaced by a whole new one with the same id */
        json_t *id = json_incref(json_object_get(m->routes[i], "id"));
        json_decref(m->routes[i]);
        m->routes[i] = new_route(json_string_value(id));
        json_decref(id);
    }
}

static const char *req_hosts[] = {"a.test", "B.test", "q.w.test", "x.org", "c.test", "zz.test"};
static const char *req_paths[] = {"/",  "/a",    "/a/b",   "/a/b/c/d/e/f", "/ab",
                                  "/b", "/r/12", "/a/xyz", "/b/cat",       "/zzz"};

/* Every request of the grid routes the same (route id, matched length) on both. */
static void same_routing(const dp_generation *a, const dp_generation *b)
{
    static const char *methods[] = {"GET", "POST"};
    static const char *hdr_names[] = {"", "X-V", "x_r"};
    static const char *hdr_vals[] = {"", "1", "ABc"};
    size_t checked = 0, matched = 0;
    for (size_t h = 0; h < N(req_hosts); h++)
        for (size_t p = 0; p < N(req_paths); p++)
            for (int mi = 0; mi < 2; mi++)
                for (int https = 0; https < 2; https++)
                    for (int hd = 0; hd < 3; hd++)
                        for (int port = 0; port < 2; port++) {
                            dp_header hdr = {dp_slice_cstr(hdr_names[hd]),
                                             dp_slice_cstr(hdr_vals[hd])};
                            dp_router_input in = {
                                .method = dp_slice_cstr(methods[mi]),
                                .host = dp_slice_cstr(req_hosts[h]),
                                .port = port ? 8000 : 8443,
                                .path = dp_slice_cstr(req_paths[p]),
                                .sni = https ? dp_slice_cstr("a.test") : dp_slice_cstr(""),
                                .https = https,
                                .headers = hd ? &hdr : NULL,
                                .nheaders = hd ? 1 : 0,
                            };
                            dp_router_match ma = {-1, 0}, mb = {-1, 0};
                            int ra = dp_router_find(a->router, &in, &ma);
                            int rb = dp_router_find(b->router, &in, &mb);
                            const char *ida = ra == 0 ? a->routes[ma.route].id : "(none)";
                            const char *idb = rb == 0 ? b->routes[mb.route].id : "(none)";
                            if (ra != rb || strcmp(ida, idb) != 0 || ma.prefix_len != mb.prefix_len)
                                fail_msg("%s %s%s (https %d, header %s): incremental %s/%zu, "
                                         "full %s/%zu",
                                         methods[mi], req_hosts[h], req_paths[p], https,
                                         hdr_names[hd], ida, ma.prefix_len, idb, mb.prefix_len);
                            checked++;
                            matched += ra == 0;
                        }
    /* the grid must exercise the router, not only its misses */
    assert_true(matched > checked / 4);
}

/* The same routes, services and flags generation-wide. */
static void same_generation(const dp_generation *a, const dp_generation *b)
{
    assert_int_equal(a->nroutes, b->nroutes);
    for (size_t i = 0; i < a->nroutes; i++) {
        const dp_route *x = &a->routes[i], *y = &b->routes[i];
        assert_string_equal(x->id, y->id);
        assert_int_equal(x->protocols, y->protocols);
        assert_int_equal(x->strip_path, y->strip_path);
        assert_int_equal(!!x->service, !!y->service);
        if (x->service) {
            assert_string_equal(x->service->id, y->service->id);
            assert_ptr_equal(x->service, &a->services[x->service - a->services]);
        }
    }
    size_t ra, rb, ma, mb;
    dp_router_stats(a->router, &ra, &ma, NULL, NULL);
    dp_router_stats(b->router, &rb, &mb, NULL, NULL);
    assert_int_equal(ra, rb);
    assert_int_equal(ma, mb);
}

/* Counts the routes of cur whose row is prev's (unchanged) and that both routers serve
 * (keepable), and how many of those cur's router took over from prev's (kept). */
static void count_kept(const dp_generation *prev, const dp_generation *cur, size_t *keepable,
                       size_t *kept)
{
    json_t *pr = json_object_get(prev->config, "routes");
    json_t *cr = json_object_get(cur->config, "routes");
    *keepable = *kept = 0;
    for (size_t i = 0, j = 0; i < json_array_size(cr); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(cr, i), "id"));
        while (j < json_array_size(pr) && strcmp(prev->routes[j].id, id) < 0)
            j++;
        if (j == json_array_size(pr) || json_array_get(pr, j) != json_array_get(cr, i) ||
            !cur->router->by_index[i] || !prev->router->by_index[j])
            continue;
        (*keepable)++;
        *kept += cur->router->by_index[i] == prev->router->by_index[j];
    }
}

static void run(size_t nroutes, int steps, int changes_per_step)
{
    model m;
    model_init(&m, nroutes);
    char err[512] = "";
    json_t *c = model_config(&m);
    dp_generation *g = dp_generation_build(c, 1, "h1", err, sizeof(err));
    json_decref(c);
    if (!g)
        fail_msg("build: %s", err);
    size_t total_kept = 0, total_keepable = 0, fresh = 0;
    for (int s = 0; s < steps; s++) {
        for (int k = 0; k < changes_per_step; k++)
            mutate(&m);
        c = model_config(&m);
        dp_generation *next = dp_generation_build_next(c, s + 2, "h", g, err, sizeof(err));
        if (!next)
            fail_msg("build_next: %s", err);
        dp_generation *full = dp_generation_build(c, s + 2, "h", err, sizeof(err));
        if (!full)
            fail_msg("build: %s", err);
        json_decref(c);
        same_generation(next, full);
        same_routing(next, full);
        size_t keepable, nkept;
        count_kept(g, next, &keepable, &nkept);
        /* every unchanged route is taken over, unless this build started afresh (garbage) */
        if (nkept != keepable) {
            assert_int_equal(nkept, 0);
            fresh++;
        }
        total_kept += nkept;
        total_keepable += keepable;
        dp_generation_unref(full);
        /* the previous generation goes first: next must hold what it shares */
        dp_generation_unref(g);
        g = next;
        same_routing(g, g);
    }
    /* small changes must be incremental, or this test proves nothing about reuse */
    assert_true(total_kept > total_keepable / 2);
    assert_true(fresh <= (size_t)steps / 10);
    dp_generation_unref(g);
    model_free(&m);
}

static void one_change_at_a_time(void **st)
{
    (void)st;
    seed = 12345;
    run(300, 60, 1);
}

static void several_changes_at_a_time(void **st)
{
    (void)st;
    seed = 777;
    run(200, 30, 8);
}

/* Many steps on a small config: the garbage bound makes some builds full ones in between
 * (a router that built on its predecessor forever would grow without bound), and routing stays
 * the same across those switches. */
static void long_run(void **st)
{
    (void)st;
    seed = 4242;
    run(40, 400, 2);
}

/* A bad regex in a changed route is refused like in a full build, and the previous
 * generation stays usable. */
static void bad_regex_refused(void **st)
{
    (void)st;
    seed = 99;
    model m;
    model_init(&m, 50);
    char err[512] = "";
    json_t *c = model_config(&m);
    dp_generation *g = dp_generation_build(c, 1, "h1", err, sizeof(err));
    json_decref(c);
    assert_non_null(g);
    m.routes[7] = changed(m.routes[7], "paths", json_pack("[s]", "~/(unclosed"));
    m.routes[7] = changed(m.routes[7], "protocols", json_pack("[s]", "http"));
    /* every service enabled, so the route is compiled whichever it names */
    for (int i = 0; i < NSVC; i++) {
        json_decref(m.svcs[i]);
        m.svcs[i] = new_service(i, 1);
    }
    c = model_config(&m);
    err[0] = 0;
    assert_null(dp_generation_build_next(c, 2, "h2", g, err, sizeof(err)));
    assert_non_null(strstr(err, "invalid regex"));
    json_decref(c);
    same_routing(g, g);
    dp_generation_unref(g);
    model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_change_at_a_time),
        cmocka_unit_test(several_changes_at_a_time),
        cmocka_unit_test(long_run),
        cmocka_unit_test(bad_regex_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
