#include "data_plane/http/h1.h"

#include <string.h>

#define H(p) ((dp_h1 *)(p)->data)

static int fail(dp_h1 *h, int status, const char *why)
{
    h->error_status = status;
    h->error = why;
    return HPE_USER;
}

/* RFC 9110 tchar: what a field name may contain. Anything else (space before the colon,
 * control bytes) is a smuggling vector between proxies that disagree on it. */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')
        return 1; /* the common case without the search below */
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field values: no NUL, no bare CR or LF (obs-fold leaves CR LF inside a value), no controls
 * but HTAB. */
static int value_ok(const char *at, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)at[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

static int add_head_bytes(dp_h1 *h, size_t n)
{
    h->head_bytes += n;
    if (h->head_bytes > DP_MAX_HEAD_BYTES)
        return fail(h, 431, "request header fields too large");
    return 0;
}

static int on_method(llhttp_t *p, const char *at, size_t len)
{
    dp_h1 *h = H(p);
    if (!h->head.method.p)
        h->head.method.p = at;
    h->head.method.len += len;
    return add_head_bytes(h, len);
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    dp_h1 *h = H(p);
    if (!h->head.url.p)
        h->head.url.p = at;
    h->head.url.len += len;
    if (h->head.url.len > DP_MAX_URI)
        return fail(h, 414, "request URI too long");
    return add_head_bytes(h, len);
}

/* Splits the request target into path and query; absolute-form loses scheme://authority. */
static int on_url_complete(llhttp_t *p)
{
    dp_h1 *h = H(p);
    const char *s = h->head.url.p;
    size_t n = h->head.url.len;
    size_t i = 0;
    if (n && s[0] != '/' && s[0] != '*') {
        const char *sep = memchr(s, ':', n);
        if (!sep || (size_t)(sep - s) + 3 > n || sep[1] != '/' || sep[2] != '/')
            return fail(h, 400, "bad request target");
        size_t a = (size_t)(sep - s) + 3, b = a;
        while (b < n && s[b] != '/' && s[b] != '?')
            b++;
        h->head.authority = (dp_slice){s + a, b - a};
        i = b;
    }
    const char *q = memchr(s + i, '?', n - i);
    size_t pend = q ? (size_t)(q - s) : n;
    h->head.path = (dp_slice){s + i, pend - i};
    if (h->head.path.len == 0)
        h->head.path = DP_SLICE_LIT("/");
    h->head.query = q ? (dp_slice){q + 1, n - pend - 1} : (dp_slice){NULL, 0};
    return 0;
}

static int on_status(llhttp_t *p, const char *at, size_t len)
{
    dp_h1 *h = H(p);
    if (!h->head.url.p) /* responses keep the reason phrase in url */
        h->head.url.p = at;
    h->head.url.len += len;
    return add_head_bytes(h, len);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    dp_h1 *h = H(p);
    dp_h1_head *hd = &h->head;
    if (h->hstate != 1) {
        if (hd->nheaders == DP_MAX_HEADERS)
            return fail(h, 431, "too many header fields");
        hd->headers[hd->nheaders].name = (dp_slice){at, 0};
        hd->headers[hd->nheaders].value = (dp_slice){NULL, 0};
        hd->nheaders++;
        h->hstate = 1;
    }
    for (size_t i = 0; i < len; i++)
        if (!is_tchar((unsigned char)at[i]))
            return fail(h, 400, "invalid character in header name");
    hd->headers[hd->nheaders - 1].name.len += len;
    return add_head_bytes(h, len + 4);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    dp_h1 *h = H(p);
    dp_header *x = &h->head.headers[h->head.nheaders - 1];
    if (!value_ok(at, len))
        return fail(h, 400, "invalid character in header value");
    if (!x->value.p) {
        /* the value must follow "name:" on the same line; anything else is a folded line (the
         * head is contiguous in the caller's buffer, so looking back is safe) */
        const char *b = at - 1;
        while (*b == ' ' || *b == '\t')
            b--;
        if (*b != ':')
            return fail(h, 400, "obsolete line folding");
        x->value.p = at;
    } else if (at != x->value.p + x->value.len) /* a value continued on a new line: obs-fold */
        return fail(h, 400, "obsolete line folding");
    x->value.len += len;
    h->hstate = 2;
    return add_head_bytes(h, len);
}

static int on_header_field_complete(llhttp_t *p)
{
    H(p)->hstate = 2;
    return 0;
}

static int all_digits(dp_slice v)
{
    if (v.len == 0 || v.len > 18)
        return 0;
    for (size_t i = 0; i < v.len; i++)
        if (v.p[i] < '0' || v.p[i] > '9')
            return 0;
    return 1;
}

static int on_header_value_complete(llhttp_t *p)
{
    dp_h1 *h = H(p);
    dp_h1_head *hd = &h->head;
    dp_header *x = &hd->headers[hd->nheaders - 1];
    h->hstate = 0;
    if (!x->value.p)
        x->value.p = "";
    while (x->value.len &&
           (x->value.p[x->value.len - 1] == ' ' || x->value.p[x->value.len - 1] == '\t'))
        x->value.len--;
    int req = h->p.type == HTTP_REQUEST;
    int bad = req ? 400 : 502;
    if (dp_slice_ieq(x->name, "content-length")) {
        if (++h->cl_count > 1)
            return fail(h, bad, "more than one Content-Length");
        if (!all_digits(x->value))
            return fail(h, bad, "malformed Content-Length");
    } else if (dp_slice_ieq(x->name, "transfer-encoding")) {
        if (++h->te_count > 1)
            return fail(h, bad, "more than one Transfer-Encoding");
        if (!dp_slice_ieq(x->value, "chunked"))
            return fail(h, bad, "Transfer-Encoding other than chunked");
    } else if (req && dp_slice_ieq(x->name, "host")) {
        if (hd->host_index >= 0)
            return fail(h, 400, "more than one Host");
        hd->host_index = hd->nheaders - 1;
    } else if (req && dp_slice_ieq(x->name, "expect")) {
        if (dp_slice_ieq(x->value, "100-continue"))
            hd->expect_continue = 1;
    }
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    dp_h1 *h = H(p);
    dp_h1_head *hd = &h->head;
    int req = p->type == HTTP_REQUEST;
    hd->http_major = p->http_major;
    hd->http_minor = p->http_minor;
    if (hd->http_major != 1)
        return fail(h, req ? 505 : 502, "unsupported HTTP version");
    if (h->cl_count && h->te_count)
        return fail(h, req ? 400 : 502, "both Content-Length and Transfer-Encoding");
    hd->content_length = (p->flags & F_CONTENT_LENGTH) ? (int64_t)p->content_length : -1;
    hd->chunked = (p->flags & F_CHUNKED) != 0;
    hd->keepalive = llhttp_should_keep_alive(p) != 0;
    h->head_complete = 1;
    if (req) {
        hd->method_id = p->method;
        if (p->method == HTTP_CONNECT)
            return fail(h, 400, "CONNECT is not supported");
        if (hd->http_minor >= 1 && hd->host_index < 0)
            return fail(h, 400, "missing Host");
        hd->upgrade = (p->flags & F_UPGRADE) && (p->flags & F_CONNECTION_UPGRADE);
        if (hd->upgrade && (hd->chunked || hd->content_length > 0))
            return fail(h, 400, "upgrade request with a body");
        /* pause before a body; a bodyless message runs on to its end (msg_complete) */
        return hd->chunked || hd->content_length > 0 ? HPE_PAUSED : 0;
    }
    hd->status = p->status_code;
    if (hd->status == 101) {
        hd->upgrade = 1;
        return 1;
    }
    if (h->skip_body || (hd->status >= 100 && hd->status < 200) || hd->status == 204 ||
        hd->status == 304)
        return 1;
    return hd->content_length == 0 ? 0 : HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    dp_h1 *h = H(p);
    if (h->on_body)
        h->on_body(h->ud, at, len);
    return 0;
}

static int on_chunk_header(llhttp_t *p)
{
    dp_h1 *h = H(p);
    if (p->content_length && h->on_chunk && h->on_chunk(h->ud))
        return HPE_PAUSED;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    H(p)->msg_complete = 1;
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_method = on_method,
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_message_complete = on_message_complete,
};

void dp_h1_next(dp_h1 *h)
{
    memset(&h->head, 0, offsetof(dp_h1_head, headers));
    h->head.nheaders = 0;
    h->head.content_length = -1;
    h->head.host_index = -1;
    h->head.chunked = h->head.keepalive = h->head.upgrade = h->head.expect_continue = 0;
    h->head_complete = h->msg_complete = h->skip_body = 0;
    h->hstate = 0;
    h->cl_count = h->te_count = 0;
    h->head_bytes = 0;
    h->error_status = 0;
    h->error = NULL;
}

void dp_h1_init(dp_h1 *h, dp_h1_type type, dp_h1_body_cb on_body_cb, dp_h1_chunk_cb on_chunk,
                void *ud)
{
    llhttp_init(&h->p, type == DP_H1_REQUEST ? HTTP_REQUEST : HTTP_RESPONSE, &settings);
    h->p.data = h;
    h->on_body = on_body_cb;
    h->on_chunk = on_chunk;
    h->ud = ud;
    h->paused = 0;
    dp_h1_next(h);
}

static dp_h1_result map_error(dp_h1 *h, llhttp_errno_t e)
{
    if (e != HPE_USER || !h->error_status) {
        h->error_status = h->p.type == HTTP_REQUEST ? 400 : 502;
        h->error = llhttp_get_error_reason(&h->p);
        if (!h->error)
            h->error = llhttp_errno_name(e);
    }
    return DP_H1_ERROR;
}

dp_h1_result dp_h1_execute(dp_h1 *h, const char *data, size_t len, size_t *consumed)
{
    *consumed = 0;
    if (h->paused) {
        llhttp_resume(&h->p);
        h->paused = 0;
    }
    if (len == 0)
        return DP_H1_OK;
    llhttp_errno_t e = llhttp_execute(&h->p, data, len);
    if (e == HPE_OK) {
        *consumed = len;
        return DP_H1_OK;
    }
    if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
        const char *pos = llhttp_get_error_pos(&h->p);
        *consumed = pos && pos >= data && pos <= data + len ? (size_t)(pos - data) : len;
        h->paused = e == HPE_PAUSED;
        if (h->msg_complete && h->head.upgrade)
            return DP_H1_UPGRADE;
        if (e == HPE_PAUSED_UPGRADE) {
            h->msg_complete = 1;
            return DP_H1_UPGRADE;
        }
        return DP_H1_OK;
    }
    return map_error(h, e);
}

dp_h1_result dp_h1_finish(dp_h1 *h)
{
    if (h->paused) {
        llhttp_resume(&h->p);
        h->paused = 0;
    }
    llhttp_errno_t e = llhttp_finish(&h->p);
    if (e == HPE_OK || e == HPE_PAUSED) {
        h->paused = e == HPE_PAUSED;
        return DP_H1_OK;
    }
    return map_error(h, e);
}

const dp_header *dp_h1_find(const dp_h1_head *head, const char *name)
{
    return dp_headers_find(head->headers, head->nheaders, name);
}

int dp_h1_has_token(dp_slice v, const char *token)
{
    size_t tl = strlen(token), i = 0;
    while (i < v.len) {
        while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
            i++;
        size_t s = i;
        while (i < v.len && v.p[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v.p + s, token, tl) == 0)
            return 1;
    }
    return 0;
}
