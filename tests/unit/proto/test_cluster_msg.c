/* Cluster control messages: what a data plane and a control plane say to each other besides
 * the snapshot. Round trips, refusals of malformed or oversized input, forward compatibility. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "proto/cluster_msg.h"
#include "proto/msgpack_json.h"

#define NODE "3f1c2a9e-8b7d-4e6f-a5c4-1b2d3e4f5a6b"
#define HASH "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void encode_ok(const sl_cluster_msg *m, unsigned char **b, size_t *n)
{
    char err[256] = "";
    int rc = sl_cmsg_encode(m, b, n, err, sizeof(err));
    if (rc)
        fail_msg("encode failed: %s", err);
}

static void test_hello_round_trip(void **state)
{
    sl_cluster_msg m, d;
    memset(&m, 0, sizeof(m));
    m.type = SL_CMSG_HELLO;
    strcpy(m.node_id, NODE);
    strcpy(m.hostname, "dp-1.example");
    strcpy(m.sw_version, "0.1.0");
    m.plugins = json_pack("[sss]", "key-auth", "rate-limiting", "cors");
    m.config_version = 42;
    strcpy(m.config_hash, HASH);
    unsigned char *b;
    size_t n;
    encode_ok(&m, &b, &n);
    char err[256];
    assert_int_equal(sl_cmsg_decode(b, n, &d, err, sizeof(err)), 0);
    assert_int_equal(d.type, SL_CMSG_HELLO);
    assert_string_equal(d.node_id, NODE);
    assert_string_equal(d.hostname, "dp-1.example");
    assert_string_equal(d.sw_version, "0.1.0");
    assert_true(json_equal(d.plugins, m.plugins));
    assert_int_equal(d.config_version, 42);
    assert_string_equal(d.config_hash, HASH);
    sl_cmsg_free(&d);
    sl_cmsg_free(&m);
    free(b);
}

static void test_ack_error_ping_refused_round_trip(void **state)
{
    char err[256];
    sl_cluster_msg m, d;
    unsigned char *b;
    size_t n;

    memset(&m, 0, sizeof(m));
    m.type = SL_CMSG_ACK;
    m.config_version = 7;
    strcpy(m.config_hash, HASH);
    encode_ok(&m, &b, &n);
    assert_int_equal(sl_cmsg_decode(b, n, &d, err, sizeof(err)), 0);
    assert_int_equal(d.type, SL_CMSG_ACK);
    assert_int_equal(d.config_version, 7);
    assert_string_equal(d.config_hash, HASH);
    sl_cmsg_free(&d);
    free(b);

    memset(&m, 0, sizeof(m));
    m.type = SL_CMSG_ERROR;
    m.config_version = 8;
    strcpy(m.config_hash, HASH);
    strcpy(m.message, "route r1: unknown service");
    m.errors = json_pack("[{s:s,s:s,s:{s:s}}]", "entity", "routes", "id", "r1", "errors", "service",
                         "does not exist");
    encode_ok(&m, &b, &n);
    assert_int_equal(sl_cmsg_decode(b, n, &d, err, sizeof(err)), 0);
    assert_int_equal(d.type, SL_CMSG_ERROR);
    assert_int_equal(d.config_version, 8);
    assert_string_equal(d.message, "route r1: unknown service");
    assert_true(json_equal(d.errors, m.errors));
    sl_cmsg_free(&d);
    sl_cmsg_free(&m);
    free(b);

    memset(&m, 0, sizeof(m));
    m.type = SL_CMSG_PING;
    m.config_version = 0; /* a fresh data plane: no config yet, empty hash */
    encode_ok(&m, &b, &n);
    assert_int_equal(sl_cmsg_decode(b, n, &d, err, sizeof(err)), 0);
    assert_int_equal(d.type, SL_CMSG_PING);
    assert_string_equal(d.config_hash, "");
    sl_cmsg_free(&d);
    free(b);

    memset(&m, 0, sizeof(m));
    m.type = SL_CMSG_REFUSED;
    strcpy(m.reason, "version_incompatible");
    strcpy(m.message, "data plane major version 1 differs from control plane's 0");
    encode_ok(&m, &b, &n);
    assert_int_equal(sl_cmsg_decode(b, n, &d, err, sizeof(err)), 0);
    assert_int_equal(d.type, SL_CMSG_REFUSED);
    assert_string_equal(d.reason, "version_incompatible");
    assert_string_equal(d.message, m.message);
    sl_cmsg_free(&d);
    free(b);
}

