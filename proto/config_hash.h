#ifndef SL_CONFIG_HASH_H
#define SL_CONFIG_HASH_H

/* The config hash (snapshot format 2), built from per-row digests so that both planes can
 * keep it up to date after a change without re-encoding the whole configuration.
 *
 *   row digest  = sha256 of the row's canonical msgpack bytes (the row map exactly as a
 *                 snapshot encodes it: schema field order, absent fields nil, FOREIGN fields
 *                 {"id": "<uuid>"})
 *   config hash = sha256 over, for each entity that has rows, in ascending name order
 *                 (strcmp): the entity name, one NUL byte, the row count as 8 bytes
 *                 big-endian, then the 32-byte digests of its rows in ascending id order
 *                 (strcmp); printed as 64 lower-case hex.
 *
 * Entities without rows add nothing and the order does not depend on any node's schema table,
 * so a data plane that does not know an entity a newer control plane sends can still check the
 * hash: it keeps that entity's digests (sl_config_hash_ext) without using its rows. An empty
 * configuration hashes to sha256 of nothing. Hashing 100,000 digests (3.2 MB) costs a few
 * milliseconds. */

#include <jansson.h>
#include <stddef.h>

#include "proto/schema.h"

#define SL_UUID_LEN 36

typedef struct {
    unsigned char b[32];
} sl_digest;

/* One entity's rows, kept sorted by id: what the hash needs. */
typedef struct {
    size_t n, cap;
    char (*ids)[SL_UUID_LEN + 1];
    sl_digest *digests;
} sl_row_digests;

/* Inserts or replaces the digest of row id (at most SL_UUID_LEN bytes), keeping id order.
 * Returns 0, or -1 when out of memory or id is too long. */
int sl_row_digests_set(sl_row_digests *r, const char *id, const sl_digest *d);

/* Removes row id. Returns 0, or -1 when it is not there. */
int sl_row_digests_remove(sl_row_digests *r, const char *id);

/* The digest of row id, or NULL. */
const sl_digest *sl_row_digests_get(const sl_row_digests *r, const char *id);

/* Deep copy (dst is overwritten). Returns 0 or -1 (out of memory; dst left empty). */
int sl_row_digests_copy(sl_row_digests *dst, const sl_row_digests *src);

void sl_row_digests_free(sl_row_digests *r);

/* per_entity[i] belongs to sl_entities[i] (sl_entity_count of them). Writes 64 hex + NUL. */
void sl_config_hash(const sl_row_digests *per_entity, char hex[65]);

/* Digests of an entity this node's schema does not know, kept only for the hash. */
#define SL_MAX_EXTRA_ENTITIES 32
#define SL_MAX_ENTITY_NAME 63
typedef struct {
    char name[SL_MAX_ENTITY_NAME + 1];
    sl_row_digests rows;
} sl_extra_digests;

/* sl_config_hash including nextra entities unknown to this node. */
void sl_config_hash_ext(const sl_row_digests *per_entity, const sl_extra_digests *extra,
                        size_t nextra, char hex[65]);

/* Everything a configuration's hash is computed from: the rows of every known entity
 * (known[i] belongs to sl_entities[i]) and of entities this node does not know. What a data
 * plane keeps so that it can apply a delta and check the resulting hash. */
typedef struct {
    sl_row_digests *known;
    sl_extra_digests *extra; /* SL_MAX_EXTRA_ENTITIES slots */
    size_t nextra;
} sl_digest_set;

/* 0, or -1 when out of memory. */
int sl_digest_set_init(sl_digest_set *s);
void sl_digest_set_free(sl_digest_set *s);
/* Deep copy into dst (initialised here). 0, or -1 when out of memory (dst then empty). */
int sl_digest_set_copy(sl_digest_set *dst, const sl_digest_set *src);
/* The list of an unknown entity named name (len bytes), added when new; NULL when there are
 * already SL_MAX_EXTRA_ENTITIES of them or the name is longer than SL_MAX_ENTITY_NAME. */
sl_row_digests *sl_digest_set_extra(sl_digest_set *s, const char *name, size_t len);
void sl_digest_set_hash(const sl_digest_set *s, char hex[65]);

/* The digest of one row of entity e given as JSON (as the store and the decoders produce rows).
 * Returns 0, or -1 with err (a value the canonical encoding can't carry). */
int sl_row_digest(const sl_entity *e, const json_t *row, sl_digest *out, char *err, size_t errlen);

/* Digests of every row of a config object ({"routes": [...], ...}) into per_entity (an array of
 * sl_entity_count, zeroed by the caller). Returns 0, or -1 with err (per_entity then freed). */
int sl_config_digests(const json_t *config, sl_row_digests *per_entity, char *err, size_t errlen);

/* Frees an array of sl_entity_count digests lists (not the array itself). */
void sl_config_digests_free(sl_row_digests *per_entity);

#endif
