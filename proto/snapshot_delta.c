/* Config deltas (layout: proto/snapshot_delta.h). Rows are encoded and read with the snapshot's
 * own row code (proto/snapshot_rows.h), so a row's digest is the same whichever way it came. */
#include "proto/snapshot_delta.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/compress.h"
#include "proto/digest.h"
#include "proto/snapshot_rows.h"
#include "proto/sort.h"
#include "proto/uuid.h"

static int key_is(const char *k, uint32_t klen, const char *lit)
{
    return strlen(lit) == klen && memcmp(k, lit, klen) == 0;
}

/* ---- encoding ---- */

typedef struct {
    const char *id;
    const json_t *row;
} row_ref;

static int ref_cmp(const void *a, const void *b)
{
    return strcmp(((const row_ref *)a)->id, ((const row_ref *)b)->id);
}

/* Entities of obj that have something, checked against the schema; -1 with err otherwise. */
static int count_entities(const json_t *obj, const char *what, size_t *n, char *err, size_t errlen)
{
    *n = 0;
    if (!obj || json_is_null(obj))
        return 0;
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "delta %s must be an object", what);
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        if (!sl_entity_by_name(k)) {
            snprintf(err, errlen, "delta %s: unknown entity %s", what, k);
            return -1;
        }
        if (!json_is_array(v)) {
            snprintf(err, errlen, "delta %s: %s must be an array", what, k);
            return -1;
        }
        if (json_array_size(v))
            (*n)++;
    }
    return 0;
}

/* Packs {"<entity>": [...]} for upserts (rows) or deletes (ids), entities in schema order. */
static int pack_changes(msgpack_packer *pk, const json_t *obj, size_t nent, int rows, char *err,
                        size_t errlen)
{
    msgpack_pack_map(pk, nent);
    for (size_t x = 0; x < sl_entity_count && nent; x++) {
        const sl_entity *e = sl_entities[x];
        const json_t *list = json_object_get(obj, e->name);
        size_t n = json_array_size(list);
        if (!n)
            continue;
        row_ref *refs = malloc(n * sizeof(*refs));
        const json_t **vals = malloc((e->nfields ? e->nfields : 1) * sizeof(*vals));
        int rc = refs && vals ? 0 : -1;
        if (rc)
            snprintf(err, errlen, "out of memory encoding a delta");
        for (size_t i = 0; i < n && rc == 0; i++) {
            const json_t *v = json_array_get(list, i);
            const json_t *id = rows ? json_object_get(v, "id") : v;
            if (!json_is_string(id) || json_string_length(id) > SL_UUID_LEN) {
                snprintf(err, errlen, "delta: %s[%zu] has no usable id", e->name, i);
                rc = -1;
                break;
            }
            refs[i] = (row_ref){json_string_value(id), v};
        }
        if (rc == 0) {
            sl_sort(refs, n, sizeof(*refs), ref_cmp);
            sl_mp_pack_cstr(pk, e->name);
            msgpack_pack_array(pk, n);
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (i && strcmp(refs[i - 1].id, refs[i].id) == 0) {
                snprintf(err, errlen, "delta: %s %s listed twice", e->name, refs[i].id);
                rc = -1;
            } else if (rows) {
                rc = sl_snapshot_pack_row_into(pk, e, refs[i].row, refs[i].id, vals, err, errlen);
            } else {
                sl_mp_pack_cstr(pk, refs[i].id);
            }
        }
        free(refs);
        free(vals);
        if (rc)
            return -1;
        nent--;
    }
    return 0;
}

