#ifndef SL_SNAPSHOT_ROWS_H
#define SL_SNAPSHOT_ROWS_H

/* One entity row in canonical msgpack form, shared by full snapshots (proto/snapshot.c), deltas
 * (proto/snapshot_delta.c) and row digests (proto/config_hash.c), so the three agree on the
 * bytes a row digest covers. A canonical row is a map of every schema field in schema order;
 * absent or null fields are nil, FOREIGN fields are {"id": "<uuid>"}; fields the schema does
 * not know are left out. */

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>

#include "proto/config_hash.h"
#include "proto/msgpack_json.h"
#include "proto/schema.h"

/* msgpack_sbuffer that remembers an allocation failure (the packer ignores write errors). */
typedef struct {
    msgpack_sbuffer sb;
    int oom;
} sl_sbuf;

/* msgpack write callback for an sl_sbuf. */
int sl_sbuf_write(void *data, const char *buf, size_t len);

/* Packs row (an object of entity e whose "id" is id) as a canonical row. vals is scratch of
 * e->nfields pointers. Returns 0, or -1 with err naming the entity, id and field. */
int sl_snapshot_pack_row_into(msgpack_packer *pk, const sl_entity *e, const json_t *row,
                              const char *id, const json_t **vals, char *err, size_t errlen);

/* The canonical bytes of one row, malloc'd into *bytes (caller frees). 0, or -1 with err. */
int sl_snapshot_pack_row(const sl_entity *e, const json_t *row, unsigned char **bytes, size_t *len,
                         char *err, size_t errlen);

/* Reads one canonical row of entity e at r into a new object (fields the schema does not know
 * are skipped, a repeated field is refused) and the sha256 of the bytes it spans into digest.
 * seen is scratch of e->nfields bytes; errors name the row prefix + "routes[3]" (index). Returns
 * the row, or NULL with err. */
json_t *sl_snapshot_read_row(sl_mp_reader *r, const sl_entity *e, unsigned char *seen,
                             sl_digest *digest, const char *prefix, uint32_t index, char *err,
                             size_t errlen);

/* Reads one row of an entity this node does not know (a map, not validated): its "id" into id
 * ("" when absent, not a string or longer than a uuid) and the sha256 of its bytes into d, for
 * the config hash. 0, or -1 with err when it is not a well-formed map. */
int sl_snapshot_skim_row(sl_mp_reader *r, char id[SL_UUID_LEN + 1], sl_digest *d, char *err,
                         size_t errlen);

/* The entity named by the msgpack string k (klen bytes), or NULL; *index: its position in
 * sl_entities. */
const sl_entity *sl_snapshot_entity_named(const char *k, uint32_t klen, size_t *index);

#endif
