#include "control_plane/cluster/config_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/schema.h"

/* Rows live in one object per entity (id -> row) so that a change touches one key; the
 * sorted digests give the id order that snapshots, deltas and the hash need. */

static int entity_index(const char *name, size_t *x)
{
    for (size_t i = 0; i < sl_entity_count; i++)
        if (strcmp(sl_entities[i]->name, name) == 0) {
            *x = i;
            return 0;
        }
    return -1;
}

static void clear_content(cp_config_model *m)
{
    for (size_t x = 0; m->rows && x < sl_entity_count; x++) {
        json_decref(m->rows[x]);
        m->rows[x] = NULL;
    }
    if (m->digests)
        sl_config_digests_free(m->digests);
    m->loaded = 0;
}

int cp_config_model_init(cp_config_model *m)
{
    memset(m, 0, sizeof(*m));
    m->rows = calloc(sl_entity_count, sizeof(*m->rows));
    m->digests = calloc(sl_entity_count, sizeof(*m->digests));
    if (!m->rows || !m->digests) {
        cp_config_model_free(m);
        return -1;
    }
    return 0;
}

void cp_config_model_free(cp_config_model *m)
{
    clear_content(m);
    free(m->rows);
    free(m->digests);
    memset(m, 0, sizeof(*m));
}

/* Appends row (or, for a delete, id) to out[entity name], creating the array. */
static int add_change(json_t *out, const char *entity, json_t *value)
{
    json_t *arr = json_object_get(out, entity);
    if (!arr) {
        arr = json_array();
        if (!arr || json_object_set_new(out, entity, arr)) {
            json_decref(value);
            return -1;
        }
    }
    return json_array_append_new(arr, value);
}

/* The changes between old and new digests of entity x: ids new or changed -> upserts (rows
 * from new_rows), ids gone -> deletes. Both lists are in id order: one merge. */
static int diff_entity(size_t x, const sl_row_digests *old, const sl_row_digests *cur,
                       const json_t *new_rows, json_t *upserts, json_t *deletes)
{
    const char *name = sl_entities[x]->name;
    size_t i = 0, j = 0;
    while (i < old->n || j < cur->n) {
        int c = i == old->n ? 1 : j == cur->n ? -1 : strcmp(old->ids[i], cur->ids[j]);
        if (c < 0) {
            if (add_change(deletes, name, json_string(old->ids[i])))
                return -1;
            i++;
            continue;
        }
        if (c > 0 || memcmp(&old->digests[i], &cur->digests[j], sizeof(sl_digest)) != 0) {
            if (add_change(upserts, name, json_incref(json_object_get(new_rows, cur->ids[j]))))
                return -1;
        }
        if (c == 0)
            i++;
        j++;
    }
    return 0;
}

int cp_config_model_load(cp_config_model *m, const json_t *config, int64_t version, sl_delta *delta,
                         int *has_delta, char *err, size_t errlen)
{
    if (has_delta)
        *has_delta = 0;
    sl_row_digests *digests = calloc(sl_entity_count, sizeof(*digests));
    json_t **rows = calloc(sl_entity_count, sizeof(*rows));
    if (!digests || !rows) {
        free(digests);
        free(rows);
        snprintf(err, errlen, "out of memory");
        clear_content(m);
        return -1;
    }
    int rc = sl_config_digests(config, digests, err, errlen);
    for (size_t x = 0; rc == 0 && x < sl_entity_count; x++) {
        rows[x] = json_object();
        const json_t *arr = json_object_get(config, sl_entities[x]->name);
        for (size_t i = 0; rows[x] && i < json_array_size(arr); i++) {
            json_t *row = json_array_get(arr, i);
            if (json_object_set(rows[x], json_string_value(json_object_get(row, "id")), row))
                rc = -1;
        }
        if (!rows[x] || rc) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
    }
    char hash[SL_SNAPSHOT_HASH_HEX];
    if (rc == 0)
        sl_config_hash(digests, hash);

    /* The changes from what the model held, for data planes that have it. */
    if (rc == 0 && m->loaded && delta && has_delta) {
        json_t *up = json_object(), *del = json_object();
        int ok = up && del;
        for (size_t x = 0; ok && x < sl_entity_count; x++)
            ok = diff_entity(x, &m->digests[x], &digests[x], rows[x], up, del) == 0;
        char derr[256];
        if (ok && sl_delta_encode(up, del, m->version, m->hash, version, hash, delta, derr,
                                  sizeof(derr)) == 0)
            *has_delta = 1;
        json_decref(up);
        json_decref(del);
    }

    clear_content(m);
    if (rc) {
        for (size_t x = 0; x < sl_entity_count; x++)
            json_decref(rows[x]);
        sl_config_digests_free(digests);
        free(digests);
        free(rows);
        return -1;
    }
    free(m->rows);
    free(m->digests);
    m->rows = rows;
    m->digests = digests;
    m->version = version;
    memcpy(m->hash, hash, sizeof(hash));
    m->loaded = 1;
    return 0;
}

