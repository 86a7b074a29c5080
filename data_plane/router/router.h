#ifndef DP_ROUTER_H
#define DP_ROUTER_H

/* Picks the route for a request the way Kong's default router (traditional_compatible) does.
 *
 * A route matches when every field it sets matches: methods (exact), hosts (exact, "*.x"
 * suffix, "x.*" prefix, "host:port" also needs the listener port; case-insensitive), paths
 * (plain = prefix; "~" = PCRE2 regex anchored at the start, JIT), headers (names and plain
 * values case-insensitive, "~*" values are caseless regexes; several values OR, several headers
 * AND), snis (only checked on https), protocols (a route that accepts only https still matches
 * plain http, so the caller can answer 426 or redirect, as Kong does).
 *
 * Among matching routes the first in Kong's order wins: its 64-bit priority (number of fields
 * set, all-plain hosts, header count, regex path, regex_priority, plain prefix length), then
 * created_at ascending, then id. A route whose paths differ in kind or length is split into
 * one sub-route per group, each with its own priority, as Kong splits them.
 *
 * Built once per config generation off the workers, then immutable and shared by all workers.
 * A lookup costs the same whatever the number of routes for host and prefix matches (hash of
 * hosts, hash of (host, prefix) probed once per stored prefix length); regexes are evaluated
 * only for the hosts that have regex routes, in priority order, and only until a better
 * candidate is known. No allocation on the match path. */

#include <jansson.h>
#include <stddef.h>

#include "data_plane/util/slice.h"

typedef struct dp_router dp_router;

enum { DP_ROUTER_PROTO_HTTP = 1, DP_ROUTER_PROTO_HTTPS = 2 };

typedef struct {
    dp_slice method;
    dp_slice host; /* Host without port (any case) */
    int port;      /* the port the client connected to (Kong's net.dst.port) */
    dp_slice path; /* normalized path (dp_path_normalize), no query */
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
 * with err when a route can't be compiled (bad regex, bad host). Logs one info line with the
 * route count, build time and memory. Caller frees with dp_router_free. */
dp_router *dp_router_build(const json_t *routes, const unsigned char *skip, char *err,
                           size_t errlen);

/* Finds the route for in: returns 0 and fills out, or -1 when none matches. Thread-safe. */
int dp_router_find(const dp_router *r, const dp_router_input *in, dp_router_match *out);

void dp_router_free(dp_router *r);

/* Size facts of a built router (any pointer may be NULL). */
void dp_router_stats(const dp_router *r, size_t *routes, size_t *matchers, size_t *bytes,
                     double *build_ms);

/* Frees the calling thread's regex match scratch (call when a worker thread ends). */
void dp_router_thread_done(void);

/* Normalizes a request path for matching the way Kong does (kong.tools.uri normalize with
 * merged slashes): percent-decodes every escape except reserved characters (which keep an
 * upper-case escape) and control characters (kept escaped, so a decoded path can never carry
 * CR/LF into a header), removes dot segments, merges "//". Writes at most len bytes to out
 * (cap >= len). Returns the new length, or -1 for a malformed escape. */
long dp_path_normalize(const char *in, size_t len, char *out);

/* Kong's v0 upstream path (router utils get_upstream_uri): joins the service path (NULL: "/")
 * and the request path (normalized) after stripping the matched prefix_len bytes when
 * strip_path is set, de-duplicating the slash at the join, then escapes what must not travel
 * raw in a request line. Writes to out (cap >= dp_router_upstream_path_cap()) and returns the
 * length, or -1 when out is too small. No query: the caller appends it. */
long dp_router_upstream_path(const char *service_path, int strip_path, dp_slice path,
                             size_t prefix_len, char *out, size_t cap);

/* The out size dp_router_upstream_path needs for these inputs. */
size_t dp_router_upstream_path_cap(const char *service_path, size_t path_len);

#endif
