/* Kong's argument key rules (kong/api/arguments.lua), shared by form bodies, multipart part
 * names and query strings. */

#include "control_plane/admin/form.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_plane/admin/admin.h"

typedef enum {
    SEG_KEY,    /* "name", ".name" or "[name]": an object member */
    SEG_INDEX,  /* "[3]": 1-based array position */
    SEG_APPEND, /* "[]": a new array element */
} seg_kind;

typedef struct {
    seg_kind kind;
    const char *name; /* SEG_KEY: points into the key */
    size_t len;
    long index; /* SEG_INDEX */
} seg;

void cp_form_safe_name(const char *s, size_t len, char *out, size_t outlen)
{
    size_t n = 0;
    if (!outlen)
        return;
    for (size_t i = 0; i < len && n + 1 < outlen && n < 64; i++) {
        unsigned char c = (unsigned char)s[i];
        out[n++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    out[n] = 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t cp_form_unescape(const char *in, size_t len, char *out, int plus_space)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%' && i + 2 < len && hexval((unsigned char)in[i + 1]) >= 0 &&
            hexval((unsigned char)in[i + 2]) >= 0) {
            out[n++] =
                (char)(hexval((unsigned char)in[i + 1]) * 16 + hexval((unsigned char)in[i + 2]));
            i += 2;
        } else if (c == '+' && plus_space) {
            out[n++] = ' ';
        } else {
            out[n++] = c;
        }
    }
    return n;
}

/* Splits "a.b[c][][2]" into segments. Returns the count, 0 when the key does not follow the
 * bracket/dot syntax (then it is one literal name, as Kong keeps unmatched keys whole), or -1
 * when it has more than CP_FORM_MAX_DEPTH segments. */
static int split_key(const char *k, size_t len, seg *out)
{
    size_t i = 0;
    while (i < len && k[i] != '.' && k[i] != '[')
        i++;
    if (i == 0 || i == len)
        return 0;
    int n = 0;
    out[n++] = (seg){SEG_KEY, k, i, 0};
    while (i < len) {
        if (n == CP_FORM_MAX_DEPTH)
            return -1;
        if (k[i] == '.') {
            size_t s = ++i;
            while (i < len && k[i] != '.' && k[i] != '[')
                i++;
            if (i == s)
                return 0;
            out[n++] = (seg){SEG_KEY, k + s, i - s, 0};
        } else if (k[i] == '[') {
            size_t s = ++i;
            while (i < len && k[i] != ']' && k[i] != '[')
                i++;
            if (i == len || k[i] != ']')
                return 0;
            size_t l = i - s;
            i++; /* past ']' */
            if (l == 0) {
                out[n++] = (seg){SEG_APPEND, NULL, 0, 0};
                continue;
            }
            size_t d = 0;
            while (d < l && k[s + d] >= '0' && k[s + d] <= '9')
                d++;
            if (d == l) {
                long idx = 0;
                for (size_t j = 0; j < l; j++) {
                    idx = idx * 10 + (k[s + j] - '0');
                    if (idx > CP_FORM_MAX_INDEX) {
                        idx = CP_FORM_MAX_INDEX + 1;
                        break;
                    }
                }
                out[n++] = (seg){SEG_INDEX, NULL, 0, idx};
            } else {
                out[n++] = (seg){SEG_KEY, k + s, l, 0};
            }
        } else {
            return 0; /* "a[b]c": text after a bracket */
        }
    }
    return n;
}

static int fail(char *msg, size_t msglen, const char *key, size_t keylen, const char *why)
{
    char name[80];
    cp_form_safe_name(key, keylen, name, sizeof(name));
    snprintf(msg, msglen, "argument '%s' %s", name, why);
    return 400;
}

/* The member name of a SEG_KEY as a C string (jansson keys are NUL-terminated). */
static int seg_name(const seg *sg, char *buf, size_t buflen)
{
    if (sg->len >= buflen || memchr(sg->name, 0, sg->len))
        return -1;
    memcpy(buf, sg->name, sg->len);
    buf[sg->len] = 0;
    return 0;
}

/* Makes arr at least `size` long, filling with nulls against the padding budget. */
static int pad_array(cp_form *f, json_t *arr, size_t size)
{
    while (json_array_size(arr) < size) {
        if (++f->padding > CP_FORM_MAX_PADDING)
            return -1;
        json_array_append_new(arr, json_null());
    }
    return 0;
}

