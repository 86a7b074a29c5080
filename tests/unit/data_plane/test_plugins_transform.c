/* request-transformer and response-transformer through the real chain: header and query
 * edits in Kong's order, replace.uri, response header edits, JSON body rewriting with
 * json_types, the Content-Length switch to chunked, and the bodies left alone (not JSON, not
 * an object, over the bound). JSON is written with ` for ". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "data_plane/plugins/plugin.h"
#include "proto/schema.h"

static json_t *parse(const char *text)
{
    char *buf = strdup(text);
    for (char *p = buf; *p; p++)
        if (*p == '`')
            *p = '"';
    json_error_t je;
    json_t *j = json_loads(buf, 0, &je);
    if (!j)
        fail_msg("bad test JSON %s: %s", buf, je.text);
    free(buf);
    return j;
}

static json_t *validate(json_t *plugin)
{
    json_t *errors = NULL;
    int n = sl_schema_validate(sl_entity_by_name("plugins"), plugin, SL_VALIDATE_JSON, &errors);
    if (n == 0) {
        json_decref(errors);
        return NULL;
    }
    return errors;
}

typedef struct {
    dp_plugin_chain chain;
    dp_arena arena;
    char mem[65536];
    dp_plugin_req req;
    dp_header hdrs[16];
} fixture;

static fixture *with_plugin(const char *plugin_text)
{
    fixture *f = calloc(1, sizeof(*f));
    json_t *p = parse(plugin_text);
    json_t *errors = validate(p);
    if (errors)
        fail_msg("%s refused: %s", plugin_text, json_dumps(errors, 0));
    json_object_set_new(p, "id", json_string("5a1b0000-0000-4000-8000-000000000001"));
    json_t *config = json_pack("{s:[o],s:[]}", "plugins", p, "routes");
    char err[256] = "";
    if (dp_plugin_chain_build(&f->chain, config, err, sizeof(err)) != 0)
        fail_msg("chain: %s", err);
    json_decref(config);
    return f;
}

static void done(fixture *f)
{
    dp_arena_reset(&f->arena);
    dp_plugin_chain_free(&f->chain);
    free(f);
}

static dp_plugin_req *request(fixture *f, const char *method, const char *query,
                              const char *const *headers)
{
    dp_arena_reset(&f->arena); /* the previous request's extra blocks */
    dp_arena_init(&f->arena, f->mem, sizeof(f->mem));
    memset(&f->req, 0, sizeof(f->req));
    size_t n = 0;
    for (; headers && headers[n]; n++) {
        const char *colon = strchr(headers[n], ':');
        f->hdrs[n].name = (dp_slice){headers[n], (size_t)(colon - headers[n])};
        f->hdrs[n].value = dp_slice_cstr(colon + 2);
    }
    dp_plugin_req *r = &f->req;
    r->arena = &f->arena;
    r->method = dp_slice_cstr(method);
    r->path = DP_SLICE_LIT("/orders");
    r->query = query ? dp_slice_cstr(query) : (dp_slice){NULL, 0};
    r->headers = f->hdrs;
    r->nheaders = n;
    r->upstream_latency_ms = -1;
    assert_int_equal(dp_plugin_req_begin(r, &f->chain, 0), 0);
    return r;
}

/* Every upstream value of header name, joined with "|"; "" when absent. */
static const char *up(dp_plugin_req *r, const char *name)
{
    static char buf[512];
    buf[0] = 0;
    const dp_header *h = r->up_headers_set ? r->up_headers.items : r->headers;
    size_t n = r->up_headers_set ? r->up_headers.n : r->nheaders;
    for (size_t i = 0; i < n; i++)
        if (dp_slice_ieq(h[i].name, name))
            snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%.*s", buf[0] ? "|" : "",
                     (int)h[i].value.len, h[i].value.p);
    return buf;
}

static const char *query_of(dp_plugin_req *r)
{
    static char buf[512];
    dp_slice q = r->up_query_set ? r->up_query : r->query;
    snprintf(buf, sizeof(buf), "%.*s", (int)q.len, q.p ? q.p : "");
    return buf;
}

