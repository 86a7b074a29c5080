#ifndef CP_SNAPSHOT_REF_H
#define CP_SNAPSHOT_REF_H

/* What the control plane publishes for a config version: the full snapshot (every data plane
 * can take it) or a delta from one base version and hash (only a data plane that has exactly
 * that base can). Encoded once, sent to every data plane from the same bytes; refcounted and
 * immutable, touched only on the loop thread once published. */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    CP_REF_SNAPSHOT, /* bytes: a snapshot envelope (proto/snapshot.h) */
    CP_REF_DELTA,    /* bytes: a delta envelope (proto/snapshot_delta.h) */
} cp_ref_kind;

typedef struct cp_snapshot_ref {
    int refs; /* touched only on the loop thread */
    cp_ref_kind kind;
    int64_t version;
    char hash[65];
    int64_t base_version; /* deltas: what the receiver must have */
    char base_hash[65];
    unsigned char *bytes;
    size_t len;
    json_t *plugins_used; /* array of plugin names the config at version uses */
} cp_snapshot_ref;

/* A full snapshot. Takes ownership of bytes (malloc'd) and of the caller's reference to
 * plugins_used, also on failure (NULL when out of memory). */
cp_snapshot_ref *cp_snapshot_ref_new(int64_t version, const char *hash, unsigned char *bytes,
                                     size_t len, json_t *plugins_used);

/* A delta from (base_version, base_hash) to (version, hash); ownership as above. */
cp_snapshot_ref *cp_delta_ref_new(int64_t base_version, const char *base_hash, int64_t version,
                                  const char *hash, unsigned char *bytes, size_t len,
                                  json_t *plugins_used);

void cp_snapshot_ref_release(cp_snapshot_ref *s);

#endif
