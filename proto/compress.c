#include "proto/compress.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

/* Level 6 (zlib's default) costs about twice level 1 on large configs for a few percent of
 * size; snapshots are built once per version and sent to every node, so size wins only a
 * little. Level 1 keeps encode of 100,000 routes well inside the apply budget. */
#define SL_DEFLATE_LEVEL 1

/* zlib counts in uInt; feed it at most this much per call. */
#define SL_ZCHUNK ((size_t)1 << 30)

int sl_deflate(const unsigned char *in, size_t len, unsigned char **out, size_t *outlen, char *err,
               size_t errlen)
{
    z_stream zs = {0};
    if (deflateInit(&zs, SL_DEFLATE_LEVEL) != Z_OK) {
        snprintf(err, errlen, "deflateInit failed");
        return -1;
    }
    size_t cap = deflateBound(&zs, len > ULONG_MAX ? ULONG_MAX : (uLong)len);
    if (len > ULONG_MAX || cap < len) /* deflateBound saturates on huge inputs */
        cap = len + len / 1000 + 64;
    unsigned char *buf = malloc(cap ? cap : 1);
    if (!buf) {
        deflateEnd(&zs);
        snprintf(err, errlen, "out of memory compressing %zu bytes", len);
        return -1;
    }
    size_t in_off = 0, out_off = 0;
    int rc;
    do {
        size_t in_n = len - in_off < SL_ZCHUNK ? len - in_off : SL_ZCHUNK;
        size_t out_n = cap - out_off < SL_ZCHUNK ? cap - out_off : SL_ZCHUNK;
        zs.next_in = (Bytef *)(in + in_off);
        zs.avail_in = (uInt)in_n;
        zs.next_out = buf + out_off;
        zs.avail_out = (uInt)out_n;
        int flush = in_off + in_n == len ? Z_FINISH : Z_NO_FLUSH;
        rc = deflate(&zs, flush);
        in_off += in_n - zs.avail_in;
        out_off += out_n - zs.avail_out;
        if (rc == Z_STREAM_ERROR || (rc == Z_BUF_ERROR && out_off == cap)) {
            free(buf);
            deflateEnd(&zs);
            snprintf(err, errlen, "deflate failed (%d)", rc);
            return -1;
        }
    } while (rc != Z_STREAM_END);
    deflateEnd(&zs);
    *out = buf;
    *outlen = out_off;
    return 0;
}

int sl_inflate_bounded(const unsigned char *in, size_t len, size_t max, unsigned char **out,
                       size_t *outlen, char *err, size_t errlen)
{
    z_stream zs = {0};
    if (inflateInit(&zs) != Z_OK) {
        snprintf(err, errlen, "inflateInit failed");
        return -1;
    }
    /* Start from a typical ratio and grow; the bound caps every step, and one byte of
     * headroom past max tells "exactly max" from "more than max". */
    size_t limit = max < SIZE_MAX ? max + 1 : max;
    size_t cap = len < SIZE_MAX / 4 ? len * 4 + 1024 : limit;
    if (cap > limit)
        cap = limit;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        inflateEnd(&zs);
        snprintf(err, errlen, "out of memory decompressing");
        return -1;
    }
    size_t in_off = 0, out_off = 0;
    int rc = Z_OK;
    for (;;) {
        if (out_off == cap) {
            if (cap == limit)
                break; /* over the bound */
            size_t ncap = cap > limit / 2 ? limit : cap * 2;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                inflateEnd(&zs);
                snprintf(err, errlen, "out of memory decompressing %zu bytes", ncap);
                return -1;
            }
            buf = nb;
            cap = ncap;
        }
        size_t in_n = len - in_off < SL_ZCHUNK ? len - in_off : SL_ZCHUNK;
        size_t out_n = cap - out_off < SL_ZCHUNK ? cap - out_off : SL_ZCHUNK;
        zs.next_in = (Bytef *)(in + in_off);
        zs.avail_in = (uInt)in_n;
        zs.next_out = buf + out_off;
        zs.avail_out = (uInt)out_n;
        rc = inflate(&zs, Z_NO_FLUSH);
        in_off += in_n - zs.avail_in;
        out_off += out_n - zs.avail_out;
        if (rc == Z_STREAM_END)
            break;
        if (rc == Z_BUF_ERROR && in_off == len && zs.avail_out > 0)
            break; /* input ran out before the stream ended: truncated */
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            free(buf);
            snprintf(err, errlen, "corrupt compressed payload: %s",
                     zs.msg ? zs.msg : "inflate error");
            inflateEnd(&zs);
            return -1;
        }
    }
    inflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(buf);
        if (out_off >= limit)
            snprintf(err, errlen, "decompressed payload exceeds the limit of %zu bytes", max);
        else
            snprintf(err, errlen, "truncated compressed payload");
        return -1;
    }
    if (out_off > max) {
        free(buf);
        snprintf(err, errlen, "decompressed payload exceeds the limit of %zu bytes", max);
        return -1;
    }
    if (in_off != len) {
        free(buf);
        snprintf(err, errlen, "%zu unexpected bytes after the compressed payload", len - in_off);
        return -1;
    }
    *out = buf;
    *outlen = out_off;
    return 0;
}
