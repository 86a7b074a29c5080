/* The active health checker: one per node, on the control loop. Every tick it walks the
 * current generation's upstreams and starts a probe for each target whose interval (healthy
 * or unhealthy, per its state) has passed: resolve (async), connect, for http(s) send
 * GET http_path and read the status line, within `timeout`. Results go through the same
 * counters as passive checks, so every worker sees them at once. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "data_plane/config/apply.h"
#include "data_plane/net/stream.h"
#include "data_plane/upstream/balancer.h"
#include "data_plane/upstream/health.h"
#include "proto/log.h"
#include "proto/version.h"

#define TICK_MS 100
#define MAX_PROBES 256 /* in flight, whole node */

typedef enum {
    P_RESOLVING,  /* uv_getaddrinfo in the thread pool */
    P_CONNECTING, /* TCP connect (and TLS handshake) */
    P_WAITING,    /* request sent, reading the status line */
    P_DONE,       /* result reported, handles closing */
} probe_state;

typedef struct probe {
    dp_stream s;
    uv_timer_t timer;
    uv_connect_t creq;
    uv_getaddrinfo_t gai;
    dp_generation *g; /* keeps b and t alive */
    const dp_balancer *b;
    const dp_lb_target *t;
    probe_state state;
    int gai_pending, stream_open, closes;
    char in[512];
    size_t inlen;
    char *req;
    size_t reqlen;
} probe;

static uv_loop_t *loop;
static uv_timer_t tick;
static int started, nprobes;

static void probe_free(probe *p)
{
    p->t->hs->probing = 0;
    nprobes--;
    dp_generation_unref(p->g);
    free(p->req);
    free(p);
}

static void closed_one(probe *p)
{
    if (--p->closes == 0 && !p->gai_pending)
        probe_free(p);
}

static void timer_closed(uv_handle_t *h)
{
    closed_one(h->data);
}

static void stream_closed(dp_stream *s)
{
    closed_one(s->owner);
}

/* Reports once and closes; kind: 0 success, 1 tcp failure, 2 timeout, 3 http status. */
static void probe_finish(probe *p, int kind, int status)
{
    if (p->state == P_DONE)
        return;
    p->state = P_DONE;
    dp_health_target *hs = p->t->hs;
    const dp_health_conf *c = &p->b->hc;
    if (kind == 0)
        dp_health_report_tcp_success(hs, c);
    else if (kind == 1)
        dp_health_report_tcp_failure(hs, c, 1);
    else if (kind == 2)
        dp_health_report_timeout(hs, c, 1);
    else
        dp_health_report_status(hs, c, 1, status);
    sl_debug("active check %s %s: %s %d", p->b->name, p->t->name,
             kind == 0   ? "ok"
             : kind == 1 ? "tcp failure"
             : kind == 2 ? "timeout"
                         : "status",
             status);
    p->closes = 1 + p->stream_open;
    uv_close((uv_handle_t *)&p->timer, timer_closed);
    if (p->stream_open)
        dp_stream_close(&p->s, stream_closed);
    if (p->gai_pending)
        uv_cancel((uv_req_t *)&p->gai);
}

static void on_timeout(uv_timer_t *t)
{
    probe_finish(t->data, 2, 0);
}

static char *get_buf(dp_stream *s, size_t *cap)
{
    probe *p = s->owner;
    *cap = sizeof(p->in) - 1 - p->inlen;
    return p->in + p->inlen;
}

static void on_read(dp_stream *s, ssize_t n)
{
    probe *p = s->owner;
    if (p->state != P_WAITING)
        return;
    if (n < 0) {
        probe_finish(p, 1, 0);
        return;
    }
    p->inlen += (size_t)n;
    p->in[p->inlen] = 0;
    if (!strstr(p->in, "\r\n") && p->inlen < sizeof(p->in) - 1)
        return;
    int major, minor, status;
    if (sscanf(p->in, "HTTP/%d.%d %d", &major, &minor, &status) != 3)
        probe_finish(p, 3, 0); /* not HTTP: counts as no listed status */
    else
        probe_finish(p, 3, status);
}

static void written(dp_stream *s, int status, void *arg)
{
    probe *p = s->owner;
    if (status < 0 && p->state == P_WAITING)
        probe_finish(p, 1, 0);
}

static void send_request(probe *p)
{
    const dp_health_conf *c = &p->b->hc;
    int v6 = strchr(p->t->host, ':') != NULL;
    size_t cap = strlen(c->http_path) + strlen(p->t->host) + strlen(c->headers) + 200;
    p->req = malloc(cap);
    if (!p->req) {
        probe_finish(p, 1, 0);
        return;
    }
    int n =
        snprintf(p->req, cap,
                 "GET %s HTTP/1.0\r\nHost: %s%s%s:%d\r\nUser-Agent: sluice/" SL_VERSION
                 " healthcheck\r\nConnection: close\r\n%s\r\n",
                 c->http_path, v6 ? "[" : "", p->t->host, v6 ? "]" : "", p->t->port, c->headers);
    p->reqlen = (size_t)n;
    p->state = P_WAITING;
    uv_buf_t b = uv_buf_init(p->req, (unsigned)p->reqlen);
    dp_stream_read_start(&p->s);
    if (dp_stream_write(&p->s, &b, 1, written, NULL) != 0)
        probe_finish(p, 1, 0);
}

