#include "proto/declarative.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/schema.h"
#include "proto/uuid.h"
#include "proto/yaml_json.h"

/* Namespace of the name-based ids given to entities a file does not give an id. */
#define SL_DECLARATIVE_NS "8c4e5a3e-6f0b-5d7a-9a53-2f1f6c1d7b01"

typedef struct {
    json_t *config; /* flat result: entity name -> array of rows */
    json_t *where;  /* entity name -> array of "services[0].routes[1]" strings, parallel */
    json_t *errors; /* array of {"entity", "where", "errors"} */
} flat_ctx;

static void add_error(flat_ctx *c, const char *entity, const char *where, json_t *errors)
{
    json_array_append_new(c->errors, json_pack("{s:s, s:s, s:o}", "entity", entity, "where", where,
                                               "errors", errors));
}

/* The entity that nests under parent with this key ("routes" under services), and the
 * foreign-key field that points back at the parent. */
static const sl_entity *child_entity(const sl_entity *parent, const char *key, const sl_field **fk)
{
    const sl_entity *e = sl_entity_by_name(key);
    if (!e)
        return NULL;
    for (size_t i = 0; i < e->nfields; i++) {
        const sl_field *f = &e->fields[i];
        if (f->type == SL_T_FOREIGN && strcmp(f->ref, parent->name) == 0) {
            *fk = f;
            return e;
        }
    }
    return NULL;
}

static void describe(char *out, size_t outlen, const char *path, const sl_entity *e,
                     const json_t *row)
{
    const char *key =
        e->endpoint_key ? json_string_value(json_object_get(row, e->endpoint_key)) : NULL;
    if (key)
        snprintf(out, outlen, "%s (%s '%s')", path, e->endpoint_key, key);
    else
        snprintf(out, outlen, "%s", path);
}

static void process(flat_ctx *c, const sl_entity *e, const json_t *item, const char *path,
                    const sl_field *parent_fk, const char *parent_id);

static void process_children(flat_ctx *c, const sl_entity *e, json_t *obj, const char *path,
                             const char *id, json_t *children)
{
    const char *key;
    json_t *list;
    json_object_foreach(children, key, list)
    {
        const sl_field *fk = NULL;
        const sl_entity *ce = child_entity(e, key, &fk);
        size_t i;
        json_t *child;
        json_array_foreach(list, i, child)
        {
            char cpath[512];
            snprintf(cpath, sizeof(cpath), "%s.%s[%zu]", path, key, i);
            if (json_is_string(child) && strcmp(ce->name, "snis") == 0) {
                json_t *sni = json_pack("{s:O}", "name", child);
                process(c, ce, sni, cpath, fk, id);
                json_decref(sni);
            } else {
                process(c, ce, child, cpath, fk, id);
            }
        }
    }
    (void)obj;
}

static void process(flat_ctx *c, const sl_entity *e, const json_t *item, const char *path,
                    const sl_field *parent_fk, const char *parent_id)
{
    if (!json_is_object(item)) {
        add_error(c, e->name, path, json_pack("{s:s}", "@entity", "expected a record"));
        return;
    }
    json_t *obj = json_deep_copy(item);
    json_t *children = json_object();
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(obj, tmp, key, v)
    {
        const sl_field *fk;
        if (json_is_array(v) && child_entity(e, key, &fk)) {
            json_object_set(children, key, v);
            json_object_del(obj, key);
        }
    }
    if (parent_fk)
        json_object_set_new(obj, parent_fk->name, json_pack("{s:s}", "id", parent_id));

    char id[37];
    const char *given = json_string_value(json_object_get(obj, "id"));
    if (given) {
        snprintf(id, sizeof(id), "%s", given);
    } else {
        const char *k =
            e->endpoint_key ? json_string_value(json_object_get(obj, e->endpoint_key)) : NULL;
        char *name;
        if (k) {
            name = malloc(strlen(e->name) + strlen(k) + 2);
            sprintf(name, "%s:%s", e->name, k);
        } else {
            char *canon = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT);
            name = malloc(strlen(e->name) + strlen(canon) + 2);
            sprintf(name, "%s:%s", e->name, canon);
            free(canon);
        }
        sl_uuid_v5(SL_DECLARATIVE_NS, name, id);
        free(name);
        json_object_set_new(obj, "id", json_string(id));
    }
    char where[600];
    describe(where, sizeof(where), path, e, obj);
    json_array_append_new(json_object_get(c->config, e->name), obj);
    json_array_append_new(json_object_get(c->where, e->name), json_string(where));
    process_children(c, e, obj, path, id, children);
    json_decref(children);
}

/* Index of one entity's rows: id -> row and endpoint key -> id. */
static json_t *index_rows(const sl_entity *e, json_t *rows, json_t **by_key)
{
    json_t *by_id = json_object();
    *by_key = json_object();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *id = json_string_value(json_object_get(row, "id"));
        if (id)
            json_object_set(by_id, id, row);
        const char *k =
            e->endpoint_key ? json_string_value(json_object_get(row, e->endpoint_key)) : NULL;
        if (k && id)
            json_object_set_new(*by_key, k, json_string(id));
    }
    return by_id;
}

