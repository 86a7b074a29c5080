/* What plugins change: upstream request headers and query, response headers, the responses
 * plugins (and the proxy) make, and the consumer an auth plugin identified. Everything is
 * copied into the request arena, so plugin state never points at freed bytes. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "data_plane/http/rewrite.h"
#include "data_plane/plugins/chain_internal.h"
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

static void list_remove(dp_header_list *l, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++)
        if (!dp_slice_ieq(l->items[i].name, name))
            l->items[k++] = l->items[i];
    l->n = k;
}

static int list_add(dp_arena *a, dp_header_list *l, const char *name, dp_slice value)
{
    if (list_reserve(a, l, l->n + 1) != 0)
        return -1;
    size_t nl = strlen(name);
    char *n = dp_arena_strndup(a, name, nl);
    char *v = dp_arena_strndup(a, value.p ? value.p : "", value.len);
    if (!n || !v)
        return -1;
    l->items[l->n++] = (dp_header){{n, nl}, {v, value.len}};
    return 0;
}

static const dp_slice *list_get(const dp_header_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (dp_slice_ieq(l->items[i].name, name))
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

const dp_h1_head *dp_plugin_upstream_head(dp_plugin_req *req, const dp_h1_head *h)
{
    if (!req->up_headers_set && !req->up_query_set)
        return h;
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
    return copy;
}

/* ------------------------------------------------------------------ responses */

static int is_framing(dp_slice n)
{
    return dp_slice_ieq(n, "content-length") || dp_slice_ieq(n, "transfer-encoding") ||
           dp_slice_ieq(n, "connection");
}

const dp_h1_head *dp_plugin_response_filter(dp_plugin_req *req, const dp_h1_head *rh)
{
    req->status = rh->status;
    int filters = req->chain && req->chain->has_header_filter;
    if (!filters && !req->resp_headers.n)
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

static void puts_(wbuf *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_num(wbuf *w, long long v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%lld", v);
    put(w, b, (size_t)n);
}

long dp_plugin_render_response(dp_plugin_req *req, int status, const char *message, int close,
                               int server_token, dp_slice request_id, long latency_ms, char *out,
                               size_t cap)
{
    if (req->arena) { /* routed: header_filter plugins see this response too */
        req->status = status;
        if (!req->in_header_filter) {
            req->in_header_filter = 1;
            dp_plugin_run_header_filters(req);
        }
    }
    int own_body = req->response_body_set && status == req->response_status;
    wbuf w = {out, out + cap, 0};
    puts_(&w, "HTTP/1.1 ");
    put_num(&w, status);
    put(&w, " ", 1);
    puts_(&w, dp_status_reason(status));
    put(&w, "\r\n", 2);
    if (!own_body && message && !list_get(&req->resp_headers, "content-type"))
        puts_(&w, "Content-Type: application/json; charset=utf-8\r\n");
    size_t blen = own_body ? req->response_body.len : message ? strlen(message) + 14 : 0;
    puts_(&w, "Content-Length: ");
    put_num(&w, (long long)blen);
    put(&w, "\r\n", 2);
    if (close)
        puts_(&w, "Connection: close\r\n");
    if (server_token)
        puts_(&w, "Server: sluice/" SL_VERSION "\r\n");
    if (latency_ms >= 0) {
        puts_(&w, "X-Sluice-Response-Latency: ");
        put_num(&w, latency_ms);
        put(&w, "\r\n", 2);
    }
    if (request_id.len) {
        puts_(&w, "X-Sluice-Request-Id: ");
        put(&w, request_id.p, request_id.len);
        put(&w, "\r\n", 2);
    }
    for (size_t i = 0; i < req->resp_headers.n; i++) {
        const dp_header *x = &req->resp_headers.items[i];
        if (is_framing(x->name))
            continue;
        put(&w, x->name.p, x->name.len);
        put(&w, ": ", 2);
        put(&w, x->value.p, x->value.len);
        put(&w, "\r\n", 2);
    }
    put(&w, "\r\n", 2);
    if (own_body) {
        put(&w, req->response_body.p, req->response_body.len);
    } else if (message) {
        puts_(&w, "{\"message\":\"");
        puts_(&w, message);
        puts_(&w, "\"}");
    }
    return w.overflow ? -1 : (long)(w.p - out);
}

/* ------------------------------------------------------------------ authentication */

static int set_or_remove(dp_plugin_req *req, const char *name, const char *value)
{
    return value ? dp_plugin_up_header_set(req, name, dp_slice_cstr(value))
                 : dp_plugin_up_header_remove(req, name);
}

void dp_plugin_authenticate(dp_plugin_req *req, const dp_consumer *consumer,
                            const char *credential_id)
{
    req->consumer = consumer;
    req->credential_id = credential_id;
    req->anonymous = 0;
    set_or_remove(req, "X-Consumer-ID", consumer ? consumer->id : NULL);
    set_or_remove(req, "X-Consumer-Custom-ID", consumer ? consumer->custom_id : NULL);
    set_or_remove(req, "X-Consumer-Username", consumer ? consumer->username : NULL);
    set_or_remove(req, "X-Credential-Identifier", credential_id);
    dp_plugin_up_header_remove(req, "X-Anonymous-Consumer");
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
