#ifndef CP_STORE_INTERNAL_H
#define CP_STORE_INTERNAL_H

/* Shared by the store's files only: the connection struct, a growable SQL text buffer, the
 * parameter list, and the pure helpers that turn schema tables and JSON entities into SQL and
 * back. The pure helpers never touch a connection, so unit tests call them directly. */

#include <libpq-fe.h>
#include <stddef.h>

#include "control_plane/store/store.h"

struct cp_store {
    PGconn *conn;
    int in_tx; /* inside cp_store_begin: no silent reconnect, errors abort the transaction */
};

/* Largest number of parameters one statement takes: every field of an entity plus filters. */
#define CP_SQL_MAX_PARAMS 128

/* SQL text being built. oom is set (and the text dropped) when an allocation fails. */
typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} cp_sql;

/* Text parameters for PQexecParams; values are malloc'd (NULL means SQL NULL). */
typedef struct {
    int n;
    char *v[CP_SQL_MAX_PARAMS];
} cp_params;

void cp_sql_init(cp_sql *q);
void cp_sql_free(cp_sql *q);
void cp_sql_add(cp_sql *q, const char *text);
void cp_sql_addf(cp_sql *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends a double-quoted identifier; identifiers come only from the schema tables. */
void cp_sql_ident(cp_sql *q, const char *name);

void cp_params_init(cp_params *p);
void cp_params_free(cp_params *p);
/* Appends a copy of value (NULL: SQL NULL) and returns its 1-based number, or -1 when full. */
int cp_params_add(cp_params *p, const char *value);

/* Whether a field is stored in a column (transient fields are not). */
int cp_field_is_column(const sl_field *f);
/* The column name of a field ("service" -> "service_id") into buf; returns buf. */
const char *cp_field_column(const sl_field *f, char *buf, size_t len);

/* The select list for an entity: one expression per column field, in schema order, each
 * giving text that cp_value_from_text decodes. */
void cp_sql_select_list(cp_sql *q, const sl_entity *e);

/* Builds "INSERT ... RETURNING <select list>" for an entity; with upsert, adds
 * "ON CONFLICT (id) DO UPDATE" and a trailing boolean column telling whether a row was
 * inserted. Values come from the JSON entity as parameters. Returns 0, or -1 with a message
 * in err when a value has the wrong JSON type. */
int cp_sql_build_insert(const sl_entity *e, const json_t *entity, int upsert, cp_sql *q,
                        cp_params *p, char *err, size_t errlen);

/* Builds "UPDATE ... SET ... WHERE id = $1 RETURNING <select list>" (created_at kept,
 * updated_at now). Returns 0, or -1 with err. */
int cp_sql_build_update(const sl_entity *e, const json_t *entity, cp_sql *q, cp_params *p,
                        char *err, size_t errlen);

/* Converts one JSON value of a field into its text parameter. *out is malloc'd or NULL for
 * SQL NULL. Returns 0, or -1 with err for a value of the wrong JSON type. */
int cp_value_to_param(const sl_field *f, const json_t *value, char **out, char *err, size_t errlen);

/* Decodes the text a select-list expression produced into the field's JSON value (new
 * reference). NULL text gives JSON null. */
json_t *cp_value_from_text(const sl_field *f, const char *text);

/* Converts row `row` of a result whose first columns are the select list into Admin API
 * JSON, fields in schema order. New reference, or NULL when out of memory. */
json_t *cp_row_to_json(const sl_entity *e, const PGresult *res, int row);

/* Whether s is a canonical uuid (8-4-4-4-12 hex digits). */
int cp_is_uuid(const char *s);

/* Opaque list offsets: URL-safe base64 of the last id. encode returns malloc'd text;
 * decode writes the uuid into out (37 bytes) and returns 0, or -1 when malformed. */
char *cp_offset_encode(const char *id);
int cp_offset_decode(const char *offset, char out[37]);

/* Writes a JSON value the way Kong's error messages print Lua tables (penlight's
 * pretty.write with no indent): {name="x"}, {id="..."}, keys sorted. Returns malloc'd text. */
char *cp_lua_pretty(const json_t *v);

/* Finds which unique key of e a violated constraint is, from the constraint name (PostgreSQL's
 * default "<table>_<columns>_key", or "<table>_pkey") or else the "Key (cols)=..." detail.
 * Writes up to max field pointers into out and returns their count (0 when unknown). */
int cp_unique_key_fields(const sl_entity *e, const char *constraint, const char *detail,
                         const sl_field **out, int max);

/* The FOREIGN field of e a foreign-key constraint is about ("<table>_<col>_fkey" or the
 * detail's "Key (col)=..."), or NULL. */
const sl_field *cp_foreign_field_for(const sl_entity *e, const char *constraint,
                                     const char *detail);

/* Fills err from a failed result: unique, foreign-key and connection errors are mapped to
 * Kong's codes and messages; entity (may be NULL) gives the values of the offending key.
 * deleting tells that a 23503 came from a delete (CP_STORE_REFERENCED). */
void cp_store_map_error(cp_store *st, const sl_entity *e, const json_t *entity, const PGresult *res,
                        int deleting, cp_store_error *err);

/* Runs a parameterised statement. Outside a transaction a broken connection is reset and
 * the statement retried once. Returns the result (caller PQclear's), which may be NULL. */
PGresult *cp_store_exec(cp_store *st, const char *sql, const cp_params *p);

/* Whether a result succeeded (tuples or command ok). */
int cp_result_ok(const PGresult *res);

/* Sets err to a plain database error with the connection's message. */
void cp_store_db_error(cp_store *st, const PGresult *res, cp_store_error *err);

#endif
