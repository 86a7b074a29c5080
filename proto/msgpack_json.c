#include "proto/sort.h"
#include "proto/msgpack_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writer ---- */

void sl_mp_pack_strn(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

void sl_mp_pack_cstr(msgpack_packer *pk, const char *s)
{
    sl_mp_pack_strn(pk, s, strlen(s));
}

typedef struct {
    const char *key;
    size_t len;
    json_t *value;
} sl_mp_kv;

static int kv_cmp(const void *a, const void *b)
{
    const sl_mp_kv *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static int pack_json(msgpack_packer *pk, const json_t *v, int depth, char *err, size_t errlen)
{
    if (depth > SL_MP_MAX_DEPTH) {
        snprintf(err, errlen, "value nested deeper than %d levels", SL_MP_MAX_DEPTH);
        return -1;
    }
    switch (json_typeof(v)) {
    case JSON_NULL:
        msgpack_pack_nil(pk);
        return 0;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        return 0;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        return 0;
    case JSON_INTEGER:
        msgpack_pack_int64(pk, json_integer_value(v));
        return 0;
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(v));
        return 0;
    case JSON_STRING:
        sl_mp_pack_strn(pk, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++)
            if (pack_json(pk, json_array_get(v, i), depth + 1, err, errlen))
                return -1;
        return 0;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        sl_mp_kv small[16];
        sl_mp_kv *kv = n <= 16 ? small : malloc(n * sizeof(*kv));
        if (!kv) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (void *it = json_object_iter((json_t *)v); it && i < n;
             it = json_object_iter_next((json_t *)v, it), i++) {
            kv[i].key = json_object_iter_key(it);
            kv[i].len = json_object_iter_key_len(it);
            kv[i].value = json_object_iter_value(it);
        }
        /* jansson iterates in insertion order; sorting makes equal objects equal bytes. */
        sl_sort(kv, i, sizeof(*kv), kv_cmp);
        msgpack_pack_map(pk, i);
        int rc = 0;
        for (size_t k = 0; k < i && rc == 0; k++) {
            sl_mp_pack_strn(pk, kv[k].key, kv[k].len);
            rc = pack_json(pk, kv[k].value, depth + 1, err, errlen);
        }
        if (kv != small)
            free(kv);
        return rc;
    }
    }
    snprintf(err, errlen, "unknown JSON type");
    return -1;
}

int sl_mp_pack_json(msgpack_packer *pk, const json_t *v, char *err, size_t errlen)
{
    return pack_json(pk, v, 0, err, errlen);
}

/* ---- reader ---- */

void sl_mp_reader_init(sl_mp_reader *r, const void *bytes, size_t len)
{
    r->base = r->p = bytes;
    r->end = r->p + len;
}

static size_t left(const sl_mp_reader *r)
{
    return (size_t)(r->end - r->p);
}

static size_t at(const sl_mp_reader *r)
{
    return (size_t)(r->p - r->base);
}

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

sl_mp_kind sl_mp_peek(const sl_mp_reader *r)
{
    if (r->p >= r->end)
        return SL_MP_BAD;
    unsigned c = *r->p;
    if (c <= 0x7f || c >= 0xe0)
        return SL_MP_INT;
    if (c <= 0x8f)
        return SL_MP_MAP;
    if (c <= 0x9f)
        return SL_MP_ARRAY;
    if (c <= 0xbf)
        return SL_MP_STR;
    switch (c) {
    case 0xc0:
        return SL_MP_NIL;
    case 0xc2:
    case 0xc3:
        return SL_MP_BOOL;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        return SL_MP_BIN;
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        return SL_MP_EXT;
    case 0xca:
    case 0xcb:
        return SL_MP_FLOAT;
    case 0xd9:
    case 0xda:
    case 0xdb:
        return SL_MP_STR;
    case 0xdc:
    case 0xdd:
        return SL_MP_ARRAY;
    case 0xde:
    case 0xdf:
        return SL_MP_MAP;
    default:
        if (c >= 0xcc && c <= 0xd3)
            return SL_MP_INT;
        return SL_MP_BAD;
    }
}

