/* Snapshot codec: what a data plane relies on. The same config always gives the same bytes
 * and hash; anything damaged, oversized, inconsistent or invalid is refused with a message
 * that says what is wrong; fields and entities from a newer control plane are tolerated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/compress.h"
#include "proto/digest.h"
#include "proto/msgpack_json.h"
#include "proto/schema.h"
#include "proto/snapshot.h"

#define SVC1 "11111111-1111-4111-8111-111111111111"
#define SVC2 "22222222-2222-4222-8222-222222222222"
#define RT1 "33333333-3333-4333-8333-333333333333"
#define RT2 "44444444-4444-4444-8444-444444444444"
#define CONS1 "55555555-5555-4555-8555-555555555555"
#define KA1 "66666666-6666-4666-8666-666666666666"
#define MISSING "99999999-9999-4999-8999-999999999999"

/* An entity as the store returns it: validated (defaults filled) and every schema field
 * present, null when unset. */
static json_t *stored(const char *entity, json_t *row)
{
    const sl_entity *e = sl_entity_by_name(entity);
    assert_non_null(e);
    if (!json_object_get(row, "created_at"))
        json_object_set_new(row, "created_at", json_integer(1700000000));
    if (sl_entity_field(e, "updated_at") && !json_object_get(row, "updated_at"))
        json_object_set_new(row, "updated_at", json_integer(1700000001));
    json_t *errs = NULL;
    int rc = sl_schema_validate(e, row, SL_VALIDATE_JSON, &errs);
    if (rc) {
        char *msg = sl_schema_violation_message(errs, rc);
        print_error("fixture %s invalid: %s\n", entity, msg);
        free(msg);
    }
    assert_int_equal(rc, 0);
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

static json_t *route(const char *id, const char *path, const char *service_id)
{
    return stored("routes", json_pack("{s:s, s:[s], s:{s:s}}", "id", id, "paths", path, "service",
                                      "id", service_id));
}

/* A small config touching several entities and value kinds (arrays, records, foreign keys). */
static json_t *small_config(int reversed)
{
    json_t *svcs = json_array(), *routes = json_array();
    json_t *s1 = service(SVC1, "one", "one.example"), *s2 = service(SVC2, "two", "two.example");
    json_t *r1 = route(RT1, "/one", SVC1), *r2 = route(RT2, "/two", SVC2);
    json_object_set_new(r1, "tags", json_pack("[s,s]", "b", "a"));
    json_array_append_new(svcs, reversed ? s2 : s1);
    json_array_append_new(svcs, reversed ? s1 : s2);
    json_array_append_new(routes, reversed ? r2 : r1);
    json_array_append_new(routes, reversed ? r1 : r2);
    json_t *cons = json_pack(
        "[o]", stored("consumers", json_pack("{s:s, s:s}", "id", CONS1, "username", "alice")));
    json_t *keys = json_pack(
        "[o]", stored("keyauth_credentials", json_pack("{s:s, s:s, s:{s:s}}", "id", KA1, "key",
                                                       "secret-key", "consumer", "id", CONS1)));
    return json_pack("{s:o, s:o, s:o, s:o}", "services", svcs, "routes", routes, "consumers", cons,
                     "keyauth_credentials", keys);
}

/* The decoder's view of a config: every known entity present. */
static json_t *with_all_entities(json_t *config)
{
    for (size_t i = 0; i < sl_entity_count; i++)
        if (!json_object_get(config, sl_entities[i]->name))
            json_object_set_new(config, sl_entities[i]->name, json_array());
    return config;
}

/* Calls fn for every row of every entity of config. */
static void each_row(json_t *config, void (*fn)(const char *entity, json_t *row, void *arg),
                     void *arg)
{
    const char *name;
    json_t *rows;
    json_object_foreach(config, name, rows)
    {
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row) fn(name, row, arg);
    }
}

static void drop_nulls(const char *entity, json_t *row, void *arg)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(row, tmp, k, v)
    {
        if (json_is_null(v))
            json_object_del(row, k);
    }
}

/* What decoding config gives: every entity present, and no row member that is null (canonical
 * bytes cannot tell a null field from an absent one, and the decoder keeps neither). */
static json_t *as_decoded(json_t *config)
{
    with_all_entities(config);
    each_row(config, drop_nulls, NULL);
    return config;
}

/* Copies an object with its keys inserted in reverse order (to show key order is irrelevant). */
static json_t *reverse_keys(const json_t *o)
{
    const char *keys[64];
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) keys[n++] = k;
    json_t *out = json_object();
    while (n--)
        json_object_set(out, keys[n], json_object_get(o, keys[n]));
    return out;
}

static void encode_ok(const json_t *config, int64_t version, sl_snapshot *s)
{
    char err[256] = "";
    int rc = sl_snapshot_encode(config, version, s, err, sizeof(err));
    if (rc)
        print_error("encode: %s\n", err);
    assert_int_equal(rc, 0);
}

/* Decodes expecting failure; returns err (static) for message checks. */
/* config at version encodes to exactly the bytes of s. */
static void assert_encodes_to(const json_t *config, int64_t version, const sl_snapshot *s)
{
    sl_snapshot again;
    encode_ok(config, version, &again);
    assert_int_equal(again.len, s->len);
    assert_memory_equal(again.bytes, s->bytes, s->len);
    sl_snapshot_free(&again);
}

static const char *decode_fails(const unsigned char *b, size_t len, const sl_snapshot_limits *lim,
                                json_t **errors)
{
    static char err[1024];
    json_t *cfg = (json_t *)1;
    int64_t v = -7;
    char hash[SL_SNAPSHOT_HASH_HEX];
    err[0] = '\0';
    int rc = sl_snapshot_decode_limits(b, len, lim, &cfg, &v, hash, errors, err, sizeof(err));
    assert_int_equal(rc, -1);
    assert_null(cfg);
    assert_true(err[0] != '\0');
    return err;
}

/* An envelope around arbitrary canonical bytes (correctly hashed and compressed), with the
 * given type and format, so tests can reach the decoder's inner checks. */
