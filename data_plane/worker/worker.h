#ifndef DP_WORKER_H
#define DP_WORKER_H

/* A proxy worker thread: its own libuv loop, SO_REUSEPORT listeners for every proxy_listen
 * entry, its client connections, upstream keepalive pool and DNS cache. Nothing in here is
 * shared with other workers except the read-only config generation and the stats counters. */

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "data_plane/config/generation.h"
#include "proto/settings.h"

#define DP_MAX_LISTENERS 16
#define DP_POOL_BUCKETS 64

typedef struct dp_worker dp_worker;
typedef struct dp_conn dp_conn;
typedef struct dp_upconn dp_upconn;

typedef struct {
    uv_tcp_t tcp;
    dp_worker *w;
    int ssl;
    int port;
} dp_listener;

/* Counters read by the status listener (relaxed atomics: approximate is fine). */
typedef struct {
    _Atomic long long accepted, active, requests, handled;
} dp_worker_stats;

/* Intrusive doubly-linked list node. */
typedef struct dp_link {
    struct dp_link *prev, *next;
} dp_link;

/* The proxy settings (proto/settings.c), resolved once at start; times in milliseconds. */
typedef struct {
    unsigned headers; /* DP_HDR_*: the headers the proxy adds */
    uint64_t client_header_timeout;
    uint64_t client_body_timeout;
    uint64_t keepalive_timeout; /* 0: one request per connection */
    int pool_size;              /* idle upstream connections kept per worker */
    int pool_max_requests;      /* 0: no limit */
    uint64_t pool_idle_timeout; /* 0: no idle pooling */
} dp_proxy_conf;

/* Fills conf from the settings; -1 with err naming the setting when a value is refused. */
int dp_proxy_conf_load(dp_proxy_conf *conf, const sl_settings *s, char *err, size_t errlen);

struct dp_worker {
    int id;
    uv_loop_t loop;
    pthread_t thread;
    uv_async_t wake; /* new generation, drain or stop */
    dp_listener listeners[DP_MAX_LISTENERS];
    int nlisteners;
    dp_generation *gen;               /* this worker's reference to the current generation */
    _Atomic(dp_generation *) pending; /* handed over by the control thread */
    _Atomic int drain, stop;
    int draining, stopping;
    dp_link conns; /* client connections */
    /* pooled upstream connections, hashed by peer address; most recently used first */
    dp_link idle_up[DP_POOL_BUCKETS];
    int nidle_bucket[DP_POOL_BUCKETS];
    int nidle_up;
    void *dns;        /* dp_dns cache */
    char **free_bufs; /* read buffers kept for reuse */
    int nfree_bufs;
    int nbufs_out, nbufs_peak; /* read buffers handed out now, and at most at once */
    uint64_t req_counter;
    dp_worker_stats stats;
    SSL_CTX *server_ctx;
    dp_proxy_conf conf;
};

/* Fixed tunables; the others are settings (dp_proxy_conf). */
#define DP_RBUF_SIZE (64 * 1024)
#define DP_LINGER_TIMEOUT 2000

/* Creates worker id with listeners bound (SO_REUSEPORT) for every entry; -1 with err. conf is
 * copied. */
int dp_worker_init(dp_worker *w, int id, const sl_listen_addr *listen, int nlisten,
                   SSL_CTX *server_ctx, const dp_proxy_conf *conf, char *err, size_t errlen);

/* Starts the thread running the loop. */
int dp_worker_start(dp_worker *w);

/* From the control thread: hands a new generation over (takes a reference for the worker). */
void dp_worker_set_generation(dp_worker *w, dp_generation *g);

/* From the control thread: stop accepting and close idle connections; in-flight requests finish
 * and their connections close after the response. */
void dp_worker_drain(dp_worker *w);

/* From the control thread: close everything, end the loop; then join with dp_worker_join. */
void dp_worker_stop(dp_worker *w);
void dp_worker_join(dp_worker *w);

/* A read buffer of DP_RBUF_SIZE from the worker's free list (or malloc); NULL when out of
 * memory. Returned with dp_worker_put_buf. */
char *dp_worker_get_buf(dp_worker *w);
void dp_worker_put_buf(dp_worker *w, char *buf);

/* Link helpers */
static inline void dp_link_init(dp_link *l)
{
    l->prev = l->next = l;
}
static inline void dp_link_insert(dp_link *head, dp_link *l)
{
    l->next = head->next;
    l->prev = head;
    head->next->prev = l;
    head->next = l;
}
static inline void dp_link_remove(dp_link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}
static inline int dp_link_empty(const dp_link *head)
{
    return head->next == head;
}

#endif