const char *sl_mp_kind_name(sl_mp_kind k)
{
    static const char *const names[] = {"nil",       "boolean",     "integer", "float",
                                        "string",    "binary",      "array",   "map",
                                        "extension", "invalid byte"};
    return names[k];
}

static int truncated(const sl_mp_reader *r, char *err, size_t errlen)
{
    snprintf(err, errlen, "truncated msgpack at byte %zu", at(r));
    return -1;
}

static int expect(const sl_mp_reader *r, sl_mp_kind want, char *err, size_t errlen)
{
    sl_mp_kind k = sl_mp_peek(r);
    if (k == want)
        return 0;
    if (r->p >= r->end)
        return truncated(r, err, errlen);
    snprintf(err, errlen, "expected %s, got %s at byte %zu", sl_mp_kind_name(want),
             sl_mp_kind_name(k), at(r));
    return -1;
}

/* Reads a length of n bytes (after the type byte) and checks `need` more bytes fit. */
static int read_len(sl_mp_reader *r, int n, uint32_t *len, size_t unit, char *err, size_t errlen)
{
    if (left(r) < (size_t)n)
        return truncated(r, err, errlen);
    *len = (uint32_t)be(r->p, n);
    r->p += n;
    /* Every element takes at least `unit` bytes, so a count beyond the remaining bytes is a
     * lie: refuse it before anyone allocates for it. */
    if ((uint64_t)*len * unit > left(r)) {
        snprintf(err, errlen, "msgpack length %u at byte %zu exceeds the %zu bytes left", *len,
                 at(r), left(r));
        return -1;
    }
    return 0;
}

static int read_container(sl_mp_reader *r, uint32_t *n, int is_map, char *err, size_t errlen)
{
    if (expect(r, is_map ? SL_MP_MAP : SL_MP_ARRAY, err, errlen))
        return -1;
    unsigned c = *r->p++;
    size_t unit = is_map ? 2 : 1;
    if (c <= 0x9f) {
        *n = c & 0x0f;
        if ((size_t)*n * unit > left(r))
            return truncated(r, err, errlen);
        return 0;
    }
    return read_len(r, (c == 0xdc || c == 0xde) ? 2 : 4, n, unit, err, errlen);
}

int sl_mp_read_map(sl_mp_reader *r, uint32_t *n, char *err, size_t errlen)
{
    return read_container(r, n, 1, err, errlen);
}

int sl_mp_read_array(sl_mp_reader *r, uint32_t *n, char *err, size_t errlen)
{
    return read_container(r, n, 0, err, errlen);
}

int sl_mp_read_str(sl_mp_reader *r, const char **s, uint32_t *len, char *err, size_t errlen)
{
    if (expect(r, SL_MP_STR, err, errlen))
        return -1;
    unsigned c = *r->p++;
    if (c <= 0xbf) {
        *len = c & 0x1f;
        if (*len > left(r))
            return truncated(r, err, errlen);
    } else if (read_len(r, c == 0xd9 ? 1 : c == 0xda ? 2 : 4, len, 1, err, errlen)) {
        return -1;
    }
    *s = (const char *)r->p;
    r->p += *len;
    return 0;
}

int sl_mp_read_bin(sl_mp_reader *r, const unsigned char **b, uint32_t *len, char *err,
                   size_t errlen)
{
    if (expect(r, SL_MP_BIN, err, errlen))
        return -1;
    unsigned c = *r->p++;
    if (read_len(r, c == 0xc4 ? 1 : c == 0xc5 ? 2 : 4, len, 1, err, errlen))
        return -1;
    *b = r->p;
    r->p += *len;
    return 0;
}