/* Turns every reference into {"id": ...} and checks it names an entity of the file. */
static void resolve_references(flat_ctx *c)
{
    json_t *ids = json_object(), *keys = json_object();
    for (size_t i = 0; i < sl_entity_count; i++) {
        const sl_entity *e = sl_entities[i];
        json_t *by_key;
        json_object_set_new(ids, e->name,
                            index_rows(e, json_object_get(c->config, e->name), &by_key));
        json_object_set_new(keys, e->name, by_key);
    }
    for (size_t i = 0; i < sl_entity_count; i++) {
        const sl_entity *e = sl_entities[i];
        json_t *rows = json_object_get(c->config, e->name);
        size_t r;
        json_t *row;
        json_array_foreach(rows, r, row)
        {
            for (size_t f = 0; f < e->nfields; f++) {
                const sl_field *fd = &e->fields[f];
                json_t *ref = json_object_get(row, fd->name);
                if (fd->type != SL_T_FOREIGN || !ref || json_is_null(ref))
                    continue;
                const char *name = json_string_value(ref);
                if (!name && json_is_object(ref)) {
                    name = json_string_value(json_object_get(ref, "id"));
                    if (!name)
                        name = json_string_value(json_object_get(ref, "name"));
                    if (!name)
                        name = json_string_value(json_object_get(ref, "username"));
                }
                const char *id = NULL;
                if (name && json_object_get(json_object_get(ids, fd->ref), name))
                    id = name;
                else if (name)
                    id = json_string_value(json_object_get(json_object_get(keys, fd->ref), name));
                if (!id) {
                    char msg[600];
                    snprintf(msg, sizeof(msg), "no %s named '%s' in this file", fd->ref,
                             name ? name : "?");
                    add_error(
                        c, e->name,
                        json_string_value(json_array_get(json_object_get(c->where, e->name), r)),
                        json_pack("{s:s}", fd->name, msg));
                    continue;
                }
                json_object_set_new(row, fd->name, json_pack("{s:s}", "id", id));
            }
        }
    }
    json_decref(ids);
    json_decref(keys);
}

static void validate_all(flat_ctx *c)
{
    json_t *seen = json_object();
    for (size_t i = 0; i < sl_entity_count; i++) {
        const sl_entity *e = sl_entities[i];
        json_t *rows = json_object_get(c->config, e->name);
        size_t r;
        json_t *row;
        json_array_foreach(rows, r, row)
        {
            const char *where =
                json_string_value(json_array_get(json_object_get(c->where, e->name), r));
            json_t *errs = NULL;
            if (sl_schema_validate(e, row, SL_VALIDATE_JSON, &errs)) {
                add_error(c, e->name, where, errs);
                continue;
            }
            char key[200];
            snprintf(key, sizeof(key), "%s:%s", e->name,
                     json_string_value(json_object_get(row, "id")));
            /* ids come from names, so a name used twice is the usual cause: say so */
            const char *k =
                e->endpoint_key ? json_string_value(json_object_get(row, e->endpoint_key)) : NULL;
            char nkey[1200];
            snprintf(nkey, sizeof(nkey), "%s:%s=%s", e->name,
                     e->endpoint_key ? e->endpoint_key : "", k ? k : "");
            const char *first_name = k ? json_string_value(json_object_get(seen, nkey)) : NULL;
            const char *first = json_string_value(json_object_get(seen, key));
            if (first_name || first) {
                char msg[700];
                if (first_name)
                    snprintf(msg, sizeof(msg), "%s '%s' is also used by %s", e->endpoint_key, k,
                             first_name);
                else
                    snprintf(msg, sizeof(msg), "same id as %s (identical entries get the same id)",
                             first);
                add_error(c, e->name, where,
                          json_pack("{s:s}", first_name ? e->endpoint_key : "id", msg));
                continue;
            }
            if (k)
                json_object_set_new(seen, nkey, json_string(where ? where : e->name));
            json_object_set_new(seen, key, json_string(where ? where : e->name));
        }
    }
    json_decref(seen);
}

static int check_top_level(const json_t *doc, flat_ctx *c)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)doc, key, v)
    {
        if (!strcmp(key, "_format_version") || !strcmp(key, "_transform") ||
            !strcmp(key, "_comment") || !strcmp(key, "_ignore") || !strcmp(key, "_workspace"))
            continue;
        const sl_entity *e = sl_entity_by_name(key);
        if (!e)
            add_error(c, key, key, json_pack("{s:s}", key, "unknown field"));
        else if (!json_is_array(v))
            add_error(c, key, key, json_pack("{s:s}", key, "expected an array"));
    }
    const char *fv = json_string_value(json_object_get(doc, "_format_version"));
    if (!fv) {
        add_error(c, "_format_version", "_format_version",
                  json_pack("{s:s}", "_format_version", "required field missing"));
    } else if (strcmp(fv, "3.0") != 0) {
        add_error(c, "_format_version", "_format_version",
                  json_pack("{s:s}", "_format_version",
                            "expected \"3.0\" (convert older files with Kong's deck first)"));
    }
    return (int)json_array_size(c->errors);
}

