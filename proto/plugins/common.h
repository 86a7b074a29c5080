#ifndef SL_PLUGINS_COMMON_H
#define SL_PLUGINS_COMMON_H

/* What the per-plugin schema files share: value checks with Kong's messages, the entity-check
 * helpers that put messages where Kong puts them, and each plugin's schema entry. */

#include <jansson.h>

#include "proto/plugin_schemas.h"
#include "proto/schema.h"
#include "proto/schema_checks.h"

#define SL_N(a) (sizeof(a) / sizeof((a)[0]))

/* Field shorthands for the tables: a boolean with Kong's `required = true` and a default, an
 * optional string, an array of strings. */
#define SL_PF_BOOL(n, d)                                                                           \
    {                                                                                              \
        .name = n, .type = SL_T_BOOLEAN, .flags = SL_F_REQUIRED, .dflt = d                         \
    }
#define SL_PF_STRING(n)                                                                            \
    {                                                                                              \
        .name = n, .type = SL_T_STRING                                                             \
    }
#define SL_PF_STRINGS(n)                                                                           \
    {                                                                                              \
        .name = n, .type = SL_T_ARRAY, .elem = SL_T_STRING                                         \
    }

/* Protocol lists: Kong's typedefs.protocols_http, and ip-restriction's wider default. */
extern const char *const sl_plugin_protocols_http[];
extern const char *const sl_plugin_protocols_http_stream[];

/* --- value checks (sl_value_check) --- */
const char *sl_pcheck_gt0(const json_t *v);            /* Kong's gt = 0 */
const char *sl_pcheck_colon_pair(const json_t *v);     /* "name:value" (match ^[^:]+:.*$) */
const char *sl_pcheck_header_of_pair(const json_t *v); /* "Header:value": header name valid */
const char *sl_pcheck_header_pair(const json_t *v);    /* "Old:New": both header names valid */
const char *sl_pcheck_header(const json_t *v);         /* a bare header name */
const char *sl_pcheck_url(const json_t *v);            /* http(s)://host[:port][/path] */
const char *sl_pcheck_regex_or_star(const json_t *v);  /* "*" or a PCRE regex */
const char *sl_pcheck_filename(const json_t *v);       /* no * & % \ ` characters */
const char *sl_pcheck_retry_delay(const json_t *v);    /* between 0.001 and 1000000 */
const char *sl_pcheck_concurrency(const json_t *v);    /* -1 or 1 */
const char *sl_pcheck_port(const json_t *v);           /* 0..65535 */

/* --- entity-check helpers (fields: the plugin entity's error object) --- */

/* Appends msg to fields["@entity"]. */
void sl_plugin_entity_error(json_t *fields, const char *msg);

/* Sets fields["config"][name] = msg (fields["config"] becomes an object when needed). */
void sl_plugin_config_field_error(json_t *fields, const char *name, const char *msg);

/* Kong's is_nonempty: not null, not an empty array/object, not "". */
int sl_plugin_nonempty(const json_t *v);

/* Kong's at_least_one_of / only_one_of over config field names, messages naming them
 * "'config.a', 'config.b'". only_one_of fails unless exactly one is non-empty. */
void sl_plugin_at_least_one_of(const json_t *config, const char *const *names, json_t *fields);
void sl_plugin_only_one_of(const json_t *config, const char *const *names, json_t *fields);

/* Kong's conditional check: when config[if_field] equals the string if_value, then_field
 * must be non-null; else "required field missing" on it plus the @entity message. */
void sl_plugin_conditional_required(const json_t *config, const char *if_field,
                                    const char *if_value, const char *then_field, json_t *fields);

/* custom_fields_by_lua: accepted as null or empty, refused otherwise (no Lua here). */
void sl_plugin_refuse_lua(const json_t *config, const char *name, json_t *fields);

/* --- the plugins (one file each) --- */
extern const sl_plugin_schema sl_plugin_correlation_id;
extern const sl_plugin_schema sl_plugin_cors;
extern const sl_plugin_schema sl_plugin_key_auth;
extern const sl_plugin_schema sl_plugin_basic_auth;
extern const sl_plugin_schema sl_plugin_ip_restriction;
extern const sl_plugin_schema sl_plugin_request_size_limiting;
extern const sl_plugin_schema sl_plugin_acl;
extern const sl_plugin_schema sl_plugin_rate_limiting;
extern const sl_plugin_schema sl_plugin_request_transformer;
extern const sl_plugin_schema sl_plugin_response_transformer;
extern const sl_plugin_schema sl_plugin_prometheus;
extern const sl_plugin_schema sl_plugin_http_log;
extern const sl_plugin_schema sl_plugin_file_log;

#endif
