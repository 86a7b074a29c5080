#include "data_plane/http/rewrite.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "data_plane/util/wbuf.h"
#include "proto/http_status.h"
#include "proto/version.h"

#define VIA_TOKEN "1.1 sluice/" SL_VERSION

/* name_colon is "Name: " (one write for both). */
static void put_header_n(dp_wbuf *w, const char *name_colon, size_t nlen, dp_slice value)
{
    dp_wbuf_put(w, name_colon, nlen);
    dp_wbuf_slice(w, value);
    dp_wbuf_put(w, "\r\n", 2);
}
#define put_header(w, lit, value) put_header_n(w, lit ": ", sizeof(lit ": ") - 1, value)

/* Called for every header of every message both ways: the length picks the candidates. */
int dp_is_hop_by_hop(dp_slice n)
{
#define IS(lit) DP_H1_NAME_IS(n, lit)
    switch (n.len) {
    case 2:
        return IS("te");
    case 7:
        return IS("trailer") || IS("upgrade");
    case 10:
        return IS("connection") || IS("keep-alive");
    case 16:
        return IS("proxy-connection");
    case 17:
        return IS("transfer-encoding");
    case 18:
        return IS("proxy-authenticate");
    default:
        return 0;
    }
#undef IS
}

/* What the rewrites do with a field, by name: one switch on the length per field instead of a
 * dozen case-insensitive compares. */
enum {
    FK_OTHER,   /* forwarded as is */
    FK_HOP,     /* hop-by-hop: never forwarded */
    FK_HOST,    /* ours (requests) */
    FK_CLEN,    /* ours when we frame the body */
    FK_EXPECT,  /* answered by us (requests) */
    FK_FWD,     /* X-Real-IP, X-Forwarded-Proto/Host/Port/Path/Prefix: ours (requests) */
    FK_XFF,     /* X-Forwarded-For: extended */
    FK_VIA,     /* extended */
    FK_REQ_ID,  /* X-Sluice-Request-Id: ours */
    FK_UPGRADE, /* hop-by-hop, but forwarded with an upgrade */
};

static int field_kind(dp_slice n)
{
#define IS(lit) DP_H1_NAME_IS(n, lit)
    switch (n.len) {
    case 2:
        return IS("te") ? FK_HOP : FK_OTHER;
    case 3:
        return IS("via") ? FK_VIA : FK_OTHER;
    case 4:
        return IS("host") ? FK_HOST : FK_OTHER;
    case 6:
        return IS("expect") ? FK_EXPECT : FK_OTHER;
    case 7:
        return IS("upgrade") ? FK_UPGRADE : IS("trailer") ? FK_HOP : FK_OTHER;
    case 9:
        return IS("x-real-ip") ? FK_FWD : FK_OTHER;
    case 10:
        return IS("connection") || IS("keep-alive") ? FK_HOP : FK_OTHER;
    case 14:
        return IS("content-length") ? FK_CLEN : FK_OTHER;
    case 15:
        return IS("x-forwarded-for") ? FK_XFF : FK_OTHER;
    case 16:
        return IS("proxy-connection") ? FK_HOP
               : IS("x-forwarded-host") || IS("x-forwarded-port") || IS("x-forwarded-path")
                   ? FK_FWD
                   : FK_OTHER;
    case 17:
        return IS("transfer-encoding") ? FK_HOP : IS("x-forwarded-proto") ? FK_FWD : FK_OTHER;
    case 18:
        return IS("proxy-authenticate") ? FK_HOP : IS("x-forwarded-prefix") ? FK_FWD : FK_OTHER;
    case 19:
        return IS("x-sluice-request-id") ? FK_REQ_ID : FK_OTHER;
    default:
        return FK_OTHER;
    }
#undef IS
}

/* Field lines going out. A field whose bytes in the parsed head are exactly "name: value\r\n"
 * (nearly all) is not rebuilt: consecutive such lines go out as one copy of the original bytes.
 * raw says every slice of the head points into the parsed bytes, so looking at the bytes
 * around a slice is safe (a head plugins rebuilt has slices elsewhere). */
typedef struct {
    dp_wbuf *w;
    int raw;
    const char *run, *run_end; /* original bytes not copied yet */
} field_out;

static void fields_flush(field_out *f)
{
    if (f->run != f->run_end)
        dp_wbuf_put(f->w, f->run, (size_t)(f->run_end - f->run));
    f->run = f->run_end = NULL;
}

static void field_put(field_out *f, const dp_header *h)
{
    const char *n = h->name.p, *v = h->value.p;
    size_t nl = h->name.len, vl = h->value.len;
    if (f->raw && vl && v == n + nl + 2 && n[nl] == ':' && n[nl + 1] == ' ' && v[vl] == '\r' &&
        v[vl + 1] == '\n') {
        if (n != f->run_end) {
            fields_flush(f);
            f->run = n;
        }
        f->run_end = v + vl + 2;
        return;
    }
    fields_flush(f);
    dp_wbuf_put(f->w, n, nl);
    dp_wbuf_put(f->w, ": ", 2);
    dp_wbuf_put(f->w, v, vl);
    dp_wbuf_put(f->w, "\r\n", 2);
}

