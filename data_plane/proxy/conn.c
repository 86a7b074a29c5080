/* Client side of the pipeline: accept, request heads, routing, the request body going up,
 * gateway responses, keepalive and closing. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data_plane/proxy/proxy.h"
#include "data_plane/util/hex.h"
#include "proto/log.h"

static void conn_process(dp_conn *c);
static void conn_linger(dp_conn *c);

static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

void dp_conn_set_state(dp_conn *c, int state)
{
    c->state = state;
}

static char *conn_get_buf(dp_stream *s, size_t *cap)
{
    dp_conn *c = s->owner;
    static _Thread_local char discard[4096];
    if (c->state == C_LINGER) {
        *cap = sizeof(discard);
        return discard;
    }
    if (!c->rbuf) {
        c->rbuf = dp_worker_get_buf(c->w);
        c->rpos = c->rlen = 0;
        if (!c->rbuf) {
            *cap = 0;
            return NULL;
        }
    }
    *cap = DP_RBUF_SIZE - c->rlen;
    return c->rbuf + c->rlen;
}

static void timer_fire(uv_timer_t *t)
{
    dp_conn *c = t->data;
    c->timer_due = 0; /* a one-shot timer that fired is no longer armed */
    if (!c->deadline)
        return;
    uint64_t now = uv_now(&c->w->loop);
    if (now < c->deadline) { /* moved later since the timer was armed */
        c->timer_due = c->deadline;
        uv_timer_start(&c->timer, timer_fire, c->deadline - now, 0);
        return;
    }
    c->deadline = 0;
    switch (c->state) {
    case C_HANDSHAKE:
    case C_IDLE:
    case C_LINGER:
        dp_conn_close(c);
        break;
    case C_HEAD:
        dp_conn_respond(c, 408, "Request timeout"); /* nginx answers 408 then closes */
        break;
    default: /* client body timeout */
        if (!c->resp_head_sent)
            dp_conn_respond(c, 408, "Request timeout");
        else
            dp_conn_close(c);
    }
}

void dp_conn_timer_set(dp_conn *c, uint64_t ms)
{
    uint64_t due = uv_now(&c->w->loop) + ms;
    c->deadline = due;
    if (!c->timer_due || due < c->timer_due) { /* timer_due 0: not armed */
        c->timer_due = due;
        uv_timer_start(&c->timer, timer_fire, ms, 0);
    }
}

void dp_conn_timer_clear(dp_conn *c)
{
    c->deadline = 0;
}

static void conn_free(dp_conn *c)
{
    if (c->rbuf)
        dp_worker_put_buf(c->w, c->rbuf);
    dp_arena_reset(&c->arena);
    dp_generation_unref(c->gen);
    free(c);
}

static void handle_closed(uv_handle_t *h)
{
    dp_conn *c = h->data;
    if (--c->closes == 0)
        conn_free(c);
}

static void stream_closed(dp_stream *s)
{
    dp_conn *c = s->owner;
    if (--c->closes == 0)
        conn_free(c);
}

void dp_conn_close(dp_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    if (c->dnsq) {
        dp_dns_cancel(c->dnsq);
        c->dnsq = NULL;
    }
    if (c->up) {
        c->up->conn = NULL;
        dp_up_release(c->up, 0);
        c->up = NULL;
    }
    dp_link_remove(&c->link);
    atomic_fetch_sub_explicit(&c->w->stats.active, 1, memory_order_relaxed);
    c->closes = 2;
    uv_close((uv_handle_t *)&c->timer, handle_closed);
    dp_stream_close(&c->s, stream_closed);
}

static void want_read(dp_conn *c)
{
    dp_stream_read_start(&c->s);
}

static void client_written(dp_stream *s, int status, void *arg)
{
    dp_conn *c = s->owner;
    c->cwrites--;
    if (c->closing)
        return;
    if (status < 0) {
        dp_conn_close(c);
        return;
    }
    if (c->state == C_RESPONDING && c->cwrites == 0)
        dp_conn_maybe_finish(c); /* lingers instead when close_after */
}

static int client_write(dp_conn *c, const uv_buf_t *b, unsigned n)
{
    c->cwrites++;
    int rc = dp_stream_write(&c->s, b, n, client_written, NULL);
    if (rc) {
        c->cwrites--;
        dp_conn_close(c);
    }
    return rc;
}

