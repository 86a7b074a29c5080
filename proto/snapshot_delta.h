#ifndef SL_SNAPSHOT_DELTA_H
#define SL_SNAPSHOT_DELTA_H

/* A config delta: the changes that turn the config at base_version into the config at version,
 * so a data plane already at base_version receives and applies only what changed.
 *
 * Wire form ("delta envelope"), a msgpack map:
 *   {"type": "delta", "format": 2, "base_version": <int>, "base_hash": "<64 hex>",
 *    "version": <int>, "hash": "<64 hex>", "payload": <bin: zlib-compressed canonical delta>}
 * Canonical delta, a msgpack map:
 *   {"upsert": {"<entity name>": [<row map>...], ...}, "delete": {"<entity name>": ["<id>"...]}}
 *   entity names in sl_entities order (only entities with changes), rows and ids in id order,
 *   each row encoded exactly as a snapshot encodes it (proto/snapshot.h), so its digest
 *   (proto/config_hash.h) is the sha256 of its bytes. "hash" is the config hash at version:
 *   the receiver applies the delta to its copy of the config at (base_version, base_hash),
 *   recomputes the hash and refuses the result when it differs.
 * The decoder is strict and bounded like the snapshot decoder; it validates every upserted row
 * with the schema tables. Checking references (a route's service exists, a deleted service
 * has no routes left) needs the receiver's config and is the receiver's job. */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/config_hash.h"
#include "proto/schema.h"
#include "proto/snapshot.h"

typedef struct {
    int64_t base_version, version;
    char base_hash[SL_SNAPSHOT_HASH_HEX], hash[SL_SNAPSHOT_HASH_HEX];
    unsigned char *bytes; /* the envelope (malloc'd) */
    size_t len;
} sl_delta;

/* Encodes a delta. upserts: {"<entity>": [row objects as the store returns them]}, deletes:
 * {"<entity>": ["<id>"...]} (either may be NULL or hold only some entities; unknown entity
 * names are an error). Returns 0, or -1 with err. d->bytes is owned by d (sl_delta_free). */
int sl_delta_encode(const json_t *upserts, const json_t *deletes, int64_t base_version,
                    const char *base_hash, int64_t version, const char *hash, sl_delta *d,
                    char *err, size_t errlen);

void sl_delta_free(sl_delta *d);

/* entity is NULL for an entity this node does not know (a newer control plane's): then only
 * entity_name, id and digest are set, for the hash. */
typedef struct {
    const sl_entity *entity;
    char entity_name[SL_MAX_ENTITY_NAME + 1];
    json_t *row; /* validated row (owned by the decoded delta); NULL for unknown entities */
    char id[SL_UUID_LEN + 1];
    sl_digest digest; /* sha256 of the row's canonical bytes */
} sl_delta_upsert;

typedef struct {
    const sl_entity *entity; /* NULL: unknown here, see sl_delta_upsert */
    char entity_name[SL_MAX_ENTITY_NAME + 1];
    char id[SL_UUID_LEN + 1];
} sl_delta_delete;

typedef struct {
    int64_t base_version, version;
    char base_hash[SL_SNAPSHOT_HASH_HEX], hash[SL_SNAPSHOT_HASH_HEX];
    sl_delta_upsert *upserts;
    size_t nupserts;
    sl_delta_delete *deletes;
    size_t ndeletes;
} sl_delta_decoded;

/* Decodes and validates a delta envelope (limits as for snapshots; NULL: defaults; max_rows
 * bounds the upserts plus deletes). Ids within each entity's list must be strictly ascending
 * and an id may not be both upserted and deleted. On failure
 * returns -1 with err, and *errors (when not NULL) may get per-entity reasons shaped like
 * sl_snapshot_decode's. On success the caller frees d with sl_delta_decoded_free. */
int sl_delta_decode(const unsigned char *bytes, size_t len, const sl_snapshot_limits *limits,
                    sl_delta_decoded *d, json_t **errors, char *err, size_t errlen);

void sl_delta_decoded_free(sl_delta_decoded *d);

/* Reads type-independent header fields (versions and hashes) without decompressing. Returns
 * 0, or -1 when bytes is not a delta envelope. */
int sl_delta_peek(const unsigned char *bytes, size_t len, int64_t *base_version,
                  char base_hash[SL_SNAPSHOT_HASH_HEX], int64_t *version,
                  char hash[SL_SNAPSHOT_HASH_HEX]);

#endif
