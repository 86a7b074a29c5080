/* Snapshot codec: canonical msgpack (deterministic), sha256, zlib, and a strict bounded
 * decoder that validates with the schema tables. Layout and rules: proto/snapshot.h. */
#include "proto/sort.h"
#include "proto/snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "proto/compress.h"
#include "proto/digest.h"
#include "proto/msgpack_json.h"
#include "proto/schema.h"
#include "proto/snapshot_check.h"
#include "proto/snapshot_read_rows.h"
#include "proto/snapshot_rows.h"

typedef struct {
    const char *id;
    const json_t *row;
} sl_row_ref;

static int row_cmp(const void *a, const void *b)
{
    return strcmp(((const sl_row_ref *)a)->id, ((const sl_row_ref *)b)->id);
}

/* Packs one entity's rows in id order; each row's digest (the sha256 of the bytes it takes in
 * the buffer) goes to digests. */
static int pack_entity_rows(msgpack_packer *pk, sl_sbuf *buf, const sl_entity *e,
                            const json_t *rows, sl_row_digests *digests, char *err, size_t errlen)
{
    size_t n = json_array_size(rows);
    sl_row_ref *refs = malloc((n ? n : 1) * sizeof(*refs));
    const json_t **vals = malloc((e->nfields ? e->nfields : 1) * sizeof(*vals));
    if (!refs || !vals) {
        free(refs);
        free(vals);
        snprintf(err, errlen, "out of memory encoding %s", e->name);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const json_t *row = json_array_get(rows, i);
        const json_t *id = json_object_get(row, "id");
        if (!json_is_object(row) || !json_is_string(id)) {
            snprintf(err, errlen, "%s[%zu]: not an object with a string id", e->name, i);
            rc = -1;
        }
        refs[i].id = json_string_value(id);
        refs[i].row = row;
    }
    if (rc == 0)
        sl_sort(refs, n, sizeof(*refs), row_cmp);
    if (rc == 0)
        msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i > 0 && strcmp(refs[i - 1].id, refs[i].id) == 0) {
            snprintf(err, errlen, "%s: duplicate id %s", e->name, refs[i].id);
            rc = -1;
            break;
        }
        size_t start = buf->sb.size;
        rc = sl_snapshot_pack_row_into(pk, e, refs[i].row, refs[i].id, vals, err, errlen);
        if (rc == 0 && !buf->oom) {
            sl_digest d;
            if (sl_sha256(buf->sb.data + start, buf->sb.size - start, d.b) ||
                sl_row_digests_set(digests, refs[i].id, &d)) {
                snprintf(err, errlen, "%s %s: id too long or out of memory", e->name, refs[i].id);
                rc = -1;
            }
        }
    }
    free(vals);
    free(refs);
    return rc;
}

/* The canonical bytes of config at version into b, every row's digest into per_entity. */
static int encode_canonical(const json_t *config, int64_t version, sl_sbuf *b,
                            sl_row_digests *per_entity, char *err, size_t errlen)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, sl_sbuf_write);
    msgpack_pack_map(&pk, 2 + sl_entity_count);
    sl_mp_pack_cstr(&pk, "format");
    msgpack_pack_int64(&pk, SL_SNAPSHOT_FORMAT);
    sl_mp_pack_cstr(&pk, "version");
    msgpack_pack_int64(&pk, version);
    for (size_t i = 0; i < sl_entity_count; i++) {
        const sl_entity *e = sl_entities[i];
        const json_t *rows = json_object_get(config, e->name);
        if (rows && !json_is_null(rows) && !json_is_array(rows)) {
            snprintf(err, errlen, "%s: expected an array", e->name);
            return -1;
        }
        sl_mp_pack_cstr(&pk, e->name);
        if (pack_entity_rows(&pk, b, e, rows, &per_entity[i], err, errlen))
            return -1;
    }
    if (b->oom) {
        snprintf(err, errlen, "out of memory encoding the snapshot");
        return -1;
    }
    return 0;
}