/* Builds a msgpack map from alternating key / JSON value pairs given as a JSON object. */
static unsigned char *pack(const char *json, size_t *n)
{
    json_error_t je;
    json_t *v = json_loads(json, 0, &je);
    assert_non_null(v);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    char err[128];
    assert_int_equal(sl_mp_pack_json(&pk, v, err, sizeof(err)), 0);
    json_decref(v);
    *n = sb.size;
    return (unsigned char *)sb.data;
}

static void expect_refused(const char *json, const char *needle)
{
    size_t n;
    unsigned char *b = pack(json, &n);
    sl_cluster_msg d;
    char err[256] = "";
    int rc = sl_cmsg_decode(b, n, &d, err, sizeof(err));
    free(b);
    if (rc == 0) {
        sl_cmsg_free(&d);
        fail_msg("accepted %s", json);
    }
    if (!strstr(err, needle))
        fail_msg("error for %s is '%s', expected it to mention '%s'", json, err, needle);
}

static void test_bad_types_and_missing_fields(void **state)
{
    expect_refused("{\"type\":\"ack\",\"version\":\"7\",\"hash\":\"" HASH "\"}", "version");
    expect_refused("{\"type\":\"ack\",\"version\":7}", "hash");
    expect_refused("{\"type\":\"ack\",\"version\":-1,\"hash\":\"" HASH "\"}", "negative");
    expect_refused("{\"type\":\"ack\",\"version\":7,\"hash\":\"ABC\"}", "hex");
    expect_refused("{\"type\":\"hello\",\"node_id\":\"not-a-uuid\",\"hostname\":\"h\","
                   "\"version\":\"0.1.0\",\"plugins\":[]}",
                   "node_id");
    expect_refused("{\"type\":\"hello\",\"node_id\":\"" NODE "\",\"hostname\":\"h\","
                   "\"version\":\"0.1.0\",\"plugins\":\"cors\"}",
                   "plugins");
    expect_refused("{\"type\":\"hello\",\"node_id\":\"" NODE "\",\"hostname\":\"h\","
                   "\"version\":\"0.1.0\",\"plugins\":[1]}",
                   "plugins");
    expect_refused("{\"type\":\"hello\",\"node_id\":\"" NODE "\",\"hostname\":\"h\","
                   "\"version\":\"0.1.0\"}",
                   "plugins");
    expect_refused("{\"type\":\"error\",\"version\":3,\"message\":\"x\",\"errors\":{}}", "errors");
    expect_refused("{\"type\":\"refused\",\"message\":\"x\"}", "reason");
    expect_refused("{\"version\":3}", "type");
    expect_refused("[1,2]", "map");
    expect_refused("{\"type\":\"snapshot\",\"version\":1}", "snapshot");
}

static void test_unknown_type_and_fields_are_tolerated(void **state)
{
    char err[256];
    sl_cluster_msg d;
    size_t n;
    unsigned char *b = pack("{\"type\":\"telemetry\",\"cpu\":3}", &n);
    assert_int_equal(sl_cmsg_decode(b, n, &d, err, sizeof(err)), 0);
    assert_int_equal(d.type, SL_CMSG_UNKNOWN);
    free(b);
    /* A newer data plane adds fields this control plane does not know. */
    b = pack("{\"type\":\"ping\",\"config_version\":5,\"config_hash\":\"" HASH
             "\",\"labels\":{\"zone\":\"a\"},\"uptime\":1.5}",
             &n);
    assert_int_equal(sl_cmsg_decode(b, n, &d, err, sizeof(err)), 0);
    assert_int_equal(d.type, SL_CMSG_PING);
    assert_int_equal(d.config_version, 5);
    free(b);
}

