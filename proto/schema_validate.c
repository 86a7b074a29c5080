/* The schema validator: Kong's type, bound and one_of rules, default filling, form coercion,
 * error objects shaped like Kong's "fields", its violation message, and PATCH merging. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/sort.h"
#include "proto/schema.h"
#include "proto/uuid.h"

#define MAP_KEY_MAX 256

static json_t *check_value(const sl_field *f, sl_type t, json_t *v, sl_validate_mode mode,
                           json_t **err);
static void validate_fields(const sl_field *fields, size_t nfields, json_t *obj,
                            sl_validate_mode mode, json_t *errs);

static json_t *err_between(long long a, long long b)
{
    char buf[128];
    snprintf(buf, sizeof buf, "value should be between %lld and %lld", a, b);
    return json_string(buf);
}

/* at_least: "length must be at least N", else "length must be at most N" */
static json_t *err_len(int at_least, long long n)
{
    char buf[64];
    snprintf(buf, sizeof buf, "length must be at %s %lld", at_least ? "least" : "most", n);
    return json_string(buf);
}

static const char *type_error(sl_type t)
{
    switch (t) {
    case SL_T_STRING:
        return "expected a string";
    case SL_T_INTEGER:
    case SL_T_TIMESTAMP:
        return "expected an integer";
    case SL_T_NUMBER:
        return "expected a number";
    case SL_T_BOOLEAN:
        return "expected a boolean";
    case SL_T_UUID:
        return "expected a string";
    case SL_T_ARRAY:
        return "expected an array";
    case SL_T_SET:
        return "expected a set";
    case SL_T_MAP:
        return "expected a map";
    default:
        return "expected a record";
    }
}