static void test_request_headers(void **state)
{
    fixture *f = with_plugin("{`name`:`request-transformer`,`config`:{"
                             "`remove`:{`headers`:[`x-secret`]},"
                             "`rename`:{`headers`:[`x-old:x-new`,`x-missing:x-never`]},"
                             "`replace`:{`headers`:[`x-ver:2`,`x-absent:1`]},"
                             "`add`:{`headers`:[`x-ver:9`,`x-added:yes`]},"
                             "`append`:{`headers`:[`x-multi:b`]}}}");
    const char *h[] = {"X-Secret: s", "X-Old: kept-value", "X-Ver: 1",
                       "X-Multi: a",  "Accept: */*",       NULL};
    dp_plugin_req *r = request(f, "GET", NULL, h);
    assert_int_equal(dp_plugin_run_access(&f->chain, r), DP_PLUGIN_CONTINUE);
    assert_string_equal(up(r, "x-secret"), "");
    assert_string_equal(up(r, "x-old"), "");
    assert_string_equal(up(r, "x-new"), "kept-value");
    assert_string_equal(up(r, "x-never"), "");
    assert_string_equal(up(r, "x-ver"), "2"); /* replaced; add doesn't touch a present one */
    assert_string_equal(up(r, "x-absent"), "");
    assert_string_equal(up(r, "x-added"), "yes");
    assert_string_equal(up(r, "x-multi"), "a|b");
    assert_string_equal(up(r, "accept"), "*/*");
    done(f);
}

static void test_request_query_and_uri(void **state)
{
    fixture *f = with_plugin("{`name`:`request-transformer`,`config`:{"
                             "`remove`:{`querystring`:[`debug`]},"
                             "`rename`:{`querystring`:[`q:search`]},"
                             "`replace`:{`querystring`:[`page:1`,`nope:x`],`uri`:`/v2/orders`},"
                             "`add`:{`querystring`:[`lang:en us`,`page:7`]},"
                             "`append`:{`querystring`:[`tag:b`]}}}");
    dp_plugin_req *r = request(f, "GET", "q=shoes&debug=1&page=3&tag=a&page=4", NULL);
    assert_int_equal(dp_plugin_run_access(&f->chain, r), DP_PLUGIN_CONTINUE);
    assert_true(r->up_query_set);
    assert_string_equal(query_of(r), "search=shoes&page=1&tag=a&lang=en%20us&tag=b");
    assert_true(r->up_path_set);
    assert_true(dp_slice_eq(r->up_path, DP_SLICE_LIT("/v2/orders")));
    done(f);

    /* no query actions: the query string is left as it came */
    f = with_plugin("{`name`:`request-transformer`,`config`:{`add`:{`headers`:[`x-a:1`]}}}");
    r = request(f, "GET", "a=%20b&c", NULL);
    dp_plugin_run_access(&f->chain, r);
    assert_false(r->up_query_set);
    assert_false(r->up_path_set);
    done(f);
}

/* Runs header_filter and the body filter over body (split into pieces of step bytes). Returns
 * the head the client gets; *out gets the body sent (static). */
static const dp_h1_head *transform_response(dp_plugin_req *r, const char *ctype, const char *body,
                                            size_t step, const char **out)
{
    static dp_h1_head rh;
    static char clbuf[32], ctbuf[128], sent[1 << 21];
    memset(&rh, 0, sizeof(rh));
    rh.status = 200;
    rh.host_index = -1;
    size_t blen = strlen(body);
    rh.content_length = (int64_t)blen;
    snprintf(clbuf, sizeof(clbuf), "%zu", blen);
    snprintf(ctbuf, sizeof(ctbuf), "%s", ctype);
    rh.headers[0] = (dp_header){DP_SLICE_LIT("Content-Type"), dp_slice_cstr(ctbuf)};
    rh.headers[1] = (dp_header){DP_SLICE_LIT("Content-Length"), dp_slice_cstr(clbuf)};
    rh.headers[2] = (dp_header){DP_SLICE_LIT("X-Upstream"), DP_SLICE_LIT("u1")};
    rh.nheaders = 3;
    const dp_h1_head *head = dp_plugin_response_filter(r, &rh);
    assert_non_null(head);
    size_t n = 0;
    for (size_t off = 0; off < blen; off += step) {
        dp_slice c = {body + off, blen - off < step ? blen - off : step};
        dp_plugin_run_body_filter(r, &c, 0);
        memcpy(sent + n, c.p, c.len);
        n += c.len;
    }
    dp_slice c = {"", 0};
    dp_plugin_run_body_filter(r, &c, 1);
    memcpy(sent + n, c.p, c.len);
    n += c.len;
    sent[n] = 0;
    *out = sent;
    return head;
}

static const char *hget(const dp_h1_head *h, const char *name)
{
    static char buf[256];
    for (int i = 0; i < h->nheaders; i++)
        if (dp_slice_ieq(h->headers[i].name, name)) {
            snprintf(buf, sizeof(buf), "%.*s", (int)h->headers[i].value.len, h->headers[i].value.p);
            return buf;
        }
    return NULL;
}

