/* Config deltas: what a data plane that applies changes instead of whole snapshots relies on.
 * Applying a delta's digests to the digests of the old config gives exactly the hash of a full
 * snapshot of the new config; anything ambiguous, damaged or invalid is refused with a reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/compress.h"
#include "proto/config_hash.h"
#include "proto/msgpack_json.h"
#include "proto/schema.h"
#include "proto/snapshot.h"
#include "proto/snapshot_delta.h"

#define SVC1 "11111111-1111-4111-8111-111111111111"
#define RT1 "33333333-3333-4333-8333-333333333333"
#define RT2 "44444444-4444-4444-8444-444444444444"
#define RT3 "45444444-4444-4444-8444-444444444444"
#define H0 "0000000000000000000000000000000000000000000000000000000000000000"

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

static json_t *route(const char *id, const char *path)
{
    return stored("routes", json_pack("{s:s, s:[s], s:{s:s}}", "id", id, "paths", path, "service",
                                      "id", SVC1));
}

static json_t *config_with(json_t *routes)
{
    json_t *svc = stored(
        "services", json_pack("{s:s, s:s, s:s}", "id", SVC1, "name", "one", "host", "one.example"));
    return json_pack("{s:[o], s:o}", "services", svc, "routes", routes);
}

static size_t entity_index(const char *name)
{
    for (size_t x = 0; x < sl_entity_count; x++)
        if (strcmp(sl_entities[x]->name, name) == 0)
            return x;
    fail();
    return 0;
}

static void test_round_trip_and_hash(void **state)
{
    /* v1: routes 1 and 2; v2: route 1 changed, route 2 deleted, route 3 added */
    json_t *v1 = config_with(json_pack("[o,o]", route(RT1, "/one"), route(RT2, "/two")));
    json_t *r1b = route(RT1, "/one-changed"), *r3 = route(RT3, "/three");
    json_t *v2 = config_with(json_pack("[O,O]", r1b, r3));
    sl_snapshot s1, s2;
    sl_row_digests *d1 = calloc(sl_entity_count, sizeof(*d1));
    char err[256];
    assert_int_equal(sl_snapshot_encode_digests(v1, 1, &s1, d1, err, sizeof(err)), 0);
    assert_int_equal(sl_snapshot_encode(v2, 2, &s2, err, sizeof(err)), 0);
    assert_string_not_equal(s1.hash, s2.hash);

    json_t *up = json_pack("{s:[O,O]}", "routes", r3, r1b); /* any order in, id order out */
    json_t *del = json_pack("{s:[s]}", "routes", RT2);
    sl_delta d;
    assert_int_equal(sl_delta_encode(up, del, 1, s1.hash, 2, s2.hash, &d, err, sizeof(err)), 0);

    int64_t bv, v;
    char bh[65], h[65];
    assert_int_equal(sl_delta_peek(d.bytes, d.len, &bv, bh, &v, h), 0);
    assert_int_equal(bv, 1);
    assert_int_equal(v, 2);
    assert_string_equal(bh, s1.hash);
    assert_string_equal(h, s2.hash);

    sl_delta_decoded dd;
    int rc = sl_delta_decode(d.bytes, d.len, NULL, &dd, NULL, err, sizeof(err));
    if (rc)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(dd.nupserts, 2);
    assert_int_equal(dd.ndeletes, 1);
    assert_string_equal(dd.upserts[0].id, RT1);
    assert_string_equal(dd.upserts[1].id, RT3);
    /* the decoded row is the sent one, its null members left out */
    sl_digest sent, mine_row;
    assert_int_equal(sl_row_digest(dd.upserts[0].entity, r1b, &sent, err, sizeof(err)), 0);
    assert_int_equal(
        sl_row_digest(dd.upserts[0].entity, dd.upserts[0].row, &mine_row, err, sizeof(err)), 0);
    assert_memory_equal(sent.b, mine_row.b, 32);
    assert_true(json_is_null(json_object_get(r1b, "hosts")));
    assert_null(json_object_get(dd.upserts[0].row, "hosts"));
    assert_string_equal(dd.deletes[0].id, RT2);
    assert_string_equal(dd.deletes[0].entity->name, "routes");

    /* the receiver's bookkeeping: old digests + the delta's = the new snapshot's hash */
    size_t rx = entity_index("routes");
    for (size_t i = 0; i < dd.nupserts; i++) {
        sl_digest mine;
        assert_int_equal(
            sl_row_digest(dd.upserts[i].entity, dd.upserts[i].row, &mine, err, sizeof(err)), 0);
        assert_memory_equal(mine.b, dd.upserts[i].digest.b, 32);
        assert_int_equal(sl_row_digests_set(&d1[rx], dd.upserts[i].id, &dd.upserts[i].digest), 0);
    }
    assert_int_equal(sl_row_digests_remove(&d1[rx], RT2), 0);
    assert_int_equal(sl_row_digests_remove(&d1[rx], RT2), -1);
    char got[65];
    sl_config_hash(d1, got);
    assert_string_equal(got, s2.hash);

    sl_delta_decoded_free(&dd);
    sl_delta_free(&d);
    sl_config_digests_free(d1);
    free(d1);
    sl_snapshot_free(&s1);
    sl_snapshot_free(&s2);
    json_decref(up);
    json_decref(del);
    json_decref(r1b);
    json_decref(r3);
    json_decref(v1);
    json_decref(v2);
}

