/* What plugins change: upstream request headers and query, response headers, the responses
 * plugins (and the proxy) make, and the consumer an auth plugin identified. Everything is
 * copied into the request arena, so plugin state never points at freed bytes. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "data_plane/http/rewrite.h"
#include "data_plane/plugins/chain_internal.h"
#include "data_plane/util/wbuf.h"
#include "proto/http_status.h"
#include "proto/version.h"

#define MAX_MESSAGE 400 /* JSON-escaped response messages are cut here */

/* ------------------------------------------------------------------ header lists */

static int list_reserve(dp_arena *a, dp_header_list *l, size_t want)
{
    if (want <= l->cap)
        return 0;
    if (want > DP_MAX_HEADERS)
        return -1;
    size_t cap = l->cap ? l->cap * 2 : 16;
    while (cap < want)
        cap *= 2;
    if (cap > DP_MAX_HEADERS)
        cap = DP_MAX_HEADERS;
    dp_header *n = dp_arena_alloc(a, cap * sizeof(dp_header));
    if (!n)
        return -1;
    if (l->n)
        memcpy(n, l->items, l->n * sizeof(dp_header));
    l->items = n;
    l->cap = cap;
    return 0;
}

/* Case-insensitive name match, lengths first: most names differ in length, and
 * dp_slice_ieq's strlen per comparison was a visible cost per request. */
static int name_is(dp_slice a, const char *name, size_t nl)
{
    return a.len == nl && strncasecmp(a.p, name, nl) == 0;
}

static void list_remove(dp_header_list *l, const char *name)
{
    size_t nl = strlen(name), i = 0;
    while (i < l->n && !name_is(l->items[i].name, name, nl))
        i++;
    size_t k = i; /* nothing moves until the first match */
    for (; i < l->n; i++)
        if (!name_is(l->items[i].name, name, nl))
            l->items[k++] = l->items[i];
    l->n = k;
}

static int list_add(dp_arena *a, dp_header_list *l, const char *name, dp_slice value)
{
    if (list_reserve(a, l, l->n + 1) != 0)
        return -1;
    size_t nl = strlen(name);
    /* name and value in one piece of arena, each NUL-terminated */
    char *n = dp_arena_alloc(a, nl + value.len + 2);
    if (!n)
        return -1;
    memcpy(n, name, nl + 1);
    char *v = n + nl + 1;
    if (value.len)
        memcpy(v, value.p, value.len);
    v[value.len] = 0;
    l->items[l->n++] = (dp_header){{n, nl}, {v, value.len}};
    return 0;
}

static const dp_slice *list_get(const dp_header_list *l, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < l->n; i++)
        if (name_is(l->items[i].name, name, nl))
            return &l->items[i].value;
    return NULL;
}

/* The first edit copies the received headers; later ones work on the copy. */
static int up_copy(dp_plugin_req *req)
{
    if (req->up_headers_set)
        return 0;
    if (list_reserve(req->arena, &req->up_headers,
                     req->nheaders + 8 > DP_MAX_HEADERS ? DP_MAX_HEADERS : req->nheaders + 8) != 0)
        return -1;
    memcpy(req->up_headers.items, req->headers, req->nheaders * sizeof(dp_header));
    req->up_headers.n = req->nheaders;
    req->up_headers_set = 1;
    return 0;
}

const dp_slice *dp_plugin_req_header(dp_plugin_req *req, const char *name)
{
    if (req->up_headers_set)
        return list_get(&req->up_headers, name);
    const dp_header *h = dp_headers_find(req->headers, req->nheaders, name);
    return h ? &h->value : NULL;
}

int dp_plugin_up_header_set(dp_plugin_req *req, const char *name, dp_slice value)
{
    if (up_copy(req) != 0)
        return -1;
    list_remove(&req->up_headers, name);
    return list_add(req->arena, &req->up_headers, name, value);
}

int dp_plugin_up_header_add(dp_plugin_req *req, const char *name, dp_slice value)
{
    if (up_copy(req) != 0)
        return -1;
    return list_add(req->arena, &req->up_headers, name, value);
}

int dp_plugin_up_header_remove(dp_plugin_req *req, const char *name)
{
    if (!dp_plugin_req_header(req, name))
        return 0;
    if (up_copy(req) != 0)
        return -1;
    list_remove(&req->up_headers, name);
    return 0;
}

