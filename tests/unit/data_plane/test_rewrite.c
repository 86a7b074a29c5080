/* What the upstream and the client receive: hop-by-hop headers gone, forwarding headers set,
 * framing ours. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "data_plane/http/rewrite.h"

static dp_h1 h;

static const dp_h1_head *head_of(const char *raw, dp_h1_type type)
{
    dp_h1_init(&h, type, NULL, NULL, NULL);
    size_t used;
    dp_h1_execute(&h, raw, strlen(raw), &used);
    assert_true(h.head_complete);
    return &h.head;
}

static void request_headers(void **st)
{
    const dp_h1_head *q =
        head_of("POST /api/x?y=1 HTTP/1.1\r\nHost: client.example:8000\r\n"
                "Connection: keep-alive, X-Secret\r\nX-Secret: s\r\nKeep-Alive: 5\r\n"
                "TE: trailers\r\nProxy-Connection: x\r\nX-Forwarded-For: 1.2.3.4\r\n"
                "X-Forwarded-Proto: evil\r\nX-Real-IP: 6.6.6.6\r\nVia: 1.0 other\r\n"
                "Expect: 100-continue\r\nTransfer-Encoding: chunked\r\nX-Keep: yes\r\n\r\n",
                DP_H1_REQUEST);
    dp_upstream_req_info info = {
        .upstream_uri = DP_SLICE_LIT("/x?y=1"),
        .host = DP_SLICE_LIT("backend:8080"),
        .client_ip = DP_SLICE_LIT("10.0.0.1"),
        .scheme = "https",
        .fwd_host = DP_SLICE_LIT("client.example"),
        .fwd_port = 8443,
        .fwd_path = DP_SLICE_LIT("/api/x"),
        .fwd_prefix = DP_SLICE_LIT("/api"),
        .request_id = DP_SLICE_LIT("abc"),
        .headers = DP_HDR_ALL,
    };
    char out[4096];
    long n = dp_rewrite_request(q, &info, out, dp_rewrite_request_size(q, &info));
    assert_true(n > 0);
    out[n] = 0;
    assert_true(strncmp(out, "POST /x?y=1 HTTP/1.1\r\nHost: backend:8080\r\n", 42) == 0);
    assert_null(strstr(out, "X-Secret"));
    assert_null(strstr(out, "Keep-Alive"));
    assert_null(strstr(out, "TE:"));
    assert_null(strstr(out, "Proxy-Connection"));
    assert_null(strstr(out, "Expect"));
    assert_null(strstr(out, "evil"));
    assert_null(strstr(out, "6.6.6.6"));
    assert_null(strstr(out, "client.example:8000"));
    assert_non_null(strstr(out, "\r\nX-Keep: yes\r\n"));
    assert_non_null(strstr(out, "\r\nTransfer-Encoding: chunked\r\n"));
    assert_non_null(strstr(out, "\r\nX-Forwarded-For: 1.2.3.4, 10.0.0.1\r\n"));
    assert_non_null(strstr(out, "\r\nX-Forwarded-Proto: https\r\n"));
    assert_non_null(strstr(out, "\r\nX-Forwarded-Host: client.example\r\n"));
    assert_non_null(strstr(out, "\r\nX-Forwarded-Port: 8443\r\n"));
    assert_non_null(strstr(out, "\r\nX-Forwarded-Prefix: /api\r\n"));
    assert_non_null(strstr(out, "\r\nX-Real-IP: 10.0.0.1\r\n"));
    assert_non_null(strstr(out, "\r\nVia: 1.0 other, 1.1 sluice/"));
    assert_non_null(strstr(out, "\r\nX-Sluice-Request-Id: abc\r\n"));
    assert_string_equal(out + n - 4, "\r\n\r\n");
    /* too small a buffer is refused, not overrun */
    assert_int_equal(dp_rewrite_request(q, &info, out, 50), -1);
}

static void upgrade_kept(void **st)
{
    const dp_h1_head *q = head_of("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                                  "Upgrade: websocket\r\n\r\n",
                                  DP_H1_REQUEST);
    dp_upstream_req_info info = {.upstream_uri = DP_SLICE_LIT("/ws"),
                                 .host = DP_SLICE_LIT("b"),
                                 .client_ip = DP_SLICE_LIT("1.1.1.1"),
                                 .scheme = "http",
                                 .fwd_host = DP_SLICE_LIT("a"),
                                 .fwd_port = 80,
                                 .fwd_path = DP_SLICE_LIT("/ws")};
    char out[2048];
    long n = dp_rewrite_request(q, &info, out, sizeof(out) - 1);
    out[n] = 0;
    assert_non_null(strstr(out, "\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"));
    assert_null(strstr(out, "Via:")); /* switched off */
}

static void response_headers(void **st)
{
    const dp_h1_head *r = head_of("HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\n"
                                  "Transfer-Encoding: chunked\r\nX-App: 2\r\n\r\n",
                                  DP_H1_RESPONSE);
    dp_client_resp_info info = {.client_minor = 1,
                                .chunked = 1,
                                .upstream_ms = 7,
                                .proxy_ms = 1,
                                .request_id = DP_SLICE_LIT("rid"),
                                .headers = DP_HDR_ALL};
    char out[2048];
    long n = dp_rewrite_response(r, &info, out, sizeof(out) - 1);
    out[n] = 0;
    assert_true(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_null(strstr(out, "X-Hop"));
    assert_null(strstr(out, "close"));
    assert_non_null(strstr(out, "\r\nX-App: 2\r\n"));
    assert_non_null(strstr(out, "\r\nTransfer-Encoding: chunked\r\n"));
    assert_non_null(strstr(out, "\r\nX-Sluice-Upstream-Latency: 7\r\n"));
    assert_non_null(strstr(out, "\r\nX-Sluice-Proxy-Latency: 1\r\n"));
    assert_non_null(strstr(out, "\r\nX-Sluice-Request-Id: rid\r\n"));
    info.headers = 0;
    n = dp_rewrite_response(r, &info, out, sizeof(out) - 1);
    out[n] = 0;
    assert_null(strstr(out, "Latency"));
    assert_null(strstr(out, "Via"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_headers),
        cmocka_unit_test(upgrade_kept),
        cmocka_unit_test(response_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
