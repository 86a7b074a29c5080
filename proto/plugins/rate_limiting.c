/* rate-limiting (PRIORITY 910): kong/plugins/rate-limiting/schema.lua (3.x, with the redis
 * record of kong/tools/redis/schema.lua). Only the `local` policy is implemented: counters
 * live in each data plane node, shared by its worker threads. `cluster` needs a database on
 * the node (Kong refuses it in hybrid and DB-less mode too) and `redis` is not implemented;
 * both are refused with a message saying so. The redis fields stay in the schema so configs
 * exported from Kong (which list them with their defaults) load unchanged. */
#include <stdio.h>
#include <string.h>

#include "proto/plugins/common.h"

static const char *const LIMIT_BY[] = {"consumer", "credential", "ip", "service",
                                       "header",   "path",       NULL};
static const char *const POLICIES[] = {"local", "cluster", "redis", NULL};
static const char *const PERIODS[] = {"second", "minute", "hour", "day", "month", "year", NULL};

#define PERIOD(n)                                                                                  \
    {                                                                                              \
        .name = n, .type = SL_T_NUMBER, .check = sl_pcheck_gt0                                     \
    }

static const sl_field redis_fields[] = {
    {.name = "host", .type = SL_T_STRING, .check = sl_check_host},
    {.name = "port", .type = SL_T_INTEGER, .dflt = "6379", .min = 0, .max = 65535},
    {.name = "timeout", .type = SL_T_INTEGER, .dflt = "2000", .min = 0, .max = 2147483646},
    {.name = "username", .type = SL_T_STRING, .flags = SL_F_SECRET},
    {.name = "password", .type = SL_T_STRING, .flags = SL_F_SECRET},
    {.name = "database", .type = SL_T_INTEGER, .dflt = "0"},
    {.name = "ssl", .type = SL_T_BOOLEAN, .dflt = "false"},
    {.name = "ssl_verify", .type = SL_T_BOOLEAN, .dflt = "false"},
    {.name = "server_name", .type = SL_T_STRING, .check = sl_check_sni},
};

static const sl_field fields[] = {
    PERIOD("second"),
    PERIOD("minute"),
    PERIOD("hour"),
    PERIOD("day"),
    PERIOD("month"),
    PERIOD("year"),
    {.name = "limit_by", .type = SL_T_STRING, .dflt = "\"consumer\"", .one_of = LIMIT_BY},
    {.name = "header_name", .type = SL_T_STRING, .check = sl_check_header_name},
    {.name = "path", .type = SL_T_STRING, .check = sl_check_path},
    {.name = "policy", .type = SL_T_STRING, .dflt = "\"local\"", .one_of = POLICIES},
    SL_PF_BOOL("fault_tolerant", "true"),
    {.name = "redis",
     .type = SL_T_RECORD,
     .flags = SL_F_REQUIRED,
     .dflt = "{}",
     .fields = redis_fields,
     .nfields = SL_N(redis_fields)},
    SL_PF_BOOL("hide_client_headers", "false"),
    {.name = "error_code", .type = SL_T_NUMBER, .dflt = "429", .check = sl_pcheck_gt0},
    {.name = "error_message", .type = SL_T_STRING, .dflt = "\"API rate limit exceeded\""},
    {.name = "sync_rate", .type = SL_T_NUMBER, .flags = SL_F_REQUIRED, .dflt = "-1"},
};

/* Kong 3.0-3.5 spelled the redis settings redis_<name>; 3.6+ still accepts them. */
static void prepare(json_t *config)
{
    static const char *const names[] = {"host",     "port", "timeout",    "username",   "password",
                                        "database", "ssl",  "ssl_verify", "server_name"};
    for (size_t i = 0; i < SL_N(names); i++) {
        char old[32];
        snprintf(old, sizeof old, "redis_%s", names[i]);
        json_t *v = json_object_get(config, old);
        if (v == NULL)
            continue;
        json_t *redis = json_object_get(config, "redis");
        if (!json_is_null(v)) {
            if (redis == NULL || json_is_null(redis)) {
                redis = json_object();
                json_object_set_new(config, "redis", redis);
            }
            if (json_is_object(redis))
                json_object_set(redis, names[i], v);
        }
        json_object_del(config, old);
    }
}

/* Kong's custom_validator on the config record: each longer window allows at least as
 * much as each shorter one; sync_rate only with redis. Message as config's own error. */
static const char *record_error(const json_t *config, char *buf, size_t len)
{
    for (size_t i = 0; PERIODS[i]; i++) {
        const json_t *lo = json_object_get(config, PERIODS[i]);
        if (!json_is_number(lo))
            continue;
        for (size_t j = i + 1; PERIODS[j]; j++) {
            const json_t *hi = json_object_get(config, PERIODS[j]);
            if (json_is_number(hi) && json_number_value(hi) < json_number_value(lo)) {
                snprintf(buf, len,
                         "The limit for %s(%.1f) cannot be lower than the limit for %s(%.1f)",
                         PERIODS[j], json_number_value(hi), PERIODS[i], json_number_value(lo));
                return buf;
            }
        }
    }
    const char *policy = json_string_value(json_object_get(config, "policy"));
    double sync = json_number_value(json_object_get(config, "sync_rate"));
    int redis = policy && strcmp(policy, "redis") == 0;
    if (!redis && sync != -1)
        return "sync_rate can only be used with the redis policy";
    if (redis && sync != -1 && sync < 0.02)
        return "sync_rate must be greater than 0.02, or -1 to disable";
    return NULL;
}

static void check(const json_t *config, json_t *errors)
{
    char buf[256];
    const char *m = record_error(config, buf, sizeof buf);
    if (m != NULL) {
        json_object_set_new(errors, "config", json_string(m));
        return;
    }
    const char *policy = json_string_value(json_object_get(config, "policy"));
    if (policy && strcmp(policy, "cluster") == 0)
        sl_plugin_config_field_error(errors, "policy",
                                     "policy 'cluster' is not supported in hybrid or DB-less "
                                     "mode; only 'local' is supported (counters are kept per "
                                     "data plane node)");
    else if (policy && strcmp(policy, "redis") == 0)
        sl_plugin_config_field_error(errors, "policy",
                                     "policy 'redis' is not supported by this gateway; only "
                                     "'local' is supported (counters are kept per data plane "
                                     "node)");
    sl_plugin_at_least_one_of(config, PERIODS, errors);
    sl_plugin_conditional_required(config, "limit_by", "header", "header_name", errors);
    sl_plugin_conditional_required(config, "limit_by", "path", "path", errors);
}

const sl_plugin_schema sl_plugin_rate_limiting = {
    .name = "rate-limiting",
    .priority = 910,
    .config_fields = fields,
    .nfields = SL_N(fields),
    .prepare = prepare,
    .check = check,
    .protocols = sl_plugin_protocols_http,
};
