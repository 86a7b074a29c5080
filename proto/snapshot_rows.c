/* Canonical rows (proto/snapshot_rows.h). */
#include "proto/snapshot_rows.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/digest.h"

int sl_sbuf_write(void *data, const char *buf, size_t len)
{
    sl_sbuf *b = data;
    if (b->oom || msgpack_sbuffer_write(&b->sb, buf, len) != 0) {
        b->oom = 1;
        return -1;
    }
    return 0;
}

/* The field named by key k, or NULL. Canonical rows list fields in schema order, so the
 * field after the previous one (*hint) is tried first: one comparison per key, usually. */
static const sl_field *field_by_key(const sl_entity *e, const char *k, uint32_t klen, size_t *hint)
{
    for (size_t n = 0; n < e->nfields; n++) {
        size_t i = (*hint + n) % e->nfields;
        const char *name = e->fields[i].name;
        if (strnlen(name, (size_t)klen + 1) == klen && memcmp(name, k, klen) == 0) {
            *hint = i + 1;
            return &e->fields[i];
        }
    }
    return NULL;
}

const sl_entity *sl_snapshot_entity_named(const char *k, uint32_t klen, size_t *index)
{
    for (size_t x = 0; x < sl_entity_count; x++) {
        const char *name = sl_entities[x]->name;
        if (strnlen(name, (size_t)klen + 1) == klen && memcmp(name, k, klen) == 0) {
            *index = x;
            return sl_entities[x];
        }
    }
    return NULL;
}

/* A FOREIGN value is always {"id": "<uuid>"} in canonical bytes, whether the caller gave that
 * object (with or without other keys) or a bare id string. */
static int pack_foreign(msgpack_packer *pk, const json_t *v, const char *ename, const char *id,
                        const sl_field *f, char *err, size_t errlen)
{
    const json_t *fid = json_is_object(v) ? json_object_get(v, "id") : v;
    if (!json_is_string(fid)) {
        snprintf(err, errlen, "%s %s: %s must be {\"id\": \"<uuid>\"}", ename, id, f->name);
        return -1;
    }
    msgpack_pack_map(pk, 1);
    sl_mp_pack_cstr(pk, "id");
    sl_mp_pack_strn(pk, json_string_value(fid), json_string_length(fid));
    return 0;
}

int sl_snapshot_pack_row_into(msgpack_packer *pk, const sl_entity *e, const json_t *row,
                              const char *id, const json_t **vals, char *err, size_t errlen)
{
    /* One pass over the row's members, placed by schema position: cheaper than a hash
     * lookup per schema field when there are many rows. */
    memset(vals, 0, e->nfields * sizeof(*vals));
    size_t hint = 0;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)row, key, value)
    {
        const sl_field *f = field_by_key(e, key, (uint32_t)strlen(key), &hint);
        if (f) /* fields the schema does not know are left out */
            vals[f - e->fields] = value;
    }
    /* Every schema field, in schema order, so the bytes do not depend on how the caller
     * built its objects. */
    msgpack_pack_map(pk, e->nfields);
    for (size_t k = 0; k < e->nfields; k++) {
        const sl_field *f = &e->fields[k];
        const json_t *v = vals[k];
        sl_mp_pack_cstr(pk, f->name);
        if (!v || json_is_null(v)) {
            msgpack_pack_nil(pk);
        } else if (f->type == SL_T_FOREIGN) {
            if (pack_foreign(pk, v, e->name, id, f, err, errlen))
                return -1;
        } else if (sl_mp_pack_json(pk, v, err, errlen)) {
            char inner[256];
            snprintf(inner, sizeof(inner), "%s", err);
            snprintf(err, errlen, "%s %s: %s: %s", e->name, id, f->name, inner);
            return -1;
        }
    }
    return 0;
}