int sl_mp_read_int(sl_mp_reader *r, int64_t *v, char *err, size_t errlen)
{
    if (expect(r, SL_MP_INT, err, errlen))
        return -1;
    unsigned c = *r->p;
    if (c <= 0x7f || c >= 0xe0) {
        *v = (int8_t)c;
        r->p++;
        return 0;
    }
    int n = 1 << ((c - 0xcc) & 3); /* cc..cf unsigned 1..8 bytes, d0..d3 signed 1..8 */
    if (left(r) < (size_t)n + 1)
        return truncated(r, err, errlen);
    uint64_t u = be(r->p + 1, n);
    if (c <= 0xcf) {
        if (u > INT64_MAX) {
            snprintf(err, errlen, "integer at byte %zu does not fit 64-bit signed", at(r));
            return -1;
        }
        *v = (int64_t)u;
    } else {
        int shift = 64 - 8 * n; /* sign-extend from n bytes */
        *v = shift ? (int64_t)(u << shift) >> shift : (int64_t)u;
    }
    r->p += n + 1;
    return 0;
}

static int read_float(sl_mp_reader *r, double *d, char *err, size_t errlen)
{
    unsigned c = *r->p;
    int n = c == 0xca ? 4 : 8;
    if (left(r) < (size_t)n + 1)
        return truncated(r, err, errlen);
    uint64_t u = be(r->p + 1, n);
    if (n == 4) {
        uint32_t u32 = (uint32_t)u;
        float f;
        memcpy(&f, &u32, 4);
        *d = f;
    } else {
        memcpy(d, &u, 8);
    }
    r->p += n + 1;
    return 0;
}

static int skip(sl_mp_reader *r, int depth, char *err, size_t errlen)
{
    if (depth > SL_MP_MAX_DEPTH) {
        snprintf(err, errlen, "msgpack nested deeper than %d levels at byte %zu", SL_MP_MAX_DEPTH,
                 at(r));
        return -1;
    }
    uint32_t n, len;
    const char *s;
    const unsigned char *b;
    int64_t i;
    double d;
    switch (sl_mp_peek(r)) {
    case SL_MP_NIL:
    case SL_MP_BOOL:
        r->p++;
        return 0;
    case SL_MP_INT:
        return sl_mp_read_int(r, &i, err, errlen);
    case SL_MP_FLOAT:
        return read_float(r, &d, err, errlen);
    case SL_MP_STR:
        return sl_mp_read_str(r, &s, &len, err, errlen);
    case SL_MP_BIN:
        return sl_mp_read_bin(r, &b, &len, err, errlen);
    case SL_MP_ARRAY:
    case SL_MP_MAP: {
        int is_map = sl_mp_peek(r) == SL_MP_MAP;
        if (read_container(r, &n, is_map, err, errlen))
            return -1;
        uint64_t items = (uint64_t)n * (is_map ? 2 : 1);
        for (uint64_t k = 0; k < items; k++)
            if (skip(r, depth + 1, err, errlen))
                return -1;
        return 0;
    }
    case SL_MP_EXT: {
        unsigned c = *r->p++;
        if (c >= 0xd4 && c <= 0xd8)
            len = 1u << (c - 0xd4);
        else if (read_len(r, c == 0xc7 ? 1 : c == 0xc8 ? 2 : 4, &len, 1, err, errlen))
            return -1;
        if (left(r) < (size_t)len + 1)
            return truncated(r, err, errlen);
        r->p += len + 1; /* type byte + data */
        return 0;
    }
    case SL_MP_BAD:
        break;
    }
    if (r->p >= r->end)
        return truncated(r, err, errlen);
    snprintf(err, errlen, "invalid msgpack byte 0x%02x at byte %zu", *r->p, at(r));
    return -1;
}

int sl_mp_skip(sl_mp_reader *r, char *err, size_t errlen)
{
    return skip(r, 0, err, errlen);
}

const char *sl_mp_printable(char *dst, size_t dstlen, const char *s, size_t len)
{
    size_t n = 0;
    for (; dstlen && n < len && n + 1 < dstlen; n++)
        dst[n] = s[n] >= 0x20 && s[n] < 0x7f ? s[n] : '?';
    if (dstlen)
        dst[n] = '\0';
    return dst;
}

