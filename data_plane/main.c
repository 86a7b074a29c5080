/* sluice-dp: the data plane. `serve` runs it in the foreground: a control thread (this one:
 * config, signals, status listener) and N proxy worker threads. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "proto/json_arena.h"
#include "proto/malloc_tune.h"
#include "data_plane/cluster/client.h"
#include "data_plane/config/apply.h"
#include "data_plane/plugins/log_queue.h"
#include "data_plane/status/status.h"
#include "data_plane/upstream/health.h"
#include "data_plane/tls/tls.h"
#include "data_plane/worker/worker.h"
#include "proto/local_http.h"
#include "proto/log.h"
#include "proto/node_id.h"
#include "proto/settings.h"
#include "proto/version.h"

#define MAX_WORKERS 1024

static dp_worker *workers;
static int nworkers;
static uv_loop_t *ctl;
static uv_signal_t sig_term, sig_int, sig_hup;
static uv_timer_t drain_timer;
static uint64_t drain_deadline;
static uint64_t drain_ms; /* drain_timeout */
static int stopping;
static dp_cluster_client *cluster;

static void usage(FILE *f)
{
    fprintf(f, "Usage: sluice-dp <command> [--conf FILE]\n\n"
               "Commands:\n"
               "  serve    run the data plane in the foreground\n"
               "  health   exit 0 when the local data plane is up and has a configuration\n\n");
    sl_settings_print_help(SL_FOR_DP);
}

static long long active_connections(void)
{
    long long n = 0;
    for (int i = 0; i < nworkers; i++)
        n += atomic_load(&workers[i].stats.active);
    return n;
}

static void finish(void)
{
    uv_timer_stop(&drain_timer);
    if (cluster)
        dp_cluster_client_stop(cluster);
    cluster = NULL;
    dp_status_set_cluster(NULL);
    for (int i = 0; i < nworkers; i++)
        dp_worker_stop(&workers[i]);
    for (int i = 0; i < nworkers; i++)
        dp_worker_join(&workers[i]);
    dp_status_stop();
    dp_health_stop();
    /* Log entries still queued when the workers stopped are written, within a bound. */
    dp_log_flush(2000);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_hup, NULL);
    uv_close((uv_handle_t *)&drain_timer, NULL);
}

static void drain_tick(uv_timer_t *t)
{
    if (active_connections() == 0 || uv_now(ctl) >= drain_deadline) {
        long long left = active_connections();
        if (left)
            sl_warn("drain time over: closing %lld connections", left);
        else
            sl_notice("drained");
        finish();
    }
}

static void on_term(uv_signal_t *s, int signum)
{
    if (stopping) {
        if (signum == SIGINT) /* a second Ctrl-C: don't wait */
            drain_deadline = 0;
        return;
    }
    stopping = 1;
    sl_notice("signal %d: draining (at most %llu s)", signum, (unsigned long long)drain_ms / 1000);
    dp_status_set_draining();
    for (int i = 0; i < nworkers; i++)
        dp_worker_drain(&workers[i]);
    drain_deadline = uv_now(ctl) + drain_ms;
    uv_timer_start(&drain_timer, drain_tick, 50, 50);
}

static const char *declarative;

static int cluster_apply(void *arg, const unsigned char *bytes, size_t len, char *err,
                         size_t errlen, json_t **errors)
{
    return dp_config_apply_snapshot(bytes, len, errors, err, errlen);
}

static int cluster_apply_delta(void *arg, const unsigned char *bytes, size_t len, char *err,
                               size_t errlen, json_t **errors)
{
    return dp_config_apply_delta(bytes, len, errors, err, errlen);
}

static void cluster_current(void *arg, int64_t *version, char hash[65])
{
    dp_generation *g = dp_config_current();
    *version = g ? g->version : 0;
    snprintf(hash, 65, "%s", g ? g->hash : "");
    dp_generation_unref(g);
}