int sl_snapshot_pack_row(const sl_entity *e, const json_t *row, unsigned char **bytes, size_t *len,
                         char *err, size_t errlen)
{
    const char *id = json_string_value(json_object_get(row, "id"));
    const json_t **vals = malloc((e->nfields ? e->nfields : 1) * sizeof(*vals));
    sl_sbuf b = {0};
    msgpack_sbuffer_init(&b.sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, sl_sbuf_write);
    int rc = -1;
    if (!json_is_object(row) || !id)
        snprintf(err, errlen, "%s: not an object with a string id", e->name);
    else if (!vals)
        snprintf(err, errlen, "out of memory encoding %s %s", e->name, id);
    else if (sl_snapshot_pack_row_into(&pk, e, row, id, vals, err, errlen) == 0) {
        if (b.oom)
            snprintf(err, errlen, "out of memory encoding %s %s", e->name, id);
        else
            rc = 0;
    }
    free(vals);
    if (rc) {
        msgpack_sbuffer_destroy(&b.sb);
        return -1;
    }
    *len = b.sb.size;
    *bytes = (unsigned char *)msgpack_sbuffer_release(&b.sb);
    if (!*bytes) { /* an empty buffer releases NULL; a row map is never empty */
        snprintf(err, errlen, "out of memory encoding %s %s", e->name, id);
        return -1;
    }
    return 0;
}

json_t *sl_snapshot_read_row(sl_mp_reader *r, const sl_entity *e, unsigned char *seen,
                             sl_digest *digest, const char *prefix, uint32_t index, char *err,
                             size_t errlen)
{
    /* the row's name in messages, written only when there is one to write (100,000 rows) */
    char where[96];
#define WHERE() (snprintf(where, sizeof(where), "%s%s[%u]", prefix, e->name, index), where)
    const unsigned char *start = r->p;
    uint32_t m;
    if (sl_mp_read_map(r, &m, err, errlen))
        return NULL;
    json_t *row = json_object();
    if (!row) {
        snprintf(err, errlen, "out of memory decoding %s", WHERE());
        return NULL;
    }
    size_t hint = 0;
    memset(seen, 0, e->nfields);
    for (uint32_t j = 0; j < m; j++) {
        const char *k;
        uint32_t klen;
        if (sl_mp_read_str(r, &k, &klen, err, errlen))
            goto fail;
        const sl_field *f = field_by_key(e, k, klen, &hint);
        if (!f) {
            if (sl_mp_skip(r, err, errlen))
                goto fail;
            continue;
        }
        if (seen[f - e->fields]++) {
            snprintf(err, errlen, "%s: duplicate field %s", WHERE(), f->name);
            goto fail;
        }
        /* The packer writes nil for a null field and for an absent one alike, so a row
         * without its nils packs to the same bytes; leaving them out saves a third of a
         * route's memory (7 of its 21 fields are usually null), and memory is most of the
         * time a large snapshot takes. Validation (SL_VALIDATE_CANONICAL) reads an absent
         * field as null, or as its default when it has one (as for a sender that does not
         * know the field). */
        if (sl_mp_peek(r) == SL_MP_NIL) {
            r->p++;
            continue;
        }
        json_t *v;
        if (sl_mp_read_json(r, &v, err, errlen)) {
            char inner[256];
            snprintf(inner, sizeof(inner), "%s", err);
            snprintf(err, errlen, "%s.%s: %s", WHERE(), f->name, inner);
            goto fail;
        }
        if (json_object_set_new_nocheck(row, f->name, v)) {
            snprintf(err, errlen, "out of memory decoding %s", WHERE());
            goto fail;
        }
    }
    if (sl_sha256(start, (size_t)(r->p - start), digest->b)) {
        snprintf(err, errlen, "out of memory decoding %s", WHERE());
        goto fail;
    }
    return row;
fail:
    json_decref(row);
    return NULL;
}
#undef WHERE

int sl_snapshot_skim_row(sl_mp_reader *r, char id[SL_UUID_LEN + 1], sl_digest *d, char *err,
                         size_t errlen)
{
    const unsigned char *start = r->p;
    uint32_t m;
    id[0] = '\0';
    if (sl_mp_read_map(r, &m, err, errlen))
        return -1;
    for (uint32_t j = 0; j < m; j++) {
        const char *k, *v;
        uint32_t klen, vlen;
        if (sl_mp_read_str(r, &k, &klen, err, errlen))
            return -1;
        if (klen == 2 && memcmp(k, "id", 2) == 0 && sl_mp_peek(r) == SL_MP_STR) {
            if (sl_mp_read_str(r, &v, &vlen, err, errlen))
                return -1;
            if (vlen <= SL_UUID_LEN) {
                memcpy(id, v, vlen);
                id[vlen] = '\0';
            }
        } else if (sl_mp_skip(r, err, errlen)) {
            return -1;
        }
    }
    if (sl_sha256(start, (size_t)(r->p - start), d->b)) {
        snprintf(err, errlen, "out of memory decoding the snapshot");
        return -1;
    }
    return 0;
}