int sl_delta_encode(const json_t *upserts, const json_t *deletes, int64_t base_version,
                    const char *base_hash, int64_t version, const char *hash, sl_delta *d,
                    char *err, size_t errlen)
{
    memset(d, 0, sizeof(*d));
    size_t nup, ndel;
    if (count_entities(upserts, "upsert", &nup, err, errlen) ||
        count_entities(deletes, "delete", &ndel, err, errlen))
        return -1;
    if (base_version < 0 || version <= base_version) {
        snprintf(err, errlen, "delta versions must grow (%lld -> %lld)", (long long)base_version,
                 (long long)version);
        return -1;
    }
    if (!base_hash || !sl_is_sha256_hex(base_hash, strlen(base_hash)) || !hash ||
        !sl_is_sha256_hex(hash, strlen(hash))) {
        snprintf(err, errlen, "delta hashes must be 64 lower-case hex digits");
        return -1;
    }
    sl_sbuf canon = {0}, env = {0};
    msgpack_sbuffer_init(&canon.sb);
    msgpack_sbuffer_init(&env.sb);
    unsigned char *z = NULL;
    size_t zlen = 0;
    int rc = -1;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &canon, sl_sbuf_write);
    msgpack_pack_map(&pk, 2);
    sl_mp_pack_cstr(&pk, "upsert");
    if (pack_changes(&pk, upserts, nup, 1, err, errlen))
        goto out;
    sl_mp_pack_cstr(&pk, "delete");
    if (pack_changes(&pk, deletes, ndel, 0, err, errlen))
        goto out;
    if (canon.oom) {
        snprintf(err, errlen, "out of memory encoding a delta");
        goto out;
    }
    if (sl_deflate((const unsigned char *)canon.sb.data, canon.sb.size, &z, &zlen, err, errlen))
        goto out;
    if (zlen > UINT32_MAX) {
        snprintf(err, errlen, "compressed delta of %zu bytes is too large", zlen);
        goto out;
    }
    msgpack_packer_init(&pk, &env, sl_sbuf_write);
    msgpack_pack_map(&pk, 7);
    sl_mp_pack_cstr(&pk, "type");
    sl_mp_pack_cstr(&pk, "delta");
    sl_mp_pack_cstr(&pk, "format");
    msgpack_pack_int64(&pk, SL_SNAPSHOT_FORMAT);
    sl_mp_pack_cstr(&pk, "base_version");
    msgpack_pack_int64(&pk, base_version);
    sl_mp_pack_cstr(&pk, "base_hash");
    sl_mp_pack_strn(&pk, base_hash, 64);
    sl_mp_pack_cstr(&pk, "version");
    msgpack_pack_int64(&pk, version);
    sl_mp_pack_cstr(&pk, "hash");
    sl_mp_pack_strn(&pk, hash, 64);
    sl_mp_pack_cstr(&pk, "payload");
    msgpack_pack_bin(&pk, zlen);
    msgpack_pack_bin_body(&pk, z, zlen);
    if (env.oom) {
        snprintf(err, errlen, "out of memory encoding a delta");
        goto out;
    }
    d->base_version = base_version;
    d->version = version;
    memcpy(d->base_hash, base_hash, 65);
    memcpy(d->hash, hash, 65);
    d->len = env.sb.size;
    d->bytes = (unsigned char *)msgpack_sbuffer_release(&env.sb);
    rc = 0;
out:
    free(z);
    msgpack_sbuffer_destroy(&canon.sb);
    msgpack_sbuffer_destroy(&env.sb);
    return rc;
}

void sl_delta_free(sl_delta *d)
{
    if (d) {
        free(d->bytes);
        memset(d, 0, sizeof(*d));
    }
}

/* ---- envelope ---- */

typedef struct {
    int64_t base_version, version;
    char base_hash[SL_SNAPSHOT_HASH_HEX], hash[SL_SNAPSHOT_HASH_HEX];
    const unsigned char *payload;
    uint32_t payload_len;
} envelope;

static int read_hash(sl_mp_reader *r, char out[SL_SNAPSHOT_HASH_HEX], const char *what, char *err,
                     size_t errlen)
{
    const char *s;
    uint32_t n;
    if (sl_mp_read_str(r, &s, &n, err, errlen))
        return -1;
    if (!sl_is_sha256_hex(s, n)) {
        snprintf(err, errlen, "delta %s is not 64 lower-case hex digits", what);
        return -1;
    }
    memcpy(out, s, 64);
    out[64] = '\0';
    return 0;
}

