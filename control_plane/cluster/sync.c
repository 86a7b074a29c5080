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

#include "control_plane/cluster/config_model.h"
#include "control_plane/store/store.h"
#include "proto/log.h"
#include "proto/snapshot.h"

#define PENDING_MAX 256 /* published refs waiting for the loop; the oldest go past it */
/* After a delta, the full snapshot of its version waits this long for a newer change: data
 * planes at the previous version apply the delta meanwhile, without the full encode competing
 * for the CPU, and a burst pays for one full encode at its end. */
#define FULL_DEFER_MS 250.0

struct cp_sync {
    uv_loop_t *loop;
    const sl_settings *settings;
    cp_cluster *cluster;
    pthread_t thread;
    int wake[2]; /* a byte written here wakes the thread (stop) */
    atomic_int stopping;
    atomic_llong built_version;
    atomic_int full_wanted;  /* a data plane waits for the full snapshot: build it now */
    pthread_t encoder;       /* the full encode in flight (build_full) */
    int encoder_started;     /* encoder is joinable */
    atomic_int encoder_busy; /* it has not finished */

    /* The builder thread's own state. */
    cp_config_model model;
    int64_t full_version;  /* version of the newest full snapshot built (-1: none) */
    double full_due_since; /* when the model first got ahead of that full snapshot (0: not) */
    double last_read_ms;   /* what reading the model's version cost, for the snapshot log line */

