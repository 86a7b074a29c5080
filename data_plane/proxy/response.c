/* Upstream response to the client: head rewrite, body streaming (re-chunked when the length is
 * unknown), the end of the response, and the tunnel after a 101. */
#include <stdio.h>
#include <string.h>

#include "data_plane/proxy/proxy.h"
#include "proto/log.h"

static const char bad_response[] = "An invalid response was received from the upstream server";

static void resp_body(void *ud, const char *at, size_t len)
{
    dp_conn *c = ud;
    dp_slice chunk = {at, len};
    if (dp_plugin_has_body_filter(&c->preq)) /* plugins may replace or hold back the piece */
        dp_plugin_run_body_filter(&c->preq, &chunk, 0);
    dp_out_body(&c->resp_out, chunk.p, chunk.len);
    c->preq.bytes_out += chunk.len;
}

static int resp_chunk_budget(void *ud)
{
    dp_conn *c = ud;
    return c->resp_out.nslices >= DP_MAX_SLICES - 1;
}

void dp_resp_begin(dp_conn *c)
{
    dp_upconn *u = c->up;
    dp_h1_init(&u->parser, DP_H1_RESPONSE, resp_body, resp_chunk_budget, c);
    u->parser.skip_body = c->parser.head.method_id == HTTP_HEAD;
    u->rpos = u->rlen = 0;
    u->got_bytes = 0;
}

static void resp_written(dp_stream *s, int status, void *arg)
{
    dp_conn *c = arg;
    c->resp_writing = 0;
    if (c->closing)
        return;
    if (status < 0) {
        dp_conn_close(c);
        return;
    }
    if (c->tunnel_pending) {
        dp_tunnel_start(c);
        return;
    }
    if (c->resp_done) {
        dp_conn_maybe_finish(c);
        return;
    }
    dp_resp_pump(c);
}

/* The client head for the upstream head just parsed. Returns 0, or -1 (answered 502). */
static int client_head(dp_conn *c, dp_out *o)
{
    dp_upconn *u = c->up;
    const dp_h1_head *q = &c->parser.head;
    /* header_filter first: plugins may change the headers and whether the body keeps its
     * length */
    c->preq.upstream_latency_ms = (long)(uv_now(&c->w->loop) - c->t_sent); /* metrics, logs */
    /* our headers go in before header_filter when plugins run it, so they can remove them */
    unsigned own =
        dp_plugin_own_headers(&c->preq, &u->parser.head, c->w->conf.headers,
                              c->preq.upstream_latency_ms, (long)(c->t_sent - c->t_start));
    const dp_h1_head *rh = dp_plugin_response_filter(&c->preq, &u->parser.head);
    if (!rh) {
        dp_conn_respond(c, 500, "An unexpected error occurred");
        return -1;
    }
    int st = rh->status;
    int nobody = q->method_id == HTTP_HEAD || st == 204 || st == 304 || rh->upgrade;
    c->resp_chunked = 0;
    if (!nobody && rh->content_length < 0) {
        if (q->http_minor >= 1)
            c->resp_chunked = 1;
        else
            c->close_after = 1; /* HTTP/1.0 client: the end of the body is the close */
        if (!rh->chunked)
            c->resp_eof_close = 1;
    }
    if (rh->upgrade && !q->upgrade) {
        dp_conn_respond(c, 502, bad_response);
        return -1;
    }
    c->status = st;
    c->t_head = uv_now(&c->w->loop);
    dp_client_resp_info info = {
        .client_minor = q->http_minor,
        .head_request = q->method_id == HTTP_HEAD,
        .close = c->close_after || c->w->draining || !q->keepalive || !c->w->conf.keepalive_timeout,
        .chunked = c->resp_chunked,
        .upstream_ms = (long)(c->t_head - c->t_sent),
        .proxy_ms = (long)(c->t_sent - c->t_start),
        .request_id = dp_conn_req_id(c),
        .headers = own,
        .raw = rh == &u->parser.head,
    };
    if (info.close)
        c->close_after = 1;
    /* plugins' response headers that need no merging go straight after the head */
    size_t cap = dp_rewrite_response_size(rh) + dp_plugin_resp_append_size(&c->preq);
    char *buf = dp_arena_alloc(&c->arena, cap);
    long n = buf ? dp_rewrite_response(rh, &info, buf, cap) : -1;
    if (n >= 0)
        n = dp_plugin_resp_append(&c->preq, buf, (size_t)n, cap);
    if (n < 0) {
        dp_conn_respond(c, 502, bad_response);
        return -1;
    }
    dp_out_reset(o, c->resp_chunked);
    dp_out_add(o, buf, (size_t)n);
    c->resp_head_sent = 1;
    return 0;
}