static json_t *one_of_error(const char *const *list)
{
    char buf[512];
    size_t o = (size_t)snprintf(buf, sizeof buf, "expected one of: ");
    for (const char *const *p = list; *p && o < sizeof buf; p++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", p == list ? "" : ", ", *p);
    return json_string(buf);
}

/* Strict decimal integer parse of a form value ("8080", "-1"). */
static int parse_integer(const char *s, json_int_t *out)
{
    char *end;
    if (*s == '\0' || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (*end != '\0' || errno == ERANGE)
        return -1;
    *out = n;
    return 0;
}

static int parse_number(const char *s, double *out)
{
    char *end;
    if (*s == '\0' || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    double d = strtod(s, &end);
    if (*end != '\0' || errno == ERANGE || !isfinite(d))
        return -1;
    *out = d;
    return 0;
}

static int has_range(const sl_field *f)
{
    return f->min != 0 || f->max != 0;
}

/* Element strings only get the global bound: the field's min/max bound the array length. */
static json_t *check_string(const sl_field *f, int is_elem, json_t *v, json_t **err)
{
    long long min = is_elem ? 0 : f->min;
    if (!json_is_string(v)) {
        *err = json_string("expected a string");
        return v;
    }
    size_t n = json_string_length(v);
    long long max = !is_elem && f->max > 0 ? f->max : SL_SCHEMA_MAX_STRING;
    if (strlen(json_string_value(v)) != n)
        *err = json_string("invalid value: contains a NUL byte");
    else if (min > 0 && (long long)n < min)
        *err = err_len(1, min);
    else if ((long long)n > max)
        *err = err_len(0, max);
    return v;
}

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

/* ARRAY and SET: coerces form values, bounds the length, checks every element (errors go
 * into an array at the element's position, null for good ones, as Kong's JSON shows them),
 * and drops duplicates from sets. */
static json_t *check_array(const sl_field *f, sl_type t, json_t *v, sl_validate_mode mode,
                           json_t **err)
{
    if (mode == SL_VALIDATE_FORM && json_is_string(v)) {
        json_t *arr = json_array();
        if (json_string_length(v) > 0)
            json_array_append(arr, v);
        json_decref(v);
        v = arr;
    }
    if (!json_is_array(v)) {
        *err = json_string(type_error(t));
        return v;
    }
    size_t n = json_array_size(v);
    long long max = f->max > 0 ? f->max : SL_SCHEMA_MAX_ARRAY;
    if (f->min > 0 && (long long)n < f->min) {
        *err = err_len(1, f->min);
        return v;
    }
    if ((long long)n > max) {
        *err = err_len(0, max);
        return v;
    }
    json_t *errs = NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *old = json_array_get(v, i), *el = json_incref(old), *e = NULL;
        if (json_is_null(el))
            e = json_string("required field missing");
        else
            el = check_value(f, f->elem, el, mode, &e);
        /* most elements come back unchanged (every path of every snapshot row) */
        if (el == old)
            json_decref(el);
        else
            json_array_set_new(v, i, el);
        if (e != NULL) {
            if (errs == NULL)
                errs = json_array();
            while (json_array_size(errs) < i)
                json_array_append_new(errs, json_null());
            json_array_append_new(errs, e);
        }
    }
    if (errs != NULL) {
        *err = errs;
        return v;
    }
    if (t == SL_T_SET) {
        for (size_t i = 1; i < json_array_size(v);) {
            int dup = 0;
            for (size_t j = 0; j < i && !dup; j++)
                dup = json_equal(json_array_get(v, i), json_array_get(v, j));
            if (dup)
                json_array_remove(v, i);
            else
                i++;
        }
    }
    return v;
}

/* MAP: header name -> array of strings. Key errors blame the whole field; value errors are
 * keyed by the header name. */
static json_t *check_map(const sl_field *f, json_t *v, sl_validate_mode mode, json_t **err)
{
    static const sl_field value_field = {.name = "value", .type = SL_T_ARRAY, .elem = SL_T_STRING};
    if (!json_is_object(v)) {
        *err = json_string("expected a map");
        return v;
    }
    if (json_object_size(v) > SL_SCHEMA_MAX_MAP) {
        *err = err_len(0, SL_SCHEMA_MAX_MAP);
        return v;
    }
    const char *k;
    json_t *val, *errs = NULL;
    void *tmp;
    json_object_foreach_safe(v, tmp, k, val)
    {
        if (strlen(k) == 0 || strlen(k) > MAP_KEY_MAX) {
            *err = json_string("invalid key: length must be between 1 and 256");
            break;
        }
        if (f->check != NULL) {
            json_t *key = json_string(k);
            const char *m = key ? f->check(key) : "invalid key";
            json_decref(key);
            if (m != NULL) {
                *err = json_string(m);
                break;
            }
        }
        json_t *e = NULL;
        json_t *nv = check_value(&value_field, SL_T_ARRAY, json_incref(val), mode, &e);
        /* Most values come back unchanged: replacing them would rehash the key for nothing. */
        if (nv == val)
            json_decref(nv);
        else
            json_object_set_new(v, k, nv);
        if (e != NULL) {
            if (errs == NULL)
                errs = json_object();
            json_object_set_new(errs, k, e);
        }
    }
    if (*err != NULL)
        json_decref(errs);
    else
        *err = errs;
    return v;
}

static json_t *check_foreign(json_t *v, sl_validate_mode mode, json_t **err)
{
    static const sl_field pk[] = {{.name = "id", .type = SL_T_UUID, .flags = SL_F_REQUIRED}};
    if (mode == SL_VALIDATE_FORM && json_is_string(v)) {
        json_t *o = json_pack("{sO}", "id", v);
        json_decref(v);
        v = o;
    }
    if (!json_is_object(v)) {
        *err = json_string("expected a record");
        return v;
    }
    /* The usual reference, {"id": "<lower-case uuid>"}, has nothing to report or change:
     * skip building an error object for it (one per reference of every snapshot row). */
    const char *id = json_string_value(json_object_get(v, "id"));
    if (json_object_size(v) == 1 && id && sl_uuid_is_valid(id)) {
        int upper = 0;
        for (int k = 0; k < 36 && !upper; k++)
            upper = isupper((unsigned char)id[k]);
        if (!upper)
            return v;
    }
    json_t *errs = json_object();
    validate_fields(pk, 1, v, mode, errs);
    if (json_object_size(errs) > 0)
        *err = errs;
    else
        json_decref(errs);
    return v;
}

/* Validates one value of type t (the field's type, or its element type). Takes ownership of
 * v and returns the (possibly coerced) value; *err gets a new error value when invalid. */
static json_t *check_value(const sl_field *f, sl_type t, json_t *v, sl_validate_mode mode,
                           json_t **err)
{
    int is_elem = (t != f->type);
    if (mode == SL_VALIDATE_FORM && json_is_string(v) && t != SL_T_STRING && t != SL_T_UUID &&
        t != SL_T_FOREIGN) {
        const char *s = json_string_value(v);
        json_t *nv = NULL;
        json_int_t i;
        double d;
        if ((t == SL_T_INTEGER || t == SL_T_TIMESTAMP) && parse_integer(s, &i) == 0)
            nv = json_integer(i);
        else if (t == SL_T_NUMBER && parse_integer(s, &i) == 0)
            nv = json_integer(i); /* "5" reads back as 5, as Kong's form decoding gives */
        else if (t == SL_T_NUMBER && parse_number(s, &d) == 0)
            nv = json_real(d);
        else if (t == SL_T_BOOLEAN && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0))
            nv = json_boolean(s[0] == 't');
        if (nv != NULL) {
            json_decref(v);
            v = nv;
        }
    }
    switch (t) {
    case SL_T_STRING:
        v = check_string(f, is_elem, v, err);
        break;
    case SL_T_UUID:
        if (!json_is_string(v)) {
            *err = json_string("expected a string");
        } else if (!sl_uuid_is_valid(json_string_value(v))) {
            *err = json_string("expected a valid UUID");
        } else {
            /* lower-case it, allocating only when needed: ids the store wrote (every row of a
             * snapshot) are lower-case already */
            const char *u = json_string_value(v);
            int upper = 0;
            for (int k = 0; k < 36 && !upper; k++)
                upper = isupper((unsigned char)u[k]);
            if (upper) {
                char low[37];
                for (int k = 0; k < 37; k++)
                    low[k] = (char)tolower((unsigned char)u[k]);
                json_decref(v);
                v = json_string(low);
            }
        }
        break;
    case SL_T_INTEGER:
    case SL_T_TIMESTAMP:
        if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
            fabs(json_real_value(v)) < 9.0e15) {
            json_t *nv = json_integer((json_int_t)json_real_value(v));
            json_decref(v);
            v = nv;
        }
        if (!json_is_integer(v))
            *err = json_string("expected an integer");
        else if (t == SL_T_TIMESTAMP && json_integer_value(v) < 0)
            *err = err_between(0, 253402300799LL);
        else if (!is_elem && has_range(f) &&
                 (json_integer_value(v) < f->min || json_integer_value(v) > f->max))
            *err = err_between(f->min, f->max);
        break;
    case SL_T_NUMBER:
        if (!json_is_number(v))
            *err = json_string("expected a number");
        else if (!is_elem && has_range(f) &&
                 (json_number_value(v) < (double)f->min || json_number_value(v) > (double)f->max))
            *err = err_between(f->min, f->max);
        break;
    case SL_T_BOOLEAN:
        if (!json_is_boolean(v))
            *err = json_string("expected a boolean");
        break;
    case SL_T_FOREIGN:
        v = check_foreign(v, mode, err);
        break;
    case SL_T_ARRAY:
    case SL_T_SET:
        if (is_elem) {
            *err = json_string("expected a string");
            break;
        }
        v = check_array(f, t, v, mode, err);
        break;
    case SL_T_MAP:
        v = check_map(f, v, mode, err);
        break;
    case SL_T_RECORD:
        if (!json_is_object(v)) {
            *err = json_string("expected a record");
        } else {
            json_t *errs = json_object();
            validate_fields(f->fields, f->nfields, v, mode, errs);
            if (json_object_size(errs) > 0)
                *err = errs;
            else
                json_decref(errs);
        }
        break;
    case SL_T_JSON:
        if (!json_is_object(v))
            *err = json_string("expected a record");
        break;
    }
    if (*err != NULL)
        return v;
    /* scalar extras: one_of and the field's check (for arrays: on each element) */
    int scalar = (t == SL_T_STRING || t == SL_T_INTEGER || t == SL_T_NUMBER);
    if (scalar && f->one_of != NULL && json_is_string(v) &&
        !in_list(json_string_value(v), f->one_of)) {
        *err = one_of_error(f->one_of);
    } else if (scalar && f->check != NULL) {
        const char *m = f->check(v);
        if (m != NULL)
            *err = json_string(m);
    }
    return v;
}

