/* cors: preflights answered by the gateway (origin lists with plain, regex and "*" entries,
 * credentials, max_age, requested headers), preflight_continue, simple requests getting the
 * headers in header_filter with Vary: Origin, and configs the schema refuses. Each test runs
 * the real chain (proto validation fills defaults, dp_plugin_chain_build, the phase
 * runners), the way the proxy does. JSON is written with ` for ". */
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

/* Validates plugin (as the Admin API and the DP do) and returns the errors, or NULL. */
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

/* Starts a request: headers as "Name: value" strings, NULL-terminated. */
static dp_plugin_req *request(fixture *f, const char *method, const char *const *headers)
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
    r->path = DP_SLICE_LIT("/");
    r->headers = f->hdrs;
    r->nheaders = n;
    r->upstream_latency_ms = -1;
    assert_int_equal(dp_plugin_req_begin(r, &f->chain, 0), 0);
    return r;
}

/* Runs header_filter over an upstream response with the given headers; returns the head the
 * client gets. */
static const dp_h1_head *respond(dp_plugin_req *r, int status, const char *const *headers)
{
    static dp_h1_head rh;
    memset(&rh, 0, sizeof(rh));
    rh.status = status;
    rh.content_length = 2;
    rh.host_index = -1;
    for (; headers && headers[rh.nheaders]; rh.nheaders++) {
        const char *h = headers[rh.nheaders], *colon = strchr(h, ':');
        rh.headers[rh.nheaders].name = (dp_slice){h, (size_t)(colon - h)};
        rh.headers[rh.nheaders].value = dp_slice_cstr(colon + 2);
    }
    const dp_h1_head *out = dp_plugin_response_filter(r, &rh);
    assert_non_null(out);
    return out;
}

/* The value of the only header named name in a head; NULL when absent; fails when repeated. */
static const char *hget(const dp_h1_head *h, const char *name)
{
    static char buf[512];
    const char *found = NULL;
    for (int i = 0; i < h->nheaders; i++)
        if (dp_slice_ieq(h->headers[i].name, name)) {
            assert_null(found);
            snprintf(buf, sizeof(buf), "%.*s", (int)h->headers[i].value.len, h->headers[i].value.p);
            found = buf;
        }
    return found;
}

/* The value of a response header a plugin set before the response (preflight answers). */
static const char *pending(dp_plugin_req *r, const char *name)
{
    static char buf[512];
    const dp_slice *v = dp_plugin_resp_header(r, name);
    if (!v)
        return NULL;
    snprintf(buf, sizeof(buf), "%.*s", (int)v->len, v->p);
    return buf;
}

static void test_preflight_listed_origin(void **state)
{
    fixture *f = with_plugin("{`name`:`cors`,`config`:{`origins`:[`https://app.example.com`],"
                             "`max_age`:3600,`credentials`:true,`headers`:[`X-A`,`X-B`]}}");
    const char *h[] = {"Origin: https://app.example.com", "Access-Control-Request-Method: PUT",
                       NULL};
    dp_plugin_req *r = request(f, "OPTIONS", h);
    assert_int_equal(dp_plugin_run_access(&f->chain, r), DP_PLUGIN_RESPOND);
    assert_int_equal(r->response_status, 200);
    assert_string_equal(pending(r, "Access-Control-Allow-Origin"), "https://app.example.com");
    assert_string_equal(pending(r, "Access-Control-Allow-Methods"),
                        "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT");
    assert_string_equal(pending(r, "Access-Control-Allow-Headers"), "X-A,X-B");
    assert_string_equal(pending(r, "Access-Control-Max-Age"), "3600");
    assert_string_equal(pending(r, "Access-Control-Allow-Credentials"), "true");
    assert_string_equal(pending(r, "Vary"), "Origin");
    /* the gateway's own response then goes through header_filter: nothing is added twice */
    const dp_h1_head *out = respond(r, 200, NULL);
    assert_string_equal(hget(out, "Access-Control-Allow-Origin"), "https://app.example.com");
    done(f);
}

