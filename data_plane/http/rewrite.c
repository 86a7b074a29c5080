#include "data_plane/http/rewrite.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proto/version.h"

#define VIA_TOKEN "1.1 sluice/" SL_VERSION

typedef struct {
    char *p, *end;
    int overflow;
} wbuf;

static void put(wbuf *w, const char *s, size_t n)
{
    if (w->overflow || (size_t)(w->end - w->p) < n) {
        w->overflow = 1;
        return;
    }
    memcpy(w->p, s, n);
    w->p += n;
}

static inline void puts_(wbuf *w, const char *s)
{
    put(w, s, strlen(s)); /* inlined: strlen of a literal folds to a constant */
}

static void put_slice(wbuf *w, dp_slice s)
{
    put(w, s.p, s.len);
}

/* Decimal without snprintf: heads carry several numbers and printf's setup dominated them. */
static void put_num(wbuf *w, long long v)
{
    char b[24];
    char *e = b + sizeof(b), *p = e;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    put(w, p, (size_t)(e - p));
}

static void put_header_n(wbuf *w, const char *name, size_t nlen, dp_slice value)
{
    put(w, name, nlen);
    put(w, ": ", 2);
    put_slice(w, value);
    put(w, "\r\n", 2);
}
#define put_header(w, lit, value) put_header_n(w, lit, sizeof(lit) - 1, value)