int sl_snapshot_encode_digests(const json_t *config, int64_t version, sl_snapshot *s,
                               sl_row_digests *per_entity, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    if (!json_is_object(config)) {
        snprintf(err, errlen, "config must be an object");
        return -1;
    }
    if (version < 0) {
        snprintf(err, errlen, "version must not be negative");
        return -1;
    }
    sl_row_digests *digests = calloc(sl_entity_count, sizeof(*digests));
    sl_sbuf canon = {0}, env = {0};
    msgpack_sbuffer_init(&canon.sb);
    msgpack_sbuffer_init(&env.sb);
    unsigned char *z = NULL;
    size_t zlen = 0;
    int rc = -1;

    if (!digests) {
        snprintf(err, errlen, "out of memory encoding the snapshot");
        goto out;
    }
    if (encode_canonical(config, version, &canon, digests, err, errlen))
        goto out;
    sl_config_hash(digests, s->hash);
    if (sl_deflate((const unsigned char *)canon.sb.data, canon.sb.size, &z, &zlen, err, errlen))
        goto out;
    if (zlen > UINT32_MAX) { /* msgpack bin length is 32-bit */
        snprintf(err, errlen, "compressed snapshot of %zu bytes is too large", zlen);
        goto out;
    }

    msgpack_packer pk;
    msgpack_packer_init(&pk, &env, sl_sbuf_write);
    msgpack_pack_map(&pk, 5);
    sl_mp_pack_cstr(&pk, "type");
    sl_mp_pack_cstr(&pk, "snapshot");
    sl_mp_pack_cstr(&pk, "format");
    msgpack_pack_int64(&pk, SL_SNAPSHOT_FORMAT);
    sl_mp_pack_cstr(&pk, "version");
    msgpack_pack_int64(&pk, version);
    sl_mp_pack_cstr(&pk, "hash");
    sl_mp_pack_strn(&pk, s->hash, 64);
    sl_mp_pack_cstr(&pk, "payload");
    msgpack_pack_bin(&pk, zlen);
    msgpack_pack_bin_body(&pk, z, zlen);
    if (env.oom) {
        snprintf(err, errlen, "out of memory encoding the snapshot");
        goto out;
    }
    s->version = version;
    s->canonical_len = canon.sb.size;
    s->len = env.sb.size;
    s->bytes = (unsigned char *)msgpack_sbuffer_release(&env.sb);
    rc = 0;
out:
    free(z);
    msgpack_sbuffer_destroy(&canon.sb);
    msgpack_sbuffer_destroy(&env.sb);
    if (digests) {
        if (rc == 0 && per_entity)
            memcpy(per_entity, digests, sl_entity_count * sizeof(*digests));
        else
            sl_config_digests_free(digests);
        free(digests);
    }
    if (rc)
        memset(s, 0, sizeof(*s));
    return rc;
}

int sl_snapshot_encode(const json_t *config, int64_t version, sl_snapshot *s, char *err,
                       size_t errlen)
{
    return sl_snapshot_encode_digests(config, version, s, NULL, err, errlen);
}

void sl_snapshot_free(sl_snapshot *s)
{
    if (!s)
        return;
    free(s->bytes);
    memset(s, 0, sizeof(*s));
}

/* ---- envelope ---- */

typedef struct {
    int64_t version;
    char hash[SL_SNAPSHOT_HASH_HEX];
    const unsigned char *payload;
    uint32_t payload_len;
} sl_envelope;

static int key_is(const char *k, uint32_t klen, const char *lit)
{
    return strlen(lit) == klen && memcmp(k, lit, klen) == 0;
}