int dp_plugin_up_method(dp_plugin_req *req, dp_slice method)
{
    char *m = dp_arena_strndup(req->arena, method.p ? method.p : "", method.len);
    if (!m)
        return -1;
    req->up_method = (dp_slice){m, method.len};
    req->up_method_set = 1;
    return 0;
}

int dp_plugin_up_body(dp_plugin_req *req, dp_slice body)
{
    if (!req->body_replaceable)
        return -1; /* part of the body may already be upstream, or is still to be streamed */
    char *b = dp_arena_strndup(req->arena, body.p ? body.p : "", body.len);
    if (!b)
        return -1;
    req->up_body = (dp_slice){b, body.len};
    req->up_body_set = 1;
    return 0;
}

const dp_slice *dp_plugin_resp_header(dp_plugin_req *req, const char *name)
{
    return list_get(&req->resp_headers, name);
}

int dp_plugin_resp_header_set(dp_plugin_req *req, const char *name, dp_slice value)
{
    list_remove(&req->resp_headers, name);
    return list_add(req->arena, &req->resp_headers, name, value);
}

int dp_plugin_resp_header_add(dp_plugin_req *req, const char *name, dp_slice value)
{
    return list_add(req->arena, &req->resp_headers, name, value);
}

int dp_plugin_resp_header_remove(dp_plugin_req *req, const char *name)
{
    list_remove(&req->resp_headers, name);
    return 0;
}

/* ------------------------------------------------------------------ upstream request */

/* Writes items[0..n) as header lines over the blank line ending head[0..len), then the blank
 * line again. Returns the new length, -1 when cap is short. */
static long append_headers(const dp_header *items, size_t n, char *head, size_t len, size_t cap)
{
    if (!n)
        return (long)len;
    size_t need = 0;
    for (size_t i = 0; i < n; i++)
        need += items[i].name.len + items[i].value.len + 4;
    if (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4) != 0 || cap - len < need)
        return -1;
    char *p = head + len - 2;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, items[i].name.p, items[i].name.len);
        p += items[i].name.len;
        *p++ = ':';
        *p++ = ' ';
        memcpy(p, items[i].value.p, items[i].value.len);
        p += items[i].value.len;
        *p++ = '\r';
        *p++ = '\n';
    }
    *p++ = '\r';
    *p++ = '\n';
    return (long)(p - head);
}

/* Whether a header a plugin added upstream comes out of dp_rewrite_request as is, so it can
 * go after the head instead of through it. */
static int plain_request_header(dp_slice n)
{
    return !dp_is_hop_by_hop(n) && !name_is(n, "host", 4) && !name_is(n, "content-length", 14) &&
           !name_is(n, "expect", 6) && !name_is(n, "via", 3) && !name_is(n, "x-real-ip", 9) &&
           !(n.len >= 12 && strncasecmp(n.p, "x-forwarded-", 12) == 0) &&
           !name_is(n, "x-sluice-request-id", 19);
}

/* Whether the plugins only appended plain headers to the received ones (what authentication
 * does), and the client's Connection names no header: then the received head goes through
 * dp_rewrite_request unchanged and the additions after it, no copy of the head. */
static int up_appends_only(const dp_plugin_req *req)
{
    const dp_header_list *l = &req->up_headers;
    if (l->n < req->nheaders)
        return 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        const dp_header *a = &l->items[i], *b = &req->headers[i];
        if (a->name.p != b->name.p || a->name.len != b->name.len || a->value.p != b->value.p ||
            a->value.len != b->value.len)
            return 0;
        if (name_is(b->name, "connection", 10) && !name_is(b->value, "keep-alive", 10) &&
            !name_is(b->value, "close", 5))
            return 0;
    }
    for (size_t i = req->nheaders; i < l->n; i++)
        if (!plain_request_header(l->items[i].name))
            return 0;
    return 1;
}

size_t dp_plugin_up_append_size(const dp_plugin_req *req, const dp_h1_head *h)
{
    size_t n = 0;
    if (req->up_headers_set && h->headers == req->headers)
        for (size_t i = req->nheaders; i < req->up_headers.n; i++)
            n += req->up_headers.items[i].name.len + req->up_headers.items[i].value.len + 4;
    return n;
}

