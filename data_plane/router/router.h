#ifndef DP_ROUTER_H
#define DP_ROUTER_H

/* Picks the route for a request the way Kong's default router (traditional_compatible) does:
 * methods, hosts (exact, "*.x", "x.*", optional port), paths (prefix, or "~" regex anchored at
 * the start), headers (lower-cased values, "~*" regex), snis; first match in descending
 * (priority, id) order with Kong's priority bits. Built once per config generation, then
 * read-only and shared by all workers. The interface is deliberately narrow so the matching
 * internals can be replaced. */

#include <jansson.h>
#include <stddef.h>

#include "data_plane/util/slice.h"

typedef struct dp_router dp_router;

typedef struct {
    dp_slice method;
    dp_slice host; /* Host without port (any case) */
    int port;      /* the port the client connected to */
    dp_slice path; /* normalized path, no query */
    dp_slice sni;  /* TLS server name; empty for plain HTTP */
    int https;     /* the client connection is TLS */
    const dp_header *headers;
    size_t nheaders;
} dp_router_input;

typedef struct {
    int route;         /* index into the routes array the router was built from */
    size_t prefix_len; /* bytes of path the route's path matched (0 when it has no paths) */
} dp_router_match;

/* Builds a router over a JSON array of Kong route objects. Routes whose index is set in skip
 * (may be NULL; skip[i] nonzero) are left out (e.g. their service is disabled). Returns NULL
 * with err when a route can't be compiled (bad regex). Caller frees with dp_router_free. */
dp_router *dp_router_build(const json_t *routes, const unsigned char *skip, char *err,
                           size_t errlen);

/* Finds the route for in: returns 0 and fills out, or -1 when none matches. Thread-safe. */
int dp_router_find(const dp_router *r, const dp_router_input *in, dp_router_match *out);

void dp_router_free(dp_router *r);

/* Frees the calling thread's regex match scratch (call when a worker thread ends). */
void dp_router_thread_done(void);

/* Normalizes a request path for matching (RFC 3986: percent-decodes unreserved characters,
 * upper-cases other escapes, removes dot segments). Writes at most len bytes to out (cap >= len).
 * Returns the new length, or -1 for a malformed escape. */
long dp_path_normalize(const char *in, size_t len, char *out);

#endif
