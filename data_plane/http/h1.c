#include "data_plane/http/h1.h"

#include <stdint.h>
#include <string.h>

#define H(p) ((dp_h1 *)(p)->data)

/* The status names the client's fault for requests; a bad response is the upstream's: 502. */
static int fail(dp_h1 *h, int status, const char *why)
{
    h->error_status = h->p.type == HTTP_RESPONSE && status < 500 ? 502 : status;
    h->error = why;
    return HPE_USER;
}

/* Byte classes. T: RFC 9110 tchar, what a field name may contain (anything else, a space before
 * the colon or control bytes, is a smuggling vector between proxies that disagree on it; llhttp
 * 8 lets a space through). V: what a field value may contain: no NUL, no bare CR or LF, no
 * controls but HTAB. Constant tables: one load per byte while the header lines are split. */
enum { CT = 1, CV = 2 };
#define IS_T(c)                                                                                    \
    (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= '0' && (c) <= '9') ||     \
     (c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' || (c) == '\'' ||          \
     (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' || (c) == '^' || (c) == '_' ||           \
     (c) == '`' || (c) == '|' || (c) == '~')
#define IS_V(c) ((c) == '\t' || ((c) >= 0x20 && (c) != 0x7f))
#define CLS(c) ((IS_T(c) ? CT : 0) | (IS_V(c) ? CV : 0))
#define CLS4(c) CLS(c), CLS((c) + 1), CLS((c) + 2), CLS((c) + 3)
#define CLS16(c) CLS4(c), CLS4((c) + 4), CLS4((c) + 8), CLS4((c) + 12)
#define CLS64(c) CLS16(c), CLS16((c) + 16), CLS16((c) + 32), CLS16((c) + 48)
static const unsigned char cls[256] = {CLS64(0), CLS64(64), CLS64(128), CLS64(192)};

static int is_tchar(unsigned char c)
{
    return cls[c] & CT;
}

static int value_ok(const char *at, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!(cls[(unsigned char)at[i]] & CV))
            return 0;
    return 1;
}

/* Trailer fields (after a chunked body) still go through llhttp's per-field callbacks; they
 * count against the same bound as the head. */
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
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    dp_h1 *h = H(p);
    if (!h->head.url.p)
        h->head.url.p = at;
    h->head.url.len += len;
    if (h->head.url.len > DP_MAX_URI)
        return fail(h, 414, "request URI too long");
    return 0;
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
    return 0;
}

/* The end of the version: the header lines start on the next line (requests end their start
 * line with it, responses follow it with the status). */
static int on_version(llhttp_t *p, const char *at, size_t len)
{
    H(p)->version_end = at + len;
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

/* ASCII lower case, for comparing field names without a libc call per name. */
#define LC(c) ((unsigned char)((c) >= 'A' && (c) <= 'Z' ? (c) + 32 : (c)))
#define LC4(c) LC(c), LC((c) + 1), LC((c) + 2), LC((c) + 3)
#define LC16(c) LC4(c), LC4((c) + 4), LC4((c) + 8), LC4((c) + 12)
#define LC64(c) LC16(c), LC16((c) + 16), LC16((c) + 32), LC16((c) + 48)
const unsigned char dp_h1_lower[256] = {LC64(0), LC64(64), LC64(128), LC64(192)};
#define NAME_IS DP_H1_NAME_IS

/* The checks on one complete field: one Content-Length of digits, one Transfer-Encoding that
 * is exactly chunked, one Host; Expect: 100-continue noted. */
static int check_field(dp_h1 *h, const dp_header *x)
{
    dp_h1_head *hd = &h->head;
    int req = h->p.type == HTTP_REQUEST;
    int bad = req ? 400 : 502;
    switch (x->name.len) {
    case 14:
        if (NAME_IS(x->name, "content-length")) {
            if (++h->cl_count > 1)
                return fail(h, bad, "more than one Content-Length");
            if (!all_digits(x->value))
                return fail(h, bad, "malformed Content-Length");
        }
        break;
    case 17:
        if (NAME_IS(x->name, "transfer-encoding")) {
            if (++h->te_count > 1)
                return fail(h, bad, "more than one Transfer-Encoding");
            if (!dp_slice_ieq(x->value, "chunked"))
                return fail(h, bad, "Transfer-Encoding other than chunked");
        }
        break;
    case 4:
        if (req && NAME_IS(x->name, "host")) {
            if (hd->host_index >= 0)
                return fail(h, 400, "more than one Host");
            hd->host_index = (int)(x - hd->headers);
        }
        break;
    case 6:
        if (req && NAME_IS(x->name, "expect") && dp_slice_ieq(x->value, "100-continue"))
            hd->expect_continue = 1;
        break;
    }
    return 0;
}

/* The end of a field value: the first byte that may not be in one (the CR that ends it, or a
 * byte to refuse). Eight bytes at a time while none is a control or DEL (HTAB, allowed, goes
 * the slow way): values are most of a head's bytes. */
static const char *value_end(const char *p, const char *end)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - p >= 8) {
        uint64_t x, del;
        memcpy(&x, p, 8);
        del = x ^ (0x7f * ones);
        uint64_t stop = ((x - 0x20 * ones) & ~x & highs) | ((del - ones) & ~del & highs);
        if (!stop) {
            p += 8;
            continue;
        }
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* the lowest flagged byte is exact (flags above it may be borrows): it is the first
         * byte to stop at, unless it is an HTAB, which values may contain */
        p += __builtin_ctzll(stop) >> 3;
        if (*p != '\t')
            return p;
        p++;
        continue;
#else
        break;
#endif
    }
    while (p < end && (cls[(unsigned char)*p] & CV))
        p++;
    return p;
}

/* Splits the head's field lines into slices in one pass, once llhttp has accepted the head
 * (framing, CRLF line ends, the version, value bytes), instead of two callbacks per field
 * from llhttp: that was a quarter of the proxy's instructions. What llhttp lets through is
 * refused here: a space in a field name, obs-fold (a line starting with SP or HTAB), more than
 * DP_MAX_HEADERS fields or DP_MAX_HEAD_BYTES of head. The bytes from the version to the blank
 * line are contiguous (dp_h1_execute's contract) and end before h->end. */
static int scan_fields(dp_h1 *h)
{
    dp_h1_head *hd = &h->head;
    const char *p = h->version_end, *end = h->end;
    if (!p) /* HTTP/0.9: no field lines (refused by the version check) */
        return 0;
    /* llhttp ends the start line at a bare LF, or takes any byte after its CR as the LF: the
     * line must end in CR LF here, or fields would hide in what a line splitter reads as the
     * start line */
    while (p < end && *p != '\r' && *p != '\n')
        p++;
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
        return fail(h, 400, "malformed head");
    p += 2;
    for (;;) {
        if (p >= end)
            return fail(h, 400, "malformed head");
        if (*p == '\r')
            break; /* the blank line */
        if (*p == ' ' || *p == '\t')
            return fail(h, 400, "obsolete line folding");
        const char *name = p;
        while (p < end && (cls[(unsigned char)*p] & CT))
            p++;
        if (p >= end || *p != ':' || p == name)
            return fail(h, 400, "invalid character in header name");
        size_t nlen = (size_t)(p - name);
        p++;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *v = p;
        p = value_end(p, end);
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return fail(h, 400, "invalid character in header value");
        const char *ve = p;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        p += 2;
        if (hd->nheaders == DP_MAX_HEADERS)
            return fail(h, 431, "too many header fields");
        dp_header *x = &hd->headers[hd->nheaders++];
        x->name = (dp_slice){name, nlen};
        x->value = (dp_slice){v, (size_t)(ve - v)};
        /* only these lengths name a field check_field looks at */
        if ((nlen == 4 || nlen == 6 || nlen == 14 || nlen == 17) && check_field(h, x) != 0)
            return HPE_USER;
    }
    /* the blank line's CR LF; dp_h1_execute checks that llhttp's head ended there too */
    if (end - p < 2 || p[1] != '\n')
        return fail(h, 400, "malformed head");
    h->scan_end = p + 2;
    h->head_bytes += (size_t)(p + 2 - h->data);
    if (h->head_bytes > DP_MAX_HEAD_BYTES)
        return fail(h, 431, "request header fields too large");
    return 0;
}

/* Trailer fields: per-field callbacks with the head's checks (they are parsed, never
 * forwarded). Only active after the head (see on_headers_complete). */
static int on_trailer_field(llhttp_t *p, const char *at, size_t len)
{
    dp_h1 *h = H(p);
    dp_h1_head *hd = &h->head;
    if (!h->head_complete)
        return 0;
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

static int on_trailer_value(llhttp_t *p, const char *at, size_t len)
{
    dp_h1 *h = H(p);
    if (!h->head_complete)
        return 0;
    dp_header *x = &h->head.headers[h->head.nheaders - 1];
    if (!value_ok(at, len))
        return fail(h, 400, "invalid character in header value");
    if (!x->value.p) {
        /* the value must follow "name:" on the same line; anything else is a folded line (the
         * bytes are contiguous in the caller's buffer, so looking back is safe) */
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

static int on_trailer_field_complete(llhttp_t *p)
{
    H(p)->hstate = 2;
    return 0;
}

static int on_trailer_value_complete(llhttp_t *p)
{
    dp_h1 *h = H(p);
    if (!h->head_complete)
        return 0;
    dp_h1_head *hd = &h->head;
    dp_header *x = &hd->headers[hd->nheaders - 1];
    h->hstate = 0;
    if (!x->value.p)
        x->value.p = "";
    while (x->value.len &&
           (x->value.p[x->value.len - 1] == ' ' || x->value.p[x->value.len - 1] == '\t'))
        x->value.len--;
    return check_field(h, x);
}

static int on_headers_complete(llhttp_t *p);
static int on_body(llhttp_t *p, const char *at, size_t len);
static int on_chunk_header(llhttp_t *p);
static int on_message_complete(llhttp_t *p);

/* Heads: no per-field callbacks (scan_fields splits the lines). */
static const llhttp_settings_t head_settings = {
    .on_method = on_method,
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_status = on_status,
    .on_version = on_version,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_message_complete = on_message_complete,
};

/* After the head: trailer fields come through callbacks. */
static const llhttp_settings_t body_settings = {
    .on_method = on_method,
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_status = on_status,
    .on_version = on_version,
    .on_header_field = on_trailer_field,
    .on_header_field_complete = on_trailer_field_complete,
    .on_header_value = on_trailer_value,
    .on_header_value_complete = on_trailer_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_message_complete = on_message_complete,
};

static int on_headers_complete(llhttp_t *p)
{
    dp_h1 *h = H(p);
    dp_h1_head *hd = &h->head;
    int req = p->type == HTTP_REQUEST;
    int rc = scan_fields(h);
    if (rc)
        return rc;
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
    h->in_head = 0;
    h->hstate = 0;
    if (hd->chunked)
        p->settings = (void *)&body_settings; /* trailers may follow the body */
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

void dp_h1_next(dp_h1 *h)
{
    memset(&h->head, 0, offsetof(dp_h1_head, headers));
    h->head.nheaders = 0;
    h->head.content_length = -1;
    h->head.host_index = -1;
    h->head.chunked = h->head.keepalive = h->head.upgrade = h->head.expect_continue = 0;
    h->head_complete = h->msg_complete = h->skip_body = h->in_head = 0;
    h->hstate = 0;
    h->cl_count = h->te_count = 0;
    h->head_bytes = 0;
    h->version_end = NULL;
    h->scan_end = NULL;
    h->error_status = 0;
    h->error = NULL;
    h->p.settings = (void *)&head_settings;
}

void dp_h1_init(dp_h1 *h, dp_h1_type type, dp_h1_body_cb on_body_cb, dp_h1_chunk_cb on_chunk,
                void *ud)
{
    llhttp_init(&h->p, type == DP_H1_REQUEST ? HTTP_REQUEST : HTTP_RESPONSE, &head_settings);
    h->p.data = h;
    h->on_body = on_body_cb;
    h->on_chunk = on_chunk;
    h->ud = ud;
    h->paused = 0;
    dp_h1_next(h);
}

static int bad_status(const dp_h1 *h)
{
    return h->p.type == HTTP_REQUEST ? 400 : 502;
}

/* Our callbacks set error_status before failing; llhttp reports a failing on_headers_complete
 * or on_url_complete as its own callback error, which must not hide our status (505, 431). */
static dp_h1_result map_error(dp_h1 *h, llhttp_errno_t e)
{
    if (!h->error_status) {
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
    h->data = data;
    h->end = data + len;
    llhttp_errno_t e = llhttp_execute(&h->p, data, len);
    const char *scan_end = h->scan_end;
    h->scan_end = NULL;
    if (e == HPE_OK) {
        if (scan_end) /* a head ends with a pause (head or message complete): never here */
            return map_error(h, fail(h, bad_status(h), "malformed head"));
        *consumed = len;
        if (!h->head_complete) { /* a head still coming: its bytes so far count */
            h->in_head = 1;
            h->head_bytes += len;
            if (h->head_bytes > DP_MAX_HEAD_BYTES) {
                fail(h, 431, "request header fields too large");
                return DP_H1_ERROR;
            }
        }
        return DP_H1_OK;
    }
    if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
        const char *pos = llhttp_get_error_pos(&h->p);
        /* where llhttp ended the head must be where scan_fields did: bytes llhttp's framing
         * skipped (a CR followed by anything in the status line) are refused, not read as
         * fields */
        if (scan_end && pos != scan_end)
            return map_error(h, fail(h, bad_status(h), "malformed head"));
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
