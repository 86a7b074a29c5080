#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_plane/plugins/plugin.h"

const dp_plugin *const dp_plugins[] = {NULL};
const size_t dp_plugin_count = 0;

static const dp_plugin *find(const char *name)
{
    for (size_t i = 0; i < dp_plugin_count; i++)
        if (strcmp(dp_plugins[i]->name, name) == 0)
            return dp_plugins[i];
    return NULL;
}

static int by_priority(const void *a, const void *b)
{
    const dp_plugin_instance *x = a, *y = b;
    return y->plugin->priority - x->plugin->priority;
}

static const char *fk(const json_t *p, const char *field)
{
    return json_string_value(json_object_get(json_object_get(p, field), "id"));
}

int dp_plugin_chain_build(dp_plugin_chain *c, const void *plugins_json, char *err, size_t errlen)
{
    const json_t *arr = plugins_json;
    c->items = NULL;
    c->n = 0;
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    if (!n)
        return 0;
    c->items = calloc(n, sizeof(*c->items));
    if (!c->items) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t i;
    const json_t *p;
    json_array_foreach(arr, i, p)
    {
        if (json_is_false(json_object_get(p, "enabled")))
            continue;
        const char *name = json_string_value(json_object_get(p, "name"));
        const dp_plugin *pl = name ? find(name) : NULL;
        if (!pl) {
            snprintf(err, errlen, "plugin '%s' is not available on this data plane",
                     name ? name : "?");
            dp_plugin_chain_free(c);
            return -1;
        }
        dp_plugin_instance *in = &c->items[c->n];
        in->plugin = pl;
        in->route_id = fk(p, "route");
        in->service_id = fk(p, "service");
        if (pl->init && pl->init(json_object_get(p, "config"), &in->state, err, errlen) != 0) {
            dp_plugin_chain_free(c);
            return -1;
        }
        c->n++;
    }
    qsort(c->items, c->n, sizeof(*c->items), by_priority);
    return 0;
}

void dp_plugin_chain_free(dp_plugin_chain *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->items[i].plugin->free_state)
            c->items[i].plugin->free_state(c->items[i].state);
    free(c->items);
    c->items = NULL;
    c->n = 0;
}

static int applies(const dp_plugin_instance *in, const dp_plugin_req *req)
{
    if (in->route_id && (!req->route_id || strcmp(in->route_id, req->route_id) != 0))
        return 0;
    if (in->service_id && (!req->service_id || strcmp(in->service_id, req->service_id) != 0))
        return 0;
    return 1;
}

dp_plugin_result dp_plugin_run_access(const dp_plugin_chain *c, dp_plugin_req *req)
{
    for (size_t i = 0; i < c->n; i++) {
        const dp_plugin_instance *in = &c->items[i];
        if (in->plugin->access && applies(in, req) &&
            in->plugin->access(in->state, req) == DP_PLUGIN_RESPOND)
            return DP_PLUGIN_RESPOND;
    }
    return DP_PLUGIN_CONTINUE;
}

void dp_plugin_run_header_filter(const dp_plugin_chain *c, dp_plugin_req *req, int status)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->items[i].plugin->header_filter && applies(&c->items[i], req))
            c->items[i].plugin->header_filter(c->items[i].state, req, status);
}

void dp_plugin_run_body_filter(const dp_plugin_chain *c, dp_plugin_req *req, const char *data,
                               size_t len)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->items[i].plugin->body_filter && applies(&c->items[i], req))
            c->items[i].plugin->body_filter(c->items[i].state, req, data, len);
}

void dp_plugin_run_log(const dp_plugin_chain *c, dp_plugin_req *req)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->items[i].plugin->log && applies(&c->items[i], req))
            c->items[i].plugin->log(c->items[i].state, req);
}
