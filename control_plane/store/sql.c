/* SQL text building from the schema tables. Values never enter the SQL text: they become
 * text parameters, and the SQL casts them; identifiers come only from the schema tables and
 * are double-quoted anyway so a field named like a keyword ("key", "set") stays a column. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_plane/store/store_internal.h"

void cp_sql_init(cp_sql *q)
{
    memset(q, 0, sizeof(*q));
}

void cp_sql_free(cp_sql *q)
{
    free(q->s);
    memset(q, 0, sizeof(*q));
}

static int sql_reserve(cp_sql *q, size_t more)
{
    if (q->oom)
        return -1;
    if (q->len + more + 1 <= q->cap)
        return 0;
    size_t cap = q->cap ? q->cap : 256;
    while (cap < q->len + more + 1)
        cap *= 2;
    char *s = realloc(q->s, cap);
    if (!s) {
        q->oom = 1;
        return -1;
    }
    q->s = s;
    q->cap = cap;
    return 0;
}

void cp_sql_add(cp_sql *q, const char *text)
{
    size_t n = strlen(text);
    if (sql_reserve(q, n))
        return;
    memcpy(q->s + q->len, text, n + 1);
    q->len += n;
}

void cp_sql_addf(cp_sql *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        q->oom = 1; /* only short fragments are formatted; longer means a bug */
        return;
    }
    cp_sql_add(q, tmp);
}

void cp_sql_ident(cp_sql *q, const char *name)
{
    if (sql_reserve(q, 2 * strlen(name) + 2))
        return;
    q->s[q->len++] = '"';
    for (const char *c = name; *c; c++) {
        if (*c == '"')
            q->s[q->len++] = '"';
        q->s[q->len++] = *c;
    }
    q->s[q->len++] = '"';
    q->s[q->len] = '\0';
}

void cp_params_init(cp_params *p)
{
    memset(p, 0, sizeof(*p));
}

void cp_params_free(cp_params *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->v[i]);
    p->n = 0;
}

int cp_params_add(cp_params *p, const char *value)
{
    if (p->n >= CP_SQL_MAX_PARAMS)
        return -1;
    char *copy = NULL;
    if (value && !(copy = strdup(value)))
        return -1;
    p->v[p->n++] = copy;
    return p->n;
}

/* Takes ownership of value (NULL: SQL NULL). */
static int params_take(cp_params *p, char *value)
{
    if (p->n >= CP_SQL_MAX_PARAMS) {
        free(value);
        return -1;
    }
    p->v[p->n++] = value;
    return p->n;
}

int cp_field_is_column(const sl_field *f)
{
    return !(f->flags & SL_F_TRANSIENT);
}

const char *cp_field_column(const sl_field *f, char *buf, size_t len)
{
    if (f->type == SL_T_FOREIGN)
        snprintf(buf, len, "%s_id", f->name);
    else
        snprintf(buf, len, "%s", f->name);
    return buf;
}

static void add_column(cp_sql *q, const sl_field *f)
{
    char col[128];
    cp_sql_ident(q, cp_field_column(f, col, sizeof(col)));
}

/* Arrays of strings and integers are PostgreSQL arrays; arrays of records are jsonb. */
static const char *array_elem_cast(const sl_field *f)
{
    switch (f->elem) {
    case SL_T_STRING:
        return "";
    case SL_T_INTEGER:
        return "::integer";
    case SL_T_UUID:
        return "::uuid";
    default:
        return NULL;
    }
}

void cp_sql_select_list(cp_sql *q, const sl_entity *e)
{
    int first = 1;
    for (size_t i = 0; i < e->nfields; i++) {
        const sl_field *f = &e->fields[i];
        if (!cp_field_is_column(f))
            continue;
        if (!first)
            cp_sql_add(q, ", ");
        first = 0;
        switch (f->type) {
        case SL_T_STRING:
        case SL_T_UUID:
        case SL_T_FOREIGN:
            add_column(q, f);
            cp_sql_add(q, "::text");
            break;
        case SL_T_TIMESTAMP:
            cp_sql_add(q, "extract(epoch from ");
            add_column(q, f);
            cp_sql_add(q, ")::bigint");
            break;
        case SL_T_ARRAY:
        case SL_T_SET:
        case SL_T_MAP:
        case SL_T_RECORD:
        case SL_T_JSON:
            cp_sql_add(q, "to_json(");
            add_column(q, f);
            cp_sql_add(q, ")");
            break;
        default:
            add_column(q, f);
            break;
        }
    }
}