/* Parses the envelope map; want_payload=0 skips checking the payload (peek). */
static int parse_envelope(const unsigned char *bytes, size_t len, sl_envelope *env,
                          int want_payload, char *err, size_t errlen)
{
    sl_mp_reader r;
    uint32_t n;
    unsigned seen = 0; /* bits: type, format, version, hash, payload */
    memset(env, 0, sizeof(*env));
    sl_mp_reader_init(&r, bytes, len);
    if (sl_mp_read_map(&r, &n, err, errlen)) {
        char inner[200];
        snprintf(inner, sizeof(inner), "%s", err);
        snprintf(err, errlen, "not a snapshot envelope: %s", inner);
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        const char *k, *s;
        uint32_t klen, slen;
        int64_t iv;
        unsigned bit = 0;
        if (sl_mp_read_str(&r, &k, &klen, err, errlen))
            return -1;
        if (key_is(k, klen, "type")) {
            bit = 1;
            if (sl_mp_read_str(&r, &s, &slen, err, errlen))
                return -1;
            if (!key_is(s, slen, "snapshot")) {
                char shown[33];
                snprintf(err, errlen, "envelope type is \"%s\", expected \"snapshot\"",
                         sl_mp_printable(shown, sizeof(shown), s, slen));
                return -1;
            }
        } else if (key_is(k, klen, "format")) {
            bit = 2;
            if (sl_mp_read_int(&r, &iv, err, errlen))
                return -1;
            if (iv != SL_SNAPSHOT_FORMAT) {
                snprintf(err, errlen, "unsupported snapshot format %lld (this node reads %d)",
                         (long long)iv, SL_SNAPSHOT_FORMAT);
                return -1;
            }
        } else if (key_is(k, klen, "version")) {
            bit = 4;
            if (sl_mp_read_int(&r, &env->version, err, errlen))
                return -1;
            if (env->version < 0) {
                snprintf(err, errlen, "negative snapshot version %lld", (long long)env->version);
                return -1;
            }
        } else if (key_is(k, klen, "hash")) {
            bit = 8;
            if (sl_mp_read_str(&r, &s, &slen, err, errlen))
                return -1;
            if (!sl_is_sha256_hex(s, slen)) {
                snprintf(err, errlen, "envelope hash is not 64 lower-case hex digits");
                return -1;
            }
            memcpy(env->hash, s, 64);
            env->hash[64] = '\0';
        } else if (key_is(k, klen, "payload")) {
            bit = 16;
            if (sl_mp_read_bin(&r, &env->payload, &env->payload_len, err, errlen))
                return -1;
        } else if (sl_mp_skip(&r, err, errlen)) { /* a newer sender's extra key */
            return -1;
        }
        if (seen & bit) {
            char shown[33];
            snprintf(err, errlen, "duplicate envelope key \"%s\"",
                     sl_mp_printable(shown, sizeof(shown), k, klen));
            return -1;
        }
        seen |= bit;
    }
    static const char *const names[] = {"type", "format", "version", "hash", "payload"};
    for (int b = 0; b < (want_payload ? 5 : 4); b++) {
        if (!(seen & (1u << b))) {
            snprintf(err, errlen, "envelope has no \"%s\"", names[b]);
            return -1;
        }
    }
    if (r.p != r.end) {
        snprintf(err, errlen, "%zu unexpected bytes after the envelope", (size_t)(r.end - r.p));
        return -1;
    }
    return 0;
}

int sl_snapshot_peek(const unsigned char *bytes, size_t len, int64_t *version,
                     char hash[SL_SNAPSHOT_HASH_HEX])
{
    sl_envelope env;
    char err[128];
    if (!bytes || parse_envelope(bytes, len, &env, 0, err, sizeof(err)))
        return -1;
    *version = env.version;
    memcpy(hash, env.hash, SL_SNAPSHOT_HASH_HEX);
    return 0;
}

/* ---- canonical decoding ---- */

/* Rows of an entity this node does not know: only their ids and digests are kept (for the
 * hash); each row must still be a map. */
static int skim_rows(sl_mp_reader *r, const sl_mp_more *more, const char *name, uint32_t nlen,
                     size_t max_rows, sl_digest_set *set, char *err, size_t errlen)
{
    uint32_t n;
    for (const unsigned char *at = r->p; sl_mp_read_array(r, &n, err, errlen); r->p = at)
        if (!sl_mp_more_bytes(more, r))
            return -1;
    if (n > max_rows) {
        snprintf(err, errlen, "an entity unknown here has %u rows, over the limit of %zu", n,
                 max_rows);
        return -1;
    }
    sl_row_digests *list = n ? sl_digest_set_extra(set, name, nlen) : NULL;
    if (n && !list) {
        snprintf(err, errlen, "too many entities unknown to this node");
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        char id[SL_UUID_LEN + 1];
        sl_digest d;
        for (const unsigned char *at = r->p; sl_snapshot_skim_row(r, id, &d, err, errlen);
             r->p = at)
            if (!sl_mp_more_bytes(more, r))
                return -1;
        if (id[0] && sl_row_digests_set(list, id, &d)) {
            snprintf(err, errlen, "out of memory decoding the snapshot");
            return -1;
        }
    }
    return 0;
}

