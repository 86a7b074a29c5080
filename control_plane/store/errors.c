/* PostgreSQL errors into Kong's error shapes. PostgreSQL enforces unique and foreign keys;
 * this file only recognises which schema key a violated constraint is (by name, else by the
 * error's "Key (...)" detail) and phrases the error the way kong/db/errors.lua does. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/sort.h"
#include "control_plane/store/store_internal.h"

void cp_store_error_clear(cp_store_error *err)
{
    if (!err)
        return;
    json_decref(err->fields);
    err->fields = NULL;
    err->status = CP_STORE_OK;
    err->message[0] = '\0';
}

/* ---- penlight-style printing of Lua tables ---- */

static int lua_ident(const char *k)
{
    static const char *const keywords[] = {
        "and",      "break",  "do",   "else", "elseif", "end",   "false", "for",
        "function", "goto",   "if",   "in",   "local",  "nil",   "not",   "or",
        "repeat",   "return", "then", "true", "until",  "while", NULL};
    if (!(isalpha((unsigned char)k[0]) || k[0] == '_'))
        return 0;
    for (const char *c = k; *c; c++)
        if (!(isalnum((unsigned char)*c) || *c == '_'))
            return 0;
    for (int i = 0; keywords[i]; i++)
        if (strcmp(k, keywords[i]) == 0)
            return 0;
    return 1;
}

static void lua_quote(cp_sql *q, const char *s)
{
    cp_sql_add(q, "\"");
    for (const char *c = s; *c; c++) {
        char one[8];
        if (*c == '"' || *c == '\\')
            snprintf(one, sizeof(one), "\\%c", *c);
        else if (*c == '\n')
            snprintf(one, sizeof(one), "\\n");
        else if ((unsigned char)*c < 32)
            snprintf(one, sizeof(one), "\\%d", (unsigned char)*c);
        else
            snprintf(one, sizeof(one), "%c", *c);
        cp_sql_add(q, one);
    }
    cp_sql_add(q, "\"");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void lua_write(cp_sql *q, const json_t *v, int depth)
{
    if (depth > 16) { /* entity values are shallow; deeper means a cycle or abuse */
        cp_sql_add(q, "...");
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v);
        const char **keys = n ? malloc(n * sizeof(*keys)) : NULL;
        size_t k = 0;
        const char *key;
        json_t *val;
        if (n && !keys) {
            q->oom = 1;
            return;
        }
        json_object_foreach((json_t *)v, key, val) keys[k++] = key;
        sl_sort(keys, k, sizeof(*keys), cmp_str);
        cp_sql_add(q, "{");
        for (size_t i = 0; i < k; i++) {
            if (i)
                cp_sql_add(q, ",");
            if (lua_ident(keys[i])) {
                cp_sql_add(q, keys[i]);
            } else {
                cp_sql_add(q, "[");
                lua_quote(q, keys[i]);
                cp_sql_add(q, "]");
            }
            cp_sql_add(q, "=");
            lua_write(q, json_object_get(v, keys[i]), depth + 1);
        }
        cp_sql_add(q, "}");
        free(keys);
        break;
    }
    case JSON_ARRAY:
        cp_sql_add(q, "{");
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                cp_sql_add(q, ",");
            lua_write(q, json_array_get(v, i), depth + 1);
        }
        cp_sql_add(q, "}");
        break;
    case JSON_STRING:
        lua_quote(q, json_string_value(v));
        break;
    case JSON_INTEGER:
        cp_sql_addf(q, "%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        cp_sql_addf(q, "%.14g", json_real_value(v));
        break;
    case JSON_TRUE:
        cp_sql_add(q, "true");
        break;
    case JSON_FALSE:
        cp_sql_add(q, "false");
        break;
    case JSON_NULL:
        cp_sql_add(q, "null");
        break;
    }
}

char *cp_lua_pretty(const json_t *v)
{
    cp_sql q;
    cp_sql_init(&q);
    lua_write(&q, v, 0);
    if (q.oom) {
        cp_sql_free(&q);
        return NULL;
    }
    return q.s ? q.s : strdup("");
}

/* ---- which schema key a constraint is ---- */

/* The identifiers inside the "Key (...)=" part of a detail, as a list of tokens. */
static int detail_tokens(const char *detail, char tokens[][64], int max)
{
    const char *p = detail ? strstr(detail, "Key (") : NULL;
    if (!p)
        return 0;
    p += 5;
    int depth = 1, n = 0;
    while (*p && depth > 0) {
        if (*p == '(') {
            depth++;
            p++;
        } else if (*p == ')') {
            depth--;
            p++;
        } else if (*p == '\'') { /* literals inside expressions are not column names */
            for (p++; *p && *p != '\''; p++)
                ;
            if (*p)
                p++;
        } else if (isalnum((unsigned char)*p) || *p == '_' || *p == '"') {
            char tok[64];
            size_t len = 0;
            int quoted = *p == '"';
            if (quoted)
                p++;
            while (*p && (quoted ? *p != '"' : (isalnum((unsigned char)*p) || *p == '_'))) {
                if (len + 1 < sizeof(tok))
                    tok[len++] = *p;
                p++;
            }
            if (quoted && *p)
                p++;
            tok[len] = '\0';
            if (n < max)
                snprintf(tokens[n++], 64, "%s", tok);
        } else {
            p++;
        }
    }
    return n;
}

