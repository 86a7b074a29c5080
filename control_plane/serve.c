#include "control_plane/serve.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "control_plane/admin/server.h"
#include "control_plane/cluster/cluster.h"
#include "control_plane/cluster/sync.h"
#include "control_plane/store/migrate.h"
#include "control_plane/store/store.h"
#include "proto/log.h"
#include "proto/node_id.h"
#include "proto/version.h"

typedef struct {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    uv_timer_t stop_deadline;
    cp_admin_server *admin;
    cp_cluster *cluster;
    cp_sync *sync;
} cp_node;

static void on_stop_deadline(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
    cp_node *node = h->data;
    sl_notice("received %s, stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    uv_close((uv_handle_t *)&node->sigterm, NULL);
    uv_close((uv_handle_t *)&node->sigint, NULL);
    if (node->admin) {
        cp_admin_server_stop(node->admin);
        node->admin = NULL;
    }
    if (node->sync) {
        if (node->cluster) /* the cluster outlives the builder by a few loop turns */
            cp_cluster_on_full_wanted(node->cluster, NULL, NULL);
        cp_sync_stop(node->sync);
        node->sync = NULL;
    }
    if (node->cluster) {
        cp_cluster_stop(node->cluster);
        node->cluster = NULL;
    }
    /* Everything closed above lets uv_run return; a handle that lingers must not keep the
     * process from exiting. */
    uv_timer_init(&node->loop, &node->stop_deadline);
    node->stop_deadline.data = node;
    uv_timer_start(&node->stop_deadline, on_stop_deadline, 10000, 0);
    uv_unref((uv_handle_t *)&node->stop_deadline);
}

/* Refuses to serve a database whose schema is missing or behind, with the command to run. */
static int check_schema(const sl_settings *s)
{
    char err[1024];
    cp_store *st = cp_store_connect(s, err, sizeof(err));
    if (!st) {
        fprintf(stderr, "Error: %s\n", err);
        return -1;
    }
    int state = cp_migrations_state(st, err, sizeof(err));
    cp_store_close(st);
    switch (state) {
    case CP_SCHEMA_UP_TO_DATE:
        return 0;
    case CP_SCHEMA_NEEDS_BOOTSTRAP:
        fprintf(stderr, "Error: Database needs bootstrapping.\n\n"
                        "To start a new installation from scratch, run "
                        "'sluice-cp migrations bootstrap'.\n");
        return -1;
    case CP_SCHEMA_PENDING:
        fprintf(stderr, "Error: New migrations available; run 'sluice-cp migrations up' to "
                        "proceed\n");
        return -1;
    default:
        fprintf(stderr, "Error: cannot read the schema state: %s\n", err);
        return -1;
    }
}

int cp_serve(const sl_settings *s)
{
    char err[1024];
    if (check_schema(s))
        return 1;

    static char node_id[37];
    if (sl_node_id_load(sl_settings_get(s, "prefix"), node_id, err, sizeof(err))) {
        fprintf(stderr, "Error: %s\n", err);
        return 1;
    }
    static char hostname[256];
    if (gethostname(hostname, sizeof(hostname) - 1))
        strcpy(hostname, "localhost");

    /* A peer closing a socket must surface as EPIPE on that write, not kill the process. */
    signal(SIGPIPE, SIG_IGN);

    cp_node node;
    memset(&node, 0, sizeof(node));
    uv_loop_init(&node.loop);

    cp_admin_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.node_id = node_id;
    ctx.hostname = hostname;
    ctx.settings = s;

    /* The cluster listener needs its certificate; without one the node still serves the Admin
     * API (useful for schema work and tests), and says plainly that no data plane can join. */
    if (sl_settings_get(s, "cluster_cert")) {
        node.cluster = cp_cluster_start(&node.loop, s, node_id, err, sizeof(err));
        if (!node.cluster) {
            fprintf(stderr, "Error: %s\n", err);
            uv_loop_close(&node.loop);
            return 1;
        }
        node.sync = cp_sync_start(&node.loop, s, node.cluster, err, sizeof(err));
        if (!node.sync) {
            fprintf(stderr, "Error: %s\n", err);
            return 1;
        }
        cp_cluster_on_full_wanted(node.cluster, cp_sync_want_full, node.sync);
        ctx.cluster_data_planes = cp_cluster_data_planes;
        ctx.cluster_arg = node.cluster;
    } else {
        sl_warn("cluster listener disabled: cluster_cert is not set (generate one with "
                "'sluice-cp certs generate --out DIR')");
    }

    node.admin = cp_admin_server_start(&node.loop, s, &ctx, err, sizeof(err));
    if (!node.admin) {
        fprintf(stderr, "Error: %s\n", err);
        uv_loop_close(&node.loop);
        return 1;
    }
    uv_signal_init(&node.loop, &node.sigterm);
    uv_signal_init(&node.loop, &node.sigint);
    node.sigterm.data = node.sigint.data = &node;
    uv_signal_start(&node.sigterm, on_stop_signal, SIGTERM);
    uv_signal_start(&node.sigint, on_stop_signal, SIGINT);

    sl_notice("sluice-cp %s started: node %s, admin_listen %s", SL_VERSION, node_id,
              sl_settings_get(s, "admin_listen"));
    uv_run(&node.loop, UV_RUN_DEFAULT);
    /* The drain deadline timer is unreferenced, so it may still be open: close it and let the
     * loop run the close callbacks before releasing it. */
    if (uv_is_active((uv_handle_t *)&node.stop_deadline) || node.stop_deadline.loop)
        uv_close((uv_handle_t *)&node.stop_deadline, NULL);
    uv_run(&node.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&node.loop))
        sl_warn("event loop closed with handles still open");
    sl_notice("sluice-cp stopped");
    return 0;
}
