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

/* The same inflate on a thread of its own, so the caller can read the first bytes while the
 * rest is still being inflated. The output buffer is max + 1 bytes of address space reserved
 * at once (pages are used as the output reaches them), so it never moves. NULL when the
 * thread or the reservation cannot be had: use sl_inflate_bounded. in must outlive the
 * stream. */
typedef struct sl_inflate_stream sl_inflate_stream;
sl_inflate_stream *sl_inflate_start(const unsigned char *in, size_t len, size_t max);

/* Where the output starts; only bytes a wait has reported are there. */
const unsigned char *sl_inflate_stream_bytes(const sl_inflate_stream *st);

/* Blocks until at least want bytes are out or the inflate has ended; returns how many are
 * out and sets *done once no more will come (the output is then complete, or damaged: see
 * sl_inflate_finish). */
size_t sl_inflate_wait(sl_inflate_stream *st, size_t want, int *done);

/* Waits for the end. 0 with *len the whole output, or -1 with err as sl_inflate_bounded
 * gives it (corrupt, truncated, trailing bytes, or over max). */
int sl_inflate_finish(sl_inflate_stream *st, size_t *len, char *err, size_t errlen);

void sl_inflate_stream_free(sl_inflate_stream *st);

#endif
