/* Entity schemas: defaults, form coercion, Kong's error shapes and messages, entity checks,
 * the services url shorthand, normalizations, PATCH merge, and the migration's columns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "proto/password.h"
#include "proto/schema.h"
#include "proto/uuid.h"

#define UUID1 "4e8f3f13-6bd1-4ba5-9e3e-111111111111"

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (j == NULL)
        fail_msg("bad test JSON: %s: %s", text, je.text);
    return j;
}

/* Validates text as entity `name`; returns the validated entity (or NULL) and the error
 * count / errors through out parameters. */
static json_t *run(const char *name, const char *text, sl_validate_mode mode, int *n,
                   json_t **errors)
{
    const sl_entity *e = sl_entity_by_name(name);
    assert_non_null(e);
    json_t *j = parse(text);
    *n = sl_schema_validate(e, j, mode, errors);
    return j;
}

/* Asserts validation succeeds and returns the entity (caller frees). */
static json_t *valid(const char *name, const char *text, sl_validate_mode mode)
{
    json_t *errors;
    int n;
    json_t *j = run(name, text, mode, &n, &errors);
    if (n != 0) {
        char *s = json_dumps(errors, JSON_SORT_KEYS);
        fail_msg("%s %s: unexpected errors %s", name, text, s);
    }
    assert_null(errors);
    return j;
}

/* Asserts validation fails with exactly the errors object `expect` (JSON text). */
static void invalid(const char *name, const char *text, sl_validate_mode mode, const char *expect)
{
    json_t *errors;
    int n;
    json_t *j = run(name, text, mode, &n, &errors);
    json_t *want = parse(expect);
    if (errors == NULL || !json_equal(errors, want)) {
        char *got = errors ? json_dumps(errors, JSON_SORT_KEYS) : strdup("(none)");
        fail_msg("%s %s:\n  got  %s\n  want %s", name, text, got, expect);
    }
    assert_true(n > 0);
    json_decref(want);
    json_decref(errors);
    json_decref(j);
}

/* Asserts the Kong message built from the errors of validating text. */
static void message(const char *name, const char *text, const char *expect)
{
    json_t *errors;
    int n;
    json_t *j = run(name, text, SL_VALIDATE_JSON, &n, &errors);
    assert_non_null(errors);
    char *m = sl_schema_violation_message(errors, n);
    assert_string_equal(m, expect);
    free(m);
    json_decref(errors);
    json_decref(j);
}

static const char *str(const json_t *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *cur = j;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = json_object_get(cur, tok);
    return json_string_value(cur);
}

static const json_t *get(const json_t *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *cur = j;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = json_object_get(cur, tok);
    return cur;
}

static long long num(const json_t *j, const char *path)
{
    const json_t *v = get(j, path);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", path);
    return json_integer_value(v);
}

/* ---------------- tables ---------------- */

static void test_tables_are_ordered(void **state)
{
    assert_int_equal(sl_entity_count, 12);
    for (size_t i = 0; i < sl_entity_count; i++) {
        const sl_entity *e = sl_entities[i];
        assert_int_equal(e->export_order, (int)i);
        assert_ptr_equal(sl_entity_by_name(e->name), e);
        assert_ptr_equal(sl_entity_by_endpoint(e->endpoint), e);
        if (e->nested)
            assert_ptr_equal(sl_entity_by_nested(e->nested), e);
        const char *common[] = {"id", "created_at", "updated_at", "tags"};
        for (int c = 0; c < 4; c++)
            assert_non_null(sl_entity_field(e, common[c]));
        assert_int_equal(sl_entity_field(e, "id")->type, SL_T_UUID);
        for (size_t f = 0; f < e->nfields; f++) {
            if (e->fields[f].type != SL_T_FOREIGN)
                continue;
            const sl_entity *ref = sl_entity_by_name(e->fields[f].ref);
            assert_non_null(ref);
            assert_true(ref->export_order < e->export_order); /* referenced ones first */
        }
        if (e->endpoint_key)
            assert_non_null(sl_entity_field(e, e->endpoint_key));
        for (const char *const *u = e->unique_together; u && *u; u++)
            assert_non_null(sl_entity_field(e, *u));
    }
    assert_string_equal(sl_entity_by_endpoint("key-auths")->name, "keyauth_credentials");
    assert_string_equal(sl_entity_by_nested("basic-auth")->name, "basicauth_credentials");
    assert_string_equal(sl_entity_by_nested("acls")->name, "acls");
    assert_null(sl_entity_by_name("apis"));
    /* services may not be deleted while routes point at them; plugins go with their parents */
    assert_false(sl_entity_field(sl_entity_by_name("routes"), "service")->flags & SL_F_CASCADE);
    assert_true(sl_entity_field(sl_entity_by_name("plugins"), "route")->flags & SL_F_CASCADE);
    assert_true(sl_entity_field(sl_entity_by_name("snis"), "certificate")->flags & SL_F_CASCADE);
}

/* Every column the store derives from the tables exists in the migration, in its table. */
static void test_migration_matches_tables(void **state)
{
    FILE *f = fopen("migrations/001_core.sql", "r");
    assert_non_null(f);
    static char sql[65536];
    size_t n = fread(sql, 1, sizeof sql - 1, f);
    fclose(f);
    sql[n] = '\0';
    for (size_t i = 0; i < sl_entity_count; i++) {
        const sl_entity *e = sl_entities[i];
        char head[128];
        snprintf(head, sizeof head, "CREATE TABLE %s (", e->name);
        char *start = strstr(sql, head);
        if (start == NULL)
            fail_msg("no table %s", e->name);
        char *end = strstr(start, "\n);");
        assert_non_null(end);
        for (size_t k = 0; k < e->nfields; k++) {
            const sl_field *fl = &e->fields[k];
            char col[128];
            if (fl->flags & SL_F_TRANSIENT)
                continue;
            if (fl->type == SL_T_FOREIGN)
                snprintf(col, sizeof col, "\n    %s_id ", fl->name);
            else if (strcmp(fl->name, "group") == 0)
                snprintf(col, sizeof col, "\n    \"group\" ");
            else
                snprintf(col, sizeof col, "\n    %s ", fl->name);
            char *at = strstr(start, col);
            if (at == NULL || at > end)
                fail_msg("%s.%s has no column", e->name, fl->name);
            char *eol = strchr(at + 1, '\n');
            int cascade =
                eol && strstr(at, "ON DELETE CASCADE") && strstr(at, "ON DELETE CASCADE") < eol;
            if (fl->type == SL_T_FOREIGN && cascade != !!(fl->flags & SL_F_CASCADE))
                fail_msg("%s.%s cascade mismatch", e->name, fl->name);
        }
    }
}

