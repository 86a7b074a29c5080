/* The whole configuration at one version, for snapshots. REPEATABLE READ gives one view of
 * every table and of the version counter, so a snapshot never mixes two versions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_plane/store/store_internal.h"

static const char version_sql[] = "SELECT config_version FROM sluice_cluster LIMIT 1";

static int64_t read_version(cp_store *st, cp_store_error *err)
{
    PGresult *res = cp_store_exec(st, version_sql, NULL);
    int64_t v = -1;
    if (!cp_result_ok(res)) {
        if (err)
            cp_store_db_error(st, res, err);
    } else {
        v = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
                                                          : 0;
    }
    PQclear(res);
    return v;
}

int64_t cp_store_config_version(cp_store *st)
{
    return read_version(st, NULL);
}

/* Every row of one entity table, ordered by id, as a new JSON array. */
static json_t *read_table(cp_store *st, const sl_entity *e, cp_store_error *err)
{
    cp_sql q;
    cp_sql_init(&q);
    cp_sql_add(&q, "SELECT ");
    cp_sql_select_list(&q, e);
    cp_sql_add(&q, " FROM ");
    cp_sql_ident(&q, e->name);
    cp_sql_add(&q, " ORDER BY \"id\"");
    PGresult *res = q.oom ? NULL : cp_store_exec(st, q.s, NULL);
    cp_sql_free(&q);
    json_t *arr = NULL;
    if (!cp_result_ok(res)) {
        cp_store_db_error(st, res, err);
    } else {
        arr = json_array();
        for (int i = 0; arr && i < PQntuples(res); i++)
            if (json_array_append_new(arr, cp_row_to_json(e, res, i))) {
                json_decref(arr);
                arr = NULL;
            }
        if (!arr) {
            cp_store_error_clear(err);
            err->status = CP_STORE_DB;
            snprintf(err->message, sizeof(err->message), "out of memory reading %s", e->name);
        }
    }
    PQclear(res);
    return arr;
}

int cp_store_read_config(cp_store *st, json_t **config, int64_t *version, cp_store_error *err)
{
    *config = NULL;
    *version = -1;
    if (st->in_tx) {
        cp_store_error_clear(err);
        err->status = CP_STORE_DB;
        snprintf(err->message, sizeof(err->message),
                 "cannot read the configuration inside another transaction");
        return CP_STORE_DB;
    }
    PGresult *res = cp_store_exec(st, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL);
    int ok = cp_result_ok(res);
    if (!ok)
        cp_store_db_error(st, res, err);
    PQclear(res);
    if (!ok)
        return CP_STORE_DB;
    st->in_tx = 1;

    json_t *cfg = json_object();
    int64_t v = read_version(st, err);
    int rc = cfg && v >= 0 ? CP_STORE_OK : CP_STORE_DB;
    if (!cfg) {
        cp_store_error_clear(err);
        err->status = CP_STORE_DB;
        snprintf(err->message, sizeof(err->message), "out of memory");
    }
    for (size_t i = 0; rc == CP_STORE_OK && i < sl_entity_count; i++) {
        json_t *rows = read_table(st, sl_entities[i], err);
        if (!rows || json_object_set_new(cfg, sl_entities[i]->name, rows))
            rc = CP_STORE_DB;
    }
    /* Read-only: ending with ROLLBACK or COMMIT is the same; COMMIT reports a lost connection. */
    if (rc == CP_STORE_OK && cp_store_commit(st, err))
        rc = CP_STORE_DB;
    cp_store_rollback(st);
    if (rc != CP_STORE_OK) {
        json_decref(cfg);
        return rc;
    }
    *config = cfg;
    *version = v;
    return CP_STORE_OK;
}
