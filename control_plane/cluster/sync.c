#include "control_plane/cluster/sync.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control_plane/store/store.h"
#include "proto/log.h"
#include "proto/snapshot.h"

struct cp_sync {
    uv_loop_t *loop;
    const sl_settings *settings;
    cp_cluster *cluster;
    pthread_t thread;
    int wake[2]; /* a byte written here wakes the thread (stop) */
    atomic_int stopping;
    atomic_llong built_version;

    uv_async_t handoff; /* thread -> loop: a new snapshot is in `pending` */
    pthread_mutex_t lock;
    cp_snapshot_ref *pending; /* newest built snapshot not yet published; older ones dropped */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Names of the plugins an enabled plugin entity uses: data planes lacking one don't get it. */
static json_t *plugins_used(const json_t *config)
{
    json_t *names = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(config, "plugins"), i, p)
    {
        if (json_is_false(json_object_get(p, "enabled")))
            continue;
        const char *name = json_string_value(json_object_get(p, "name"));
        if (!name)
            continue;
        int seen = 0;
        size_t j;
        json_t *n;
        json_array_foreach(names, j, n) if (strcmp(json_string_value(n), name) == 0) seen = 1;
        if (!seen)
            json_array_append_new(names, json_string(name));
    }
    return names;
}

/* Reads and encodes the config; hands the result to the loop. 0 on success. */
static int build_snapshot(cp_sync *sync, cp_store *st)
{
    double t0 = now_ms();
    json_t *config = NULL;
    int64_t version = 0;
    cp_store_error serr = {0};
    if (cp_store_read_config(st, &config, &version, &serr)) {
        sl_error("cannot read the config for a snapshot: %s", serr.message);
        cp_store_error_clear(&serr);
        return -1;
    }
    double t1 = now_ms();
    sl_snapshot snap;
    char err[512];
    if (sl_snapshot_encode(config, version, &snap, err, sizeof(err))) {
        sl_error("cannot encode snapshot version %lld: %s", (long long)version, err);
        json_decref(config);
        return -1;
    }
    double t2 = now_ms();
    size_t nroutes = json_array_size(json_object_get(config, "routes"));
    cp_snapshot_ref *ref =
        cp_snapshot_ref_new(snap.version, snap.hash, snap.bytes, snap.len, plugins_used(config));
    snap.bytes = NULL; /* the ref owns the bytes now */
    sl_info("snapshot version %lld built: %zu routes, %zu bytes (%zu before compression), "
            "read %.1f ms, encode %.1f ms",
            (long long)snap.version, nroutes, snap.len, snap.canonical_len, t1 - t0, t2 - t1);
    sl_snapshot_free(&snap);
    json_decref(config);

    pthread_mutex_lock(&sync->lock);
    if (sync->pending)
        cp_snapshot_ref_release(sync->pending); /* never published: the newer one covers it */
    sync->pending = ref;
    pthread_mutex_unlock(&sync->lock);
    atomic_store(&sync->built_version, (long long)version);
    uv_async_send(&sync->handoff);
    return 0;
}

static void on_handoff(uv_async_t *h)
{
    cp_sync *sync = h->data;
    pthread_mutex_lock(&sync->lock);
    cp_snapshot_ref *ref = sync->pending;
    sync->pending = NULL;
    pthread_mutex_unlock(&sync->lock);
    if (ref) {
        cp_cluster_publish(sync->cluster, ref);
        cp_snapshot_ref_release(ref);
    }
}

/* Waits up to ms for the PostgreSQL socket or the wake pipe. Returns 1 when stopping. */
static int wait_events(cp_sync *sync, int pgfd, int ms)
{
    struct pollfd p[2] = {{.fd = sync->wake[0], .events = POLLIN}, {.fd = pgfd, .events = POLLIN}};
    int rc = poll(p, pgfd >= 0 ? 2 : 1, ms);
    if (rc < 0 && errno != EINTR)
        sl_warn("sync: poll failed: %s", strerror(errno));
    return atomic_load(&sync->stopping);
}