static void envelope_of_payload(const unsigned char *z, size_t zlen, int64_t version,
                                const char *type, int format, const char *hash,
                                msgpack_sbuffer *out)
{
    msgpack_sbuffer_init(out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    sl_mp_pack_cstr(&pk, "type");
    sl_mp_pack_cstr(&pk, type);
    sl_mp_pack_cstr(&pk, "format");
    msgpack_pack_int64(&pk, format);
    sl_mp_pack_cstr(&pk, "version");
    msgpack_pack_int64(&pk, version);
    sl_mp_pack_cstr(&pk, "hash");
    sl_mp_pack_cstr(&pk, hash);
    sl_mp_pack_cstr(&pk, "payload");
    msgpack_pack_bin(&pk, zlen);
    msgpack_pack_bin_body(&pk, z, zlen);
}

static void make_envelope(const void *canon, size_t clen, int64_t version, const char *type,
                          int format, const char *hash_override, msgpack_sbuffer *out)
{
    char hash[SL_SHA256_HEX], err[128];
    unsigned char *z;
    size_t zlen;
    /* the config hash of the rows as they are; bytes that are no payload get any hash (the
     * decoder refuses them before it looks) */
    if (sl_snapshot_payload_hash(canon, clen, hash))
        assert_int_equal(sl_sha256_hex(canon, clen, hash), 0);
    assert_int_equal(sl_deflate(canon, clen, &z, &zlen, err, sizeof(err)), 0);
    envelope_of_payload(z, zlen, version, type, format, hash_override ? hash_override : hash, out);
    free(z);
}

/* Canonical bytes for a JSON object, keys in sorted order (format and version included by the
 * caller as members of obj). */
static void pack_canonical(const json_t *obj, msgpack_sbuffer *out)
{
    char err[128];
    msgpack_sbuffer_init(out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    assert_int_equal(sl_mp_pack_json(&pk, obj, err, sizeof(err)), 0);
}

/* Rows a sender did not sort come out in id order: data planes apply deltas to sorted arrays. */
static void test_unsorted_rows_come_out_sorted(void **state)
{
    json_t *config = small_config(1); /* services and routes in reverse id order */
    json_t *obj = json_deep_copy(config);
    json_object_set_new(obj, "format", json_integer(SL_SNAPSHOT_FORMAT));
    json_object_set_new(obj, "version", json_integer(3));
    msgpack_sbuffer canon, env;
    pack_canonical(obj, &canon);
    make_envelope(canon.data, canon.size, 3, "snapshot", SL_SNAPSHOT_FORMAT, NULL, &env);
    json_t *out;
    int64_t v;
    char hash[SL_SNAPSHOT_HASH_HEX], err[256];
    assert_int_equal(sl_snapshot_decode((unsigned char *)env.data, env.size, 0, &out, &v, hash,
                                        NULL, err, sizeof(err)),
                     0);
    json_t *routes = json_object_get(out, "routes");
    assert_string_equal(json_string_value(json_object_get(json_array_get(routes, 0), "id")), RT1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(routes, 1), "id")), RT2);
    json_t *svcs = json_object_get(out, "services");
    assert_string_equal(json_string_value(json_object_get(json_array_get(svcs, 0), "id")), SVC1);
    json_decref(out);
    msgpack_sbuffer_destroy(&env);
    msgpack_sbuffer_destroy(&canon);
    json_decref(obj);
    json_decref(config);
}

static void test_round_trip(void **state)
{
    json_t *config = small_config(0);
    sl_snapshot s;
    encode_ok(config, 42, &s);
    assert_int_equal(s.version, 42);
    assert_true(sl_is_sha256_hex(s.hash, strlen(s.hash)));
    assert_true(s.len > 0 && s.canonical_len > 0);

    json_t *out = NULL, *errors = NULL;
    int64_t version = 0;
    char hash[SL_SNAPSHOT_HASH_HEX], err[256];
    int rc = sl_snapshot_decode(s.bytes, s.len, 0, &out, &version, hash, &errors, err, sizeof(err));
    if (rc)
        print_error("decode: %s\n", err);
    assert_int_equal(rc, 0);
    assert_null(errors);
    assert_int_equal(version, 42);
    assert_string_equal(hash, s.hash);
    as_decoded(config);
    if (!json_equal(out, config)) {
        char *a = json_dumps(out, JSON_SORT_KEYS), *b = json_dumps(config, JSON_SORT_KEYS);
        print_error("decoded %s\nexpected %s\n", a, b);
        free(a);
        free(b);
    }
    assert_true(json_equal(out, config));

    /* peek agrees without decompressing */
    int64_t pv = 0;
    char ph[SL_SNAPSHOT_HASH_HEX];
    assert_int_equal(sl_snapshot_peek(s.bytes, s.len, &pv, ph), 0);
    assert_int_equal(pv, 42);
    assert_string_equal(ph, s.hash);

    /* re-encoding what was decoded gives the same bytes: the DP's cache equals the CP's */
    assert_encodes_to(out, 42, &s);
    json_decref(out);
    json_decref(config);
    sl_snapshot_free(&s);
}

static void test_empty_config(void **state)
{
    json_t *config = json_object();
    sl_snapshot s;
    encode_ok(config, 1, &s);
    json_t *out;
    int64_t v;
    char hash[SL_SNAPSHOT_HASH_HEX], err[256];
    assert_int_equal(sl_snapshot_decode(s.bytes, s.len, 0, &out, &v, hash, NULL, err, sizeof(err)),
                     0);
    assert_true(json_equal(out, as_decoded(config)));
    json_decref(out);
    json_decref(config);
    sl_snapshot_free(&s);
}

static void test_deterministic(void **state)
{
    json_t *a = small_config(0), *b = small_config(1);
    /* also insert every row's keys in the opposite order */
    const char *name;
    json_t *rows;
    json_object_foreach(b, name, rows)
    {
        for (size_t i = 0; i < json_array_size(rows); i++) {
            json_t *rev = reverse_keys(json_array_get(rows, i));
            json_array_set_new(rows, i, rev);
        }
    }
    sl_snapshot sa, sb;
    encode_ok(a, 7, &sa);
    encode_ok(b, 7, &sb);
    assert_string_equal(sa.hash, sb.hash);
    assert_int_equal(sa.len, sb.len);
    assert_memory_equal(sa.bytes, sb.bytes, sa.len);
    sl_snapshot_free(&sa);
    sl_snapshot_free(&sb);
    json_decref(a);
    json_decref(b);
}

