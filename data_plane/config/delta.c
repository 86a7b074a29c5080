/* Delta application (data_plane/config/delta.h). Entity arrays stay sorted by id, so rows are
 * found by binary search and an upsert or delete costs one memmove of pointers: a change to one
 * route of 100,000 copies pointers, not rows. */
#include "data_plane/config/delta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/sort.h"

static const char *row_id(const json_t *row)
{
    return json_string_value(json_object_get(row, "id"));
}

/* Position of id in the sorted array rows (found) or where it would go. */
static size_t find(const json_t *rows, const char *id, int *found)
{
    size_t lo = 0, hi = json_array_size(rows);
    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *m = row_id(json_array_get(rows, mid));
        int c = m ? strcmp(m, id) : -1;
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A new array holding old's rows (in id order: the snapshot decoder and this file keep every
 * entity array of a control-plane config sorted). */
static json_t *sorted_copy(const json_t *old)
{
    json_t *out = json_array();
    if (out && json_array_size(old) && json_array_extend(out, (json_t *)old)) {
        json_decref(out);
        return NULL;
    }
    return out;
}

typedef struct {
    json_t *reasons;
    size_t count;
    char first[512];
} reasons;

static void reason(reasons *rs, const char *entity, const char *id, const char *field,
                   const char *text)
{
    if (rs->count++ == 0)
        snprintf(rs->first, sizeof(rs->first), "%s %s: %s", entity, id ? id : "(no id)", text);
    if (json_array_size(rs->reasons) < 100)
        json_array_append_new(rs->reasons, json_pack("{s:s, s:s?, s:{s:s}}", "entity", entity, "id",
                                                     id, "errors", field, text));
}

static const char *foreign_id(const json_t *row, const sl_field *f)
{
    return json_string_value(json_object_get(json_object_get(row, f->name), "id"));
}

typedef struct {
    const char *entity, *id;
} deleted;

static int deleted_cmp(const void *a, const void *b)
{
    const deleted *x = a, *y = b;
    int c = strcmp(x->entity, y->entity);
    return c ? c : strcmp(x->id, y->id);
}

/* Every reference an upserted row makes must resolve, and no remaining row may reference a
 * deleted one. */
static void check_references(const json_t *cfg, const sl_delta_decoded *dd, reasons *rs)
{
    for (size_t i = 0; i < dd->nupserts; i++) {
        const sl_delta_upsert *u = &dd->upserts[i];
        for (size_t k = 0; u->entity && k < u->entity->nfields; k++) {
            const sl_field *f = &u->entity->fields[k];
            const char *ref = f->type == SL_T_FOREIGN && f->ref ? foreign_id(u->row, f) : NULL;
            int found;
            if (!ref)
                continue;
            find(json_object_get(cfg, f->ref), ref, &found);
            if (!found) {
                char msg[256];
                snprintf(msg, sizeof(msg), "references %s id %s, which does not exist", f->ref,
                         ref);
                reason(rs, u->entity->name, u->id, f->name, msg);
            }
        }
    }
    if (!dd->ndeletes)
        return;
    deleted *dels = malloc(dd->ndeletes * sizeof(*dels));
    if (!dels) {
        reason(rs, "delta", NULL, "delete", "out of memory checking deletes");
        return;
    }
    for (size_t i = 0; i < dd->ndeletes; i++)
        dels[i] = (deleted){dd->deletes[i].entity_name, dd->deletes[i].id};
    sl_sort(dels, dd->ndeletes, sizeof(*dels), deleted_cmp);
    for (size_t x = 0; x < sl_entity_count; x++) {
        const sl_entity *e = sl_entities[x];
        for (size_t k = 0; k < e->nfields; k++) {
            const sl_field *f = &e->fields[k];
            if (f->type != SL_T_FOREIGN || !f->ref)
                continue;
            deleted key = {f->ref, ""};
            /* only scan when something of the referenced entity was deleted */
            size_t lo = 0, hi = dd->ndeletes;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (deleted_cmp(&dels[mid], &key) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo == dd->ndeletes || strcmp(dels[lo].entity, f->ref) != 0)
                continue;
            const json_t *rows = json_object_get(cfg, e->name);
            for (size_t i = 0; i < json_array_size(rows); i++) {
                const json_t *row = json_array_get(rows, i);
                deleted probe = {f->ref, foreign_id(row, f)};
                if (probe.id && bsearch(&probe, dels, dd->ndeletes, sizeof(*dels), deleted_cmp)) {
                    char msg[256];
                    snprintf(msg, sizeof(msg), "references %s id %s, which the delta deletes",
                             f->ref, probe.id);
                    reason(rs, e->name, row_id(row), f->name, msg);
                }
            }
        }
    }
    free(dels);
}

