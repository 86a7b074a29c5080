/* Checks and entity-check helpers shared by the plugin schemas, with Kong's messages
 * (kong/db/schema/init.lua validation_errors, kong/db/schema/typedefs.lua and the plugins'
 * schema.lua files are the reference for the wording). */
#include "proto/plugins/common.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <pcre2.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Quoting user values in messages: cut long ones so one message stays readable. */
#define QFMT "%.200s"
#define HOST_MAX 256

const char *const sl_plugin_protocols_http[] = {"grpc", "grpcs", "http", "https", NULL};
const char *const sl_plugin_protocols_http_stream[] = {"grpc", "grpcs", "http", "https",
                                                       "tcp",  "tls",   NULL};

const char *sl_pcheck_gt0(const json_t *v)
{
    return json_number_value(v) > 0 ? NULL : "value must be greater than 0";
}

const char *sl_pcheck_colon_pair(const json_t *v)
{
    const char *s = json_string_value(v);
    const char *colon = strchr(s, ':');
    if (colon == NULL || colon == s)
        return sl_check_msg("invalid value: " QFMT, s);
    return NULL;
}

static int header_name_ok(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static const char *not_a_header(const char *s, size_t n)
{
    return sl_check_msg("'%.*s' is not a valid header", (int)(n > 200 ? 200 : n), s);
}

const char *sl_pcheck_header(const json_t *v)
{
    const char *s = json_string_value(v);
    return header_name_ok(s, strlen(s)) ? NULL : not_a_header(s, strlen(s));
}

const char *sl_pcheck_header_of_pair(const json_t *v)
{
    const char *m = sl_pcheck_colon_pair(v);
    if (m != NULL)
        return m;
    const char *s = json_string_value(v);
    size_t n = (size_t)(strchr(s, ':') - s);
    return header_name_ok(s, n) ? NULL : not_a_header(s, n);
}

const char *sl_pcheck_header_pair(const json_t *v)
{
    const char *m = sl_pcheck_header_of_pair(v);
    if (m != NULL)
        return m;
    /* Kong's pattern "^([^:]+):*(.-)$": the new name follows the run of colons */
    const char *to = strchr(json_string_value(v), ':');
    while (*to == ':')
        to++;
    return header_name_ok(to, strlen(to)) ? NULL : not_a_header(to, strlen(to));
}

const char *sl_pcheck_url(const json_t *v)
{
    const char *s = json_string_value(v);
    const char *sep = strstr(s, "://");
    if (sep == NULL || sep == s)
        return "missing host in url";
    size_t slen = (size_t)(sep - s);
    if (!((slen == 4 && strncasecmp(s, "http", 4) == 0) ||
          (slen == 5 && strncasecmp(s, "https", 5) == 0)))
        return sl_check_msg("unsupported scheme '%.*s' in url; use http or https",
                            (int)(slen > 20 ? 20 : slen), s);
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', alen);
    if (at != NULL) { /* user info: Kong allows it (basic auth to the endpoint) */
        alen -= (size_t)(at + 1 - auth);
        auth = at + 1;
    }
    if (alen == 0)
        return "missing host in url";
    char hostport[HOST_MAX + 8], host[HOST_MAX];
    int kind, port;
    if (alen >= sizeof hostport)
        return sl_check_msg("invalid host in url: '" QFMT "'", s);
    memcpy(hostport, auth, alen);
    hostport[alen] = '\0';
    if (sl_host_parse(hostport, host, sizeof host, &kind, &port) != 0)
        return sl_check_msg("invalid host in url: '" QFMT "'", hostport);
    return NULL;
}

const char *sl_pcheck_regex_or_star(const json_t *v)
{
    const char *s = json_string_value(v);
    if (strcmp(s, "*") == 0)
        return NULL;
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)s, strlen(s), PCRE2_UTF, &code, &off, NULL);
    if (re == NULL)
        return sl_check_msg("'" QFMT "' is not a valid regex", s);
    pcre2_code_free(re);
    return NULL;
}