static int parse_envelope(const unsigned char *bytes, size_t len, envelope *env, int want_payload,
                          char *err, size_t errlen)
{
    static const char *const names[] = {"type",    "format", "base_version", "base_hash",
                                        "version", "hash",   "payload"};
    sl_mp_reader r;
    uint32_t n;
    unsigned seen = 0;
    memset(env, 0, sizeof(*env));
    sl_mp_reader_init(&r, bytes, len);
    if (sl_mp_read_map(&r, &n, err, errlen))
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        const char *k, *s;
        uint32_t klen, slen;
        int64_t iv;
        int bit = -1;
        if (sl_mp_read_str(&r, &k, &klen, err, errlen))
            return -1;
        for (int b = 0; b < 7 && bit < 0; b++)
            if (key_is(k, klen, names[b]))
                bit = b;
        if (bit >= 0 && (seen & (1u << bit))) {
            snprintf(err, errlen, "duplicate delta key \"%s\"", names[bit]);
            return -1;
        }
        int rc = 0;
        switch (bit) {
        case 0:
            rc = sl_mp_read_str(&r, &s, &slen, err, errlen);
            if (!rc && !key_is(s, slen, "delta")) {
                snprintf(err, errlen, "envelope type is not \"delta\"");
                rc = -1;
            }
            break;
        case 1:
            rc = sl_mp_read_int(&r, &iv, err, errlen);
            if (!rc && iv != SL_SNAPSHOT_FORMAT) {
                snprintf(err, errlen, "unsupported delta format %lld (this node reads %d)",
                         (long long)iv, SL_SNAPSHOT_FORMAT);
                rc = -1;
            }
            break;
        case 2:
            rc = sl_mp_read_int(&r, &env->base_version, err, errlen);
            break;
        case 3:
            rc = read_hash(&r, env->base_hash, "base_hash", err, errlen);
            break;
        case 4:
            rc = sl_mp_read_int(&r, &env->version, err, errlen);
            break;
        case 5:
            rc = read_hash(&r, env->hash, "hash", err, errlen);
            break;
        case 6:
            rc = sl_mp_read_bin(&r, &env->payload, &env->payload_len, err, errlen);
            break;
        default: /* a newer sender's extra key */
            rc = sl_mp_skip(&r, err, errlen);
        }
        if (rc)
            return -1;
        if (bit >= 0)
            seen |= 1u << bit;
    }
    for (int b = 0; b < (want_payload ? 7 : 6); b++) {
        if (!(seen & (1u << b))) {
            snprintf(err, errlen, "delta envelope has no \"%s\"", names[b]);
            return -1;
        }
    }
    if (env->base_version < 0 || env->version <= env->base_version) {
        snprintf(err, errlen, "delta versions do not grow (%lld -> %lld)",
                 (long long)env->base_version, (long long)env->version);
        return -1;
    }
    if (r.p != r.end) {
        snprintf(err, errlen, "%zu unexpected bytes after the delta envelope",
                 (size_t)(r.end - r.p));
        return -1;
    }
    return 0;
}

int sl_delta_peek(const unsigned char *bytes, size_t len, int64_t *base_version,
                  char base_hash[SL_SNAPSHOT_HASH_HEX], int64_t *version,
                  char hash[SL_SNAPSHOT_HASH_HEX])
{
    envelope env;
    char err[128];
    if (!bytes || parse_envelope(bytes, len, &env, 0, err, sizeof(err)))
        return -1;
    *base_version = env.base_version;
    *version = env.version;
    memcpy(base_hash, env.base_hash, SL_SNAPSHOT_HASH_HEX);
    memcpy(hash, env.hash, SL_SNAPSHOT_HASH_HEX);
    return 0;
}

/* ---- canonical delta ---- */

typedef struct {
    sl_delta_decoded *d;
    size_t cap_up, cap_del, max_rows;
    json_t *reasons;
    size_t nreasons;
    char first[512];
} reader;

