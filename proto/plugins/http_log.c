/* http-log (PRIORITY 12): kong/plugins/http-log/schema.lua and kong/tools/queue_schema.lua.
 * Entries are batched through a bounded queue (queue.max_entries) so logging never blocks
 * or fails a request. */
#include <string.h>
#include <strings.h>

#include "proto/plugins/common.h"

static const char *const METHODS[] = {"POST", "PUT", "PATCH", NULL};
static const char *const CONTENT_TYPES[] = {"application/json", "application/json; charset=utf-8",
                                            NULL};

static const sl_field queue_fields[] = {
    {.name = "max_batch_size", .type = SL_T_INTEGER, .dflt = "1", .min = 1, .max = 1000000},
    {.name = "max_coalescing_delay", .type = SL_T_NUMBER, .dflt = "1", .min = 0, .max = 3600},
    {.name = "max_entries", .type = SL_T_INTEGER, .dflt = "10000", .min = 1, .max = 1000000},
    {.name = "max_bytes", .type = SL_T_INTEGER},
    {.name = "max_retry_time", .type = SL_T_NUMBER, .dflt = "60"},
    {.name = "initial_retry_delay",
     .type = SL_T_NUMBER,
     .dflt = "0.01",
     .check = sl_pcheck_retry_delay},
    {.name = "max_retry_delay", .type = SL_T_NUMBER, .dflt = "60", .check = sl_pcheck_retry_delay},
    {.name = "concurrency_limit",
     .type = SL_T_INTEGER,
     .dflt = "1",
     .check = sl_pcheck_concurrency},
};

static const sl_field fields[] = {
    {.name = "http_endpoint",
     .type = SL_T_STRING,
     .flags = SL_F_REQUIRED | SL_F_SECRET, /* may carry user:password */
     .check = sl_pcheck_url},
    {.name = "method", .type = SL_T_STRING, .dflt = "\"POST\"", .one_of = METHODS},
    {.name = "content_type",
     .type = SL_T_STRING,
     .dflt = "\"application/json\"",
     .one_of = CONTENT_TYPES},
    {.name = "timeout", .type = SL_T_NUMBER, .dflt = "10000"},
    {.name = "keepalive", .type = SL_T_NUMBER, .dflt = "60000"},
    /* deprecated since Kong 3.3 in favour of queue.*; accepted and kept */
    {.name = "retry_count", .type = SL_T_INTEGER},
    {.name = "queue_size", .type = SL_T_INTEGER},
    {.name = "flush_timeout", .type = SL_T_NUMBER},
    /* header name -> one string (Kong 3.0 dropped arrays); checked below */
    {.name = "headers", .type = SL_T_JSON},
    {.name = "queue",
     .type = SL_T_RECORD,
     .flags = SL_F_REQUIRED,
     .dflt = "{}",
     .fields = queue_fields,
     .nfields = SL_N(queue_fields)},
    {.name = "custom_fields_by_lua", .type = SL_T_JSON},
};

/* Kong's typedefs.headers with http-log's match_none on the names it sets itself. */
static const char *headers_error(const json_t *headers)
{
    static const char *const reserved[] = {"Host", "Content-Length", "Content-Type"};
    const char *k;
    const json_t *v;
    if (json_object_size(headers) > SL_SCHEMA_MAX_MAP)
        return sl_check_msg("length must be at most %d", SL_SCHEMA_MAX_MAP);
    json_object_foreach((json_t *)headers, k, v)
    {
        json_t *name = json_string(k);
        const char *m = name ? sl_check_header_name(name) : "invalid header name";
        json_decref(name);
        if (m == NULL && *k == '\0')
            m = "length must be at least 1";
        if (m != NULL)
            return m;
        for (size_t i = 0; i < SL_N(reserved); i++)
            if (strcasecmp(k, reserved[i]) == 0)
                return sl_check_msg("cannot contain '%s' header", reserved[i]);
        if (!json_is_string(v))
            return "expected a string";
        if (json_string_length(v) > SL_SCHEMA_MAX_STRING)
            return sl_check_msg("length must be at most %d", SL_SCHEMA_MAX_STRING);
    }
    return NULL;
}

static void check(const json_t *config, json_t *errors)
{
    const json_t *headers = json_object_get(config, "headers");
    if (json_is_object(headers)) {
        const char *m = headers_error(headers);
        if (m != NULL) {
            sl_plugin_config_field_error(errors, "headers", m);
            return;
        }
        /* user info in the url already sets Authorization */
        const char *url = json_string_value(json_object_get(config, "http_endpoint"));
        const char *sep = url ? strstr(url, "://") : NULL;
        size_t alen = sep ? strcspn(sep + 3, "/?#") : 0;
        int userinfo = sep && memchr(sep + 3, '@', alen) != NULL;
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)headers, k, v)
        {
            if (userinfo && strcasecmp(k, "Authorization") == 0) {
                json_object_set_new(errors, "config",
                                    json_string("specifying both an 'Authorization' header and "
                                                "user info in 'http_endpoint' is not allowed"));
                return;
            }
        }
    }
    sl_plugin_refuse_lua(config, "custom_fields_by_lua", errors);
}

const sl_plugin_schema sl_plugin_http_log = {
    .name = "http-log",
    .priority = 12,
    .config_fields = fields,
    .nfields = SL_N(fields),
    .check = check,
};
