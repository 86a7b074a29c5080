/* The upstream request head and the client response head byte for byte, for each way their
 * tails can go (Via ours, extended, passed on or absent; a stripped prefix or none; either
 * latency header alone, both or none), and a writer too small by any amount refuses instead
 * of sending a truncated head. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "data_plane/http/rewrite.h"
#include "proto/version.h"

static dp_h1 h;

static const dp_h1_head *head_of(const char *raw)
{
    dp_h1_init(&h, DP_H1_REQUEST, NULL, NULL, NULL);
    size_t used;
    dp_h1_execute(&h, raw, strlen(raw), &used);
    assert_true(h.head_complete);
    return &h.head;
}

static dp_upstream_req_info info_for(unsigned headers, const char *prefix)
{
    dp_upstream_req_info info = {
        .upstream_uri = DP_SLICE_LIT("/x?q=1"),
        .host = DP_SLICE_LIT("backend:8080"),
        .client_ip = DP_SLICE_LIT("10.0.0.1"),
        .scheme = "http",
        .fwd_host = DP_SLICE_LIT("client.example"),
        .fwd_port = 8000,
        .fwd_path = DP_SLICE_LIT("/api/x"),
        .fwd_prefix = dp_slice_cstr(prefix),
        .request_id = DP_SLICE_LIT("rid"),
        .headers = headers,
        .raw = 1,
    };
    return info;
}

static void expect_head(const char *raw, unsigned headers, const char *prefix, const char *want)
{
    const dp_h1_head *q = head_of(raw);
    dp_upstream_req_info info = info_for(headers, prefix);
    char out[4096];
    size_t cap = dp_rewrite_request_size(q, &info);
    assert_true(cap <= sizeof(out));
    long n = dp_rewrite_request(q, &info, out, cap);
    assert_true(n > 0);
    out[n] = 0;
    assert_string_equal(out, want);
    /* every smaller space is refused, never a cut head */
    for (size_t small = 0; small < (size_t)n; small++)
        assert_int_equal(dp_rewrite_request(q, &info, out, small), -1);
    assert_int_equal(dp_rewrite_request(q, &info, out, (size_t)n), n);
}

#define FWD                                                                                        \
    "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: client.example\r\n" \
    "X-Forwarded-Port: 8000\r\nX-Forwarded-Path: /api/x\r\n"
#define VIA "1.1 sluice/" SL_VERSION

static void test_via_ours(void **st)
{
    expect_head("GET /api/x?q=1 HTTP/1.1\r\nHost: client.example:8000\r\nX-A: 1\r\n\r\n",
                DP_HDR_ALL, NULL,
                "GET /x?q=1 HTTP/1.1\r\nHost: backend:8080\r\nX-A: 1\r\n" FWD
                "X-Real-IP: 10.0.0.1\r\nVia: " VIA "\r\nX-Sluice-Request-Id: rid\r\n\r\n");
}

static void test_via_extended_and_prefix(void **st)
{
    expect_head("GET /api/x?q=1 HTTP/1.1\r\nHost: h\r\nVia: 1.0 edge\r\n"
                "X-Forwarded-For: 1.2.3.4\r\n\r\n",
                DP_HDR_ALL, "/api",
                "GET /x?q=1 HTTP/1.1\r\nHost: backend:8080\r\n"
                "X-Forwarded-For: 1.2.3.4, 10.0.0.1\r\nX-Forwarded-Proto: http\r\n"
                "X-Forwarded-Host: client.example\r\nX-Forwarded-Port: 8000\r\n"
                "X-Forwarded-Path: /api/x\r\nX-Forwarded-Prefix: /api\r\nX-Real-IP: 10.0.0.1\r\n"
                "Via: 1.0 edge, " VIA "\r\nX-Sluice-Request-Id: rid\r\n\r\n");
}

static void test_via_off_passes_theirs_on(void **st)
{
    expect_head("POST /api/x?q=1 HTTP/1.1\r\nHost: h\r\nVia: 1.0 edge\r\nContent-Length: 2\r\n\r\n",
                DP_HDR_REQUEST_ID, NULL,
                "POST /x?q=1 HTTP/1.1\r\nHost: backend:8080\r\nContent-Length: 2\r\n" FWD
                "X-Real-IP: 10.0.0.1\r\nVia: 1.0 edge\r\nX-Sluice-Request-Id: rid\r\n\r\n");
}

static void test_via_off_and_absent(void **st)
{
    expect_head("GET /api/x?q=1 HTTP/1.1\r\nHost: h\r\n\r\n", 0, NULL,
                "GET /x?q=1 HTTP/1.1\r\nHost: backend:8080\r\n" FWD "X-Real-IP: 10.0.0.1\r\n\r\n");
}

static void expect_response(const char *raw, unsigned headers, long up_ms, long proxy_ms,
                            const char *want)
{
    dp_h1_init(&h, DP_H1_RESPONSE, NULL, NULL, NULL);
    size_t used;
    dp_h1_execute(&h, raw, strlen(raw), &used);
    assert_true(h.head_complete);
    dp_client_resp_info info = {
        .client_minor = 1,
        .upstream_ms = up_ms,
        .proxy_ms = proxy_ms,
        .request_id = DP_SLICE_LIT("rid"),
        .headers = headers,
        .raw = 1,
    };
    char out[4096];
    size_t cap = dp_rewrite_response_size(&h.head);
    assert_true(cap <= sizeof(out));
    long n = dp_rewrite_response(&h.head, &info, out, cap);
    assert_true(n > 0);
    out[n] = 0;
    assert_string_equal(out, want);
    for (size_t small = 0; small < (size_t)n; small++)
        assert_int_equal(dp_rewrite_response(&h.head, &info, out, small), -1);
}

#define RESP "HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 2\r\nConnection: keep-alive\r\n"

static void test_response_tails(void **st)
{
    expect_response(RESP "\r\n", DP_HDR_ALL, 7, 1,
                    "HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 2\r\nVia: " VIA
                    "\r\nX-Sluice-Upstream-Latency: 7\r\nX-Sluice-Proxy-Latency: 1\r\n"
                    "X-Sluice-Request-Id: rid\r\n\r\n");
    expect_response(RESP "Via: 1.1 cdn\r\n\r\n", DP_HDR_ALL, -1, 0,
                    "HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 2\r\nVia: 1.1 cdn, " VIA
                    "\r\nX-Sluice-Proxy-Latency: 0\r\nX-Sluice-Request-Id: rid\r\n\r\n");
    expect_response(RESP "\r\n", DP_HDR_LATENCY, 12, -1,
                    "HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 2\r\n"
                    "X-Sluice-Upstream-Latency: 12\r\n\r\n");
    expect_response(RESP "Via: 1.1 cdn\r\n\r\n", 0, 3, 4,
                    "HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 2\r\nVia: 1.1 cdn\r\n\r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_via_ours),
        cmocka_unit_test(test_via_extended_and_prefix),
        cmocka_unit_test(test_via_off_passes_theirs_on),
        cmocka_unit_test(test_via_off_and_absent),
        cmocka_unit_test(test_response_tails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