static void shut_done(uv_shutdown_t *req, int status)
{
    dp_conn *c = req->data;
    if (c->closing)
        return;
    if (status < 0)
        dp_conn_close(c);
}

/* Lingering close: shut our side, then read and drop what the client still sends, so the
 * kernel doesn't answer unread data with a reset that could destroy the response in flight. */
static void conn_linger(dp_conn *c)
{
    if (c->closing)
        return;
    dp_conn_set_state(c, C_LINGER);
    c->shut.data = c;
    if (c->s.ssl || uv_shutdown(&c->shut, (uv_stream_t *)&c->s.tcp, shut_done) != 0) {
        dp_conn_close(c);
        return;
    }
    dp_conn_timer_set(c, DP_LINGER_TIMEOUT);
    dp_stream_read_start(&c->s);
}

void dp_conn_respond(dp_conn *c, int status, const char *message)
{
    if (c->closing)
        return;
    if (c->resp_head_sent || c->state == C_RESPONDING) {
        dp_conn_close(c);
        return;
    }
    if (c->dnsq) {
        dp_dns_cancel(c->dnsq);
        c->dnsq = NULL;
    }
    if (c->up) {
        c->up->conn = NULL;
        dp_up_release(c->up, 0);
        c->up = NULL;
    }
    dp_conn_timer_clear(c);
    dp_stream_read_stop(&c->s);
    /* the rest of an unread request body would be taken for the next request: close instead */
    if (!c->parser.head_complete || (c->req_has_body && !c->req_done) ||
        !c->parser.head.keepalive || c->w->draining || !c->w->conf.keepalive_timeout ||
        status == 400 || status == 408 || status == 414 || status == 431 || status == 505)
        c->close_after = 1;
    c->status = status;
    c->resp_head_sent = 1;
    c->req_done = 1;
    c->resp_done = 1;
    dp_conn_set_state(c, C_RESPONDING);
    size_t cap = dp_plugin_response_size(&c->preq, message);
    char *buf = dp_arena_alloc(&c->arena, cap);
    long latency = (long)(uv_now(&c->w->loop) - c->t_start);
    /* plugins' headers and body, and header_filter, apply to the gateway's own answers too */
    long n =
        buf ? dp_plugin_render_response(
                  &c->preq, status, message, c->close_after,
                  (c->w->conf.headers & DP_HDR_SERVER) != 0,
                  (c->w->conf.headers & DP_HDR_REQUEST_ID) && c->req_id[0] ? dp_conn_req_id(c)
                                                                           : (dp_slice){NULL, 0},
                  (c->w->conf.headers & DP_HDR_LATENCY) ? latency : -1, buf, cap)
            : -1;
    if (n < 0) {
        dp_conn_close(c);
        return;
    }
    uv_buf_t b = uv_buf_init(buf, (unsigned)n);
    client_write(c, &b, 1);
}

static void make_request_id(dp_conn *c)
{
    uint64_t a = c->w->req_counter++ ^ ((uint64_t)c->w->id << 56);
    uint64_t b = (uint64_t)(uintptr_t)c->w ^ uv_hrtime();
    dp_hex_u64(c->req_id, b);
    dp_hex_u64(c->req_id + 16, a);
    c->req_id[32] = 0;
}

/* Refuses a request whose buffered body is malformed before anything goes upstream: a copy
 * of the parser runs over what was already read. */
static int prevalidate_body(dp_conn *c)
{
    if (c->rpos == c->rlen)
        return 0;
    dp_h1 *copy = dp_arena_alloc(&c->arena, sizeof(dp_h1));
    if (!copy)
        return -1;
    memcpy(copy, &c->parser, sizeof(dp_h1));
    copy->p.data = copy;
    copy->on_body = NULL;
    copy->on_chunk = NULL;
    size_t used;
    return dp_h1_execute(copy, c->rbuf + c->rpos, c->rlen - c->rpos, &used) == DP_H1_ERROR ? -1 : 0;
}

