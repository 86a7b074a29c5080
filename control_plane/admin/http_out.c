/* HTTP/1.1 response serialization for the Admin API. */

#include "control_plane/admin/http_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/http_status.h"
#include "proto/version.h"

/* Builds the bytes from an already serialized body. */
static char *build(int status, const char *body, size_t blen, const char *extra, int head,
                   int keepalive, unsigned long latency_ms, size_t *len)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);

    int no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
    size_t elen = extra ? strnlen(extra, 512) : 0;
    char hdr[1024];
    int n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 %d %s\r\n"
                     "Date: %s\r\n"
                     "%s"
                     "Connection: %s\r\n"
                     "Access-Control-Allow-Origin: *\r\n"
                     "Server: sluice/" SL_VERSION "\r\n"
                     "X-Sluice-Admin-Latency: %lu\r\n",
                     status, sl_http_reason(status), date,
                     no_body ? "" : "Content-Type: application/json; charset=utf-8\r\n",
                     keepalive ? "keep-alive" : "close", latency_ms);
    if (n < 0 || (size_t)n >= sizeof(hdr))
        return NULL;
    char clen[48] = "";
    if (!no_body)
        snprintf(clen, sizeof(clen), "Content-Length: %zu\r\n", blen);
    size_t send_body = (head || no_body) ? 0 : blen;
    size_t total = (size_t)n + strlen(clen) + elen + 2 + send_body;
    char *out = malloc(total + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    memcpy(out + o, hdr, (size_t)n);
    o += (size_t)n;
    memcpy(out + o, clen, strlen(clen));
    o += strlen(clen);
    if (elen)
        memcpy(out + o, extra, elen);
    o += elen;
    memcpy(out + o, "\r\n", 2);
    o += 2;
    if (send_body)
        memcpy(out + o, body, send_body);
    o += send_body;
    out[o] = 0;
    *len = o;
    return out;
}

char *cp_http_response(const cp_admin_response *resp, int head, int keepalive,
                       unsigned long latency_ms, size_t *len)
{
    char *body = NULL;
    size_t blen = 0;
    if (resp->body) {
        body = json_dumps(resp->body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!body)
            return NULL;
        blen = strlen(body);
    }
    /* extra_headers must be whole "Name: value\r\n" lines: a dispatcher bug must not be able to
     * end the header section early, so a stray bare CR or LF drops them all. */
    const char *extra = resp->extra_headers;
    size_t elen = strnlen(extra, sizeof(resp->extra_headers));
    if (elen == sizeof(resp->extra_headers))
        extra = "";
    for (size_t i = 0; i < elen && extra[0]; i++) {
        if ((extra[i] == '\r' && extra[i + 1] != '\n') ||
            (extra[i] == '\n' && (i == 0 || extra[i - 1] != '\r')) ||
            (extra[i] == '\n' && extra[i + 1] == '\r'))
            extra = "";
    }
    if (extra[0] && (elen < 2 || extra[elen - 1] != '\n'))
        extra = "";
    int status = resp->status >= 100 && resp->status <= 599 ? resp->status : 500;
    char *out = build(status, body ? body : "", blen, extra, head, keepalive, latency_ms, len);
    free(body);
    return out;
}

char *cp_http_message(int status, const char *message, const char *extra, int head, int keepalive,
                      size_t *len)
{
    json_t *j = json_pack("{s:s}", "message", message);
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!body)
        return NULL;
    char *out = build(status, body, strlen(body), extra, head, keepalive, 0, len);
    free(body);
    return out;
}
