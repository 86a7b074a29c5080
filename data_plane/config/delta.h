#ifndef DP_DELTA_H
#define DP_DELTA_H

/* Applying a config delta (proto/snapshot_delta.h) to the configuration a data plane serves:
 * a new config object that shares every unchanged row (and every untouched entity's array)
 * with the old one, and the digests the new hash is computed from. Pure: nothing global. */

#include <jansson.h>
#include <stddef.h>

#include "proto/config_hash.h"
#include "proto/snapshot_delta.h"

/* Builds *new_config and *new_digests (initialised here) from old_config (entity arrays kept
 * in id order, as snapshots and deltas deliver them) and old_digests, then checks that every
 * reference resolves in the result and that its hash is dd->hash. Returns 0, or -1 with err
 * and, when there are per-entity reasons, *errors (caller owns). Nothing is changed on failure. */
int dp_delta_apply(const json_t *old_config, const sl_digest_set *old_digests,
                   const sl_delta_decoded *dd, json_t **new_config, sl_digest_set *new_digests,
                   json_t **errors, char *err, size_t errlen);

#endif
