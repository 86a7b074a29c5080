/* Admin API body and query decoding: Kong's content types and form key rules. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control_plane/admin/admin.h"

#define FORM "application/x-www-form-urlencoded"

/* Decodes body with content type ct and checks the status and (for 0) the JSON it gives. */
static void check(const char *ct, const char *body, int want_status, const char *want_json)
{
    json_t *out = (json_t *)0x1;
    int form = -1;
    char msg[256];
    int rc = cp_admin_body_decode(ct, body, strlen(body), &out, &form, msg, sizeof(msg));
    if (rc != want_status)
        fail_msg("%s [%s]: status %d (%s), want %d", ct ? ct : "(none)", body, rc, msg,
                 want_status);
    if (rc) {
        assert_null(out);
        return;
    }
    json_error_t e;
    json_t *want = json_loads(want_json, 0, &e);
    assert_non_null(want);
    if (!json_equal(out, want)) {
        char *got = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("%s [%s]: got %s, want %s", ct ? ct : "(none)", body, got, want_json);
    }
    json_decref(want);
    json_decref(out);
}

/* Decodes and returns the error message, checking the status. */
static const char *error_of(const char *ct, const char *body, size_t len, int want_status)
{
    static char msg[256];
    json_t *out = NULL;
    int form;
    int rc = cp_admin_body_decode(ct, body, len, &out, &form, msg, sizeof(msg));
    assert_int_equal(rc, want_status);
    assert_null(out);
    return msg;
}

static void json_object_body(void **state)
{
    check("application/json", "{\"name\":\"s1\",\"port\":80,\"tags\":[\"a\"]}", 0,
          "{\"name\":\"s1\",\"port\":80,\"tags\":[\"a\"]}");
    check("application/json; charset=utf-8", "{\"a\":{\"b\":null}}", 0, "{\"a\":{\"b\":null}}");
    check("Application/JSON ;charset=UTF-8", "{}", 0, "{}");
    int form = -1;
    json_t *out;
    char msg[64];
    assert_int_equal(cp_admin_body_decode("application/json", "{}", 2, &out, &form, msg, 64), 0);
    assert_int_equal(form, 0);
    json_decref(out);
}

static void json_errors(void **state)
{
    assert_string_equal(error_of("application/json", "{\"a\":", 5, 400), "Cannot parse JSON body");
    assert_string_equal(error_of("application/json", "{} x", 4, 400), "Cannot parse JSON body");
    const char *m = error_of("application/json", "[1,2]", 5, 400);
    assert_non_null(strstr(m, "Cannot parse JSON body"));
    error_of("application/json", "\"str\"", 5, 400);
    error_of("application/json", "42", 2, 400);
    /* an embedded NUL is not JSON */
    error_of("application/json", "{\"a\":\"x\0\"}", 9, 400);
}

static void empty_body_is_empty_object(void **state)
{
    check("application/json", "", 0, "{}");
    check(FORM, "", 0, "{}");
    check(NULL, "", 0, "{}");
    check("text/plain", "", 0, "{}");
}

static void unsupported_types(void **state)
{
    assert_string_equal(error_of("text/plain", "a=1", 3, 415), "Unsupported Media Type");
    assert_string_equal(error_of(NULL, "a=1", 3, 415), "Unsupported Media Type");
    error_of("application/jsonx", "{}", 2, 415);
    error_of("application/yaml", "a: 1", 4, 415);
}

static void too_large(void **state)
{
    size_t len = CP_ADMIN_MAX_BODY + 1;
    char *big = malloc(len);
    assert_non_null(big);
    memset(big, 'a', len);
    assert_string_equal(error_of("application/json", big, len, 413), "Payload too large");
    free(big);
}