static void test_hash_covers_everything(void **state)
{
    json_t *config = small_config(0);
    sl_snapshot base, other;
    encode_ok(config, 7, &base);

    encode_ok(config, 8, &other); /* the hash names the content, not the version */
    assert_string_equal(base.hash, other.hash);
    sl_snapshot_free(&other);

    json_t *r = json_array_get(json_object_get(config, "routes"), 0);
    json_t *old_paths = json_incref(json_object_get(r, "paths"));
    json_object_set_new(r, "paths", json_pack("[s]", "/onE")); /* one character */
    encode_ok(config, 7, &other);
    assert_string_not_equal(base.hash, other.hash);
    sl_snapshot_free(&other);
    json_object_set_new(r, "paths", old_paths);

    json_t *svc = json_array_get(json_object_get(config, "services"), 1);
    json_object_set_new(svc, "port", json_integer(81)); /* an integer */
    encode_ok(config, 7, &other);
    assert_string_not_equal(base.hash, other.hash);
    sl_snapshot_free(&other);

    json_object_set_new(svc, "port", json_integer(80));
    json_object_set_new(r, "tags", json_pack("[s,s]", "a", "b")); /* array order matters */
    encode_ok(config, 7, &other);
    assert_string_not_equal(base.hash, other.hash);
    sl_snapshot_free(&other);

    json_object_set_new(r, "tags", json_pack("[s,s]", "b", "a")); /* back: same hash again */
    encode_ok(config, 7, &other);
    assert_string_equal(base.hash, other.hash);
    sl_snapshot_free(&other);

    json_array_remove(json_object_get(config, "keyauth_credentials"), 0); /* a row */
    encode_ok(config, 7, &other);
    assert_string_not_equal(base.hash, other.hash);
    sl_snapshot_free(&other);

    sl_snapshot_free(&base);
    json_decref(config);
}

static void test_corrupt_and_truncated(void **state)
{
    json_t *config = small_config(0);
    sl_snapshot s;
    encode_ok(config, 3, &s);
    unsigned char *copy = malloc(s.len);
    /* Every flipped byte is caught (the payload by inflate's checksum or the hash), except the
     * rare flip that leaves the inflated bytes unchanged (padding bits, a back-reference to an
     * equal run elsewhere): those must decode to the very same config and hash. */
    json_t *expect = as_decoded(json_deep_copy(config));
    size_t harmless = 0;
    for (size_t i = 0; i < s.len; i++) {
        memcpy(copy, s.bytes, s.len);
        copy[i] ^= 0x20;
        json_t *out = NULL;
        int64_t v;
        char hash[SL_SNAPSHOT_HASH_HEX], err[256];
        if (sl_snapshot_decode(copy, s.len, 0, &out, &v, hash, NULL, err, sizeof(err)) == 0) {
            assert_true(json_equal(out, expect));
            assert_string_equal(hash, s.hash);
            assert_int_equal(v, 3);
            json_decref(out);
            harmless++;
        }
    }
    assert_true(harmless * 50 < s.len); /* rare: nearly every flip is refused */
    json_decref(expect);
    /* every truncation is caught */
    for (size_t n = 0; n < s.len; n++)
        decode_fails(s.bytes, n, NULL, NULL);
    /* trailing garbage too */
    unsigned char *longer = malloc(s.len + 1);
    memcpy(longer, s.bytes, s.len);
    longer[s.len] = 0xc0;
    assert_non_null(strstr(decode_fails(longer, s.len + 1, NULL, NULL), "unexpected bytes"));
    free(longer);
    free(copy);
    sl_snapshot_free(&s);
    json_decref(config);
}

static void test_oversized(void **state)
{
    json_t *config = small_config(0);
    sl_snapshot s;
    encode_ok(config, 3, &s);
    sl_snapshot_limits lim = {.max_compressed = s.len - 1};
    const char *err = decode_fails(s.bytes, s.len, &lim, NULL);
    assert_non_null(strstr(err, "over the limit"));
    /* sl_snapshot_decode's own max_compressed argument is honoured too */
    json_t *out;
    int64_t v;
    char hash[SL_SNAPSHOT_HASH_HEX], e2[256];
    assert_int_equal(
        sl_snapshot_decode(s.bytes, s.len, s.len - 1, &out, &v, hash, NULL, e2, sizeof(e2)), -1);
    assert_int_equal(
        sl_snapshot_decode(s.bytes, s.len, s.len, &out, &v, hash, NULL, e2, sizeof(e2)), 0);
    json_decref(out);
    /* a payload that inflates past max_canonical */
    lim = (sl_snapshot_limits){.max_canonical = s.canonical_len - 1};
    assert_non_null(strstr(decode_fails(s.bytes, s.len, &lim, NULL), "exceeds the limit"));
    sl_snapshot_free(&s);
    json_decref(config);
}

static void test_zip_bomb(void **state)
{
    /* 64 MiB of zeros compresses to ~64 KiB; the decoder must stop at its bound instead of
     * inflating (and allocating) all of it. */
    size_t big = 64u << 20;
    unsigned char *zeros = calloc(1, big);
    msgpack_sbuffer env;
    make_envelope(zeros, big, 1, "snapshot", SL_SNAPSHOT_FORMAT, NULL, &env);
    free(zeros);
    assert_true(env.size < big / 100);
    sl_snapshot_limits lim = {.max_canonical = 1u << 20};
    const char *err = decode_fails((unsigned char *)env.data, env.size, &lim, NULL);
    assert_non_null(strstr(err, "exceeds the limit of 1048576"));
    msgpack_sbuffer_destroy(&env);

    /* the bounded inflate never hands back more than its bound */
    unsigned char in[4096] = {0}, *z, *out;
    size_t zlen, olen;
    char e[128];
    assert_int_equal(sl_deflate(in, sizeof(in), &z, &zlen, e, sizeof(e)), 0);
    assert_int_equal(sl_inflate_bounded(z, zlen, sizeof(in), &out, &olen, e, sizeof(e)), 0);
    assert_int_equal(olen, sizeof(in));
    free(out);
    assert_int_equal(sl_inflate_bounded(z, zlen, sizeof(in) - 1, &out, &olen, e, sizeof(e)), -1);
    free(z);
}

static void test_bad_hash(void **state)
{
    msgpack_sbuffer canon, env;
    json_t *obj = json_pack("{s:i, s:i}", "format", SL_SNAPSHOT_FORMAT, "version", 5);
    pack_canonical(obj, &canon);
    make_envelope(canon.data, canon.size, 5, "snapshot", SL_SNAPSHOT_FORMAT,
                  "0000000000000000000000000000000000000000000000000000000000000000", &env);
    const char *err = decode_fails((unsigned char *)env.data, env.size, NULL, NULL);
    assert_non_null(strstr(err, "hash mismatch"));
    msgpack_sbuffer_destroy(&env);

    make_envelope(canon.data, canon.size, 5, "snapshot", SL_SNAPSHOT_FORMAT, "ABC", &env);
    err = decode_fails((unsigned char *)env.data, env.size, NULL, NULL);
    assert_non_null(strstr(err, "hash"));
    msgpack_sbuffer_destroy(&env);

    /* right hash, but the envelope claims another version than the payload */
    make_envelope(canon.data, canon.size, 6, "snapshot", SL_SNAPSHOT_FORMAT, NULL, &env);
    err = decode_fails((unsigned char *)env.data, env.size, NULL, NULL);
    assert_non_null(strstr(err, "version"));
    msgpack_sbuffer_destroy(&env);
    msgpack_sbuffer_destroy(&canon);
    json_decref(obj);
}