/* Called for every header of every message both ways: the length picks the candidates. */
int dp_is_hop_by_hop(dp_slice n)
{
#define IS(lit) (strncasecmp(n.p, lit, sizeof(lit) - 1) == 0)
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

/* The Connection header, or NULL when it names only hop-by-hop headers anyway (the usual
 * "keep-alive", "close" or "upgrade"), so no other header needs checking against it. */
static const dp_header *connection_naming_others(const dp_h1_head *m)
{
    const dp_header *conn = dp_h1_find(m, "connection");
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
        if (tok.len && !dp_slice_ieq(tok, "close") && !dp_is_hop_by_hop(tok))
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
    wbuf w = {out, out + cap, 0};
    const dp_header *conn = connection_naming_others(req);
    const dp_header *xff = NULL, *via = NULL;

    put_slice(&w, req->method);
    put(&w, " ", 1);
    put_slice(&w, info->upstream_uri);
    puts_(&w, " HTTP/1.1\r\n");
    put_header(&w, "Host", info->host);

    for (int i = 0; i < req->nheaders; i++) {
        const dp_header *h = &req->headers[i];
        dp_slice n = h->name;
        if (dp_is_hop_by_hop(n) || named_in_connection(conn, n))
            continue;
        if (dp_slice_ieq(n, "host") || dp_slice_ieq(n, "content-length") ||
            dp_slice_ieq(n, "expect") || dp_slice_ieq(n, "x-real-ip") ||
            dp_slice_ieq(n, "x-forwarded-proto") || dp_slice_ieq(n, "x-forwarded-host") ||
            dp_slice_ieq(n, "x-forwarded-port") || dp_slice_ieq(n, "x-forwarded-path") ||
            dp_slice_ieq(n, "x-forwarded-prefix") ||
            (info->request_id.len && dp_slice_ieq(n, "x-sluice-request-id")))
            continue;
        if (dp_slice_ieq(n, "x-forwarded-for")) {
            xff = h; /* several X-Forwarded-For lines: the last one wins below, like nginx */
            continue;
        }
        if (dp_slice_ieq(n, "via")) {
            via = h;
            continue;
        }
        put_slice(&w, n);
        put(&w, ": ", 2);
        put_slice(&w, h->value);
        put(&w, "\r\n", 2);
    }

    if (req->upgrade) {
        const dp_header *up = dp_h1_find(req, "upgrade");
        if (up)
            put_header(&w, "Upgrade", up->value);
        puts_(&w, "Connection: upgrade\r\n");
    }
    if (req->chunked)
        puts_(&w, "Transfer-Encoding: chunked\r\n");
    else if (req->content_length >= 0) {
        puts_(&w, "Content-Length: ");
        put_num(&w, req->content_length);
        put(&w, "\r\n", 2);
    }

    puts_(&w, "X-Forwarded-For: ");
    if (xff && xff->value.len) {
        put_slice(&w, xff->value);
        put(&w, ", ", 2);
    }
    put_slice(&w, info->client_ip);
    put(&w, "\r\n", 2);
    puts_(&w, "X-Forwarded-Proto: ");
    puts_(&w, info->scheme);
    put(&w, "\r\n", 2);
    put_header(&w, "X-Forwarded-Host", info->fwd_host);
    puts_(&w, "X-Forwarded-Port: ");
    put_num(&w, info->fwd_port);
    put(&w, "\r\n", 2);
    put_header(&w, "X-Forwarded-Path", info->fwd_path);
    if (info->fwd_prefix.len)
        put_header(&w, "X-Forwarded-Prefix", info->fwd_prefix);
    put_header(&w, "X-Real-IP", info->client_ip);
    if (info->headers & DP_HDR_VIA) {
        puts_(&w, "Via: ");
        if (via && via->value.len) {
            put_slice(&w, via->value);
            put(&w, ", ", 2);
        }
        puts_(&w, VIA_TOKEN "\r\n");
    } else if (via) {
        put_header(&w, "Via", via->value);
    }
    if (info->request_id.len && (info->headers & DP_HDR_REQUEST_ID))
        put_header(&w, "X-Sluice-Request-Id", info->request_id);
    put(&w, "\r\n", 2);
    return w.overflow ? -1 : (long)(w.p - out);
}

const char *dp_status_reason(int s)
{
    switch (s) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
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
    wbuf w = {out, out + cap, 0};
    const dp_header *conn = connection_naming_others(resp);
    const dp_header *via = NULL;
    puts_(&w, info->client_minor ? "HTTP/1.1 " : "HTTP/1.0 ");
    put_num(&w, resp->status);
    put(&w, " ", 1);
    if (resp->url.len)
        put_slice(&w, resp->url);
    else
        puts_(&w, dp_status_reason(resp->status));
    put(&w, "\r\n", 2);
    for (int i = 0; i < resp->nheaders; i++) {
        const dp_header *h = &resp->headers[i];
        if (dp_slice_ieq(h->name, "upgrade") && resp->upgrade) {
            put_header(&w, "Upgrade", h->value);
            continue;
        }
        if (dp_is_hop_by_hop(h->name) || named_in_connection(conn, h->name))
            continue;
        /* HEAD, 204 and 304 keep the Content-Length the upstream gave; otherwise it is ours */
        if (dp_slice_ieq(h->name, "content-length") && info->chunked)
            continue;
        if (dp_slice_ieq(h->name, "via")) {
            via = h;
            continue;
        }
        if (info->request_id.len && dp_slice_ieq(h->name, "x-sluice-request-id"))
            continue;
        put_slice(&w, h->name);
        put(&w, ": ", 2);
        put_slice(&w, h->value);
        put(&w, "\r\n", 2);
    }
    if (resp->upgrade)
        puts_(&w, "Connection: upgrade\r\n");
    else if (info->close)
        puts_(&w, "Connection: close\r\n");
    else if (info->client_minor == 0)
        puts_(&w, "Connection: keep-alive\r\n");
    if (info->chunked)
        puts_(&w, "Transfer-Encoding: chunked\r\n");
    if (info->headers & DP_HDR_VIA) {
        puts_(&w, "Via: ");
        if (via && via->value.len) {
            put_slice(&w, via->value);
            put(&w, ", ", 2);
        }
        puts_(&w, VIA_TOKEN "\r\n");
    } else if (via) {
        put_header(&w, "Via", via->value);
    }
    if (info->headers & DP_HDR_LATENCY) {
        if (info->upstream_ms >= 0) {
            puts_(&w, "X-Sluice-Upstream-Latency: ");
            put_num(&w, info->upstream_ms);
            put(&w, "\r\n", 2);
        }
        if (info->proxy_ms >= 0) {
            puts_(&w, "X-Sluice-Proxy-Latency: ");
            put_num(&w, info->proxy_ms);
            put(&w, "\r\n", 2);
        }
    }
    if (info->request_id.len && (info->headers & DP_HDR_REQUEST_ID))
        put_header(&w, "X-Sluice-Request-Id", info->request_id);
    put(&w, "\r\n", 2);
    return w.overflow ? -1 : (long)(w.p - out);
}
