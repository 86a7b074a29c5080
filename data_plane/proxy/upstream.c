/* Upstream side: target choice (balancer or DNS), retries, the per-worker keepalive pool,
 * connect/TLS, and the connect/write/read timeouts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_plane/proxy/proxy.h"
#include "proto/log.h"

static const char bad_response[] = "An invalid response was received from the upstream server";
static const char timing_out[] = "The upstream server is timing out";

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
    if (u->state == U_IDLE) {
        dp_link_remove(&u->link);
        u->w->nidle_up--;
    }
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

static void up_timer_fire(uv_timer_t *t)
{
    dp_upconn *u = t->data;
    dp_conn *c = u->conn;
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
    uv_timer_start(&u->timer, up_timer_fire, (uint64_t)(ms > 0 ? ms : 1), 0);
}

static void up_ready(dp_upconn *u)
{
    dp_conn *c = u->conn;
    u->state = U_ACTIVE;
    u->requests++;
    dp_resp_begin(c);
    dp_stream_read_start(&u->s); /* an early response or a close is seen at once */
    dp_up_arm_timer(u);
    dp_conn_upstream_ready(c);
}

void dp_up_release(dp_upconn *u, int reusable)
{
    dp_worker *w = u->w;
    u->conn = NULL;
    if (!reusable || u->closing || w->draining || u->requests >= DP_POOL_MAX_REQUESTS ||
        u->state != U_ACTIVE) {
        up_close(u);
        return;
    }
    u->state = U_IDLE;
    u->rpos = u->rlen = 0;
    if (u->rbuf) {
        dp_worker_put_buf(w, u->rbuf);
        u->rbuf = NULL;
    }
    dp_link_insert(&w->idle_up, &u->link);
    w->nidle_up++;
    if (w->nidle_up > DP_POOL_MAX_IDLE) /* the least recently used goes */
        up_close((dp_upconn *)((char *)w->idle_up.prev - offsetof(dp_upconn, link)));
    uv_timer_start(&u->timer, up_timer_fire, DP_POOL_IDLE_TIMEOUT, 0);
    dp_stream_read_start(&u->s);
}

void dp_up_pool_close_all(dp_worker *w)
{
    while (!dp_link_empty(&w->idle_up))
        up_close((dp_upconn *)((char *)w->idle_up.next - offsetof(dp_upconn, link)));
}

static void connect_failed(dp_conn *c, int timeout)
{
    dp_upconn *u = c->up;
    c->up = NULL;
    if (u) {
        u->conn = NULL;
        up_close(u);
    }
    if (!timeout && c->tries <= c->svc->retries) {
        dp_up_start(c); /* next target / address */
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

static void make_key(dp_conn *c, const struct sockaddr_storage *a, char *key, size_t cap)
{
    char ip[64] = "";
    int port;
    if (a->ss_family == AF_INET) {
        uv_ip4_name((const struct sockaddr_in *)a, ip, sizeof(ip));
        port = ntohs(((const struct sockaddr_in *)a)->sin_port);
    } else {
        uv_ip6_name((const struct sockaddr_in6 *)a, ip, sizeof(ip));
        port = ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
    }
    if (c->svc->https)
        snprintf(key, cap, "%s|%d|s|%d|%.100s", ip, port, c->svc->tls_verify, c->target_host);
    else
        snprintf(key, cap, "%s|%d", ip, port);
}

static void connect_to(dp_conn *c, const struct sockaddr_storage *a)
{
    dp_worker *w = c->w;
    char key[192];
    make_key(c, a, key, sizeof(key));
    for (dp_link *l = w->idle_up.next; l != &w->idle_up; l = l->next) {
        dp_upconn *u = (dp_upconn *)((char *)l - offsetof(dp_upconn, link));
        if (strcmp(u->key, key) != 0)
            continue;
        dp_link_remove(&u->link);
        w->nidle_up--;
        uv_timer_stop(&u->timer);
        u->state = U_CONNECTING; /* up_ready makes it active */
        u->conn = c;
        u->reused = 1;
        c->up = u;
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
    snprintf(u->key, sizeof(u->key), "%s", key);
    dp_stream_init(&u->s, &w->loop, u, up_get_buf, up_on_read);
    uv_timer_init(&w->loop, &u->timer);
    u->timer.data = u;
    u->state = U_CONNECTING;
    u->conn = c;
    c->up = u;
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
    c->addrs = *res;
    /* retries walk the addresses of a name */
    connect_to(c, &c->addrs.addrs[(c->tries - 1) % c->addrs.naddrs]);
}

void dp_up_start(dp_conn *c)
{
    dp_service *svc = c->svc;
    c->tries++;
    if (svc->upstream) {
        const dp_target *t = dp_upstream_pick(svc->upstream);
        if (!t) {
            dp_conn_respond(c, 503, "failure to get a peer from the ring-balancer");
            return;
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