static void test_wrong_format(void **state)
{
    msgpack_sbuffer canon, env;
    json_t *obj = json_pack("{s:i, s:i}", "format", SL_SNAPSHOT_FORMAT, "version", 5);
    pack_canonical(obj, &canon);

    make_envelope(canon.data, canon.size, 5, "snapshot", 1, NULL, &env);
    assert_non_null(strstr(decode_fails((unsigned char *)env.data, env.size, NULL, NULL),
                           "unsupported snapshot format 1"));
    msgpack_sbuffer_destroy(&env);

    make_envelope(canon.data, canon.size, 5, "hello", SL_SNAPSHOT_FORMAT, NULL, &env);
    assert_non_null(
        strstr(decode_fails((unsigned char *)env.data, env.size, NULL, NULL), "\"hello\""));
    msgpack_sbuffer_destroy(&env);

    /* not msgpack at all: JSON text */
    const char *text = "{\"type\":\"snapshot\"}";
    assert_non_null(
        strstr(decode_fails((const unsigned char *)text, strlen(text), NULL, NULL), "envelope"));
    int64_t v;
    char hash[SL_SNAPSHOT_HASH_HEX];
    assert_int_equal(sl_snapshot_peek((const unsigned char *)text, strlen(text), &v, hash), -1);

    /* canonical payload that is an array, and one with a wrong inner format */
    msgpack_sbuffer_destroy(&canon);
    json_t *arr = json_pack("[i]", 1);
    pack_canonical(arr, &canon);
    make_envelope(canon.data, canon.size, 5, "snapshot", SL_SNAPSHOT_FORMAT, NULL, &env);
    assert_non_null(
        strstr(decode_fails((unsigned char *)env.data, env.size, NULL, NULL), "expected map"));
    msgpack_sbuffer_destroy(&env);
    msgpack_sbuffer_destroy(&canon);
    json_object_set_new(obj, "format", json_integer(9));
    pack_canonical(obj, &canon);
    make_envelope(canon.data, canon.size, 5, "snapshot", SL_SNAPSHOT_FORMAT, NULL, &env);
    assert_non_null(
        strstr(decode_fails((unsigned char *)env.data, env.size, NULL, NULL), "format 9"));
    msgpack_sbuffer_destroy(&env);
    msgpack_sbuffer_destroy(&canon);
    json_decref(arr);
    json_decref(obj);
}

static void test_missing_reference(void **state)
{
    json_t *config = small_config(0);
    json_array_append_new(json_object_get(config, "routes"),
                          route("77777777-7777-4777-8777-777777777777", "/lost", MISSING));
    sl_snapshot s;
    encode_ok(config, 9, &s);
    json_t *errors = NULL;
    const char *err = decode_fails(s.bytes, s.len, NULL, &errors);
    assert_non_null(strstr(err, "routes 77777777-7777-4777-8777-777777777777"));
    assert_non_null(strstr(err, "services id " MISSING));
    assert_int_equal(json_array_size(errors), 1);
    json_t *r = json_array_get(errors, 0);
    assert_string_equal(json_string_value(json_object_get(r, "entity")), "routes");
    assert_string_equal(json_string_value(json_object_get(r, "id")),
                        "77777777-7777-4777-8777-777777777777");
    assert_non_null(strstr(
        json_string_value(json_object_get(json_object_get(r, "errors"), "service")), MISSING));
    json_decref(errors);
    sl_snapshot_free(&s);
    json_decref(config);
}

/* A null row member in a snapshot is left out of the decoded row and validation does not put
 * it back (nor makes up a key-auth key for it). A required field sent as null gets its default when
 * it has one (as from a sender that does not know the field; a gRPC route's strip_path defaults to
 * false) and is refused when it has none. A plugin's nested config is plain JSON: its nulls are
 * kept and its absent members get their defaults. */
static void test_null_members(void **state)
{
    json_t *config = small_config(0);
    json_object_set_new(config, "plugins",
                        json_pack("[o]", stored("plugins", json_pack("{s:s, s:s}", "id", MISSING,
                                                                     "name", "key-auth"))));
    json_t *kc = json_object_get(json_array_get(json_object_get(config, "plugins"), 0), "config");
    json_object_set_new(kc, "anonymous", json_null());
    json_object_del(kc, "key_in_body");
    /* a credential sent without a key gets none (an API write would get a random one) */
    json_t *nokey =
        stored("keyauth_credentials",
               json_pack("{s:s, s:s, s:{s:s}}", "id", "77777777-0000-4777-8777-777777777777", "key",
                         "temporary", "consumer", "id", CONS1));
    json_object_set_new(nokey, "key", json_null());
    json_array_append_new(json_object_get(config, "keyauth_credentials"), nokey);
    sl_snapshot s;
    encode_ok(config, 5, &s);
    json_t *out = NULL;
    int64_t v;
    char hash[SL_SNAPSHOT_HASH_HEX], err[256];
    int rc = sl_snapshot_decode(s.bytes, s.len, 0, &out, &v, hash, NULL, err, sizeof(err));
    if (rc)
        print_error("decode: %s\n", err);
    assert_int_equal(rc, 0);
    const json_t *r;
    r = json_array_get(json_object_get(out, "routes"), 0);
    assert_true(json_is_null(
        json_object_get(json_array_get(json_object_get(config, "routes"), 0), "hosts")));
    assert_null(json_object_get(r, "hosts"));
    assert_non_null(json_object_get(r, "paths"));
    const json_t *pc =
        json_object_get(json_array_get(json_object_get(out, "plugins"), 0), "config");
    assert_true(json_is_null(json_object_get(pc, "anonymous")));
    assert_true(json_is_false(json_object_get(pc, "key_in_body")));
    const json_t *cred = json_array_get(json_object_get(out, "keyauth_credentials"), 1);
    assert_string_equal(json_string_value(json_object_get(cred, "id")),
                        "77777777-0000-4777-8777-777777777777");
    assert_null(json_object_get(cred, "key"));
    json_decref(out);
    sl_snapshot_free(&s);

    json_t *grpc = route("77777777-7777-4777-8777-777777777777", "/g", SVC1);
    json_object_set_new(grpc, "protocols", json_pack("[s]", "grpc"));
    json_object_set_new(grpc, "strip_path", json_null());
    json_array_append_new(json_object_get(config, "routes"), grpc);
    json_object_set_new(json_array_get(json_object_get(config, "services"), 0), "host",
                        json_null());
    encode_ok(config, 6, &s);
    json_t *errors = NULL;
    const char *why = decode_fails(s.bytes, s.len, NULL, &errors);
    assert_non_null(strstr(why, "services " SVC1));
    assert_int_equal(json_array_size(errors), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(errors, 0), "errors"), "host")),
                        "required field missing");
    json_decref(errors);
    sl_snapshot_free(&s);

    json_object_set_new(json_array_get(json_object_get(config, "services"), 0), "host",
                        json_string("back.example"));
    encode_ok(config, 7, &s);
    rc = sl_snapshot_decode(s.bytes, s.len, 0, &out, &v, hash, NULL, err, sizeof(err));
    if (rc)
        print_error("decode: %s\n", err);
    assert_int_equal(rc, 0);
    r = json_array_get(json_object_get(out, "routes"), 2);
    assert_string_equal(json_string_value(json_object_get(r, "id")),
                        "77777777-7777-4777-8777-777777777777");
    assert_true(json_is_false(json_object_get(r, "strip_path")));
    json_decref(out);
    sl_snapshot_free(&s);
    json_decref(config);
}