/* Frees the verdicts of every entity of cfg (NULL entries ignored) and resets them. */
static void all_verdicts_free(sl_row_verdict **verdicts, const json_t *cfg)
{
    for (size_t x = 0; x < sl_entity_count; x++) {
        sl_row_verdicts_free(verdicts[x],
                             json_array_size(json_object_get(cfg, sl_entities[x]->name)));
        verdicts[x] = NULL;
    }
}

/* Reads with call, again from the same place each time more bytes come in (sl_mp_more). */
#define READ_MORE(r, more, call)                                                                   \
    for (const unsigned char *at_ = (r)->p; (call) != 0; (r)->p = at_)                             \
        if (!sl_mp_more_bytes(more, r))                                                            \
            goto fail;

/* Reads the canonical map into *config (every known entity present, as an array); rows the
 * served config has unchanged are taken over (served may be NULL). */
static int read_canonical(const unsigned char *bytes, size_t len, const sl_mp_more *more,
                          sl_snapshot_served *served, int64_t env_version, size_t max_rows,
                          json_t **config, sl_digest_set *set, sl_row_verdict **verdicts, char *err,
                          size_t errlen)
{
    sl_mp_reader r;
    uint32_t n;
    int have_format = 0, have_version = 0;
    json_t *cfg = json_object();
    sl_mp_reader_init(&r, bytes, len);
    if (!cfg) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    READ_MORE(&r, more, sl_mp_read_map(&r, &n, err, errlen));
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t klen;
        int64_t iv;
        READ_MORE(&r, more, sl_mp_read_str(&r, &k, &klen, err, errlen));
        if (key_is(k, klen, "format")) {
            if (have_format++) {
                snprintf(err, errlen, "duplicate payload key \"format\"");
                goto fail;
            }
            READ_MORE(&r, more, sl_mp_read_int(&r, &iv, err, errlen));
            if (iv != SL_SNAPSHOT_FORMAT) {
                snprintf(err, errlen, "unsupported canonical format %lld", (long long)iv);
                goto fail;
            }
            continue;
        }
        if (key_is(k, klen, "version")) {
            if (have_version++) {
                snprintf(err, errlen, "duplicate payload key \"version\"");
                goto fail;
            }
            READ_MORE(&r, more, sl_mp_read_int(&r, &iv, err, errlen));
            if (iv != env_version) {
                snprintf(err, errlen, "payload version %lld differs from envelope version %lld",
                         (long long)iv, (long long)env_version);
                goto fail;
            }
            continue;
        }
        size_t ex = 0;
        const sl_entity *e = sl_snapshot_entity_named(k, klen, &ex);
        if (!e) { /* an entity a newer control plane knows and this node does not */
            for (size_t x = 0; x < set->nextra; x++)
                if (key_is(k, klen, set->extra[x].name)) {
                    snprintf(err, errlen, "duplicate entity key %s", set->extra[x].name);
                    goto fail;
                }
            if (skim_rows(&r, more, k, klen, max_rows, set, err, errlen))
                goto fail;
            continue;
        }
        if (json_object_get(cfg, e->name)) {
            snprintf(err, errlen, "duplicate entity key %s", e->name);
            goto fail;
        }
        sl_rows_served had = {
            .rows = served ? json_object_get(served->config, e->name) : NULL,
            .digests = served ? &served->digests->known[ex] : NULL,
        };
        json_t *rows = sl_snapshot_read_rows(&r, more, served ? &had : NULL, e, max_rows,
                                             &set->known[ex], &verdicts[ex], err, errlen);
        if (served)
            served->taken += had.taken;
        if (!rows)
            goto fail;
        json_object_set_new_nocheck(cfg, e->name, rows);
    }
    while (sl_mp_more_bytes(more, &r))
        ; /* up to the final end */
    if (r.p != r.end) {
        snprintf(err, errlen, "%zu unexpected bytes after the payload", (size_t)(r.end - r.p));
        goto fail;
    }
    if (!have_format || !have_version) {
        snprintf(err, errlen, "payload has no \"%s\"", have_format ? "version" : "format");
        goto fail;
    }
    for (size_t x = 0; x < sl_entity_count; x++)
        if (!json_object_get(cfg, sl_entities[x]->name))
            json_object_set_new_nocheck(cfg, sl_entities[x]->name, json_array());
    *config = cfg;
    return 0;
