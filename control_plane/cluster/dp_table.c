#include "control_plane/cluster/dp_table.h"

#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control_plane/store/store.h"
#include "proto/log.h"

#define QUEUE_MAX 4096       /* distinct data planes waiting to be written */
#define PURGE_EVERY_S 60     /* how often rows past the purge delay are deleted */
#define BACKOFF_FIRST_MS 250 /* first retry after PostgreSQL went away */
#define BACKOFF_MAX_MS 10000
#define STOP_FLUSH_S 2 /* at stop, queued rows get this long to reach the database */
#define STR2(x) #x
#define STR(x) STR2(x)
#define STALE_TEXT STR(CP_DP_TABLE_STALE_S)

struct cp_dp_table {
    const sl_settings *settings;
    char cp_node_id[37];
    long long purge_delay_s;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int stopping;
    cp_dp_row *q; /* QUEUE_MAX slots; one per data plane at most */
    size_t n;
    unsigned long dropped; /* rows refused because the queue was full */
};

static void row_clear(cp_dp_row *r)
{
    free(r->error);
    r->error = NULL;
}

/* Takes ownership of *row (its error string) into the queue; the lock is held. */
static int enqueue_locked(cp_dp_table *t, cp_dp_row *row)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->q[i].id, row->id) == 0) {
            row_clear(&t->q[i]);
            t->q[i] = *row;
            return 0;
        }
    }
    if (t->n >= QUEUE_MAX) {
        if (t->dropped++ % 1000 == 0)
            sl_warn("cluster: %d data planes wait to be written to clustering_data_planes; "
                    "dropping the update of %s",
                    QUEUE_MAX, row->id);
        row_clear(row);
        return -1;
    }
    t->q[t->n++] = *row;
    return 0;
}

int cp_dp_table_put(cp_dp_table *t, const cp_dp_row *row)
{
    if (!t)
        return -1;
    cp_dp_row copy = *row;
    copy.error = row->error ? strdup(row->error) : NULL;
    pthread_mutex_lock(&t->mu);
    int rc = enqueue_locked(t, &copy);
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static const char UPSERT_SQL[] =
    "INSERT INTO clustering_data_planes (id, hostname, ip, version, config_hash, "
    "config_version, last_seen, sync_status, error, cp_node_id, connected, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7), $8, $9::jsonb, $10, $11, now()) "
    "ON CONFLICT (id) DO UPDATE SET hostname = EXCLUDED.hostname, ip = EXCLUDED.ip, "
    "version = EXCLUDED.version, config_hash = EXCLUDED.config_hash, "
    "config_version = EXCLUDED.config_version, last_seen = EXCLUDED.last_seen, "
    "sync_status = EXCLUDED.sync_status, error = EXCLUDED.error, "
    "cp_node_id = EXCLUDED.cp_node_id, connected = EXCLUDED.connected, updated_at = now() "
    /* A replica whose connection to this data plane closed must not overwrite the row of
     * the replica it has reconnected to. */
    "WHERE EXCLUDED.connected OR NOT clustering_data_planes.connected "
    "OR clustering_data_planes.cp_node_id = EXCLUDED.cp_node_id "
    "OR clustering_data_planes.last_seen < now() - interval '" STALE_TEXT " seconds'";

/* Writes one row. 0, or -1 (logged) when the statement failed. */
static int write_row(cp_dp_table *t, PGconn *conn, const cp_dp_row *r)
{
    char cver[24], seen[24];
    snprintf(cver, sizeof(cver), "%lld", (long long)r->config_version);
    snprintf(seen, sizeof(seen), "%lld", (long long)r->last_seen);
    const char *vals[11] = {r->id,
                            r->hostname,
                            r->ip,
                            r->version,
                            r->config_hash,
                            cver,
                            seen,
                            r->sync_status,
                            r->error,
                            t->cp_node_id,
                            r->connected ? "true" : "false"};
    PGresult *res = PQexecParams(conn, UPSERT_SQL, 11, NULL, vals, NULL, NULL, 0);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok && PQstatus(conn) == CONNECTION_OK)
        sl_warn("cluster: cannot record data plane %s: %s", r->id, PQresultErrorMessage(res));
    PQclear(res);
    return ok ? 0 : -1;
}