/* ---------------- services ---------------- */

static void test_service_defaults(void **state)
{
    json_t *s = valid("services", "{\"host\":\"example.com\"}", SL_VALIDATE_JSON);
    assert_string_equal(str(s, "protocol"), "http");
    assert_int_equal(num(s, "port"), 80);
    assert_int_equal(num(s, "retries"), 5);
    assert_int_equal(num(s, "connect_timeout"), 60000);
    assert_int_equal(num(s, "write_timeout"), 60000);
    assert_int_equal(num(s, "read_timeout"), 60000);
    assert_true(json_is_true(get(s, "enabled")));
    assert_true(json_is_null(get(s, "path")));
    assert_true(json_is_null(get(s, "client_certificate")));
    assert_null(get(s, "id")); /* generated by the store, not by validation */
    json_decref(s);
}

static void test_service_errors(void **state)
{
    invalid("services", "{}", SL_VALIDATE_JSON, "{\"host\":\"required field missing\"}");
    message("services", "{}", "schema violation (host: required field missing)");
    message("services", "{\"path\":\"x\"}",
            "2 schema violations (host: required field missing; path: should start with: /)");
    invalid("services", "{\"host\":\"a\",\"port\":70000}", SL_VALIDATE_JSON,
            "{\"port\":\"value should be between 0 and 65535\"}");
    invalid("services", "{\"host\":\"a\",\"port\":\"80\"}", SL_VALIDATE_JSON,
            "{\"port\":\"expected an integer\"}");
    invalid("services", "{\"host\":\"a\",\"protocol\":\"ftp\"}", SL_VALIDATE_JSON,
            "{\"protocol\":\"expected one of: grpc, grpcs, http, https, tcp, tls, "
            "tls_passthrough, udp\"}");
    invalid("services", "{\"host\":\"a\",\"enabled\":\"yes\"}", SL_VALIDATE_JSON,
            "{\"enabled\":\"expected a boolean\"}");
    invalid("services", "{\"host\":\"a\",\"name\":42}", SL_VALIDATE_JSON,
            "{\"name\":\"expected a string\"}");
    invalid("services", "{\"host\":\"a\",\"name\":\"\"}", SL_VALIDATE_JSON,
            "{\"name\":\"length must be at least 1\"}");
    invalid("services", "{\"host\":\"a\",\"name\":\"a b\"}", SL_VALIDATE_JSON,
            "{\"name\":\"invalid value 'a b': it must only contain alphanumeric and '., -, _, "
            "~' characters\"}");
    invalid("services", "{\"host\":\"a\",\"colour\":\"red\"}", SL_VALIDATE_JSON,
            "{\"colour\":\"unknown field\"}");
    invalid("services", "{\"host\":\"example.com:80\"}", SL_VALIDATE_JSON,
            "{\"host\":\"must not have a port\"}");
    invalid("services", "{\"host\":\"exa mple\"}", SL_VALIDATE_JSON,
            "{\"host\":\"invalid value: exa mple\"}");
    invalid("services", "{\"host\":\"a\",\"path\":\"/a//b\"}", SL_VALIDATE_JSON,
            "{\"path\":\"must not have empty segments\"}");
    invalid("services", "{\"host\":\"a\",\"path\":\"/a%zz\"}", SL_VALIDATE_JSON,
            "{\"path\":\"invalid url-encoded value: '%zz'\"}");
    invalid("services", "{\"host\":\"a\",\"read_timeout\":0}", SL_VALIDATE_JSON,
            "{\"read_timeout\":\"value should be between 1 and 2147483646\"}");
    invalid("services", "{\"host\":\"a\",\"client_certificate\":{\"id\":\"nope\"}}",
            SL_VALIDATE_JSON, "{\"client_certificate\":{\"id\":\"expected a valid UUID\"}}");
    invalid("services", "{\"host\":\"a\",\"id\":\"nope\"}", SL_VALIDATE_JSON,
            "{\"id\":\"expected a valid UUID\"}");
    /* explicit null on a required field with a default is not silently defaulted */
    invalid("services", "{\"host\":\"a\",\"port\":null}", SL_VALIDATE_JSON,
            "{\"port\":\"required field missing\"}");
}

static void test_service_conditionals(void **state)
{
    invalid("services", "{\"host\":\"a\",\"protocol\":\"tcp\",\"path\":\"/x\"}", SL_VALIDATE_JSON,
            "{\"path\":\"value must be null\",\"@entity\":[\"failed conditional validation "
            "given value of field 'protocol'\"]}");
    invalid("services", "{\"host\":\"a\",\"tls_verify\":true}", SL_VALIDATE_JSON,
            "{\"tls_verify\":\"value must be null\",\"@entity\":[\"failed conditional "
            "validation given value of field 'protocol'\"]}");
    json_decref(valid("services", "{\"host\":\"a\",\"protocol\":\"https\",\"tls_verify\":true}",
                      SL_VALIDATE_JSON));
}

static void test_service_url_shorthand(void **state)
{
    json_t *s = valid("services", "{\"url\":\"https://api.example.com/v1?x=1\"}", SL_VALIDATE_JSON);
    assert_string_equal(str(s, "protocol"), "https");
    assert_string_equal(str(s, "host"), "api.example.com");
    assert_int_equal(num(s, "port"), 443);
    assert_string_equal(str(s, "path"), "/v1");
    assert_null(get(s, "url"));
    json_decref(s);

    s = valid("services", "{\"url\":\"http://10.0.0.5:8080\",\"name\":\"svc\"}", SL_VALIDATE_FORM);
    assert_string_equal(str(s, "host"), "10.0.0.5");
    assert_int_equal(num(s, "port"), 8080);
    assert_true(json_is_null(get(s, "path")));
    json_decref(s);

    s = valid("services", "{\"url\":\"http://[::1]/\"}", SL_VALIDATE_JSON);
    assert_string_equal(str(s, "host"), "::1");
    assert_int_equal(num(s, "port"), 80);
    json_decref(s);

    invalid("services", "{\"url\":\"nohost\"}", SL_VALIDATE_JSON,
            "{\"host\":\"required field missing\",\"path\":\"should start with: /\"}");
    invalid("services", "{\"url\":\"http://a:99999/\"}", SL_VALIDATE_JSON,
            "{\"port\":\"value should be between 0 and 65535\"}");
    invalid("services", "{\"url\":5}", SL_VALIDATE_JSON,
            "{\"url\":\"expected a string\",\"host\":\"required field missing\"}");
}