const char *sl_pcheck_filename(const json_t *v)
{
    const char *s = json_string_value(v);
    if (*s == '\0' || strpbrk(s, "*&%\\`") != NULL)
        return "not a valid filename";
    return NULL;
}

const char *sl_pcheck_retry_delay(const json_t *v)
{
    double d = json_number_value(v);
    return d >= 0.001 && d <= 1000000 ? NULL : "value should be between 0.001 and 1000000";
}

const char *sl_pcheck_concurrency(const json_t *v)
{
    json_int_t n = json_integer_value(v);
    return n == -1 || n == 1 ? NULL : "expected one of: -1, 1";
}

const char *sl_pcheck_port(const json_t *v)
{
    json_int_t n = json_integer_value(v);
    return n >= 0 && n <= 65535 ? NULL : "value should be between 0 and 65535";
}

void sl_plugin_entity_error(json_t *fields, const char *msg)
{
    json_t *arr = json_object_get(fields, "@entity");
    if (!json_is_array(arr)) {
        arr = json_array();
        json_object_set_new(fields, "@entity", arr);
    }
    json_array_append_new(arr, json_string(msg));
}

void sl_plugin_config_field_error(json_t *fields, const char *name, const char *msg)
{
    json_t *cfg = json_object_get(fields, "config");
    if (!json_is_object(cfg)) {
        cfg = json_object();
        json_object_set_new(fields, "config", cfg);
    }
    json_object_set_new(cfg, name, json_string(msg));
}

int sl_plugin_nonempty(const json_t *v)
{
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_array(v))
        return json_array_size(v) > 0;
    if (json_is_object(v))
        return json_object_size(v) > 0;
    if (json_is_string(v))
        return json_string_length(v) > 0;
    return 1;
}

/* "'config.a', 'config.b'" into buf */
static void quoted_list(const char *const *names, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (const char *const *p = names; *p && o < len; p++)
        o += (size_t)snprintf(buf + o, len - o, "%s'config.%s'", p == names ? "" : ", ", *p);
}

void sl_plugin_at_least_one_of(const json_t *config, const char *const *names, json_t *fields)
{
    for (const char *const *p = names; *p; p++)
        if (sl_plugin_nonempty(json_object_get(config, *p)))
            return;
    char list[256], msg[320];
    quoted_list(names, list, sizeof list);
    snprintf(msg, sizeof msg, "at least one of these fields must be non-empty: %s", list);
    sl_plugin_entity_error(fields, msg);
}

void sl_plugin_only_one_of(const json_t *config, const char *const *names, json_t *fields)
{
    int n = 0;
    for (const char *const *p = names; *p; p++)
        n += sl_plugin_nonempty(json_object_get(config, *p));
    if (n == 1)
        return;
    char list[256], msg[320];
    quoted_list(names, list, sizeof list);
    snprintf(msg, sizeof msg, "only one of these fields must be non-empty: %s", list);
    sl_plugin_entity_error(fields, msg);
}

void sl_plugin_conditional_required(const json_t *config, const char *if_field,
                                    const char *if_value, const char *then_field, json_t *fields)
{
    const char *v = json_string_value(json_object_get(config, if_field));
    if (v == NULL || strcmp(v, if_value) != 0)
        return;
    const json_t *t = json_object_get(config, then_field);
    if (t != NULL && !json_is_null(t))
        return;
    char msg[160];
    sl_plugin_config_field_error(fields, then_field, "required field missing");
    snprintf(msg, sizeof msg, "failed conditional validation given value of field 'config.%s'",
             if_field);
    sl_plugin_entity_error(fields, msg);
}

void sl_plugin_refuse_lua(const json_t *config, const char *name, json_t *fields)
{
    if (sl_plugin_nonempty(json_object_get(config, name)))
        sl_plugin_config_field_error(fields, name,
                                     "Lua code is not supported by this gateway; remove it");
}