long dp_plugin_up_append(const dp_plugin_req *req, const dp_h1_head *h, char *head, size_t len,
                         size_t cap)
{
    if (!req->up_headers_set || h->headers != req->headers)
        return (long)len;
    return append_headers(req->up_headers.items + req->nheaders, req->up_headers.n - req->nheaders,
                          head, len, cap);
}

const dp_h1_head *dp_plugin_upstream_head(dp_plugin_req *req, const dp_h1_head *h)
{
    if (!req->up_headers_set && !req->up_query_set && !req->up_method_set && !req->up_body_set)
        return h;
    if (!req->up_query_set && !req->up_method_set && !req->up_body_set &&
        h->headers == req->headers && up_appends_only(req))
        return h; /* dp_plugin_up_append writes the added headers */
    dp_h1_head *copy = dp_arena_alloc(req->arena, sizeof(*copy));
    if (!copy)
        return NULL;
    memcpy(copy, h, offsetof(dp_h1_head, headers));
    copy->content_length = h->content_length;
    copy->chunked = h->chunked;
    copy->keepalive = h->keepalive;
    copy->upgrade = h->upgrade;
    copy->expect_continue = h->expect_continue;
    if (req->up_headers_set) {
        copy->nheaders = (uint16_t)req->up_headers.n;
        memcpy(copy->headers, req->up_headers.items, req->up_headers.n * sizeof(dp_header));
    } else {
        memcpy(copy->headers, h->headers, h->nheaders * sizeof(dp_header));
    }
    copy->host_index = -1;
    for (int i = 0; i < copy->nheaders; i++)
        if (dp_slice_ieq(copy->headers[i].name, "host"))
            copy->host_index = i;
    if (req->up_query_set)
        copy->query = req->up_query;
    if (req->up_method_set)
        copy->method = req->up_method;
    if (req->up_body_set) { /* the proxy sends up_body after the head instead of the client's */
        copy->content_length = (int64_t)req->up_body.len;
        copy->chunked = 0;
    }
    return copy;
}

/* ------------------------------------------------------------------ responses */

static int is_framing(dp_slice n)
{
    return dp_slice_ieq(n, "content-length") || dp_slice_ieq(n, "transfer-encoding") ||
           dp_slice_ieq(n, "connection");
}

/* Whether a header a plugin set can go after the head dp_rewrite_response wrote, as it would
 * have come out of a merged head: not one the rewrite treats specially. */
static int plain_response_header(dp_slice n)
{
    return !dp_is_hop_by_hop(n) && !name_is(n, "content-length", 14) && !name_is(n, "via", 3) &&
           !name_is(n, "x-sluice-request-id", 19);
}

/* Whether the plugins' response headers can simply be appended to the upstream's head (no
 * copy of the head, no second pass in dp_rewrite_response): nobody runs header_filter or log
 * (they see the merged list), none replaces an upstream header, none is special, and the
 * upstream's Connection names no header. */
static int can_append(const dp_plugin_req *req, const dp_h1_head *rh)
{
    if (req->chain && (req->chain->has_header_filter || req->chain->has_log))
        return 0;
    const dp_header_list *l = &req->resp_headers;
    for (size_t k = 0; k < l->n; k++)
        if (!plain_response_header(l->items[k].name))
            return 0;
    for (int i = 0; i < rh->nheaders; i++) {
        const dp_slice n = rh->headers[i].name, v = rh->headers[i].value;
        if (name_is(n, "connection", 10) && !name_is(v, "keep-alive", 10) &&
            !name_is(v, "close", 5))
            return 0;
        for (size_t k = 0; k < l->n; k++)
            if (name_is(n, l->items[k].name.p, l->items[k].name.len))
                return 0;
    }
    return 1;
}

size_t dp_plugin_resp_append_size(const dp_plugin_req *req)
{
    size_t n = 0;
    if (!req->in_header_filter)
        for (size_t i = 0; i < req->resp_headers.n; i++)
            n += req->resp_headers.items[i].name.len + req->resp_headers.items[i].value.len + 4;
    return n;
}

long dp_plugin_resp_append(const dp_plugin_req *req, char *head, size_t len, size_t cap)
{
    if (req->in_header_filter)
        return (long)len;
    return append_headers(req->resp_headers.items, req->resp_headers.n, head, len, cap);
}

