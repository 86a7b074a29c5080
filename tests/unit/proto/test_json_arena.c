/* The JSON arena: trees built from it are ordinary jansson trees, their memory comes back
 * when the last allocation of each chunk is freed (from any thread), and a whole snapshot
 * decoded on several threads gives back every chunk once freed. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/json_arena.h"
#include "proto/schema.h"
#include "proto/snapshot.h"

static sl_json_arena_stats stats(void)
{
    sl_json_arena_stats s;
    sl_json_arena_stats_get(&s);
    return s;
}

/* Enough small objects to fill several chunks. */
static json_t *build_tree(int n)
{
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "row-%d", i);
        json_array_append_new(arr, json_pack("{s:s, s:i, s:[s,s], s:n}", "name", name, "n", i,
                                             "protocols", "http", "https", "hosts"));
    }
    return arr;
}

static void test_tree_from_arena_and_back(void **state)
{
    (void)state;
    size_t before = stats().chunks_used;
    json_t *plain = build_tree(20000); /* malloc: not in the arena */
    assert_int_equal(stats().chunks_used, before);

    sl_json_arena_enter();
    json_t *t = build_tree(20000);
    sl_json_arena_leave();
    json_t *after_leave = json_string("from malloc again");
    sl_json_arena_flush();
    size_t during = stats().chunks_used;
    assert_true(during > before + 1); /* ~150 bytes a member, 20,000 rows: several MiB */
    assert_true(json_equal(t, plain));
    assert_string_equal(json_string_value(json_object_get(json_array_get(t, 19999), "name")),
                        "row-19999");

    /* a row replaced (as a delta does) frees its part; the chunks stay while others live */
    json_array_set_new(t, 5, json_string("replaced"));
    assert_int_equal(stats().chunks_used, during);
    json_decref(t);
    assert_int_equal(stats().chunks_used, before);
    assert_true(stats().chunks_warm >= during - before);

    /* freed chunks are reused before fresh ones */
    size_t warm = stats().chunks_warm;
    sl_json_arena_enter();
    t = build_tree(100);
    sl_json_arena_leave();
    sl_json_arena_flush();
    assert_int_equal(stats().chunks_warm, warm - 1);
    json_decref(t);
    json_decref(plain);
    json_decref(after_leave);
    assert_int_equal(stats().chunks_used, before);
}

static void test_large_allocations_use_malloc(void **state)
{
    (void)state;
    size_t before = stats().chunks_used;
    char *big = malloc(200000);
    memset(big, 'x', 199999);
    big[199999] = '\0';
    sl_json_arena_enter();
    json_t *s = json_string(big); /* its copy is larger than a chunk may lend */
    json_t *small = json_integer(7);
    sl_json_arena_leave();
    sl_json_arena_flush();
    assert_int_equal(stats().chunks_used, before + 1); /* the small ones only */
    assert_int_equal(json_string_length(s), 199999);
    json_decref(s);
    json_decref(small);
    assert_int_equal(stats().chunks_used, before);
    free(big);
}

typedef struct {
    json_t *tree;
} built;

static void *build_elsewhere(void *arg)
{
    sl_json_arena_enter();
    ((built *)arg)->tree = build_tree(5000);
    sl_json_arena_leave();
    sl_json_arena_flush(); /* the thread ends: its chunk is sealed */
    return NULL;
}

static void test_freed_on_another_thread(void **state)
{
    (void)state;
    size_t before = stats().chunks_used;
    built b[3];
    pthread_t tid[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&tid[i], NULL, build_elsewhere, &b[i]), 0);
    for (int i = 0; i < 3; i++)
        pthread_join(tid[i], NULL);
    assert_true(stats().chunks_used >= before + 3);
    for (int i = 0; i < 3; i++)
        json_decref(b[i].tree);
    assert_int_equal(stats().chunks_used, before);
}

/* A 6,000-route snapshot is read on several threads; the decoded config is what was sent
 * and, freed, gives every chunk back. */
