/* cors (PRIORITY 2000): kong/plugins/cors/schema.lua. Origins are "*" or regexes; no
 * consumer scope (preflights carry no credentials). */
#include "proto/plugins/common.h"

static const char *const METHODS[] = {"GET",    "HEAD",    "PUT",   "PATCH",   "POST",
                                      "DELETE", "OPTIONS", "TRACE", "CONNECT", NULL};

static const sl_field fields[] = {
    {.name = "origins", .type = SL_T_ARRAY, .elem = SL_T_STRING, .check = sl_pcheck_regex_or_star},
    SL_PF_STRINGS("headers"),
    SL_PF_STRINGS("exposed_headers"),
    {.name = "methods",
     .type = SL_T_ARRAY,
     .elem = SL_T_STRING,
     .dflt = "[\"GET\",\"HEAD\",\"PUT\",\"PATCH\",\"POST\",\"DELETE\",\"OPTIONS\",\"TRACE\","
             "\"CONNECT\"]",
     .one_of = METHODS},
    {.name = "max_age", .type = SL_T_NUMBER},
    SL_PF_BOOL("credentials", "false"),
    SL_PF_BOOL("private_network", "false"),
    SL_PF_BOOL("preflight_continue", "false"),
    SL_PF_BOOL("allow_origin_absent", "true"),
};

const sl_plugin_schema sl_plugin_cors = {
    .name = "cors",
    .priority = 2000,
    .config_fields = fields,
    .nfields = SL_N(fields),
    .flags = SL_PLUGIN_NO_CONSUMER,
    .protocols = sl_plugin_protocols_http,
};