static void test_preflight_unlisted_origin(void **state)
{
    fixture *f = with_plugin("{`name`:`cors`,`config`:{`origins`:[`https://app.example.com`]}}");
    const char *h[] = {"Origin: https://evil.example.net", "Access-Control-Request-Method: GET",
                       "Access-Control-Request-Headers: X-Custom", NULL};
    dp_plugin_req *r = request(f, "OPTIONS", h);
    assert_int_equal(dp_plugin_run_access(&f->chain, r), DP_PLUGIN_RESPOND);
    assert_int_equal(r->response_status, 200);
    assert_null(pending(r, "Access-Control-Allow-Origin"));
    assert_null(pending(r, "Access-Control-Allow-Credentials"));
    /* no configured headers: the requested ones are echoed */
    assert_string_equal(pending(r, "Access-Control-Allow-Headers"), "X-Custom");
    assert_null(pending(r, "Access-Control-Max-Age"));
    done(f);
}

static void test_origin_normalization_and_regex(void **state)
{
    fixture *f = with_plugin("{`name`:`cors`,`config`:{`origins`:[`HTTP://Plain.Example:80`,"
                             "`https://.*\\\\.example\\\\.com`]}}");
    struct {
        const char *origin;
        int allowed;
    } cases[] = {
        {"http://plain.example", 1},           /* default port, case */
        {"http://plain.example:8080", 0},      /* other port */
        {"https://plain.example", 0},          /* other scheme */
        {"https://a.example.com", 1},          /* regex */
        {"https://a.b.example.com:443", 1},    /* regex, normalized form */
        {"https://a.example.com.evil.net", 0}, /* anchored at the end */
        {"http://a.example.com", 0},           /* anchored at the start */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char origin[128];
        snprintf(origin, sizeof(origin), "Origin: %s", cases[i].origin);
        const char *h[] = {origin, NULL};
        dp_plugin_req *r = request(f, "GET", h);
        assert_int_equal(dp_plugin_run_access(&f->chain, r), DP_PLUGIN_CONTINUE);
        const dp_h1_head *out = respond(r, 200, NULL);
        const char *acao = hget(out, "Access-Control-Allow-Origin");
        if (cases[i].allowed != (acao != NULL))
            fail_msg("%s: allowed=%d but got %s", cases[i].origin, cases[i].allowed,
                     acao ? acao : "(none)");
        if (acao)
            assert_string_equal(acao, cases[i].origin);
        assert_string_equal(hget(out, "Vary"), "Origin");
    }
    done(f);
}

static void test_simple_request_headers(void **state)
{
    fixture *f = with_plugin("{`name`:`cors`,`config`:{`origins`:[`https://app.example.com`],"
                             "`exposed_headers`:[`X-Total`,`X-Page`]}}");
    const char *h[] = {"Origin: https://app.example.com", NULL};
    dp_plugin_req *r = request(f, "GET", h);
    assert_int_equal(dp_plugin_run_access(&f->chain, r), DP_PLUGIN_CONTINUE);
    const char *up[] = {"Content-Type: text/plain", "Vary: Accept-Encoding", NULL};
    const dp_h1_head *out = respond(r, 200, up);
    assert_string_equal(hget(out, "Access-Control-Allow-Origin"), "https://app.example.com");
    assert_string_equal(hget(out, "Access-Control-Expose-Headers"), "X-Total,X-Page");
    assert_string_equal(hget(out, "Content-Type"), "text/plain");
    /* the upstream's Vary stays, Origin is added as another Vary */
    int vary_origin = 0, vary_enc = 0;
    for (int i = 0; i < out->nheaders; i++)
        if (dp_slice_ieq(out->headers[i].name, "Vary")) {
            vary_origin |= dp_slice_eq(out->headers[i].value, DP_SLICE_LIT("Origin"));
            vary_enc |= dp_slice_eq(out->headers[i].value, DP_SLICE_LIT("Accept-Encoding"));
        }
    assert_true(vary_origin && vary_enc);
    assert_null(hget(out, "Access-Control-Allow-Methods")); /* preflight only */
    done(f);
}

