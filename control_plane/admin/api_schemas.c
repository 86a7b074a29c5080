/* GET /schemas/{entity} and POST /schemas/{entity}/validate: the shared schema tables as JSON
 * in Kong's shape ({"fields": [{"name": {"type": ..., "required": ...}}, ...]}). */
#include <stdio.h>
#include <string.h>

#include "control_plane/admin/api_errors.h"
#include "control_plane/admin/api_internal.h"
#include "proto/plugin_schemas.h"

static const char *type_name(sl_type t)
{
    switch (t) {
    case SL_T_STRING:
    case SL_T_UUID:
        return "string";
    case SL_T_INTEGER:
    case SL_T_TIMESTAMP:
        return "integer";
    case SL_T_NUMBER:
        return "number";
    case SL_T_BOOLEAN:
        return "boolean";
    case SL_T_FOREIGN:
        return "foreign";
    case SL_T_ARRAY:
        return "array";
    case SL_T_SET:
        return "set";
    case SL_T_MAP:
        return "map";
    case SL_T_RECORD:
    case SL_T_JSON:
        return "record";
    }
    return "string";
}

static json_t *fields_json(const sl_field *fields, size_t n);

static json_t *field_json(const sl_field *f)
{
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(type_name(f->type)));
    if (f->type == SL_T_UUID)
        json_object_set_new(o, "uuid", json_true());
    if (f->type == SL_T_TIMESTAMP)
        json_object_set_new(o, "timestamp", json_true());
    if (f->flags & SL_F_REQUIRED)
        json_object_set_new(o, "required", json_true());
    if (f->flags & SL_F_UNIQUE)
        json_object_set_new(o, "unique", json_true());
    if (f->flags & SL_F_AUTO)
        json_object_set_new(o, "auto", json_true());
    if (f->flags & SL_F_IMMUTABLE)
        json_object_set_new(o, "immutable", json_true());
    if (f->flags & SL_F_SECRET)
        json_object_set_new(o, "referenceable", json_true());
    if (f->type == SL_T_FOREIGN && f->ref) {
        json_object_set_new(o, "reference", json_string(f->ref));
        json_object_set_new(o, "on_delete",
                            json_string(f->flags & SL_F_CASCADE ? "cascade" : "restrict"));
    }
    if (f->dflt) {
        json_t *d = json_loads(f->dflt, JSON_DECODE_ANY, NULL);
        if (d)
            json_object_set_new(o, "default", d);
    }
    if (f->min || f->max) {
        if (f->type == SL_T_INTEGER || f->type == SL_T_NUMBER) {
            json_object_set_new(o, "between",
                                json_pack("[I,I]", (json_int_t)f->min, (json_int_t)f->max));
        } else if (f->type == SL_T_STRING) {
            if (f->min)
                json_object_set_new(o, "len_min", json_integer(f->min));
            if (f->max)
                json_object_set_new(o, "len_max", json_integer(f->max));
        } else if (f->type == SL_T_ARRAY || f->type == SL_T_SET) {
            if (f->max)
                json_object_set_new(o, "len_max", json_integer(f->max));
        }
    }
    if (f->one_of) {
        json_t *arr = json_array();
        for (const char *const *p = f->one_of; *p; p++)
            json_array_append_new(arr, json_string(*p));
        if (f->type == SL_T_ARRAY || f->type == SL_T_SET)
            json_object_set_new(o, "elements",
                                json_pack("{s:s,s:o}", "type", type_name(f->elem), "one_of", arr));
        else
            json_object_set_new(o, "one_of", arr);
    } else if (f->type == SL_T_ARRAY || f->type == SL_T_SET) {
        json_t *el = json_pack("{s:s}", "type", type_name(f->elem));
        if (f->elem == SL_T_RECORD && f->fields)
            json_object_set_new(el, "fields", fields_json(f->fields, f->nfields));
        json_object_set_new(o, "elements", el);
    }
    if (f->type == SL_T_RECORD && f->fields)
        json_object_set_new(o, "fields", fields_json(f->fields, f->nfields));
    return o;
}

static json_t *fields_json(const sl_field *fields, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:o}", fields[i].name, field_json(&fields[i])));
    return arr;
}

void cp_api_schema_get(cp_api_call *c)
{
    const sl_entity *e = c->route->entity;
    json_t *body = json_object();
    json_object_set_new(body, "name", json_string(e->name));
    if (e->endpoint_key)
        json_object_set_new(body, "endpoint_key", json_string(e->endpoint_key));
    json_object_set_new(body, "fields", fields_json(e->fields, e->nfields));
    cp_api_reply(c->resp, 200, body);
}

void cp_api_schema_validate(cp_api_call *c)
{
    const sl_entity *e = c->route->entity;
    json_t *body = NULL;
    sl_validate_mode mode;
    if (cp_api_read_body(c, &body, &mode) != 0)
        return;
    if (cp_api_validate(c, e, body, mode) == 0)
        cp_api_message(c->resp, 200, "schema validation successful");
    json_decref(body);
}

/* Kong's {"enabled_plugins": [...]}: here, every plugin compiled in, by descending priority. */
void cp_api_plugins_enabled(cp_api_call *c)
{
    size_t n;
    const sl_plugin_schema *const *all = sl_plugin_schemas(&n);
    json_t *names = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(names, json_string(all[i]->name));
    cp_api_reply(c->resp, 200, json_pack("{s:o}", "enabled_plugins", names));
}

/* A plugin's schema in the shape of entity schemas, with its config record's fields. */
void cp_api_plugin_schema(cp_api_call *c)
{
    const sl_plugin_schema *p = sl_plugin_schema_find(c->route->key);
    if (!p) {
        char msg[600];
        snprintf(msg, sizeof(msg), "No plugin named '%s'", c->route->key);
        cp_api_message(c->resp, 404, msg);
        return;
    }
    json_t *config = json_pack("{s:s,s:b,s:o}", "type", "record", "required", 1, "fields",
                               fields_json(p->config_fields, p->nfields));
    json_t *body = json_pack("{s:s,s:i,s:[{s:o}]}", "name", p->name, "priority", p->priority,
                             "fields", "config", config);
    cp_api_reply(c->resp, 200, body);
}