static const sl_field *find_field(const sl_field *fields, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(fields[i].name, name) == 0)
            return &fields[i];
    return NULL;
}

/* find_field trying the field after the previous match (*hint) first: objects built in
 * schema order (snapshot rows, store rows) cost one comparison per key. */
static const sl_field *find_field_hint(const sl_field *fields, size_t n, const char *name,
                                       size_t *hint)
{
    for (size_t c = 0; c < n; c++) {
        size_t i = (*hint + c) % n;
        if (strcmp(fields[i].name, name) == 0) {
            *hint = i + 1;
            return &fields[i];
        }
    }
    return NULL;
}

/* Schemas have far fewer fields than this; a larger one falls back to lookups by name. */
#define FIELDS_ON_STACK 64

/* Validates obj against fields: unknown names, defaults and nulls for absent fields, then
 * each present value. Errors land in errs keyed by field name. */
static void validate_fields(const sl_field *fields, size_t nfields, json_t *obj,
                            sl_validate_mode mode, json_t *errs)
{
    const char *k;
    json_t *val;
    /* One pass over the members finds each field's value (and the unknown names): a hash
     * lookup per schema field costs more when every row of a large snapshot comes here. */
    json_t *vals[FIELDS_ON_STACK];
    int by_pos = nfields <= FIELDS_ON_STACK;
    if (by_pos)
        memset(vals, 0, nfields * sizeof(*vals));
    /* only a row's own absent fields read as null: what it nests is plain JSON */
    sl_validate_mode inner = mode == SL_VALIDATE_CANONICAL ? SL_VALIDATE_JSON : mode;
    size_t hint = 0;
    json_object_foreach(obj, k, val)
    {
        const sl_field *f = find_field_hint(fields, nfields, k, &hint);
        if (f == NULL)
            json_object_set_new(errs, k, json_string("unknown field"));
        else if (by_pos)
            vals[f - fields] = val;
    }
    for (size_t i = 0; i < nfields; i++) {
        const sl_field *f = &fields[i];
        json_t *v = by_pos ? vals[i] : json_object_get(obj, f->name);
        if (v == NULL) {
            if (f->flags & (SL_F_AUTO | SL_F_TRANSIENT))
                continue;
            if (mode == SL_VALIDATE_CANONICAL && !f->dflt) { /* null, and left out */
                if (f->flags & SL_F_REQUIRED)
                    json_object_set_new(errs, f->name, json_string("required field missing"));
                continue;
            }
            v = f->dflt ? json_loads(f->dflt, JSON_DECODE_ANY, NULL) : json_null();
            if (v == NULL)
                v = json_null();
            json_object_set_new(obj, f->name, v);
        }
        /* a form sends "" for "no value": null for everything but strings, [] for arrays */
        if (mode == SL_VALIDATE_FORM && json_is_string(v) && json_string_length(v) == 0 &&
            f->type != SL_T_STRING) {
            v = (f->type == SL_T_ARRAY || f->type == SL_T_SET) ? json_array() : json_null();
            json_object_set_new(obj, f->name, v);
        }
        if (json_is_null(v)) {
            if (f->flags & SL_F_REQUIRED)
                json_object_set_new(errs, f->name, json_string("required field missing"));
            continue;
        }
        json_t *e = NULL;
        json_t *nv = check_value(f, f->type, json_incref(v), inner, &e);
        /* Most values come back unchanged (every field of every row of a snapshot): setting
         * them again would cost a hash lookup and a free per field. */
        if (nv == v)
            json_decref(nv);
        else
            json_object_set_new(obj, f->name, nv);
        if (e != NULL)
            json_object_set_new(errs, f->name, e);
    }
}

