/* Request parsing and the smuggling checks: every refused shape gets the right status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "data_plane/http/h1.h"

typedef struct {
    char body[256];
    size_t len;
} sink;

static void on_body(void *ud, const char *at, size_t len)
{
    sink *s = ud;
    if (s->len + len < sizeof(s->body)) {
        memcpy(s->body + s->len, at, len);
        s->len += len;
    }
}

/* Parses a whole request: returns 0 on success (message complete), else the error status. */
static int parse(const char *req, dp_h1 *h, sink *s)
{
    memset(s, 0, sizeof(*s));
    dp_h1_init(h, DP_H1_REQUEST, on_body, NULL, s);
    size_t len = strlen(req), off = 0, used;
    int rounds = 0;
    while (rounds++ < 10) {
        dp_h1_result r = dp_h1_execute(h, req + off, len - off, &used);
        off += used;
        if (r == DP_H1_ERROR)
            return h->error_status;
        if (h->msg_complete || r == DP_H1_UPGRADE)
            return 0;
    }
    return -1;
}

static void valid_get(void **st)
{
    dp_h1 h;
    sink s;
    assert_int_equal(
        parse("GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nX-A:  v  \r\n\r\n", &h, &s), 0);
    assert_true(dp_slice_ieq(h.head.method, "GET"));
    assert_true(dp_slice_ieq(h.head.path, "/a/b"));
    assert_true(dp_slice_ieq(h.head.query, "x=1"));
    assert_int_equal(h.head.nheaders, 2);
    assert_true(dp_slice_ieq(h.head.headers[1].value, "v"));
    assert_int_equal(h.head.host_index, 0);
    assert_true(h.head.keepalive);
}

static void chunked_body(void **st)
{
    dp_h1 h;
    sink s;
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
                           &h, &s),
                     0);
    assert_int_equal(s.len, 11);
    assert_memory_equal(s.body, "hello world", 11);
}

static void smuggling_refused(void **st)
{
    static const char *const bad[] = {
        /* CL + TE */
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: "
        "chunked\r\n\r\n0\r\n\r\n",
        /* differing CL */
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        /* duplicate CL, even equal */
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        /* malformed CL */
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello",
        /* TE other than chunked / chunked not last */
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
        "chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
        /* obs-fold */
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
        /* whitespace before the colon */
        "GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        /* bad chunk sizes */
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
        /* bare CR, NUL */
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rX-B: c\r\n\r\n",
        /* duplicate Host, missing Host */
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.1\r\nX-A: b\r\n\r\n",
        /* LF-only line endings */
        "GET / HTTP/1.1\nHost: a\n\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        dp_h1 h;
        sink s;
        int rc = parse(bad[i], &h, &s);
        if (rc != 400)
            fail_msg("case %zu accepted or wrong status (%d): %s", i, rc, bad[i]);
    }
    /* NUL inside a value (strlen-based helper can't carry it) */
    static const char nul[] = "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n";
    dp_h1 h;
    sink s;
    dp_h1_init(&h, DP_H1_REQUEST, on_body, NULL, &s);
    size_t used;
    assert_int_equal(dp_h1_execute(&h, nul, sizeof(nul) - 1, &used), DP_H1_ERROR);
    assert_int_equal(h.error_status, 400);
}

