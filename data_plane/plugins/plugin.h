#ifndef DP_PLUGIN_H
#define DP_PLUGIN_H

/* The plugin interface: a const table of plugins, each a struct of phase callbacks run in
 * descending priority (Kong's PRIORITY). Per-request state lives in the request arena, so a
 * plugin never mallocs per request. No plugin is registered yet; the engine runs the (empty)
 * chain at every hook point. */

#include <stddef.h>
#include <stdint.h>

#include "data_plane/util/arena.h"
#include "data_plane/util/slice.h"

typedef struct dp_plugin_req dp_plugin_req;

/* What a phase callback returns. */
typedef enum {
    DP_PLUGIN_CONTINUE, /* go on with the next plugin / phase */
    DP_PLUGIN_RESPOND,  /* access only: the plugin answered (see dp_plugin_req.response) */
} dp_plugin_result;

/* The request as plugins see it. Slices point into connection buffers or the arena and are
 * valid for the request's lifetime. */
struct dp_plugin_req {
    dp_arena *arena;
    dp_slice method, path, query, host, client_ip;
    const dp_header *headers;
    size_t nheaders;
    const char *route_id, *service_id;
    /* set by an access callback that returns DP_PLUGIN_RESPOND */
    int response_status;
    const char *response_message; /* becomes {"message": ...}; static or arena memory */
    /* extra upstream request headers added by plugins (arena memory) */
    dp_header *add_headers;
    size_t nadd_headers, cap_add_headers;
    /* response facts for header_filter/log */
    int status;
    uint64_t bytes_in, bytes_out;
    long latency_ms, upstream_latency_ms;
};

typedef struct dp_plugin {
    const char *name;
    int priority;
    /* config: the plugin entity's "config" object (jansson, read-only), parsed once per
     * generation into *state by init (may be NULL). */
    int (*init)(const void *config_json, void **state, char *err, size_t errlen);
    void (*free_state)(void *state);
    dp_plugin_result (*access)(void *state, dp_plugin_req *req);
    void (*header_filter)(void *state, dp_plugin_req *req, int status);
    void (*body_filter)(void *state, dp_plugin_req *req, const char *data, size_t len);
    void (*log)(void *state, dp_plugin_req *req);
} dp_plugin;

/* One configured plugin of a generation's chain. */
typedef struct {
    const dp_plugin *plugin;
    void *state;
    const char *route_id, *service_id; /* NULL: any */
} dp_plugin_instance;

/* A generation's plugins, sorted by descending priority. */
typedef struct {
    dp_plugin_instance *items;
    size_t n;
} dp_plugin_chain;

/* The registered plugins (a const table; empty for now). */
extern const dp_plugin *const dp_plugins[];
extern const size_t dp_plugin_count;

/* Builds the chain from the config's "plugins" array (a jansson array). Unknown plugin names
 * are refused with err. Caller frees with dp_plugin_chain_free. */
int dp_plugin_chain_build(dp_plugin_chain *c, const void *plugins_json, char *err, size_t errlen);
void dp_plugin_chain_free(dp_plugin_chain *c);

/* Phase runners: call each applicable plugin's callback in order. */
dp_plugin_result dp_plugin_run_access(const dp_plugin_chain *c, dp_plugin_req *req);
void dp_plugin_run_header_filter(const dp_plugin_chain *c, dp_plugin_req *req, int status);
void dp_plugin_run_body_filter(const dp_plugin_chain *c, dp_plugin_req *req, const char *data,
                               size_t len);
void dp_plugin_run_log(const dp_plugin_chain *c, dp_plugin_req *req);

#endif