/* Appends the SQL expression that turns parameter $n into the field's column value. */
static void add_value_expr(cp_sql *q, const sl_field *f, int n)
{
    const char *cast;
    switch (f->type) {
    case SL_T_UUID:
    case SL_T_FOREIGN:
        if (f->flags & SL_F_AUTO)
            cp_sql_addf(q, "COALESCE($%d::uuid, gen_random_uuid())", n);
        else
            cp_sql_addf(q, "$%d::uuid", n);
        break;
    case SL_T_TIMESTAMP:
        if (f->flags & SL_F_AUTO)
            cp_sql_addf(q, "COALESCE(to_timestamp($%d::bigint), date_trunc('second', now()))", n);
        else
            cp_sql_addf(q, "to_timestamp($%d::bigint)", n);
        break;
    case SL_T_ARRAY:
    case SL_T_SET:
        cast = array_elem_cast(f);
        if (cast)
            /* WITH ORDINALITY keeps the caller's element order; NULL stays NULL rather
             * than becoming an empty array. */
            cp_sql_addf(q,
                        "CASE WHEN $%d::jsonb IS NULL THEN NULL ELSE ARRAY(SELECT x%s FROM "
                        "jsonb_array_elements_text($%d::jsonb) WITH ORDINALITY AS t(x, i) "
                        "ORDER BY i) END",
                        n, cast, n);
        else
            cp_sql_addf(q, "$%d::jsonb", n);
        break;
    case SL_T_MAP:
    case SL_T_RECORD:
    case SL_T_JSON:
        cp_sql_addf(q, "$%d::jsonb", n);
        break;
    default:
        /* Untyped: PostgreSQL takes the column's type. */
        cp_sql_addf(q, "$%d", n);
        break;
    }
}

static int is_created_at(const sl_field *f)
{
    return f->type == SL_T_TIMESTAMP && strcmp(f->name, "created_at") == 0;
}

static int is_updated_at(const sl_field *f)
{
    return f->type == SL_T_TIMESTAMP && strcmp(f->name, "updated_at") == 0;
}

int cp_value_to_param(const sl_field *f, const json_t *v, char **out, char *err, size_t errlen)
{
    char num[64];
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    const char *want = NULL;
    switch (f->type) {
    case SL_T_STRING:
    case SL_T_UUID:
        if (!json_is_string(v)) {
            want = "a string";
            break;
        }
        *out = strdup(json_string_value(v));
        break;
    case SL_T_INTEGER:
    case SL_T_TIMESTAMP:
        if (json_is_integer(v))
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
        else if (json_is_real(v) && json_real_value(v) >= -9.2e18 && json_real_value(v) <= 9.2e18)
            snprintf(num, sizeof(num), "%lld", (long long)json_real_value(v));
        else {
            want = "an integer";
            break;
        }
        *out = strdup(num);
        break;
    case SL_T_NUMBER:
        if (json_is_integer(v))
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
        else if (json_is_real(v))
            snprintf(num, sizeof(num), "%.17g", json_real_value(v));
        else {
            want = "a number";
            break;
        }
        *out = strdup(num);
        break;
    case SL_T_BOOLEAN:
        if (!json_is_boolean(v)) {
            want = "a boolean";
            break;
        }
        *out = strdup(json_is_true(v) ? "true" : "false");
        break;
    case SL_T_FOREIGN: {
        const json_t *id = json_is_object(v) ? json_object_get(v, "id") : v;
        if (!id || json_is_null(id))
            return 0;
        if (!json_is_string(id)) {
            want = "a foreign key {\"id\": \"<uuid>\"}";
            break;
        }
        *out = strdup(json_string_value(id));
        break;
    }
    case SL_T_ARRAY:
    case SL_T_SET:
        if (!json_is_array(v)) {
            want = "an array";
            break;
        }
        *out = json_dumps(v, JSON_COMPACT);
        break;
    case SL_T_MAP:
    case SL_T_RECORD:
        if (!json_is_object(v)) {
            want = "an object";
            break;
        }
        *out = json_dumps(v, JSON_COMPACT);
        break;
    case SL_T_JSON:
        *out = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        break;
    }
    if (want) {
        snprintf(err, errlen, "%s: expected %s", f->name, want);
        return -1;
    }
    if (!*out) {
        snprintf(err, errlen, "%s: out of memory", f->name);
        return -1;
    }
    return 0;
}

