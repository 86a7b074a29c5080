/* Upstream side: target choice (balancer or DNS), retries, the per-worker keepalive pool,
 * connect/TLS, and the connect/write/read timeouts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_plane/proxy/proxy.h"
#include "proto/log.h"

static const char bad_response[] = "An invalid response was received from the upstream server";
static const char timing_out[] = "The upstream server is timing out";

/* Balancer bookkeeping: a connection to a balanced target counts as in flight on it while it
 * serves a request (least-connections), and how that ends feeds the passive health checks. */
enum { LB_DONE, LB_TCP_FAILURE, LB_TIMEOUT };

static void lb_attach(dp_conn *c, dp_upconn *u)
{
    const dp_lb_target *t = c->svc->upstream && c->svc->upstream->lb ? c->lb.target : NULL;
    if (!t)
        return;
    u->lb = c->svc->upstream->lb;
    u->lb_target = t;
    dp_lb_acquire(t);
}

/* The request is done with u's target: event says what went wrong, else the response status
 * (when a head came back) or a connection the upstream dropped is reported. */
static void lb_detach(dp_upconn *u, int event)
{
    const dp_lb_target *t = u->lb_target;
    if (!t)
        return;
    u->lb_target = NULL;
    dp_lb_release(t);
    const dp_health_conf *hc = &u->lb->hc;
    if (event == LB_TCP_FAILURE)
        dp_health_report_tcp_failure(t->hs, hc, 0);
    else if (event == LB_TIMEOUT)
        dp_health_report_timeout(t->hs, hc, 0);
    else if (u->state == U_ACTIVE && u->parser.head_complete)
        dp_health_report_status(t->hs, hc, 0, u->parser.head.status);
    else if (u->state == U_ACTIVE && u->s.eof && (u->got_bytes || !u->reused))
        dp_health_report_tcp_failure(t->hs, hc, 0); /* not a stale pooled connection */
}

/* What hashing may use from the request. */
static void lb_request(dp_conn *c, dp_lb_request *rq)
{
    const dp_h1_head *h = &c->parser.head;
    rq->consumer_id = dp_slice_cstr(c->preq.consumer ? c->preq.consumer->id : NULL);
    rq->client_ip = dp_conn_client_ip(c);
    rq->path = c->norm_path;
    rq->query = h->query;
    rq->headers = h->headers;
    rq->nheaders = h->nheaders;
}

/* Retrying after a read/write timeout resends the request: only when nothing came back, the
 * body (none) need not be replayed and the method is safe to repeat (nginx's rule). */
static int retry_after_timeout(const dp_conn *c, const dp_upconn *u)
{
    int m = c->parser.head.method_id;
    return !u->got_bytes && !c->resp_head_sent && !c->req_has_body &&
           (m == HTTP_GET || m == HTTP_HEAD || m == HTTP_OPTIONS) && c->tries <= c->svc->retries;
}

static void up_free(dp_upconn *u)
{
    if (u->rbuf)
        dp_worker_put_buf(u->w, u->rbuf);
    free(u);
}

static void up_handle_closed(uv_handle_t *h)
{
    dp_upconn *u = h->data;
    if (--u->closes == 0)
        up_free(u);
}

static void up_stream_closed(dp_stream *s)
{
    dp_upconn *u = s->owner;
    if (--u->closes == 0)
        up_free(u);
}

static void up_close(dp_upconn *u)
{
    if (u->closing)
        return;
    u->closing = 1;
    lb_detach(u, LB_DONE);
    if (u->state == U_IDLE) {
        dp_link_remove(&u->link);
        u->w->nidle_up--;
        u->w->nidle_bucket[u->bucket]--;
    }
    u->deadline = 0;
    u->closes = 2;
    uv_close((uv_handle_t *)&u->timer, up_handle_closed);
    dp_stream_close(&u->s, up_stream_closed);
}

static char *up_get_buf(dp_stream *s, size_t *cap)
{
    dp_upconn *u = s->owner;
    static _Thread_local char scratch[64];
    if (u->state == U_IDLE || !u->conn) { /* idle: any byte means the connection is unusable */
        *cap = sizeof(scratch);
        return scratch;
    }
    if (!u->rbuf) {
        u->rbuf = dp_worker_get_buf(u->w);
        if (!u->rbuf) {
            *cap = 0;
            return NULL;
        }
    }
    *cap = DP_RBUF_SIZE - u->rlen;
    return u->rbuf + u->rlen;
}