static void form_plain_and_escapes(void **state)
{
    check(FORM, "name=s1&host=example.com", 0, "{\"name\":\"s1\",\"host\":\"example.com\"}");
    check(FORM, "a=x+y&b=%2Fp%20q&c=%zz&d=100%", 0,
          "{\"a\":\"x y\",\"b\":\"/p q\",\"c\":\"%zz\",\"d\":\"100%\"}");
    check(FORM, "na%6De=v", 0, "{\"name\":\"v\"}");
    check(FORM, "flag&x=", 0, "{\"flag\":\"\",\"x\":\"\"}");
    check(FORM, "&&=v&a=1&", 0, "{\"a\":\"1\"}");
    check(FORM, "u=%C3%A9", 0, "{\"u\":\"\xc3\xa9\"}");
    int form = -1;
    json_t *out;
    char msg[64];
    assert_int_equal(cp_admin_body_decode(FORM "; charset=utf-8", "a=1", 3, &out, &form, msg, 64),
                     0);
    assert_int_equal(form, 1);
    json_decref(out);
}

static void form_arrays(void **state)
{
    check(FORM, "paths[]=/a&paths[]=/b", 0, "{\"paths\":[\"/a\",\"/b\"]}");
    check(FORM, "paths%5B%5D=/a", 0, "{\"paths\":[\"/a\"]}");
    check(FORM, "paths[1]=/a", 0, "{\"paths\":[\"/a\"]}");
    check(FORM, "paths[2]=/b&paths[1]=/a", 0, "{\"paths\":[\"/a\",\"/b\"]}");
    check(FORM, "paths[3]=/c", 0, "{\"paths\":[null,null,\"/c\"]}");
    check(FORM, "paths[1]=/a&paths[1]=/z", 0, "{\"paths\":[\"/z\"]}");
    check(FORM, "hosts=a&hosts=b&hosts=c", 0, "{\"hosts\":[\"a\",\"b\",\"c\"]}");
    check(FORM, "hosts=a&hosts[]=b", 0, "{\"hosts\":[\"a\",\"b\"]}");
    check(FORM, "hosts[]=a&hosts=b", 0, "{\"hosts\":[\"a\",\"b\"]}");
    check(FORM, "methods=GET", 0, "{\"methods\":\"GET\"}");
}

static void form_nested(void **state)
{
    check(FORM, "name=rate-limiting&config.minute=5", 0,
          "{\"name\":\"rate-limiting\",\"config\":{\"minute\":\"5\"}}");
    check(FORM, "config[minute]=5&config[hour]=100", 0,
          "{\"config\":{\"minute\":\"5\",\"hour\":\"100\"}}");
    check(FORM, "headers.x-version=v2", 0, "{\"headers\":{\"x-version\":\"v2\"}}");
    check(FORM, "headers.x-version[]=v1&headers.x-version[]=v2", 0,
          "{\"headers\":{\"x-version\":[\"v1\",\"v2\"]}}");
    check(FORM, "config.a.b[c]=1&config.a.d=2", 0,
          "{\"config\":{\"a\":{\"b\":{\"c\":\"1\"},\"d\":\"2\"}}}");
    check(FORM, "sources[1].ip=10.0.0.1&sources[1].port=80&sources[2].ip=10.0.0.2", 0,
          "{\"sources\":[{\"ip\":\"10.0.0.1\",\"port\":\"80\"},{\"ip\":\"10.0.0.2\"}]}");
    check(FORM, "config[redis.host]=h", 0, "{\"config\":{\"redis.host\":\"h\"}}");
}

static void form_literal_keys(void **state)
{
    /* keys outside the bracket/dot syntax stay whole, as Kong keeps them */
    check(FORM, "a[b=1", 0, "{\"a[b\":\"1\"}");
    check(FORM, "a.=1", 0, "{\"a.\":\"1\"}");
    check(FORM, ".a=1", 0, "{\".a\":\"1\"}");
    check(FORM, "a[x]y=1", 0, "{\"a[x]y\":\"1\"}");
}