static void purge(cp_dp_table *t, PGconn *conn)
{
    char delay[24];
    snprintf(delay, sizeof(delay), "%lld", t->purge_delay_s);
    const char *vals[1] = {delay};
    PGresult *res = PQexecParams(conn,
                                 "DELETE FROM clustering_data_planes WHERE last_seen < now() - "
                                 "$1::bigint * interval '1 second'",
                                 1, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        const char *n = PQcmdTuples(res);
        if (n && *n && strcmp(n, "0") != 0)
            sl_info("cluster: purged %s data planes not seen for %lld s", n, t->purge_delay_s);
    }
    PQclear(res);
}

static struct timespec deadline_in_ms(long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static time_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* Puts back the rows a failed batch did not write, unless a newer row of the same data plane
 * was queued meanwhile. */
static void requeue(cp_dp_table *t, cp_dp_row *batch, size_t from, size_t n)
{
    pthread_mutex_lock(&t->mu);
    for (size_t i = from; i < n; i++) {
        int newer = 0;
        for (size_t j = 0; j < t->n; j++)
            if (strcmp(t->q[j].id, batch[i].id) == 0)
                newer = 1;
        if (newer)
            row_clear(&batch[i]);
        else
            enqueue_locked(t, &batch[i]);
    }
    pthread_mutex_unlock(&t->mu);
}

static void *writer_main(void *arg)
{
    cp_dp_table *t = arg;
    cp_store *st = NULL;
    cp_dp_row *batch = malloc(QUEUE_MAX * sizeof(*batch));
    long backoff_ms = BACKOFF_FIRST_MS;
    time_t next_purge = 0;
    time_t stop_by = 0;
    if (!batch)
        return NULL;
    for (;;) {
        pthread_mutex_lock(&t->mu);
        long wait_ms = st ? 1000L * PURGE_EVERY_S : backoff_ms;
        while (!t->stopping && t->n == 0) {
            struct timespec dl = deadline_in_ms(wait_ms);
            if (pthread_cond_timedwait(&t->cond, &t->mu, &dl) == ETIMEDOUT)
                break;
        }
        if (t->stopping && !stop_by)
            stop_by = mono_s() + STOP_FLUSH_S;
        size_t n = t->n;
        memcpy(batch, t->q, n * sizeof(*batch));
        t->n = 0;
        int stopping = t->stopping;
        pthread_mutex_unlock(&t->mu);

        if (stopping && (n == 0 || mono_s() > stop_by)) {
            for (size_t i = 0; i < n; i++)
                row_clear(&batch[i]);
            break;
        }
        if (!st) {
            char err[1024];
            st = cp_store_connect(t->settings, err, sizeof(err));
            if (!st) {
                sl_info("cluster: data plane registry not written: %s (retrying in %ld ms)", err,
                        backoff_ms);
                requeue(t, batch, 0, n);
                backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms * 2;
                if (stopping)
                    break;
                /* The wait at the top sleeps the backoff unless rows keep arriving; sleep it
                 * here so a busy queue does not turn into a connect loop. */
                pthread_mutex_lock(&t->mu);
                struct timespec dl = deadline_in_ms(backoff_ms);
                while (!t->stopping && pthread_cond_timedwait(&t->cond, &t->mu, &dl) != ETIMEDOUT)
                    ;
                pthread_mutex_unlock(&t->mu);
                continue;
            }
            backoff_ms = BACKOFF_FIRST_MS;
        }
        PGconn *conn = cp_store_conn(st);
        size_t done = 0;
        for (; done < n; done++) {
            if (write_row(t, conn, &batch[done]) && PQstatus(conn) != CONNECTION_OK)
                break;
            row_clear(&batch[done]);
        }
        if (done < n || PQstatus(conn) != CONNECTION_OK) {
            sl_info("cluster: lost PostgreSQL while recording data planes; will retry");
            requeue(t, batch, done, n);
            cp_store_close(st);
            st = NULL;
            continue;
        }
        if (!stopping && mono_s() >= next_purge) {
            purge(t, conn);
            next_purge = mono_s() + PURGE_EVERY_S;
        }
    }
    cp_store_close(st);
    free(batch);
    return NULL;
}

cp_dp_table *cp_dp_table_start(const sl_settings *s, const char *cp_node_id, char *err,
                               size_t errlen)
{
    cp_dp_table *t = calloc(1, sizeof(*t));
    if (t)
        t->q = calloc(QUEUE_MAX, sizeof(*t->q));
    if (!t || !t->q) {
        free(t);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->settings = s;
    snprintf(t->cp_node_id, sizeof(t->cp_node_id), "%s", cp_node_id);
    t->purge_delay_s = sl_settings_int(s, "cluster_data_plane_purge_delay");
    if (t->purge_delay_s < 60)
        t->purge_delay_s = 60;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cond, NULL);
    if (pthread_create(&t->thread, NULL, writer_main, t)) {
        snprintf(err, errlen, "cannot start the data plane registry writer thread");
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cond);
        free(t->q);
        free(t);
        return NULL;
    }
    return t;
}

