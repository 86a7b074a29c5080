/* correlation-id (PRIORITY 100001): kong/plugins/correlation-id/schema.lua. */
#include "proto/plugins/common.h"

static const char *const GENERATORS[] = {"uuid", "uuid#counter", "tracker", NULL};

static const sl_field fields[] = {
    {.name = "header_name", .type = SL_T_STRING, .dflt = "\"Kong-Request-ID\""},
    {.name = "generator",
     .type = SL_T_STRING,
     .flags = SL_F_REQUIRED,
     .dflt = "\"uuid#counter\"",
     .one_of = GENERATORS},
    SL_PF_BOOL("echo_downstream", "false"),
};

const sl_plugin_schema sl_plugin_correlation_id = {
    .name = "correlation-id",
    .priority = 100001,
    .config_fields = fields,
    .nfields = SL_N(fields),
    .protocols = sl_plugin_protocols_http,
};