static void on_hup(uv_signal_t *s, int signum)
{
    char err[512];
    int rc = declarative ? dp_config_load_declarative(declarative, err, sizeof(err))
                         : dp_config_load_cache(err, sizeof(err));
    if (rc < 0)
        sl_error("SIGHUP: config not reloaded, the current one keeps serving: %s", err);
    else
        sl_notice("SIGHUP: config reloaded");
}

static int serve(sl_settings *s)
{
    char err[512];
    sl_listen_addr proxy[DP_MAX_LISTENERS], status[4];
    int nproxy = sl_listen_parse(sl_settings_get(s, "proxy_listen"), proxy, DP_MAX_LISTENERS, err,
                                 sizeof(err));
    if (nproxy < 0) {
        fprintf(stderr, "Error: proxy_listen: %s\n", err);
        return 1;
    }
    int nstatus =
        sl_settings_get(s, "status_listen") && strcmp(sl_settings_get(s, "status_listen"), "off")
            ? sl_listen_parse(sl_settings_get(s, "status_listen"), status, 4, err, sizeof(err))
            : 0;
    if (nstatus < 0) {
        fprintf(stderr, "Error: status_listen: %s\n", err);
        return 1;
    }
    nworkers = (int)sl_settings_int(s, "worker_threads");
    if (nworkers <= 0)
        nworkers = (int)uv_available_parallelism();
    if (nworkers > MAX_WORKERS)
        nworkers = MAX_WORKERS;
    dp_proxy_conf conf;
    if (dp_proxy_conf_load(&conf, s, err, sizeof(err)) != 0) {
        fprintf(stderr, "Error: %s\n", err);
        return 1;
    }
    drain_ms = (uint64_t)sl_settings_int(s, "drain_timeout") * 1000;
    signal(SIGPIPE, SIG_IGN);
    /* a reload request that comes while the config is still loading must not kill the node;
     * the libuv handler installed once the loop exists takes over */
    signal(SIGHUP, SIG_IGN);
    SSL_CTX *server_ctx = dp_tls_server_ctx_new(err, sizeof(err));
    if (!server_ctx) {
        fprintf(stderr, "Error: TLS: %s\n", err);
        return 1;
    }
    workers = calloc((size_t)nworkers, sizeof(dp_worker));
    for (int i = 0; i < nworkers; i++) {
        if (dp_worker_init(&workers[i], i, proxy, nproxy, server_ctx, &conf, err, sizeof(err)) !=
            0) {
            fprintf(stderr, "Error: %s\n", err);
            return 1;
        }
    }
    const char *prefix = sl_settings_get(s, "prefix");
    dp_config_init(prefix, workers, nworkers);
    declarative = sl_settings_get(s, "declarative_config");
    if (declarative) {
        if (dp_config_load_declarative(declarative, err, sizeof(err)) != 0) {
            fprintf(stderr, "Error: declarative_config: %s\n", err);
            return 1;
        }
    } else {
        int rc = dp_config_load_cache(err, sizeof(err));
        if (rc < 0) /* a bad cache must not keep the node down: the CP will send a config */
            sl_error("cached config not loaded: %s", err);
        else if (rc == 0)
            sl_notice("no cached config in %s: waiting for one (every request gets 404)", prefix);
    }
    ctl = uv_default_loop();
    /* before any listener is reachable: a SIGHUP or SIGTERM sent as soon as the node answers
     * must find its handler, not the default action that kills the process */
    uv_signal_init(ctl, &sig_term);
    uv_signal_init(ctl, &sig_int);
    uv_signal_init(ctl, &sig_hup);
    uv_timer_init(ctl, &drain_timer);
    uv_signal_start(&sig_term, on_term, SIGTERM);
    uv_signal_start(&sig_int, on_term, SIGINT);
    uv_signal_start(&sig_hup, on_hup, SIGHUP);
    if (nstatus && dp_status_start(ctl, status, nstatus, workers, nworkers, err, sizeof(err))) {
        fprintf(stderr, "Error: %s\n", err);
        return 1;
    }
    /* The node's id names it to the control plane and in /upstreams/{u}/health. */
    static char node_id[37];
    if (sl_prefix_ensure(prefix, err, sizeof(err)) != 0 ||
        sl_node_id_load(prefix, node_id, err, sizeof(err)) != 0) {
        fprintf(stderr, "Error: %s\n", err);
        return 1;
    }
    dp_health_set_node_id(node_id);
    if (!declarative) {
        /* without a control plane the node keeps serving its cached config: not fatal */
        static const dp_cluster_callbacks cb = {cluster_apply, cluster_current, NULL,
                                                cluster_apply_delta};
        if (!(cluster = dp_cluster_client_start(ctl, s, node_id, &cb, err, sizeof(err))))
            sl_error("cluster client not started: %s", err);
        dp_status_set_cluster(cluster);
    }
    for (int i = 0; i < nworkers; i++) {
        if (dp_worker_start(&workers[i]) != 0) {
            fprintf(stderr, "Error: cannot start worker thread %d\n", i);
            return 1;
        }
    }
    sl_notice("sluice-dp %s started: %d workers, %d proxy listeners", SL_VERSION, nworkers, nproxy);
    uv_run(ctl, UV_RUN_DEFAULT);
    uv_loop_close(ctl);
    dp_config_shutdown();
    free(workers);
    SSL_CTX_free(server_ctx);
    dp_tls_cleanup();
    sl_notice("stopped");
    return 0;
}