/* Adds the field's value as the next parameter; returns its number or -1 with err. */
static int add_field_param(const sl_field *f, const json_t *entity, cp_params *p, char *err,
                           size_t errlen)
{
    char *val;
    if (cp_value_to_param(f, json_object_get(entity, f->name), &val, err, errlen))
        return -1;
    int n = params_take(p, val);
    if (n < 0)
        snprintf(err, errlen, "too many fields");
    return n;
}

int cp_sql_build_insert(const sl_entity *e, const json_t *entity, int upsert, cp_sql *q,
                        cp_params *p, char *err, size_t errlen)
{
    cp_sql vals;
    cp_sql_init(&vals);
    cp_sql_add(q, "INSERT INTO ");
    cp_sql_ident(q, e->name);
    cp_sql_add(q, " (");
    int first = 1;
    for (size_t i = 0; i < e->nfields; i++) {
        const sl_field *f = &e->fields[i];
        if (!cp_field_is_column(f))
            continue;
        int n = add_field_param(f, entity, p, err, errlen);
        if (n < 0) {
            cp_sql_free(&vals);
            return -1;
        }
        if (!first) {
            cp_sql_add(q, ", ");
            cp_sql_add(&vals, ", ");
        }
        first = 0;
        add_column(q, f);
        add_value_expr(&vals, f, n);
    }
    cp_sql_add(q, ") VALUES (");
    cp_sql_add(q, vals.s ? vals.s : "");
    cp_sql_add(q, ")");
    if (vals.oom)
        q->oom = 1;
    cp_sql_free(&vals);
    if (upsert) {
        /* The row keeps its created_at; everything else is replaced, like Kong's PUT. */
        cp_sql_add(q, " ON CONFLICT (\"id\") DO UPDATE SET ");
        first = 1;
        for (size_t i = 0; i < e->nfields; i++) {
            const sl_field *f = &e->fields[i];
            if (!cp_field_is_column(f) || strcmp(f->name, "id") == 0 || is_created_at(f))
                continue;
            if (!first)
                cp_sql_add(q, ", ");
            first = 0;
            add_column(q, f);
            if (is_updated_at(f)) {
                cp_sql_add(q, " = date_trunc('second', now())");
            } else {
                cp_sql_add(q, " = EXCLUDED.");
                add_column(q, f);
            }
        }
    }
    cp_sql_add(q, " RETURNING ");
    cp_sql_select_list(q, e);
    if (upsert)
        cp_sql_add(q, ", (xmax = 0)"); /* true when the row was inserted, not updated */
    if (q->oom) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int cp_sql_build_update(const sl_entity *e, const json_t *entity, cp_sql *q, cp_params *p,
                        char *err, size_t errlen)
{
    const json_t *id = json_object_get(entity, "id");
    if (!json_is_string(id)) {
        snprintf(err, errlen, "id: required field missing");
        return -1;
    }
    int idn = cp_params_add(p, json_string_value(id));
    if (idn < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    cp_sql_add(q, "UPDATE ");
    cp_sql_ident(q, e->name);
    cp_sql_add(q, " SET ");
    int first = 1;
    for (size_t i = 0; i < e->nfields; i++) {
        const sl_field *f = &e->fields[i];
        if (!cp_field_is_column(f) || strcmp(f->name, "id") == 0 || is_created_at(f))
            continue;
        if (!first)
            cp_sql_add(q, ", ");
        first = 0;
        add_column(q, f);
        if (is_updated_at(f)) {
            cp_sql_add(q, " = date_trunc('second', now())");
            continue;
        }
        int n = add_field_param(f, entity, p, err, errlen);
        if (n < 0)
            return -1;
        cp_sql_add(q, " = ");
        add_value_expr(q, f, n);
    }
    cp_sql_addf(q, " WHERE \"id\" = $%d::uuid RETURNING ", idn);
    cp_sql_select_list(q, e);
    if (q->oom) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}
