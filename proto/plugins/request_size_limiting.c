/* request-size-limiting (PRIORITY 951): kong/plugins/request-size-limiting/schema.lua. */
#include "proto/plugins/common.h"

static const char *const UNITS[] = {"megabytes", "kilobytes", "bytes", NULL};

static const sl_field fields[] = {
    {.name = "allowed_payload_size", .type = SL_T_INTEGER, .flags = SL_F_REQUIRED, .dflt = "128"},
    {.name = "size_unit",
     .type = SL_T_STRING,
     .flags = SL_F_REQUIRED,
     .dflt = "\"megabytes\"",
     .one_of = UNITS},
    SL_PF_BOOL("require_content_length", "false"),
};

const sl_plugin_schema sl_plugin_request_size_limiting = {
    .name = "request-size-limiting",
    .priority = 951,
    .config_fields = fields,
    .nfields = SL_N(fields),
    .protocols = sl_plugin_protocols_http,
};