static void test_form_coercion(void **state)
{
    json_t *s = valid("services",
                      "{\"host\":\"a\",\"port\":\"8080\",\"enabled\":\"false\","
                      "\"tls_verify_depth\":\"\",\"tags\":\"one\",\"ca_certificates\":\"\"}",
                      SL_VALIDATE_FORM);
    assert_int_equal(num(s, "port"), 8080);
    assert_true(json_is_false(get(s, "enabled")));
    assert_true(json_is_null(get(s, "tls_verify_depth")));
    assert_int_equal(json_array_size(get(s, "tags")), 1);
    assert_string_equal(json_string_value(json_array_get(get(s, "tags"), 0)), "one");
    assert_int_equal(json_array_size(get(s, "ca_certificates")), 0);
    json_decref(s);
    invalid("services", "{\"host\":\"a\",\"port\":\"80x\"}", SL_VALIDATE_FORM,
            "{\"port\":\"expected an integer\"}");
    invalid("services", "{\"host\":\"a\",\"enabled\":\"maybe\"}", SL_VALIDATE_FORM,
            "{\"enabled\":\"expected a boolean\"}");
    invalid("services", "{\"host\":\"a\",\"port\":\"\"}", SL_VALIDATE_FORM,
            "{\"port\":\"required field missing\"}");
    /* the same strings are not coerced in JSON mode */
    invalid("services", "{\"host\":\"a\",\"enabled\":\"false\"}", SL_VALIDATE_JSON,
            "{\"enabled\":\"expected a boolean\"}");

    json_t *r = valid("routes",
                      "{\"paths\":\"/a\",\"strip_path\":\"false\",\"regex_priority\":\"-3\","
                      "\"service\":\"" UUID1 "\",\"headers\":{\"x-v\":\"1\"}}",
                      SL_VALIDATE_FORM);
    assert_string_equal(json_string_value(json_array_get(get(r, "paths"), 0)), "/a");
    assert_true(json_is_false(get(r, "strip_path")));
    assert_int_equal(num(r, "regex_priority"), -3);
    assert_string_equal(str(r, "service.id"), UUID1);
    assert_string_equal(json_string_value(json_array_get(get(r, "headers.x-v"), 0)), "1");
    json_decref(r);
}

static void test_bounds(void **state)
{
    char *big = malloc(SL_SCHEMA_MAX_STRING + 64);
    memset(big, 'a', SL_SCHEMA_MAX_STRING + 1);
    big[SL_SCHEMA_MAX_STRING + 1] = '\0';
    json_t *c = json_pack("{ss}", "username", big);
    json_t *errors;
    assert_int_equal(
        sl_schema_validate(sl_entity_by_name("consumers"), c, SL_VALIDATE_JSON, &errors), 1);
    assert_string_equal(str(errors, "username"), "length must be at most 1024");
    json_decref(errors);
    json_decref(c);

    json_t *r = json_pack("{s[s]}", "paths", "/");
    json_t *paths = json_object_get(r, "paths");
    for (int i = 0; i < SL_SCHEMA_MAX_ARRAY; i++)
        json_array_append_new(paths, json_string("/x"));
    assert_int_equal(sl_schema_validate(sl_entity_by_name("routes"), r, SL_VALIDATE_JSON, &errors),
                     1);
    assert_string_equal(str(errors, "paths"), "length must be at most 1000");
    json_decref(errors);
    json_decref(r);
    free(big);
}

/* ---------------- routes ---------------- */

static void test_route_defaults(void **state)
{
    json_t *r = valid("routes", "{\"paths\":[\"/a\"],\"service\":{\"id\":\"" UUID1 "\"}}",
                      SL_VALIDATE_JSON);
    const json_t *p = get(r, "protocols");
    assert_int_equal(json_array_size(p), 2);
    assert_string_equal(json_string_value(json_array_get(p, 0)), "http");
    assert_string_equal(json_string_value(json_array_get(p, 1)), "https");
    assert_int_equal(num(r, "https_redirect_status_code"), 426);
    assert_int_equal(num(r, "regex_priority"), 0);
    assert_true(json_is_true(get(r, "strip_path")));
    assert_true(json_is_false(get(r, "preserve_host")));
    assert_true(json_is_true(get(r, "request_buffering")));
    assert_true(json_is_true(get(r, "response_buffering")));
    assert_string_equal(str(r, "path_handling"), "v0");
    json_decref(r);

    /* gRPC routes default strip_path to false, and may not set it */
    r = valid("routes", "{\"protocols\":[\"grpc\"],\"paths\":[\"/pkg.Svc/\"]}", SL_VALIDATE_JSON);
    assert_true(json_is_false(get(r, "strip_path")));
    json_decref(r);
    invalid("routes", "{\"protocols\":[\"grpc\"],\"paths\":[\"/a\"],\"strip_path\":true}",
            SL_VALIDATE_JSON,
            "{\"strip_path\":\"cannot set 'strip_path' when 'protocols' is 'grpc' or 'grpcs'\"}");
}

