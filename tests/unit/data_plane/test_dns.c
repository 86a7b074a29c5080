/* The per-worker resolver: address literals answer at once with the asked port (also after
 * other hosts and ports took their memo slots), names that are not literals go to the resolver
 * and are cached, and a host longer than a name can be is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include "data_plane/upstream/dns.h"

typedef struct {
    int calls, status;
    dp_dns_result res;
} answer;

static void on_answer(void *arg, int status, const dp_dns_result *res)
{
    answer *a = arg;
    a->calls++;
    a->status = status;
    memset(&a->res, 0, sizeof(a->res));
    if (res)
        a->res = *res;
}

/* "address:port" of the first answer, the way a user writes it. */
static const char *first(const answer *a, char *buf, size_t n)
{
    char ip[64] = "?";
    int port = 0;
    const struct sockaddr_storage *s = &a->res.addrs[0];
    if (s->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const void *)s;
        inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof(ip));
        port = ntohs(v4->sin_port);
    } else if (s->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const void *)s;
        inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof(ip));
        port = ntohs(v6->sin6_port);
    }
    snprintf(buf, n, "%s:%d", ip, port);
    return buf;
}

static void resolve_now(dp_dns *d, const char *host, int port, answer *a)
{
    dp_dns_query *q = NULL;
    memset(a, 0, sizeof(*a));
    assert_int_equal(dp_dns_resolve(d, host, port, on_answer, a, &q), 1);
    assert_int_equal(a->calls, 1);
    assert_int_equal(a->status, 0);
    assert_int_equal(a->res.naddrs, 1);
}

static void test_literals_answer_at_once_with_their_port(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    dp_dns *d = dp_dns_new(&loop);
    answer a;
    char b[96];
    resolve_now(d, "127.0.0.1", 8080, &a);
    assert_string_equal(first(&a, b, sizeof(b)), "127.0.0.1:8080");
    resolve_now(d, "127.0.0.1", 9090, &a); /* same host, another port */
    assert_string_equal(first(&a, b, sizeof(b)), "127.0.0.1:9090");
    resolve_now(d, "127.0.0.1", 8080, &a); /* asked again: still the first port */
    assert_string_equal(first(&a, b, sizeof(b)), "127.0.0.1:8080");
    resolve_now(d, "::1", 443, &a);
    assert_string_equal(first(&a, b, sizeof(b)), "::1:443");
    resolve_now(d, "2001:db8::7", 80, &a);
    assert_string_equal(first(&a, b, sizeof(b)), "2001:db8::7:80");
    dp_dns_free(d);
    uv_loop_close(&loop);
}

/* More host:port pairs than the memo has slots, asked twice in turn: every answer is the
 * address and port asked for, whichever slots were taken meanwhile. */
static void test_many_literals_never_answer_for_another(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    dp_dns *d = dp_dns_new(&loop);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 200; i++) {
            char host[32], want[64], got[96];
            snprintf(host, sizeof(host), "10.0.%d.%d", i / 50, i % 50);
            int port = 1000 + (i * 7) % 13;
            answer a;
            resolve_now(d, host, port, &a);
            snprintf(want, sizeof(want), "%s:%d", host, port);
            assert_string_equal(first(&a, got, sizeof(got)), want);
        }
    dp_dns_free(d);
    uv_loop_close(&loop);
}

/* Not a literal (a name, or an address with a typo): the resolver is asked, later. */
static void test_names_go_to_the_resolver_and_are_cached(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    dp_dns *d = dp_dns_new(&loop);
    answer a = {0};
    dp_dns_query *q = NULL;
    assert_int_equal(dp_dns_resolve(d, "localhost", 8000, on_answer, &a, &q), 0);
    assert_non_null(q);
    assert_int_equal(a.calls, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, 0);
    assert_true(a.res.naddrs >= 1);
    char b[96];
    const char *s = first(&a, b, sizeof(b));
    assert_true(strcmp(s, "127.0.0.1:8000") == 0 || strcmp(s, "::1:8000") == 0);
    /* cached now: answered at once, with the new port */
    answer c = {0};
    assert_int_equal(dp_dns_resolve(d, "localhost", 8001, on_answer, &c, &q), 1);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.res.naddrs, a.res.naddrs);
    s = first(&c, b, sizeof(b));
    assert_true(strcmp(s, "127.0.0.1:8001") == 0 || strcmp(s, "::1:8001") == 0);
    /* "127.0.0.1.5" is no address: it is looked up as a name (and fails) */
    answer e = {0};
    q = NULL;
    int rc = dp_dns_resolve(d, "127.0.0.1.5.invalid", 80, on_answer, &e, &q);
    assert_int_equal(rc, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(e.calls, 1);
    assert_true(e.status < 0);
    dp_dns_free(d);
    uv_loop_close(&loop);
}

static void test_overlong_host_is_refused(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    dp_dns *d = dp_dns_new(&loop);
    char host[300];
    memset(host, 'a', sizeof(host) - 1);
    host[sizeof(host) - 1] = 0;
    answer a = {0};
    dp_dns_query *q = NULL;
    assert_true(dp_dns_resolve(d, host, 80, on_answer, &a, &q) < 0);
    assert_int_equal(a.calls, 0);
    dp_dns_free(d);
    uv_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals_answer_at_once_with_their_port),
        cmocka_unit_test(test_many_literals_never_answer_for_another),
        cmocka_unit_test(test_names_go_to_the_resolver_and_are_cached),
        cmocka_unit_test(test_overlong_host_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