static void up_on_read(dp_stream *s, ssize_t n)
{
    dp_upconn *u = s->owner;
    dp_conn *c = u->conn;
    if (u->closing)
        return;
    if (n == UV_ENOBUFS) { /* the buffer is full: wait for the client to take it */
        dp_stream_read_stop(&u->s);
        return;
    }
    if (u->state == U_IDLE || !c) {
        up_close(u); /* closed by the peer while pooled, or unsolicited bytes */
        return;
    }
    if (c->state == C_TUNNEL) {
        dp_tunnel_upstream_read(c, n);
        return;
    }
    if (n < 0) {
        dp_resp_upstream_gone(c, n);
        return;
    }
    u->got_bytes = 1;
    u->rlen += (size_t)n;
    dp_up_arm_timer(u);
    if (c->resp_writing) {
        dp_stream_read_stop(&u->s);
        return;
    }
    dp_resp_pump(c);
}

static void up_timer_fire(uv_timer_t *t);
static void connect_failed(dp_conn *c, int timeout);

/* Lazy timer (see dp_conn_timer_set in proxy.h): the heap is touched only when the new deadline
 * is sooner than the armed one or the timer isn't running. */
static void up_timer_set(dp_upconn *u, uint64_t ms)
{
    uint64_t due = uv_now(&u->w->loop) + ms;
    u->deadline = due;
    if (!u->timer_due || due < u->timer_due) { /* timer_due 0: not armed */
        u->timer_due = due;
        uv_timer_start(&u->timer, up_timer_fire, ms, 0);
    }
}

void dp_up_timer_clear(dp_upconn *u)
{
    u->deadline = 0;
}

static void up_timer_fire(uv_timer_t *t)
{
    dp_upconn *u = t->data;
    dp_conn *c = u->conn;
    u->timer_due = 0; /* a one-shot timer that fired is no longer armed */
    if (!u->deadline)
        return;
    uint64_t now = uv_now(&u->w->loop);
    if (now < u->deadline) { /* moved later since the timer was armed */
        u->timer_due = u->deadline;
        uv_timer_start(&u->timer, up_timer_fire, u->deadline - now, 0);
        return;
    }
    u->deadline = 0;
    if (u->state == U_IDLE || !c) {
        up_close(u);
        return;
    }
    u->timed_out = 1;
    if (c->state == C_TUNNEL) {
        dp_conn_close(c);
        return;
    }
    sl_info("upstream %s:%d timed out (%s)", c->target_host, c->target_port,
            u->state == U_ACTIVE ? (c->req_done ? "read" : "write") : "connect");
    if (u->state != U_ACTIVE) {
        connect_failed(c, 1); /* another target, when retries are left */
        return;
    }
    lb_detach(u, LB_TIMEOUT);
    if (retry_after_timeout(c, u)) {
        c->up = NULL;
        u->conn = NULL;
        up_close(u);
        c->req_head_sent = 0;
        dp_up_start(c);
        return;
    }
    dp_conn_respond(c, 504, timing_out);
}

void dp_up_arm_timer(dp_upconn *u)
{
    dp_conn *c = u->conn;
    if (!c || u->closing)
        return;
    const dp_service *svc = c->svc;
    int ms;
    if (u->state != U_ACTIVE)
        ms = svc->connect_timeout;
    else if (c->state == C_TUNNEL || c->req_done)
        ms = svc->read_timeout;
    else
        ms = svc->write_timeout;
    up_timer_set(u, (uint64_t)(ms > 0 ? ms : 1));
}

static void up_ready(dp_upconn *u)
{
    dp_conn *c = u->conn;
    u->state = U_ACTIVE;
    u->requests++;
    dp_resp_begin(c);
    dp_stream_read_start(&u->s); /* an early response or a close is seen at once */
    /* no timer here: dp_conn_upstream_ready writes the head at once and arms it then (or
     * answers itself and lets u go) */
    dp_conn_upstream_ready(c);
}

#define UP_OF(l) ((dp_upconn *)((char *)(l)-offsetof(dp_upconn, link)))