static void form_too_many_arguments(void **state)
{
    size_t cap = (CP_ADMIN_MAX_ARGS + 1) * 12 + 1;
    char *b = malloc(cap);
    size_t n = 0;
    for (int i = 0; i < CP_ADMIN_MAX_ARGS; i++)
        n += (size_t)snprintf(b + n, cap - n, "%sk%d=v", i ? "&" : "", i);
    json_t *out;
    int form;
    char msg[128];
    assert_int_equal(cp_admin_body_decode(FORM, b, n, &out, &form, msg, sizeof(msg)), 0);
    assert_int_equal(json_object_size(out), CP_ADMIN_MAX_ARGS);
    json_decref(out);
    n += (size_t)snprintf(b + n, cap - n, "&one=more");
    assert_string_equal(error_of(FORM, b, n, 400), "Too many arguments");
    free(b);
}

static void form_bounds(void **state)
{
    /* 8 segments are fine, 9 are too deep */
    check(FORM, "a.b.c.d.e.f.g.h=1", 0,
          "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":\"1\"}}}}}}}}");
    const char *m = error_of(FORM, "a.b.c.d.e.f.g.h.i=1", 19, 400);
    assert_non_null(strstr(m, "nested deeper"));
    assert_non_null(strstr(m, "a.b.c.d.e.f.g.h.i"));
    m = error_of(FORM, "a[][][][][][][][]=1", 19, 400);
    assert_non_null(strstr(m, "nested deeper"));
    m = error_of(FORM, "paths[0]=/a", 11, 400);
    assert_non_null(strstr(m, "array index out of range"));
    error_of(FORM, "paths[1001]=/a", 14, 400);
    error_of(FORM, "paths[99999999999999999999]=/a", 30, 400);
    json_t *out;
    int form;
    char msg[128];
    assert_int_equal(cp_admin_body_decode(FORM, "p[1000]=x", 9, &out, &form, msg, sizeof(msg)), 0);
    json_t *p = json_object_get(out, "p");
    assert_int_equal(json_array_size(p), 1000);
    assert_string_equal(json_string_value(json_array_get(p, 999)), "x");
    assert_true(json_is_null(json_array_get(p, 0)));
    json_decref(out);
    /* sparse indexes cannot make the decoder fill more than CP_FORM_MAX_PADDING nulls */
    char big[20 * 16];
    size_t n = 0;
    for (int i = 0; i < 15; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "%sa%d[1000]=x", i ? "&" : "", i);
    m = error_of(FORM, big, n, 400);
    assert_non_null(strstr(m, "sparse"));
}

static void form_conflicts_and_utf8(void **state)
{
    const char *m = error_of(FORM, "config=x&config.minute=5", 24, 400);
    assert_non_null(strstr(m, "config.minute"));
    error_of(FORM, "config.minute=5&config=x", 24, 400);
    error_of(FORM, "a[]=1&a.b=2", 11, 400);
    error_of(FORM, "a.b=1&a[]=2", 11, 400);
    m = error_of(FORM, "name=%FF", 8, 400);
    assert_non_null(strstr(m, "UTF-8"));
    error_of(FORM, "%FF=x", 5, 400);
    error_of(FORM, "a%00b=x", 7, 400);
}

#define MP "multipart/form-data; boundary=XyZ"

static void multipart(void **state)
{
    check(MP,
          "--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\ns1\r\n"
          "--XyZ\r\nContent-Disposition: form-data; name=\"paths[]\"\r\n\r\n/a\r\n"
          "--XyZ\r\ncontent-disposition: form-data; name=\"paths[]\"\r\n\r\n/b\r\n"
          "--XyZ\r\nContent-Disposition: form-data; name=\"config.minute\"\r\n\r\n5\r\n"
          "--XyZ--\r\n",
          0, "{\"name\":\"s1\",\"paths\":[\"/a\",\"/b\"],\"config\":{\"minute\":\"5\"}}");
    /* file part: its content, with its own line breaks, as a string */
    check("multipart/form-data; boundary=\"a b\"",
          "preamble\r\n--a b\r\nContent-Disposition: form-data; name=\"cert\"; "
          "filename=\"c.pem\"\r\nContent-Type: application/x-pem-file\r\n\r\n"
          "-----BEGIN X-----\r\nAAA\r\n-----END X-----\r\n--a b--",
          0, "{\"cert\":\"-----BEGIN X-----\\r\\nAAA\\r\\n-----END X-----\"}");
    check(MP,
          "--XyZ\r\nContent-Disposition: form-data; name=hosts\r\n\r\na\r\n--XyZ\r\n"
          "Content-Disposition: form-data; name=hosts\r\n\r\nb\r\n--XyZ--",
          0, "{\"hosts\":[\"a\",\"b\"]}");
    check(MP, "--XyZ--\r\n", 0, "{}");
}

