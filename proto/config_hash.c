/* Per-row digests and the config hash of snapshot format 2 (layout: proto/config_hash.h). */
#include "proto/config_hash.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/digest.h"
#include "proto/snapshot_rows.h"
#include "proto/sort.h"

/* Position of id in r (found) or where it would go (not found). */
static size_t lower_bound(const sl_row_digests *r, const char *id, int *found)
{
    size_t lo = 0, hi = r->n;
    *found = 0;
    /* Rows usually arrive in id order (snapshots, deltas): check the end first. */
    if (r->n && strcmp(r->ids[r->n - 1], id) < 0)
        return r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->ids[mid], id);
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

static int grow(sl_row_digests *r)
{
    size_t cap = r->cap ? r->cap * 2 : 64;
    void *ids = realloc(r->ids, cap * sizeof(*r->ids));
    if (!ids)
        return -1;
    r->ids = ids;
    void *d = realloc(r->digests, cap * sizeof(*r->digests));
    if (!d)
        return -1;
    r->digests = d;
    r->cap = cap;
    return 0;
}

int sl_row_digests_set(sl_row_digests *r, const char *id, const sl_digest *d)
{
    size_t len = strnlen(id, SL_UUID_LEN + 1);
    if (len > SL_UUID_LEN)
        return -1;
    int found;
    size_t at = lower_bound(r, id, &found);
    if (found) {
        r->digests[at] = *d;
        return 0;
    }
    if (r->n == r->cap && grow(r))
        return -1;
    memmove(r->ids + at + 1, r->ids + at, (r->n - at) * sizeof(*r->ids));
    memmove(r->digests + at + 1, r->digests + at, (r->n - at) * sizeof(*r->digests));
    memcpy(r->ids[at], id, len + 1);
    r->digests[at] = *d;
    r->n++;
    return 0;
}

int sl_row_digests_remove(sl_row_digests *r, const char *id)
{
    int found;
    size_t at = lower_bound(r, id, &found);
    if (!found)
        return -1;
    memmove(r->ids + at, r->ids + at + 1, (r->n - at - 1) * sizeof(*r->ids));
    memmove(r->digests + at, r->digests + at + 1, (r->n - at - 1) * sizeof(*r->digests));
    r->n--;
    return 0;
}

const sl_digest *sl_row_digests_get(const sl_row_digests *r, const char *id)
{
    int found;
    size_t at = lower_bound(r, id, &found);
    return found ? &r->digests[at] : NULL;
}

int sl_row_digests_copy(sl_row_digests *dst, const sl_row_digests *src)
{
    memset(dst, 0, sizeof(*dst));
    if (!src->n)
        return 0;
    dst->ids = malloc(src->n * sizeof(*dst->ids));
    dst->digests = malloc(src->n * sizeof(*dst->digests));
    if (!dst->ids || !dst->digests) {
        sl_row_digests_free(dst);
        return -1;
    }
    memcpy(dst->ids, src->ids, src->n * sizeof(*dst->ids));
    memcpy(dst->digests, src->digests, src->n * sizeof(*dst->digests));
    dst->n = dst->cap = src->n;
    return 0;
}

void sl_row_digests_free(sl_row_digests *r)
{
    free(r->ids);
    free(r->digests);
    memset(r, 0, sizeof(*r));
}

typedef struct {
    const char *name;
    const sl_row_digests *rows;
} named_rows;

static int named_cmp(const void *a, const void *b)
{
    return strcmp(((const named_rows *)a)->name, ((const named_rows *)b)->name);
}

void sl_config_hash_ext(const sl_row_digests *per_entity, const sl_extra_digests *extra,
                        size_t nextra, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    named_rows order[64 + SL_MAX_EXTRA_ENTITIES];
    size_t n = 0;
    for (size_t x = 0; x < sl_entity_count && n < 64; x++)
        if (per_entity[x].n)
            order[n++] = (named_rows){sl_entities[x]->name, &per_entity[x]};
    for (size_t x = 0; x < nextra && x < SL_MAX_EXTRA_ENTITIES; x++)
        if (extra[x].rows.n)
            order[n++] = (named_rows){extra[x].name, &extra[x].rows};
    sl_sort(order, n, sizeof(*order), named_cmp);

    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; ok && i < n; i++) {
        const sl_row_digests *r = order[i].rows;
        unsigned char count[8];
        for (int b = 0; b < 8; b++)
            count[b] = (unsigned char)((uint64_t)r->n >> (56 - 8 * b));
        ok = EVP_DigestUpdate(ctx, order[i].name, strlen(order[i].name) + 1) &&
             EVP_DigestUpdate(ctx, count, sizeof(count)) &&
             EVP_DigestUpdate(ctx, r->digests, r->n * sizeof(*r->digests));
    }
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (!ok) { /* out of memory in OpenSSL: a hash no config has, so nothing ever matches it */
        memset(hex, '0', 64);
        hex[64] = '\0';
        return;
    }
    for (unsigned i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}