/* The request's host without its port (routing, X-Forwarded-Host). */
static dp_slice host_of(const dp_h1_head *h)
{
    dp_slice v = h->authority.len     ? h->authority
                 : h->host_index >= 0 ? h->headers[h->host_index].value
                                      : (dp_slice){"", 0};
    if (v.len && v.p[0] == '[') {
        const char *e = memchr(v.p, ']', v.len);
        return e ? (dp_slice){v.p, (size_t)(e - v.p) + 1} : v;
    }
    for (size_t i = 0; i < v.len; i++)
        if (v.p[i] == ':')
            return (dp_slice){v.p, i};
    return v;
}

/* The request as plugins see it (routed or not; the caller adds route and service). */
static void preq_init(dp_conn *c, dp_slice host)
{
    const dp_h1_head *h = &c->parser.head;
    dp_plugin_req *pr = &c->preq;
    memset(pr, 0, sizeof(*pr));
    pr->arena = &c->arena;
    pr->upstream_latency_ms = -1; /* until an upstream answers (prometheus, log entries) */
    pr->method = h->method;
    pr->path = c->norm_path;
    pr->query = h->query;
    pr->host = host;
    pr->client_ip = dp_conn_client_ip(c);
    pr->headers = h->headers;
    pr->nheaders = h->nheaders;
    pr->https = c->l->ssl;
    pr->request_id = dp_conn_req_id(c);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    pr->started_at_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    pr->content_length = h->content_length;
    pr->chunked = h->chunked;
    pr->body_replaceable = !c->req_has_body; /* nothing of the client's to stream */
    if (!h->chunked && h->content_length >= 0 &&
        c->rlen - c->rpos >= (size_t)h->content_length) { /* the whole body came with the head */
        pr->body = (dp_slice){c->rbuf + c->rpos, (size_t)h->content_length};
        pr->body_complete = 1;
    }
}

/* No route matched: like Kong, the global plugins still run (prometheus counts the request,
 * file-log and http-log log it, a global cors answers a preflight) around the 404. */
/* As in Kong, a request no route matches never reaches the access phase (routing comes
 * first, so a global key-auth can't turn a 404 into a 401), but global plugins still see the
 * 404 in header_filter and log: prometheus counts it and the log plugins record it. */
static void respond_unrouted(dp_conn *c, dp_slice host)
{
    preq_init(c, host);
    dp_plugin_req_begin(&c->preq, &c->gen->plugins, SIZE_MAX);
    dp_conn_respond(c, 404, "no Route matched with those values");
}

/* The access phase, then the upstream. A buffered body (body_buffer) goes through the
 * request_body plugins here, whole, since it was read before they could see it stream. */
static void run_access(dp_conn *c)
{
    dp_plugin_req *pr = &c->preq;
    if (dp_plugin_run_access(&c->gen->plugins, pr) == DP_PLUGIN_RESPOND ||
        (c->body_buffered && pr->chain &&
         dp_plugin_run_request_body(pr, c->body_buf, c->body_got) == DP_PLUGIN_RESPOND)) {
        dp_conn_respond(c, pr->response_status, pr->response_message);
        return;
    }
    c->tries = 0;
    dp_up_start(c);
}

/* Reads more of a body being buffered; once whole, runs access. Reading stays bounded: the
 * parser hands over at most Content-Length bytes (<= DP_PLUGIN_MAX_BODY), into body_buf. */
static void body_buffer(dp_conn *c)
{
    if (c->rpos < c->rlen) {
        size_t used;
        dp_h1_result r = dp_h1_execute(&c->parser, c->rbuf + c->rpos, c->rlen - c->rpos, &used);
        c->rpos += used;
        if (r == DP_H1_ERROR) {
            dp_conn_respond(c, 400, "Bad request");
            return;
        }
    }
    if (c->parser.msg_complete) {
        c->buffering = 0;
        c->body_buffered = 1;
        c->req_done = 1;
        dp_conn_timer_clear(c);
        c->preq.body = (dp_slice){c->body_buf, c->body_got};
        c->preq.body_complete = 1;
        c->preq.body_replaceable = 1;
        run_access(c);
        return;
    }
    c->rpos = c->rlen = c->body_base; /* all consumed; the head's slices stay valid */
    dp_conn_timer_set(c, c->w->conf.client_body_timeout);
    want_read(c);
}

