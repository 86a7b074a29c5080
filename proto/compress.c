#include "proto/compress.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
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

/* Where inflated bytes go: buf[0..len) is out, cap bytes are usable, never more than limit.
 * grow (may be NULL) makes room when len reaches cap; progress (may be NULL) runs after each
 * step of at most `step` bytes. */
typedef struct sl_inflate_sink {
    unsigned char *buf;
    size_t len, cap, limit, step;
    int (*grow)(struct sl_inflate_sink *s, char *err, size_t errlen);
    void (*progress)(struct sl_inflate_sink *s);
} sl_inflate_sink;

/* Inflates one complete zlib stream in[0..len) into s, refusing output past max. */
static int inflate_into(const unsigned char *in, size_t len, size_t max, sl_inflate_sink *s,
                        char *err, size_t errlen)
{
    z_stream zs = {0};
    if (inflateInit(&zs) != Z_OK) {
        snprintf(err, errlen, "inflateInit failed");
        return -1;
    }
    size_t in_off = 0;
    int rc = Z_OK;
    for (;;) {
        if (s->len == s->cap) {
            if (s->cap == s->limit)
                break; /* over the bound */
            if (s->grow(s, err, errlen)) {
                inflateEnd(&zs);
                return -1;
            }
        }
        size_t in_n = len - in_off < SL_ZCHUNK ? len - in_off : SL_ZCHUNK;
        size_t out_n = s->cap - s->len < s->step ? s->cap - s->len : s->step;
        zs.next_in = (Bytef *)(in + in_off);
        zs.avail_in = (uInt)in_n;
        zs.next_out = s->buf + s->len;
        zs.avail_out = (uInt)out_n;
        rc = inflate(&zs, Z_NO_FLUSH);
        in_off += in_n - zs.avail_in;
        s->len += out_n - zs.avail_out;
        if (s->progress)
            s->progress(s);
        if (rc == Z_STREAM_END)
            break;
        if (rc == Z_BUF_ERROR && in_off == len && zs.avail_out > 0)
            break; /* input ran out before the stream ended: truncated */
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            snprintf(err, errlen, "corrupt compressed payload: %s",
                     zs.msg ? zs.msg : "inflate error");
            inflateEnd(&zs);
            return -1;
        }
    }
    inflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        if (s->len >= s->limit)
            snprintf(err, errlen, "decompressed payload exceeds the limit of %zu bytes", max);
        else
            snprintf(err, errlen, "truncated compressed payload");
        return -1;
    }
    if (s->len > max) {
        snprintf(err, errlen, "decompressed payload exceeds the limit of %zu bytes", max);
        return -1;
    }
    if (in_off != len) {
        snprintf(err, errlen, "%zu unexpected bytes after the compressed payload", len - in_off);
        return -1;
    }
    return 0;
}

/* one byte of headroom past max tells "exactly max" from "more than max" */
static size_t limit_of(size_t max)
{
    return max < SIZE_MAX ? max + 1 : max;
}

static int grow_heap(sl_inflate_sink *s, char *err, size_t errlen)
{
    size_t ncap = s->cap > s->limit / 2 ? s->limit : s->cap * 2;
    unsigned char *nb = realloc(s->buf, ncap);
    if (!nb) {
        snprintf(err, errlen, "out of memory decompressing %zu bytes", ncap);
        return -1;
    }
    s->buf = nb;
    s->cap = ncap;
    return 0;
}

int sl_inflate_bounded(const unsigned char *in, size_t len, size_t max, unsigned char **out,
                       size_t *outlen, char *err, size_t errlen)
{
    /* start from a typical ratio and grow; the bound caps every step */
    sl_inflate_sink s = {.limit = limit_of(max), .step = SL_ZCHUNK, .grow = grow_heap};
    s.cap = len < SIZE_MAX / 4 ? len * 4 + 1024 : s.limit;
    if (s.cap > s.limit)
        s.cap = s.limit;
    s.buf = malloc(s.cap);
    if (!s.buf) {
        snprintf(err, errlen, "out of memory decompressing");
        return -1;
    }
    if (inflate_into(in, len, max, &s, err, errlen)) {
        free(s.buf);
        return -1;
    }
    *out = s.buf;
    *outlen = s.len;
    return 0;
}

/* ---- inflating on a thread of its own ---- */

/* Bytes are published this often: the reader is never far behind the inflater. */
#define STREAM_STEP ((size_t)256 << 10)

struct sl_inflate_stream {
    sl_inflate_sink sink; /* buf: the whole bound reserved at once, so it never moves */
    const unsigned char *in;
    size_t in_len, max;
    pthread_t tid;
    int joined;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t out; /* bytes published */
    int done, rc;
    char err[256];
};

static void publish(sl_inflate_sink *s)
{
    sl_inflate_stream *st = (sl_inflate_stream *)s; /* the sink is its first member */
    pthread_mutex_lock(&st->lock);
    st->out = s->len;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

static void *stream_main(void *arg)
{
    sl_inflate_stream *st = arg;
    char err[256];
    int rc = inflate_into(st->in, st->in_len, st->max, &st->sink, err, sizeof(err));
    pthread_mutex_lock(&st->lock);
    st->rc = rc;
    if (rc)
        snprintf(st->err, sizeof(st->err), "%s", err);
    st->out = st->sink.len;
    st->done = 1;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

sl_inflate_stream *sl_inflate_start(const unsigned char *in, size_t len, size_t max)
{
    sl_inflate_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->in = in;
    st->in_len = len;
    st->max = max;
    st->sink.limit = st->sink.cap = limit_of(max);
    st->sink.step = STREAM_STEP;
    st->sink.progress = publish;
    /* address space only: pages are taken as the output reaches them */
    void *buf = st->sink.cap < SIZE_MAX ? mmap(NULL, st->sink.cap, PROT_READ | PROT_WRITE,
                                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
                                        : MAP_FAILED;
    if (buf == MAP_FAILED) {
        free(st);
        return NULL;
    }
    st->sink.buf = buf;
    pthread_mutex_init(&st->lock, NULL);
    pthread_cond_init(&st->cond, NULL);
    if (pthread_create(&st->tid, NULL, stream_main, st) != 0) {
        munmap(buf, st->sink.cap);
        pthread_mutex_destroy(&st->lock);
        pthread_cond_destroy(&st->cond);
        free(st);
        return NULL;
    }
    return st;
}

const unsigned char *sl_inflate_stream_bytes(const sl_inflate_stream *st)
{
    return st->sink.buf;
}

size_t sl_inflate_wait(sl_inflate_stream *st, size_t want, int *done)
{
    pthread_mutex_lock(&st->lock);
    while (!st->done && st->out < want)
        pthread_cond_wait(&st->cond, &st->lock);
    size_t n = st->out;
    *done = st->done;
    pthread_mutex_unlock(&st->lock);
    return n;
}

int sl_inflate_finish(sl_inflate_stream *st, size_t *len, char *err, size_t errlen)
{
    if (!st->joined) {
        pthread_join(st->tid, NULL);
        st->joined = 1;
    }
    if (st->rc) {
        snprintf(err, errlen, "%s", st->err);
        return -1;
    }
    *len = st->sink.len;
    return 0;
}

void sl_inflate_stream_free(sl_inflate_stream *st)
{
    if (!st)
        return;
    if (!st->joined)
        pthread_join(st->tid, NULL);
    munmap(st->sink.buf, st->sink.cap);
    pthread_mutex_destroy(&st->lock);
    pthread_cond_destroy(&st->cond);
    free(st);
}