fail:
    all_verdicts_free(verdicts, cfg);
    json_decref(cfg);
    return -1;
}

static int stream_more(void *arg, sl_mp_reader *r)
{
    size_t have = (size_t)(r->end - r->base);
    int done;
    size_t n = sl_inflate_wait(arg, have + 1, &done);
    r->end = r->base + n;
    return n > have;
}

/* Inflates the payload and reads it. A large payload is read while the rest of it is still
 * being inflated on a thread of its own (the inflate is a tenth of a large decode, and serial).
 * A damaged compressed stream is reported as such, whatever the read made of its bytes. */
static int inflate_and_read(const sl_envelope *env, const sl_snapshot_limits *lim,
                            sl_snapshot_served *served, json_t **cfg, sl_digest_set *set,
                            sl_row_verdict **verdicts, char *err, size_t errlen)
{
    sl_inflate_stream *st =
        env->payload_len >= lim->stream_min
            ? sl_inflate_start(env->payload, env->payload_len, lim->max_canonical)
            : NULL;
    if (!st) {
        unsigned char *canon = NULL;
        size_t clen = 0;
        if (sl_inflate_bounded(env->payload, env->payload_len, lim->max_canonical, &canon, &clen,
                               err, errlen))
            return -1;
        int rc = read_canonical(canon, clen, NULL, served, env->version, lim->max_rows, cfg, set,
                                verdicts, err, errlen);
        free(canon);
        return rc;
    }
    sl_mp_more more = {stream_more, st};
    int done;
    size_t have = sl_inflate_wait(st, 1, &done);
    int rc = read_canonical(sl_inflate_stream_bytes(st), have, &more, served, env->version,
                            lim->max_rows, cfg, set, verdicts, err, errlen);
    size_t clen;
    char zerr[256];
    if (sl_inflate_finish(st, &clen, zerr, sizeof(zerr))) {
        if (rc == 0) {
            all_verdicts_free(verdicts, *cfg);
            json_decref(*cfg);
            *cfg = NULL;
        }
        snprintf(err, errlen, "%s", zerr);
        rc = -1;
    }
    sl_inflate_stream_free(st);
    return rc;
}

sl_snapshot_limits sl_snapshot_limits_or_defaults(const sl_snapshot_limits *limits)
{
    sl_snapshot_limits lim = {0};
    if (limits)
        lim = *limits;
    if (!lim.max_compressed)
        lim.max_compressed = SL_SNAPSHOT_MAX_COMPRESSED;
    if (!lim.max_canonical)
        lim.max_canonical = SL_SNAPSHOT_MAX_CANONICAL;
    if (!lim.max_rows)
        lim.max_rows = SL_SNAPSHOT_MAX_ROWS;
    if (!lim.stream_min)
        lim.stream_min = SL_SNAPSHOT_STREAM_MIN;
    return lim;
}

int sl_snapshot_decode_set(const unsigned char *bytes, size_t len, const sl_snapshot_limits *limits,
                           json_t **config, int64_t *version, char hash[SL_SNAPSHOT_HASH_HEX],
                           sl_digest_set *digests, json_t **errors, char *err, size_t errlen)
{
    return sl_snapshot_decode_served(bytes, len, limits, NULL, config, version, hash, digests,
                                     errors, err, errlen);
}