void dp_resp_pump(dp_conn *c)
{
    dp_upconn *u = c->up;
    if (!u || c->resp_writing || c->closing || c->resp_done || c->state != C_ACTIVE)
        return;
    dp_out *o = &c->resp_out;
    dp_h1 *p = &u->parser;
    dp_out_reset(o, c->resp_chunked);
    for (;;) {
        if (p->head_complete && !c->resp_head_sent) {
            int st = p->head.status;
            if (st >= 100 && st < 200 && st != 101) {
                /* interim responses (100 Continue: we sent our own) are not forwarded */
                int skip = p->skip_body;
                dp_h1_next(p);
                p->skip_body = skip;
                continue;
            }
            if (client_head(c, o) != 0)
                return;
            continue;
        }
        if (p->msg_complete) {
            if (p->head.upgrade) {
                c->tunnel_pending = 1;
                dp_out_add(o, u->rbuf + u->rpos, u->rlen - u->rpos);
                u->rpos = u->rlen;
            } else {
                if (dp_plugin_has_body_filter(&c->preq)) { /* what plugins held back */
                    if (dp_out_full(o))
                        break; /* after this write: the flush needs a slice */
                    dp_slice rest = {NULL, 0};
                    dp_plugin_run_body_filter(&c->preq, &rest, 1);
                    dp_out_body(o, rest.p, rest.len);
                    c->preq.bytes_out += rest.len;
                }
                dp_out_end(o);
                c->resp_done = 1;
            }
            break;
        }
        if (u->rpos >= u->rlen || dp_out_full(o))
            break;
        size_t used;
        dp_h1_result r = dp_h1_execute(p, u->rbuf + u->rpos, u->rlen - u->rpos, &used);
        u->rpos += used;
        if (r == DP_H1_ERROR) {
            sl_warn("upstream %s:%d: bad response: %s", c->target_host, c->target_port,
                    p->error ? p->error : "");
            u->s.eof = 1; /* never reuse */
            dp_conn_respond(c, 502, bad_response);
            return;
        }
        if (!used && !p->msg_complete && !(p->head_complete && !c->resp_head_sent))
            break;
    }
    if (o->n) {
        c->resp_writing = 1; /* reading stops only if more arrives meanwhile (up_on_read) */
        if (dp_stream_write(&c->s, o->iov, o->n, resp_written, c) != 0) {
            c->resp_writing = 0;
            dp_conn_close(c);
        }
        return;
    }
    if (c->resp_done) {
        dp_conn_maybe_finish(c);
        return;
    }
    if (u->rpos == u->rlen && !p->in_head) /* a head read in part stays: the rest follows it */
        u->rpos = u->rlen = 0;
    if (u->rlen == DP_RBUF_SIZE) { /* a head that doesn't fit */
        dp_conn_respond(c, 502, bad_response);
        return;
    }
    dp_stream_read_start(&u->s);
}

/* The upstream closed or failed while serving c. */
void dp_resp_upstream_gone(dp_conn *c, ssize_t n)
{
    dp_upconn *u = c->up;
    dp_h1 *p = &u->parser;
    u->s.eof = 1;
    if (n == UV_EOF && p->head_complete && !p->msg_complete && llhttp_message_needs_eof(&p->p)) {
        if (dp_h1_finish(p) == DP_H1_OK && p->msg_complete) {
            c->resp_eof_close = 1;
            dp_resp_pump(c);
            return;
        }
    }
    if (!u->got_bytes && u->reused && !c->req_has_body && !c->resp_head_sent) {
        /* a pooled connection the upstream had closed: try again on a fresh one */
        c->up = NULL;
        u->conn = NULL;
        dp_up_release(u, 0);
        c->req_head_sent = 0;
        dp_up_start(c);
        return;
    }
    if (!c->resp_head_sent)
        dp_conn_respond(c, 502, bad_response);
    else
        dp_conn_close(c);
}

static void c2u_written(dp_stream *s, int status, void *arg)
{
    dp_conn *c = arg;
    c->c2u_writing = 0;
    if (c->closing)
        return;
    if (status < 0) {
        dp_conn_close(c);
        return;
    }
    c->rpos = c->rlen = 0;
    dp_stream_read_start(&c->s);
    if (c->up)
        dp_up_arm_timer(c->up);
}

static void u2c_written(dp_stream *s, int status, void *arg)
{
    dp_conn *c = arg;
    c->resp_writing = 0;
    if (c->closing)
        return;
    if (status < 0 || !c->up) {
        dp_conn_close(c);
        return;
    }
    c->up->rpos = c->up->rlen = 0;
    dp_stream_read_start(&c->up->s);
    dp_up_arm_timer(c->up);
}

static void c2u_send(dp_conn *c)
{
    uv_buf_t b = uv_buf_init(c->rbuf + c->rpos, (unsigned)(c->rlen - c->rpos));
    c->c2u_writing = 1;
    dp_stream_read_stop(&c->s);
    if (dp_stream_write(&c->up->s, &b, 1, c2u_written, c) != 0) {
        c->c2u_writing = 0;
        dp_conn_close(c);
    }
}

void dp_tunnel_start(dp_conn *c)
{
    dp_upconn *u = c->up;
    c->tunnel_pending = 0;
    dp_conn_set_state(c, C_TUNNEL);
    dp_conn_timer_clear(c);
    u->rpos = u->rlen = 0;
    dp_stream_read_start(&u->s);
    dp_up_arm_timer(u);
    if (c->rbuf && c->rpos < c->rlen) {
        c2u_send(c);
    } else {
        c->rpos = c->rlen = 0;
        dp_stream_read_start(&c->s);
    }
}

void dp_tunnel_client_read(dp_conn *c, ssize_t n)
{
    if (n < 0 || !c->up) {
        dp_conn_close(c);
        return;
    }
    c->rlen += (size_t)n;
    c2u_send(c);
}

void dp_tunnel_upstream_read(dp_conn *c, ssize_t n)
{
    dp_upconn *u = c->up;
    if (n < 0) {
        dp_conn_close(c);
        return;
    }
    u->rlen += (size_t)n;
    uv_buf_t b = uv_buf_init(u->rbuf, (unsigned)u->rlen);
    c->resp_writing = 1;
    dp_stream_read_stop(&u->s);
    if (dp_stream_write(&c->s, &b, 1, u2c_written, c) != 0) {
        c->resp_writing = 0;
        dp_conn_close(c);
    }
}