/* A plugin wants the whole body before access (wants_body): read it first. */
static void body_buffer_start(dp_conn *c)
{
    const dp_h1_head *h = &c->parser.head;
    c->body_buf = dp_arena_alloc(&c->arena, (size_t)h->content_length + 1);
    if (!c->body_buf) {
        dp_conn_respond(c, 500, "An unexpected error occurred");
        return;
    }
    c->body_got = 0;
    c->buffering = 1;
    if (h->expect_continue && c->rpos == c->rlen && h->http_minor >= 1) {
        static const uv_buf_t b = {(char *)continue_100, sizeof(continue_100) - 1};
        if (client_write(c, &b, 1) != 0)
            return;
    }
    body_buffer(c);
}

static void start_request(dp_conn *c)
{
    dp_worker *w = c->w;
    const dp_h1_head *h = &c->parser.head;
    dp_conn_set_state(c, C_ACTIVE);
    c->body_base = c->rpos;
    atomic_fetch_add_explicit(&w->stats.requests, 1, memory_order_relaxed);
    make_request_id(c);
    c->req_has_body = h->chunked || h->content_length > 0;
    c->req_done = !c->req_has_body;
    if (c->req_has_body && prevalidate_body(c) != 0) {
        dp_conn_respond(c, 400, "Bad request");
        return;
    }
    dp_generation_unref(c->gen);
    c->gen = dp_generation_ref(w->gen);
    if (!c->gen) {
        dp_conn_respond(c, 404, "no Route matched with those values");
        return;
    }
    char *np = dp_arena_alloc(&c->arena, h->path.len + 1);
    long nl = np ? dp_path_normalize(h->path.p, h->path.len, np) : -1;
    if (nl < 0) {
        dp_conn_respond(c, 400, "Bad request");
        return;
    }
    c->norm_path = (dp_slice){np, (size_t)nl};
    c->host = host_of(h);
    dp_router_input in = {
        .method = h->method,
        .host = c->host,
        .port = c->l->port,
        .path = c->norm_path,
        .sni = dp_slice_cstr(dp_stream_sni(&c->s)),
        .https = c->l->ssl,
        .headers = h->headers,
        .nheaders = h->nheaders,
    };
    dp_router_match m;
    if (dp_router_find(c->gen->router, &in, &m) != 0) {
        respond_unrouted(c, in.host);
        return;
    }
    c->route = &c->gen->routes[m.route];
    c->prefix_len = m.prefix_len;
    if (!(c->route->protocols & (c->l->ssl ? DP_PROTO_HTTPS : DP_PROTO_HTTP))) {
        if (!c->l->ssl)
            dp_conn_respond(c,
                            c->route->https_redirect_status_code == 426
                                ? 426
                                : c->route->https_redirect_status_code,
                            "Please use HTTPS protocol");
        else
            dp_conn_respond(c, 404, "no Route matched with those values");
        return;
    }
    c->svc = c->route->service;
    if (!c->svc) {
        dp_conn_respond(c, 503, "no Service found with those values");
        return;
    }
    dp_plugin_req *pr = &c->preq;
    preq_init(c, in.host);
    pr->route_id = c->route->id;
    pr->service_id = c->svc->id;
    pr->route_name = c->route->name;
    pr->service_name = c->svc->name;
    if (dp_plugin_req_begin(pr, &c->gen->plugins, (size_t)(c->route - c->gen->routes)) != 0) {
        dp_conn_respond(c, 500, "An unexpected error occurred");
        return;
    }
    if (c->req_has_body && !h->chunked && h->content_length <= DP_PLUGIN_MAX_BODY &&
        dp_plugin_wants_body(pr)) {
        body_buffer_start(c);
        return;
    }
    run_access(c);
}

