#include "data_plane/worker/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "data_plane/net/stream.h"
#include "data_plane/proxy/proxy.h"
#include "data_plane/upstream/dns.h"
#include "proto/log.h"

/* Read buffers in use peak at two per request in flight (client and upstream side), and both
 * go back after every request: a fixed free list of 64 sent a quarter of the requests of a
 * 50-connection load through malloc and free of 64 KiB. A returned buffer is kept while the
 * buffers held (in use and free) are no more than the most ever in use at once, like nginx's
 * and HAProxy's pools that keep what the peak needed; at least MIN_FREE_BUFS, at most
 * MAX_FREE_BUFS free. */
#define MIN_FREE_BUFS 64
#define MAX_FREE_BUFS 1024

char *dp_worker_get_buf(dp_worker *w)
{
    char *b = w->nfree_bufs ? w->free_bufs[--w->nfree_bufs] : malloc(DP_RBUF_SIZE);
    if (b && ++w->nbufs_out > w->nbufs_peak)
        w->nbufs_peak = w->nbufs_out;
    return b;
}

void dp_worker_put_buf(dp_worker *w, char *buf)
{
    if (!buf)
        return;
    w->nbufs_out--;
    if (w->free_bufs && w->nfree_bufs < MAX_FREE_BUFS &&
        (w->nfree_bufs < MIN_FREE_BUFS || w->nfree_bufs + w->nbufs_out < w->nbufs_peak)) {
        w->free_bufs[w->nfree_bufs++] = buf;
        return;
    }
    free(buf);
}

static void on_connection(uv_stream_t *server, int status)
{
    dp_listener *l = server->data;
    if (status < 0 || l->w->draining)
        return;
    dp_conn_accept(l);
}

/* libuv 1.44 has no SO_REUSEPORT flag on Linux: make the socket ourselves, then hand it over. */
static int open_listener(dp_worker *w, dp_listener *l, const sl_listen_addr *a, char *err,
                         size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%d", a->port);
    const char *host = strcmp(a->host, "*") == 0 ? NULL : a->host;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc || !res) {
        snprintf(err, errlen, "proxy_listen %s:%d: %s", a->host, a->port, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
        bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 511)) {
        snprintf(err, errlen, "proxy_listen %s:%d: %s", a->host, a->port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    uv_tcp_init(&w->loop, &l->tcp);
    l->tcp.data = l;
    l->w = w;
    l->ssl = a->ssl;
    l->port = a->port;
    if (uv_tcp_open(&l->tcp, fd) || uv_listen((uv_stream_t *)&l->tcp, 511, on_connection)) {
        snprintf(err, errlen, "proxy_listen %s:%d: cannot listen", a->host, a->port);
        return -1;
    }
    return 0;
}

static void close_all(dp_worker *w);

static void on_wake(uv_async_t *a)
{
    dp_worker *w = a->data;
    dp_generation *g = atomic_exchange(&w->pending, NULL);
    if (g) {
        dp_generation_unref(w->gen);
        w->gen = g;
    }
    if (atomic_load(&w->drain) && !w->draining) {
        w->draining = 1;
        for (int i = 0; i < w->nlisteners; i++)
            uv_close((uv_handle_t *)&w->listeners[i].tcp, NULL);
        dp_up_pool_close_all(w);
        dp_link *l = w->conns.next;
        while (l != &w->conns) {
            dp_link *next = l->next;
            dp_conn_drain((dp_conn *)((char *)l - offsetof(dp_conn, link)));
            l = next;
        }
    }
    if (atomic_load(&w->stop) && !w->stopping)
        close_all(w);
}

static void close_all(dp_worker *w)
{
    w->stopping = 1;
    if (!w->draining) {
        w->draining = 1;
        for (int i = 0; i < w->nlisteners; i++)
            uv_close((uv_handle_t *)&w->listeners[i].tcp, NULL);
    }
    while (!dp_link_empty(&w->conns))
        dp_conn_close((dp_conn *)((char *)w->conns.next - offsetof(dp_conn, link)));
    dp_up_pool_close_all(w);
    dp_stream_loop_close();
    uv_close((uv_handle_t *)&w->wake, NULL);
}

int dp_worker_init(dp_worker *w, int id, const sl_listen_addr *listen, int nlisten,
                   SSL_CTX *server_ctx, const dp_proxy_conf *conf, char *err, size_t errlen)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->server_ctx = server_ctx;
    w->conf = *conf;
    dp_link_init(&w->conns);
    for (int i = 0; i < DP_POOL_BUCKETS; i++)
        dp_link_init(&w->idle_up[i]);
    if (uv_loop_init(&w->loop)) {
        snprintf(err, errlen, "uv_loop_init failed");
        return -1;
    }
    w->free_bufs = calloc(MAX_FREE_BUFS, sizeof(char *));
    w->dns = dp_dns_new(&w->loop);
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = w;
    for (int i = 0; i < nlisten && i < DP_MAX_LISTENERS; i++) {
        if (open_listener(w, &w->listeners[i], &listen[i], err, errlen) != 0)
            return -1;
        w->nlisteners++;
    }
    return 0;
}

static void *run(void *arg)
{
    dp_worker *w = arg;
    dp_stream_loop_init(&w->loop);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    /* every handle is closed: release what the loop owned */
    dp_dns_free(w->dns);
    w->dns = NULL;
    dp_generation_unref(w->gen);
    w->gen = NULL;
    dp_generation_unref(atomic_exchange(&w->pending, NULL));
    while (w->nfree_bufs)
        free(w->free_bufs[--w->nfree_bufs]);
    free(w->free_bufs);
    w->free_bufs = NULL;
    uv_loop_close(&w->loop);
    dp_router_thread_done();
    return NULL;
}

int dp_worker_start(dp_worker *w)
{
    return pthread_create(&w->thread, NULL, run, w);
}

void dp_worker_set_generation(dp_worker *w, dp_generation *g)
{
    dp_generation_unref(atomic_exchange(&w->pending, dp_generation_ref(g)));
    uv_async_send(&w->wake);
}

void dp_worker_drain(dp_worker *w)
{
    atomic_store(&w->drain, 1);
    uv_async_send(&w->wake);
}

void dp_worker_stop(dp_worker *w)
{
    atomic_store(&w->stop, 1);
    uv_async_send(&w->wake);
}

void dp_worker_join(dp_worker *w)
{
    pthread_join(w->thread, NULL);
}
