/* basic-auth (PRIORITY 1100): kong/plugins/basic-auth/schema.lua. No consumer scope. */
#include "proto/plugins/common.h"

static const sl_field fields[] = {
    SL_PF_STRING("anonymous"),
    SL_PF_BOOL("hide_credentials", "false"),
    {.name = "realm", .type = SL_T_STRING, .flags = SL_F_REQUIRED, .dflt = "\"service\""},
};

const sl_plugin_schema sl_plugin_basic_auth = {
    .name = "basic-auth",
    .priority = 1100,
    .config_fields = fields,
    .nfields = SL_N(fields),
    .flags = SL_PLUGIN_NO_CONSUMER,
    .protocols = sl_plugin_protocols_http,
};
