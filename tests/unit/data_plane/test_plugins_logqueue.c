/* The off-loop log writer: lines from many threads all reach the file, reopen follows a
 * rename, a full sink drops (and counts) without blocking, a released sink is destroyed only
 * after its entries are done, the serializer's shape and redaction, and http-log batches,
 * retries and gives up against a small collector running in this process. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "data_plane/plugins/log_queue.h"
#include "data_plane/plugins/metrics.h"
#include "data_plane/plugins/plugin.h"
#include "proto/schema.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static char *line_of(int writer, int i)
{
    char *s = malloc(64);
    snprintf(s, 64, "{\"writer\":%d,\"i\":%d}", writer, i);
    return s;
}

/* --- files --- */

#define WRITERS 4
#define LINES 2000

typedef struct {
    dp_log_sink *s;
    int id;
} writer_arg;

static void *writer(void *p)
{
    writer_arg *a = p;
    for (int i = 0; i < LINES; i++) {
        char *l = line_of(a->id, i);
        while (dp_log_push(a->s, l, strlen(l)) != 0) /* the bound: wait for the writer */
            l = line_of(a->id, i), usleep(1000);
    }
    return NULL;
}

static void test_file_lines_from_threads(void **state)
{
    char path[] = "/tmp/sluice-logq-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    dp_log_sink *s = dp_log_sink_file(path, 0);
    assert_non_null(s);
    assert_ptr_equal(dp_log_sink_file(path, 0), s); /* shared by key */
    dp_log_sink_release(s);
    pthread_t t[WRITERS];
    writer_arg args[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        args[i] = (writer_arg){s, i};
        pthread_create(&t[i], NULL, writer, &args[i]);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(dp_log_flush(5000), 0);
    FILE *f = fopen(path, "r");
    static char seen[WRITERS][LINES];
    memset(seen, 0, sizeof(seen));
    char buf[128];
    int n = 0, last[WRITERS] = {-1, -1, -1, -1};
    while (fgets(buf, sizeof(buf), f)) {
        json_t *j = json_loads(buf, 0, NULL);
        assert_non_null(j); /* every line whole and parseable */
        int w = (int)json_integer_value(json_object_get(j, "writer"));
        int i = (int)json_integer_value(json_object_get(j, "i"));
        assert_true(i > last[w]); /* one writer's lines stay in order */
        last[w] = i;
        seen[w][i] = 1;
        json_decref(j);
        n++;
    }
    fclose(f);
    assert_int_equal(n, WRITERS * LINES);
    dp_log_sink_release(s);
    unlink(path);
}

static void test_file_reopen_follows_rename(void **state)
{
    char path[] = "/tmp/sluice-logq-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    char moved[64];
    snprintf(moved, sizeof(moved), "%s.1", path);
    dp_log_sink *s = dp_log_sink_file(path, 1);
    char *l = strdup("{\"n\":1}");
    assert_int_equal(dp_log_push(s, l, strlen(l)), 0);
    assert_int_equal(dp_log_flush(5000), 0);
    assert_int_equal(rename(path, moved), 0); /* rotation */
    l = strdup("{\"n\":2}");
    assert_int_equal(dp_log_push(s, l, strlen(l)), 0);
    assert_int_equal(dp_log_flush(5000), 0);
    char buf[64] = "";
    FILE *f = fopen(path, "r");
    assert_non_null(f); /* re-created */
    assert_non_null(fgets(buf, sizeof(buf), f));
    assert_string_equal(buf, "{\"n\":2}\n");
    fclose(f);
    dp_log_sink_release(s);
    unlink(path);
    unlink(moved);
}

static void test_unwritable_file_counts_failures(void **state)
{
    dp_log_sink *s = dp_log_sink_file("/nonexistent-dir/x/access.log", 0);
    for (int i = 0; i < 3; i++) {
        char *l = strdup("{}");
        assert_int_equal(dp_log_push(s, l, 2), 0);
    }
    assert_int_equal(dp_log_flush(5000), 0);
    assert_int_equal(dp_log_sink_failed(s), 3);
    dp_log_sink_release(s);
}

/* --- a custom sink that holds its entries until told --- */

typedef struct {
    pthread_mutex_t mu;
    size_t held, bytes;
    dp_log_sink *sink;
    _Atomic int destroyed;
} holder;

static void hold_deliver(void *ud, char *line, size_t len)
{
    holder *h = ud;
    free(line);
    pthread_mutex_lock(&h->mu);
    h->held++;
    h->bytes += len;
    pthread_mutex_unlock(&h->mu);
}

static void hold_destroy(void *ud)
{
    holder *h = ud;
    atomic_store(&h->destroyed, 1);
}

static const dp_log_sink_ops hold_ops = {hold_deliver, hold_destroy};

static void *hold_make(void *arg, dp_log_sink *s)
{
    holder *h = arg;
    h->sink = s;
    return h;
}

static void test_full_sink_drops_without_blocking(void **state)
{
    static holder h = {.mu = PTHREAD_MUTEX_INITIALIZER};
    dp_log_sink *s = dp_log_sink_custom("hold-1", &hold_ops, 100, 0, "test", hold_make, &h);
    assert_non_null(s);
    double t0 = now_ms();
    int queued = 0, dropped = 0;
    for (int i = 0; i < 5000; i++) {
        char *l = line_of(0, i);
        if (dp_log_push(s, l, strlen(l)) == 0)
            queued++;
        else
            dropped++;
    }
    double took = now_ms() - t0;
    assert_int_equal(queued, 100); /* the sink's bound */
    assert_int_equal(dropped, 4900);
    assert_int_equal(dp_log_sink_dropped(s), 4900);
    assert_true(took < 500); /* nothing waited */
    /* released while entries are still undelivered: the sink stays until they are done */
    dp_log_sink_release(s);
    for (int i = 0; i < 100 && h.held < 100; i++)
        usleep(10000);
    usleep(50000);
    assert_int_equal(atomic_load(&h.destroyed), 0);
    dp_log_done(s, 100, h.bytes, 0);
    for (int i = 0; i < 200 && !atomic_load(&h.destroyed); i++)
        usleep(10000);
    assert_int_equal(atomic_load(&h.destroyed), 1);
}

static void test_byte_bound(void **state)
{
    static holder h = {.mu = PTHREAD_MUTEX_INITIALIZER};
    dp_log_sink *s = dp_log_sink_custom("hold-2", &hold_ops, 1000, 100, "test", hold_make, &h);
    int queued = 0;
    for (int i = 0; i < 50; i++) {
        char *l = malloc(20);
        memset(l, 'x', 20);
        queued += dp_log_push(s, l, 20) == 0;
    }
    assert_int_equal(queued, 5); /* 100 bytes of 20-byte entries */
    for (int i = 0; i < 100 && h.held < 5; i++)
        usleep(10000);
    dp_log_done(s, 5, h.bytes, 0); /* delivered: room again */
    char *l = malloc(20);
    memset(l, 'y', 20);
    assert_int_equal(dp_log_push(s, l, 20), 0);
    for (int i = 0; i < 100 && h.held < 6; i++)
        usleep(10000);
    dp_log_done(s, 1, 20, 0);
    dp_log_sink_release(s);
}

/* --- the serializer --- */

static void test_serializer_shape(void **state)
{
    char mem[16384];
    dp_arena a;
    dp_arena_init(&a, mem, sizeof(mem));
    dp_header reqh[] = {
        {DP_SLICE_LIT("Host"), DP_SLICE_LIT("api.test")},
        {DP_SLICE_LIT("Authorization"), DP_SLICE_LIT("Bearer secret-token")},
        {DP_SLICE_LIT("Cookie"), DP_SLICE_LIT("sid=123")},
        {DP_SLICE_LIT("X-Multi"), DP_SLICE_LIT("a")},
        {DP_SLICE_LIT("x-multi"), DP_SLICE_LIT("b")},
    };
    dp_header resph[] = {{DP_SLICE_LIT("Content-Type"), DP_SLICE_LIT("application/json")}};
    dp_consumer alice = {.id = "c-1", .username = "alice"};
    dp_plugin_req r = {
        .arena = &a,
        .method = DP_SLICE_LIT("POST"),
        .path = DP_SLICE_LIT("/orders"),
        .query = DP_SLICE_LIT("a=1&b=x%20y&flag&a=2"),
        .client_ip = DP_SLICE_LIT("10.0.0.7"),
        .headers = reqh,
        .nheaders = 5,
        .route_id = "r-1",
        .route_name = "orders-route",
        .service_id = "s-1",
        .service_name = "orders",
        .consumer = &alice,
        .started_at_ms = 1700000000123,
        .resp_headers = {resph, 1, 1},
        .status = 201,
        .bytes_in = 12,
        .bytes_out = 34,
        .latency_ms = 50,
        .upstream_latency_ms = 30,
    };
    size_t len;
    char *line = dp_log_serialize(&r, &len);
    assert_non_null(line);
    assert_int_equal(strlen(line), len);
    assert_null(strchr(line, '\n'));
    json_t *e = json_loads(line, 0, NULL);
    assert_non_null(e);
    json_t *want = json_loads(
        "{\"request\":{\"method\":\"POST\",\"uri\":\"/orders?a=1&b=x%20y&flag&a=2\","
        "\"url\":\"http://api.test/orders?a=1&b=x%20y&flag&a=2\",\"size\":12,"
        "\"querystring\":{\"a\":[\"1\",\"2\"],\"b\":\"x y\",\"flag\":true},"
        "\"headers\":{\"host\":\"api.test\",\"authorization\":\"REDACTED\","
        "\"cookie\":\"REDACTED\",\"x-multi\":[\"a\",\"b\"]}},"
        "\"response\":{\"status\":201,\"size\":34,"
        "\"headers\":{\"content-type\":\"application/json\"}},"
        "\"route\":{\"id\":\"r-1\",\"name\":\"orders-route\"},"
        "\"service\":{\"id\":\"s-1\",\"name\":\"orders\"},"
        "\"consumer\":{\"id\":\"c-1\",\"username\":\"alice\"},"
        "\"latencies\":{\"request\":50,\"proxy\":30,\"gateway\":20,\"kong\":20},"
        "\"client_ip\":\"10.0.0.7\",\"started_at\":1700000000123,\"upstream_status\":201,"
        "\"source\":\"service\"}",
        0, NULL);
    if (!json_equal(e, want))
        fail_msg("got %s", line);
    assert_null(strstr(line, "secret-token"));
    json_decref(e);
    json_decref(want);
    free(line);
}

/* --- http-log against a collector in this process --- */

typedef struct {
    int lfd, port;
    pthread_t t;
    pthread_mutex_t mu;
    int fail_first; /* answer 500 to this many requests first */
    int requests;
    json_t *bodies; /* array of parsed bodies */
    char path[128], ctype[128], custom[128];
} collector;

static void *collect(void *p)
{
    collector *c = p;
    for (;;) {
        int fd = accept(c->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        static char buf[1 << 20];
        for (;;) { /* keepalive: several requests per connection */
            size_t n = 0;
            char *end = NULL;
            while (!end) {
                ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
                if (r <= 0)
                    goto next;
                n += (size_t)r;
                buf[n] = 0;
                end = strstr(buf, "\r\n\r\n");
            }
            char *cl = strcasestr(buf, "Content-Length: ");
            size_t blen = cl ? strtoul(cl + 16, NULL, 10) : 0;
            size_t hl = (size_t)(end + 4 - buf);
            while (n < hl + blen) {
                ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
                if (r <= 0)
                    goto next;
                n += (size_t)r;
            }
            pthread_mutex_lock(&c->mu);
            sscanf(buf, "%*s %127s", c->path);
            char *ct = strcasestr(buf, "Content-Type: ");
            if (ct)
                sscanf(ct + 14, "%127[^\r]", c->ctype);
            char *x = strcasestr(buf, "X-Token: ");
            if (x)
                sscanf(x + 9, "%127[^\r]", c->custom);
            int fail = c->fail_first > 0;
            if (fail)
                c->fail_first--;
            c->requests++;
            if (!fail)
                json_array_append_new(c->bodies, json_loadb(buf + hl, blen, 0, NULL));
            pthread_mutex_unlock(&c->mu);
            const char *resp = fail ? "HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\noops"
                                    : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            if (write(fd, resp, strlen(resp)) < 0)
                break;
            memmove(buf, buf + hl + blen, n - hl - blen);
        }
    next:
        close(fd);
    }
}

static collector *collector_start(int fail_first)
{
    collector *c = calloc(1, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    c->fail_first = fail_first;
    c->bodies = json_array();
    c->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    getsockname(c->lfd, (struct sockaddr *)&sa, &sl);
    c->port = ntohs(sa.sin_port);
    listen(c->lfd, 16);
    pthread_create(&c->t, NULL, collect, c);
    return c;
}

static void collector_stop(collector *c)
{
    shutdown(c->lfd, SHUT_RDWR);
    close(c->lfd);
    pthread_join(c->t, NULL);
    json_decref(c->bodies);
    free(c);
}

/* Builds the http-log chain for a validated config. */
static void http_log_chain(dp_plugin_chain *chain, const char *config_text)
{
    json_t *p = json_loads(config_text, 0, NULL);
    assert_non_null(p);
    json_t *errors = NULL;
    if (sl_schema_validate(sl_entity_by_name("plugins"), p, SL_VALIDATE_JSON, &errors) != 0)
        fail_msg("refused: %s", json_dumps(errors, 0));
    json_decref(errors);
    json_object_set_new(p, "id", json_string("5a1b0000-0000-4000-8000-000000000003"));
    json_t *config = json_pack("{s:[o],s:[]}", "plugins", p, "routes");
    char err[256] = "";
    if (dp_plugin_chain_build(chain, config, err, sizeof(err)) != 0)
        fail_msg("chain: %s", err);
    json_decref(config);
}

static void log_one(dp_plugin_chain *chain, int i)
{
    char mem[8192], path[32];
    dp_arena a;
    dp_arena_init(&a, mem, sizeof(mem));
    snprintf(path, sizeof(path), "/n/%d", i);
    dp_plugin_req r = {.arena = &a,
                       .method = DP_SLICE_LIT("GET"),
                       .path = dp_slice_cstr(path),
                       .status = 200,
                       .upstream_latency_ms = 1};
    assert_int_equal(dp_plugin_req_begin(&r, chain, 0), 0);
    dp_plugin_run_log(chain, &r);
    dp_arena_reset(&a);
}

static void test_http_log_batches(void **state)
{
    collector *c = collector_start(1); /* the first POST fails: retried */
    char conf[512];
    snprintf(conf, sizeof(conf),
             "{\"name\":\"http-log\",\"config\":{\"http_endpoint\":\"http://127.0.0.1:%d/logs\","
             "\"headers\":{\"X-Token\":\"t0k\"},\"queue\":{\"max_batch_size\":3,"
             "\"max_coalescing_delay\":0.2,\"initial_retry_delay\":0.01}}}",
             c->port);
    dp_plugin_chain chain;
    http_log_chain(&chain, conf);
    for (int i = 0; i < 7; i++)
        log_one(&chain, i);
    assert_int_equal(dp_log_flush(10000), 0);
    pthread_mutex_lock(&c->mu);
    /* 7 entries: batches of 3, 3 and 1 (after the coalescing delay), plus one retried POST */
    assert_int_equal(json_array_size(c->bodies), 3);
    assert_int_equal(c->requests, 4);
    int seen = 0;
    size_t i;
    json_t *b;
    json_array_foreach(c->bodies, i, b)
    {
        assert_true(json_is_array(b)); /* max_batch_size > 1: always an array */
        size_t k;
        json_t *e;
        json_array_foreach(b, k, e)
        {
            const char *uri =
                json_string_value(json_object_get(json_object_get(e, "request"), "uri"));
            assert_non_null(uri);
            seen |= 1 << atoi(uri + 3);
        }
    }
    assert_int_equal(seen, 0x7f);
    assert_string_equal(c->path, "/logs");
    assert_string_equal(c->ctype, "application/json");
    assert_string_equal(c->custom, "t0k");
    pthread_mutex_unlock(&c->mu);
    dp_plugin_chain_free(&chain);
    collector_stop(c);
}

static void test_http_log_single_entries(void **state)
{
    collector *c = collector_start(0);
    char conf[256];
    snprintf(conf, sizeof(conf),
             "{\"name\":\"http-log\",\"config\":{\"http_endpoint\":\"http://127.0.0.1:%d/\"}}",
             c->port);
    dp_plugin_chain chain;
    http_log_chain(&chain, conf);
    log_one(&chain, 1);
    log_one(&chain, 2);
    assert_int_equal(dp_log_flush(10000), 0);
    pthread_mutex_lock(&c->mu);
    assert_int_equal(json_array_size(c->bodies), 2);
    assert_true(json_is_object(json_array_get(c->bodies, 0))); /* Kong: batch of 1, no array */
    pthread_mutex_unlock(&c->mu);
    dp_plugin_chain_free(&chain);
    collector_stop(c);
}

static void test_http_log_collector_down(void **state)
{
    /* a port nobody listens on */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    char conf[512];
    snprintf(conf, sizeof(conf),
             "{\"name\":\"http-log\",\"config\":{\"http_endpoint\":\"http://127.0.0.1:%d/\","
             "\"queue\":{\"max_entries\":50,\"max_retry_time\":0.3,\"initial_retry_delay\":0.05,"
             "\"max_batch_size\":10,\"max_coalescing_delay\":0.05}}}",
             ntohs(sa.sin_port));
    dp_plugin_chain chain;
    http_log_chain(&chain, conf);
    double t0 = now_ms();
    for (int i = 0; i < 2000; i++)
        log_one(&chain, i);
    assert_true(now_ms() - t0 < 1000);        /* the log phase never waits for the collector */
    assert_int_equal(dp_log_flush(10000), 0); /* given up after max_retry_time */
    dp_metrics_buf b = {0};
    dp_metrics_render(&b);
    dp_metrics_printf(&b, "%s", "");
    const char *d = strstr(b.p, "sluice_log_entries_dropped_total{plugin=\"http-log\"} ");
    const char *f = strstr(b.p, "sluice_log_entries_failed_total{plugin=\"http-log\"} ");
    assert_non_null(d);
    assert_non_null(f);
    assert_true(atoi(strchr(d, ' ') + 1) >= 1900); /* past max_entries */
    assert_true(atoi(strchr(f, ' ') + 1) >= 50);   /* what was queued, given up */
    free(b.p);
    dp_plugin_chain_free(&chain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_lines_from_threads),
        cmocka_unit_test(test_file_reopen_follows_rename),
        cmocka_unit_test(test_unwritable_file_counts_failures),
        cmocka_unit_test(test_full_sink_drops_without_blocking),
        cmocka_unit_test(test_byte_bound),
        cmocka_unit_test(test_serializer_shape),
        cmocka_unit_test(test_http_log_batches),
        cmocka_unit_test(test_http_log_single_entries),
        cmocka_unit_test(test_http_log_collector_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
