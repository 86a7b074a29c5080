/* The plugin registry (schema half) and the `plugins` entity hooks that validate a plugin's
 * config with it. Kong's PRIORITY numbers come from kong/plugins/<name>/handler.lua. */
#include "proto/plugin_schemas.h"

#include <stdio.h>
#include <string.h>

#include "proto/plugins/common.h"

/* Sorted by descending priority, so the data plane builds chains in running order without
 * sorting; the unit test checks the order. */
static const sl_plugin_schema *const registry[] = {
    &sl_plugin_correlation_id,        /* 100001 */
    &sl_plugin_cors,                  /* 2000 */
    &sl_plugin_key_auth,              /* 1250 */
    &sl_plugin_basic_auth,            /* 1100 */
    &sl_plugin_ip_restriction,        /* 990 */
    &sl_plugin_request_size_limiting, /* 951 */
    &sl_plugin_acl,                   /* 950 */
    &sl_plugin_rate_limiting,         /* 910 */
    &sl_plugin_request_transformer,   /* 801 */
    &sl_plugin_response_transformer,  /* 800 */
    &sl_plugin_prometheus,            /* 13 */
    &sl_plugin_http_log,              /* 12 */
    &sl_plugin_file_log,              /* 9 */
};

const sl_plugin_schema *sl_plugin_schema_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < SL_N(registry); i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

const sl_plugin_schema *const *sl_plugin_schemas(size_t *n)
{
    *n = SL_N(registry);
    return registry;
}

/* A form sends "" for "no value". */
static int is_unset(const json_t *v, sl_validate_mode mode)
{
    return v == NULL || json_is_null(v) ||
           (mode == SL_VALIDATE_FORM && json_is_string(v) && json_string_length(v) == 0);
}

void sl_plugins_prepare(const sl_entity *e, json_t *entity, sl_validate_mode mode, json_t *fields)
{
    (void)e;
    const char *name = json_string_value(json_object_get(entity, "name"));
    if (name == NULL)
        return; /* missing or mistyped: the field validation says so */
    const sl_plugin_schema *p = sl_plugin_schema_find(name);
    if (p == NULL) {
        char msg[512];
        snprintf(msg, sizeof msg,
                 "plugin '%.256s' not enabled; add it to the 'plugins' configuration property",
                 name);
        json_object_set_new(fields, "name", json_string(msg));
        return;
    }
    static const struct {
        unsigned flag;
        const char *field;
    } scopes[] = {{SL_PLUGIN_NO_CONSUMER, "consumer"},
                  {SL_PLUGIN_NO_ROUTE, "route"},
                  {SL_PLUGIN_NO_SERVICE, "service"}};
    for (size_t i = 0; i < SL_N(scopes); i++)
        if ((p->flags & scopes[i].flag) &&
            !is_unset(json_object_get(entity, scopes[i].field), mode))
            json_object_set_new(fields, scopes[i].field, json_string("value must be null"));

    json_t *config = json_object_get(entity, "config");
    if (is_unset(config, mode)) {
        config = json_object();
        json_object_set_new(entity, "config", config);
    }
    if (!json_is_object(config))
        return; /* the field validation says "expected a record" */
    if (p->prepare != NULL)
        p->prepare(config);
    json_t *errs = NULL;
    sl_validate_mode inner = mode == SL_VALIDATE_CANONICAL ? SL_VALIDATE_JSON : mode;
    if (sl_schema_validate_record(p->config_fields, p->nfields, config, inner, &errs) > 0)
        json_object_set_new(fields, "config", errs);
    else
        json_decref(errs);
}

void sl_plugins_fields_check(const sl_entity *e, const json_t *entity, json_t *fields)
{
    (void)e;
    const sl_plugin_schema *p =
        sl_plugin_schema_find(json_string_value(json_object_get(entity, "name")));
    if (p == NULL)
        return;
    const json_t *protocols = json_object_get(entity, "protocols");
    if (p->protocols != NULL && json_is_array(protocols)) {
        json_t *errs = NULL;
        size_t i;
        const json_t *v;
        json_array_foreach(protocols, i, v)
        {
            const char *s = json_string_value(v);
            int ok = 0;
            for (const char *const *q = p->protocols; s && *q && !ok; q++)
                ok = strcmp(s, *q) == 0;
            if (ok)
                continue;
            char msg[256];
            size_t o = (size_t)snprintf(msg, sizeof msg, "expected one of: ");
            for (const char *const *q = p->protocols; *q && o < sizeof msg; q++)
                o += (size_t)snprintf(msg + o, sizeof msg - o, "%s%s",
                                      q == p->protocols ? "" : ", ", *q);
            if (errs == NULL)
                errs = json_array();
            while (json_array_size(errs) < i)
                json_array_append_new(errs, json_null());
            json_array_append_new(errs, json_string(msg));
        }
        if (errs != NULL) {
            json_object_set_new(fields, "protocols", errs);
            return;
        }
    }
    if (p->check != NULL)
        p->check(json_object_get(entity, "config"), fields);
}
