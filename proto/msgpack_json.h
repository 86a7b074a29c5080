#ifndef SL_MSGPACK_JSON_H
#define SL_MSGPACK_JSON_H

/* jansson values to and from msgpack. Packing is deterministic (object keys in byte order),
 * so equal JSON gives equal bytes. Reading is a bounded pull parser over a byte range: no
 * allocation is driven by a declared count larger than the bytes that remain, nesting depth
 * is capped, and every type is checked, so it is safe on untrusted input. */

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define SL_MP_MAX_DEPTH 32 /* nesting of maps/arrays accepted by the reader and writer */

/* Packs v (any JSON value, depth <= SL_MP_MAX_DEPTH) with object keys sorted by bytes.
 * Integers use msgpack's smallest form, reals float64. Returns 0, or -1 with err. */
int sl_mp_pack_json(msgpack_packer *pk, const json_t *v, char *err, size_t errlen);

/* Packs a string of len bytes. */
void sl_mp_pack_strn(msgpack_packer *pk, const char *s, size_t len);
void sl_mp_pack_cstr(msgpack_packer *pk, const char *s);

/* A read position in msgpack bytes; base is where the buffer starts, for error offsets. */
typedef struct {
    const unsigned char *base, *p, *end;
} sl_mp_reader;

void sl_mp_reader_init(sl_mp_reader *r, const void *bytes, size_t len);

/* Bytes still arriving (an inflate in progress): fn waits for more, moves r->end past them and
 * returns 1, or returns 0 once no more will come (r->end is then the final end). A read that
 * fails short of the final end is tried again from where it started once more bytes are in,
 * so only the complete bytes decide an error, and the message is the one they give. */
typedef struct {
    int (*fn)(void *arg, sl_mp_reader *r);
    void *arg;
} sl_mp_more;

/* 1 when more bytes came in for r; 0 when none will (m NULL: the bytes were complete). */
static inline int sl_mp_more_bytes(const sl_mp_more *m, sl_mp_reader *r)
{
    return m && m->fn(m->arg, r);
}

typedef enum {
    SL_MP_NIL,
    SL_MP_BOOL,
    SL_MP_INT,
    SL_MP_FLOAT,
    SL_MP_STR,
    SL_MP_BIN,
    SL_MP_ARRAY,
    SL_MP_MAP,
    SL_MP_EXT,
    SL_MP_BAD, /* 0xc1 (never used) or no bytes left */
} sl_mp_kind;

/* The kind of the next value, without consuming it. */
sl_mp_kind sl_mp_peek(const sl_mp_reader *r);
/* A name for a kind, for messages ("string", "map"...). */
const char *sl_mp_kind_name(sl_mp_kind k);

/* Each reads one value of the stated kind and advances; on a kind mismatch, truncation or a
 * count larger than the remaining bytes allow, returns -1 with err and leaves r unspecified.
 * Strings and bins point into the buffer (not NUL-terminated). */
int sl_mp_read_map(sl_mp_reader *r, uint32_t *n, char *err, size_t errlen);
int sl_mp_read_array(sl_mp_reader *r, uint32_t *n, char *err, size_t errlen);
int sl_mp_read_str(sl_mp_reader *r, const char **s, uint32_t *len, char *err, size_t errlen);
int sl_mp_read_bin(sl_mp_reader *r, const unsigned char **b, uint32_t *len, char *err,
                   size_t errlen);
int sl_mp_read_int(sl_mp_reader *r, int64_t *v, char *err, size_t errlen);

/* Skips one value of any kind (depth-bounded). */
int sl_mp_skip(sl_mp_reader *r, char *err, size_t errlen);

/* Copies at most dstlen-1 bytes of untrusted s[0..len) into dst for an error message,
 * replacing anything but printable ASCII with '?' (messages travel as JSON strings, which
 * must be UTF-8). Returns dst. */
const char *sl_mp_printable(char *dst, size_t dstlen, const char *s, size_t len);

/* Reads one value into a new jansson value (caller owns *out). Maps must have distinct,
 * NUL-free UTF-8 string keys, strings must be UTF-8, integers fit int64, floats be finite;
 * bin and ext are refused. */
int sl_mp_read_json(sl_mp_reader *r, json_t **out, char *err, size_t errlen);

#endif