static void multipart_errors(void **state)
{
    const char *m;
    m = error_of("multipart/form-data", "--x\r\n", 5, 400);
    assert_non_null(strstr(m, "boundary"));
    const char *b = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv";
    m = error_of(MP, b, strlen(b), 400);
    assert_non_null(strstr(m, "closing boundary"));
    b = "--XyZ\r\nContent-Type: text/plain\r\n\r\nv\r\n--XyZ--";
    m = error_of(MP, b, strlen(b), 400);
    assert_non_null(strstr(m, "name"));
    b = "no delimiter here";
    error_of(MP, b, strlen(b), 400);
    b = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"";
    error_of(MP, b, strlen(b), 400);
    b = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\xff\r\n--XyZ--";
    m = error_of(MP, b, strlen(b), 400);
    assert_non_null(strstr(m, "UTF-8"));
}

static void query(void **state)
{
    json_t *q = cp_admin_query_decode("size=10&offset=abc%3D&tags=a,b");
    json_t *want = json_pack("{s:s,s:s,s:s}", "size", "10", "offset", "abc=", "tags", "a,b");
    assert_true(json_equal(q, want));
    json_decref(q);
    json_decref(want);

    q = cp_admin_query_decode("tags=a&tags=b&config[x]=1&q=a+b");
    want = json_pack("{s:[s,s],s:{s:s},s:s}", "tags", "a", "b", "config", "x", "1", "q", "a b");
    assert_true(json_equal(q, want));
    json_decref(q);
    json_decref(want);

    q = cp_admin_query_decode(NULL);
    assert_true(json_is_object(q) && json_object_size(q) == 0);
    json_decref(q);
    q = cp_admin_query_decode("");
    assert_true(json_is_object(q) && json_object_size(q) == 0);
    json_decref(q);

    size_t cap = (CP_ADMIN_MAX_ARGS + 2) * 8;
    char *b = malloc(cap);
    size_t n = 0;
    for (int i = 0; i <= CP_ADMIN_MAX_ARGS; i++)
        n += (size_t)snprintf(b + n, cap - n, "%sa=%d", i ? "&" : "", i);
    assert_null(cp_admin_query_decode(b));
    char msg[128];
    assert_null(cp_admin_query_decode_msg(b, msg, sizeof(msg)));
    assert_string_equal(msg, "Too many arguments");
    free(b);
    assert_null(cp_admin_query_decode_msg("x[0]=1", msg, sizeof(msg)));
    assert_non_null(strstr(msg, "x[0]"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_object_body),
        cmocka_unit_test(json_errors),
        cmocka_unit_test(empty_body_is_empty_object),
        cmocka_unit_test(unsupported_types),
        cmocka_unit_test(too_large),
        cmocka_unit_test(form_plain_and_escapes),
        cmocka_unit_test(form_arrays),
        cmocka_unit_test(form_nested),
        cmocka_unit_test(form_literal_keys),
        cmocka_unit_test(form_too_many_arguments),
        cmocka_unit_test(form_bounds),
        cmocka_unit_test(form_conflicts_and_utf8),
        cmocka_unit_test(multipart),
        cmocka_unit_test(multipart_errors),
        cmocka_unit_test(query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
