/* Node information endpoints: GET /, GET /status and the clustering views. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_plane/admin/api_errors.h"
#include "control_plane/admin/api_internal.h"
#include "proto/log.h"
#include "proto/plugin_schemas.h"
#include "proto/version.h"

/* Settings whose values are secrets; GET / shows them redacted, as Kong shows pg_password. */
static int is_secret_setting(const char *name)
{
    return strcmp(name, "pg_password") == 0 || strcmp(name, "admin_token") == 0;
}

/* A listen value "a:1, b:2 ssl" as Kong shows admin_listen: an array of entries. */
static json_t *listen_array(const char *value)
{
    json_t *arr = json_array();
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && end[-1] == ' ')
            end--;
        if (end > start)
            json_array_append_new(arr, json_stringn(start, (size_t)(end - start)));
    }
    return arr;
}

static json_t *configuration(const sl_settings *s)
{
    json_t *conf = json_object();
    if (!s)
        return conf;
    for (size_t i = 0; i < sl_setting_count; i++) {
        const sl_setting_def *d = &sl_setting_defs[i];
        const char *v = sl_settings_get(s, d->name);
        if (!v)
            continue;
        json_t *jv;
        if (is_secret_setting(d->name))
            jv = json_string("******");
        else if (d->kind == SL_SET_PORT || d->kind == SL_SET_INT)
            jv = json_integer(sl_settings_int(s, d->name));
        else if (d->kind == SL_SET_BOOL)
            jv = json_boolean(sl_settings_bool(s, d->name));
        else if (d->kind == SL_SET_LISTEN)
            jv = listen_array(v);
        else
            jv = json_string(v);
        json_object_set_new(conf, d->name, jv);
    }
    return conf;
}

/* Names of the plugins configured anywhere (distinct), as Kong's enabled_in_cluster.
 * Walks the plugins table a page at a time; an unreachable database gives an empty list. */
static json_t *plugins_in_use(cp_store *st)
{
    json_t *seen = json_object();
    const sl_entity *e = sl_entity_by_name("plugins");
    char *offset = NULL;
    for (int page = 0; st && page < 1000; page++) {
        cp_store_list_query q = {.size = 1000, .offset = offset};
        json_t *rows = NULL;
        char *next = NULL;
        cp_store_error err = {0};
        int rc = cp_store_list(st, e, &q, &rows, &next, &err);
        cp_store_error_clear(&err);
        free(offset);
        offset = NULL;
        if (rc != CP_STORE_OK) {
            json_decref(rows);
            break;
        }
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
        {
            const char *name = json_string_value(json_object_get(row, "name"));
            if (name)
                json_object_set_new(seen, name, json_true());
        }
        json_decref(rows);
        if (!next)
            break;
        offset = next;
    }
    free(offset);
    json_t *names = json_array();
    const char *name;
    json_t *v;
    json_object_foreach(seen, name, v) json_array_append_new(names, json_string(name));
    json_decref(seen);
    return names;
}

void cp_api_info_root(cp_api_call *c)
{
    const cp_admin_ctx *ctx = c->ctx;
    json_t *body = json_object();
    json_object_set_new(body, "tagline", json_string("Welcome to sluice"));
    json_object_set_new(body, "version", json_string(SL_VERSION));
    json_object_set_new(body, "edition", json_string("community"));
    json_object_set_new(body, "hostname", json_string(ctx->hostname ? ctx->hostname : ""));
    json_object_set_new(body, "node_id", ctx->node_id ? json_string(ctx->node_id) : json_null());
    json_t *available = json_object();
    size_t n;
    const sl_plugin_schema *const *plugins = sl_plugin_schemas(&n);
    for (size_t i = 0; i < n; i++)
        json_object_set_new(
            available, plugins[i]->name,
            json_pack("{s:s,s:i}", "version", SL_VERSION, "priority", plugins[i]->priority));
    json_object_set_new(body, "plugins",
                        json_pack("{s:o,s:o}", "available_on_server", available,
                                  "enabled_in_cluster", plugins_in_use(c->st)));
    json_object_set_new(body, "configuration", configuration(ctx->settings));
    cp_api_reply(c->resp, 200, body);
}

static long counter(const volatile long *p)
{
    return p ? __atomic_load_n(p, __ATOMIC_RELAXED) : 0;
}

void cp_api_info_status(cp_api_call *c)
{
    const cp_admin_ctx *ctx = c->ctx;
    /* A failed query is exactly what this endpoint reports, so it is not a 500. */
    int64_t version = c->st && cp_store_ping(c->st) ? cp_store_config_version(c->st) : -1;
    int reachable = version >= 0;

    json_t *body = json_object();
    json_object_set_new(body, "database", json_pack("{s:b}", "reachable", reachable));
    json_object_set_new(body, "server",
                        json_pack("{s:I,s:I,s:I}", "connections_active",
                                  (json_int_t)counter(ctx->connections_active),
                                  "connections_accepted",
                                  (json_int_t)counter(ctx->connections_accepted), "total_requests",
                                  (json_int_t)counter(ctx->total_requests)));
    json_object_set_new(body, "configuration_version",
                        reachable ? json_integer((json_int_t)version) : json_null());
    cp_api_reply(c->resp, 200, body);
}

static json_t *data_planes(const cp_admin_ctx *ctx)
{
    json_t *arr = ctx->cluster_data_planes ? ctx->cluster_data_planes(ctx->cluster_arg) : NULL;
    if (!json_is_array(arr)) {
        json_decref(arr);
        arr = json_array();
    }
    return arr;
}

void cp_api_info_data_planes(cp_api_call *c)
{
    json_t *body = json_object();
    json_object_set_new(body, "data", data_planes(c->ctx));
    json_object_set_new(body, "next", json_null());
    cp_api_reply(c->resp, 200, body);
}

void cp_api_info_cluster_status(cp_api_call *c)
{
    json_t *arr = data_planes(c->ctx);
    json_t *body = json_object();
    size_t i;
    json_t *dp;
    json_array_foreach(arr, i, dp)
    {
        const char *id = json_string_value(json_object_get(dp, "id"));
        if (!id)
            continue;
        json_t *entry = json_object();
        static const char *const keys[] = {"config_hash", "hostname", "ip", "last_seen"};
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            json_t *v = json_object_get(dp, keys[k]);
            json_object_set(entry, keys[k], v ? v : json_null());
        }
        json_object_set_new(body, id, entry);
    }
    json_decref(arr);
    snprintf(c->resp->extra_headers, sizeof(c->resp->extra_headers), "Deprecation: true\r\n");
    cp_api_reply(c->resp, 200, body);
}