static void limits(void **st)
{
    static char req[80000];
    dp_h1 h;
    sink s;
    /* URI over 8 KB: 414 */
    strcpy(req, "GET /");
    memset(req + 5, 'a', 9000);
    strcpy(req + 9005, " HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(parse(req, &h, &s), 414);
    /* 101 headers: 431 */
    size_t n = (size_t)sprintf(req, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 100; i++)
        n += (size_t)sprintf(req + n, "X-%d: v\r\n", i);
    strcpy(req + n, "\r\n");
    assert_int_equal(parse(req, &h, &s), 431);
    /* a 40 KB header value: 431 */
    n = (size_t)sprintf(req, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(req + n, 'b', 40000);
    strcpy(req + n + 40000, "\r\n\r\n");
    assert_int_equal(parse(req, &h, &s), 431);
}

static void pipelined(void **st)
{
    const char *two = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
    dp_h1 h;
    sink s;
    dp_h1_init(&h, DP_H1_REQUEST, on_body, NULL, &s);
    size_t used, off = 0;
    dp_h1_execute(&h, two, strlen(two), &used);
    off += used;
    assert_true(h.head_complete);
    assert_true(dp_slice_ieq(h.head.path, "/1"));
    assert_true(h.msg_complete); /* a bodyless request completes with its head */
    dp_h1_next(&h);
    dp_h1_execute(&h, two + off, strlen(two) - off, &used);
    assert_true(h.head_complete);
    assert_true(dp_slice_ieq(h.head.path, "/2"));
}

static void upgrade(void **st)
{
    dp_h1 h;
    sink s;
    assert_int_equal(
        parse("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
              &h, &s),
        0);
    assert_true(h.head.upgrade);
}

/* Feeds msg in pieces of step bytes, the way reads deliver it, keeping the bytes contiguous
 * (as the proxy does until a head is handled). Returns 0 when the head and message complete,
 * else the error status. */
static int parse_in_pieces(const char *msg, dp_h1_type kind, size_t step, dp_h1 *h, sink *s)
{
    memset(s, 0, sizeof(*s));
    dp_h1_init(h, kind, on_body, NULL, s);
    size_t len = strlen(msg), off = 0, avail = 0;
    while (off < len) {
        avail = avail + step < len ? avail + step : len;
        size_t used;
        dp_h1_result r = dp_h1_execute(h, msg + off, avail - off, &used);
        off += used;
        if (r == DP_H1_ERROR)
            return h->error_status;
        if (h->msg_complete)
            return 0;
    }
    return -1;
}

static void heads_in_pieces(void **st)
{
    dp_h1 h;
    sink s;
    const char *req = "POST /p HTTP/1.1\r\nHost: a\r\nX-Long: 0123456789abcdef\r\n"
                      "Content-Length: 5\r\n\r\nhello";
    for (size_t step = 1; step < 12; step++) {
        assert_int_equal(parse_in_pieces(req, DP_H1_REQUEST, step, &h, &s), 0);
        assert_true(dp_slice_ieq(h.head.path, "/p"));
        assert_int_equal(h.head.nheaders, 3);
        assert_true(dp_slice_ieq(h.head.headers[1].value, "0123456789abcdef"));
        assert_int_equal(s.len, 5);
    }
    const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nok";
    for (size_t step = 1; step < 8; step++) {
        assert_int_equal(parse_in_pieces(resp, DP_H1_RESPONSE, step, &h, &s), 0);
        assert_int_equal(h.head.status, 200);
        assert_int_equal(h.head.nheaders, 2);
        assert_memory_equal(s.body, "ok", 2);
    }
}

static void field_edge_cases(void **st)
{
    dp_h1 h;
    sink s;
    /* an empty value is a value (RFC 9110), forwarded as such */
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n", &h, &s), 0);
    assert_int_equal(h.head.nheaders, 2);
    assert_int_equal(h.head.headers[1].value.len, 0);
    /* a space inside a field name */
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nX A: b\r\n\r\n", &h, &s), 400);
    /* versions this proxy does not speak */
    assert_int_equal(parse("GET / HTTP/0.9\r\nHost: a\r\n\r\n", &h, &s), 505);
    /* responses whose line endings llhttp alone would let through: a CR before another byte,
     * a bare LF; header fields could hide behind them */
    assert_int_equal(parse_in_pieces("HTTP/1.1 200 OK\rX-A: b\r\nContent-Length: 0\r\n\r\n",
                                     DP_H1_RESPONSE, 64, &h, &s),
                     502);
    assert_int_equal(
        parse_in_pieces("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", DP_H1_RESPONSE, 64, &h, &s),
        502);
}

static void has_token(void **st)
{
    assert_true(dp_h1_has_token(DP_SLICE_LIT("keep-alive, Upgrade"), "upgrade"));
    assert_false(dp_h1_has_token(DP_SLICE_LIT("keep-alive, Upgraded"), "upgrade"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_get),         cmocka_unit_test(chunked_body),
        cmocka_unit_test(smuggling_refused), cmocka_unit_test(limits),
        cmocka_unit_test(pipelined),         cmocka_unit_test(upgrade),
        cmocka_unit_test(has_token),         cmocka_unit_test(heads_in_pieces),
        cmocka_unit_test(field_edge_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