/* Consumes pending notifications; returns the highest version announced, or -1 if none. A
 * broken connection returns -2. */
static long long drain_notifications(PGconn *conn)
{
    if (!PQconsumeInput(conn))
        return -2;
    long long newest = -1;
    PGnotify *n;
    while ((n = PQnotifies(conn))) {
        long long v = atoll(n->extra);
        if (v > newest)
            newest = v;
        PQfreemem(n);
    }
    return newest;
}

static void *sync_main(void *arg)
{
    cp_sync *sync = arg;
    int backoff_ms = 250;
    int built_once = 0;
    while (!atomic_load(&sync->stopping)) {
        char err[1024];
        cp_store *st = cp_store_connect(sync->settings, err, sizeof(err));
        if (!st) {
            sl_warn("sync: %s (retrying in %d ms; data planes keep the last snapshot)", err,
                    backoff_ms);
            if (wait_events(sync, -1, backoff_ms))
                break;
            backoff_ms = backoff_ms * 2 > 10000 ? 10000 : backoff_ms * 2;
            continue;
        }
        PGconn *conn = cp_store_conn(st);
        PGresult *r = PQexec(conn, "LISTEN sluice_config");
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            sl_warn("sync: LISTEN failed: %s", PQerrorMessage(conn));
            cp_store_close(st);
            if (wait_events(sync, -1, backoff_ms))
                break;
            continue;
        }
        backoff_ms = 250;
        /* Whatever happened while we were not listening, the first build covers it. */
        long long want = cp_store_config_version(st);
        while (!atomic_load(&sync->stopping)) {
            if (want > atomic_load(&sync->built_version) || !built_once) {
                if (build_snapshot(sync, st) == 0)
                    built_once = 1;
                else if (!cp_store_ping(st))
                    break;
            }
            /* Queries read notifications off the socket into libpq's queue, so the ones
             * that arrived during the build are already here: take them before waiting, or
             * the socket stays quiet and they wait for the next write. */
            long long v = drain_notifications(conn);
            if (v == -1) {
                if (wait_events(sync, PQsocket(conn), 30000))
                    break;
                v = drain_notifications(conn);
            }
            if (v == -2) {
                sl_warn("sync: lost the PostgreSQL connection; data planes keep the last "
                        "snapshot");
                break;
            }
            want = v;
        }
        cp_store_close(st);
    }
    return NULL;
}

cp_sync *cp_sync_start(uv_loop_t *loop, const sl_settings *s, cp_cluster *cluster, char *err,
                       size_t errlen)
{
    cp_sync *sync = calloc(1, sizeof(*sync));
    if (!sync || pipe2(sync->wake, O_CLOEXEC | O_NONBLOCK)) {
        snprintf(err, errlen, "sync: out of resources");
        free(sync);
        return NULL;
    }
    sync->loop = loop;
    sync->settings = s;
    sync->cluster = cluster;
    pthread_mutex_init(&sync->lock, NULL);
    uv_async_init(loop, &sync->handoff, on_handoff);
    sync->handoff.data = sync;
    if (pthread_create(&sync->thread, NULL, sync_main, sync)) {
        snprintf(err, errlen, "sync: cannot start thread");
        uv_close((uv_handle_t *)&sync->handoff, NULL);
        close(sync->wake[0]);
        close(sync->wake[1]);
        free(sync);
        return NULL;
    }
    return sync;
}

long long cp_sync_built_version(const cp_sync *sync)
{
    return atomic_load(&((cp_sync *)sync)->built_version);
}

static void free_sync(uv_handle_t *h)
{
    cp_sync *sync = h->data;
    if (sync->pending)
        cp_snapshot_ref_release(sync->pending);
    pthread_mutex_destroy(&sync->lock);
    close(sync->wake[0]);
    close(sync->wake[1]);
    free(sync);
}

void cp_sync_stop(cp_sync *sync)
{
    atomic_store(&sync->stopping, 1);
    ssize_t w = write(sync->wake[1], "x", 1);
    (void)w;
    pthread_join(sync->thread, NULL);
    uv_close((uv_handle_t *)&sync->handoff, free_sync);
}