static void first_error_text(const json_t *errors, char *err, size_t errlen)
{
    json_t *first = json_array_get(errors, 0);
    char *fields = json_dumps(json_object_get(first, "errors"), JSON_COMPACT | JSON_SORT_KEYS);
    snprintf(err, errlen, "%zu error%s in the declarative config; first: %s: %s",
             json_array_size(errors), json_array_size(errors) == 1 ? "" : "s",
             json_string_value(json_object_get(first, "where")), fields ? fields : "");
    free(fields);
}

json_t *sl_declarative_flatten(const json_t *doc, json_t **errors, char *err, size_t errlen)
{
    if (errors)
        *errors = NULL;
    if (!json_is_object(doc)) {
        snprintf(err, errlen, "the declarative config must be a mapping at the top level");
        return NULL;
    }
    flat_ctx c = {json_object(), json_object(), json_array()};
    for (size_t i = 0; i < sl_entity_count; i++) {
        json_object_set_new(c.config, sl_entities[i]->name, json_array());
        json_object_set_new(c.where, sl_entities[i]->name, json_array());
    }
    if (!check_top_level(doc, &c)) {
        for (size_t i = 0; i < sl_entity_count; i++) {
            const sl_entity *e = sl_entities[i];
            size_t n;
            json_t *item;
            json_array_foreach(json_object_get(doc, e->name), n, item)
            {
                char path[200];
                snprintf(path, sizeof(path), "%s[%zu]", e->name, n);
                process(&c, e, item, path, NULL, NULL);
            }
        }
        resolve_references(&c);
        if (!json_array_size(c.errors))
            validate_all(&c);
    }
    json_decref(c.where);
    if (json_array_size(c.errors)) {
        first_error_text(c.errors, err, errlen);
        if (errors)
            *errors = c.errors;
        else
            json_decref(c.errors);
        json_decref(c.config);
        return NULL;
    }
    json_decref(c.errors);
    return c.config;
}

json_t *sl_declarative_load(const char *text, size_t len, json_t **errors, char *err, size_t errlen)
{
    char perr[300];
    json_t *doc = sl_yaml_parse(text, len, perr, sizeof(perr));
    if (!doc) {
        if (errors)
            *errors = NULL;
        snprintf(err, errlen, "cannot parse the declarative config: %s", perr);
        return NULL;
    }
    json_t *config = sl_declarative_flatten(doc, errors, err, errlen);
    json_decref(doc);
    return config;
}

/* --- export --- */

/* A row as a file shows it: no timestamps, no derived or transient fields, no nulls that
 * import would read back as the same null. */
static json_t *export_row(const sl_entity *e, const json_t *row, const sl_field *drop_fk)
{
    json_t *out = json_object();
    for (size_t i = 0; i < e->nfields; i++) {
        const sl_field *f = &e->fields[i];
        json_t *v = json_object_get(row, f->name);
        if (!v || f == drop_fk || (f->flags & SL_F_TRANSIENT))
            continue;
        if (!strcmp(f->name, "created_at") || !strcmp(f->name, "updated_at"))
            continue;
        if (json_is_null(v) && !f->dflt)
            continue;
        json_object_set(out, f->name, v);
    }
    return out;
}

json_t *sl_declarative_nest(const json_t *config)
{
    json_t *doc = json_pack("{s:s}", "_format_version", "3.0");
    json_t *by_id = json_object(); /* "<entity>:<id>" -> exported row (borrowed) */
    for (size_t i = 0; i < sl_entity_count; i++) {
        const sl_entity *e = sl_entities[i];
        size_t r;
        json_t *row;
        json_array_foreach(json_object_get(config, e->name), r, row)
        {
            /* Nest under the one parent when exactly one reference is set. */
            const sl_field *only = NULL;
            int set = 0;
            for (size_t f = 0; f < e->nfields; f++) {
                const sl_field *fd = &e->fields[f];
                json_t *ref = json_object_get(row, fd->name);
                if (fd->type == SL_T_FOREIGN && ref && !json_is_null(ref)) {
                    set++;
                    only = fd;
                }
            }
            json_t *parent = NULL;
            if (set == 1) {
                char key[200];
                snprintf(
                    key, sizeof(key), "%s:%s", only->ref,
                    json_string_value(json_object_get(json_object_get(row, only->name), "id")));
                parent = json_object_get(by_id, key);
            }
            json_t *out = export_row(e, row, parent ? only : NULL);
            char key[200];
            snprintf(key, sizeof(key), "%s:%s", e->name,
                     json_string_value(json_object_get(row, "id")));
            json_object_set(by_id, key, out);
            json_t *holder = parent ? parent : doc;
            json_t *list = json_object_get(holder, e->name);
            if (!list) {
                list = json_array();
                json_object_set_new(holder, e->name, list);
            }
            json_array_append_new(list, out);
        }
    }
    json_decref(by_id);
    return doc;
}
