#ifndef SL_COMPRESS_H
#define SL_COMPRESS_H

/* zlib compression for snapshots. Inflate is streaming with a running output bound, so a
 * small input that expands enormously (a "zip bomb") is refused before it can allocate more
 * than the bound. */

#include <stddef.h>

/* Compresses in[0..len) into a new zlib stream. *out is malloc'd (caller frees).
 * Returns 0, or -1 with err. */
int sl_deflate(const unsigned char *in, size_t len, unsigned char **out, size_t *outlen, char *err,
               size_t errlen);

/* Inflates one complete zlib stream in[0..len) into a new buffer of at most max bytes.
 * Refuses truncated or corrupt streams, trailing bytes after the stream, and output past max
 * (never allocating more than max + 1 bytes). *out is malloc'd (caller frees); it holds
 * *outlen bytes. Returns 0, or -1 with err. */
int sl_inflate_bounded(const unsigned char *in, size_t len, size_t max, unsigned char **out,
                       size_t *outlen, char *err, size_t errlen);

#endif