static void reason(reader *rd, const char *entity, const char *id, json_t *fields, const char *text)
{
    if (rd->nreasons++ == 0)
        snprintf(rd->first, sizeof(rd->first), "%s %s: %s", entity, id[0] ? id : "(no id)", text);
    if (json_array_size(rd->reasons) < SL_SNAPSHOT_MAX_REASONS)
        json_array_append_new(rd->reasons, json_pack("{s:s, s:s?, s:o}", "entity", entity, "id",
                                                     id[0] ? id : NULL, "errors", fields));
    else
        json_decref(fields);
}

static int grow(void **p, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    void *q = realloc(*p, c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* Entity keys of one list (upsert or delete): each may appear once. */
#define MAX_LIST_ENTITIES 96
typedef struct {
    char names[MAX_LIST_ENTITIES][SL_MAX_ENTITY_NAME + 1];
    size_t n;
} entity_keys;

/* Records k; -1 with err when it repeats or there are too many. */
static int entity_key_add(entity_keys *ks, const char *k, uint32_t klen, char *err, size_t errlen)
{
    for (size_t i = 0; i < ks->n; i++)
        if (strlen(ks->names[i]) == klen && memcmp(ks->names[i], k, klen) == 0) {
            snprintf(err, errlen, "delta: entity %s listed twice", ks->names[i]);
            return -1;
        }
    if (ks->n == MAX_LIST_ENTITIES) {
        snprintf(err, errlen, "delta: more than %d entities", MAX_LIST_ENTITIES);
        return -1;
    }
    memcpy(ks->names[ks->n], k, klen);
    ks->names[ks->n++][klen] = '\0';
    return 0;
}

static int read_upserts(sl_mp_reader *r, reader *rd, char *err, size_t errlen)
{
    sl_delta_decoded *d = rd->d;
    uint32_t n;
    entity_keys keys = {.n = 0};
    if (sl_mp_read_map(r, &n, err, errlen))
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t klen, nrows;
        size_t ex;
        if (sl_mp_read_str(r, &k, &klen, err, errlen))
            return -1;
        if (klen > SL_MAX_ENTITY_NAME) {
            snprintf(err, errlen, "delta: entity name of %u bytes", klen);
            return -1;
        }
        if (entity_key_add(&keys, k, klen, err, errlen))
            return -1;
        const sl_entity *e = sl_snapshot_entity_named(k, klen, &ex);
        if (sl_mp_read_array(r, &nrows, err, errlen))
            return -1;
        if (nrows > rd->max_rows - d->nupserts - d->ndeletes) {
            snprintf(err, errlen, "delta: over the limit of %zu rows", rd->max_rows);
            return -1;
        }
        unsigned char *seen = e ? malloc(e->nfields ? e->nfields : 1) : NULL;
        if (e && !seen) {
            snprintf(err, errlen, "out of memory decoding a delta");
            return -1;
        }
        size_t first = d->nupserts;
        for (uint32_t j = 0; j < nrows; j++) {
            if (grow((void **)&d->upserts, &rd->cap_up, d->nupserts, sizeof(*d->upserts))) {
                free(seen);
                snprintf(err, errlen, "out of memory decoding a delta");
                return -1;
            }
            sl_delta_upsert *u = &d->upserts[d->nupserts];
            memset(u, 0, sizeof(*u));
            u->entity = e;
            memcpy(u->entity_name, k, klen);
            if (e) {
                u->row = sl_snapshot_read_row(r, e, seen, &u->digest, "upsert ", j, err, errlen);
                if (!u->row) {
                    free(seen);
                    return -1;
                }
                d->nupserts++;
                const char *id = json_string_value(json_object_get(u->row, "id"));
                if (id && strlen(id) <= SL_UUID_LEN)
                    memcpy(u->id, id, strlen(id) + 1);
                json_t *errs = NULL;
                int count = sl_schema_validate(e, u->row, SL_VALIDATE_CANONICAL, &errs);
                if (count) {
                    char *msg = sl_schema_violation_message(errs, count);
                    reason(rd, e->name, u->id, errs ? errs : json_object(),
                           msg ? msg : "schema violation");
                    free(msg);
                } else {
                    json_decref(errs);
                }
            } else {
                if (sl_snapshot_skim_row(r, u->id, &u->digest, err, errlen)) {
                    free(seen);
                    return -1;
                }
                d->nupserts++;
            }
            if (!u->id[0]) {
                reason(rd, u->entity_name, "", json_pack("{s:s}", "id", "required field missing"),
                       "id: required field missing");
            } else if (d->nupserts - 1 > first &&
                       strcmp(d->upserts[d->nupserts - 2].id, u->id) >= 0) {
                reason(rd, u->entity_name, u->id,
                       json_pack("{s:s}", "id", "out of order or listed twice in the delta"),
                       "id out of order or listed twice in the delta");
            }
        }
        free(seen);
    }
    return 0;
}

static int read_deletes(sl_mp_reader *r, reader *rd, char *err, size_t errlen)
{
    sl_delta_decoded *d = rd->d;
    uint32_t n;
    entity_keys keys = {.n = 0};
    if (sl_mp_read_map(r, &n, err, errlen))
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        const char *k, *v;
        uint32_t klen, nids, vlen;
        size_t ex;
        if (sl_mp_read_str(r, &k, &klen, err, errlen))
            return -1;
        if (klen > SL_MAX_ENTITY_NAME) {
            snprintf(err, errlen, "delta: entity name of %u bytes", klen);
            return -1;
        }
        if (entity_key_add(&keys, k, klen, err, errlen))
            return -1;
        const sl_entity *e = sl_snapshot_entity_named(k, klen, &ex);
        if (sl_mp_read_array(r, &nids, err, errlen))
            return -1;
        if (nids > rd->max_rows - d->nupserts - d->ndeletes) {
            snprintf(err, errlen, "delta: over the limit of %zu rows", rd->max_rows);
            return -1;
        }
        size_t first = d->ndeletes;
        for (uint32_t j = 0; j < nids; j++) {
            if (sl_mp_read_str(r, &v, &vlen, err, errlen))
                return -1;
            if (grow((void **)&d->deletes, &rd->cap_del, d->ndeletes, sizeof(*d->deletes))) {
                snprintf(err, errlen, "out of memory decoding a delta");
                return -1;
            }
            sl_delta_delete *del = &d->deletes[d->ndeletes++];
            memset(del, 0, sizeof(*del));
            del->entity = e;
            memcpy(del->entity_name, k, klen);
            if (vlen > SL_UUID_LEN) {
                reason(rd, del->entity_name, "", json_pack("{s:s}", "id", "not a uuid"),
                       "deleted id is not a uuid");
                continue;
            }
            memcpy(del->id, v, vlen);
            if (!sl_uuid_is_valid(del->id))
                reason(rd, del->entity_name, del->id, json_pack("{s:s}", "id", "not a uuid"),
                       "deleted id is not a uuid");
            else if (d->ndeletes - 1 > first &&
                     strcmp(d->deletes[d->ndeletes - 2].id, del->id) >= 0)
                reason(rd, del->entity_name, del->id,
                       json_pack("{s:s}", "id", "out of order or listed twice in the delta"),
                       "id out of order or listed twice in the delta");
        }
    }
    return 0;
}