/* One line, like `sluice-cp health`: stdout when ready, stderr with the reason otherwise. */
static int health(sl_settings *s)
{
    char err[256], body[512];
    sl_listen_addr st[4];
    const char *v = sl_settings_get(s, "status_listen");
    if (!v || strcmp(v, "off") == 0 || sl_listen_parse(v, st, 4, err, sizeof(err)) < 1) {
        fprintf(stderr, "sluice-dp health: no status_listen to ask\n");
        return 1;
    }
    int code = sl_local_http_get(st[0].host, st[0].port, "/status/ready", NULL, 3000, body,
                                 sizeof(body), err, sizeof(err));
    if (code == 200) {
        printf("sluice-dp is healthy at %s:%d: ready\n", st[0].host, st[0].port);
        return 0;
    }
    if (code < 0) {
        fprintf(stderr, "sluice-dp is not running: %s\n", err);
        return 1;
    }
    json_t *j = json_loads(body, 0, NULL);
    const char *why = json_string_value(json_object_get(j, "message"));
    fprintf(stderr, "sluice-dp is not ready: %s\n", why ? why : "status listener answered");
    json_decref(j);
    return 1;
}

int main(int argc, char **argv)
{
    sl_malloc_tune();
    sl_json_arena_install(); /* decoded snapshots' trees; without it, plain malloc */
    const char *cmd = NULL, *conf = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h") || !strcmp(argv[i], "help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--conf") || !strcmp(argv[i], "-c")) {
            if (++i == argc) {
                fprintf(stderr, "Error: --conf needs a file\n");
                return 1;
            }
            conf = argv[i];
        } else if (!cmd) {
            cmd = argv[i];
        } else {
            fprintf(stderr, "Error: unexpected argument '%s'\n", argv[i]);
            return 1;
        }
    }
    if (!cmd) {
        usage(stderr);
        return 1;
    }
    if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "health") != 0) {
        fprintf(stderr, "Error: unknown command '%s'\n\n", cmd);
        usage(stderr);
        return 1;
    }
    sl_settings s;
    char err[512];
    if (sl_settings_load(&s, conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "Error: %s\n", err);
        return 1;
    }
    sl_log_set_level((sl_log_level)sl_log_level_parse(sl_settings_get(&s, "log_level")));
    int rc = strcmp(cmd, "serve") == 0 ? serve(&s) : health(&s);
    sl_settings_free(&s);
    return rc;
}