static void test_wrong_types_named_per_entity(void **state)
{
    json_t *config = small_config(0);
    json_t *r = json_array_get(json_object_get(config, "routes"), 1);
    json_object_set_new(r, "paths", json_integer(5));
    json_t *svc = json_array_get(json_object_get(config, "services"), 0);
    json_object_set_new(svc, "port", json_string("eighty"));
    sl_snapshot s;
    encode_ok(config, 9, &s); /* the encoder does not validate; the decoder must */
    json_t *errors = NULL;
    const char *err = decode_fails(s.bytes, s.len, NULL, &errors);
    assert_non_null(strstr(err, "2 invalid entities"));
    assert_int_equal(json_array_size(errors), 2);
    int saw_route = 0, saw_service = 0;
    for (size_t i = 0; i < 2; i++) {
        json_t *e = json_array_get(errors, i);
        const char *ent = json_string_value(json_object_get(e, "entity"));
        json_t *fields = json_object_get(e, "errors");
        if (strcmp(ent, "routes") == 0) {
            saw_route = 1;
            assert_string_equal(json_string_value(json_object_get(e, "id")), RT2);
            assert_non_null(json_object_get(fields, "paths"));
        } else {
            saw_service = 1;
            assert_string_equal(json_string_value(json_object_get(e, "id")), SVC1);
            assert_non_null(json_object_get(fields, "port"));
        }
    }
    assert_true(saw_route && saw_service);
    json_decref(errors);
    sl_snapshot_free(&s);
    json_decref(config);
}

static void test_reasons_bounded(void **state)
{
    json_t *config = small_config(0), *routes = json_object_get(config, "routes");
    for (int i = 0; i < 150; i++) {
        char id[64];
        snprintf(id, sizeof(id), "aaaaaaaa-aaaa-4aaa-8aaa-%012d", i);
        json_array_append_new(routes, route(id, "/x", MISSING));
    }
    sl_snapshot s;
    encode_ok(config, 9, &s);
    json_t *errors = NULL;
    const char *err = decode_fails(s.bytes, s.len, NULL, &errors);
    assert_non_null(strstr(err, "150 invalid entities"));
    assert_int_equal(json_array_size(errors), SL_SNAPSHOT_MAX_REASONS);
    json_decref(errors);
    sl_snapshot_free(&s);
    json_decref(config);
}

static void test_duplicate_ids(void **state)
{
    json_t *config = small_config(0);
    json_t *svcs = json_object_get(config, "services");
    json_array_append(svcs, json_array_get(svcs, 0));
    sl_snapshot s;
    char err[256];
    /* the encoder refuses, naming the id ... */
    assert_int_equal(sl_snapshot_encode(config, 1, &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, SVC1));
    /* ... and so does the decoder for a payload built elsewhere */
    json_t *obj =
        json_pack("{s:i, s:i, s:O}", "format", SL_SNAPSHOT_FORMAT, "version", 1, "services", svcs);
    msgpack_sbuffer canon, env;
    pack_canonical(obj, &canon);
    make_envelope(canon.data, canon.size, 1, "snapshot", SL_SNAPSHOT_FORMAT, NULL, &env);
    assert_non_null(
        strstr(decode_fails((unsigned char *)env.data, env.size, NULL, NULL), "duplicate"));
    msgpack_sbuffer_destroy(&env);
    msgpack_sbuffer_destroy(&canon);
    json_decref(obj);
    json_decref(config);
}

static void test_row_without_id(void **state)
{
    /* id is generated by the store, so the schema does not require it on input; a snapshot
     * row without one could not be referenced or reported, so the decoder refuses it. */
    json_t *obj = json_pack("{s:i, s:i, s:[{s:s}]}", "format", SL_SNAPSHOT_FORMAT, "version", 4,
                            "consumers", "username", "nobody");
    msgpack_sbuffer canon, env;
    pack_canonical(obj, &canon);
    make_envelope(canon.data, canon.size, 4, "snapshot", SL_SNAPSHOT_FORMAT, NULL, &env);
    json_t *errors = NULL;
    const char *err = decode_fails((unsigned char *)env.data, env.size, NULL, &errors);
    assert_non_null(strstr(err, "consumers"));
    assert_non_null(strstr(err, "id: required field missing"));
    assert_int_equal(json_array_size(errors), 1);
    json_decref(errors);
    msgpack_sbuffer_destroy(&env);
    msgpack_sbuffer_destroy(&canon);
    json_decref(obj);
}