static void test_route_entity_checks(void **state)
{
    invalid("routes", "{}", SL_VALIDATE_JSON,
            "{\"@entity\":[\"must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' "
            "when 'protocols' is 'https'\"]}");
    invalid("routes", "{\"protocols\":[\"http\"]}", SL_VALIDATE_JSON,
            "{\"@entity\":[\"must set one of 'methods', 'hosts', 'headers', 'paths' when "
            "'protocols' is 'http'\"]}");
    message("routes", "{\"protocols\":[\"http\"]}",
            "schema violation (must set one of 'methods', 'hosts', 'headers', 'paths' when "
            "'protocols' is 'http')");
    json_decref(valid("routes", "{\"protocols\":[\"https\"],\"snis\":[\"a.example.com\"]}",
                      SL_VALIDATE_JSON));
    invalid("routes", "{\"protocols\":[\"grpcs\"],\"methods\":[\"GET\"],\"hosts\":[\"a\"]}",
            SL_VALIDATE_JSON,
            "{\"methods\":\"cannot set 'methods' when 'protocols' is 'grpc' or 'grpcs'\"}");
    invalid("routes", "{\"protocols\":[\"tcp\"]}", SL_VALIDATE_JSON,
            "{\"@entity\":[\"must set one of 'sources', 'destinations', 'snis' when "
            "'protocols' is 'tcp', 'tls' or 'udp'\"]}");
    invalid("routes",
            "{\"protocols\":[\"tcp\"],\"paths\":[\"/a\"],\"sources\":[{\"ip\":\"10.0.0.0/8\"}]}",
            SL_VALIDATE_JSON,
            "{\"paths\":\"cannot set 'paths' when 'protocols' is 'tcp', 'tls', "
            "'tls_passthrough' or 'udp'\"}");
    json_decref(valid("routes",
                      "{\"protocols\":[\"tcp\"],\"destinations\":[{\"ip\":\"10.0.0.1\",\"port\":"
                      "5432}]}",
                      SL_VALIDATE_JSON));
    invalid("routes", "{\"paths\":[\"/a\"],\"sources\":[{\"ip\":\"10.0.0.1\"}]}", SL_VALIDATE_JSON,
            "{\"sources\":\"cannot set 'sources' when 'protocols' is 'http' or 'https'\"}");
    invalid("routes", "{\"protocols\":[\"http\"],\"paths\":[\"/a\"],\"snis\":[\"a.com\"]}",
            SL_VALIDATE_JSON,
            "{\"snis\":\"'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or "
            "'tls_passthrough'\",\"@entity\":[\"failed conditional validation given value of "
            "field 'protocols'\"]}");
    invalid("routes", "{\"headers\":{\"Host\":[\"a.com\"]}}", SL_VALIDATE_JSON,
            "{\"headers\":\"cannot contain 'host' header, which must be specified in the "
            "'hosts' attribute\"}");
}

static void test_route_fields(void **state)
{
    invalid("routes", "{\"paths\":[\"foo\"]}", SL_VALIDATE_JSON,
            "{\"paths\":[\"should start with: / (fixed path) or ~/ (regex path)\"]}");
    invalid("routes", "{\"paths\":[\"/ok\",\"bad\"]}", SL_VALIDATE_JSON,
            "{\"paths\":[null,\"should start with: / (fixed path) or ~/ (regex path)\"]}");
    message("routes", "{\"paths\":[\"/ok\",\"bad\"]}",
            "schema violation (paths.2: should start with: / (fixed path) or ~/ (regex path))");
    invalid("routes", "{\"paths\":[\"~/(unclosed\"]}", SL_VALIDATE_JSON,
            "{\"paths\":[\"invalid regex: '/(unclosed' (PCRE returned: missing closing "
            "parenthesis)\"]}");
    json_decref(
        valid("routes", "{\"paths\":[\"~/v1/(?<name>[a-z]+)$\",\"/plain\"]}", SL_VALIDATE_JSON));
    invalid("routes", "{\"paths\":[\"/a/../b\"]}", SL_VALIDATE_JSON,
            "{\"paths\":[\"non-normalized path, consider use '/b' instead\"]}");
    invalid("routes", "{\"paths\":[\"/%7Euser\"]}", SL_VALIDATE_JSON,
            "{\"paths\":[\"non-normalized path, consider use '/~user' instead\"]}");
    invalid("routes", "{\"paths\":[]}", SL_VALIDATE_JSON,
            "{\"@entity\":[\"must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' "
            "when 'protocols' is 'https'\"]}");
    json_decref(valid("routes", "{\"hosts\":[\"*.example.com\",\"api.*\",\"a.b:8000\"]}",
                      SL_VALIDATE_JSON));
    invalid("routes", "{\"hosts\":[\"a.*.com\"]}", SL_VALIDATE_JSON,
            "{\"hosts\":[\"invalid wildcard: must be placed at leftmost or rightmost label\"]}");
    invalid("routes", "{\"hosts\":[\"*.a.*\"]}", SL_VALIDATE_JSON,
            "{\"hosts\":[\"invalid wildcard: must have at most one wildcard\"]}");
    invalid("routes", "{\"hosts\":[\"a b\"]}", SL_VALIDATE_JSON,
            "{\"hosts\":[\"invalid value: a b\"]}");
    invalid("routes", "{\"methods\":[\"get\"]}", SL_VALIDATE_JSON,
            "{\"methods\":[\"invalid value: get\"]}");
    invalid("routes", "{\"methods\":\"GET\"}", SL_VALIDATE_JSON,
            "{\"methods\":\"expected a set\"}");
    invalid("routes", "{\"paths\":\"/a\"}", SL_VALIDATE_JSON, "{\"paths\":\"expected an array\"}");
    invalid("routes", "{\"paths\":[\"/a\"],\"protocols\":[]}", SL_VALIDATE_JSON,
            "{\"protocols\":\"length must be at least 1\"}");
    invalid("routes", "{\"paths\":[\"/a\"],\"protocols\":[\"http\",\"ftp\"]}", SL_VALIDATE_JSON,
            "{\"protocols\":[null,\"expected one of: grpc, grpcs, http, https, tcp, tls, "
            "tls_passthrough, udp\"]}");
    invalid("routes", "{\"paths\":[\"/a\"],\"https_redirect_status_code\":400}", SL_VALIDATE_JSON,
            "{\"https_redirect_status_code\":\"expected one of: 426, 301, 302, 307, 308\"}");
    invalid("routes", "{\"headers\":{\"x-a\":\"v\"}}", SL_VALIDATE_JSON,
            "{\"headers\":{\"x-a\":\"expected an array\"}}");
    invalid("routes", "{\"headers\":{\"bad header\":[\"v\"]}}", SL_VALIDATE_JSON,
            "{\"headers\":\"bad header name 'bad header', allowed characters are A-Z, a-z, "
            "0-9, '_', and '-'\"}");
    invalid("routes", "{\"protocols\":[\"tcp\"],\"sources\":[{\"ip\":\"10.0.0.300\"}]}",
            SL_VALIDATE_JSON,
            "{\"sources\":[{\"ip\":\"invalid ip or cidr range: '10.0.0.300'\"}]}");
    invalid("routes", "{\"paths\":[\"/a\"],\"service\":\"" UUID1 "\"}", SL_VALIDATE_JSON,
            "{\"service\":\"expected a record\"}");
    invalid("routes", "{\"paths\":[\"/a\"],\"service\":{}}", SL_VALIDATE_JSON,
            "{\"service\":{\"id\":\"required field missing\"}}");

    /* sets drop duplicates; ids are normalized to lower case */
    json_t *r = valid("routes",
                      "{\"methods\":[\"GET\",\"POST\",\"GET\"],\"service\":{\"id\":"
                      "\"4E8F3F13-6BD1-4BA5-9E3E-111111111111\"}}",
                      SL_VALIDATE_JSON);
    assert_int_equal(json_array_size(get(r, "methods")), 2);
    assert_string_equal(str(r, "service.id"), UUID1);
    json_decref(r);
}

