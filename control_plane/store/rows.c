/* Rows back into Admin API JSON, plus the small value codecs the store shares (uuid check,
 * list offsets). The select list (sql.c) makes every column arrive as text in a shape this
 * file decodes by field type. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "control_plane/store/store_internal.h"
#include "proto/uuid.h"

/* to_json() of a text[] column whose strings are plain printable ASCII (["http","https"], the
 * usual protocols, paths and hosts) as an array, without json_loads' general parser: reading
 * a large config does this for most rows. Returns NULL for anything else (escapes, non-ASCII,
 * nested values, spaces), which the caller then hands to json_loads. */
static json_t *plain_string_array(const char *t)
{
    if (t[0] != '[')
        return NULL;
    json_t *arr = json_array();
    const char *p = t + 1;
    if (*p == ']')
        return p[1] == '\0' ? arr : (json_decref(arr), NULL);
    while (arr) {
        if (*p != '"')
            break;
        const char *s = ++p;
        while (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
            p++;
        if (*p != '"')
            break;
        if (json_array_append_new(arr, json_stringn(s, (size_t)(p - s))))
            break;
        p++;
        if (*p == ',') {
            p++;
            continue;
        }
        if (p[0] == ']' && p[1] == '\0')
            return arr;
        break;
    }
    json_decref(arr);
    return NULL;
}

json_t *cp_value_from_text(const sl_field *f, const char *text)
{
    json_t *v = NULL;
    if (!text)
        return json_null();
    switch (f->type) {
    case SL_T_STRING:
    case SL_T_UUID:
        v = json_string(text);
        break;
    case SL_T_FOREIGN:
        v = json_pack("{s:s}", "id", text);
        break;
    case SL_T_INTEGER:
    case SL_T_TIMESTAMP:
        v = json_integer(strtoll(text, NULL, 10));
        break;
    case SL_T_NUMBER:
        v = json_real(strtod(text, NULL));
        break;
    case SL_T_BOOLEAN:
        v = json_boolean(text[0] == 't');
        break;
    case SL_T_ARRAY:
    case SL_T_SET:
        v = plain_string_array(text);
        if (!v)
            v = json_loads(text, JSON_DECODE_ANY, NULL);
        break;
    case SL_T_MAP:
    case SL_T_RECORD:
    case SL_T_JSON:
        v = json_loads(text, JSON_DECODE_ANY, NULL);
        break;
    }
    /* Text PostgreSQL accepted but jansson cannot hold (out of range numbers) reads as null
     * rather than dropping the field: the row keeps every key, like Kong. */
    return v ? v : json_null();
}

json_t *cp_row_to_json(const sl_entity *e, const PGresult *res, int row)
{
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    int col = 0;
    for (size_t i = 0; i < e->nfields; i++) {
        const sl_field *f = &e->fields[i];
        if (!cp_field_is_column(f))
            continue;
        const char *text = PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
        col++;
        if (json_object_set_new(obj, f->name, cp_value_from_text(f, text))) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

int cp_is_uuid(const char *s)
{
    return s && sl_uuid_is_valid(s);
}

/* URL-safe alphabet: the offset travels in a query string ("next" links) without escaping. */
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *cp_offset_encode(const char *id)
{
    size_t n = strlen(id);
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (!out)
        return NULL;
    const unsigned char *in = (const unsigned char *)id;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = b64[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = b64[v & 63];
    }
    out[o] = '\0';
    return out;
}

static int b64_value(char c)
{
    /* Both alphabets are accepted, so a standard base64 offset decodes too. */
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

int cp_offset_decode(const char *offset, char out[37])
{
    size_t n = strlen(offset);
    while (n > 0 && offset[n - 1] == '=')
        n--;
    /* A uuid is 36 characters, which is 48 base64 characters. */
    if (n != 48)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        unsigned v = 0;
        for (size_t k = 0; k < 4; k++) {
            int d = b64_value(offset[i + k]);
            if (d < 0)
                return -1;
            v = (v << 6) | (unsigned)d;
        }
        out[o++] = (char)((v >> 16) & 255);
        out[o++] = (char)((v >> 8) & 255);
        out[o++] = (char)(v & 255);
    }
    out[36] = '\0';
    if (!cp_is_uuid(out))
        return -1;
    for (int i = 0; i < 36; i++)
        out[i] = (char)tolower((unsigned char)out[i]);
    return 0;
}