void sl_config_hash(const sl_row_digests *per_entity, char hex[65])
{
    sl_config_hash_ext(per_entity, NULL, 0, hex);
}

int sl_row_digest(const sl_entity *e, const json_t *row, sl_digest *out, char *err, size_t errlen)
{
    unsigned char *bytes;
    size_t len;
    if (sl_snapshot_pack_row(e, row, &bytes, &len, err, errlen))
        return -1;
    int rc = sl_sha256(bytes, len, out->b);
    free(bytes);
    if (rc)
        snprintf(err, errlen, "out of memory hashing %s", e->name);
    return rc;
}

int sl_config_digests(const json_t *config, sl_row_digests *per_entity, char *err, size_t errlen)
{
    for (size_t x = 0; x < sl_entity_count; x++) {
        const sl_entity *e = sl_entities[x];
        const json_t *rows = json_object_get(config, e->name);
        for (size_t i = 0; i < json_array_size(rows); i++) {
            const json_t *row = json_array_get(rows, i);
            const char *id = json_string_value(json_object_get(row, "id"));
            sl_digest d;
            if (!id) {
                snprintf(err, errlen, "%s[%zu]: no id", e->name, i);
                goto fail;
            }
            if (sl_row_digest(e, row, &d, err, errlen))
                goto fail;
            if (sl_row_digests_set(&per_entity[x], id, &d)) {
                snprintf(err, errlen, "%s %s: id too long or out of memory", e->name, id);
                goto fail;
            }
        }
    }
    return 0;
fail:
    sl_config_digests_free(per_entity);
    return -1;
}

void sl_config_digests_free(sl_row_digests *per_entity)
{
    for (size_t x = 0; x < sl_entity_count; x++)
        sl_row_digests_free(&per_entity[x]);
}

int sl_digest_set_init(sl_digest_set *s)
{
    memset(s, 0, sizeof(*s));
    s->known = calloc(sl_entity_count, sizeof(*s->known));
    s->extra = calloc(SL_MAX_EXTRA_ENTITIES, sizeof(*s->extra));
    if (!s->known || !s->extra) {
        sl_digest_set_free(s);
        return -1;
    }
    return 0;
}

void sl_digest_set_free(sl_digest_set *s)
{
    if (s->known) {
        sl_config_digests_free(s->known);
        free(s->known);
    }
    for (size_t i = 0; s->extra && i < s->nextra; i++)
        sl_row_digests_free(&s->extra[i].rows);
    free(s->extra);
    memset(s, 0, sizeof(*s));
}

int sl_digest_set_copy(sl_digest_set *dst, const sl_digest_set *src)
{
    if (sl_digest_set_init(dst))
        return -1;
    for (size_t x = 0; x < sl_entity_count; x++)
        if (sl_row_digests_copy(&dst->known[x], &src->known[x]))
            goto fail;
    for (size_t i = 0; i < src->nextra; i++) {
        memcpy(dst->extra[i].name, src->extra[i].name, sizeof(dst->extra[i].name));
        dst->nextra = i + 1;
        if (sl_row_digests_copy(&dst->extra[i].rows, &src->extra[i].rows))
            goto fail;
    }
    return 0;
fail:
    sl_digest_set_free(dst);
    return -1;
}

sl_row_digests *sl_digest_set_extra(sl_digest_set *s, const char *name, size_t len)
{
    if (len > SL_MAX_ENTITY_NAME)
        return NULL;
    for (size_t i = 0; i < s->nextra; i++)
        if (strlen(s->extra[i].name) == len && memcmp(s->extra[i].name, name, len) == 0)
            return &s->extra[i].rows;
    if (s->nextra == SL_MAX_EXTRA_ENTITIES)
        return NULL;
    sl_extra_digests *x = &s->extra[s->nextra++];
    memcpy(x->name, name, len);
    x->name[len] = '\0';
    return &x->rows;
}

void sl_digest_set_hash(const sl_digest_set *s, char hex[65])
{
    sl_config_hash_ext(s->known, s->extra, s->nextra, hex);
}