    uv_async_t handoff; /* thread -> loop: new refs are in `pending` */
    pthread_mutex_t lock;
    cp_snapshot_ref *pending[PENDING_MAX]; /* in build order: deltas chain, so none is skipped */
    size_t npending;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Queues ref for the loop (takes the caller's reference). */
static void handoff(cp_sync *sync, cp_snapshot_ref *ref)
{
    if (!ref)
        return;
    pthread_mutex_lock(&sync->lock);
    if (sync->npending == PENDING_MAX) {
        /* The loop is far behind: data planes that miss this delta get a full snapshot. */
        cp_snapshot_ref_release(sync->pending[0]);
        memmove(sync->pending, sync->pending + 1, --sync->npending * sizeof(*sync->pending));
    }
    sync->pending[sync->npending++] = ref;
    pthread_mutex_unlock(&sync->lock);
    uv_async_send(&sync->handoff);
}

static void on_handoff(uv_async_t *h)
{
    cp_sync *sync = h->data;
    cp_snapshot_ref *refs[PENDING_MAX];
    pthread_mutex_lock(&sync->lock);
    size_t n = sync->npending;
    memcpy(refs, sync->pending, n * sizeof(*refs));
    sync->npending = 0;
    pthread_mutex_unlock(&sync->lock);
    for (size_t i = 0; i < n; i++) {
        cp_cluster_publish(sync->cluster, refs[i]);
        cp_snapshot_ref_release(refs[i]);
    }
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

/* One full encode in flight, on its own thread: at 100,000 routes it takes about a second,
 * and deltas must not wait behind it. It encodes a config object of its own (new arrays,
 * shared rows: the model replaces rows, never changes one, and jansson counts references
 * atomically), so the model moves on meanwhile. */
typedef struct {
    cp_sync *sync;
    json_t *config, *plugins;
    int64_t version;
    size_t nroutes;
    double read_ms;
} full_job;

static void *encoder_main(void *arg)
{
    full_job *job = arg;
    cp_sync *sync = job->sync;
    double t0 = now_ms();
    sl_snapshot snap;
    char err[512];
    if (sl_snapshot_encode(job->config, job->version, &snap, err, sizeof(err))) {
        sl_error("cannot encode snapshot version %lld: %s", (long long)job->version, err);
        json_decref(job->plugins);
    } else {
        double t1 = now_ms();
        cp_snapshot_ref *ref =
            cp_snapshot_ref_new(snap.version, snap.hash, snap.bytes, snap.len, job->plugins);
        snap.bytes = NULL; /* the ref owns the bytes now */
        sl_info("snapshot version %lld built: %zu routes, %zu bytes (%zu before compression), "
                "read %.1f ms, encode %.1f ms",
                (long long)snap.version, job->nroutes, snap.len, snap.canonical_len, job->read_ms,
                t1 - t0);
        sl_snapshot_free(&snap);
        handoff(sync, ref);
    }
    json_decref(job->config);
    free(job);
    atomic_store(&sync->encoder_busy, 0);
    ssize_t w = write(sync->wake[1], "e", 1); /* a full snapshot may be due again */
    (void)w;
    return NULL;
}

/* Starts encoding the full snapshot of the model's version. Returns 1 when started (or when it
 * failed for good), 0 when the previous encode is still running: call again later. */
static int build_full(cp_sync *sync, double read_ms)
{
    cp_config_model *m = &sync->model;
    if (atomic_load(&sync->encoder_busy))
        return 0;
    if (sync->encoder_started) {
        pthread_join(sync->encoder, NULL);
        sync->encoder_started = 0;
    }
    full_job *job = calloc(1, sizeof(*job));
    if (job) {
        job->sync = sync;
        job->config = cp_config_model_config(m);
        job->plugins = cp_config_model_plugins_used(m);
        job->version = m->version;
        job->nroutes = cp_config_model_count(m, "routes");
        job->read_ms = read_ms;
    }
    if (!job || !job->config) {
        sl_error("cannot encode snapshot version %lld: out of memory", (long long)m->version);
        if (job) {
            json_decref(job->plugins);
            free(job);
        }
        return 1;
    }
    sync->full_version = m->version;
    sync->full_due_since = 0;
    atomic_store(&sync->encoder_busy, 1);
    if (pthread_create(&sync->encoder, NULL, encoder_main, job) != 0) {
        atomic_store(&sync->encoder_busy, 0);
        encoder_main(job); /* no thread to be had: encode here */
        atomic_store(&sync->encoder_busy, 0);
        return 1;
    }
    sync->encoder_started = 1;
    return 1;
}

/* Brings the model to the database's current version: the changes since the model's version,
 * or everything when the model is not loaded, reload is set or the log cannot say. Publishes
 * the delta at once, then the full snapshot unless a newer version already waits (a burst
 * pays for one full encode at its end). *newer gets the newest version announced meanwhile
 * (-1 none, -2 connection lost). Returns 0, or -1 when nothing could be built. */
static int sync_version(cp_sync *sync, cp_store *st, int reload, long long *newer)
{
    cp_config_model *m = &sync->model;
    *newer = -1;
    double t0 = now_ms();
    cp_store_error serr = {0};
    cp_store_changes ch = {0};
    int full_read = reload || !m->loaded;
    if (!full_read) {
        if (cp_store_read_changes(st, m->version, &ch, &serr)) {
            sl_warn("cannot read config changes since version %lld: %s; reading the whole "
                    "config",
                    (long long)m->version, serr.message);
            cp_store_error_clear(&serr);
            full_read = 1;
        } else if (ch.stale) {
            sl_info("config changes since version %lld are not all in the change log; "
                    "reading the whole config",
                    (long long)m->version);
            full_read = 1;
        } else if (ch.version == m->version) {
            cp_store_changes_free(&ch);
            return 0;
        }
    }
    json_t *config = NULL;
    int64_t version = 0;
    if (full_read && cp_store_read_config(st, &config, &version, &serr)) {
        sl_error("cannot read the config for a snapshot: %s", serr.message);
        cp_store_error_clear(&serr);
        cp_store_changes_free(&ch);
        return -1;
    }
    double t1 = now_ms();
    sl_delta delta;
    memset(&delta, 0, sizeof(delta));
    int has_delta = 0, rc;
    char err[512];
    if (full_read) {
        rc = cp_config_model_load(m, config, version, &delta, &has_delta, err, sizeof(err));
        json_decref(config);
    } else {
        rc = cp_config_model_apply(m, ch.upserts, ch.deletes, ch.version, &delta, err, sizeof(err));
        has_delta = rc == 0;
    }
    size_t nup = ch.nupserts, ndel = ch.ndeletes;
    cp_store_changes_free(&ch);
    if (rc) {
        sl_error("cannot build config version %lld: %s", (long long)(full_read ? version : 0), err);
        return -1;
    }
    double t2 = now_ms();
    if (has_delta) {
        cp_snapshot_ref *ref =
            cp_delta_ref_new(delta.base_version, delta.base_hash, delta.version, delta.hash,
                             delta.bytes, delta.len, cp_config_model_plugins_used(m));
        delta.bytes = NULL;
        if (full_read)
            sl_info("delta version %lld built: from a full read, %zu bytes (base version %lld), "
                    "read %.1f ms, apply %.1f ms",
                    (long long)delta.version, delta.len, (long long)delta.base_version, t1 - t0,
                    t2 - t1);
        else
            sl_info("delta version %lld built: %zu upserts, %zu deletes, %zu bytes (base "
                    "version %lld), read %.1f ms, apply %.1f ms",
                    (long long)delta.version, nup, ndel, delta.len, (long long)delta.base_version,
                    t1 - t0, t2 - t1);
        handoff(sync, ref);
    }
    sl_delta_free(&delta);
    atomic_store(&sync->built_version, (long long)m->version);

    /* Notifications that came during the read are in libpq's queue already. */
    *newer = drain_notifications(cp_store_conn(st));
    sync->last_read_ms = t1 - t0;
    if (sync->full_due_since == 0)
        sync->full_due_since = t2;
    /* The first full snapshot at once (no data plane can start without one), and whenever a
     * data plane is waiting for one; the others after FULL_DEFER_MS without a newer change
     * (sync_main). Under steady churn nobody pays for full encodes nobody needs. */
    if (sync->full_version < 0 || atomic_exchange(&sync->full_wanted, 0))
        build_full(sync, t1 - t0);
    return 0;
}

static int listen_on(PGconn *conn)
{
    PGresult *r = PQexec(conn, "LISTEN sluice_config");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok)
        sl_warn("sync: LISTEN failed: %s", PQerrorMessage(conn));
    return ok ? 0 : -1;
}

/* Waits up to ms for the PostgreSQL socket or the wake pipe. Returns 1 when stopping. */
static int wait_events(cp_sync *sync, int pgfd, int ms)
{
    struct pollfd p[2] = {{.fd = sync->wake[0], .events = POLLIN}, {.fd = pgfd, .events = POLLIN}};
    int rc = poll(p, pgfd >= 0 ? 2 : 1, ms);
    if (rc < 0 && errno != EINTR)
        sl_warn("sync: poll failed: %s", strerror(errno));
    if (rc > 0 && (p[0].revents & POLLIN)) { /* wake-ups carry no data: drain them */
        char buf[64];
        while (read(sync->wake[0], buf, sizeof(buf)) > 0)
            ;
    }
    return atomic_load(&sync->stopping);
}

static void *sync_main(void *arg)
{
    cp_sync *sync = arg;
    int backoff_ms = 250;
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
        if (listen_on(conn)) {
            cp_store_close(st);
            if (wait_events(sync, -1, backoff_ms))
                break;
            continue;
        }
        backoff_ms = 250;
        /* Whatever happened while we were not listening, the first build covers it; it reads
         * everything, in case the database is not the one the model came from (a restore, a
         * reset), and tells data planes the difference as a delta. */
        int reload = 1, pid = PQbackendPID(conn);
        long long want = cp_store_config_version(st);
        while (!atomic_load(&sync->stopping)) {
            if (reload || want > sync->model.version || !sync->model.loaded) {
                long long newer;
                if (sync_version(sync, st, reload, &newer) == 0)
                    reload = 0;
                else if (!cp_store_ping(st))
                    break;
                if (PQbackendPID(conn) != pid) {
                    /* The store reconnected under us: the LISTEN went with the old session. */
                    pid = PQbackendPID(conn);
                    if (listen_on(conn))
                        break;
                    reload = 1;
                    want = cp_store_config_version(st);
                    continue;
                }
                if (newer == -2)
                    goto lost;
                if (newer > want)
                    want = newer;
                if (!reload && want > sync->model.version)
                    continue;
            }
            /* Queries read notifications off the socket into libpq's queue, so the ones
             * that arrived during the build are already here: take them before waiting, or
             * the socket stays quiet and they wait for the next write. */
            long long v = drain_notifications(conn);
            int full_due = sync->model.loaded && sync->full_version < sync->model.version;
            if (v == -1 && full_due && atomic_exchange(&sync->full_wanted, 0)) {
                if (!build_full(sync, sync->last_read_ms)) {
                    atomic_store(&sync->full_wanted, 1); /* after the encode in flight */
                    if (wait_events(sync, PQsocket(conn), 20))
                        break;
                }
                continue;
            }
            if (v == -1 && full_due) {
                double left = FULL_DEFER_MS - (now_ms() - sync->full_due_since);
                if (left > 0) {
                    if (wait_events(sync, PQsocket(conn), (int)left + 1))
                        break;
                    v = drain_notifications(conn);
                }
                if (v == -1 && now_ms() - sync->full_due_since >= FULL_DEFER_MS) {
                    if (!build_full(sync, sync->last_read_ms) &&
                        wait_events(sync, PQsocket(conn), 20))
                        break;
                    continue;
                }
            } else if (v == -1) {
                if (wait_events(sync, PQsocket(conn), 30000))
                    break;
                v = drain_notifications(conn);
            }
            if (v == -2)
                goto lost;
            if (v > want)
                want = v;
            continue;
        lost:
            sl_warn("sync: lost the PostgreSQL connection; data planes keep the last snapshot");
            break;
        }
        cp_store_close(st);
        /* The full snapshot a change is waiting for needs no database: build it now, so data
         * planes that connect while PostgreSQL is away still get the newest config. */
        if (!atomic_load(&sync->stopping) && sync->model.loaded &&
            sync->full_version < sync->model.version)
            build_full(sync, sync->last_read_ms);
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
    if (cp_config_model_init(&sync->model)) {
        snprintf(err, errlen, "sync: out of memory");
        close(sync->wake[0]);
        close(sync->wake[1]);
        free(sync);
        return NULL;
    }
    sync->full_version = -1;
    sync->loop = loop;
    sync->settings = s;
    sync->cluster = cluster;
    pthread_mutex_init(&sync->lock, NULL);
    uv_async_init(loop, &sync->handoff, on_handoff);
    sync->handoff.data = sync;
    if (pthread_create(&sync->thread, NULL, sync_main, sync)) {
        snprintf(err, errlen, "sync: cannot start thread");
        cp_config_model_free(&sync->model);
        uv_close((uv_handle_t *)&sync->handoff, NULL);
        close(sync->wake[0]);
        close(sync->wake[1]);
        free(sync);
        return NULL;
    }
    return sync;
}

void cp_sync_want_full(void *arg)
{
    cp_sync *sync = arg;
    if (atomic_exchange(&sync->full_wanted, 1))
        return; /* already asked */
    ssize_t w = write(sync->wake[1], "f", 1);
    (void)w;
}

long long cp_sync_built_version(const cp_sync *sync)
{
    return atomic_load(&((cp_sync *)sync)->built_version);
}

static void free_sync(uv_handle_t *h)
{
    cp_sync *sync = h->data;
    for (size_t i = 0; i < sync->npending; i++)
        cp_snapshot_ref_release(sync->pending[i]);
    cp_config_model_free(&sync->model);
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
    if (sync->encoder_started)
        pthread_join(sync->encoder, NULL);
    uv_close((uv_handle_t *)&sync->handoff, free_sync);
}