static void test_allow_all(void **state)
{
    fixture *f = with_plugin("{`name`:`cors`}");
    const char *h[] = {"Origin: https://x.test", NULL};
    dp_plugin_req *r = request(f, "GET", h);
    dp_plugin_run_access(&f->chain, r);
    const dp_h1_head *out = respond(r, 200, NULL);
    assert_string_equal(hget(out, "Access-Control-Allow-Origin"), "*");
    assert_null(hget(out, "Vary")); /* the answer doesn't depend on the origin */
    done(f);

    /* "*" can't go with credentials: the origin is echoed instead */
    f = with_plugin("{`name`:`cors`,`config`:{`origins`:[`*`],`credentials`:true}}");
    r = request(f, "GET", h);
    dp_plugin_run_access(&f->chain, r);
    out = respond(r, 200, NULL);
    assert_string_equal(hget(out, "Access-Control-Allow-Origin"), "https://x.test");
    assert_string_equal(hget(out, "Access-Control-Allow-Credentials"), "true");
    assert_string_equal(hget(out, "Vary"), "Origin");
    done(f);
}

static void test_preflight_continue_and_non_preflight(void **state)
{
    fixture *f = with_plugin("{`name`:`cors`,`config`:{`origins`:[`https://a.test`],"
                             "`preflight_continue`:true}}");
    const char *pre[] = {"Origin: https://a.test", "Access-Control-Request-Method: GET", NULL};
    dp_plugin_req *r = request(f, "OPTIONS", pre);
    assert_int_equal(dp_plugin_run_access(&f->chain, r), DP_PLUGIN_CONTINUE);
    const dp_h1_head *out = respond(r, 204, NULL);
    assert_null(hget(out, "Access-Control-Allow-Origin")); /* the upstream answers it */
    done(f);

    f = with_plugin("{`name`:`cors`,`config`:{`origins`:[`https://a.test`]}}");
    const char *plain[] = {"Origin: https://a.test", NULL}; /* no Request-Method: not a preflight */
    r = request(f, "OPTIONS", plain);
    assert_int_equal(dp_plugin_run_access(&f->chain, r), DP_PLUGIN_CONTINUE);
    out = respond(r, 200, NULL);
    assert_string_equal(hget(out, "Access-Control-Allow-Origin"), "https://a.test");
    done(f);
}

static void test_origin_absent(void **state)
{
    fixture *f = with_plugin("{`name`:`cors`,`config`:{`origins`:[`https://a.test`],"
                             "`allow_origin_absent`:false}}");
    dp_plugin_req *r = request(f, "GET", NULL);
    dp_plugin_run_access(&f->chain, r);
    const dp_h1_head *out = respond(r, 200, NULL);
    assert_null(hget(out, "Vary"));
    assert_null(hget(out, "Access-Control-Allow-Origin"));
    done(f);
}

static void test_refused_configs(void **state)
{
    const char *bad[] = {
        "{`name`:`cors`,`config`:{`origins`:[`https://(a`]}}",  /* not a regex */
        "{`name`:`cors`,`config`:{`methods`:[`GET`,`FETCH`]}}", /* unknown method */
        "{`name`:`cors`,`config`:{`credentials`:`maybe`}}",     /* not a boolean */
        "{`name`:`cors`,`config`:{`max_age`:`soon`}}",          /* not a number */
        "{`name`:`cors`,`consumer`:{`id`:`5a1b0000-0000-4000-8000-000000000002`}}", /* scope */
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
        cmocka_unit_test(test_preflight_listed_origin),
        cmocka_unit_test(test_preflight_unlisted_origin),
        cmocka_unit_test(test_origin_normalization_and_regex),
        cmocka_unit_test(test_simple_request_headers),
        cmocka_unit_test(test_allow_all),
        cmocka_unit_test(test_preflight_continue_and_non_preflight),
        cmocka_unit_test(test_origin_absent),
        cmocka_unit_test(test_refused_configs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