/* ---------------- consumers, tags ---------------- */

static void test_consumers(void **state)
{
    invalid("consumers", "{}", SL_VALIDATE_JSON,
            "{\"@entity\":[\"at least one of these fields must be non-empty: 'custom_id', "
            "'username'\"]}");
    message("consumers", "{\"tags\":[]}",
            "schema violation (at least one of these fields must be non-empty: 'custom_id', "
            "'username')");
    json_t *c = valid("consumers", "{\"custom_id\":\"c-1\"}", SL_VALIDATE_JSON);
    assert_true(json_is_null(get(c, "username")));
    json_decref(c);
}

static void test_tags(void **state)
{
    json_t *c = valid("consumers", "{\"username\":\"u\",\"tags\":[\"a\",\"b\",\"a\",\"é-ok\"]}",
                      SL_VALIDATE_JSON);
    assert_int_equal(json_array_size(get(c, "tags")), 3);
    json_decref(c);
    invalid("consumers", "{\"username\":\"u\",\"tags\":[\"ok\",\"a,b\"]}", SL_VALIDATE_JSON,
            "{\"tags\":[null,\"invalid tag 'a,b': expected printable ascii (except `,` and `/`) "
            "or valid utf-8 sequences\"]}");
    invalid("consumers", "{\"username\":\"u\",\"tags\":[\"a/b\"]}", SL_VALIDATE_JSON,
            "{\"tags\":[\"invalid tag 'a/b': expected printable ascii (except `,` and `/`) or "
            "valid utf-8 sequences\"]}");
    invalid("consumers", "{\"username\":\"u\",\"tags\":[\"\"]}", SL_VALIDATE_JSON,
            "{\"tags\":[\"length must be at least 1\"]}");
    invalid("consumers", "{\"username\":\"u\",\"tags\":[null]}", SL_VALIDATE_JSON,
            "{\"tags\":[\"required field missing\"]}");
    char text[400];
    char long_tag[130];
    memset(long_tag, 't', 129);
    long_tag[129] = '\0';
    snprintf(text, sizeof text, "{\"username\":\"u\",\"tags\":[\"%s\"]}", long_tag);
    invalid("consumers", text, SL_VALIDATE_JSON, "{\"tags\":[\"length must be at most 128\"]}");
}

/* ---------------- upstreams, targets ---------------- */

static void test_upstream_defaults(void **state)
{
    json_t *u = valid("upstreams", "{\"name\":\"backend.svc\"}", SL_VALIDATE_JSON);
    assert_string_equal(str(u, "algorithm"), "round-robin");
    assert_string_equal(str(u, "hash_on"), "none");
    assert_string_equal(str(u, "hash_fallback"), "none");
    assert_string_equal(str(u, "hash_on_cookie_path"), "/");
    assert_int_equal(num(u, "slots"), 10000);
    assert_true(json_is_false(get(u, "use_srv_name")));
    assert_string_equal(str(u, "healthchecks.active.type"), "http");
    assert_true(json_number_value(get(u, "healthchecks.active.timeout")) == 1);
    assert_int_equal(num(u, "healthchecks.active.concurrency"), 10);
    assert_string_equal(str(u, "healthchecks.active.http_path"), "/");
    assert_true(json_is_null(get(u, "healthchecks.active.https_sni")));
    assert_true(json_is_true(get(u, "healthchecks.active.https_verify_certificate")));
    json_t *want = parse("[200,302]");
    assert_true(json_equal(get(u, "healthchecks.active.healthy.http_statuses"), want));
    json_decref(want);
    want = parse("[429,404,500,501,502,503,504,505]");
    assert_true(json_equal(get(u, "healthchecks.active.unhealthy.http_statuses"), want));
    json_decref(want);
    assert_int_equal(json_array_size(get(u, "healthchecks.passive.healthy.http_statuses")), 19);
    want = parse("[429,500,503]");
    assert_true(json_equal(get(u, "healthchecks.passive.unhealthy.http_statuses"), want));
    json_decref(want);
    assert_int_equal(num(u, "healthchecks.passive.unhealthy.tcp_failures"), 0);
    assert_true(json_number_value(get(u, "healthchecks.threshold")) == 0);
    json_decref(u);

    /* a partial record keeps every other default */
    u = valid("upstreams",
              "{\"name\":\"b\",\"healthchecks\":{\"active\":{\"timeout\":5,\"healthy\":"
              "{\"interval\":10}}}}",
              SL_VALIDATE_JSON);
    assert_true(json_number_value(get(u, "healthchecks.active.timeout")) == 5);
    assert_true(json_number_value(get(u, "healthchecks.active.healthy.interval")) == 10);
    assert_int_equal(num(u, "healthchecks.active.healthy.successes"), 0);
    assert_int_equal(num(u, "healthchecks.active.concurrency"), 10);
    assert_string_equal(str(u, "healthchecks.passive.type"), "http");
    json_decref(u);
}