/* An entity named twice in one list, or an id both upserted and deleted, is ambiguous: refused.
 * Each entity's upserts are one sorted run (checked while reading), so a deleted id is found
 * by binary search in its entity's run. */
static void check_overlap(reader *rd)
{
    sl_delta_decoded *d = rd->d;
    for (size_t i = 0; i < d->ndeletes; i++) {
        const sl_delta_delete *del = &d->deletes[i];
        size_t lo = 0;
        while (lo < d->nupserts && strcmp(d->upserts[lo].entity_name, del->entity_name) != 0)
            lo++;
        size_t hi = lo;
        while (hi < d->nupserts && strcmp(d->upserts[hi].entity_name, del->entity_name) == 0)
            hi++;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = strcmp(d->upserts[mid].id, del->id);
            if (c == 0) {
                reason(rd, del->entity_name, del->id,
                       json_pack("{s:s}", "id", "both upserted and deleted"),
                       "both upserted and deleted");
                break;
            }
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
}

void sl_delta_decoded_free(sl_delta_decoded *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nupserts; i++)
        json_decref(d->upserts[i].row);
    free(d->upserts);
    free(d->deletes);
    memset(d, 0, sizeof(*d));
}

int sl_delta_decode(const unsigned char *bytes, size_t len, const sl_snapshot_limits *limits,
                    sl_delta_decoded *d, json_t **errors, char *err, size_t errlen)
{
    sl_snapshot_limits lim = sl_snapshot_limits_or_defaults(limits);
    memset(d, 0, sizeof(*d));
    if (errors)
        *errors = NULL;
    if (!bytes || !len) {
        snprintf(err, errlen, "empty delta");
        return -1;
    }
    if (len > lim.max_compressed) {
        snprintf(err, errlen, "delta is %zu bytes, over the limit of %zu", len, lim.max_compressed);
        return -1;
    }
    envelope env;
    if (parse_envelope(bytes, len, &env, 1, err, errlen))
        return -1;
    unsigned char *canon = NULL;
    size_t clen = 0;
    if (sl_inflate_bounded(env.payload, env.payload_len, lim.max_canonical, &canon, &clen, err,
                           errlen))
        return -1;
    reader rd = {.d = d, .max_rows = lim.max_rows, .reasons = json_array()};
    d->base_version = env.base_version;
    d->version = env.version;
    memcpy(d->base_hash, env.base_hash, sizeof(d->base_hash));
    memcpy(d->hash, env.hash, sizeof(d->hash));

    sl_mp_reader r;
    uint32_t n;
    int have_up = 0, have_del = 0, rc = -1;
    sl_mp_reader_init(&r, canon, clen);
    if (!rd.reasons) {
        snprintf(err, errlen, "out of memory decoding a delta");
        goto out;
    }
    if (sl_mp_read_map(&r, &n, err, errlen))
        goto out;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t klen;
        if (sl_mp_read_str(&r, &k, &klen, err, errlen))
            goto out;
        if (key_is(k, klen, "upsert")) {
            if (have_up++) {
                snprintf(err, errlen, "duplicate delta key \"upsert\"");
                goto out;
            }
            if (read_upserts(&r, &rd, err, errlen))
                goto out;
        } else if (key_is(k, klen, "delete")) {
            if (have_del++) {
                snprintf(err, errlen, "duplicate delta key \"delete\"");
                goto out;
            }
            if (read_deletes(&r, &rd, err, errlen))
                goto out;
        } else if (sl_mp_skip(&r, err, errlen)) {
            goto out;
        }
    }
    if (r.p != r.end) {
        snprintf(err, errlen, "%zu unexpected bytes after the delta", (size_t)(r.end - r.p));
        goto out;
    }
    if (!have_up || !have_del) {
        snprintf(err, errlen, "delta has no \"%s\"", have_up ? "delete" : "upsert");
        goto out;
    }
    check_overlap(&rd);
    if (rd.nreasons) {
        if (rd.nreasons == 1)
            snprintf(err, errlen, "invalid delta: %s", rd.first);
        else
            snprintf(err, errlen, "invalid delta: %zu invalid entities, first: %s", rd.nreasons,
                     rd.first);
        goto out;
    }
    rc = 0;
out:
    free(canon);
    if (rc) {
        if (errors && json_array_size(rd.reasons)) {
            *errors = rd.reasons;
            rd.reasons = NULL;
        }
        sl_delta_decoded_free(d);
    }
    json_decref(rd.reasons);
    return rc;
}