/* The digests list an upsert or delete of entity name belongs to (NULL: no room). */
static sl_row_digests *digests_of(sl_digest_set *set, const sl_entity *e, const char *name)
{
    if (e) {
        for (size_t x = 0; x < sl_entity_count; x++)
            if (sl_entities[x] == e)
                return &set->known[x];
        return NULL;
    }
    return sl_digest_set_extra(set, name, strlen(name));
}

int dp_delta_apply(const json_t *old_config, const sl_digest_set *old_digests,
                   const sl_delta_decoded *dd, json_t **new_config, sl_digest_set *new_digests,
                   json_t **errors, char *err, size_t errlen)
{
    *new_config = NULL;
    if (errors)
        *errors = NULL;
    json_t *cfg = json_object();
    reasons rs = {.reasons = json_array()};
    int rc = -1;
    if (!cfg || !rs.reasons || sl_digest_set_copy(new_digests, old_digests)) {
        snprintf(err, errlen, "out of memory applying a delta");
        json_decref(cfg);
        json_decref(rs.reasons);
        return -1;
    }
    /* Untouched entities share the old array; touched ones get a copy to change. */
    for (size_t x = 0; x < sl_entity_count; x++) {
        const char *name = sl_entities[x]->name;
        const json_t *old = json_object_get(old_config, name);
        int touched = 0;
        for (size_t i = 0; i < dd->nupserts && !touched; i++)
            touched = dd->upserts[i].entity == sl_entities[x];
        for (size_t i = 0; i < dd->ndeletes && !touched; i++)
            touched = dd->deletes[i].entity == sl_entities[x];
        json_t *arr = touched ? sorted_copy(old) : old ? json_incref((json_t *)old) : json_array();
        if (!arr || json_object_set_new(cfg, name, arr)) {
            snprintf(err, errlen, "out of memory applying a delta");
            goto out;
        }
    }
    for (size_t i = 0; i < dd->ndeletes; i++) {
        const sl_delta_delete *d = &dd->deletes[i];
        sl_row_digests *list = digests_of(new_digests, d->entity, d->entity_name);
        if (!list || sl_row_digests_remove(list, d->id)) {
            reason(&rs, d->entity_name, d->id, "id", "deleted, but not in this configuration");
            continue;
        }
        if (d->entity) {
            json_t *rows = json_object_get(cfg, d->entity->name);
            int found;
            size_t at = find(rows, d->id, &found);
            if (found)
                json_array_remove(rows, at);
        }
    }
    for (size_t i = 0; i < dd->nupserts; i++) {
        const sl_delta_upsert *u = &dd->upserts[i];
        sl_row_digests *list = digests_of(new_digests, u->entity, u->entity_name);
        if (!list || sl_row_digests_set(list, u->id, &u->digest)) {
            snprintf(err, errlen, "out of memory applying a delta");
            goto out;
        }
        if (u->entity) {
            json_t *rows = json_object_get(cfg, u->entity->name);
            int found;
            size_t at = find(rows, u->id, &found);
            int bad =
                found ? json_array_set(rows, at, u->row) : json_array_insert(rows, at, u->row);
            if (bad) {
                snprintf(err, errlen, "out of memory applying a delta");
                goto out;
            }
        }
    }
    check_references(cfg, dd, &rs);
    if (rs.count) {
        if (rs.count == 1)
            snprintf(err, errlen, "delta refused: %s", rs.first);
        else
            snprintf(err, errlen, "delta refused: %zu invalid entities, first: %s", rs.count,
                     rs.first);
        goto out;
    }
    char got[65];
    sl_digest_set_hash(new_digests, got);
    if (strcmp(got, dd->hash) != 0) {
        snprintf(err, errlen,
                 "hash mismatch after applying the delta: control plane says %s, the result "
                 "hashes to %s",
                 dd->hash, got);
        goto out;
    }
    rc = 0;
out:
    if (rc) {
        json_decref(cfg);
        sl_digest_set_free(new_digests);
        if (errors && json_array_size(rs.reasons)) {
            *errors = rs.reasons;
            rs.reasons = NULL;
        }
    } else {
        *new_config = cfg;
    }
    json_decref(rs.reasons);
    return rc;
}