static void test_upstream_errors(void **state)
{
    invalid("upstreams", "{\"name\":\"10.0.0.1\"}", SL_VALIDATE_JSON,
            "{\"name\":\"Invalid name ('10.0.0.1'); no ip addresses allowed\"}");
    invalid("upstreams", "{\"name\":\"a:80\"}", SL_VALIDATE_JSON,
            "{\"name\":\"Invalid name ('a:80'); no port allowed\"}");
    invalid("upstreams", "{\"name\":\"b\",\"slots\":5}", SL_VALIDATE_JSON,
            "{\"slots\":\"value should be between 10 and 65536\"}");
    invalid("upstreams", "{\"name\":\"b\",\"algorithm\":\"random\"}", SL_VALIDATE_JSON,
            "{\"algorithm\":\"expected one of: consistent-hashing, least-connections, "
            "round-robin, latency\"}");
    invalid("upstreams", "{\"name\":\"b\",\"hash_on\":\"header\"}", SL_VALIDATE_JSON,
            "{\"hash_on_header\":\"required field missing\",\"@entity\":[\"failed conditional "
            "validation given value of field 'hash_on'\"]}");
    invalid("upstreams", "{\"name\":\"b\",\"hash_fallback\":\"ip\"}", SL_VALIDATE_JSON,
            "{\"hash_fallback\":\"expected one of: none\",\"@entity\":[\"failed conditional "
            "validation given value of field 'hash_on'\"]}");
    json_decref(valid("upstreams",
                      "{\"name\":\"b\",\"hash_on\":\"header\",\"hash_on_header\":\"x-user\","
                      "\"hash_fallback\":\"ip\"}",
                      SL_VALIDATE_JSON));
    invalid("upstreams",
            "{\"name\":\"b\",\"healthchecks\":{\"active\":{\"healthy\":{\"http_statuses\":"
            "[200,99]}}}}",
            SL_VALIDATE_JSON,
            "{\"healthchecks\":{\"active\":{\"healthy\":{\"http_statuses\":[null,\"value should "
            "be between 100 and 999\"]}}}}");
    message("upstreams",
            "{\"name\":\"b\",\"healthchecks\":{\"active\":{\"type\":\"udp\",\"healthy\":"
            "{\"http_statuses\":[99]}}}}",
            "2 schema violations (healthchecks.active.healthy.http_statuses.1: value should be "
            "between 100 and 999; healthchecks.active.type: expected one of: tcp, http, https, "
            "grpc, grpcs)");
    invalid("upstreams", "{\"name\":\"b\",\"healthchecks\":{\"passive\":{\"nope\":1}}}",
            SL_VALIDATE_JSON, "{\"healthchecks\":{\"passive\":{\"nope\":\"unknown field\"}}}");
    invalid("upstreams", "{\"name\":\"b\",\"healthchecks\":[]}", SL_VALIDATE_JSON,
            "{\"healthchecks\":\"expected a record\"}");
}

static void test_targets(void **state)
{
    json_t *t = valid("targets", "{\"upstream\":{\"id\":\"" UUID1 "\"},\"target\":\"10.0.0.1\"}",
                      SL_VALIDATE_JSON);
    assert_string_equal(str(t, "target"), "10.0.0.1:8000");
    assert_int_equal(num(t, "weight"), 100);
    json_decref(t);
    t = valid("targets", "{\"upstream\":{\"id\":\"" UUID1 "\"},\"target\":\"::1\"}",
              SL_VALIDATE_JSON);
    assert_string_equal(str(t, "target"), "[::1]:8000");
    json_decref(t);
    t = valid("targets", "{\"upstream\":{\"id\":\"" UUID1 "\"},\"target\":\"svc.local:81\"}",
              SL_VALIDATE_JSON);
    assert_string_equal(str(t, "target"), "svc.local:81");
    json_decref(t);
    invalid("targets", "{\"target\":\"a\"}", SL_VALIDATE_JSON,
            "{\"upstream\":\"required field missing\"}");
    invalid("targets", "{\"upstream\":{\"id\":\"" UUID1 "\"},\"target\":\"a b\"}", SL_VALIDATE_JSON,
            "{\"target\":\"Invalid target ('a b'); not a valid hostname or ip address\"}");
    invalid("targets", "{\"upstream\":{\"id\":\"" UUID1 "\"},\"target\":\"a\",\"weight\":70000}",
            SL_VALIDATE_JSON, "{\"weight\":\"value should be between 0 and 65535\"}");
}

/* ---------------- plugins, credentials ---------------- */

static void test_plugins(void **state)
{
    json_t *p = valid("plugins", "{\"name\":\"cors\"}", SL_VALIDATE_JSON);
    /* config gets the plugin's defaults (test_plugin_schemas.c covers each plugin) */
    assert_true(json_is_object(get(p, "config")));
    assert_true(json_is_true(get(p, "config.allow_origin_absent")));
    assert_int_equal(json_array_size(get(p, "protocols")), 4);
    assert_true(json_is_true(get(p, "enabled")));
    assert_true(json_is_null(get(p, "route")));
    json_decref(p);
    invalid("plugins", "{}", SL_VALIDATE_JSON, "{\"name\":\"required field missing\"}");
    invalid("plugins", "{\"name\":\"cors\",\"config\":[1]}", SL_VALIDATE_JSON,
            "{\"config\":\"expected a record\"}");
    invalid("plugins", "{\"name\":\"cors\",\"route\":{\"id\":\"x\"}}", SL_VALIDATE_JSON,
            "{\"route\":{\"id\":\"expected a valid UUID\"}}");
    p = valid("plugins",
              "{\"name\":\"cors\",\"service\":{\"id\":\"" UUID1
              "\"},\"config\":{\"max_age\":\"60\"}}",
              SL_VALIDATE_FORM);
    assert_string_equal(str(p, "service.id"), UUID1);
    json_decref(p);
}

