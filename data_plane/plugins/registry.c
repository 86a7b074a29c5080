/* The compiled-in plugins: one const table attaching phase callbacks to the names of
 * proto's plugin registry (priorities and schemas live there). Adding a plugin: its file
 * defines `const dp_plugin dp_plugin_<name>`, and one line here lists it. */
#include <string.h>

#include "data_plane/plugins/chain_internal.h"

extern const dp_plugin dp_plugin_correlation_id;
extern const dp_plugin dp_plugin_key_auth;
extern const dp_plugin dp_plugin_basic_auth;
extern const dp_plugin dp_plugin_ip_restriction;
extern const dp_plugin dp_plugin_request_size_limiting;
extern const dp_plugin dp_plugin_acl;
extern const dp_plugin dp_plugin_rate_limiting;
extern const dp_plugin dp_plugin_cors;
extern const dp_plugin dp_plugin_request_transformer;
extern const dp_plugin dp_plugin_response_transformer;
extern const dp_plugin dp_plugin_prometheus;
extern const dp_plugin dp_plugin_file_log;
extern const dp_plugin dp_plugin_http_log;

const dp_plugin *const dp_plugin_table[] = {
    &dp_plugin_correlation_id,
    &dp_plugin_key_auth,
    &dp_plugin_basic_auth,
    &dp_plugin_ip_restriction,
    &dp_plugin_request_size_limiting,
    &dp_plugin_acl,
    &dp_plugin_rate_limiting,
    &dp_plugin_cors,
    &dp_plugin_request_transformer,
    &dp_plugin_response_transformer,
    &dp_plugin_prometheus,
    &dp_plugin_file_log,
    &dp_plugin_http_log,
    NULL,
};

const dp_plugin *dp_plugin_find(const char *name)
{
    for (size_t i = 0; dp_plugin_table[i]; i++)
        if (strcmp(dp_plugin_table[i]->name, name) == 0)
            return dp_plugin_table[i];
    return NULL;
}
