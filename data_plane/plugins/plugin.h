#ifndef DP_PLUGIN_H
#define DP_PLUGIN_H

/* The plugin interface. A plugin is a const struct of phase callbacks (registry.c lists them);
 * its name, PRIORITY and config schema come from proto/plugin_schemas.h, so the control plane
 * and the data plane agree on them. Chains are resolved when a generation is built: for each
 * route, one slot per plugin name in descending priority, each slot holding the most specific
 * config (Kong's precedence: route+service+consumer > route+consumer > service+consumer >
 * route+service > consumer > route > service > global); consumer-scoped configs are picked
 * when the slot runs, after authentication set the consumer. Per-request state lives in the
 * request arena, so a plugin never mallocs per request.
 *
 * Phases, in order:
 *   access        request head received, before the upstream. May end the request with a
 *                 response (dp_plugin_respond): later access plugins and the upstream are
 *                 skipped; header_filter and log still run.
 *   request_body  each piece of the request body as it streams upstream (de-chunked). May
 *                 refuse (dp_plugin_respond): the proxy answers instead of the upstream.
 *   header_filter the response head (upstream's, or one the gateway makes): edit it with
 *                 dp_plugin_resp_header_*.
 *   body_filter   each piece of the response body; may replace *chunk with arena memory, hold
 *                 bytes back (len 0) and emit them later; called once more with eof = 1.
 *   log           after the response is sent.
 *
 * Registration: registry.c lists `const dp_plugin dp_plugin_<name, '-' as '_'>` (e.g.
 * dp_plugin_request_transformer) for each plugin file that exists in data_plane/plugins/. */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "data_plane/http/h1.h"
#include "data_plane/util/arena.h"
#include "data_plane/util/slice.h"

typedef struct dp_plugin_req dp_plugin_req;
typedef struct dp_plugin_gen dp_plugin_gen;   /* a generation's consumers (opaque) */
typedef struct dp_route_chain dp_route_chain; /* a route's resolved slots (opaque) */
typedef struct dp_plugin_instance dp_plugin_instance;

/* What an access or request_body callback returns. */
typedef enum {
    DP_PLUGIN_CONTINUE, /* go on with the next plugin / phase */
    DP_PLUGIN_RESPOND,  /* the plugin answered: dp_plugin_respond set the response */
} dp_plugin_result;

/* A consumer of the generation, with its ACL groups. Generation memory. */
typedef struct {
    const char *id, *username, *custom_id; /* NULL when absent */
    const char *const *groups;
    size_t ngroups;
} dp_consumer;

/* A header list a plugin edits; items and their bytes are arena memory. */
typedef struct {
    dp_header *items;
    size_t n, cap;
} dp_header_list;

/* The request as plugins see it. Slices point into connection buffers or the arena and stay
 * valid for the request's lifetime. */
struct dp_plugin_req {
    dp_arena *arena;
    const dp_plugin_gen *gen;
    const dp_route_chain *chain;       /* NULL: no chain (request not routed) */
    const dp_plugin_instance **chosen; /* per slot, the config in use (arena) */
    void **ctx;                        /* per slot, the plugin's per-request state (arena) */

    dp_slice method, path, query, host, client_ip, request_id;
    int https;
    int64_t started_at_ms;    /* wall clock, ms since the epoch */
    const dp_header *headers; /* request headers as received */
    size_t nheaders;
    int64_t content_length; /* -1: none */
    int chunked;
    /* the request body when all of it arrived with the head (not chunked); body_complete 0:
     * not available to the access phase */
    dp_slice body;
    int body_complete;
    uint64_t body_seen; /* request body bytes streamed so far (request_body phase) */
    const char *route_id, *route_name, *service_id, *service_name;

    /* authentication (set by auth plugins with dp_plugin_authenticate) */
    const dp_consumer *consumer;
    const char *credential_id;
    int anonymous;

    /* what goes upstream: an edited copy of the headers once a plugin changed them, a new
     * query string, a new path (request-transformer's replace.uri) */
    dp_header_list up_headers;
    int up_headers_set;
    dp_slice up_query;
    int up_query_set;
    dp_slice up_path;
    int up_path_set;
    /* a new method (request-transformer's http_method) and a whole new body (arena; sent with
     * its own Content-Length); set them with dp_plugin_up_method / dp_plugin_up_body */
    dp_slice up_method;
    int up_method_set;
    dp_slice up_body;
    int up_body_set;
    /* the proxy holds the whole body (read before access because a plugin's wants_body said
     * so, or the request has none): only then may a plugin replace it */
    int body_replaceable;

    /* the response a plugin gave (dp_plugin_respond) */
    int response_status;
    const char *response_message; /* {"message": ...}, JSON-escaped by the framework */
    dp_slice response_body;       /* used instead of the message when response_body_set */
    int response_body_set;
    /* response headers: before header_filter, the headers plugins want on the response (a
     * same-named upstream header is replaced); during header_filter, the full list */
    dp_header_list resp_headers;
    int in_header_filter;
    int resp_body_changed; /* set in header_filter when body_filter will change the body */