/* The Connection header, or NULL when it names only hop-by-hop headers anyway (the usual
 * "keep-alive", "close" or "upgrade"), so no other header needs checking against it. */
static const dp_header *connection_naming_others(const dp_h1_head *m)
{
    const dp_header *conn = NULL;
    for (int i = 0; i < m->nheaders && !conn; i++)
        if (DP_H1_NAME_IS(m->headers[i].name, "connection"))
            conn = &m->headers[i];
    if (!conn)
        return NULL;
    const char *p = conn->value.p, *end = p + conn->value.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *t = p;
        while (p < end && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        dp_slice tok = {t, (size_t)(p - t)};
        if (tok.len && !DP_H1_NAME_IS(tok, "close") && !dp_is_hop_by_hop(tok))
            return conn;
    }
    return NULL;
}

/* Headers named in Connection are hop-by-hop too (RFC 9110 7.6.1). */
static int named_in_connection(const dp_header *conn, dp_slice name)
{
    if (!conn || name.len == 0 || name.len > 64)
        return 0;
    char n[65];
    memcpy(n, name.p, name.len);
    n[name.len] = 0;
    return dp_h1_has_token(conn->value, n);
}

size_t dp_rewrite_request_size(const dp_h1_head *req, const dp_upstream_req_info *info)
{
    size_t n = 512 + req->method.len + info->upstream_uri.len + info->host.len +
               3 * info->client_ip.len + info->fwd_host.len + info->fwd_path.len +
               info->fwd_prefix.len + info->request_id.len;
    for (int i = 0; i < req->nheaders; i++)
        n += req->headers[i].name.len + req->headers[i].value.len + 4;
    return n;
}

long dp_rewrite_request(const dp_h1_head *req, const dp_upstream_req_info *info, char *out,
                        size_t cap)
{
    dp_wbuf w = {out, out + cap, 0};
    const dp_header *conn = connection_naming_others(req);
    const dp_header *xff = NULL, *via = NULL;

    dp_wbuf_slice(&w, req->method);
    dp_wbuf_put(&w, " ", 1);
    dp_wbuf_slice(&w, info->upstream_uri);
    dp_wbuf_puts(&w, " HTTP/1.1\r\n");
    put_header(&w, "Host", info->host);

    field_out f = {&w, info->raw, NULL, NULL};
    for (int i = 0; i < req->nheaders; i++) {
        const dp_header *h = &req->headers[i];
        switch (field_kind(h->name)) {
        case FK_HOP:
        case FK_UPGRADE:
        case FK_HOST:
        case FK_CLEN:
        case FK_EXPECT:
        case FK_FWD:
            continue;
        case FK_REQ_ID:
            if (info->request_id.len)
                continue;
            break;
        case FK_XFF: /* several X-Forwarded-For lines: the last one wins below, like nginx */
            if (!(conn && named_in_connection(conn, h->name)))
                xff = h;
            continue;
        case FK_VIA:
            if (!(conn && named_in_connection(conn, h->name)))
                via = h;
            continue;
        }
        if (conn && named_in_connection(conn, h->name))
            continue;
        field_put(&f, h);
    }
    fields_flush(&f);

    if (req->upgrade) {
        const dp_header *up = dp_h1_find(req, "upgrade");
        if (up)
            put_header(&w, "Upgrade", up->value);
        dp_wbuf_puts(&w, "Connection: upgrade\r\n");
    }
    if (req->chunked)
        dp_wbuf_puts(&w, "Transfer-Encoding: chunked\r\n");
    else if (req->content_length >= 0) {
        dp_wbuf_puts(&w, "Content-Length: ");
        dp_wbuf_num(&w, req->content_length);
        dp_wbuf_put(&w, "\r\n", 2);
    }

    /* each line's CRLF goes out with the next line's name: one write per piece, not four per
     * line (this block is a dozen lines on every request) */
    dp_wbuf_puts(&w, "X-Forwarded-For: ");
    if (xff && xff->value.len) {
        dp_wbuf_slice(&w, xff->value);
        dp_wbuf_put(&w, ", ", 2);
    }
    dp_wbuf_slice(&w, info->client_ip);
    dp_wbuf_puts(&w, "\r\nX-Forwarded-Proto: ");
    dp_wbuf_puts(&w, info->scheme);
    dp_wbuf_puts(&w, "\r\nX-Forwarded-Host: ");
    dp_wbuf_slice(&w, info->fwd_host);
    dp_wbuf_puts(&w, "\r\nX-Forwarded-Port: ");
    dp_wbuf_num(&w, info->fwd_port);
    dp_wbuf_puts(&w, "\r\nX-Forwarded-Path: ");
    dp_wbuf_slice(&w, info->fwd_path);
    if (info->fwd_prefix.len) {
        dp_wbuf_puts(&w, "\r\nX-Forwarded-Prefix: ");
        dp_wbuf_slice(&w, info->fwd_prefix);
    }
    dp_wbuf_puts(&w, "\r\nX-Real-IP: ");
    dp_wbuf_slice(&w, info->client_ip);
    if (info->headers & DP_HDR_VIA) {
        if (via && via->value.len) {
            dp_wbuf_puts(&w, "\r\nVia: ");
            dp_wbuf_slice(&w, via->value);
            dp_wbuf_puts(&w, ", " VIA_TOKEN "\r\n");
        } else {
            dp_wbuf_puts(&w, "\r\nVia: " VIA_TOKEN "\r\n");
        }
    } else if (via) {
        dp_wbuf_puts(&w, "\r\nVia: ");
        dp_wbuf_slice(&w, via->value);
        dp_wbuf_put(&w, "\r\n", 2);
    } else {
        dp_wbuf_put(&w, "\r\n", 2);
    }
    if (info->request_id.len && (info->headers & DP_HDR_REQUEST_ID))
        put_header(&w, "X-Sluice-Request-Id", info->request_id);
    dp_wbuf_put(&w, "\r\n", 2);
    return w.overflow ? -1 : (long)(w.p - out);
}

