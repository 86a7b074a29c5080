/* file-log (PRIORITY 9): kong/plugins/file-log/schema.lua. The data plane writes the lines
 * off the worker loops; custom_fields_by_lua is refused (no Lua here). */
#include "proto/plugins/common.h"

static const sl_field fields[] = {
    {.name = "path",
     .type = SL_T_STRING,
     .flags = SL_F_REQUIRED,
     .max = 4096, /* PATH_MAX */
     .check = sl_pcheck_filename},
    SL_PF_BOOL("reopen", "false"),
    {.name = "custom_fields_by_lua", .type = SL_T_JSON},
};

static void check(const json_t *config, json_t *errors)
{
    sl_plugin_refuse_lua(config, "custom_fields_by_lua", errors);
}

const sl_plugin_schema sl_plugin_file_log = {
    .name = "file-log",
    .priority = 9,
    .config_fields = fields,
    .nfields = SL_N(fields),
    .check = check,
};