const dp_h1_head *dp_plugin_response_filter(dp_plugin_req *req, const dp_h1_head *rh)
{
    req->status = rh->status;
    int filters = req->chain && req->chain->has_header_filter;
    if (!filters && !req->resp_headers.n)
        return rh;
    if (can_append(req, rh)) /* dp_plugin_resp_append writes them after the head */
        return rh;
    /* the full list: the upstream's headers, those plugins set replacing same-named ones */
    dp_header_list pending = req->resp_headers, full = {0};
    if (list_reserve(req->arena, &full,
                     (size_t)rh->nheaders + pending.n + 8 > DP_MAX_HEADERS
                         ? DP_MAX_HEADERS
                         : (size_t)rh->nheaders + pending.n + 8) != 0)
        return NULL;
    for (int i = 0; i < rh->nheaders && full.n < full.cap; i++) {
        int replaced = 0;
        for (size_t k = 0; k < pending.n && !replaced; k++)
            replaced = (rh->headers[i].name.len == pending.items[k].name.len &&
                        strncasecmp(rh->headers[i].name.p, pending.items[k].name.p,
                                    rh->headers[i].name.len) == 0);
        if (!replaced)
            full.items[full.n++] = rh->headers[i];
    }
    for (size_t k = 0; k < pending.n && full.n < full.cap; k++)
        full.items[full.n++] = pending.items[k];
    req->resp_headers = full;
    req->in_header_filter = 1;
    dp_plugin_run_header_filters(req);
    dp_h1_head *copy = dp_arena_alloc(req->arena, sizeof(*copy));
    if (!copy)
        return NULL;
    memcpy(copy, rh, offsetof(dp_h1_head, headers));
    copy->content_length = rh->content_length;
    copy->chunked = rh->chunked;
    copy->keepalive = rh->keepalive;
    copy->upgrade = rh->upgrade;
    copy->host_index = -1;
    copy->nheaders = 0;
    for (size_t i = 0; i < req->resp_headers.n && copy->nheaders < DP_MAX_HEADERS; i++) {
        const dp_header *x = &req->resp_headers.items[i];
        /* framing is the proxy's: a plugin can't desync the body with a header */
        if (is_framing(x->name) && !dp_slice_ieq(x->name, "content-length"))
            continue;
        if (req->resp_body_changed && dp_slice_ieq(x->name, "content-length"))
            continue;
        copy->headers[copy->nheaders++] = *x;
    }
    /* the upstream's Connection header (its tokens name hop-by-hop headers) is kept */
    for (int i = 0; i < rh->nheaders && copy->nheaders < DP_MAX_HEADERS; i++)
        if (dp_slice_ieq(rh->headers[i].name, "connection") ||
            dp_slice_ieq(rh->headers[i].name, "transfer-encoding"))
            copy->headers[copy->nheaders++] = rh->headers[i];
    if (req->resp_body_changed && rh->status != 204 && rh->status != 304) {
        copy->content_length = -1;
        copy->chunked = 1; /* so the proxy frames it; the upstream's framing is unchanged */
    }
    return copy;
}

/* Sets name to a decimal number among the response headers. */
static void resp_header_num(dp_plugin_req *req, const char *name, long v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%ld", v);
    dp_plugin_resp_header_set(req, name, (dp_slice){b, (size_t)n});
}

unsigned dp_plugin_own_headers(dp_plugin_req *req, const dp_h1_head *rh, unsigned headers,
                               long upstream_ms, long proxy_ms)
{
    if (!req->chain || !req->chain->has_header_filter)
        return headers; /* nobody looks: dp_rewrite_response writes them, cheaper */
    if (headers & DP_HDR_VIA) {
        const dp_header *via = dp_headers_find(rh->headers, rh->nheaders, "via");
        static const char token[] = "1.1 sluice/" SL_VERSION;
        size_t vl = via && via->value.len ? via->value.len + 2 : 0;
        char *v = dp_arena_alloc(req->arena, vl + sizeof(token));
        if (v) {
            if (vl) {
                memcpy(v, via->value.p, via->value.len);
                memcpy(v + via->value.len, ", ", 2);
            }
            memcpy(v + vl, token, sizeof(token));
            dp_plugin_resp_header_set(req, "Via", (dp_slice){v, vl + sizeof(token) - 1});
        }
    }
    if (headers & DP_HDR_LATENCY) {
        if (upstream_ms >= 0)
            resp_header_num(req, "X-Sluice-Upstream-Latency", upstream_ms);
        if (proxy_ms >= 0)
            resp_header_num(req, "X-Sluice-Proxy-Latency", proxy_ms);
    }
    return headers & ~(unsigned)(DP_HDR_VIA | DP_HDR_LATENCY);
}

