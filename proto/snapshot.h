#ifndef SL_SNAPSHOT_H
#define SL_SNAPSHOT_H

/* A config snapshot: the whole config at one version, as the control plane sends it and the
 * data plane caches it on disk (the same bytes in both places).
 *
 * Wire/disk form ("envelope"), a msgpack map:
 *   {"type": "snapshot", "format": 1, "version": <int>, "hash": "<64 hex>",
 *    "payload": <bin: zlib-compressed canonical bytes>}
 * Canonical bytes, a msgpack map:
 *   {"format": 2, "version": <int>, "<entity name>": [<entity map>...], ...}
 *   entity names in sl_entities order, rows sorted by id, each entity's keys in schema field
 *   order, absent/null fields encoded as nil, FOREIGN fields as {"id": "<uuid>"}
 *   (proto/snapshot_rows.h). "hash" is the config hash of proto/config_hash.h: built from the
 *   sha256 of each row's bytes, so a data plane can keep it current when it applies a delta
 *   (proto/snapshot_delta.h) instead of a whole snapshot. Format 1 hashed the whole payload.
 * The decoder is strict and bounded (sizes, types, counts) but ignores unknown fields and
 * unknown entity names, so a newer control plane can talk to an older data plane. */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/config_hash.h"

#define SL_SNAPSHOT_FORMAT 2
#define SL_SNAPSHOT_MAX_COMPRESSED (64u * 1024 * 1024) /* default cluster_max_payload */
#define SL_SNAPSHOT_MAX_CANONICAL (512u * 1024 * 1024) /* decompressed bound */
#define SL_SNAPSHOT_HASH_HEX 65                        /* 64 hex + NUL */

typedef struct {
    int64_t version;
    char hash[SL_SNAPSHOT_HASH_HEX];
    unsigned char *bytes; /* the envelope (malloc'd): send it, or write it to the cache */
    size_t len;
    size_t canonical_len; /* size before compression, for reporting */
} sl_snapshot;

/* Encodes a config object shaped like cp_store_read_config's output ({"services": [...], ...})
 * at version. Returns 0, or -1 with err. s->bytes is owned by s (sl_snapshot_free). */
int sl_snapshot_encode(const json_t *config, int64_t version, sl_snapshot *s, char *err,
                       size_t errlen);

/* Decodes an envelope: checks sizes (max_compressed: 0 means the default), decompresses,
 * verifies the hash, decodes and validates every entity with the schema tables, and checks
 * that every foreign reference resolves. On success *config is a new object shaped like the
 * encoder's input (a row's null fields are left out: the bytes cannot tell them from absent
 * ones, and leaving them out saves memory), *version and hash (64 hex + NUL) are set. A large
 * payload is read while it is still being inflated, and its rows' JSON comes from the JSON
 * arena (proto/json_arena.h) when the process installed it. On failure returns -1, err says
 * what is wrong, and *errors (when not NULL) may get an array of per-entity reasons
 * [{"entity": "routes", "id": "...", "errors": {...fields...}}] (caller owns). */
int sl_snapshot_decode(const unsigned char *bytes, size_t len, size_t max_compressed,
                       json_t **config, int64_t *version, char hash[SL_SNAPSHOT_HASH_HEX],
                       json_t **errors, char *err, size_t errlen);

/* Bounds the decoder enforces; a field left 0 takes the default in brackets. The data plane
 * uses the defaults; tests use small ones to show each bound holds. */
#define SL_SNAPSHOT_MAX_ROWS 4000000u /* rows of one entity */
#define SL_SNAPSHOT_MAX_REASONS 100u  /* per-entity reasons returned in *errors */
/* below this, an inflate is too short to be worth a thread */
#define SL_SNAPSHOT_STREAM_MIN (256u * 1024)
typedef struct {
    size_t max_compressed; /* envelope bytes [SL_SNAPSHOT_MAX_COMPRESSED] */
    size_t max_canonical;  /* decompressed bytes [SL_SNAPSHOT_MAX_CANONICAL] */
    size_t max_rows;       /* rows of one entity [SL_SNAPSHOT_MAX_ROWS] */
    size_t stream_min;     /* payload bytes from which the payload is read while it is still
                              being inflated (on a thread of its own) [SL_SNAPSHOT_STREAM_MIN] */
} sl_snapshot_limits;

/* limits (NULL: none) with every field left 0 set to its default. */
sl_snapshot_limits sl_snapshot_limits_or_defaults(const sl_snapshot_limits *limits);

/* sl_snapshot_decode with explicit limits (NULL: all defaults). */
int sl_snapshot_decode_limits(const unsigned char *bytes, size_t len,
                              const sl_snapshot_limits *limits, json_t **config, int64_t *version,
                              char hash[SL_SNAPSHOT_HASH_HEX], json_t **errors, char *err,
                              size_t errlen);

/* sl_snapshot_decode_limits that also hands back, in *digests (initialised here; caller frees
 * with sl_digest_set_free), every row digest the hash was checked with. */
int sl_snapshot_decode_set(const unsigned char *bytes, size_t len, const sl_snapshot_limits *limits,
                           json_t **config, int64_t *version, char hash[SL_SNAPSHOT_HASH_HEX],
                           sl_digest_set *digests, json_t **errors, char *err, size_t errlen);

/* The config a data plane serves: rows of each entity sorted by id (as decoding and deltas
 * leave them) and the digests they were checked with. */
typedef struct {
    const json_t *config;
    const sl_digest_set *digests;
    size_t taken; /* out: how many rows were taken over */
} sl_snapshot_served;

/* sl_snapshot_decode_set taking over from served (NULL: nothing) every row whose bytes hash to
 * the digest of the served row with the same id: that row is shared, not decoded or validated
 * again (the same bytes give the same row), so a whole snapshot that changes little costs
 * little more than hashing it, and a generation built from it can take over the served one's
 * routes (dp_generation_build_next). */
int sl_snapshot_decode_served(const unsigned char *bytes, size_t len,
                              const sl_snapshot_limits *limits, sl_snapshot_served *served,
                              json_t **config, int64_t *version, char hash[SL_SNAPSHOT_HASH_HEX],
                              sl_digest_set *digests, json_t **errors, char *err, size_t errlen);

/* sl_snapshot_encode that also hands back every row's digest: per_entity is an array of
 * sl_entity_count lists, zeroed by the caller (free with sl_config_digests_free). */
int sl_snapshot_encode_digests(const json_t *config, int64_t version, sl_snapshot *s,
                               sl_row_digests *per_entity, char *err, size_t errlen);

/* The config hash of canonical payload bytes, computed from their rows as they are (no schema,
 * no validation): for tools and tests that build payloads by hand. 0, or -1 when canon is not
 * a map of entity arrays of row maps. */
int sl_snapshot_payload_hash(const unsigned char *canon, size_t len,
                             char hash[SL_SNAPSHOT_HASH_HEX]);

/* Reads only version and hash from an envelope, without decompressing (cheap). */
int sl_snapshot_peek(const unsigned char *bytes, size_t len, int64_t *version,
                     char hash[SL_SNAPSHOT_HASH_HEX]);

void sl_snapshot_free(sl_snapshot *s);

#endif