static void test_unknown_fields_and_entities_tolerated(void **state)
{
    /* A newer control plane adds a field to services and a whole new entity. */
    json_t *config = small_config(0);
    json_t *obj = json_deep_copy(config);
    json_object_set_new(obj, "format", json_integer(SL_SNAPSHOT_FORMAT));
    json_object_set_new(obj, "version", json_integer(11));
    json_object_set_new(json_array_get(json_object_get(obj, "services"), 0), "future_field",
                        json_pack("{s:[i,i]}", "nested", 1, 2));
    json_object_set_new(obj, "future_entities", json_pack("[{s:s}]", "id", "x"));
    msgpack_sbuffer canon, env;
    pack_canonical(obj, &canon);
    make_envelope(canon.data, canon.size, 11, "snapshot", SL_SNAPSHOT_FORMAT, NULL, &env);

    json_t *out;
    int64_t v;
    char hash[SL_SNAPSHOT_HASH_HEX], err[256];
    int rc = sl_snapshot_decode((unsigned char *)env.data, env.size, 0, &out, &v, hash, NULL, err,
                                sizeof(err));
    if (rc)
        print_error("decode: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(v, 11);
    assert_true(json_equal(out, as_decoded(config)));
    assert_null(json_object_get(out, "future_entities"));
    json_decref(out);
    msgpack_sbuffer_destroy(&env);
    msgpack_sbuffer_destroy(&canon);
    json_decref(obj);
    json_decref(config);
}

static void test_hostile_msgpack(void **state)
{
    /* A canonical map whose routes array claims 4 billion rows in a few bytes: refused before
     * any allocation for them. */
    static const unsigned char lie[] = {
        0x83, 0xa6, 'f',  'o', 'r', 'm', 'a', 't', 0x02, 0xa7, 'v',  'e',  'r',  's',  'i', 'o',
        'n',  0x01, 0xa6, 'r', 'o', 'u', 't', 'e', 's',  0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
    msgpack_sbuffer env;
    make_envelope(lie, sizeof(lie), 1, "snapshot", SL_SNAPSHOT_FORMAT, NULL, &env);
    assert_non_null(
        strstr(decode_fails((unsigned char *)env.data, env.size, NULL, NULL), "exceeds"));
    msgpack_sbuffer_destroy(&env);

    /* A row that names a field twice (the second would silently win in a JSON object). */
    static const unsigned char dup[] = {0x83, 0xa6, 'f', 'o', 'r', 'm', 'a',  't',  0x02, 0xa7, 'v',
                                        'e',  'r',  's', 'i', 'o', 'n', 0x01, 0xa9, 'c',  'o',  'n',
                                        's',  'u',  'm', 'e', 'r', 's', 0x91, 0x82, 0xa8, 'u',  's',
                                        'e',  'r',  'n', 'a', 'm', 'e', 0xa1, 'a',  0xa8, 'u',  's',
                                        'e',  'r',  'n', 'a', 'm', 'e', 0xa1, 'b'};
    make_envelope(dup, sizeof(dup), 1, "snapshot", SL_SNAPSHOT_FORMAT, NULL, &env);
    assert_non_null(strstr(decode_fails((unsigned char *)env.data, env.size, NULL, NULL),
                           "duplicate field username"));
    msgpack_sbuffer_destroy(&env);

    /* More rows than max_rows */
    json_t *config = small_config(0);
    sl_snapshot s;
    encode_ok(config, 2, &s);
    sl_snapshot_limits lim = {.max_rows = 1};
    assert_non_null(strstr(decode_fails(s.bytes, s.len, &lim, NULL), "over the limit of 1"));
    sl_snapshot_free(&s);

    /* Nesting deeper than the reader allows, inside a field value (unknown or known). */
    size_t depth = 200;
    unsigned char *deep = malloc(depth + 64);
    size_t n = 0;
    /* {"format": 2, "version": 1, "deep": [{"x": [[[...]]]}]}: an entity this node does
     * not know, whose one row holds the deep value */
    static const unsigned char head[] = {0x83, 0xa6, 'f', 'o', 'r', 'm',  'a',  't',  0x02,
                                         0xa7, 'v',  'e', 'r', 's', 'i',  'o',  'n',  0x01,
                                         0xa4, 'd',  'e', 'e', 'p', 0x91, 0x81, 0xa1, 'x'};
    memcpy(deep, head, sizeof(head));
    n = sizeof(head);
    for (size_t i = 0; i < depth; i++)
        deep[n++] = 0x91; /* [ [ [ ... */
    deep[n++] = 0xc0;
    make_envelope(deep, n, 1, "snapshot", SL_SNAPSHOT_FORMAT, NULL, &env);
    assert_non_null(
        strstr(decode_fails((unsigned char *)env.data, env.size, NULL, NULL), "nested deeper"));
    msgpack_sbuffer_destroy(&env);
    free(deep);
    json_decref(config);
}

/* Large snapshots are validated on several threads: results must not depend on that. */
/* The compressed payload of an envelope. */
static void payload_of(const unsigned char *env, size_t len, const unsigned char **z,
                       uint32_t *zlen)
{
    sl_mp_reader r;
    uint32_t n;
    char err[128];
    sl_mp_reader_init(&r, env, len);
    assert_int_equal(sl_mp_read_map(&r, &n, err, sizeof(err)), 0);
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t klen;
        assert_int_equal(sl_mp_read_str(&r, &k, &klen, err, sizeof(err)), 0);
        if (klen == 7 && memcmp(k, "payload", 7) == 0) {
            assert_int_equal(sl_mp_read_bin(&r, z, zlen, err, sizeof(err)), 0);
            return;
        }
        assert_int_equal(sl_mp_skip(&r, err, sizeof(err)), 0);
    }
    fail();
}

/* A large payload is read while it is still being inflated: the result is the same config,
 * and damage anywhere in the compressed stream (corrupt, truncated, trailing bytes, over the
 * bound) is refused with the error a whole inflate gives, not what the read made of it. */
static void test_large_payload_read_while_inflating(void **state)
{
    json_t *config = small_config(0), *routes = json_object_get(config, "routes");
    uint64_t x = 88172645463325252u; /* ids and paths that do not compress away */
    for (int i = 0; i < 20000; i++) {
        char id[64], path[32];
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        snprintf(id, sizeof(id), "%08x-dddd-4ddd-8ddd-%012llx", (unsigned)(x >> 32),
                 (unsigned long long)(x & 0xffffffffffffull));
        snprintf(path, sizeof(path), "/s%llx", (unsigned long long)(x >> 20));
        json_array_append_new(routes, route(id, path, i % 2 ? SVC1 : SVC2));
    }
    sl_snapshot s;
    encode_ok(config, 21, &s);
    const unsigned char *z;
    uint32_t zlen;
    payload_of(s.bytes, s.len, &z, &zlen);
    assert_true(zlen > 384 * 1024); /* past the 256 KiB that are inflated on a thread */
    json_t *out = NULL;
    int64_t v;
    char hash[SL_SNAPSHOT_HASH_HEX], err[512];
    assert_int_equal(sl_snapshot_decode(s.bytes, s.len, 0, &out, &v, hash, NULL, err, sizeof(err)),
                     0);
    /* the same config: it encodes to the very bytes that were sent */
    assert_int_equal(json_array_size(json_object_get(out, "routes")), 20002);
    assert_encodes_to(out, 21, &s);
    json_decref(out);

    unsigned char *bad = malloc(zlen + 2);
    const size_t at[] = {zlen / 10, zlen / 2, zlen - zlen / 10, zlen - 2};
    for (size_t i = 0; i < sizeof(at) / sizeof(*at); i++) {
        memcpy(bad, z, zlen);
        bad[at[i]] ^= 0x55;
        unsigned char *whole = NULL;
        size_t wlen;
        char want[256];
        int wrc = sl_inflate_bounded(bad, zlen, SL_SNAPSHOT_MAX_CANONICAL, &whole, &wlen, want,
                                     sizeof(want));
        free(whole);
        msgpack_sbuffer env;
        envelope_of_payload(bad, zlen, 21, "snapshot", SL_SNAPSHOT_FORMAT, s.hash, &env);
        const char *why = decode_fails((unsigned char *)env.data, env.size, NULL, NULL);
        if (wrc != 0)
            assert_string_equal(why, want);
        msgpack_sbuffer_destroy(&env);
    }
    struct {
        size_t len;
        size_t max_canonical;
        const char *want;
    } cases[] = {
        {zlen / 2, 0, "truncated compressed payload"},
        {zlen + 2, 0, "2 unexpected bytes after the compressed payload"},
        {zlen, s.canonical_len - 1, "decompressed payload exceeds the limit of"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        memcpy(bad, z, zlen);
        bad[zlen] = bad[zlen + 1] = 'x';
        msgpack_sbuffer env;
        envelope_of_payload(bad, cases[i].len, 21, "snapshot", SL_SNAPSHOT_FORMAT, s.hash, &env);
        sl_snapshot_limits lim = {.max_canonical = cases[i].max_canonical};
        const char *why = decode_fails((unsigned char *)env.data, env.size, &lim, NULL);
        assert_non_null(strstr(why, cases[i].want));
        msgpack_sbuffer_destroy(&env);
    }
    /* exactly at the bound is not over it */
    sl_snapshot_limits exact = {.max_canonical = s.canonical_len};
    assert_int_equal(
        sl_snapshot_decode_limits(s.bytes, s.len, &exact, &out, &v, hash, NULL, err, sizeof(err)),
        0);
    json_decref(out);
    free(bad);
    sl_snapshot_free(&s);
    json_decref(config);
}

/* Decoding with the served config (a data plane that has one) takes over every row the new
 * snapshot has unchanged: the same object, not decoded again. Changed and new rows are read;
 * the result is what a plain decode gives. A served digest that does not match the bytes (same
 * id, other content) is no reason to take a row over. Many rows (read on several threads) too. */
struct served_rows {
    const json_t *served;
    size_t same;
};

static void count_served(const char *entity, json_t *row, void *arg)
{
    struct served_rows *sr = arg;
    const json_t *old = json_object_get(sr->served, entity);
    for (size_t j = 0; j < json_array_size(old); j++)
        sr->same += json_array_get(old, j) == row;
}

static void check_served(json_t *before, json_t *after, size_t unchanged)
{
    sl_snapshot s1, s2;
    encode_ok(before, 1, &s1);
    encode_ok(after, 2, &s2);
    json_t *served = NULL, *plain = NULL, *out = NULL;
    int64_t v;
    char hash[SL_SNAPSHOT_HASH_HEX], err[512];
    sl_digest_set d1, d2, d3;
    assert_int_equal(sl_snapshot_decode_set(s1.bytes, s1.len, NULL, &served, &v, hash, &d1, NULL,
                                            err, sizeof(err)),
                     0);
    assert_int_equal(sl_snapshot_decode_set(s2.bytes, s2.len, NULL, &plain, &v, hash, &d2, NULL,
                                            err, sizeof(err)),
                     0);
    sl_snapshot_served from = {served, &d1, 0};
    int rc = sl_snapshot_decode_served(s2.bytes, s2.len, NULL, &from, &out, &v, hash, &d3, NULL,
                                       err, sizeof(err));
    if (rc)
        print_error("decode: %s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(hash, s2.hash);
    assert_true(json_equal(out, plain));
    assert_int_equal(from.taken, unchanged);
    /* taken over means the very object; the others are new */
    struct served_rows sr = {served, 0};
    each_row(out, count_served, &sr);
    size_t same = sr.same;
    assert_int_equal(same, unchanged);

    /* the served digests claim other bytes for every row: nothing is taken over */
    for (size_t x = 0; x < sl_entity_count; x++)
        for (size_t i = 0; i < d1.known[x].n; i++)
            d1.known[x].digests[i].b[0] ^= 1;
    json_t *fresh = NULL;
    sl_snapshot_served lied = {served, &d1, 0};
    assert_int_equal(sl_snapshot_decode_served(s2.bytes, s2.len, NULL, &lied, &fresh, &v, hash,
                                               NULL, NULL, err, sizeof(err)),
                     0);
    assert_int_equal(lied.taken, 0);
    assert_true(json_equal(fresh, plain));
    json_decref(fresh);
    json_decref(out);
    json_decref(plain);
    json_decref(served);
    sl_digest_set_free(&d1);
    sl_digest_set_free(&d2);
    sl_digest_set_free(&d3);
    sl_snapshot_free(&s1);
    sl_snapshot_free(&s2);
}

static void test_served_rows_taken_over(void **state)
{
    /* small: route 2 changed, a route added, the rest (2 services, route 1, a consumer and
     * its key) unchanged */
    json_t *before = small_config(0), *after = small_config(0);
    json_object_set_new(json_array_get(json_object_get(after, "routes"), 1), "paths",
                        json_pack("[s]", "/two-changed"));
    json_array_append_new(json_object_get(after, "routes"),
                          route("77777777-7777-4777-8777-777777777777", "/new", SVC1));
    check_served(before, after, 5);
    json_decref(before);
    json_decref(after);

    /* 5,000 routes, one of them changed, one deleted */
    before = small_config(0);
    for (int i = 0; i < 5000; i++) {
        char id[64], path[32];
        snprintf(id, sizeof(id), "eeeeeeee-eeee-4eee-8eee-%012d", i);
        snprintf(path, sizeof(path), "/t%d", i);
        json_array_append_new(json_object_get(before, "routes"),
                              route(id, path, i % 2 ? SVC1 : SVC2));
    }
    after = json_deep_copy(before);
    json_t *routes = json_object_get(after, "routes");
    json_object_set_new(json_array_get(routes, 2500), "paths", json_pack("[s]", "/moved"));
    json_array_remove(routes, 4000);
    /* 5,002 routes + 2 services + consumer + key = 5,006 rows; one changed, one gone */
    check_served(before, after, 5004);
    json_decref(before);
    json_decref(after);
}

static void test_large_config(void **state)
{
    json_t *config = small_config(0), *routes = json_object_get(config, "routes");
    for (int i = 0; i < 6000; i++) {
        char id[64], path[32];
        snprintf(id, sizeof(id), "cccccccc-cccc-4ccc-8ccc-%012d", i);
        snprintf(path, sizeof(path), "/r%d", i);
        json_array_append_new(routes, route(id, path, i % 2 ? SVC1 : SVC2));
    }
    sl_snapshot s;
    encode_ok(config, 12, &s);
    json_t *out = NULL;
    int64_t v;
    char hash[SL_SNAPSHOT_HASH_HEX], err[512];
    assert_int_equal(sl_snapshot_decode(s.bytes, s.len, 0, &out, &v, hash, NULL, err, sizeof(err)),
                     0);
    assert_true(json_equal(out, as_decoded(config)));
    json_decref(out);
    sl_snapshot_free(&s);

    /* break rows 5999, 3000 and 17 (in that order in the input): reasons come in row order
     * (rows are sorted by id), the same on every run */
    int bad[] = {5999, 3000, 17};
    for (int b = 0; b < 3; b++) {
        json_t *r = json_array_get(routes, 2 + bad[b]);
        json_object_set_new(r, "strip_path", json_string("yes"));
    }
    encode_ok(config, 13, &s);
    for (int run = 0; run < 3; run++) {
        json_t *errors = NULL;
        const char *msg = decode_fails(s.bytes, s.len, NULL, &errors);
        assert_non_null(strstr(msg, "3 invalid entities, first: routes "
                                    "cccccccc-cccc-4ccc-8ccc-000000000017"));
        assert_int_equal(json_array_size(errors), 3);
        assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 1), "id")),
                            "cccccccc-cccc-4ccc-8ccc-000000003000");
        assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 2), "id")),
                            "cccccccc-cccc-4ccc-8ccc-000000005999");
        assert_non_null(
            json_object_get(json_object_get(json_array_get(errors, 0), "errors"), "strip_path"));
        json_decref(errors);
    }
    sl_snapshot_free(&s);
    json_decref(config);
}