static int has_token(char tokens[][64], int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(tokens[i], name) == 0)
            return 1;
    return 0;
}

/* PostgreSQL's default name for a constraint over cols: "<table>_<col>_<col>_<suffix>",
 * cut to 63 bytes like any identifier. */
static int constraint_is(const char *constraint, const sl_entity *e, const sl_field **fields, int n,
                         const char *suffix)
{
    char name[256];
    size_t len = (size_t)snprintf(name, sizeof(name), "%s", e->name);
    for (int i = 0; i < n && len < sizeof(name); i++) {
        char col[128];
        len += (size_t)snprintf(name + len, sizeof(name) - len, "_%s",
                                cp_field_column(fields[i], col, sizeof(col)));
    }
    if (len < sizeof(name))
        snprintf(name + len, sizeof(name) - len, "_%s", suffix);
    name[63] = '\0';
    return constraint && strcmp(constraint, name) == 0;
}

int cp_unique_key_fields(const sl_entity *e, const char *constraint, const char *detail,
                         const sl_field **out, int max)
{
    /* Candidate keys: the primary key, each unique field, the unique-together set. */
    const sl_field *cands[64][16];
    int ncols[64];
    int nc = 0;
    const sl_field *id = sl_entity_field(e, "id");
    for (size_t i = 0; i < e->nfields && nc < 63; i++)
        if (e->fields[i].flags & SL_F_UNIQUE) {
            cands[nc][0] = &e->fields[i];
            ncols[nc++] = 1;
        }
    if (e->unique_together) {
        int k = 0;
        for (int i = 0; e->unique_together[i] && k < 16; i++) {
            const sl_field *f = sl_entity_field(e, e->unique_together[i]);
            if (f)
                cands[nc][k++] = f;
        }
        if (k)
            ncols[nc++] = k;
    }
    int found = -1;
    if (constraint && id && strncmp(constraint, e->name, strlen(e->name)) == 0 &&
        strcmp(constraint + strlen(e->name), "_pkey") == 0) {
        if (max > 0)
            out[0] = id;
        return max > 0;
    }
    for (int c = 0; c < nc && found < 0; c++)
        if (constraint_is(constraint, e, cands[c], ncols[c], "key"))
            found = c;
    if (found < 0) {
        char tokens[32][64];
        int nt = detail_tokens(detail, tokens, 32);
        int best = 0;
        for (int c = 0; c < nc; c++) {
            int all = 1;
            for (int k = 0; k < ncols[c] && all; k++) {
                char col[128];
                all = has_token(tokens, nt, cp_field_column(cands[c][k], col, sizeof(col)));
            }
            if (all && ncols[c] > best) {
                best = ncols[c];
                found = c;
            }
        }
        if (found < 0 && id && nt == 1 && has_token(tokens, nt, "id")) {
            if (max > 0)
                out[0] = id;
            return max > 0;
        }
    }
    if (found < 0)
        return 0;
    int n = 0;
    for (int k = 0; k < ncols[found] && n < max; k++)
        out[n++] = cands[found][k];
    return n;
}

const sl_field *cp_foreign_field_for(const sl_entity *e, const char *constraint, const char *detail)
{
    for (size_t i = 0; i < e->nfields; i++) {
        const sl_field *f = &e->fields[i];
        if (f->type == SL_T_FOREIGN && constraint_is(constraint, e, &f, 1, "fkey"))
            return f;
    }
    char tokens[8][64];
    int nt = detail_tokens(detail, tokens, 8);
    for (size_t i = 0; i < e->nfields; i++) {
        const sl_field *f = &e->fields[i];
        char col[128];
        if (f->type == SL_T_FOREIGN && has_token(tokens, nt, cp_field_column(f, col, sizeof(col))))
            return f;
    }
    return NULL;
}

/* ---- filling cp_store_error ---- */

/* Copies a server message into dst on one line, without trailing whitespace. */
static void one_line(char *dst, size_t len, const char *src)
{
    size_t o = 0;
    int space = 0;
    for (const char *c = src ? src : ""; *c && o + 1 < len; c++) {
        if (isspace((unsigned char)*c)) {
            space = o > 0;
            continue;
        }
        if (space && o + 2 < len)
            dst[o++] = ' ';
        space = 0;
        dst[o++] = *c;
    }
    dst[o] = '\0';
}

