#ifndef DP_CLUSTER_CLIENT_H
#define DP_CLUSTER_CLIENT_H

/* The data plane's connection to the control plane (wss://<cluster_control_plane>/v1/outlet,
 * mutual TLS). Runs on the data plane's control loop; snapshots and deltas are applied in
 * order on a libuv work thread (data_plane/cluster/apply_queue.h), so the loop keeps answering
 * /status and heartbeats while a large config is built. Reconnects with jittered exponential
 * backoff (first retry within a second, capped at 30 s), sends a hello, applies every snapshot
 * and delta it receives through the apply callbacks and answers ack or error (an error to a
 * delta makes the control plane send the whole snapshot); pings every 10 s and drops a
 * silent connection after 30 s. See control_plane/cluster/cluster.h for the messages. */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "proto/settings.h"

typedef struct dp_cluster_client dp_cluster_client;

typedef struct {
    /* Applies a snapshot envelope (called on a work thread, one apply at a time; the
     * callbacks are copied at start). Returns 0 when applied,
     * else -1 with a message in err and, optionally, per-entity reasons in *errors. */
    int (*apply)(void *arg, const unsigned char *bytes, size_t len, char *err, size_t errlen,
                 json_t **errors);
    /* The version and hash now serving (0 and "" when none). */
    void (*current)(void *arg, int64_t *version, char hash[65]);
    void *arg;
    /* Applies a delta envelope (proto/snapshot_delta.h) to the config now serving; same
     * contract as apply. */
    int (*apply_delta)(void *arg, const unsigned char *bytes, size_t len, char *err, size_t errlen,
                       json_t **errors);
} dp_cluster_callbacks;

dp_cluster_client *dp_cluster_client_start(uv_loop_t *loop, const sl_settings *s,
                                           const char *node_id, const dp_cluster_callbacks *cb,
                                           char *err, size_t errlen);

/* Whether a control plane connection is up now (for /status). */
int dp_cluster_client_connected(const dp_cluster_client *c);

/* The config version being applied now, or -1 (for /status). */
int64_t dp_cluster_client_applying(const dp_cluster_client *c);

void dp_cluster_client_stop(dp_cluster_client *c);

#endif