int cp_form_add(cp_form *f, const char *key, size_t keylen, const char *val, size_t vallen,
                char *msg, size_t msglen)
{
    if (keylen == 0)
        return 0; /* "=x" or "&&": nothing to name, ignored */
    if (++f->nargs > CP_ADMIN_MAX_ARGS) {
        snprintf(msg, msglen, "Too many arguments");
        return 400;
    }
    json_t *value = json_stringn(val, vallen);
    if (!value)
        return fail(msg, msglen, key, keylen, "is not valid UTF-8");

    seg segs[CP_FORM_MAX_DEPTH];
    int n = split_key(key, keylen, segs);
    if (n < 0) {
        json_decref(value);
        char why[64];
        snprintf(why, sizeof(why), "is nested deeper than %d levels", CP_FORM_MAX_DEPTH);
        return fail(msg, msglen, key, keylen, why);
    }
    if (n == 0) {
        segs[0] = (seg){SEG_KEY, key, keylen, 0};
        n = 1;
    }

    json_t *container = f->root;
    char name[1024];
    for (int i = 0; i < n; i++) {
        const seg *sg = &segs[i];
        int last = i == n - 1;
        json_t *existing = NULL;
        size_t slot = 0;

        if (sg->kind == SEG_KEY) {
            if (!json_is_object(container))
                goto conflict;
            if (seg_name(sg, name, sizeof(name))) {
                json_decref(value);
                return fail(msg, msglen, key, keylen, "has an invalid name");
            }
            existing = json_object_get(container, name);
        } else {
            if (!json_is_array(container))
                goto conflict;
            if (sg->kind == SEG_INDEX) {
                if (sg->index < 1 || sg->index > CP_FORM_MAX_INDEX) {
                    json_decref(value);
                    char why[80];
                    snprintf(why, sizeof(why), "has an array index out of range (1 to %d)",
                             CP_FORM_MAX_INDEX);
                    return fail(msg, msglen, key, keylen, why);
                }
                slot = (size_t)sg->index - 1;
                if (pad_array(f, container, slot)) {
                    json_decref(value);
                    return fail(msg, msglen, key, keylen, "makes arrays too sparse");
                }
                existing = json_array_get(container, slot);
            } else {
                slot = json_array_size(container);
            }
        }
        if (existing && json_is_null(existing))
            existing = NULL;

        if (last) {
            if (!existing || sg->kind == SEG_INDEX) {
                if (!existing && sg->kind == SEG_KEY) {
                    if (json_object_set(container, name, value))
                        goto bad_name;
                } else if (slot < json_array_size(container)) {
                    if (json_is_object(existing) || json_is_array(existing))
                        goto conflict;
                    json_array_set(container, slot, value);
                } else {
                    json_array_append(container, value);
                }
            } else if (json_is_string(existing)) {
                /* a repeated key: "hosts=a&hosts=b" */
                json_t *arr = json_array();
                json_array_append(arr, existing);
                json_array_append(arr, value);
                json_object_set_new(container, name, arr);
            } else if (json_is_array(existing)) {
                json_array_append(existing, value);
            } else {
                goto conflict;
            }
            json_decref(value);
            return 0;
        }

        int want_object = segs[i + 1].kind == SEG_KEY;
        json_t *next = existing;
        if (!next) {
            next = want_object ? json_object() : json_array();
        } else if (want_object ? json_is_object(next) : json_is_array(next)) {
            json_incref(next);
        } else if (!want_object && json_is_string(next)) {
            /* "hosts=a&hosts[]=b": the earlier plain value becomes the first element */
            json_t *arr = json_array();
            json_array_append(arr, next);
            next = arr;
        } else {
            goto conflict;
        }
        int rc;
        if (sg->kind == SEG_KEY)
            rc = json_object_set(container, name, next);
        else if (slot < json_array_size(container))
            rc = json_array_set(container, slot, next);
        else
            rc = json_array_append(container, next);
        json_decref(next); /* the container holds it now */
        if (rc)
            goto bad_name;
        container = next;
    }
    json_decref(value);
    return 0;

conflict:
    json_decref(value);
    return fail(msg, msglen, key, keylen, "conflicts with another argument of the same name");
bad_name:
    json_decref(value);
    return fail(msg, msglen, key, keylen, "has an invalid name");
}

int cp_form_decode_urlencoded(cp_form *f, const char *s, size_t len, char *msg, size_t msglen)
{
    size_t i = 0;
    char *buf = malloc(len + 1);
    if (!buf) {
        snprintf(msg, msglen, "out of memory");
        return 500;
    }
    int rc = 0;
    while (i < len && rc == 0) {
        size_t end = i;
        while (end < len && s[end] != '&')
            end++;
        const char *eq = memchr(s + i, '=', end - i);
        size_t klen_raw = eq ? (size_t)(eq - (s + i)) : end - i;
        /* Decode key and value into the two halves of one buffer: together never longer than
         * the raw pair. */
        size_t kl = cp_form_unescape(s + i, klen_raw, buf, 1);
        size_t vl = 0;
        if (eq)
            vl = cp_form_unescape(eq + 1, (size_t)(s + end - (eq + 1)), buf + kl, 1);
        rc = cp_form_add(f, buf, kl, buf + kl, vl, msg, msglen);
        i = end + 1;
    }
    free(buf);
    return rc;
}