static int read_json(sl_mp_reader *r, int depth, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (depth > SL_MP_MAX_DEPTH) {
        snprintf(err, errlen, "msgpack nested deeper than %d levels at byte %zu", SL_MP_MAX_DEPTH,
                 at(r));
        return -1;
    }
    size_t pos = at(r);
    sl_mp_kind k = sl_mp_peek(r);
    switch (k) {
    case SL_MP_NIL:
        r->p++;
        *out = json_null();
        return 0;
    case SL_MP_BOOL:
        *out = json_boolean(*r->p++ == 0xc3);
        return 0;
    case SL_MP_INT: {
        int64_t i;
        if (sl_mp_read_int(r, &i, err, errlen))
            return -1;
        *out = json_integer((json_int_t)i);
        break;
    }
    case SL_MP_FLOAT: {
        double d;
        if (read_float(r, &d, err, errlen))
            return -1;
        if (!isfinite(d)) {
            snprintf(err, errlen, "non-finite number at byte %zu", pos);
            return -1;
        }
        *out = json_real(d);
        break;
    }
    case SL_MP_STR: {
        const char *s;
        uint32_t len;
        if (sl_mp_read_str(r, &s, &len, err, errlen))
            return -1;
        *out = json_stringn(s, len); /* NULL on invalid UTF-8 */
        if (!*out) {
            snprintf(err, errlen, "string at byte %zu is not valid UTF-8", pos);
            return -1;
        }
        return 0;
    }
    case SL_MP_ARRAY: {
        uint32_t n;
        if (sl_mp_read_array(r, &n, err, errlen))
            return -1;
        json_t *a = json_array();
        *out = a;
        for (uint32_t i = 0; a && i < n; i++) {
            json_t *item;
            if (read_json(r, depth + 1, &item, err, errlen)) {
                json_decref(a);
                *out = NULL;
                return -1;
            }
            json_array_append_new(a, item);
        }
        break;
    }
    case SL_MP_MAP: {
        uint32_t n;
        if (sl_mp_read_map(r, &n, err, errlen))
            return -1;
        json_t *o = json_object();
        *out = o;
        for (uint32_t i = 0; o && i < n; i++) {
            const char *key;
            uint32_t klen;
            size_t kpos = at(r);
            json_t *item = NULL;
            if (sl_mp_read_str(r, &key, &klen, err, errlen))
                goto map_fail;
            /* Keys become C strings (jansson and the schema code compare with strcmp):
             * an embedded NUL would make two different keys look alike. */
            if (memchr(key, '\0', klen)) {
                snprintf(err, errlen, "map key at byte %zu contains NUL", kpos);
                goto map_fail;
            }
            if (json_object_getn(o, key, klen)) {
                char shown[65];
                snprintf(err, errlen, "duplicate map key \"%s\" at byte %zu",
                         sl_mp_printable(shown, sizeof(shown), key, klen), kpos);
                goto map_fail;
            }
            if (read_json(r, depth + 1, &item, err, errlen))
                goto map_fail;
            /* setn checks the key is UTF-8 (and copies it); no temporary string needed */
            if (json_object_setn_new(o, key, klen, item)) {
                snprintf(err, errlen, "map key at byte %zu is not valid UTF-8", kpos);
                goto map_fail;
            }
            continue;
        map_fail:
            json_decref(o);
            *out = NULL;
            return -1;
        }
        break;
    }
    case SL_MP_BIN:
    case SL_MP_EXT:
        snprintf(err, errlen, "unexpected %s at byte %zu", sl_mp_kind_name(k), pos);
        return -1;
    case SL_MP_BAD:
        if (r->p >= r->end)
            return truncated(r, err, errlen);
        snprintf(err, errlen, "invalid msgpack byte 0x%02x at byte %zu", *r->p, pos);
        return -1;
    }
    if (!*out) {
        snprintf(err, errlen, "out of memory decoding msgpack");
        return -1;
    }
    return 0;
}

int sl_mp_read_json(sl_mp_reader *r, json_t **out, char *err, size_t errlen)
{
    return read_json(r, 0, out, err, errlen);
}
