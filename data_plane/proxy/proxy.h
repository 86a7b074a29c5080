#ifndef DP_PROXY_H
#define DP_PROXY_H

/* The request pipeline of one client connection: parse a request head, route, run the access
 * phase, pick a target, borrow or open an upstream connection, stream the request body up and
 * the response down with one buffer in flight per direction (reads stop while the other side's
 * write is pending: that is the backpressure), then log and keep the connection for the next
 * request. Internal to data_plane/proxy/. */

#include "data_plane/http/h1.h"
#include "data_plane/http/rewrite.h"
#include "data_plane/net/stream.h"
#include "data_plane/upstream/balancer.h"
#include "data_plane/upstream/dns.h"
#include "data_plane/util/arena.h"
#include "data_plane/worker/worker.h"

/* Client connection states; only conn_set_state changes them. */
typedef enum {
    C_HANDSHAKE,  /* TLS handshake running (header timeout) */
    C_IDLE,       /* between requests (keepalive timeout, or header timeout for the first) */
    C_HEAD,       /* reading a request head (header timeout) */
    C_ACTIVE,     /* routed: upstream being reached, request going up, response coming down */
    C_RESPONDING, /* writing a response the gateway made itself */
    C_TUNNEL,     /* after a 101: raw bytes both ways */
    C_LINGER,     /* response sent, output shut: reading and dropping until EOF or timeout */
} dp_conn_state;

/* Upstream connection states. */
typedef enum {
    U_CONNECTING, /* TCP connect (connect_timeout) */
    U_HANDSHAKE,  /* TLS handshake (connect_timeout) */
    U_ACTIVE,     /* serving a request (write/read timeouts) */
    U_IDLE,       /* in the keepalive pool (idle timeout) */
} dp_upconn_state;

#define DP_MAX_SLICES 32

/* Pieces of one write: a head, body slices (each framed as a chunk when chunked), a trailer. */
typedef struct {
    uv_buf_t iov[3 * DP_MAX_SLICES + 4];
    unsigned n;
    char hex[DP_MAX_SLICES][20];
    unsigned nslices;
    int chunked;
    size_t body_bytes;
} dp_out;

struct dp_upconn {
    dp_stream s;
    dp_worker *w;
    dp_link link; /* the worker's idle pool bucket (U_IDLE) */
    /* the pool key: peer address, and for TLS the client context and the server name sent */
    struct sockaddr_storage peer;
    unsigned bucket;
    SSL_CTX *tls_ctx; /* not owned: the SSL object keeps its context alive */
    char sni[256];
    dp_conn *conn;                 /* the request using it (U_ACTIVE) */
    const dp_balancer *lb;         /* the upstream's balancer, while serving a request on ... */
    const dp_lb_target *lb_target; /* ... this target (counted in flight); NULL: not balanced */
    char *rbuf;
    size_t rpos, rlen;
    dp_h1 parser;
    uv_timer_t timer;
    uint64_t deadline, timer_due; /* lazy timer: see dp_up_timer_set */
    uv_connect_t creq;
    int state;
    int requests;
    int closes; /* handles still closing */
    unsigned reused : 1, got_bytes : 1, closing : 1, timed_out : 1;
};

struct dp_conn {
    dp_stream s;
    dp_worker *w;
    dp_listener *l;
    dp_link link;
    char client_ip[48];
    uint8_t client_ip_len; /* strlen(client_ip), set once at accept */
    int state;
    char *rbuf;
    size_t rpos, rlen;
    size_t body_base; /* where the request head ends: body bytes are read after it */
    dp_h1 parser;
    uv_timer_t timer;
    uint64_t deadline, timer_due; /* lazy timer: see dp_conn_timer_set */
    uv_shutdown_t shut;
    int closes;
    unsigned closing : 1;