size_t dp_rewrite_response_size(const dp_h1_head *resp)
{
    size_t n = 512 + resp->url.len;
    for (int i = 0; i < resp->nheaders; i++)
        n += resp->headers[i].name.len + resp->headers[i].value.len + 4;
    return n;
}

long dp_rewrite_response(const dp_h1_head *resp, const dp_client_resp_info *info, char *out,
                         size_t cap)
{
    dp_wbuf w = {out, out + cap, 0};
    const dp_header *conn = connection_naming_others(resp);
    const dp_header *via = NULL;
    dp_wbuf_puts(&w, info->client_minor ? "HTTP/1.1 " : "HTTP/1.0 ");
    dp_wbuf_num(&w, resp->status);
    dp_wbuf_put(&w, " ", 1);
    if (resp->url.len)
        dp_wbuf_slice(&w, resp->url);
    else
        dp_wbuf_puts(&w, sl_http_reason(resp->status));
    dp_wbuf_put(&w, "\r\n", 2);
    field_out f = {&w, info->raw, NULL, NULL};
    for (int i = 0; i < resp->nheaders; i++) {
        const dp_header *h = &resp->headers[i];
        switch (field_kind(h->name)) {
        case FK_UPGRADE:
            if (resp->upgrade) {
                fields_flush(&f);
                put_header(&w, "Upgrade", h->value);
            }
            continue;
        case FK_HOP:
            continue;
        case FK_CLEN: /* HEAD, 204 and 304 keep the Content-Length the upstream gave */
            if (info->chunked)
                continue;
            break;
        case FK_VIA:
            if (!(conn && named_in_connection(conn, h->name)))
                via = h;
            continue;
        case FK_REQ_ID:
            if (info->request_id.len)
                continue;
            break;
        }
        if (conn && named_in_connection(conn, h->name))
            continue;
        field_put(&f, h);
    }
    fields_flush(&f);
    if (resp->upgrade)
        dp_wbuf_puts(&w, "Connection: upgrade\r\n");
    else if (info->close)
        dp_wbuf_puts(&w, "Connection: close\r\n");
    else if (info->client_minor == 0)
        dp_wbuf_puts(&w, "Connection: keep-alive\r\n");
    if (info->chunked)
        dp_wbuf_puts(&w, "Transfer-Encoding: chunked\r\n");
    if (info->headers & DP_HDR_VIA) {
        if (via && via->value.len) {
            dp_wbuf_puts(&w, "Via: ");
            dp_wbuf_slice(&w, via->value);
            dp_wbuf_puts(&w, ", " VIA_TOKEN "\r\n");
        } else {
            dp_wbuf_puts(&w, "Via: " VIA_TOKEN "\r\n");
        }
    } else if (via) {
        put_header(&w, "Via", via->value);
    }
    if (info->headers & DP_HDR_LATENCY) {
        /* the CRLF of the first goes with the second's name: fewer writes per response */
        if (info->upstream_ms >= 0) {
            dp_wbuf_puts(&w, "X-Sluice-Upstream-Latency: ");
            dp_wbuf_num(&w, info->upstream_ms);
            if (info->proxy_ms >= 0) {
                dp_wbuf_puts(&w, "\r\nX-Sluice-Proxy-Latency: ");
                dp_wbuf_num(&w, info->proxy_ms);
            }
            dp_wbuf_put(&w, "\r\n", 2);
        } else if (info->proxy_ms >= 0) {
            dp_wbuf_puts(&w, "X-Sluice-Proxy-Latency: ");
            dp_wbuf_num(&w, info->proxy_ms);
            dp_wbuf_put(&w, "\r\n", 2);
        }
    }
    if (info->request_id.len && (info->headers & DP_HDR_REQUEST_ID))
        put_header(&w, "X-Sluice-Request-Id", info->request_id);
    dp_wbuf_put(&w, "\r\n", 2);
    return w.overflow ? -1 : (long)(w.p - out);
}
