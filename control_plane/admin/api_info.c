/* Node information endpoints: GET /, GET /status and the clustering views. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_plane/admin/api_errors.h"
#include "control_plane/admin/api_internal.h"
#include "control_plane/cluster/dp_table.h"
#include "proto/log.h"
#include "proto/plugin_schemas.h"
#include "proto/uuid.h"
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

/* The live registry of this node alone: what the views fall back to when the table cannot be
 * read (PostgreSQL away). */
static json_t *live_data_planes(const cp_admin_ctx *ctx)
{
    json_t *arr = ctx->cluster_data_planes ? ctx->cluster_data_planes(ctx->cluster_arg) : NULL;
    if (!json_is_array(arr)) {
        json_decref(arr);
        arr = json_array();
    }
    return arr;
}

static const char *first_arg(const json_t *query, const char *name, int *present)
{
    json_t *v = json_object_get(query, name);
    *present = v != NULL;
    if (json_is_array(v))
        v = json_array_get(v, 0);
    return json_is_string(v) ? json_string_value(v) : (v ? "" : NULL);
}

/* One page of every replica's data planes from clustering_data_planes (migration 002). NULL
 * when the database cannot answer; *more says whether rows follow. */
static json_t *table_data_planes(cp_api_call *c, int size, const char *after, int *more)
{
    if (!c->st || !cp_store_ping(c->st))
        return NULL;
    char err[512];
    json_t *rows = cp_dp_table_list(cp_store_conn(c->st), size, after, more, err, sizeof(err));
    if (!rows)
        sl_warn("admin: cannot read clustering_data_planes: %s", err);
    return rows;
}

void cp_api_info_data_planes(cp_api_call *c)
{
    int present;
    int size = 100;
    const char *size_s = first_arg(c->query, "size", &present);
    if (present) {
        char *end = NULL;
        long v = size_s ? strtol(size_s, &end, 10) : 0;
        if (!size_s || !*size_s || *end || v < 1 || v > 1000) {
            cp_api_error(c->resp, CP_ERR_SIZE, "size must be an integer between 1 and 1000", NULL);
            return;
        }
        size = (int)v;
    }
    const char *offset = first_arg(c->query, "offset", &present);
    if (present && (!offset || !sl_uuid_is_valid(offset))) {
        char msg[128];
        snprintf(msg, sizeof(msg), "'%.64s' is not a valid offset: bad offset",
                 offset ? offset : "");
        cp_api_error(c->resp, CP_ERR_OFFSET, msg, NULL);
        return;
    }
    int more = 0;
    json_t *data = table_data_planes(c, size, present ? offset : NULL, &more);
    if (!data) {
        data = live_data_planes(c->ctx);
        more = 0;
    }
    json_t *body = json_object();
    const char *last =
        json_string_value(json_object_get(json_array_get(data, json_array_size(data) - 1), "id"));
    if (more && last) {
        char next[160];
        snprintf(next, sizeof(next), "/clustering/data-planes?offset=%s&size=%d", last, size);
        json_object_set_new(body, "offset", json_string(last));
        json_object_set_new(body, "next", json_string(next));
    } else {
        json_object_set_new(body, "next", json_null());
    }
    json_object_set_new(body, "data", data);
    cp_api_reply(c->resp, 200, body);
}

/* Every data plane, page after page (bounded): the deprecated status view has no pages. */
static json_t *all_data_planes(cp_api_call *c)
{
    json_t *all = json_array();
    char after[37] = "";
    for (int page = 0; page < 100; page++) {
        int more = 0;
        json_t *rows = table_data_planes(c, 1000, after[0] ? after : NULL, &more);
        if (!rows) {
            if (page == 0) {
                json_decref(all);
                return live_data_planes(c->ctx);
            }
            break;
        }
        json_array_extend(all, rows);
        const char *last = json_string_value(
            json_object_get(json_array_get(rows, json_array_size(rows) - 1), "id"));
        snprintf(after, sizeof(after), "%s", last ? last : "");
        json_decref(rows);
        if (!more || !after[0])
            break;
    }
    return all;
}

void cp_api_info_cluster_status(cp_api_call *c)
{
    json_t *arr = all_data_planes(c);
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