static int same_peer(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

static unsigned peer_bucket(const struct sockaddr_storage *a)
{
    uint32_t h = 2166136261u; /* FNV-1a over port and address */
    const unsigned char *p;
    size_t n;
    if (a->ss_family == AF_INET) {
        p = (const unsigned char *)&((const struct sockaddr_in *)a)->sin_port;
        n = 6; /* sin_port then sin_addr */
    } else {
        h ^= ((const struct sockaddr_in6 *)a)->sin6_port;
        p = (const unsigned char *)&((const struct sockaddr_in6 *)a)->sin6_addr;
        n = 16;
    }
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h % DP_POOL_BUCKETS;
}

/* A pooled connection serves a request only with the same peer and, for HTTPS, the same client
 * context (so the same verification settings and CA set: a new config generation has new
 * contexts) and the same server name. */
static int pool_match(const dp_upconn *u, const struct sockaddr_storage *peer, SSL_CTX *ctx,
                      const char *sni)
{
    if (!same_peer(&u->peer, peer) || u->tls_ctx != ctx)
        return 0;
    return !ctx || strcmp(u->sni, sni) == 0;
}

void dp_up_release(dp_upconn *u, int reusable)
{
    dp_worker *w = u->w;
    const dp_proxy_conf *cf = &w->conf;
    u->conn = NULL;
    lb_detach(u, LB_DONE);
    if (!reusable || u->closing || w->draining || u->state != U_ACTIVE || cf->pool_size <= 0 ||
        !cf->pool_idle_timeout ||
        (cf->pool_max_requests > 0 && u->requests >= cf->pool_max_requests)) {
        up_close(u);
        return;
    }
    u->state = U_IDLE;
    u->rpos = u->rlen = 0;
    if (u->rbuf) {
        dp_worker_put_buf(w, u->rbuf);
        u->rbuf = NULL;
    }
    dp_link *head = &w->idle_up[u->bucket];
    dp_link_insert(head, &u->link);
    w->nidle_up++;
    /* the pool of this key is bounded: past pool_size, its least recently used goes (counting
     * is only needed when the whole bucket is over the bound) */
    if (++w->nidle_bucket[u->bucket] > cf->pool_size) {
        int same = 0;
        dp_upconn *oldest = NULL;
        for (dp_link *l = head->next; l != head; l = l->next) {
            dp_upconn *x = UP_OF(l);
            if (pool_match(x, &u->peer, u->tls_ctx, u->sni)) {
                same++;
                oldest = x;
            }
        }
        if (same > cf->pool_size && oldest)
            up_close(oldest);
    }
    up_timer_set(u, cf->pool_idle_timeout);
    dp_stream_read_start(&u->s);
}

void dp_up_pool_close_all(dp_worker *w)
{
    for (int i = 0; i < DP_POOL_BUCKETS; i++)
        while (!dp_link_empty(&w->idle_up[i]))
            up_close(UP_OF(w->idle_up[i].next));
}

static void connect_failed(dp_conn *c, int timeout)
{
    dp_upconn *u = c->up;
    c->up = NULL;
    if (u) {
        lb_detach(u, timeout ? LB_TIMEOUT : LB_TCP_FAILURE);
        u->conn = NULL;
        up_close(u);
    }
    if (c->tries <= c->svc->retries) {
        dp_up_start(c); /* next target / address: the client sees no error */
        return;
    }
    dp_conn_respond(c, timeout ? 504 : 502, timeout ? timing_out : bad_response);
}

static void on_handshake(dp_stream *s, int status)
{
    dp_upconn *u = s->owner;
    dp_conn *c = u->conn;
    if (!c || u->closing)
        return;
    if (status < 0) {
        sl_warn("upstream %s:%d: TLS handshake failed", c->target_host, c->target_port);
        connect_failed(c, 0);
        return;
    }
    up_ready(u);
}

static void on_connect(uv_connect_t *req, int status)
{
    dp_upconn *u = req->data;
    dp_conn *c = u->conn;
    if (u->closing || !c)
        return;
    if (status < 0) {
        sl_info("upstream %s:%d: connect failed: %s", c->target_host, c->target_port,
                uv_strerror(status));
        connect_failed(c, 0);
        return;
    }
    uv_tcp_nodelay(&u->s.tcp, 1);
    if (c->svc->https) {
        u->state = U_HANDSHAKE;
        u->s.on_handshake = on_handshake;
        if (dp_stream_tls_client(&u->s, c->svc->tls_ctx, c->target_host, c->svc->tls_verify) != 0)
            connect_failed(c, 0);
        return;
    }
    up_ready(u);
}

static void connect_to(dp_conn *c, const struct sockaddr_storage *a)
{
    dp_worker *w = c->w;
    SSL_CTX *ctx = c->svc->https ? c->svc->tls_ctx : NULL;
    unsigned bucket = peer_bucket(a);
    dp_link *head = &w->idle_up[bucket];
    for (dp_link *l = head->next; l != head; l = l->next) {
        dp_upconn *u = UP_OF(l);
        if (!pool_match(u, a, ctx, c->target_host))
            continue;
        dp_link_remove(&u->link);
        w->nidle_up--;
        w->nidle_bucket[bucket]--;
        u->deadline = 0;
        u->state = U_CONNECTING; /* up_ready makes it active */
        u->conn = c;
        u->reused = 1;
        c->up = u;
        lb_attach(c, u);
        up_ready(u);
        return;
    }
    dp_upconn *u = calloc(1, sizeof(*u));
    if (!u) {
        dp_conn_respond(c, 500, "An unexpected error occurred");
        return;
    }
    u->w = w;
    dp_link_init(&u->link);
    u->peer = *a;
    u->bucket = bucket;
    u->tls_ctx = ctx;
    if (ctx)
        snprintf(u->sni, sizeof(u->sni), "%s", c->target_host);
    dp_stream_init(&u->s, &w->loop, u, up_get_buf, up_on_read);
    uv_timer_init(&w->loop, &u->timer);
    u->timer.data = u;
    u->state = U_CONNECTING;
    u->conn = c;
    c->up = u;
    lb_attach(c, u);
    u->creq.data = u;
    dp_up_arm_timer(u);
    int rc = uv_tcp_connect(&u->creq, &u->s.tcp, (const struct sockaddr *)a, on_connect);
    if (rc) {
        sl_info("upstream %s:%d: connect failed: %s", c->target_host, c->target_port,
                uv_strerror(rc));
        connect_failed(c, 0);
    }
}

static void resolved(void *arg, int status, const dp_dns_result *res)
{
    dp_conn *c = arg;
    c->dnsq = NULL;
    if (status < 0 || !res || !res->naddrs) {
        sl_info("upstream %s: name resolution failed: %s", c->target_host,
                uv_strerror(status < 0 ? status : UV_EAI_NONAME));
        dp_conn_respond(c, 503, "name resolution failed");
        return;
    }
    /* retries walk the addresses of a name; the one address is copied, since res may be the
     * resolver's own storage and a failing connect resolves again before connect_to returns */
    struct sockaddr_storage a = res->addrs[(c->tries - 1) % res->naddrs];
    connect_to(c, &a);
}

void dp_up_start(dp_conn *c)
{
    dp_service *svc = c->svc;
    if (c->tries == 0)
        memset(&c->lb, 0, sizeof(c->lb));
    c->tries++;
    if (svc->upstream) {
        dp_balancer *b = svc->upstream->lb;
        dp_lb_request rq;
        lb_request(c, &rq);
        const dp_lb_target *t = b ? dp_balancer_pick(b, &rq, &c->lb) : NULL;
        if (!t) {
            dp_conn_respond(c, 503, "failure to get a peer from the ring-balancer");
            return;
        }
        if (c->lb.cookie_is_new && !c->lb.cookie_sent) { /* hash_on cookie: hand it out */
            char v[1024];
            size_t n = dp_balancer_cookie(b, &c->lb, v, sizeof(v));
            if (n)
                dp_plugin_resp_header_add(&c->preq, "Set-Cookie", (dp_slice){v, n});
            c->lb.cookie_sent = 1;
        }
        c->target_host = t->host;
        c->target_port = t->port;
    } else {
        c->target_host = svc->host;
        c->target_port = svc->port;
    }
    int rc = dp_dns_resolve(c->w->dns, c->target_host, c->target_port, resolved, c, &c->dnsq);
    if (rc < 0)
        dp_conn_respond(c, 503, "name resolution failed");
}
