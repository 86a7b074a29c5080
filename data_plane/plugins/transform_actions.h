#ifndef DP_TRANSFORM_ACTIONS_H
#define DP_TRANSFORM_ACTIONS_H

/* What request-transformer and response-transformer share: Kong's five actions, in the order
 * Kong applies them (remove, rename, replace, add, append), their "name:value" lists parsed
 * once per config, and the header edits, applied to upstream or response headers through the
 * same code. */

#include <jansson.h>
#include <stddef.h>

#include "data_plane/plugins/plugin.h"

enum { DP_TX_REMOVE, DP_TX_RENAME, DP_TX_REPLACE, DP_TX_ADD, DP_TX_APPEND, DP_TX_ACTIONS };

/* response-transformer's json_types: how an added JSON value is typed. */
typedef enum { DP_TX_STRING, DP_TX_NUMBER, DP_TX_BOOLEAN } dp_tx_type;

typedef struct {
    char *name, *value; /* value NULL for remove; for rename, value is the new name */
    dp_tx_type type;
} dp_tx_item;

typedef struct {
    dp_tx_item *items;
    size_t n;
} dp_tx_list;

/* Parses config[<action>][field] ("name:value", or a bare name for remove) into out; with
 * types_field, the i-th item takes its type from config[<action>][types_field][i]. 0, or -1
 * when out of memory (out is then safe to free). */
int dp_tx_parse(const json_t *config, int action, const char *field, const char *types_field,
                dp_tx_list *out);
void dp_tx_free(dp_tx_list *l);

/* One side's headers: the upstream request's or the response's. */
typedef struct {
    const dp_slice *(*get)(dp_plugin_req *req, const char *name);
    int (*set)(dp_plugin_req *req, const char *name, dp_slice value);
    int (*add)(dp_plugin_req *req, const char *name, dp_slice value);
    int (*remove)(dp_plugin_req *req, const char *name);
} dp_tx_headers;

extern const dp_tx_headers dp_tx_upstream_headers, dp_tx_response_headers;

/* Applies lists[DP_TX_ACTIONS] to one side's headers: rename and replace only act on present
 * headers, add only on absent ones, append always adds another value. */
void dp_tx_apply_headers(const dp_tx_list *lists, const dp_tx_headers *h, dp_plugin_req *req);

#endif