static void on_handshake(dp_stream *s, int status)
{
    probe *p = s->owner;
    if (p->state != P_CONNECTING)
        return;
    if (status < 0) {
        probe_finish(p, 1, 0);
        return;
    }
    send_request(p);
}

static void on_connect(uv_connect_t *req, int status)
{
    probe *p = req->data;
    if (p->state != P_CONNECTING)
        return;
    if (status < 0) {
        probe_finish(p, 1, 0);
        return;
    }
    const dp_health_conf *c = &p->b->hc;
    if (c->active_type == DP_HC_TCP) {
        probe_finish(p, 0, 0);
        return;
    }
    if (c->active_type == DP_HC_HTTPS) {
        p->s.on_handshake = on_handshake;
        const char *sni = c->https_sni ? c->https_sni : p->t->host;
        if (dp_stream_tls_client(&p->s, c->tls_ctx, sni, c->https_verify) != 0)
            probe_finish(p, 1, 0);
        else if (p->s.pump_init)
            uv_unref((uv_handle_t *)&p->s.pump);
        return;
    }
    send_request(p);
}

static void connect_addr(probe *p, const struct sockaddr *a)
{
    p->state = P_CONNECTING;
    if (dp_stream_init(&p->s, loop, p, get_buf, on_read) != 0) {
        probe_finish(p, 1, 0);
        return;
    }
    p->stream_open = 1;
    uv_unref((uv_handle_t *)&p->s.tcp);
    p->creq.data = p;
    if (uv_tcp_connect(&p->creq, &p->s.tcp, a, on_connect) != 0)
        probe_finish(p, 1, 0);
}

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    probe *p = req->data;
    p->gai_pending = 0;
    if (p->state == P_DONE) {
        uv_freeaddrinfo(ai);
        if (p->closes == 0)
            probe_free(p);
        return;
    }
    if (status < 0 || !ai) {
        uv_freeaddrinfo(ai);
        probe_finish(p, 1, 0); /* Kong shows DNS_ERROR; the target gets no traffic either way */
        return;
    }
    struct sockaddr_storage ss;
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    uv_freeaddrinfo(ai);
    if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)p->t->port);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)p->t->port);
    connect_addr(p, (struct sockaddr *)&ss);
}

static void probe_start(dp_generation *g, const dp_balancer *b, const dp_lb_target *t)
{
    probe *p = calloc(1, sizeof(*p));
    if (!p)
        return;
    p->g = dp_generation_ref(g);
    p->b = b;
    p->t = t;
    t->hs->probing = 1;
    nprobes++;
    uv_timer_init(loop, &p->timer);
    uv_unref((uv_handle_t *)&p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, on_timeout, b->hc.active_timeout_ms, 0);
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    if (uv_ip4_addr(t->host, t->port, &a4) == 0) {
        connect_addr(p, (struct sockaddr *)&a4);
        return;
    }
    if (uv_ip6_addr(t->host, t->port, &a6) == 0) {
        connect_addr(p, (struct sockaddr *)&a6);
        return;
    }
    p->state = P_RESOLVING;
    p->gai.data = p;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (uv_getaddrinfo(loop, &p->gai, resolved, t->host, NULL, &hints) != 0) {
        probe_finish(p, 1, 0);
        return;
    }
    p->gai_pending = 1;
}

static void on_tick(uv_timer_t *timer)
{
    dp_generation *g = dp_config_current();
    if (!g)
        return;
    uint64_t now = uv_now(loop);
    for (size_t i = 0; i < g->nupstreams; i++) {
        const dp_balancer *b = g->upstreams[i].lb;
        if (!b || !b->hc.active_on)
            continue;
        unsigned running = 0;
        for (size_t k = 0; k < b->ntargets; k++)
            running += b->targets[k].hs->probing;
        for (size_t k = 0; k < b->ntargets && nprobes < MAX_PROBES; k++) {
            const dp_lb_target *t = &b->targets[k];
            dp_health_target *hs = t->hs;
            int healthy = atomic_load_explicit(&hs->healthy, memory_order_relaxed);
            unsigned interval = healthy ? b->hc.healthy_interval_ms : b->hc.unhealthy_interval_ms;
            if (!interval || hs->probing || running >= b->hc.active_concurrency)
                continue;
            if (!hs->next_probe_ms) /* new target or state just changed: start the interval */
                hs->next_probe_ms = now + interval;
            if (now < hs->next_probe_ms)
                continue;
            hs->next_probe_ms = now + interval;
            running++;
            probe_start(g, b, t);
        }
    }
    dp_generation_unref(g);
}

void dp_health_prober_ensure(void)
{
    if (started)
        return;
    started = 1;
    loop = uv_default_loop(); /* the control loop: sluice-dp's main thread runs it */
    uv_timer_init(loop, &tick);
    uv_unref((uv_handle_t *)&tick); /* never what keeps the node running */
    uv_timer_start(&tick, on_tick, TICK_MS, TICK_MS);
}

void dp_health_stop(void)
{
    if (!started)
        return;
    started = 0;
    uv_close((uv_handle_t *)&tick, NULL);
}