/* One upsert, checked and digested before the model changes. */
typedef struct {
    size_t x;
    const char *id;
    json_t *row;
    sl_digest d;
} pending_upsert;

typedef struct {
    size_t x;
    const char *id;
} pending_delete;

/* Checks and digests every change; keeps only those that change the model. Returns 0, or -1
 * with err. */
static int prepare(const cp_config_model *m, const json_t *upserts, const json_t *deletes,
                   pending_upsert **pu, size_t *nu, pending_delete **pd, size_t *nd, char *err,
                   size_t errlen)
{
    size_t cu = 0, cd = 0;
    const char *name;
    json_t *arr;
    json_object_foreach((json_t *)upserts, name, arr) cu += json_array_size(arr);
    json_object_foreach((json_t *)deletes, name, arr) cd += json_array_size(arr);
    *pu = calloc(cu ? cu : 1, sizeof(**pu));
    *pd = calloc(cd ? cd : 1, sizeof(**pd));
    *nu = *nd = 0;
    if (!*pu || !*pd) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    json_object_foreach((json_t *)upserts, name, arr)
    {
        size_t x;
        if (entity_index(name, &x) || !json_is_array(arr)) {
            snprintf(err, errlen, "upserts: unknown entity '%s'", name);
            return -1;
        }
        size_t i;
        json_t *row;
        json_array_foreach(arr, i, row)
        {
            pending_upsert *p = &(*pu)[*nu];
            p->x = x;
            p->row = row;
            p->id = json_string_value(json_object_get(row, "id"));
            if (!p->id || strlen(p->id) > SL_UUID_LEN) {
                snprintf(err, errlen, "%s[%zu]: no valid id", name, i);
                return -1;
            }
            if (sl_row_digest(sl_entities[x], row, &p->d, err, errlen))
                return -1;
            const sl_digest *have = sl_row_digests_get(&m->digests[x], p->id);
            if (have && memcmp(have, &p->d, sizeof(sl_digest)) == 0)
                continue; /* written again with the same content */
            (*nu)++;
        }
    }
    json_object_foreach((json_t *)deletes, name, arr)
    {
        size_t x;
        if (entity_index(name, &x) || !json_is_array(arr)) {
            snprintf(err, errlen, "deletes: unknown entity '%s'", name);
            return -1;
        }
        size_t i;
        json_t *id;
        json_array_foreach(arr, i, id)
        {
            const char *s = json_string_value(id);
            if (!s) {
                snprintf(err, errlen, "deletes %s[%zu]: not an id", name, i);
                return -1;
            }
            if (!sl_row_digests_get(&m->digests[x], s))
                continue; /* created and deleted since the model's version */
            (*pd)[*nd].x = x;
            (*pd)[*nd].id = s;
            (*nd)++;
        }
    }
    return 0;
}

