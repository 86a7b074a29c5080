#ifndef CP_CLUSTER_DP_TABLE_H
#define CP_CLUSTER_DP_TABLE_H

/* The data plane registry in PostgreSQL (table clustering_data_planes, migration 002), so that
 * every control plane replica on one database lists every data plane, whichever replica it is
 * connected to. The in-memory registry (registry.h) stays the live view of this node.
 *
 * Writes go through a writer thread with its own connection and a bounded queue, never on the
 * event loop: cp_dp_table_put copies a row and returns at once. Rows queued for the same data
 * plane coalesce (the newest wins). When PostgreSQL is away the queue keeps the newest row per
 * data plane and the thread retries with backoff. The thread also deletes rows not seen for
 * cluster_data_plane_purge_delay seconds. Writes to this table never bump the config version. */

#include <jansson.h>

#include "control_plane/cluster/registry.h"
#include "proto/settings.h"

struct pg_conn;

/* A data plane counts as connected when its row says so and its last_seen is at most this
 * old: a control plane that died without a word stops claiming its data planes. */
#define CP_DP_TABLE_STALE_S 45

typedef struct cp_dp_table cp_dp_table;

/* Starts the writer thread for the control plane cp_node_id (a uuid). NULL with err when the
 * thread cannot start (never for an unreachable database: it retries). */
cp_dp_table *cp_dp_table_start(const sl_settings *s, const char *cp_node_id, char *err,
                               size_t errlen);

/* Queues row (copied; row->error stays the caller's). Thread-safe and non-blocking. Returns
 * 0, or -1 when the queue is full of other data planes (the row is dropped, and logged). */
int cp_dp_table_put(cp_dp_table *t, const cp_dp_row *row);

/* Writes what is queued (for at most about two seconds), stops the thread and frees t. */
void cp_dp_table_stop(cp_dp_table *t);

/* Reads up to size rows (1..1000) with id greater than after (NULL: from the start), ordered
 * by id, as Admin API objects: id, hostname, ip, version, config_version, config_hash,
 * last_seen (seconds), updated_at, sync_status, connected, error, cp_node_id. *more says
 * whether rows follow. Returns a new array, or NULL with err on a database error. Blocking:
 * call on a DB thread. */
json_t *cp_dp_table_list(struct pg_conn *conn, int size, const char *after, int *more, char *err,
                         size_t errlen);

#endif
