#include "data_plane/plugins/transform_actions.h"

#include <stdlib.h>
#include <string.h>

static const char *const action_names[DP_TX_ACTIONS] = {"remove", "rename", "replace", "add",
                                                        "append"};

const dp_tx_headers dp_tx_upstream_headers = {dp_plugin_req_header, dp_plugin_up_header_set,
                                              dp_plugin_up_header_add, dp_plugin_up_header_remove};
const dp_tx_headers dp_tx_response_headers = {dp_plugin_resp_header, dp_plugin_resp_header_set,
                                              dp_plugin_resp_header_add,
                                              dp_plugin_resp_header_remove};

static dp_tx_type type_of(const char *t)
{
    if (t && strcmp(t, "number") == 0)
        return DP_TX_NUMBER;
    if (t && strcmp(t, "boolean") == 0)
        return DP_TX_BOOLEAN;
    return DP_TX_STRING;
}

int dp_tx_parse(const json_t *config, int action, const char *field, const char *types_field,
                dp_tx_list *out)
{
    const json_t *rec = json_object_get(config, action_names[action]);
    const json_t *arr = json_object_get(rec, field);
    const json_t *types = types_field ? json_object_get(rec, types_field) : NULL;
    size_t n = json_array_size(arr), i;
    out->n = 0;
    out->items = calloc(n ? n : 1, sizeof(dp_tx_item));
    if (!out->items)
        return -1;
    const json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (!s)
            continue;
        const char *colon = action == DP_TX_REMOVE ? NULL : strchr(s, ':');
        dp_tx_item *it = &out->items[out->n];
        it->name = colon ? strndup(s, (size_t)(colon - s)) : strdup(s);
        it->value = colon ? strdup(colon + 1) : NULL;
        it->type = type_of(json_string_value(json_array_get(types, i)));
        if (!it->name || (colon && !it->value)) {
            free(it->name);
            free(it->value);
            return -1;
        }
        out->n++;
    }
    return 0;
}

void dp_tx_free(dp_tx_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].name);
        free(l->items[i].value);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void dp_tx_apply_headers(const dp_tx_list *lists, const dp_tx_headers *h, dp_plugin_req *req)
{
    for (size_t i = 0; i < lists[DP_TX_REMOVE].n; i++)
        h->remove(req, lists[DP_TX_REMOVE].items[i].name);
    for (size_t i = 0; i < lists[DP_TX_RENAME].n; i++) {
        const dp_tx_item *it = &lists[DP_TX_RENAME].items[i];
        const dp_slice *v = h->get(req, it->name);
        if (!v)
            continue;
        dp_slice keep = *v; /* arena or connection bytes: stay valid after the edits */
        h->remove(req, it->name);
        h->set(req, it->value, keep);
    }
    for (size_t i = 0; i < lists[DP_TX_REPLACE].n; i++) {
        const dp_tx_item *it = &lists[DP_TX_REPLACE].items[i];
        if (h->get(req, it->name))
            h->set(req, it->name, dp_slice_cstr(it->value));
    }
    for (size_t i = 0; i < lists[DP_TX_ADD].n; i++) {
        const dp_tx_item *it = &lists[DP_TX_ADD].items[i];
        if (!h->get(req, it->name))
            h->set(req, it->name, dp_slice_cstr(it->value));
    }
    for (size_t i = 0; i < lists[DP_TX_APPEND].n; i++) {
        const dp_tx_item *it = &lists[DP_TX_APPEND].items[i];
        h->add(req, it->name, dp_slice_cstr(it->value));
    }
}