int cp_config_model_apply(cp_config_model *m, const json_t *upserts, const json_t *deletes,
                          int64_t version, sl_delta *delta, char *err, size_t errlen)
{
    memset(delta, 0, sizeof(*delta));
    if (!m->loaded) {
        snprintf(err, errlen, "the config model is not loaded");
        return -1;
    }
    pending_upsert *pu = NULL;
    pending_delete *pd = NULL;
    size_t nu = 0, nd = 0;
    json_t *up = json_object(), *del = json_object();
    int rc = up && del ? 0 : -1;
    if (rc)
        snprintf(err, errlen, "out of memory");
    else
        rc = prepare(m, upserts, deletes, &pu, &nu, &pd, &nd, err, errlen);
    if (rc) {
        free(pu);
        free(pd);
        json_decref(up);
        json_decref(del);
        return -1;
    }
    /* From here on the model changes; a failure leaves it to be loaded again. */
    for (size_t i = 0; rc == 0 && i < nu; i++) {
        pending_upsert *p = &pu[i];
        const char *name = sl_entities[p->x]->name;
        if (sl_row_digests_set(&m->digests[p->x], p->id, &p->d) ||
            json_object_set(m->rows[p->x], p->id, p->row) ||
            add_change(up, name, json_incref(p->row)))
            rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < nd; i++) {
        pending_delete *p = &pd[i];
        /* The id's text belongs to the caller's deletes, not to the row being dropped. */
        if (add_change(del, sl_entities[p->x]->name, json_string(p->id)))
            rc = -1;
        sl_row_digests_remove(&m->digests[p->x], p->id);
        json_object_del(m->rows[p->x], p->id);
    }
    free(pu);
    free(pd);
    char hash[SL_SNAPSHOT_HASH_HEX];
    if (rc == 0) {
        sl_config_hash(m->digests, hash);
        rc = sl_delta_encode(up, del, m->version, m->hash, version, hash, delta, err, errlen);
    } else {
        snprintf(err, errlen, "out of memory applying changes");
    }
    json_decref(up);
    json_decref(del);
    if (rc) {
        clear_content(m);
        return -1;
    }
    m->version = version;
    memcpy(m->hash, hash, sizeof(hash));
    return 0;
}

json_t *cp_config_model_config(const cp_config_model *m)
{
    json_t *cfg = json_object();
    for (size_t x = 0; cfg && x < sl_entity_count; x++) {
        const sl_row_digests *d = &m->digests[x];
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < d->n; i++) {
            json_t *row = m->rows ? json_object_get(m->rows[x], d->ids[i]) : NULL;
            if (!row || json_array_append(arr, row)) {
                json_decref(arr);
                arr = NULL;
            }
        }
        if (!arr || json_object_set_new(cfg, sl_entities[x]->name, arr)) {
            json_decref(cfg);
            cfg = NULL;
        }
    }
    return cfg;
}

int cp_config_model_snapshot(const cp_config_model *m, sl_snapshot *s, char *err, size_t errlen)
{
    json_t *cfg = cp_config_model_config(m);
    if (!cfg) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = sl_snapshot_encode(cfg, m->version, s, err, errlen);
    json_decref(cfg);
    return rc;
}

json_t *cp_config_model_plugins_used(const cp_config_model *m)
{
    json_t *names = json_array();
    size_t x;
    if (!names || entity_index("plugins", &x) || !m->rows || !m->rows[x])
        return names;
    /* In id order, so the plugin named in "lacks plugin X" messages is always the same. */
    for (size_t i = 0; i < m->digests[x].n; i++) {
        const json_t *p = json_object_get(m->rows[x], m->digests[x].ids[i]);
        if (json_is_false(json_object_get(p, "enabled")))
            continue;
        const char *name = json_string_value(json_object_get(p, "name"));
        if (!name)
            continue;
        int seen = 0;
        size_t j;
        json_t *n;
        json_array_foreach(names, j, n) if (strcmp(json_string_value(n), name) == 0) seen = 1;
        if (!seen && json_array_append_new(names, json_string(name))) {
            json_decref(names);
            return NULL;
        }
    }
    return names;
}

size_t cp_config_model_count(const cp_config_model *m, const char *entity)
{
    size_t x;
    return entity_index(entity, &x) || !m->digests ? 0 : m->digests[x].n;
}