static void test_encoder_refuses(void **state)
{
    sl_delta d;
    char err[256];
    json_t *up = json_pack("{s:[]}", "gadgets");
    assert_int_equal(sl_delta_encode(up, NULL, 1, H0, 2, H0, &d, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown entity gadgets"));
    json_decref(up);
    assert_int_equal(sl_delta_encode(NULL, NULL, 2, H0, 2, H0, &d, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "grow"));
    assert_int_equal(sl_delta_encode(NULL, NULL, 1, "abc", 2, H0, &d, err, sizeof(err)), -1);
    json_t *del = json_pack("{s:[s,s]}", "routes", RT1, RT1);
    assert_int_equal(sl_delta_encode(NULL, del, 1, H0, 2, H0, &d, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "listed twice"));
    json_decref(del);
}

/* A delta envelope around hand-made canonical bytes, to reach the decoder's checks. */
static void make_delta(const json_t *canon_obj, int64_t base, int64_t version, msgpack_sbuffer *out)
{
    char err[128];
    msgpack_sbuffer canon;
    msgpack_sbuffer_init(&canon);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &canon, msgpack_sbuffer_write);
    assert_int_equal(sl_mp_pack_json(&pk, canon_obj, err, sizeof(err)), 0);
    unsigned char *z;
    size_t zlen;
    assert_int_equal(
        sl_deflate((unsigned char *)canon.data, canon.size, &z, &zlen, err, sizeof(err)), 0);
    msgpack_sbuffer_destroy(&canon);
    msgpack_sbuffer_init(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 7);
    sl_mp_pack_cstr(&pk, "type");
    sl_mp_pack_cstr(&pk, "delta");
    sl_mp_pack_cstr(&pk, "format");
    msgpack_pack_int64(&pk, SL_SNAPSHOT_FORMAT);
    sl_mp_pack_cstr(&pk, "base_version");
    msgpack_pack_int64(&pk, base);
    sl_mp_pack_cstr(&pk, "base_hash");
    sl_mp_pack_cstr(&pk, H0);
    sl_mp_pack_cstr(&pk, "version");
    msgpack_pack_int64(&pk, version);
    sl_mp_pack_cstr(&pk, "hash");
    sl_mp_pack_cstr(&pk, H0);
    sl_mp_pack_cstr(&pk, "payload");
    msgpack_pack_bin(&pk, zlen);
    msgpack_pack_bin_body(&pk, z, zlen);
    free(z);
}

static const char *decode_fails(const json_t *canon_obj, int64_t base, int64_t version,
                                const sl_snapshot_limits *lim, json_t **errors)
{
    static char err[512];
    msgpack_sbuffer env;
    make_delta(canon_obj, base, version, &env);
    sl_delta_decoded dd;
    assert_int_equal(
        sl_delta_decode((unsigned char *)env.data, env.size, lim, &dd, errors, err, sizeof(err)),
        -1);
    assert_int_equal(dd.nupserts + dd.ndeletes, 0);
    msgpack_sbuffer_destroy(&env);
    return err;
}

static void test_decoder_refuses(void **state)
{
    json_t *r1 = route(RT1, "/one"), *r2 = route(RT2, "/two");
    /* the same id twice, and out of order */
    json_t *o = json_pack("{s:{s:[O,O]}, s:{}}", "upsert", "routes", r2, r1, "delete");
    json_t *errors = NULL;
    assert_non_null(strstr(decode_fails(o, 1, 2, NULL, &errors), "out of order"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "id")), RT1);
    json_decref(errors);
    json_decref(o);
    /* upserted and deleted at once */
    o = json_pack("{s:{s:[O]}, s:{s:[s]}}", "upsert", "routes", r1, "delete", "routes", RT1);
    assert_non_null(strstr(decode_fails(o, 1, 2, NULL, NULL), "both upserted and deleted"));
    json_decref(o);
    /* a row the schema refuses, named with its field */
    json_t *bad = json_deep_copy(r1);
    json_object_set_new(bad, "protocols", json_pack("[s]", "gopher"));
    o = json_pack("{s:{s:[O]}, s:{}}", "upsert", "routes", bad, "delete");
    errors = NULL;
    decode_fails(o, 1, 2, NULL, &errors);
    assert_non_null(
        json_object_get(json_object_get(json_array_get(errors, 0), "errors"), "protocols"));
    json_decref(errors);
    json_decref(o);
    json_decref(bad);
    /* a deleted id that is no uuid */
    o = json_pack("{s:{}, s:{s:[s]}}", "upsert", "delete", "routes", "../../etc");
    assert_non_null(strstr(decode_fails(o, 1, 2, NULL, NULL), "not a uuid"));
    json_decref(o);
    /* versions that do not grow */
    o = json_pack("{s:{}, s:{}}", "upsert", "delete");
    assert_non_null(strstr(decode_fails(o, 5, 5, NULL, NULL), "do not grow"));
    json_decref(o);
    /* more rows than allowed */
    o = json_pack("{s:{s:[O,O]}, s:{}}", "upsert", "routes", r1, r2, "delete");
    sl_snapshot_limits lim = {.max_rows = 1};
    assert_non_null(strstr(decode_fails(o, 1, 2, &lim, NULL), "over the limit of 1"));
    json_decref(o);
    /* a part missing */
    o = json_pack("{s:{}}", "upsert");
    assert_non_null(strstr(decode_fails(o, 1, 2, NULL, NULL), "no \"delete\""));
    json_decref(o);
    json_decref(r1);
    json_decref(r2);
}

