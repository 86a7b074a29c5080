/* key-auth (PRIORITY 1250): kong/plugins/key-auth/schema.lua. No consumer scope: the plugin
 * is what identifies the consumer. */
#include "proto/plugins/common.h"

static const sl_field fields[] = {
    {.name = "key_names",
     .type = SL_T_ARRAY,
     .elem = SL_T_STRING,
     .flags = SL_F_REQUIRED,
     .dflt = "[\"apikey\"]",
     .check = sl_check_header_name},
    SL_PF_BOOL("hide_credentials", "false"),
    SL_PF_STRING("anonymous"),
    SL_PF_BOOL("key_in_header", "true"),
    SL_PF_BOOL("key_in_query", "true"),
    SL_PF_BOOL("key_in_body", "false"),
    SL_PF_BOOL("run_on_preflight", "true"),
    SL_PF_STRING("realm"),
};

const sl_plugin_schema sl_plugin_key_auth = {
    .name = "key-auth",
    .priority = 1250,
    .config_fields = fields,
    .nfields = SL_N(fields),
    .flags = SL_PLUGIN_NO_CONSUMER,
    .protocols = sl_plugin_protocols_http,
};