void cp_dp_table_stop(cp_dp_table *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stopping = 1;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    for (size_t i = 0; i < t->n; i++)
        row_clear(&t->q[i]);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cond);
    free(t->q);
    free(t);
}

static json_t *text_or_null(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null() : json_string(PQgetvalue(res, row, col));
}

json_t *cp_dp_table_list(struct pg_conn *conn, int size, const char *after, int *more, char *err,
                         size_t errlen)
{
    if (size < 1)
        size = 1;
    if (size > 1000)
        size = 1000;
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", size + 1);
    const char *vals[2] = {after, limit};
    PGresult *res = PQexecParams(
        conn,
        "SELECT id, hostname, ip, version, config_version, config_hash, "
        "extract(epoch FROM last_seen)::bigint, extract(epoch FROM updated_at)::bigint, "
        "sync_status, connected AND last_seen > now() - interval '" STALE_TEXT " seconds', "
        "error::text, cp_node_id FROM clustering_data_planes "
        "WHERE $1::uuid IS NULL OR id > $1::uuid ORDER BY id LIMIT $2::int",
        2, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQresultErrorMessage(res));
        PQclear(res);
        return NULL;
    }
    int rows = PQntuples(res);
    *more = rows > size;
    if (rows > size)
        rows = size;
    json_t *arr = json_array();
    for (int i = 0; arr && i < rows; i++) {
        json_t *error = NULL;
        if (!PQgetisnull(res, i, 10))
            error = json_loads(PQgetvalue(res, i, 10), 0, NULL);
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:I, s:s, s:b, s:o, s:o}", "id",
                      PQgetvalue(res, i, 0), "hostname", PQgetvalue(res, i, 1), "ip",
                      PQgetvalue(res, i, 2), "version", PQgetvalue(res, i, 3), "config_version",
                      (json_int_t)strtoll(PQgetvalue(res, i, 4), NULL, 10), "config_hash",
                      PQgetvalue(res, i, 5), "last_seen",
                      (json_int_t)strtoll(PQgetvalue(res, i, 6), NULL, 10), "updated_at",
                      (json_int_t)strtoll(PQgetvalue(res, i, 7), NULL, 10), "sync_status",
                      PQgetvalue(res, i, 8), "connected", PQgetvalue(res, i, 9)[0] == 't', "error",
                      error ? error : json_null(), "cp_node_id", text_or_null(res, i, 11));
        if (o)
            json_array_append_new(arr, o);
    }
    PQclear(res);
    return arr;
}