static void test_truncations_and_trailing_bytes_refused(void **state)
{
    sl_cluster_msg m, d;
    memset(&m, 0, sizeof(m));
    m.type = SL_CMSG_ERROR;
    m.config_version = 9;
    strcpy(m.message, "bad");
    m.errors = json_pack("[{s:s}]", "entity", "services");
    unsigned char *b;
    size_t n;
    encode_ok(&m, &b, &n);
    char err[256];
    for (size_t cut = 0; cut < n; cut++) {
        if (sl_cmsg_decode(b, cut, &d, err, sizeof(err)) == 0) {
            sl_cmsg_free(&d);
            fail_msg("a message cut to %zu of %zu bytes was accepted", cut, n);
        }
    }
    unsigned char *longer = malloc(n + 1);
    memcpy(longer, b, n);
    longer[n] = 0xc0;
    assert_int_equal(sl_cmsg_decode(longer, n + 1, &d, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "after"));
    free(longer);
    free(b);
    sl_cmsg_free(&m);
}

static void test_bounds(void **state)
{
    char err[256];
    sl_cluster_msg d;
    /* Over 1 MiB: refused before parsing. */
    size_t big = SL_CMSG_MAX_LEN + 1;
    unsigned char *b = calloc(1, big);
    assert_int_equal(sl_cmsg_decode(b, big, &d, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "exceeds"));
    free(b);

    /* Too many plugins, a plugin name too long, a hostname too long. */
    sl_cluster_msg m;
    memset(&m, 0, sizeof(m));
    m.type = SL_CMSG_HELLO;
    strcpy(m.node_id, NODE);
    strcpy(m.sw_version, "0.1.0");
    m.plugins = json_array();
    for (int i = 0; i <= SL_CMSG_MAX_PLUGINS; i++)
        json_array_append_new(m.plugins, json_string("p"));
    size_t n;
    assert_int_equal(sl_cmsg_encode(&m, &b, &n, err, sizeof(err)), -1);
    json_array_clear(m.plugins);
    char name[SL_CMSG_MAX_PLUGIN_NAME + 2];
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = 0;
    json_array_append_new(m.plugins, json_string(name));
    assert_int_equal(sl_cmsg_encode(&m, &b, &n, err, sizeof(err)), -1);
    sl_cmsg_free(&m);

    char host[400];
    memset(host, 'h', sizeof(host) - 1);
    host[sizeof(host) - 1] = 0;
    char json[800];
    snprintf(json, sizeof(json),
             "{\"type\":\"hello\",\"node_id\":\"" NODE "\",\"hostname\":\"%s\","
             "\"version\":\"0.1.0\",\"plugins\":[]}",
             host);
    expect_refused(json, "hostname");

    /* A per-entity error list that would push a message past 1 MiB cannot be encoded. */
    memset(&m, 0, sizeof(m));
    m.type = SL_CMSG_ERROR;
    strcpy(m.message, "many");
    m.errors = json_array();
    for (int i = 0; i < 20000; i++)
        json_array_append_new(m.errors,
                              json_pack("{s:s,s:s}", "entity", "routes", "reason",
                                        "the name must be unique across every route here"));
    assert_int_equal(sl_cmsg_encode(&m, &b, &n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "exceeds"));
    sl_cmsg_free(&m);
}