/* Counts leaf messages the way sl_schema_violation_message lists them. */
static int count_errors(const json_t *e)
{
    int n = 0;
    size_t i;
    const char *k;
    const json_t *v;
    if (json_is_string(e))
        return 1;
    if (json_is_array(e)) {
        json_array_foreach(e, i, v) n += count_errors(v);
    } else if (json_is_object(e)) {
        json_object_foreach((json_t *)e, k, v) n += count_errors(v);
    }
    return n;
}

int sl_schema_validate_record(const sl_field *fields, size_t nfields, json_t *record,
                              sl_validate_mode mode, json_t **errors)
{
    json_t *errs = json_object();
    *errors = NULL;
    if (!json_is_object(record)) {
        json_object_set_new(errs, "@entity", json_pack("[s]", "expected a record"));
        *errors = errs;
        return 1;
    }
    validate_fields(fields, nfields, record, mode, errs);
    int n = count_errors(errs);
    if (n > 0)
        *errors = errs;
    else
        json_decref(errs);
    return n;
}

int sl_schema_validate(const sl_entity *e, json_t *entity, sl_validate_mode mode, json_t **errors)
{
    json_t *errs = json_object();
    *errors = NULL;
    if (!json_is_object(entity)) {
        json_object_set_new(errs, "@entity", json_pack("[s]", "expected a record"));
        *errors = errs;
        return 1;
    }
    if (e->prepare != NULL)
        e->prepare(e, entity, mode, errs);
    validate_fields(e->fields, e->nfields, entity, mode, errs);
    if (json_object_size(errs) == 0) {
        if (e->check != NULL) {
            json_t *arr = json_array();
            e->check(e, entity, arr);
            if (json_array_size(arr) > 0)
                json_object_set_new(errs, "@entity", arr);
            else
                json_decref(arr);
        }
        if (e->fields_check != NULL)
            e->fields_check(e, entity, errs);
    }
    if (json_object_size(errs) == 0 && e->finish != NULL)
        e->finish(e, entity, mode, errs);
    int n = count_errors(errs);
    if (n > 0)
        *errors = errs;
    else
        json_decref(errs);
    return n;
}