void cp_store_db_error(cp_store *st, const PGresult *res, cp_store_error *err)
{
    char reason[400];
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg || !*msg)
        msg = res ? PQresultErrorMessage(res) : NULL;
    if ((!msg || !*msg) && st && st->conn)
        msg = PQerrorMessage(st->conn);
    one_line(reason, sizeof(reason), msg && *msg ? msg : "unknown error");
    cp_store_error_clear(err);
    err->status = CP_STORE_DB;
    if (st && st->conn && PQstatus(st->conn) == CONNECTION_BAD)
        snprintf(err->message, sizeof(err->message), "database unreachable: %s", reason);
    else
        snprintf(err->message, sizeof(err->message), "database error: %s", reason);
}

static void unique_error(const sl_entity *e, const json_t *entity, const PGresult *res,
                         cp_store_error *err)
{
    const sl_field *key[16];
    int n = cp_unique_key_fields(e, PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME),
                                 PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL), key, 16);
    err->status = CP_STORE_UNIQUE;
    if (n == 0) {
        char detail[300];
        one_line(detail, sizeof(detail), PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
        snprintf(err->message, sizeof(err->message), "UNIQUE violation detected on '%s'", detail);
        return;
    }
    json_t *fields = json_object();
    for (int i = 0; fields && i < n; i++) {
        json_t *v = entity ? json_object_get(entity, key[i]->name) : NULL;
        json_object_set_new(fields, key[i]->name, v ? json_deep_copy(v) : json_null());
    }
    char *pretty = fields ? cp_lua_pretty(fields) : NULL;
    snprintf(err->message, sizeof(err->message), "UNIQUE violation detected on '%s'",
             pretty ? pretty : "");
    free(pretty);
    err->fields = fields;
}

static void foreign_error(const sl_entity *e, const json_t *entity, const PGresult *res,
                          cp_store_error *err)
{
    const sl_field *f = cp_foreign_field_for(e, PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME),
                                             PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
    err->status = CP_STORE_FOREIGN;
    if (!f) {
        char reason[300];
        one_line(reason, sizeof(reason), PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
        snprintf(err->message, sizeof(err->message), "foreign key violation: %s", reason);
        return;
    }
    const json_t *v = entity ? json_object_get(entity, f->name) : NULL;
    json_t *key = json_is_object(v) ? json_deep_copy(v) : json_pack("{s:O?}", "id", (json_t *)v);
    char *pretty = key ? cp_lua_pretty(key) : NULL;
    json_decref(key);
    snprintf(err->message, sizeof(err->message),
             "the foreign key '%s' does not reference an existing '%s' entity.",
             pretty ? pretty : "", f->ref ? f->ref : "");
    free(pretty);
    err->fields = json_pack("{s:s}", f->name, err->message);
}

static void referenced_error(const sl_entity *e, const PGresult *res, cp_store_error *err)
{
    /* PostgreSQL reports the referencing table as the error's table; the detail names it too
     * ("... is still referenced from table \"routes\"."). */
    char child[64] = "";
    const char *table = PQresultErrorField(res, PG_DIAG_TABLE_NAME);
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    const char *from = detail ? strstr(detail, "from table \"") : NULL;
    if (table && strcmp(table, e->name) != 0) {
        snprintf(child, sizeof(child), "%s", table);
    } else if (from) {
        from += strlen("from table \"");
        size_t n = strcspn(from, "\"");
        snprintf(child, sizeof(child), "%.*s", (int)(n < 63 ? n : 63), from);
    } else if (table) {
        snprintf(child, sizeof(child), "%s", table);
    }
    err->status = CP_STORE_REFERENCED;
    snprintf(err->message, sizeof(err->message),
             "an existing '%s' entity references this '%s' entity", child, e->name);
    err->fields = json_pack("{s:s}", "@referenced_by", child);
}

/* A NOT NULL column left empty: the entity skipped validation (declarative import of a
 * partial row); say which field, as schema validation would. */
static void not_null_error(const sl_entity *e, const PGresult *res, cp_store_error *err)
{
    const char *col = PQresultErrorField(res, PG_DIAG_COLUMN_NAME);
    const char *name = col ? col : "?";
    for (size_t i = 0; col && i < e->nfields; i++) {
        char c[128];
        if (strcmp(cp_field_column(&e->fields[i], c, sizeof(c)), col) == 0)
            name = e->fields[i].name;
    }
    err->status = CP_STORE_SCHEMA;
    snprintf(err->message, sizeof(err->message),
             "schema violation (%.100s: required field missing)", name);
    err->fields = json_pack("{s:s}", name, "required field missing");
}

void cp_store_map_error(cp_store *st, const sl_entity *e, const json_t *entity, const PGresult *res,
                        int deleting, cp_store_error *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!state || !e) {
        cp_store_db_error(st, res, err);
        return;
    }
    cp_store_error_clear(err);
    if (strcmp(state, "23505") == 0)
        unique_error(e, entity, res, err);
    else if (strcmp(state, "23503") == 0 && deleting)
        referenced_error(e, res, err);
    else if (strcmp(state, "23503") == 0)
        foreign_error(e, entity, res, err);
    else if (strcmp(state, "23502") == 0)
        not_null_error(e, res, err);
    else
        cp_store_db_error(st, res, err);
}
