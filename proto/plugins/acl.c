/* acl (PRIORITY 950): kong/plugins/acl/schema.lua. Exactly one of allow and deny. */
#include "proto/plugins/common.h"

static const sl_field fields[] = {
    SL_PF_STRINGS("allow"),
    SL_PF_STRINGS("deny"),
    SL_PF_BOOL("hide_groups_header", "false"),
    SL_PF_BOOL("always_use_authenticated_groups", "false"),
};

static void check(const json_t *config, json_t *errors)
{
    static const char *const lists[] = {"allow", "deny", NULL};
    sl_plugin_only_one_of(config, lists, errors);
    sl_plugin_at_least_one_of(config, lists, errors);
}

const sl_plugin_schema sl_plugin_acl = {
    .name = "acl",
    .priority = 950,
    .config_fields = fields,
    .nfields = SL_N(fields),
    .check = check,
    .flags = SL_PLUGIN_NO_CONSUMER,
    .protocols = sl_plugin_protocols_http,
};