/* --- the violation message --- */

typedef struct {
    char **items;
    size_t n, cap;
} strlist;

static void push(strlist *l, const char *prefix, const char *msg)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **items = realloc(l->items, cap * sizeof *items);
        if (items == NULL)
            return;
        l->items = items;
        l->cap = cap;
    }
    size_t len = strlen(prefix) + strlen(msg) + 3;
    char *s = malloc(len);
    if (s == NULL)
        return;
    if (prefix[0])
        snprintf(s, len, "%s: %s", prefix, msg);
    else
        snprintf(s, len, "%s", msg);
    l->items[l->n++] = s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Flattens nested errors into "config.minute: expected an integer" lines; arrays use the
 * 1-based element index ("paths.2: ..."), "@entity" messages stand alone. */
static void flatten(const json_t *e, const char *prefix, strlist *out)
{
    char p[512];
    if (json_is_string(e)) {
        push(out, prefix, json_string_value(e));
    } else if (json_is_array(e)) {
        size_t i;
        const json_t *v;
        int entity = strcmp(prefix, "@entity") == 0 ||
                     (strlen(prefix) > 8 && strcmp(prefix + strlen(prefix) - 8, ".@entity") == 0);
        json_array_foreach(e, i, v)
        {
            if (entity) {
                flatten(v, "", out);
                continue;
            }
            snprintf(p, sizeof p, "%s.%zu", prefix, i + 1);
            flatten(v, p, out);
        }
    } else if (json_is_object(e)) {
        const char **keys = malloc(json_object_size(e) * sizeof *keys + 1);
        size_t n = 0;
        const char *k;
        const json_t *v;
        if (keys == NULL)
            return;
        json_object_foreach((json_t *)e, k, v) keys[n++] = k;
        sl_sort(keys, n, sizeof *keys, cmp_str);
        for (size_t i = 0; i < n; i++) {
            snprintf(p, sizeof p, "%s%s%s", prefix, prefix[0] ? "." : "", keys[i]);
            flatten(json_object_get(e, keys[i]), p, out);
        }
        free(keys);
    }
}

char *sl_schema_violation_message(const json_t *errors, int count)
{
    strlist l = {0};
    flatten(errors, "", &l);
    size_t len = 64;
    for (size_t i = 0; i < l.n; i++)
        len += strlen(l.items[i]) + 2;
    char *msg = malloc(len);
    if (msg != NULL) {
        size_t o;
        (void)count; /* the flattened list is the authority, so the count always agrees */
        if (l.n == 1)
            o = (size_t)snprintf(msg, len, "schema violation (");
        else
            o = (size_t)snprintf(msg, len, "%zu schema violations (", l.n);
        for (size_t i = 0; i < l.n; i++)
            o += (size_t)snprintf(msg + o, len - o, "%s%s", i ? "; " : "", l.items[i]);
        snprintf(msg + o, len - o, ")");
        if (l.n == 0)
            snprintf(msg, len, "schema violation");
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.items[i]);
    free(l.items);
    return msg;
}

/* --- PATCH merge --- */

static void merge_into(json_t *dst, const json_t *patch, const sl_field *fields, size_t n,
                       int any_json)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v)
    {
        const sl_field *f = fields ? find_field(fields, n, k) : NULL;
        json_t *cur = json_object_get(dst, k);
        int record = f && f->type == SL_T_RECORD;
        int js = any_json || (f && f->type == SL_T_JSON);
        if ((record || js) && json_is_object(cur) && json_is_object(v)) {
            json_t *copy = json_deep_copy(cur);
            merge_into(copy, v, record ? f->fields : NULL, record ? f->nfields : 0, js);
            json_object_set_new(dst, k, copy);
        } else {
            json_object_set_new(dst, k, json_deep_copy(v));
        }
    }
}

json_t *sl_schema_merge(const sl_entity *e, const json_t *existing, const json_t *patch)
{
    json_t *out = json_is_object(existing) ? json_deep_copy(existing) : json_object();
    if (out != NULL && json_is_object(patch))
        merge_into(out, patch, e->fields, e->nfields, 0);
    return out;
}
