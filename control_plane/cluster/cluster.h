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
 *             refused {reason, message} before closing (version_incompatible)
 * Runs on the control plane's event loop (libwebsockets with the libuv event library). */

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "proto/settings.h"

typedef struct cp_cluster cp_cluster;

/* An encoded snapshot shared by every connection that sends it (refcounted, immutable). */
typedef struct cp_snapshot_ref {
    int refs; /* touched only on the loop thread */
    int64_t version;
    char hash[65];
    unsigned char *bytes;
    size_t len;
    json_t *plugins_used; /* array of plugin names the config uses (for plugin_set checks) */
} cp_snapshot_ref;

cp_snapshot_ref *cp_snapshot_ref_new(int64_t version, const char *hash, unsigned char *bytes,
                                     size_t len, json_t *plugins_used);
void cp_snapshot_ref_release(cp_snapshot_ref *s);

/* Starts the listener. Needs cluster_cert and cluster_cert_key (and cluster_ca_cert in pki
 * mode); NULL with err naming the missing setting or the bind failure. */
cp_cluster *cp_cluster_start(uv_loop_t *loop, const sl_settings *s, const char *node_id, char *err,
                             size_t errlen);

/* Makes snap the current snapshot (takes a reference) and queues it to every connected,
 * compatible data plane whose version is older. Loop thread only. A DP connecting later gets
 * the current snapshot at once. Versions never go backwards: an older snap is ignored. */
void cp_cluster_publish(cp_cluster *c, cp_snapshot_ref *snap);

/* Thread-safe: a new JSON array describing every known data plane: id, hostname, ip,
 * version, config_version, config_hash, last_seen (seconds), sync_status ("normal",
 * "unknown", "version_incompatible", "plugin_set_incompatible", "config_rejected"),
 * connected (bool), error (last error reported, or null). arg is the cp_cluster. */
json_t *cp_cluster_data_planes(void *arg);

/* Closes every connection and the listener. Loop thread only; the loop must run afterwards
 * for close callbacks. */
void cp_cluster_stop(cp_cluster *c);

#endif