static void test_credentials(void **state)
{
    json_t *k =
        valid("keyauth_credentials", "{\"consumer\":{\"id\":\"" UUID1 "\"}}", SL_VALIDATE_JSON);
    const char *key = str(k, "key");
    assert_non_null(key);
    assert_int_equal(strlen(key), 32);
    assert_int_equal(strspn(key, "0123456789abcdef"), 32);
    json_t *k2 =
        valid("keyauth_credentials", "{\"consumer\":{\"id\":\"" UUID1 "\"}}", SL_VALIDATE_JSON);
    assert_string_not_equal(key, str(k2, "key"));
    json_decref(k);
    json_decref(k2);
    k = valid("keyauth_credentials", "{\"consumer\":{\"id\":\"" UUID1 "\"},\"key\":\"mine\"}",
              SL_VALIDATE_JSON);
    assert_string_equal(str(k, "key"), "mine");
    json_decref(k);
    invalid("keyauth_credentials", "{}", SL_VALIDATE_JSON,
            "{\"consumer\":\"required field missing\"}");

    json_t *b = valid("basicauth_credentials",
                      "{\"consumer\":{\"id\":\"" UUID1 "\"},\"username\":\"u\",\"password\":"
                      "\"pw\"}",
                      SL_VALIDATE_JSON);
    const char *hash = str(b, "password");
    assert_true(sl_password_is_hash(hash));
    assert_true(sl_password_verify("pw", hash));
    /* validating again (PATCH of another field, snapshot decode) keeps the same hash */
    char *before = strdup(hash);
    json_t *errors;
    assert_int_equal(sl_schema_validate(sl_entity_by_name("basicauth_credentials"), b,
                                        SL_VALIDATE_JSON, &errors),
                     0);
    assert_string_equal(str(b, "password"), before);
    free(before);
    json_decref(b);
    invalid("basicauth_credentials", "{\"consumer\":{\"id\":\"" UUID1 "\"},\"username\":\"u\"}",
            SL_VALIDATE_JSON, "{\"password\":\"required field missing\"}");

    invalid("acls", "{\"consumer\":{\"id\":\"" UUID1 "\"}}", SL_VALIDATE_JSON,
            "{\"group\":\"required field missing\"}");
    json_decref(valid("acls", "{\"consumer\":{\"id\":\"" UUID1 "\"},\"group\":\"admins\"}",
                      SL_VALIDATE_JSON));
}

/* ---------------- certificates ---------------- */

static EVP_PKEY *new_key(const char *type)
{
    EVP_PKEY *k =
        strcmp(type, "EC") == 0 ? EVP_EC_gen("P-256") : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k);
    return k;
}

/* A self-signed certificate for key; ca adds basicConstraints CA:TRUE; days may be negative
 * (then it expired). Returns malloc'd PEM. */
static char *self_signed(EVP_PKEY *key, int ca, int days)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), days < 0 ? (long)days * 2 * 86400 : 0);
    X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"test", -1, -1, 0);
    X509_set_issuer_name(x, name);
    if (ca) {
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "CA:TRUE");
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    int is_ed = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519;
    assert_true(X509_sign(x, key, is_ed ? NULL : EVP_sha256()) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *out = strndup(data, (size_t)n);
    BIO_free(b);
    X509_free(x);
    return out;
}

static char *key_pem(EVP_PKEY *key)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *out = strndup(data, (size_t)n);
    BIO_free(b);
    return out;
}

static int validate_obj(const char *entity, json_t *obj, json_t **errors)
{
    return sl_schema_validate(sl_entity_by_name(entity), obj, SL_VALIDATE_JSON, errors);
}

static void test_certificates(void **state)
{
    EVP_PKEY *k1 = new_key("EC"), *k2 = new_key("EC"), *k3 = new_key("ED25519");
    char *c1 = self_signed(k1, 0, 30), *p1 = key_pem(k1), *p2 = key_pem(k2);
    char *c3 = self_signed(k3, 0, 30), *p3 = key_pem(k3);
    json_t *errors;

    json_t *c = json_pack("{ssss s[s]}", "cert", c1, "key", p1, "snis", "a.example.com");
    assert_int_equal(validate_obj("certificates", c, &errors), 0);
    json_decref(c);

    c = json_pack("{ssss}", "cert", c1, "key", p2);
    assert_int_equal(validate_obj("certificates", c, &errors), 1);
    json_t *want = parse("{\"@entity\":[\"certificate does not match key\"]}");
    assert_true(json_equal(errors, want));
    json_decref(want);
    json_decref(errors);
    json_decref(c);

    c = json_pack("{ssss}", "cert", "not a pem", "key", p1);
    assert_int_equal(validate_obj("certificates", c, &errors), 1);
    assert_true(strncmp(str(errors, "cert"), "invalid certificate: ", 21) == 0);
    json_decref(errors);
    json_decref(c);

    c = json_pack("{ssssss}", "cert", c1, "key", p1, "cert_alt", c3);
    assert_int_equal(validate_obj("certificates", c, &errors), 1);
    assert_string_equal(json_string_value(json_array_get(get(errors, "@entity"), 0)),
                        "all or none of these fields must be set: 'cert_alt', 'key_alt'");
    json_decref(errors);
    json_decref(c);

    c = json_pack("{ssssssss}", "cert", c1, "key", p1, "cert_alt", c3, "key_alt", p3);
    assert_int_equal(validate_obj("certificates", c, &errors), 0);
    json_decref(c);

    /* snis need a certificate; names follow the wildcard rules and carry no port */
    json_decref(valid("snis", "{\"name\":\"*.example.com\",\"certificate\":{\"id\":\"" UUID1 "\"}}",
                      SL_VALIDATE_JSON));
    invalid("snis", "{\"name\":\"a.com:443\",\"certificate\":{\"id\":\"" UUID1 "\"}}",
            SL_VALIDATE_JSON, "{\"name\":\"must not have a port\"}");
    invalid("snis", "{\"name\":\"10.0.0.1\",\"certificate\":{\"id\":\"" UUID1 "\"}}",
            SL_VALIDATE_JSON, "{\"name\":\"must not be an IP\"}");

    /* ca_certificates: must be a CA, not expired; digest filled from the certificate */
    c = json_pack("{ss}", "cert", c1);
    assert_int_equal(validate_obj("ca_certificates", c, &errors), 1);
    assert_string_equal(json_string_value(json_array_get(get(errors, "@entity"), 0)),
                        "certificate does not appear to be a CA because it is missing the "
                        "\"CA\" basic constraint");
    json_decref(errors);
    json_decref(c);

    char *ca = self_signed(k1, 1, 30), *old = self_signed(k1, 1, -1);
    c = json_pack("{ssss}", "cert", ca, "cert_digest", "bogus");
    assert_int_equal(validate_obj("ca_certificates", c, &errors), 0);
    BIO *b = BIO_new_mem_buf(ca, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    unsigned char md[32];
    unsigned int mdlen;
    X509_digest(x, EVP_sha256(), md, &mdlen);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    assert_string_equal(str(c, "cert_digest"), hex);
    X509_free(x);
    BIO_free(b);
    json_decref(c);

    c = json_pack("{ss}", "cert", old);
    assert_int_equal(validate_obj("ca_certificates", c, &errors), 1);
    assert_string_equal(json_string_value(json_array_get(get(errors, "@entity"), 0)),
                        "certificate expired, \"Not After\" time is in the past");
    json_decref(errors);
    json_decref(c);

    char *two = malloc(strlen(ca) * 2 + 1);
    strcpy(two, ca);
    strcat(two, ca);
    c = json_pack("{ss}", "cert", two);
    assert_int_equal(validate_obj("ca_certificates", c, &errors), 1);
    assert_string_equal(json_string_value(json_array_get(get(errors, "@entity"), 0)),
                        "please submit only one certificate at a time");
    json_decref(errors);
    json_decref(c);

    free(two);
    free(ca);
    free(old);
    free(c1);
    free(c3);
    free(p1);
    free(p2);
    free(p3);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k3);
}

