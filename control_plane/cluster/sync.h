#ifndef CP_SYNC_H
#define CP_SYNC_H

/* Follows the database's config version and turns each new version into one snapshot for the
 * cluster. A dedicated thread holds a PostgreSQL connection that LISTENs on sluice_config (so
 * writes through any control plane replica are seen), reads the whole config in one
 * REPEATABLE READ transaction, encodes it once, and hands it to the loop, which publishes it
 * to every data plane. Bursts coalesce: while a build runs, notifications pile up and the next
 * build covers them all; no fixed delay anywhere. When PostgreSQL is away the last snapshot
 * stays published and the thread reconnects with backoff, rebuilding on reconnect. */

#include <uv.h>

#include "control_plane/cluster/cluster.h"
#include "proto/settings.h"

typedef struct cp_sync cp_sync;

cp_sync *cp_sync_start(uv_loop_t *loop, const sl_settings *s, cp_cluster *cluster, char *err,
                       size_t errlen);

/* The version of the newest snapshot built so far (0 before the first). Thread-safe. */
long long cp_sync_built_version(const cp_sync *sync);

/* Stops the thread and releases everything. Loop thread only. */
void cp_sync_stop(cp_sync *sync);

#endif
