#ifndef DP_STATUS_H
#define DP_STATUS_H

/* The status listener (Kong's status_listen): GET /status (connections, requests, config
 * version and hash) and GET /status/ready (503 until a config is loaded or while draining).
 * Runs on the control thread's loop; reads the workers' counters. */

#include <uv.h>

#include "data_plane/worker/worker.h"
#include "proto/settings.h"

/* Listens on each entry; -1 with err when one can't be bound. */
int dp_status_start(uv_loop_t *loop, const sl_listen_addr *addrs, int n, dp_worker *workers,
                    int nworkers, char *err, size_t errlen);

/* Marks the node as draining (/status/ready answers 503 "draining"). */
void dp_status_set_draining(void);

/* The control plane connection /status reports ("control_plane": {"connected": ...}); NULL
 * when the node runs without one (declarative_config). Control loop only. */
struct dp_cluster_client;
void dp_status_set_cluster(const struct dp_cluster_client *c);

/* Closes the listeners and open status connections. */
void dp_status_stop(void);

#endif
