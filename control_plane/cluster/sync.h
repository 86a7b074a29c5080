#ifndef CP_SYNC_H
#define CP_SYNC_H

/* Follows the database's config version and turns each new version into a delta and a full
 * snapshot for the cluster. A dedicated thread holds a PostgreSQL connection that LISTENs on
 * sluice_config (so writes through any control plane replica are seen) and keeps the config
 * in memory (config_model.h): on each notification it reads only the rows changed since its
 * version (control_plane/store/store.h, cp_store_read_changes), applies them, and hands the
 * loop a delta at once, then the full snapshot of that version once no newer change came for
 * FULL_DEFER_MS (a burst pays for one full encode, at its end), or at once when a data plane
 * waits for it (cp_sync_want_full); the very first is built at once.
 * It reads the whole config at start, after a reconnect, and when the change log cannot bring
 * it up to date. The loop publishes both to the data planes. When PostgreSQL is away the last
 * snapshot stays published and the thread reconnects with backoff. */

#include <uv.h>

#include "control_plane/cluster/cluster.h"
#include "proto/settings.h"

typedef struct cp_sync cp_sync;

cp_sync *cp_sync_start(uv_loop_t *loop, const sl_settings *s, cp_cluster *cluster, char *err,
                       size_t errlen);

/* The newest config version built so far, as a delta or a snapshot (0 before the first).
 * Thread-safe. */
/* Asks for the full snapshot of the newest version now, without waiting for a quiet moment:
 * a data plane needs it (it is new, lagging or refused a delta). Any thread; arg is the
 * cp_sync (the shape of cp_cluster_on_full_wanted's callback). */
void cp_sync_want_full(void *arg);

long long cp_sync_built_version(const cp_sync *sync);

/* Stops the thread and releases everything. Loop thread only. */
void cp_sync_stop(cp_sync *sync);

#endif