/* Writes s JSON-escaped (without quotes) into out; cuts at MAX_MESSAGE bytes of output. */
static size_t json_escape(const char *s, char *out)
{
    static const char hx[] = "0123456789abcdef";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && n < MAX_MESSAGE; p++) {
        if (*p == '"' || *p == '\\') {
            out[n++] = '\\';
            out[n++] = (char)*p;
        } else if (*p < 0x20) {
            memcpy(out + n, "\\u00", 4);
            out[n + 4] = hx[*p >> 4];
            out[n + 5] = hx[*p & 15];
            n += 6;
        } else {
            out[n++] = (char)*p;
        }
    }
    out[n] = 0;
    return n;
}

dp_plugin_result dp_plugin_respond(dp_plugin_req *req, int status, const char *message)
{
    req->response_status = status;
    req->response_message = NULL;
    req->response_body_set = 0;
    if (message) {
        char *m = dp_arena_alloc(req->arena, MAX_MESSAGE + 8);
        if (m) {
            json_escape(message, m);
            req->response_message = m;
        } else {
            req->response_message = "An unexpected error occurred";
        }
    }
    return DP_PLUGIN_RESPOND;
}

dp_plugin_result dp_plugin_respond_body(dp_plugin_req *req, int status, dp_slice body,
                                        const char *content_type)
{
    req->response_status = status;
    req->response_message = NULL;
    char *b = dp_arena_strndup(req->arena, body.p ? body.p : "", body.len);
    req->response_body = (dp_slice){b ? b : "", b ? body.len : 0};
    req->response_body_set = 1;
    if (content_type)
        dp_plugin_resp_header_set(req, "Content-Type", dp_slice_cstr(content_type));
    return DP_PLUGIN_RESPOND;
}

size_t dp_plugin_response_size(const dp_plugin_req *req, const char *message)
{
    size_t n = 1024 + (message ? strlen(message) : 0);
    if (req->response_body_set)
        n += req->response_body.len;
    n += 16 * 1024; /* room for what header_filter may still add */
    for (size_t i = 0; i < req->resp_headers.n; i++)
        n += req->resp_headers.items[i].name.len + req->resp_headers.items[i].value.len + 4;
    return n;
}