static void test_snapshot_decode_gives_chunks_back(void **state)
{
    (void)state;
    size_t before = stats().chunks_used;
    json_t *routes = json_array();
    const char *svc = "11111111-1111-4111-8111-111111111111";
    for (int i = 0; i < 6000; i++) {
        char id[64], path[32];
        snprintf(id, sizeof(id), "cccccccc-cccc-4ccc-8ccc-%012d", i);
        snprintf(path, sizeof(path), "/r%d", i);
        json_array_append_new(routes, json_pack("{s:s, s:[s], s:{s:s}, s:i, s:i}", "id", id,
                                                "paths", path, "service", "id", svc, "created_at",
                                                1700000000, "updated_at", 1700000001));
    }
    json_t *config = json_pack("{s:[{s:s, s:s, s:i}], s:o}", "services", "id", svc, "host",
                               "a.example", "created_at", 1700000000, "routes", routes);
    const char *name;
    json_t *rows;
    json_object_foreach(config, name, rows)
    {
        size_t i;
        json_t *row, *errs = NULL;
        json_array_foreach(rows, i, row)
        {
            /* as the store holds it: defaults filled */
            assert_int_equal(
                sl_schema_validate(sl_entity_by_name(name), row, SL_VALIDATE_JSON, &errs), 0);
        }
    }
    sl_snapshot s;
    char err[512], hash[SL_SNAPSHOT_HASH_HEX];
    assert_int_equal(sl_snapshot_encode(config, 3, &s, err, sizeof(err)), 0);
    json_t *out = NULL;
    int64_t v;
    int rc = sl_snapshot_decode(s.bytes, s.len, 0, &out, &v, hash, NULL, err, sizeof(err));
    if (rc)
        print_error("decode: %s\n", err);
    assert_int_equal(rc, 0);
    assert_true(stats().chunks_used > before);
    const json_t *r = json_array_get(json_object_get(out, "routes"), 5999);
    assert_string_equal(json_string_value(json_object_get(r, "id")),
                        "cccccccc-cccc-4ccc-8ccc-000000005999");
    assert_string_equal(json_string_value(json_array_get(json_object_get(r, "paths"), 0)),
                        "/r5999");
    assert_true(json_is_true(json_object_get(r, "strip_path")));

    /* re-encoded, the decoded config is the sent one */
    sl_snapshot again;
    assert_int_equal(sl_snapshot_encode(out, 3, &again, err, sizeof(err)), 0);
    assert_string_equal(again.hash, s.hash);
    sl_snapshot_free(&again);

    /* The next snapshot (one route changed) decoded by a node serving this one keeps the other
     * rows and takes nothing from the arena: no chunk outlives its config by more than that. */
    json_object_set_new(json_array_get(json_object_get(config, "routes"), 10), "paths",
                        json_pack("[s]", "/moved"));
    sl_snapshot next;
    assert_int_equal(sl_snapshot_encode(config, 4, &next, err, sizeof(err)), 0);
    sl_digest_set served_digests;
    json_t *served = out;
    assert_int_equal(sl_snapshot_decode_set(s.bytes, s.len, NULL, &out, &v, hash, &served_digests,
                                            NULL, err, sizeof(err)),
                     0);
    json_decref(out); /* a second copy, only for its digests */
    size_t holding = stats().chunks_used;
    sl_snapshot_served from = {served, &served_digests, 0};
    json_t *second = NULL;
    assert_int_equal(sl_snapshot_decode_served(next.bytes, next.len, NULL, &from, &second, &v, hash,
                                               NULL, NULL, err, sizeof(err)),
                     0);
    assert_int_equal(from.taken, 6000); /* the service and 5,999 routes */
    assert_int_equal(stats().chunks_used, holding);
    json_decref(served); /* the kept rows hold their chunks... */
    assert_true(stats().chunks_used > before);
    json_decref(second); /* ...until the config keeping them goes */
    assert_int_equal(stats().chunks_used, before);
    sl_digest_set_free(&served_digests);
    sl_snapshot_free(&next);
    sl_snapshot_free(&s);
    json_decref(config);
}

int main(void)
{
    if (sl_json_arena_install() != 0) {
        printf("the JSON arena is not used in this build (AddressSanitizer): nothing to test\n");
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_from_arena_and_back),
        cmocka_unit_test(test_large_allocations_use_malloc),
        cmocka_unit_test(test_freed_on_another_thread),
        cmocka_unit_test(test_snapshot_decode_gives_chunks_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
