/* Single-row reads and writes, schema-driven: sql.c builds the statement from the entity's
 * fields, PostgreSQL enforces keys, errors.c phrases its refusals the way Kong does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_plane/store/store_internal.h"

static void not_found(cp_store_error *err)
{
    cp_store_error_clear(err);
    err->status = CP_STORE_NOT_FOUND;
    snprintf(err->message, sizeof(err->message), "Not found");
}

static void build_error(const char *why, cp_store_error *err)
{
    cp_store_error_clear(err);
    err->status = CP_STORE_SCHEMA;
    snprintf(err->message, sizeof(err->message), "schema violation (%s)", why);
}

/* Runs a statement returning at most one row in select-list shape; *out gets it or stays
 * NULL when there is none. extra_bool, when not NULL, reads one boolean column after it. */
static int exec_row(cp_store *st, const sl_entity *e, const json_t *entity, const char *sql,
                    const cp_params *p, json_t **out, int *extra_bool, int deleting,
                    cp_store_error *err)
{
    PGresult *res = cp_store_exec(st, sql, p);
    if (!cp_result_ok(res)) {
        cp_store_map_error(st, e, entity, res, deleting, err);
        PQclear(res);
        return -1;
    }
    if (out)
        *out = NULL;
    if (PQntuples(res) > 0) {
        if (out) {
            *out = cp_row_to_json(e, res, 0);
            if (!*out) {
                PQclear(res);
                cp_store_error_clear(err);
                err->status = CP_STORE_DB;
                snprintf(err->message, sizeof(err->message), "out of memory");
                return -1;
            }
        }
        if (extra_bool) {
            int col = PQnfields(res) - 1;
            *extra_bool = !PQgetisnull(res, 0, col) && PQgetvalue(res, 0, col)[0] == 't';
        }
    }
    PQclear(res);
    return 0;
}

/* SELECT <list> FROM <table> WHERE <column> = $1 */
static int select_by(cp_store *st, const sl_entity *e, const sl_field *f, const char *value,
                     json_t **out, cp_store_error *err)
{
    cp_sql q;
    cp_params p;
    char col[128];
    cp_sql_init(&q);
    cp_params_init(&p);
    cp_sql_add(&q, "SELECT ");
    cp_sql_select_list(&q, e);
    cp_sql_add(&q, " FROM ");
    cp_sql_ident(&q, e->name);
    cp_sql_add(&q, " WHERE ");
    cp_sql_ident(&q, cp_field_column(f, col, sizeof(col)));
    cp_sql_add(&q, f->type == SL_T_UUID ? " = $1::uuid" : " = $1");
    cp_sql_add(&q, " ORDER BY \"id\" LIMIT 1");
    int rc;
    if (q.oom || cp_params_add(&p, value) < 0) {
        build_error("out of memory", err);
        rc = -1;
    } else {
        rc = exec_row(st, e, NULL, q.s, &p, out, NULL, 0, err);
    }
    cp_sql_free(&q);
    cp_params_free(&p);
    return rc;
}

int cp_store_get(cp_store *st, const sl_entity *e, const char *id_or_key, json_t **out,
                 cp_store_error *err)
{
    *out = NULL;
    const sl_field *id = sl_entity_field(e, "id");
    if (id && cp_is_uuid(id_or_key) && select_by(st, e, id, id_or_key, out, err))
        return err->status;
    if (!*out && e->endpoint_key) {
        const sl_field *key = sl_entity_field(e, e->endpoint_key);
        if (key && select_by(st, e, key, id_or_key, out, err))
            return err->status;
    }
    if (!*out) {
        not_found(err);
        return CP_STORE_NOT_FOUND;
    }
    return CP_STORE_OK;
}

static int write_row(cp_store *st, const sl_entity *e, const json_t *entity, int mode, json_t **out,
                     int *created, cp_store_error *err)
{
    cp_sql q;
    cp_params p;
    char why[256];
    json_t *row = NULL;
    cp_sql_init(&q);
    cp_params_init(&p);
    int rc = mode == 2 ? cp_sql_build_update(e, entity, &q, &p, why, sizeof(why))
                       : cp_sql_build_insert(e, entity, mode == 1, &q, &p, why, sizeof(why));
    if (rc) {
        build_error(why, err);
        rc = err->status;
    } else if (mode == 2 && !cp_is_uuid(json_string_value(json_object_get(entity, "id")))) {
        not_found(err);
        rc = CP_STORE_NOT_FOUND;
    } else if (exec_row(st, e, entity, q.s, &p, &row, created, 0, err)) {
        rc = err->status;
    } else if (!row) {
        not_found(err);
        rc = CP_STORE_NOT_FOUND;
    } else {
        rc = CP_STORE_OK;
    }
    cp_sql_free(&q);
    cp_params_free(&p);
    if (out)
        *out = row;
    else
        json_decref(row);
    return rc;
}

int cp_store_insert(cp_store *st, const sl_entity *e, const json_t *entity, json_t **out,
                    cp_store_error *err)
{
    return write_row(st, e, entity, 0, out, NULL, err);
}

int cp_store_update(cp_store *st, const sl_entity *e, const json_t *entity, json_t **out,
                    cp_store_error *err)
{
    return write_row(st, e, entity, 2, out, NULL, err);
}

int cp_store_upsert(cp_store *st, const sl_entity *e, const json_t *entity, json_t **out,
                    int *created, cp_store_error *err)
{
    int made = 0;
    int rc = write_row(st, e, entity, 1, out, &made, err);
    if (created)
        *created = made;
    return rc;
}

int cp_store_delete(cp_store *st, const sl_entity *e, const char *id, cp_store_error *err)
{
    if (!cp_is_uuid(id))
        return CP_STORE_OK; /* no row can have it: deleting nothing succeeds, like Kong */
    cp_sql q;
    cp_params p;
    cp_sql_init(&q);
    cp_params_init(&p);
    cp_sql_add(&q, "DELETE FROM ");
    cp_sql_ident(&q, e->name);
    cp_sql_add(&q, " WHERE \"id\" = $1::uuid");
    int rc;
    if (q.oom || cp_params_add(&p, id) < 0) {
        build_error("out of memory", err);
        rc = err->status;
    } else {
        rc = exec_row(st, e, NULL, q.s, &p, NULL, NULL, 1, err) ? err->status : CP_STORE_OK;
    }
    cp_sql_free(&q);
    cp_params_free(&p);
    return rc;
}
