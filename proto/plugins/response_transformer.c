/* response-transformer (PRIORITY 800): kong/plugins/response-transformer/schema.lua. Headers
 * and top-level JSON body keys; json_types says how add/append/replace values are typed. */
#include "proto/plugins/common.h"

#define LIST(n, chk)                                                                               \
    {                                                                                              \
        .name = n, .type = SL_T_ARRAY, .elem = SL_T_STRING, .flags = SL_F_REQUIRED, .dflt = "[]",  \
        .check = chk                                                                               \
    }
#define ACTION(n, f)                                                                               \
    {                                                                                              \
        .name = n, .type = SL_T_RECORD, .flags = SL_F_REQUIRED, .dflt = "{}", .fields = f,         \
        .nfields = SL_N(f)                                                                         \
    }

static const char *const JSON_TYPES[] = {"boolean", "number", "string", NULL};

static const sl_field remove_fields[] = {
    LIST("json", NULL),
    LIST("headers", NULL),
};
static const sl_field rename_fields[] = {
    LIST("headers", sl_pcheck_colon_pair),
    LIST("json", sl_pcheck_colon_pair),
};
static const sl_field change_fields[] = {
    LIST("json", sl_pcheck_colon_pair),
    {.name = "json_types",
     .type = SL_T_ARRAY,
     .elem = SL_T_STRING,
     .flags = SL_F_REQUIRED,
     .dflt = "[]",
     .one_of = JSON_TYPES},
    LIST("headers", sl_pcheck_colon_pair),
};

static const sl_field fields[] = {
    ACTION("remove", remove_fields),  ACTION("rename", rename_fields),
    ACTION("replace", change_fields), ACTION("add", change_fields),
    ACTION("append", change_fields),
};

const sl_plugin_schema sl_plugin_response_transformer = {
    .name = "response-transformer",
    .priority = 800,
    .config_fields = fields,
    .nfields = SL_N(fields),
    .protocols = sl_plugin_protocols_http,
};