    /* response facts for header_filter/log */
    int status;
    uint64_t bytes_in, bytes_out;
    long latency_ms, upstream_latency_ms;
};

typedef struct dp_plugin {
    const char *name; /* the proto schema's name; priority comes from the schema */
    /* Once per generation that uses the plugin: builds data all its instances share (e.g. a
     * credential index) from the whole config. NULL: none. */
    int (*gen_init)(const json_t *config, const dp_plugin_gen *gen, void **shared, char *err,
                    size_t errlen);
    void (*gen_free)(void *shared);
    /* Once per configured instance: parses the validated config (defaults filled) into
     * *state. `id` is the plugin entity's id. NULL: state is NULL. */
    int (*init)(const json_t *config, const char *id, void *shared, void **state, char *err,
                size_t errlen);
    void (*free_state)(void *state);
    dp_plugin_result (*access)(void *state, dp_plugin_req *req, void **ctx);
    dp_plugin_result (*request_body)(void *state, dp_plugin_req *req, void **ctx, const char *data,
                                     size_t len);
    void (*header_filter)(void *state, dp_plugin_req *req, void **ctx);
    void (*body_filter)(void *state, dp_plugin_req *req, void **ctx, dp_slice *chunk, int eof);
    void (*log)(void *state, dp_plugin_req *req, void **ctx);
    /* Whether this instance's access phase needs the whole request body (e.g. to rewrite it):
     * the proxy then reads a Content-Length body up to DP_PLUGIN_MAX_BODY before access (into
     * req->body, body_complete and body_replaceable set). NULL: never. */
    int (*wants_body)(const void *state);
} dp_plugin;

/* The largest request body the proxy reads before access for wants_body plugins; larger and
 * chunked bodies stream as usual (body_complete stays 0). */
#define DP_PLUGIN_MAX_BODY (1024 * 1024)

/* A generation's plugins: per route, the resolved slots. */
typedef struct dp_plugin_chain_data dp_plugin_chain_data;
typedef struct {
    size_t n; /* configured, enabled instances (0: no plugin work at all) */
    dp_plugin_chain_data *d;
} dp_plugin_chain;

/* --- registry (registry.c) --- */

/* The plugin named name, or NULL. */
const dp_plugin *dp_plugin_find(const char *name);
/* NULL-terminated names of the plugins this data plane has (static memory; chain.c). */
const char *const *dp_plugin_names(void);

/* --- building (chain.c) --- */

/* Builds the chains from a generation's config ({"plugins", "routes", "consumers", "acls",
 * credentials...}). Unknown plugin names and bad configs are refused with err. Free with
 * dp_plugin_chain_free. */
int dp_plugin_chain_build(dp_plugin_chain *c, const json_t *config, char *err, size_t errlen);
void dp_plugin_chain_free(dp_plugin_chain *c);

/* --- the proxy's side (chain.c) --- */

/* Starts a routed request on route_index (the route's index in config["routes"]): picks its
 * chain and allocates the per-slot arrays in req->arena. The caller filled the request
 * fields. Returns -1 when the arena is exhausted. */
int dp_plugin_req_begin(dp_plugin_req *req, const dp_plugin_chain *c, size_t route_index);

dp_plugin_result dp_plugin_run_access(const dp_plugin_chain *c, dp_plugin_req *req);
/* True when some access plugin of the request's chain wants the whole body (wants_body). */
int dp_plugin_wants_body(const dp_plugin_req *req);
/* Before header_filter of a proxied response: when header_filter plugins will run, puts the
 * gateway's own response headers (Via, appended to rh's; X-Sluice-Upstream-Latency and
 * X-Sluice-Proxy-Latency, given in ms) among the response headers so plugins see and may
 * remove them, like Kong sets its headers before plugins' header_filter. Returns `headers`
 * (DP_HDR_*) without the bits now handled, for dp_rewrite_response. */
unsigned dp_plugin_own_headers(dp_plugin_req *req, const dp_h1_head *rh, unsigned headers,
                               long upstream_ms, long proxy_ms);
/* Streams a piece of request body through request_body callbacks. */
dp_plugin_result dp_plugin_run_request_body(dp_plugin_req *req, const char *data, size_t len);
/* Runs header_filter for an upstream response head and returns the head to send: rh itself
 * when nothing changed, else an arena copy with the edited headers (Content-Length dropped
 * and chunked set when the body changes). NULL when the arena is exhausted. */
const dp_h1_head *dp_plugin_response_filter(dp_plugin_req *req, const dp_h1_head *rh);
/* When dp_plugin_response_filter returned rh although plugins set response headers (they need
 * no merging: no header_filter or log plugin, no same-named upstream header), they go after
 * the head dp_rewrite_response wrote: _size is the room they need past its cap, and
 * dp_plugin_resp_append inserts them before the head's blank line. Returns the new length
 * (len when nothing to add), -1 when cap is short. */