/* Canonical bytes of n consumers, hand-packed so that rows listed in dup[] carry their
 * "username" key twice (what no JSON object can express). */
static void pack_consumers(int n, const int *dup, size_t ndup, msgpack_sbuffer *out)
{
    msgpack_sbuffer_init(out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    sl_mp_pack_cstr(&pk, "consumers");
    msgpack_pack_array(&pk, (size_t)n);
    for (int i = 0; i < n; i++) {
        int twice = 0;
        for (size_t d = 0; d < ndup; d++)
            twice |= dup[d] == i;
        char id[64], name[32];
        snprintf(id, sizeof(id), "dddddddd-dddd-4ddd-8ddd-%012d", i);
        snprintf(name, sizeof(name), "user%d", i);
        msgpack_pack_map(&pk, twice ? 3 : 2);
        sl_mp_pack_cstr(&pk, "id");
        sl_mp_pack_cstr(&pk, id);
        for (int t = 0; t <= twice; t++) {
            sl_mp_pack_cstr(&pk, "username");
            sl_mp_pack_cstr(&pk, name);
        }
    }
    sl_mp_pack_cstr(&pk, "format");
    msgpack_pack_int64(&pk, SL_SNAPSHOT_FORMAT);
    sl_mp_pack_cstr(&pk, "version");
    msgpack_pack_int64(&pk, 3);
}

/* Large entities are read on several threads: a damaged row is still reported as the first
 * one in the array, whichever thread meets it, and references across thousands of rows are
 * all checked. */
static void test_large_config_errors(void **state)
{
    /* rows 5000 and 17 repeat a key: the message names row 17 on every run */
    int dup[] = {5000, 17};
    msgpack_sbuffer canon, env;
    pack_consumers(6000, dup, 2, &canon);
    make_envelope(canon.data, canon.size, 3, "snapshot", SL_SNAPSHOT_FORMAT, NULL, &env);
    for (int run = 0; run < 3; run++) {
        const char *err = decode_fails((unsigned char *)env.data, env.size, NULL, NULL);
        assert_non_null(strstr(err, "consumers[17]: duplicate field username"));
    }
    msgpack_sbuffer_destroy(&env);
    msgpack_sbuffer_destroy(&canon);

    /* the same rows without damage decode whole, in order */
    pack_consumers(6000, NULL, 0, &canon);
    make_envelope(canon.data, canon.size, 3, "snapshot", SL_SNAPSHOT_FORMAT, NULL, &env);
    json_t *out = NULL;
    int64_t v;
    char hash[SL_SNAPSHOT_HASH_HEX], err[512];
    assert_int_equal(sl_snapshot_decode((unsigned char *)env.data, env.size, 0, &out, &v, hash,
                                        NULL, err, sizeof(err)),
                     0);
    json_t *rows = json_object_get(out, "consumers");
    assert_int_equal(json_array_size(rows), 6000);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 4321), "username")),
                        "user4321");
    json_decref(out);
    /* cut short inside the rows: refused with a message, nothing returned */
    msgpack_sbuffer_destroy(&env);
    make_envelope(canon.data, canon.size / 2, 3, "snapshot", SL_SNAPSHOT_FORMAT, NULL, &env);
    decode_fails((unsigned char *)env.data, env.size, NULL, NULL);
    msgpack_sbuffer_destroy(&env);
    msgpack_sbuffer_destroy(&canon);

    /* 6,000 routes, two of them (far apart) pointing at a service that is not there */
    json_t *config = small_config(0), *routes = json_object_get(config, "routes");
    for (int i = 0; i < 6000; i++) {
        char id[64], path[32];
        snprintf(id, sizeof(id), "eeeeeeee-eeee-4eee-8eee-%012d", i);
        snprintf(path, sizeof(path), "/e%d", i);
        json_array_append_new(routes, route(id, path, i == 4999 || i == 12 ? MISSING : SVC1));
    }
    sl_snapshot s;
    encode_ok(config, 14, &s);
    json_t *errors = NULL;
    const char *msg = decode_fails(s.bytes, s.len, NULL, &errors);
    assert_non_null(strstr(msg, "2 invalid entities, first: routes "
                                "eeeeeeee-eeee-4eee-8eee-000000000012"));
    assert_int_equal(json_array_size(errors), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 1), "id")),
                        "eeeeeeee-eeee-4eee-8eee-000000004999");
    json_decref(errors);
    sl_snapshot_free(&s);
    json_decref(config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_large_config_errors),
        cmocka_unit_test(test_unsorted_rows_come_out_sorted),
        cmocka_unit_test(test_empty_config),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_hash_covers_everything),
        cmocka_unit_test(test_corrupt_and_truncated),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_zip_bomb),
        cmocka_unit_test(test_bad_hash),
        cmocka_unit_test(test_wrong_format),
        cmocka_unit_test(test_missing_reference),
        cmocka_unit_test(test_null_members),
        cmocka_unit_test(test_wrong_types_named_per_entity),
        cmocka_unit_test(test_reasons_bounded),
        cmocka_unit_test(test_duplicate_ids),
        cmocka_unit_test(test_row_without_id),
        cmocka_unit_test(test_unknown_fields_and_entities_tolerated),
        cmocka_unit_test(test_hostile_msgpack),
        cmocka_unit_test(test_large_config),
        cmocka_unit_test(test_served_rows_taken_over),
        cmocka_unit_test(test_large_payload_read_while_inflating),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
