#ifndef CP_CONFIG_MODEL_H
#define CP_CONFIG_MODEL_H

/* The control plane's copy of the configuration at one version, kept up to date from the
 * change log, so a change costs work proportional to the change: the new config hash comes
 * from per-row digests (proto/config_hash.h) and data planes at the previous version get a
 * delta (proto/snapshot_delta.h). A full snapshot is encoded from the same rows when needed.
 * Used by one thread (the sync builder); nothing here locks. */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/config_hash.h"
#include "proto/snapshot.h"
#include "proto/snapshot_delta.h"

typedef struct {
    int loaded; /* 0 until a full load succeeds, and after a failure that left it unusable */
    int64_t version;
    char hash[SL_SNAPSHOT_HASH_HEX];
    json_t **rows;           /* per entity of sl_entities: object id -> row (owned) */
    sl_row_digests *digests; /* per entity: digests by id (what the hash covers) */
} cp_config_model;

/* An empty, not loaded model. Returns 0, or -1 when out of memory. */
int cp_config_model_init(cp_config_model *m);
void cp_config_model_free(cp_config_model *m);

/* Replaces the content with config ({"services": [...], ...} as cp_store_read_config gives
 * it, borrowed; its rows are shared, not copied) at version. When the model was loaded and
 * delta is not NULL, *delta gets the changes from the previous content (base = previous
 * version and hash) and *has_delta is set; otherwise *has_delta is 0. Returns 0, or -1 with err
 * (the model is then not loaded). */
int cp_config_model_load(cp_config_model *m, const json_t *config, int64_t version, sl_delta *delta,
                         int *has_delta, char *err, size_t errlen);

/* Applies changes leading to version: upserts {"<entity>": [rows]} and deletes {"<entity>":
 * ["<id>"...]} (borrowed; either may be NULL). Rows identical to the model's and deletes of
 * ids it does not hold are left out of the delta. *delta gets the encoded delta from the
 * previous version and hash (free with sl_delta_free). Returns 0; -1 with err when an input is
 * malformed (model unchanged) or on failure after changing it (model no longer loaded: read
 * everything again). */
int cp_config_model_apply(cp_config_model *m, const json_t *upserts, const json_t *deletes,
                          int64_t version, sl_delta *delta, char *err, size_t errlen);

/* The config object at the model's version, shaped like cp_store_read_config's output (rows
 * by id, shared with the model: do not modify them). New reference, NULL when out of memory. */
json_t *cp_config_model_config(const cp_config_model *m);

/* Encodes the full snapshot of the model's version. 0, or -1 with err; s as sl_snapshot_encode. */
int cp_config_model_snapshot(const cp_config_model *m, sl_snapshot *s, char *err, size_t errlen);

/* Names of the plugins that enabled plugin entities use, each once (a data plane lacking one
 * does not get the config). New array (caller owns), NULL when out of memory. */
json_t *cp_config_model_plugins_used(const cp_config_model *m);

/* Rows of entity name in the model (0 for an unknown name). */
size_t cp_config_model_count(const cp_config_model *m, const char *entity);

#endif