long dp_plugin_render_response(dp_plugin_req *req, int status, const char *message, int close,
                               int server_token, dp_slice request_id, long latency_ms, char *out,
                               size_t cap)
{
    if (req->arena) { /* routed: header_filter plugins see this response too */
        req->status = status;
        if (!req->in_header_filter) {
            if (req->chain && req->chain->has_header_filter) {
                /* our own headers first, so header_filter plugins see and may remove them */
                if (server_token)
                    dp_plugin_resp_header_set(req, "Server", DP_SLICE_LIT("sluice/" SL_VERSION));
                if (latency_ms >= 0)
                    resp_header_num(req, "X-Sluice-Response-Latency", latency_ms);
                server_token = 0;
                latency_ms = -1;
            }
            req->in_header_filter = 1;
            dp_plugin_run_header_filters(req);
        }
    }
    int own_body = req->response_body_set && status == req->response_status;
    dp_wbuf w = {out, out + cap, 0};
    dp_wbuf_puts(&w, "HTTP/1.1 ");
    dp_wbuf_num(&w, status);
    dp_wbuf_put(&w, " ", 1);
    dp_wbuf_puts(&w, sl_http_reason(status));
    dp_wbuf_put(&w, "\r\n", 2);
    if (!own_body && message && !list_get(&req->resp_headers, "content-type"))
        dp_wbuf_puts(&w, "Content-Type: application/json; charset=utf-8\r\n");
    size_t blen = own_body ? req->response_body.len : message ? strlen(message) + 14 : 0;
    dp_wbuf_puts(&w, "Content-Length: ");
    dp_wbuf_num(&w, (long long)blen);
    dp_wbuf_put(&w, "\r\n", 2);
    if (close)
        dp_wbuf_puts(&w, "Connection: close\r\n");
    if (server_token)
        dp_wbuf_puts(&w, "Server: sluice/" SL_VERSION "\r\n");
    if (latency_ms >= 0) {
        dp_wbuf_puts(&w, "X-Sluice-Response-Latency: ");
        dp_wbuf_num(&w, latency_ms);
        dp_wbuf_put(&w, "\r\n", 2);
    }
    if (request_id.len) {
        dp_wbuf_puts(&w, "X-Sluice-Request-Id: ");
        dp_wbuf_put(&w, request_id.p, request_id.len);
        dp_wbuf_put(&w, "\r\n", 2);
    }
    for (size_t i = 0; i < req->resp_headers.n; i++) {
        const dp_header *x = &req->resp_headers.items[i];
        if (is_framing(x->name))
            continue;
        dp_wbuf_put(&w, x->name.p, x->name.len);
        dp_wbuf_put(&w, ": ", 2);
        dp_wbuf_put(&w, x->value.p, x->value.len);
        dp_wbuf_put(&w, "\r\n", 2);
    }
    dp_wbuf_put(&w, "\r\n", 2);
    if (own_body) {
        dp_wbuf_put(&w, req->response_body.p, req->response_body.len);
    } else if (message) {
        dp_wbuf_puts(&w, "{\"message\":\"");
        dp_wbuf_puts(&w, message);
        dp_wbuf_puts(&w, "\"}");
    }
    return w.overflow ? -1 : (long)(w.p - out);
}

/* ------------------------------------------------------------------ authentication */

/* The headers authentication owns upstream, in the order they are sent. */
static const char *const auth_names[] = {"X-Consumer-ID", "X-Consumer-Custom-ID",
                                         "X-Consumer-Username", "X-Credential-Identifier",
                                         "X-Anonymous-Consumer"};

static int is_auth_header(dp_slice n)
{
    if (n.len != 13 && n.len != 19 && n.len != 20 && n.len != 23)
        return 0; /* most headers: decided by their length */
    for (size_t i = 0; i < sizeof(auth_names) / sizeof(auth_names[0]); i++)
        if (name_is(n, auth_names[i], strlen(auth_names[i])))
            return 1;
    return 0;
}

void dp_plugin_authenticate(dp_plugin_req *req, const dp_consumer *consumer,
                            const char *credential_id)
{
    req->consumer = consumer;
    req->credential_id = credential_id;
    req->anonymous = 0;
    const char *vals[4] = {consumer ? consumer->id : NULL, consumer ? consumer->custom_id : NULL,
                           consumer ? consumer->username : NULL, credential_id};
    if (!vals[0] && !vals[1] && !vals[2] && !vals[3]) { /* only client-sent ones to drop */
        for (size_t i = 0; i < 5; i++)
            dp_plugin_up_header_remove(req, auth_names[i]);
        return;
    }
    /* one pass drops every client-sent one, then ours go at the end: the same list as
     * set/remove per name, without a scan and two copies per header */
    if (up_copy(req) != 0)
        return;
    dp_header_list *l = &req->up_headers;
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++)
        if (!is_auth_header(l->items[i].name))
            l->items[k++] = l->items[i];
    l->n = k;
    for (size_t i = 0; i < 4; i++) {
        if (!vals[i] || list_reserve(req->arena, l, l->n + 1) != 0)
            continue;
        /* not copied: static names, and values in generation memory, which the request holds
         * a reference to until it ends */
        l->items[l->n++] = (dp_header){dp_slice_cstr(auth_names[i]), dp_slice_cstr(vals[i])};
    }
}

int dp_plugin_authenticate_anonymous(dp_plugin_req *req, const char *anonymous)
{
    const dp_consumer *c = dp_plugin_consumer_by_id(req->gen, anonymous);
    if (!c)
        c = dp_plugin_consumer_by_username(req->gen, anonymous);
    if (!c)
        return -1;
    dp_plugin_authenticate(req, c, NULL);
    req->anonymous = 1;
    dp_plugin_up_header_set(req, "X-Anonymous-Consumer", DP_SLICE_LIT("true"));
    return 0;
}
