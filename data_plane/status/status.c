#include "data_plane/status/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_plane/cluster/client.h"
#include "data_plane/config/apply.h"
#include "data_plane/plugins/metrics.h"
#include "data_plane/upstream/health.h"
#include "proto/version.h"

#define MAX_STATUS_LISTENERS 4
#define REQ_MAX 4096

typedef struct {
    uv_tcp_t tcp;
    uv_write_t wr;
    char in[REQ_MAX];
    size_t len;
    char out[1024];
    char *body; /* the response body (heap: the upstream health list can be long) */
    int closing;
} status_conn;

static uv_tcp_t listeners[MAX_STATUS_LISTENERS];
static int nlisteners;
static dp_worker *workers;
static int nworkers;
static int draining;
static const dp_cluster_client *cluster_client;

void dp_status_set_cluster(const struct dp_cluster_client *c)
{
    cluster_client = c;
}

void dp_status_set_draining(void)
{
    draining = 1;
}

static void conn_closed(uv_handle_t *h)
{
    status_conn *c = h->data;
    free(c->body);
    free(c);
}

static void conn_close(status_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void written(uv_write_t *w, int status)
{
    conn_close(w->data);
}

static int body_for(const char *method, const char *path, char *body, size_t cap)
{
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        snprintf(body, cap, "{\"message\":\"Method not allowed\"}");
        return 405;
    }
    dp_generation *g = dp_config_current();
    int status;
    if (strcmp(path, "/status/ready") == 0) {
        if (draining) {
            snprintf(body, cap, "{\"message\":\"draining\"}");
            status = 503;
        } else if (!g) {
            snprintf(body, cap, "{\"message\":\"no configuration available\"}");
            status = 503;
        } else {
            snprintf(body, cap, "{\"message\":\"ready\"}");
            status = 200;
        }
    } else if (strcmp(path, "/status") == 0) {
        long long accepted = 0, active = 0, requests = 0, handled = 0;
        for (int i = 0; i < nworkers; i++) {
            accepted += atomic_load_explicit(&workers[i].stats.accepted, memory_order_relaxed);
            active += atomic_load_explicit(&workers[i].stats.active, memory_order_relaxed);
            requests += atomic_load_explicit(&workers[i].stats.requests, memory_order_relaxed);
            handled += atomic_load_explicit(&workers[i].stats.handled, memory_order_relaxed);
        }
        char version[32] = "null", applying[32] = "null"; /* no config yet; none coming */
        if (g)
            snprintf(version, sizeof(version), "%lld", (long long)g->version);
        int64_t next = dp_cluster_client_applying(cluster_client);
        if (next >= 0) /* being decoded and built off this loop */
            snprintf(applying, sizeof(applying), "%lld", (long long)next);
        snprintf(body, cap,
                 "{\"server\":{\"connections_accepted\":%lld,\"connections_active\":%lld,"
                 "\"connections_handled\":%lld,\"total_requests\":%lld},"
                 "\"configuration_hash\":\"%s\",\"configuration_version\":%s,"
                 "\"control_plane\":{\"configured\":%s,\"connected\":%s,"
                 "\"applying_version\":%s},"
                 "\"workers\":%d,\"version\":\"" SL_VERSION "\"}",
                 accepted, active, handled, requests, g ? g->hash : "", version,
                 cluster_client ? "true" : "false",
                 cluster_client && dp_cluster_client_connected(cluster_client) ? "true" : "false",
                 applying, nworkers);
        status = 200;
    } else {
        snprintf(body, cap, "{\"message\":\"Not found\"}");
        status = 404;
    }
    dp_generation_unref(g);
    return status;
}