static void test_message_cut_at_character_boundary(void **state)
{
    sl_cluster_msg m, d;
    memset(&m, 0, sizeof(m));
    m.type = SL_CMSG_REFUSED;
    strcpy(m.reason, "x");
    /* "é" is two bytes: a cut in the middle would make invalid UTF-8. */
    for (size_t i = 0; i + 2 < sizeof(m.message); i += 2)
        memcpy(m.message + i, "\xc3\xa9", 2);
    char dst[8];
    sl_cmsg_copy_text(dst, sizeof(dst), m.message);
    assert_int_equal(strlen(dst), 6);
    unsigned char *b;
    size_t n;
    encode_ok(&m, &b, &n);
    char err[256];
    assert_int_equal(sl_cmsg_decode(b, n, &d, err, sizeof(err)), 0);
    assert_int_equal(strlen(d.message) % 2, 0);
    free(b);
}

static void test_peek_snapshot_reads_version_before_payload(void **state)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    sl_mp_pack_cstr(&pk, "type");
    sl_mp_pack_cstr(&pk, "snapshot");
    sl_mp_pack_cstr(&pk, "format");
    msgpack_pack_int(&pk, 1);
    sl_mp_pack_cstr(&pk, "version");
    msgpack_pack_int64(&pk, 123456789);
    sl_mp_pack_cstr(&pk, "hash");
    sl_mp_pack_cstr(&pk, HASH);
    sl_mp_pack_cstr(&pk, "payload");
    msgpack_pack_bin(&pk, 100000);
    unsigned char *zeros = calloc(1, 100000);
    msgpack_pack_bin_body(&pk, zeros, 100000);
    free(zeros);

    sl_cmsg_type t;
    char err[128];
    assert_int_equal(sl_cmsg_peek_type((unsigned char *)sb.data, sb.size, &t, err, sizeof(err)), 0);
    assert_int_equal(t, SL_CMSG_SNAPSHOT);
    int64_t v;
    char h[65];
    assert_int_equal(sl_cmsg_peek_snapshot((unsigned char *)sb.data, sb.size, &v, h), 0);
    assert_int_equal(v, 123456789);
    assert_string_equal(h, HASH);
    /* The first 200 bytes of a too-large snapshot still name its version. */
    assert_int_equal(sl_cmsg_peek_snapshot((unsigned char *)sb.data, 200, &v, h), 0);
    assert_int_equal(v, 123456789);
    /* Cut before the version: nothing to report. */
    assert_int_equal(sl_cmsg_peek_snapshot((unsigned char *)sb.data, 20, &v, h), -1);
    msgpack_sbuffer_destroy(&sb);
}

static void test_version_compatibility(void **state)
{
    char err[200];
    assert_int_equal(sl_cmsg_version_compatible("1.4.2", "1.4.0", err, sizeof(err)), 0);
    assert_int_equal(sl_cmsg_version_compatible("1.4.2", "1.3.9", err, sizeof(err)), 0);
    assert_int_equal(sl_cmsg_version_compatible("1.4.2", "1.5.0", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "newer"));
    assert_int_equal(sl_cmsg_version_compatible("1.4.2", "2.0.0", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "major"));
    assert_int_equal(sl_cmsg_version_compatible("1.4.2", "0.9.0", err, sizeof(err)), -1);
    assert_int_equal(sl_cmsg_version_compatible("1.4.2", "banana", err, sizeof(err)), -1);
    assert_int_equal(sl_cmsg_version_compatible("1.4.2", "1.4.0-rc1", err, sizeof(err)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_round_trip),
        cmocka_unit_test(test_ack_error_ping_refused_round_trip),
        cmocka_unit_test(test_bad_types_and_missing_fields),
        cmocka_unit_test(test_unknown_type_and_fields_are_tolerated),
        cmocka_unit_test(test_truncations_and_trailing_bytes_refused),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_message_cut_at_character_boundary),
        cmocka_unit_test(test_peek_snapshot_reads_version_before_payload),
        cmocka_unit_test(test_version_compatibility),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