size_t dp_plugin_resp_append_size(const dp_plugin_req *req);
long dp_plugin_resp_append(const dp_plugin_req *req, char *head, size_t len, size_t cap);
/* Runs body_filter callbacks over a response body piece (eof: the body ended; chunk may be
 * empty). *chunk gets what to send. */
void dp_plugin_run_body_filter(dp_plugin_req *req, dp_slice *chunk, int eof);
/* True when some body_filter may run for this request. */
int dp_plugin_has_body_filter(const dp_plugin_req *req);
void dp_plugin_run_log(const dp_plugin_chain *c, dp_plugin_req *req);

/* A response the gateway makes (a plugin's, or the proxy's own errors): runs header_filter
 * (when the request was routed), then writes the whole response into out: the plugin's body or
 * {"message": message}, plugin headers, Server (when server_token), latency and request id. Returns
 * the length or -1 when cap is too small; dp_plugin_response_size gives a sufficient cap. */
size_t dp_plugin_response_size(const dp_plugin_req *req, const char *message);
long dp_plugin_render_response(dp_plugin_req *req, int status, const char *message, int close,
                               int server_token, dp_slice request_id, long latency_ms, char *out,
                               size_t cap);
/* The request head to send upstream: h itself when no plugin edited headers or the query,
 * else an arena copy carrying the edits. NULL when the arena is exhausted. */
const dp_h1_head *dp_plugin_upstream_head(dp_plugin_req *req, const dp_h1_head *h);
/* When dp_plugin_upstream_head returned h although plugins edited headers (they only appended
 * headers dp_rewrite_request passes as they are: X-Consumer-* and such), those go after the
 * head dp_rewrite_request wrote: _size is the room they need past its cap, and
 * dp_plugin_up_append inserts them before the head's blank line. Returns the new length (len
 * when nothing to add), -1 when cap is short. */
size_t dp_plugin_up_append_size(const dp_plugin_req *req, const dp_h1_head *h);
long dp_plugin_up_append(const dp_plugin_req *req, const dp_h1_head *h, char *head, size_t len,
                         size_t cap);

/* --- for plugins (chain.c) --- */

/* Ends the request: status and {"message": message} (message copied and JSON-escaped;
 * NULL: no body). Returns DP_PLUGIN_RESPOND for `return dp_plugin_respond(...)`. */
dp_plugin_result dp_plugin_respond(dp_plugin_req *req, int status, const char *message);
/* Same with a raw body (copied) and its content type (NULL: no Content-Type). */
dp_plugin_result dp_plugin_respond_body(dp_plugin_req *req, int status, dp_slice body,
                                        const char *content_type);

/* The current value of a request header as it will go upstream (edits included); NULL when
 * absent. */
const dp_slice *dp_plugin_req_header(dp_plugin_req *req, const char *name);
/* Upstream request header edits. set replaces every header named name with one; add appends;
 * remove drops all. Values are copied. Return 0, -1 on arena exhaustion or past
 * DP_MAX_HEADERS. */
int dp_plugin_up_header_set(dp_plugin_req *req, const char *name, dp_slice value);
int dp_plugin_up_header_add(dp_plugin_req *req, const char *name, dp_slice value);
int dp_plugin_up_header_remove(dp_plugin_req *req, const char *name);
/* The method sent upstream (copied). Returns 0, -1 on arena exhaustion. */
int dp_plugin_up_method(dp_plugin_req *req, dp_slice method);
/* Replaces the body sent upstream (copied; Content-Length follows). Returns 0, or -1 when the
 * body isn't req->body_replaceable or on arena exhaustion. */
int dp_plugin_up_body(dp_plugin_req *req, dp_slice body);

/* Response header edits (any phase; see resp_headers). */
const dp_slice *dp_plugin_resp_header(dp_plugin_req *req, const char *name);
int dp_plugin_resp_header_set(dp_plugin_req *req, const char *name, dp_slice value);
int dp_plugin_resp_header_add(dp_plugin_req *req, const char *name, dp_slice value);
int dp_plugin_resp_header_remove(dp_plugin_req *req, const char *name);

/* Consumers of the generation. NULL when absent. */
const dp_consumer *dp_plugin_consumer_by_id(const dp_plugin_gen *g, const char *id);
const dp_consumer *dp_plugin_consumer_by_username(const dp_plugin_gen *g, const char *name);

/* Auth plugins: sets the consumer and credential of the request and the X-Consumer-ID,
 * X-Consumer-Username, X-Consumer-Custom-ID, X-Credential-Identifier headers upstream (absent
 * values remove client-sent ones). */
void dp_plugin_authenticate(dp_plugin_req *req, const dp_consumer *consumer,
                            const char *credential_id);
/* The `anonymous` option: authenticates as that consumer (id or username) with
 * X-Anonymous-Consumer: true. Returns 0, or -1 when no such consumer (the caller answers 500
 * like Kong). */
int dp_plugin_authenticate_anonymous(dp_plugin_req *req, const char *anonymous);

#endif