    /* the current request */
    dp_generation *gen;
    const dp_route *route;
    dp_service *svc;
    size_t prefix_len;
    dp_slice host; /* the request's host without port (routing, X-Forwarded-Host) */
    dp_slice norm_path;
    dp_arena arena;
    dp_upconn *up;
    dp_dns_query *dnsq;
    const char *target_host;
    int target_port;
    int tries;
    dp_lb_ctx lb; /* the balancer's picks for this request */
    char req_id[33];
    uint64_t t_start, t_sent, t_head;
    dp_plugin_req preq;
    char *req_head;
    size_t req_head_len;
    dp_out req_out;
    dp_out resp_out;
    int status;
    int cwrites; /* writes in flight on the client stream */
    unsigned req_has_body : 1, req_head_sent : 1, req_done : 1, req_writing : 1;
    unsigned resp_head_sent : 1, resp_done : 1, resp_writing : 1, resp_chunked : 1;
    unsigned resp_eof_close : 1, close_after : 1, tunnel_pending : 1, c2u_writing : 1;
    unsigned req_body_refused : 1; /* a request_body plugin answered */
    /* reading the whole body before access (a plugin's wants_body): into body_buf (arena) */
    unsigned buffering : 1, body_buffered : 1;
    char *body_buf;
    size_t body_got;
    char arena_buf[8192];
};

/* The client address and the request id as slices, without a strlen per use (each request
 * uses them half a dozen times); the id is 32 digits or empty. */
static inline dp_slice dp_conn_client_ip(const dp_conn *c)
{
    return (dp_slice){c->client_ip, c->client_ip_len};
}
static inline dp_slice dp_conn_req_id(const dp_conn *c)
{
    return (dp_slice){c->req_id, c->req_id[0] ? 32u : 0u};
}

/* conn.c */
/* Arms the connection's one timer to fire ms from now for the current state, or clears it.
 * Lazy: a new deadline later than the armed one is a store; the libuv timer restarts only when
 * it fires early. Start/stop on libuv's timer heap at every phase of every request cost more
 * than parsing the request did. */
void dp_conn_timer_set(dp_conn *c, uint64_t ms);
void dp_conn_timer_clear(dp_conn *c);
void dp_conn_accept(dp_listener *l);
void dp_conn_set_state(dp_conn *c, int state);
void dp_conn_close(dp_conn *c);
/* Answers with a JSON {"message"} response when nothing was sent to the client yet; otherwise
 * drops the connection. */
void dp_conn_respond(dp_conn *c, int status, const char *message);
/* The upstream connection is ready: send the request. */
void dp_conn_upstream_ready(dp_conn *c);
/* The transaction may be over: finish it once both directions are done. */
void dp_conn_maybe_finish(dp_conn *c);
/* Drops the connection from draining: closes it when idle. */
void dp_conn_drain(dp_conn *c);
/* Pushes request bytes upstream (head, then body as it arrives). */
void dp_conn_req_pump(dp_conn *c);

/* response.c */
/* Prepares the upstream parser for c's response. */
void dp_resp_begin(dp_conn *c);
/* The upstream closed or failed (n < 0) while serving c. */
void dp_resp_upstream_gone(dp_conn *c, ssize_t n);
void dp_resp_pump(dp_conn *c);
void dp_tunnel_start(dp_conn *c);
void dp_tunnel_client_read(dp_conn *c, ssize_t n);
void dp_tunnel_upstream_read(dp_conn *c, ssize_t n);

/* upstream.c */
/* Picks a target (balancer or DNS) and gets a connection; answers 502/503/504 on failure. */
void dp_up_start(dp_conn *c);
/* Gives a connection back: into the pool when reusable, else closed. */
void dp_up_release(dp_upconn *u, int reusable);
/* Re-arms the upstream timer for the request's current phase (lazily, like dp_conn_timer_set). */
void dp_up_arm_timer(dp_upconn *u);
/* Stops the upstream timer (lazily): no upstream deadline while the client is the slow side. */
void dp_up_timer_clear(dp_upconn *u);
/* Closes every pooled connection (drain/stop). */
void dp_up_pool_close_all(dp_worker *w);

/* out.c: building writes */
void dp_out_reset(dp_out *o, int chunked);
void dp_out_add(dp_out *o, const char *p, size_t len);
/* A body piece: framed as a chunk when o->chunked. Returns -1 when o is full. */
int dp_out_body(dp_out *o, const char *p, size_t len);
/* The last chunk "0\r\n\r\n" (when chunked). */
void dp_out_end(dp_out *o);
int dp_out_full(const dp_out *o);

#endif
