/* The rows changed after a version, read from the change log (sluice_changes, written by the
 * version triggers of migrations/003_change_capture.sql). REPEATABLE READ gives one view of the
 * version counter, the log and the entity tables, so the changes lead exactly to the version
 * read, as cp_store_read_config's whole config would. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_plane/store/store_internal.h"

static void oom(cp_store_error *err, const char *what)
{
    cp_store_error_clear(err);
    err->status = CP_STORE_DB;
    snprintf(err->message, sizeof(err->message), "out of memory reading %s", what);
}

/* The changed ids of one entity, as a PostgreSQL array literal "{id,id,...}" (ids are uuids
 * from the database: no quoting needed). Rows [from, to) of res, column 1. malloc'd. */
static char *id_array(const PGresult *res, int from, int to)
{
    size_t len = 3;
    for (int i = from; i < to; i++)
        len += (size_t)PQgetlength(res, i, 1) + 1;
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    *p++ = '{';
    for (int i = from; i < to; i++) {
        size_t n = (size_t)PQgetlength(res, i, 1);
        if (i > from)
            *p++ = ',';
        memcpy(p, PQgetvalue(res, i, 1), n);
        p += n;
    }
    *p++ = '}';
    *p = '\0';
    return s;
}

/* The result column of "id" in e's select list, or -1. */
static int id_column(const sl_entity *e)
{
    int col = 0;
    for (size_t i = 0; i < e->nfields; i++) {
        if (!cp_field_is_column(&e->fields[i]))
            continue;
        if (strcmp(e->fields[i].name, "id") == 0)
            return col;
        col++;
    }
    return -1;
}

/* Reads the current rows of entity e among ids [from, to) of the log result, appending rows
 * to out->upserts and the ids with no row to out->deletes. Returns 0 or -1 with err. */
static int read_entity(cp_store *st, const sl_entity *e, const PGresult *log, int from, int to,
                       cp_store_changes *out, cp_store_error *err)
{
    cp_sql q;
    cp_sql_init(&q);
    cp_sql_add(&q, "SELECT ");
    cp_sql_select_list(&q, e);
    cp_sql_add(&q, " FROM ");
    cp_sql_ident(&q, e->name);
    cp_sql_add(&q, " WHERE \"id\" = ANY($1::uuid[]) ORDER BY \"id\"");
    cp_params p;
    cp_params_init(&p);
    char *ids = id_array(log, from, to);
    int ok = ids && !q.oom && cp_params_add(&p, ids) > 0;
    free(ids);
    PGresult *res = ok ? cp_store_exec(st, q.s, &p) : NULL;
    cp_sql_free(&q);
    cp_params_free(&p);
    if (!ok) {
        oom(err, e->name);
        return -1;
    }
    if (!cp_result_ok(res)) {
        cp_store_db_error(st, res, err);
        PQclear(res);
        return -1;
    }
    json_t *rows = json_array(), *gone = json_array();
    int rc = rows && gone ? 0 : -1;
    /* Both lists are in uuid order (the order of their text): a changed id is either the next
     * row or gone. */
    int n = PQntuples(res), r = 0, idcol = id_column(e);
    for (int i = from; rc == 0 && i < to; i++) {
        const char *id = PQgetvalue(log, i, 1);
        if (r < n && idcol >= 0 && strcmp(PQgetvalue(res, r, idcol), id) == 0)
            rc = json_array_append_new(rows, cp_row_to_json(e, res, r++));
        else
            rc = json_array_append_new(gone, json_string(id));
    }
    PQclear(res);
    if (rc == 0) {
        out->nupserts += json_array_size(rows);
        out->ndeletes += json_array_size(gone);
        if (json_array_size(rows) && json_object_set(out->upserts, e->name, rows))
            rc = -1;
        if (json_array_size(gone) && json_object_set(out->deletes, e->name, gone))
            rc = -1;
    }
    json_decref(rows);
    json_decref(gone);
    if (rc)
        oom(err, e->name);
    return rc;
}

/* Reads inside the open transaction. Returns 0 (out filled or stale) or -1 with err. */
static int read_in_tx(cp_store *st, int64_t since, cp_store_changes *out, cp_store_error *err)
{
    PGresult *res = cp_store_exec(
        st, "SELECT config_version, changes_from FROM sluice_cluster WHERE id = 1", NULL);
    if (!cp_result_ok(res) || PQntuples(res) != 1) {
        cp_store_db_error(st, res, err);
        PQclear(res);
        return -1;
    }
    int64_t version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    int64_t from = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    out->version = version;
    if (since < from || since > version) {
        out->stale = 1;
        return 0;
    }
    if (since == version)
        return 0;

    char since_text[24], limit_text[24];
    snprintf(since_text, sizeof(since_text), "%lld", (long long)since);
    snprintf(limit_text, sizeof(limit_text), "%d", CP_STORE_MAX_CHANGES + 1);
    cp_params p;
    cp_params_init(&p);
    cp_params_add(&p, since_text);
    cp_params_add(&p, limit_text);
    res = p.n == 2 ? cp_store_exec(st,
                                   "SELECT entity, id::text FROM sluice_changes WHERE version > $1 "
                                   "ORDER BY entity, id LIMIT $2::int",
                                   &p)
                   : NULL;
    cp_params_free(&p);
    if (!cp_result_ok(res)) {
        cp_store_db_error(st, res, err);
        PQclear(res);
        return -1;
    }
    int n = PQntuples(res), rc = 0;
    if (n > CP_STORE_MAX_CHANGES) {
        out->stale = 1;
        PQclear(res);
        return 0;
    }
    /* One query per entity with changes; an entity name this build does not know (a table
     * of a newer migration) is not part of the config. */
    for (int i = 0; rc == 0 && i < n;) {
        int j = i + 1;
        while (j < n && strcmp(PQgetvalue(res, j, 0), PQgetvalue(res, i, 0)) == 0)
            j++;
        const sl_entity *e = sl_entity_by_name(PQgetvalue(res, i, 0));
        if (e)
            rc = read_entity(st, e, res, i, j, out, err);
        i = j;
    }
    PQclear(res);
    return rc;
}

int cp_store_read_changes(cp_store *st, int64_t since, cp_store_changes *out, cp_store_error *err)
{
    memset(out, 0, sizeof(*out));
    if (st->in_tx) {
        cp_store_error_clear(err);
        err->status = CP_STORE_DB;
        snprintf(err->message, sizeof(err->message),
                 "cannot read config changes inside another transaction");
        return CP_STORE_DB;
    }
    out->upserts = json_object();
    out->deletes = json_object();
    if (!out->upserts || !out->deletes) {
        cp_store_changes_free(out);
        oom(err, "config changes");
        return CP_STORE_DB;
    }
    PGresult *res = cp_store_exec(st, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL);
    int ok = cp_result_ok(res);
    if (!ok)
        cp_store_db_error(st, res, err);
    PQclear(res);
    if (!ok) {
        cp_store_changes_free(out);
        return CP_STORE_DB;
    }
    st->in_tx = 1;
    int rc = read_in_tx(st, since, out, err) == 0 ? CP_STORE_OK : CP_STORE_DB;
    /* Read-only: COMMIT only to learn of a lost connection. */
    if (rc == CP_STORE_OK && cp_store_commit(st, err))
        rc = CP_STORE_DB;
    cp_store_rollback(st);
    if (rc != CP_STORE_OK)
        cp_store_changes_free(out);
    return rc;
}

void cp_store_changes_free(cp_store_changes *c)
{
    json_decref(c->upserts);
    json_decref(c->deletes);
    memset(c, 0, sizeof(*c));
}