/* ---------------- merge, records ---------------- */

static void test_merge(void **state)
{
    const sl_entity *svc = sl_entity_by_name("services");
    json_t *old =
        valid("services", "{\"host\":\"a\",\"name\":\"s\",\"port\":81}", SL_VALIDATE_JSON);
    json_t *patch = parse("{\"port\":8080,\"path\":\"/x\"}");
    json_t *m = sl_schema_merge(svc, old, patch);
    assert_string_equal(str(m, "host"), "a");
    assert_string_equal(str(m, "name"), "s");
    assert_int_equal(num(m, "port"), 8080);
    assert_string_equal(str(m, "path"), "/x");
    assert_int_equal(num(old, "port"), 81); /* the inputs are untouched */
    json_decref(m);
    json_decref(patch);
    /* a url patch replaces host/port/path once validated */
    patch = parse("{\"url\":\"https://b.example/api\"}");
    m = sl_schema_merge(svc, old, patch);
    json_t *errors;
    assert_int_equal(sl_schema_validate(svc, m, SL_VALIDATE_JSON, &errors), 0);
    assert_string_equal(str(m, "host"), "b.example");
    assert_int_equal(num(m, "port"), 443);
    assert_string_equal(str(m, "name"), "s");
    json_decref(m);
    json_decref(patch);
    json_decref(old);

    const sl_entity *ups = sl_entity_by_name("upstreams");
    old = valid("upstreams", "{\"name\":\"u\"}", SL_VALIDATE_JSON);
    patch = parse("{\"healthchecks\":{\"active\":{\"unhealthy\":{\"tcp_failures\":3}}}}");
    m = sl_schema_merge(ups, old, patch);
    assert_int_equal(num(m, "healthchecks.active.unhealthy.tcp_failures"), 3);
    assert_int_equal(json_array_size(get(m, "healthchecks.active.unhealthy.http_statuses")), 8);
    assert_int_equal(num(m, "healthchecks.active.concurrency"), 10);
    json_decref(m);
    json_decref(patch);
    json_decref(old);

    const sl_entity *pl = sl_entity_by_name("plugins");
    old = parse("{\"name\":\"rate-limiting\",\"config\":{\"minute\":5,\"hour\":100,"
                "\"nested\":{\"a\":1,\"b\":2}},\"tags\":[\"x\"]}");
    patch = parse("{\"config\":{\"minute\":10,\"nested\":{\"b\":3}},\"tags\":[\"y\"]}");
    m = sl_schema_merge(pl, old, patch);
    assert_int_equal(num(m, "config.minute"), 10);
    assert_int_equal(num(m, "config.hour"), 100);
    assert_int_equal(num(m, "config.nested.a"), 1);
    assert_int_equal(num(m, "config.nested.b"), 3);
    assert_int_equal(json_array_size(get(m, "tags")), 1); /* arrays are replaced */
    assert_string_equal(json_string_value(json_array_get(get(m, "tags"), 0)), "y");
    json_decref(m);
    json_decref(patch);
    json_decref(old);
}

static const char *const POLICIES[] = {"local", "cluster", "redis", NULL};

static void test_validate_record(void **state)
{
    static const sl_field conf[] = {
        {.name = "minute", .type = SL_T_NUMBER, .min = 0, .max = 1000000},
        {.name = "policy", .type = SL_T_STRING, .dflt = "\"local\"", .one_of = POLICIES},
        {.name = "fault_tolerant", .type = SL_T_BOOLEAN, .flags = SL_F_REQUIRED, .dflt = "true"},
    };
    json_t *r = parse("{\"minute\":\"5\",\"fault_tolerant\":\"false\"}");
    json_t *errors;
    assert_int_equal(sl_schema_validate_record(conf, 3, r, SL_VALIDATE_FORM, &errors), 0);
    assert_true(json_number_value(get(r, "minute")) == 5);
    assert_string_equal(str(r, "policy"), "local");
    assert_true(json_is_false(get(r, "fault_tolerant")));
    json_decref(r);

    r = parse("{\"minute\":\"x\",\"policy\":\"disk\",\"burst\":1}");
    assert_int_equal(sl_schema_validate_record(conf, 3, r, SL_VALIDATE_JSON, &errors), 3);
    json_t *want = parse("{\"minute\":\"expected a number\",\"policy\":\"expected one of: local, "
                         "cluster, redis\",\"burst\":\"unknown field\"}");
    assert_true(json_equal(errors, want));
    char *m = sl_schema_violation_message(errors, 3);
    assert_string_equal(m, "3 schema violations (burst: unknown field; minute: expected a "
                           "number; policy: expected one of: local, cluster, redis)");
    free(m);
    json_decref(want);
    json_decref(errors);
    json_decref(r);

    r = parse("[1]");
    assert_int_equal(sl_schema_validate_record(conf, 3, r, SL_VALIDATE_JSON, &errors), 1);
    json_decref(errors);
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_are_ordered),
        cmocka_unit_test(test_migration_matches_tables),
        cmocka_unit_test(test_service_defaults),
        cmocka_unit_test(test_service_errors),
        cmocka_unit_test(test_service_conditionals),
        cmocka_unit_test(test_service_url_shorthand),
        cmocka_unit_test(test_form_coercion),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_route_defaults),
        cmocka_unit_test(test_route_entity_checks),
        cmocka_unit_test(test_route_fields),
        cmocka_unit_test(test_consumers),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_upstream_defaults),
        cmocka_unit_test(test_upstream_errors),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_plugins),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_certificates),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_validate_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