static void test_unknown_entities_keep_their_digests(void **state)
{
    /* a newer control plane's entity: no row for this node, but its digest, for the hash */
    json_t *o = json_pack("{s:{s:[{s:s, s:i}]}, s:{s:[s]}}", "upsert", "gadgets", "id", RT1, "size",
                          3, "delete", "gadgets", RT2);
    msgpack_sbuffer env;
    make_delta(o, 1, 2, &env);
    sl_delta_decoded dd;
    char err[256];
    assert_int_equal(
        sl_delta_decode((unsigned char *)env.data, env.size, NULL, &dd, NULL, err, sizeof(err)), 0);
    assert_int_equal(dd.nupserts, 1);
    assert_null(dd.upserts[0].entity);
    assert_null(dd.upserts[0].row);
    assert_string_equal(dd.upserts[0].entity_name, "gadgets");
    assert_string_equal(dd.upserts[0].id, RT1);
    assert_string_equal(dd.deletes[0].entity_name, "gadgets");
    sl_delta_decoded_free(&dd);
    msgpack_sbuffer_destroy(&env);
    json_decref(o);
}

static void test_damage_refused(void **state)
{
    json_t *r1 = route(RT1, "/one");
    json_t *up = json_pack("{s:[O]}", "routes", r1);
    sl_delta d;
    char err[256];
    assert_int_equal(sl_delta_encode(up, NULL, 1, H0, 2, H0, &d, err, sizeof(err)), 0);
    sl_delta_decoded dd;
    for (size_t cut = 0; cut < d.len; cut += 7)
        assert_int_equal(sl_delta_decode(d.bytes, cut, NULL, &dd, NULL, err, sizeof(err)), -1);
    sl_snapshot_limits lim = {.max_compressed = d.len - 1};
    assert_int_equal(sl_delta_decode(d.bytes, d.len, &lim, &dd, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "over the limit"));
    /* a snapshot is not a delta */
    sl_snapshot s;
    json_t *cfg = config_with(json_pack("[O]", r1));
    assert_int_equal(sl_snapshot_encode(cfg, 3, &s, err, sizeof(err)), 0);
    assert_int_equal(sl_delta_decode(s.bytes, s.len, NULL, &dd, NULL, err, sizeof(err)), -1);
    sl_snapshot_free(&s);
    json_decref(cfg);
    sl_delta_free(&d);
    json_decref(up);
    json_decref(r1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_hash),
        cmocka_unit_test(test_encoder_refuses),
        cmocka_unit_test(test_decoder_refuses),
        cmocka_unit_test(test_unknown_entities_keep_their_digests),
        cmocka_unit_test(test_damage_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
