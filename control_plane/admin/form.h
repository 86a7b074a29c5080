#ifndef CP_ADMIN_FORM_H
#define CP_ADMIN_FORM_H

/* Kong's argument rules for form bodies, multipart part names and query strings: one flat list
 * of "key=value" pairs becomes a nested JSON object whose leaves are strings.
 *   paths[]=/a&paths[]=/b        -> {"paths":["/a","/b"]}
 *   paths[1]=/a                  -> {"paths":["/a"]}        (1-based, as Kong)
 *   hosts=a&hosts=b              -> {"hosts":["a","b"]}     (repeated key)
 *   config.minute=5, config[minute]=5 -> {"config":{"minute":"5"}}
 * Pure functions over bytes (no I/O), so the fuzzer can call them. */

#include <jansson.h>
#include <stddef.h>

#define CP_FORM_MAX_DEPTH 8       /* key segments ("a.b[c][]" is 4); deeper: 400 */
#define CP_FORM_MAX_INDEX 1000    /* largest 1-based array index */
#define CP_FORM_MAX_PADDING 10000 /* nulls filling gaps of sparse indexes, per decode */

/* State of one decode: the object being built and the bounds spent so far. */
typedef struct {
    json_t *root; /* owned by the caller */
    int nargs;    /* arguments added (bounded by CP_ADMIN_MAX_ARGS) */
    long padding; /* nulls added for sparse indexes */
} cp_form;

/* Adds one already-decoded argument to f->root. key and value may hold any bytes; they must be
 * UTF-8 without NUL in the key. Returns 0, or 400 with a message in msg. */
int cp_form_add(cp_form *f, const char *key, size_t keylen, const char *val, size_t vallen,
                char *msg, size_t msglen);

/* Decodes "a=1&b=2" ('+' is a space, %XX escapes) into f->root. More than
 * CP_ADMIN_MAX_ARGS arguments: 400 "Too many arguments". Returns 0 or 400 with msg. */
int cp_form_decode_urlencoded(cp_form *f, const char *s, size_t len, char *msg, size_t msglen);

/* Percent-decodes in[0..len) into out (at least len bytes); with plus_space, '+' becomes a
 * space. A '%' not followed by two hex digits is kept as is. Returns the decoded length. */
size_t cp_form_unescape(const char *in, size_t len, char *out, int plus_space);

/* Copies up to 64 printable ASCII bytes of s into out for an error message ('?' for others). */
void cp_form_safe_name(const char *s, size_t len, char *out, size_t outlen);

#endif