/* GET /metrics: the workers' connection counters plus what prometheus.c renders. */
static char *metrics_body(void)
{
    dp_metrics_conns m = {0};
    for (int i = 0; i < nworkers; i++) {
        m.accepted += atomic_load_explicit(&workers[i].stats.accepted, memory_order_relaxed);
        m.active += atomic_load_explicit(&workers[i].stats.active, memory_order_relaxed);
        m.requests += atomic_load_explicit(&workers[i].stats.requests, memory_order_relaxed);
        m.handled += atomic_load_explicit(&workers[i].stats.handled, memory_order_relaxed);
    }
    size_t len;
    return dp_prometheus_scrape(&m, &len);
}

static void respond(status_conn *c)
{
    char method[8] = "", path[256] = "";
    if (sscanf(c->in, "%7s %255s", method, path) != 2) {
        conn_close(c);
        return;
    }
    char *q = strchr(path, '?');
    if (q)
        *q = 0;
    char body[768];
    int status;
    const char *ctype = "application/json; charset=utf-8";
    if (strcmp(path, "/metrics") == 0 && (!strcmp(method, "GET") || !strcmp(method, "HEAD"))) {
        status = 200; /* Prometheus text (data_plane/plugins/prometheus.c) */
        ctype = "text/plain; version=0.0.4; charset=utf-8";
        c->body = metrics_body();
    } else if (!dp_health_status_route(method, path, &status, &c->body)) {
        /* /upstreams/{u}/health above; the rest here */
        status = body_for(method, path, body, sizeof(body));
        c->body = strdup(body);
    }
    if (!c->body) {
        conn_close(c);
        return;
    }
    size_t blen = strlen(c->body);
    int n = snprintf(c->out, sizeof(c->out),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\nServer: sluice/" SL_VERSION
                     "\r\n\r\n",
                     status,
                     status == 200   ? "OK"
                     : status == 404 ? "Not Found"
                     : status == 405 ? "Method Not Allowed"
                                     : "Service Unavailable",
                     ctype, blen);
    uv_buf_t b[2] = {uv_buf_init(c->out, (unsigned)n),
                     uv_buf_init(c->body, strcmp(method, "HEAD") == 0 ? 0 : (unsigned)blen)};
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, b, 2, written) != 0)
        conn_close(c);
}

static void alloc_cb(uv_handle_t *h, size_t s, uv_buf_t *buf)
{
    status_conn *c = h->data;
    *buf = uv_buf_init(c->in + c->len, (unsigned)(REQ_MAX - 1 - c->len));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    status_conn *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    c->in[c->len] = 0;
    if (strstr(c->in, "\r\n\r\n") || strstr(c->in, "\n\n")) {
        uv_read_stop(s);
        respond(c);
    } else if (c->len >= REQ_MAX - 1) {
        conn_close(c);
    }
}

static void on_conn(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    status_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

int dp_status_start(uv_loop_t *loop, const sl_listen_addr *addrs, int n, dp_worker *w, int nw,
                    char *err, size_t errlen)
{
    workers = w;
    nworkers = nw;
    for (int i = 0; i < n && i < MAX_STATUS_LISTENERS; i++) {
        struct sockaddr_storage ss;
        if (uv_ip4_addr(addrs[i].host, addrs[i].port, (struct sockaddr_in *)&ss) != 0 &&
            uv_ip6_addr(addrs[i].host, addrs[i].port, (struct sockaddr_in6 *)&ss) != 0) {
            snprintf(err, errlen, "status_listen: bad address '%s'", addrs[i].host);
            return -1;
        }
        uv_tcp_init(loop, &listeners[i]);
        nlisteners++;
        int rc = uv_tcp_bind(&listeners[i], (struct sockaddr *)&ss, 0);
        if (!rc)
            rc = uv_listen((uv_stream_t *)&listeners[i], 128, on_conn);
        if (rc) {
            snprintf(err, errlen, "status_listen %s:%d: %s", addrs[i].host, addrs[i].port,
                     uv_strerror(rc));
            return -1;
        }
    }
    return 0;
}

void dp_status_stop(void)
{
    for (int i = 0; i < nlisteners; i++)
        uv_close((uv_handle_t *)&listeners[i], NULL);
    nlisteners = 0;
}