static void test_response_json_body(void **state)
{
    fixture *f =
        with_plugin("{`name`:`response-transformer`,`config`:{"
                    "`remove`:{`json`:[`secret`],`headers`:[`x-upstream`]},"
                    "`rename`:{`json`:[`old:new`]},"
                    "`replace`:{`json`:[`count:42`,`absent:1`],`json_types`:[`number`,`number`]},"
                    "`add`:{`json`:[`flag:true`,`name:ignored`,`note:hi`],"
                    "`json_types`:[`boolean`,`string`],`headers`:[`x-added:1`]},"
                    "`append`:{`json`:[`tags:c`,`name:again`,`list:z`]}}}");
    dp_plugin_req *r = request(f, "GET", NULL, NULL);
    dp_plugin_run_access(&f->chain, r);
    const char *body;
    const dp_h1_head *head = transform_response(
        r, "application/json; charset=utf-8",
        "{\"secret\":\"s\",\"old\":[1],\"count\":\"7\",\"name\":\"n\",\"tags\":[\"a\",\"b\"],"
        "\"list\":5}",
        7, &body);
    /* the length changes: no Content-Length, the proxy frames it as chunked */
    assert_null(hget(head, "Content-Length"));
    assert_int_equal(head->content_length, -1);
    assert_true(head->chunked);
    assert_null(hget(head, "X-Upstream"));
    assert_string_equal(hget(head, "X-Added"), "1");
    json_t *got = json_loads(body, 0, NULL);
    if (!got)
        fail_msg("not JSON: %s", body);
    json_t *want = parse("{`new`:[1],`count`:42,`name`:[`n`,`again`],`tags`:[`a`,`b`,`c`],"
                         "`flag`:true,`note`:`hi`,`list`:[`z`]}");
    if (!json_equal(got, want))
        fail_msg("got %s", body);
    json_decref(got);
    json_decref(want);
    done(f);
}

static void test_response_bodies_left_alone(void **state)
{
    fixture *f = with_plugin("{`name`:`response-transformer`,`config`:{`add`:{`json`:[`a:1`]}}}");
    const char *body;
    /* not JSON: streamed as is, Content-Length kept */
    dp_plugin_req *r = request(f, "GET", NULL, NULL);
    const dp_h1_head *head = transform_response(r, "text/html", "<p>{}</p>", 3, &body);
    assert_string_equal(body, "<p>{}</p>");
    assert_string_equal(hget(head, "Content-Length"), "9");
    /* JSON, but not an object */
    r = request(f, "GET", NULL, NULL);
    transform_response(r, "application/json", "[1,2,3]", 2, &body);
    assert_string_equal(body, "[1,2,3]");
    /* broken JSON */
    r = request(f, "GET", NULL, NULL);
    transform_response(r, "application/json", "{\"a\":", 2, &body);
    assert_string_equal(body, "{\"a\":");
    /* HEAD: no body to change, Content-Length stays */
    r = request(f, "HEAD", NULL, NULL);
    head = transform_response(r, "application/json", "", 1, &body);
    assert_non_null(hget(head, "Content-Length"));
    done(f);
}

static void test_response_over_bound(void **state)
{
    fixture *f = with_plugin("{`name`:`response-transformer`,`config`:{`add`:{`json`:[`a:1`]}}}");
    /* a JSON body over 1 MiB whose length is announced passes untouched */
    size_t n = 1100 * 1024;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = 0;
    dp_plugin_req *r = request(f, "GET", NULL, NULL);
    const char *body;
    const dp_h1_head *head = transform_response(r, "application/json", big, 65536, &body);
    assert_non_null(hget(head, "Content-Length"));
    assert_int_equal(strlen(body), n);
    assert_memory_equal(body, big, n);
    free(big);
    done(f);
}

static void test_refused_configs(void **state)
{
    const char *bad[] = {
        "{`name`:`request-transformer`,`config`:{`add`:{`headers`:[`nocolon`]}}}",
        "{`name`:`request-transformer`,`config`:{`rename`:{`headers`:[`x-a:bad name`]}}}",
        "{`name`:`request-transformer`,`config`:{`http_method`:`get me`}}",
        "{`name`:`request-transformer`,`config`:{`add`:{`querystring`:`a:1`,`extra`:[]}}}",
        "{`name`:`response-transformer`,`config`:{`add`:{`json_types`:[`date`]}}}",
        "{`name`:`response-transformer`,`config`:{`replace`:{`json`:[`novalue`]}}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *p = parse(bad[i]);
        json_t *errors = validate(p);
        if (!errors)
            fail_msg("accepted: %s", bad[i]);
        json_decref(errors);
        json_decref(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_headers),
        cmocka_unit_test(test_request_query_and_uri),
        cmocka_unit_test(test_response_json_body),
        cmocka_unit_test(test_response_bodies_left_alone),
        cmocka_unit_test(test_response_over_bound),
        cmocka_unit_test(test_refused_configs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
