/* request-transformer (PRIORITY 801): kong/plugins/request-transformer/schema.lua. Each
 * action is a record of string arrays; add/append/replace/rename entries are "name:value". */
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

static const sl_field remove_fields[] = {
    LIST("body", NULL),
    LIST("headers", sl_pcheck_header),
    LIST("querystring", NULL),
};
static const sl_field rename_fields[] = {
    LIST("body", sl_pcheck_colon_pair),
    LIST("headers", sl_pcheck_header_pair),
    LIST("querystring", sl_pcheck_colon_pair),
};
static const sl_field replace_fields[] = {
    LIST("body", sl_pcheck_colon_pair),
    LIST("headers", sl_pcheck_header_of_pair),
    LIST("querystring", sl_pcheck_colon_pair),
    {.name = "uri", .type = SL_T_STRING},
};
static const sl_field add_fields[] = {
    LIST("body", sl_pcheck_colon_pair),
    LIST("headers", sl_pcheck_header_of_pair),
    LIST("querystring", sl_pcheck_colon_pair),
};

static const sl_field fields[] = {
    {.name = "http_method", .type = SL_T_STRING, .check = sl_check_http_method},
    ACTION("remove", remove_fields),
    ACTION("rename", rename_fields),
    ACTION("replace", replace_fields),
    ACTION("add", add_fields),
    ACTION("append", add_fields),
};

const sl_plugin_schema sl_plugin_request_transformer = {
    .name = "request-transformer",
    .priority = 801,
    .config_fields = fields,
    .nfields = SL_N(fields),
    .protocols = sl_plugin_protocols_http,
};
