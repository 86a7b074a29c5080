/* Paged listing with keyset pagination on id: a page costs the same however deep it is, and
 * rows inserted meanwhile never shift later pages. The offset is the last id seen, encoded so
 * callers treat it as opaque. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_plane/store/store_internal.h"

/* Kong lets a tag filter name a few tags; more is abuse, not a query. */
#define MAX_FILTER_TAGS 64

static int list_error(cp_store_error *err, cp_store_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int list_error(cp_store_error *err, cp_store_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cp_store_error_clear(err);
    err->status = status;
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return status;
}

/* Column position of field name in the select list, or -1. */
static int select_column(const sl_entity *e, const char *name)
{
    int col = 0;
    for (size_t i = 0; i < e->nfields; i++) {
        if (!cp_field_is_column(&e->fields[i]))
            continue;
        if (strcmp(e->fields[i].name, name) == 0)
            return col;
        col++;
    }
    return -1;
}

int cp_store_list(cp_store *st, const sl_entity *e, const cp_store_list_query *qry, json_t **rows,
                  char **next_offset, cp_store_error *err)
{
    *rows = NULL;
    *next_offset = NULL;
    int size = qry->size < 1 ? 100 : qry->size > 1000 ? 1000 : qry->size;
    char after[37];
    if (qry->offset && cp_offset_decode(qry->offset, after))
        return list_error(err, CP_STORE_OFFSET,
                          "'%.200s' is not a valid offset: bad base64 encoding", qry->offset);
    const sl_field *ff = NULL;
    if (qry->foreign) {
        ff = sl_entity_field(e, qry->foreign);
        if (!ff || ff->type != SL_T_FOREIGN)
            return list_error(err, CP_STORE_SCHEMA, "schema violation (%.100s: unknown field)",
                              qry->foreign);
        if (!cp_is_uuid(qry->foreign_id)) {
            *rows = json_array(); /* no row can reference a malformed id */
            return *rows ? CP_STORE_OK : list_error(err, CP_STORE_DB, "%s", "out of memory");
        }
    }
    if (qry->ntags > 0 && !sl_entity_field(e, "tags"))
        return list_error(err, CP_STORE_SCHEMA, "schema violation (tags: %s has no tags)", e->name);
    if (qry->ntags > MAX_FILTER_TAGS)
        return list_error(err, CP_STORE_SCHEMA, "%s", "invalid option (tags: too many tags)");

    cp_sql q;
    cp_params p;
    cp_sql_init(&q);
    cp_params_init(&p);
    cp_sql_add(&q, "SELECT ");
    cp_sql_select_list(&q, e);
    cp_sql_add(&q, " FROM ");
    cp_sql_ident(&q, e->name);
    cp_sql_add(&q, " WHERE TRUE");
    if (qry->offset)
        cp_sql_addf(&q, " AND \"id\" > $%d::uuid", cp_params_add(&p, after));
    if (qry->ntags > 0) {
        json_t *tags = json_array();
        for (int i = 0; tags && i < qry->ntags; i++)
            json_array_append_new(tags, json_string(qry->tags[i] ? qry->tags[i] : ""));
        char *text = tags ? json_dumps(tags, JSON_COMPACT) : NULL;
        json_decref(tags);
        /* @> : the row has every tag; && : it has at least one. */
        cp_sql_addf(&q, " AND \"tags\" %s ARRAY(SELECT jsonb_array_elements_text($%d::jsonb))",
                    qry->tags_or ? "&&" : "@>", cp_params_add(&p, text ? text : "[]"));
        free(text);
    }
    if (ff) {
        char col[128];
        cp_sql_add(&q, " AND ");
        cp_sql_ident(&q, cp_field_column(ff, col, sizeof(col)));
        cp_sql_addf(&q, " = $%d::uuid", cp_params_add(&p, qry->foreign_id));
    }
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", size + 1); /* one more row tells a next page exists */
    cp_sql_addf(&q, " ORDER BY \"id\" LIMIT $%d::integer", cp_params_add(&p, limit));

    int rc = CP_STORE_OK;
    PGresult *res = q.oom ? NULL : cp_store_exec(st, q.s, &p);
    if (!cp_result_ok(res)) {
        cp_store_map_error(st, e, NULL, res, 0, err);
        rc = err->status;
    } else {
        int n = PQntuples(res);
        int shown = n > size ? size : n;
        json_t *arr = json_array();
        for (int i = 0; arr && i < shown; i++)
            if (json_array_append_new(arr, cp_row_to_json(e, res, i))) {
                json_decref(arr);
                arr = NULL;
            }
        int idcol = select_column(e, "id");
        if (arr && n > size && idcol >= 0)
            *next_offset = cp_offset_encode(PQgetvalue(res, shown - 1, idcol));
        if (!arr || (n > size && !*next_offset)) {
            json_decref(arr);
            free(*next_offset);
            *next_offset = NULL;
            rc = list_error(err, CP_STORE_DB, "%s", "out of memory");
        } else {
            *rows = arr;
        }
    }
    PQclear(res);
    cp_sql_free(&q);
    cp_params_free(&p);
    return rc;
}