int sl_snapshot_decode_served(const unsigned char *bytes, size_t len,
                              const sl_snapshot_limits *limits, sl_snapshot_served *served,
                              json_t **config, int64_t *version, char hash[SL_SNAPSHOT_HASH_HEX],
                              sl_digest_set *digests, json_t **errors, char *err, size_t errlen)
{
    sl_snapshot_limits lim = sl_snapshot_limits_or_defaults(limits);
    *config = NULL;
    if (errors)
        *errors = NULL;

    if (!bytes || len == 0) {
        snprintf(err, errlen, "empty snapshot");
        return -1;
    }
    if (len > lim.max_compressed) {
        snprintf(err, errlen, "snapshot is %zu bytes, over the limit of %zu", len,
                 lim.max_compressed);
        return -1;
    }
    sl_envelope env;
    if (parse_envelope(bytes, len, &env, 1, err, errlen))
        return -1;

    sl_digest_set set;
    if (sl_digest_set_init(&set)) {
        snprintf(err, errlen, "out of memory decoding the snapshot");
        return -1;
    }
    json_t *cfg = NULL;
    /* rows are validated as they are read: the checks take the verdicts */
    sl_row_verdict *verdicts[64] = {0};
    if (sl_entity_count > sizeof(verdicts) / sizeof(*verdicts)) {
        sl_digest_set_free(&set);
        snprintf(err, errlen, "too many entities in this node's schema");
        return -1;
    }
    if (served)
        served->taken = 0;
    if (inflate_and_read(&env, &lim, served, &cfg, &set, verdicts, err, errlen)) {
        sl_digest_set_free(&set);
        return -1;
    }
    /* The hash is checked before validation: damage is reported as damage, not as the
     * schema violations it happens to look like. */
    char got[SL_SNAPSHOT_HASH_HEX];
    sl_digest_set_hash(&set, got);
    if (strcmp(got, env.hash) != 0) {
        all_verdicts_free(verdicts, cfg);
        sl_digest_set_free(&set);
        json_decref(cfg);
        snprintf(err, errlen, "hash mismatch: envelope says %s, payload hashes to %s", env.hash,
                 got);
        return -1;
    }

    json_t *reasons = NULL;
    char first[512];
    long bad = sl_snapshot_check(cfg, verdicts, &reasons, first, sizeof(first));
    for (size_t x = 0; x < sl_entity_count; x++) /* their errs were taken */
        free(verdicts[x]);
    if (bad) {
        if (bad < 0)
            snprintf(err, errlen, "out of memory validating the snapshot");
        else if (bad == 1)
            snprintf(err, errlen, "invalid snapshot: %s", first);
        else
            snprintf(err, errlen, "invalid snapshot: %ld invalid entities, first: %s", bad, first);
        sl_digest_set_free(&set);
        json_decref(cfg);
        if (errors && json_array_size(reasons))
            *errors = reasons;
        else
            json_decref(reasons);
        return -1;
    }
    json_decref(reasons);
    if (digests)
        *digests = set;
    else
        sl_digest_set_free(&set);
    *config = cfg;
    *version = env.version;
    memcpy(hash, env.hash, SL_SNAPSHOT_HASH_HEX);
    return 0;
}

int sl_snapshot_decode_limits(const unsigned char *bytes, size_t len,
                              const sl_snapshot_limits *limits, json_t **config, int64_t *version,
                              char hash[SL_SNAPSHOT_HASH_HEX], json_t **errors, char *err,
                              size_t errlen)
{
    return sl_snapshot_decode_set(bytes, len, limits, config, version, hash, NULL, errors, err,
                                  errlen);
}

int sl_snapshot_decode(const unsigned char *bytes, size_t len, size_t max_compressed,
                       json_t **config, int64_t *version, char hash[SL_SNAPSHOT_HASH_HEX],
                       json_t **errors, char *err, size_t errlen)
{
    sl_snapshot_limits lim = {.max_compressed = max_compressed};
    return sl_snapshot_decode_limits(bytes, len, &lim, config, version, hash, errors, err, errlen);
}

int sl_snapshot_payload_hash(const unsigned char *canon, size_t len,
                             char hash[SL_SNAPSHOT_HASH_HEX])
{
    sl_digest_set set;
    sl_mp_reader r;
    uint32_t n;
    char err[256];
    int rc = -1;
    if (sl_digest_set_init(&set))
        return -1;
    sl_mp_reader_init(&r, canon, len);
    if (sl_mp_read_map(&r, &n, err, sizeof(err)))
        goto out;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t klen;
        if (sl_mp_read_str(&r, &k, &klen, err, sizeof(err)))
            goto out;
        if (sl_mp_peek(&r) != SL_MP_ARRAY) { /* format, version */
            if (sl_mp_skip(&r, err, sizeof(err)))
                goto out;
            continue;
        }
        if (skim_rows(&r, NULL, k, klen, SL_SNAPSHOT_MAX_ROWS, &set, err, sizeof(err)))
            goto out;
    }
    sl_digest_set_hash(&set, hash);
    rc = 0;
out:
    sl_digest_set_free(&set);
    return rc;
}