/* Kong's strip_path (v0) upstream URI: service path + what follows the matched prefix. */
static dp_slice upstream_uri(dp_conn *c)
{
    dp_slice q = c->preq.up_query_set ? c->preq.up_query : c->parser.head.query;
    size_t cap = dp_router_upstream_path_cap(c->svc->path, c->norm_path.len + c->preq.up_path.len) +
                 q.len + 2;
    char *o = dp_arena_alloc(&c->arena, cap);
    if (!o)
        return (dp_slice){NULL, 0};
    long n = c->preq.up_path_set /* a plugin replaced the whole upstream path */
                 ? dp_router_upstream_path("/", 0, c->preq.up_path, 0, o, cap)
                 : dp_router_upstream_path(c->svc->path, c->route->strip_path, c->norm_path,
                                           c->prefix_len, o, cap);
    if (n < 0)
        return (dp_slice){NULL, 0};
    if (q.p) {
        o[n++] = '?';
        memcpy(o + n, q.p, q.len);
        n += q.len;
    }
    return (dp_slice){o, (size_t)n};
}

static dp_slice upstream_host(dp_conn *c)
{
    const dp_h1_head *h = &c->parser.head;
    if (c->preq.up_headers_set) { /* a plugin set Host (request-transformer): Kong sends it */
        const dp_slice *v = dp_plugin_req_header(&c->preq, "host");
        if (v && (h->host_index < 0 || v->p != h->headers[h->host_index].value.p))
            return *v;
    }
    if (c->route->preserve_host && h->host_index >= 0)
        return h->headers[h->host_index].value;
    if (c->svc->upstream && c->svc->upstream->host_header)
        return dp_slice_cstr(c->svc->upstream->host_header);
    int dflt = c->svc->https ? 443 : 80;
    if (c->target_port == dflt)
        return dp_slice_cstr(c->target_host);
    /* host ":" port by hand: snprintf cost as much as the rest of the request head */
    size_t hl = strlen(c->target_host);
    char *o = dp_arena_alloc(&c->arena, hl + 8);
    if (!o)
        return dp_slice_cstr(c->target_host);
    memcpy(o, c->target_host, hl);
    o[hl] = ':';
    /* the digits written from the end, their count found by comparisons, not divisions */
    static const unsigned pow10[] = {10, 100, 1000, 10000, 100000, 1000000};
    unsigned v = (unsigned)c->target_port;
    size_t nd = 1;
    while (nd <= 6 && v >= pow10[nd - 1])
        nd++;
    if (nd > 6) /* not a port: kept out of the head (it fits hl + 8 bytes) */
        return dp_slice_cstr(c->target_host);
    char *d = o + hl + 1 + nd;
    do {
        *--d = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return (dp_slice){o, hl + 1 + nd};
}

void dp_conn_upstream_ready(dp_conn *c)
{
    const dp_h1_head *h = dp_plugin_upstream_head(&c->preq, &c->parser.head);
    if (!h) {
        dp_conn_respond(c, 500, "An unexpected error occurred");
        return;
    }
    dp_upstream_req_info info = {
        .upstream_uri = upstream_uri(c),
        .host = upstream_host(c),
        .client_ip = dp_conn_client_ip(c),
        .scheme = c->l->ssl ? "https" : "http",
        .fwd_host = h == &c->parser.head ? c->host : host_of(h), /* plugins may set Host */
        .fwd_port = c->l->port,
        .fwd_path = c->norm_path,
        .fwd_prefix = (c->route->strip_path && c->prefix_len > 1)
                          ? (dp_slice){c->norm_path.p, c->prefix_len}
                          : (dp_slice){NULL, 0},
        .request_id = dp_conn_req_id(c),
        .headers = c->w->conf.headers,
        .raw = h == &c->parser.head,
    };
    /* headers plugins only appended (X-Consumer-*) go straight after the head */
    size_t cap = dp_rewrite_request_size(h, &info) + dp_plugin_up_append_size(&c->preq, h);
    char *buf = info.upstream_uri.p ? dp_arena_alloc(&c->arena, cap) : NULL;
    long n = buf ? dp_rewrite_request(h, &info, buf, cap) : -1;
    if (n >= 0)
        n = dp_plugin_up_append(&c->preq, h, buf, (size_t)n, cap);
    if (n < 0) {
        dp_conn_respond(c, 500, "An unexpected error occurred");
        return;
    }
    c->req_head = buf;
    c->req_head_len = (size_t)n;
    c->req_head_sent = 0;
    c->t_sent = uv_now(&c->w->loop);
    dp_conn_req_pump(c);
}

static int req_chunk_budget(void *ud)
{
    dp_conn *c = ud;
    return c->req_out.nslices >= DP_MAX_SLICES - 1;
}

static void req_body(void *ud, const char *at, size_t len)
{
    dp_conn *c = ud;
    if (c->buffering) { /* llhttp gives at most Content-Length bytes: body_buf's size */
        memcpy(c->body_buf + c->body_got, at, len);
        c->body_got += len;
        c->preq.bytes_in += len;
        return;
    }
    dp_out_body(&c->req_out, at, len);
    c->preq.bytes_in += len;
    if (c->preq.chain && !c->preq.response_status &&
        dp_plugin_run_request_body(&c->preq, at, len) == DP_PLUGIN_RESPOND)
        c->req_body_refused = 1; /* answered by dp_conn_req_pump once the parser returns */
}

static void req_written(dp_stream *s, int status, void *arg)
{
    dp_conn *c = arg;
    c->req_writing = 0;
    if (c->closing)
        return;
    if (status < 0) {
        /* the upstream went away while we were sending: nothing usable came back */
        if (!c->resp_head_sent)
            dp_conn_respond(c, 502, "An invalid response was received from the upstream server");
        else
            dp_conn_close(c);
        return;
    }
    if (c->rpos == c->rlen && c->state == C_ACTIVE && !c->req_done)
        c->rpos = c->rlen = c->body_base; /* keep the head: its slices stay valid */
    if (c->up)
        dp_up_arm_timer(c->up);
    if (c->req_done)
        dp_conn_maybe_finish(c);
    else
        dp_conn_req_pump(c);
}

void dp_conn_req_pump(dp_conn *c)
{
    dp_upconn *u = c->up;
    if (c->req_writing || !u || u->state != U_ACTIVE || c->closing)
        return;
    dp_out *o = &c->req_out;
    dp_out_reset(o, c->parser.head.chunked);
    int send_continue = 0;
    if (!c->req_head_sent) {
        dp_out_add(o, c->req_head, c->req_head_len);
        c->req_head_sent = 1;
        if (c->preq.up_body_set) /* a plugin's body instead of the client's (read before) */
            dp_out_add(o, c->preq.up_body.p, c->preq.up_body.len);
        else if (c->body_buffered)
            dp_out_add(o, c->body_buf, c->body_got);
        send_continue = c->parser.head.expect_continue && c->req_has_body && c->rpos == c->rlen &&
                        c->parser.head.http_minor >= 1 && !c->req_done;
    }
    if (!c->req_done) {
        if (c->rpos < c->rlen) {
            size_t used;
            dp_h1_result r = dp_h1_execute(&c->parser, c->rbuf + c->rpos, c->rlen - c->rpos, &used);
            c->rpos += used;
            if (r == DP_H1_ERROR) {
                /* The body turned out malformed (a bad chunk size) after the head, and maybe
                 * some body, went upstream: bodies stream, so the proxy can't wait for the whole
                 * body before forwarding (prevalidate_body only covers what came with the head).
                 * The upstream holds half a request, so its connection can never be reused:
                 * dp_conn_respond releases it as not reusable (closed, never pooled), which also
                 * tells the upstream the request was abandoned. The client gets 400 and a close
                 * (its stream can't be resynced); when the response already started,
                 * dp_conn_respond closes the client connection instead, the only signal left. */
                c->close_after = 1;
                dp_conn_respond(c, 400, "Bad request");
                return;
            }
            if (c->req_body_refused) { /* a request_body plugin refused: nothing more goes up */
                c->close_after = 1;
                dp_conn_respond(c, c->preq.response_status, c->preq.response_message);
                return;
            }
        }
        if (c->parser.msg_complete) {
            dp_out_end(o);
            c->req_done = 1;
            dp_conn_timer_clear(c);
        }
    }
    if (o->n) {
        c->req_writing = 1;
        int rc = dp_stream_write(&u->s, o->iov, o->n, req_written, c);
        if (rc) {
            c->req_writing = 0;
            dp_conn_respond(c, 502, "An invalid response was received from the upstream server");
            return;
        }
        dp_up_arm_timer(u);
    } else if (!c->req_done) {
        if (c->rpos == c->rlen)
            c->rpos = c->rlen = c->body_base;
        /* the client is the slow side now: client_body_timeout, not the service's write_timeout
         * (an early upstream response still arms the upstream timer when it arrives) */
        dp_up_timer_clear(u);
        dp_conn_timer_set(c, c->w->conf.client_body_timeout);
        want_read(c);
    }
    if (send_continue) {
        static const uv_buf_t b = {(char *)continue_100, sizeof(continue_100) - 1};
        client_write(c, &b, 1);
    }
}

/* Called whenever a direction finishes: the request ends when both are done. */
void dp_conn_maybe_finish(dp_conn *c)
{
    if (c->closing || c->req_writing || c->resp_writing || c->cwrites)
        return;
    if (c->state == C_TUNNEL)
        return;
    if (!c->resp_done)
        return;
    if (!c->req_done) {
        /* the upstream answered before the whole body arrived: the rest can't be resynced */
        c->close_after = 1;
    }
    /* log phase */
    if (c->gen) {
        c->preq.status = c->status;
        c->preq.latency_ms = (long)(uv_now(&c->w->loop) - c->t_start);
        dp_plugin_run_log(&c->gen->plugins, &c->preq);
    }
    atomic_fetch_add_explicit(&c->w->stats.handled, 1, memory_order_relaxed);
    if (c->up) {
        dp_upconn *u = c->up;
        int reusable = c->req_done && !c->resp_eof_close && u->parser.msg_complete &&
                       u->parser.head.keepalive && u->rpos == u->rlen && !u->s.eof;
        c->up = NULL;
        u->conn = NULL;
        dp_up_release(u, reusable);
    }
    int keep = c->parser.head.keepalive && !c->close_after && !c->w->draining && c->req_done &&
               c->w->conf.keepalive_timeout;
    dp_generation_unref(c->gen);
    c->gen = NULL;
    dp_arena_reset(&c->arena);
    memset(&c->preq, 0, sizeof(c->preq)); /* its pointers were into the arena */
    c->req_body_refused = 0;
    c->buffering = c->body_buffered = 0;
    if (!keep) {
        if (c->state == C_RESPONDING || c->close_after)
            conn_linger(c);
        else
            dp_conn_close(c);
        return;
    }
    dp_h1_next(&c->parser);
    c->req_has_body = c->req_head_sent = c->req_done = 0;
    c->resp_head_sent = c->resp_done = c->resp_chunked = c->resp_eof_close = 0;
    c->tunnel_pending = 0;
    c->status = 0;
    c->req_id[0] = 0;
    dp_conn_set_state(c, C_IDLE);
    if (c->rpos == c->rlen) {
        dp_worker_put_buf(c->w, c->rbuf);
        c->rbuf = NULL;
        c->rpos = c->rlen = 0;
    } else if (c->rpos) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    dp_conn_timer_set(c, c->w->conf.keepalive_timeout);
    conn_process(c);
}

static void conn_process(dp_conn *c)
{
    if (c->closing)
        return;
    if (c->state == C_IDLE || c->state == C_HEAD) {
        if (c->rpos == c->rlen) {
            want_read(c);
            return;
        }
        if (c->state == C_IDLE) {
            if (c->rpos) { /* a head must start at the buffer's start: it may need all of it */
                memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
                c->rlen -= c->rpos;
                c->rpos = 0;
            }
            dp_conn_set_state(c, C_HEAD);
            c->t_start = uv_now(&c->w->loop);
            dp_conn_timer_set(c, c->w->conf.client_header_timeout);
            dp_arena_init(&c->arena, c->arena_buf, sizeof(c->arena_buf));
        }
        size_t used;
        dp_h1_result r = dp_h1_execute(&c->parser, c->rbuf + c->rpos, c->rlen - c->rpos, &used);
        c->rpos += used;
        if (r == DP_H1_ERROR) {
            sl_debug("client %s: %d %s", c->client_ip, c->parser.error_status,
                     c->parser.error ? c->parser.error : "");
            dp_conn_respond(c, c->parser.error_status,
                            c->parser.error_status == 431   ? "Request header fields too large"
                            : c->parser.error_status == 414 ? "Request-URI too long"
                            : c->parser.error_status == 505 ? "HTTP version not supported"
                                                            : "Bad request");
            return;
        }
        if (c->parser.head_complete) {
            /* reading goes on: bytes that arrive now are kept (or reading stops then) */
            dp_conn_timer_clear(c);
            start_request(c);
            return;
        }
        if (c->rlen == DP_RBUF_SIZE) {
            dp_conn_respond(c, 431, "Request header fields too large");
            return;
        }
        want_read(c);
        return;
    }
    if (c->state == C_ACTIVE) {
        if (c->buffering)
            body_buffer(c);
        else
            dp_conn_req_pump(c);
    }
}

static void conn_on_read(dp_stream *s, ssize_t n)
{
    dp_conn *c = s->owner;
    if (c->closing)
        return;
    if (c->state == C_LINGER) {
        if (n < 0)
            dp_conn_close(c);
        return;
    }
    if (c->state == C_TUNNEL) {
        dp_tunnel_client_read(c, n);
        return;
    }
    if (n == UV_ENOBUFS) { /* the buffer is full: the bytes wait in the kernel */
        dp_stream_read_stop(&c->s);
        return;
    }
    if (n < 0) {
        /* EOF between requests is normal; mid-request it aborts (nothing to answer to) */
        dp_conn_close(c);
        return;
    }
    c->rlen += (size_t)n;
    if (c->state == C_ACTIVE && !c->req_done)
        dp_conn_timer_set(c, c->w->conf.client_body_timeout);
    if (c->state == C_ACTIVE && !c->buffering &&
        (c->req_done || c->req_writing || !c->req_head_sent)) {
        dp_stream_read_stop(&c->s); /* kept for later: pipelined, or body not wanted yet */
        return;
    }
    conn_process(c);
}

static void on_handshake(dp_stream *s, int status)
{
    dp_conn *c = s->owner;
    if (status < 0) {
        dp_conn_close(c);
        return;
    }
    dp_conn_set_state(c, C_IDLE);
    dp_conn_timer_set(c, c->w->conf.client_header_timeout);
}

void dp_conn_accept(dp_listener *l)
{
    dp_worker *w = l->w;
    dp_conn *c = malloc(sizeof(*c));
    if (!c)
        return;
    memset(c, 0, offsetof(dp_conn, arena_buf));
    c->w = w;
    c->l = l;
    dp_link_init(&c->link);
    if (dp_stream_init(&c->s, &w->loop, c, conn_get_buf, conn_on_read) != 0) {
        free(c);
        return;
    }
    uv_timer_init(&w->loop, &c->timer);
    c->timer.data = c;
    c->s.tcp.data = &c->s;
    dp_h1_init(&c->parser, DP_H1_REQUEST, req_body, req_chunk_budget, c);
    dp_arena_init(&c->arena, c->arena_buf, sizeof(c->arena_buf));
    dp_link_insert(&w->conns, &c->link);
    atomic_fetch_add_explicit(&w->stats.active, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->stats.accepted, 1, memory_order_relaxed);
    if (uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&c->s.tcp) != 0) {
        dp_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->s.tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->s.tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            uv_ip4_name((struct sockaddr_in *)&ss, c->client_ip, sizeof(c->client_ip));
        else
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->client_ip, sizeof(c->client_ip));
    }
    c->client_ip_len = (uint8_t)strlen(c->client_ip);
    c->t_start = uv_now(&w->loop);
    if (l->ssl) {
        if (dp_stream_tls_server(&c->s, w->server_ctx) != 0) {
            dp_conn_close(c);
            return;
        }
        c->gen = dp_generation_ref(w->gen); /* certificates of the generation at accept time */
        dp_tls_set_certs(c->s.ssl, c->gen ? c->gen->certs : NULL);
        c->s.on_handshake = on_handshake;
        dp_conn_set_state(c, C_HANDSHAKE);
    } else {
        dp_conn_set_state(c, C_IDLE);
    }
    dp_conn_timer_set(c, c->w->conf.client_header_timeout);
    want_read(c);
}

void dp_conn_drain(dp_conn *c)
{
    if (c->state == C_IDLE || c->state == C_HANDSHAKE)
        dp_conn_close(c);
}
