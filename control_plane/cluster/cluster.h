#ifndef CP_CLUSTER_H
#define CP_CLUSTER_H

/* The cluster listener: data planes connect to wss://<cluster_listen>/v1/outlet with mutual
 * TLS; the control plane sends each the latest snapshot and tracks them in a registry.
 *
 * Messages are msgpack maps with a "type" (see proto/cluster_msg.h):
 *   DP -> CP  hello {node_id, hostname, version, plugins[], config_version, config_hash}
 *             ack {version, hash} | error {version, hash, message, errors[]}
 *             ping {config_version, config_hash}
 *   CP -> DP  snapshot (the envelope of proto/snapshot.h, byte for byte)
 *             delta (the envelope of proto/snapshot_delta.h), only to a data plane that has
 *               exactly its base version and hash (acked, or the last thing sent to it); any
 *               other gets the newest full snapshot; an error reply to a delta gets it too
 *             refused {reason, message} before closing (version_incompatible)
 * Runs on the control plane's event loop (libwebsockets with the libuv event library). */

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "control_plane/cluster/snapshot_ref.h"
#include "proto/settings.h"

typedef struct cp_cluster cp_cluster;

/* Starts the listener. Needs cluster_cert and cluster_cert_key (and cluster_ca_cert in pki
 * mode); NULL with err naming the missing setting or the bind failure. */
cp_cluster *cp_cluster_start(uv_loop_t *loop, const sl_settings *s, const char *node_id, char *err,
                             size_t errlen);

/* Publishes a full snapshot or a delta (takes a reference) and queues to every connected,
 * compatible data plane what brings it to the newest version: the delta whose base it has
 * (recent deltas are kept, so a data plane a few versions behind catches up delta by delta),
 * else the newest full snapshot, once the full snapshot of the newest version is published.
 * A DP connecting later gets the same. Loop thread only. Versions never go backwards: a
 * snapshot older than the current one, or a delta not newer than the newest, is ignored. */
void cp_cluster_publish(cp_cluster *c, cp_snapshot_ref *snap);

/* fn(arg) is called (loop thread) when a data plane waits for the full snapshot of the newest
 * version, which is otherwise built only once changes pause (control_plane/cluster/sync.h). */
void cp_cluster_on_full_wanted(cp_cluster *c, void (*fn)(void *arg), void *arg);

/* Thread-safe: a new JSON array describing every known data plane: id, hostname, ip,
 * version, config_version, config_hash, last_seen (seconds), sync_status ("normal",
 * "unknown", "version_incompatible", "plugin_set_incompatible", "config_rejected"),
 * connected (bool), error (last error reported, or null). arg is the cp_cluster. */
json_t *cp_cluster_data_planes(void *arg);

/* Closes every connection and the listener. Loop thread only; the loop must run afterwards
 * for close callbacks. */
void cp_cluster_stop(cp_cluster *c);

#endif
