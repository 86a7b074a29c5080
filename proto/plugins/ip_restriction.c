/* ip-restriction (PRIORITY 990): kong/plugins/ip-restriction/schema.lua. Addresses and CIDR
 * ranges, IPv4 or IPv6; at least one of allow and deny. */
#include "proto/plugins/common.h"

static const sl_field fields[] = {
    {.name = "allow", .type = SL_T_ARRAY, .elem = SL_T_STRING, .check = sl_check_ip_or_cidr},
    {.name = "deny", .type = SL_T_ARRAY, .elem = SL_T_STRING, .check = sl_check_ip_or_cidr},
    /* the rejection's status and message; NULL: 403 "IP address not allowed: <ip>" */
    {.name = "status", .type = SL_T_INTEGER, .min = 100, .max = 999},
    SL_PF_STRING("message"),
};

static void check(const json_t *config, json_t *errors)
{
    static const char *const lists[] = {"allow", "deny", NULL};
    sl_plugin_at_least_one_of(config, lists, errors);
}

const sl_plugin_schema sl_plugin_ip_restriction = {
    .name = "ip-restriction",
    .priority = 990,
    .config_fields = fields,
    .nfields = SL_N(fields),
    .check = check,
    .protocols = sl_plugin_protocols_http_stream,
};
