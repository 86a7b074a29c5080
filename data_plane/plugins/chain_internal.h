#ifndef DP_CHAIN_INTERNAL_H
#define DP_CHAIN_INTERNAL_H

/* What chain.c, edits.c and registry.c share; plugins use plugin.h only. */

#include "data_plane/plugins/plugin.h"

#define DP_PLUGIN_MAX 64 /* compiled-in plugins */

/* The registered plugins, NULL-terminated (registry.c). */
extern const dp_plugin *const dp_plugin_table[];

struct dp_plugin_instance {
    const dp_plugin *plugin;
    int priority;
    int level; /* precedence (chain.c) */
    int initialized;
    void *state;
    /* point into the generation's config, which outlives the chain */
    const char *id, *route_id, *service_id, *consumer_id;
};

/* One plugin name on a route: its best config without a consumer, and the consumer-scoped
 * ones sorted by consumer id (then precedence) for a binary search per request. */
typedef struct {
    const dp_plugin *plugin;
    const dp_plugin_instance *dflt;
    const dp_plugin_instance **cands;
    size_t ncands;
} dp_slot;

struct dp_route_chain {
    dp_slot *slots; /* descending priority */
    size_t n;
    const dp_plugin_instance **cands; /* storage for the slots' cands */
    int has_body_filter, has_request_body, has_header_filter, has_log;
    int wants_body; /* some instance's wants_body said yes */
};

struct dp_plugin_gen {
    dp_consumer *consumers; /* sorted by id */
    size_t nconsumers;
    dp_consumer **by_name; /* sorted by username */
    size_t nnamed;
    const char **groups; /* storage for the consumers' groups */
};

struct dp_plugin_chain_data {
    dp_plugin_gen gen;
    dp_plugin_instance *inst;
    size_t ninst;
    dp_route_chain *routes; /* nroutes + 1: the last is for requests without a route */
    size_t nroutes;
    const dp_plugin **types; /* plugins with shared data, and that data */
    void **shared;
    size_t ntypes;
};

/* Runs the header_filter callbacks of req's chain (chain.c). */
void dp_plugin_run_header_filters(dp_plugin_req *req);

#endif
