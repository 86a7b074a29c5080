#ifndef DP_APPLY_H
#define DP_APPLY_H

/* The data plane's current configuration: applying snapshots (from the cluster client or the
 * on-disk cache), persisting them atomically, and handing each new generation to the workers.
 * Runs on the control thread; workers only ever see finished generations. */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "data_plane/config/generation.h"
#include "data_plane/worker/worker.h"

/* Where the cache lives and which workers get generations. Call once before anything else. */
void dp_config_init(const char *prefix, dp_worker *workers, int nworkers);

/* Decodes an envelope (proto/snapshot.h), builds a generation, writes the envelope to
 * <prefix>/config.snapshot (temp file, fsync, rename, fsync of the folder), then swaps it in.
 * Returns 0, or -1 with err (the old generation keeps serving). */
int dp_config_apply_snapshot(const unsigned char *bytes, size_t len, json_t **errors, char *err,
                             size_t errlen);

/* Applies a delta envelope (proto/snapshot_delta.h) to the config now serving, which must be
 * the delta's base (version and hash): builds and swaps in the result, then appends the delta
 * to <prefix>/config.journal (data_plane/config/journal.h), folding the journal into a new
 * config.snapshot once it outgrows it. Returns 0, or -1 with err and maybe per-entity reasons
 * in *errors (the old generation keeps serving). */
int dp_config_apply_delta(const unsigned char *bytes, size_t len, json_t **errors, char *err,
                          size_t errlen);

/* Builds and swaps in a generation from a config object (no persistence): declarative files. */
int dp_config_apply_json(json_t *config, int64_t version, const char *hash, char *err,
                         size_t errlen);

/* Loads <prefix>/config.snapshot when it exists, then replays <prefix>/config.journal. Returns 1
 * loaded, 0 no file, -1 with err. */
int dp_config_load_cache(char *err, size_t errlen);

/* Loads a Kong declarative file (YAML or JSON). Returns 0 or -1 with err. */
int dp_config_load_declarative(const char *path, char *err, size_t errlen);

/* The current generation with a new reference (caller unrefs), or NULL when none is loaded. */
dp_generation *dp_config_current(void);

/* Drops the current generation (at exit). */
void dp_config_shutdown(void);

#endif
