#ifndef DP_REWRITE_H
#define DP_REWRITE_H

/* Builds the heads the proxy sends: the upstream request (hop-by-hop headers removed, the
 * X-Forwarded-* family, X-Real-IP, Via, Host per preserve_host, our own body framing) and the
 * client response. Pure functions writing into a caller buffer, so they are unit-tested and
 * fuzzed without sockets. */

#include <stdint.h>

#include "data_plane/http/h1.h"

/* Which of our headers are added (Kong's `headers` setting; all on by default). */
enum {
    DP_HDR_VIA = 1 << 0,
    DP_HDR_LATENCY = 1 << 1,
    DP_HDR_REQUEST_ID = 1 << 2,
    DP_HDR_SERVER = 1 << 3,
    DP_HDR_ALL = 0xff,
};

typedef struct {
    dp_slice upstream_uri; /* path and query sent upstream */
    dp_slice host;         /* Host value sent upstream */
    dp_slice client_ip;    /* text form of the peer address */
    const char *scheme;    /* "http" or "https": X-Forwarded-Proto */
    dp_slice fwd_host;     /* X-Forwarded-Host: the client's Host without its port */
    int fwd_port;          /* X-Forwarded-Port: the port the client connected to */
    dp_slice fwd_path;     /* X-Forwarded-Path: the request path */
    dp_slice fwd_prefix;   /* X-Forwarded-Prefix: the stripped prefix; empty: not sent */
    dp_slice request_id;   /* X-Sluice-Request-Id; empty: not sent */
    unsigned headers;      /* DP_HDR_* */
    int raw; /* every header slice points into the bytes dp_h1 parsed (not a rebuilt head) */
} dp_upstream_req_info;

/* Writes the upstream request head for req into out[0..cap). The body framing sent upstream is
 * req's: Content-Length n, or chunked (re-framed by the proxy). Returns the length, or -1 when
 * cap is too small (dp_rewrite_request_size gives a sufficient cap). */
long dp_rewrite_request(const dp_h1_head *req, const dp_upstream_req_info *info, char *out,
                        size_t cap);

/* A cap that always suffices for dp_rewrite_request. */
size_t dp_rewrite_request_size(const dp_h1_head *req, const dp_upstream_req_info *info);

typedef struct {
    int client_minor;    /* the client's HTTP/1.x minor version */
    int head_request;    /* the request was HEAD: no body follows whatever the headers say */
    int close;           /* send Connection: close */
    int chunked;         /* we frame the body as chunked (upstream had no Content-Length) */
    long upstream_ms;    /* X-Sluice-Upstream-Latency; <0: not sent */
    long proxy_ms;       /* X-Sluice-Proxy-Latency; <0: not sent */
    dp_slice request_id; /* empty: not sent */
    unsigned headers;    /* DP_HDR_* */
    int raw; /* every header slice points into the bytes dp_h1 parsed (not a rebuilt head) */
} dp_client_resp_info;

/* Writes the client response head for an upstream response head. Returns the length or -1
 * when cap is too small (dp_rewrite_response_size gives a sufficient cap). */
long dp_rewrite_response(const dp_h1_head *resp, const dp_client_resp_info *info, char *out,
                         size_t cap);
size_t dp_rewrite_response_size(const dp_h1_head *resp);

/* True when name is a hop-by-hop header that a proxy must not forward. */
int dp_is_hop_by_hop(dp_slice name);

#endif
