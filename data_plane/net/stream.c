#include "data_plane/net/stream.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

/* One worker thread reads ciphertext into this before handing it to OpenSSL. */
static _Thread_local char cipher_in[65536];

static void tls_pump(dp_stream *s);

/* Writes that went out at once (uv_try_write) report on the loop's check phase, right after the
 * poll that caused them: a uv_write that completes at once costs an epoll_ctl when libuv drains
 * the stream, so two per proxied request. The callback is still never called from inside
 * dp_stream_write, which the proxy code relies on. One queue per worker thread. */
typedef struct {
    dp_stream *s;
    dp_stream_write_cb cb;
    void *arg;
} done_entry;

typedef struct {
    uv_loop_t *loop;
    uv_check_t check;
    uv_idle_t idle; /* keeps the poll from blocking while the queue is not empty */
    done_entry *q;
    size_t n, cap;
} done_queue;

static _Thread_local done_queue *dq;

static void run_done(done_queue *d)
{
    /* callbacks may queue more completions: the index walks the growing queue */
    for (size_t i = 0; i < d->n; i++) {
        done_entry e = d->q[i];
        e.cb(e.s, 0, e.arg);
    }
    d->n = 0;
    uv_idle_stop(&d->idle);
}

static void on_check(uv_check_t *h)
{
    done_queue *d = h->data;
    if (d->n)
        run_done(d);
}

static void on_idle(uv_idle_t *h)
{
    (void)h; /* only there so the poll doesn't wait: on_check runs the queue */
}

int dp_stream_loop_init(uv_loop_t *loop)
{
    done_queue *d = calloc(1, sizeof(*d));
    if (!d)
        return UV_ENOMEM;
    d->loop = loop;
    uv_check_init(loop, &d->check);
    uv_idle_init(loop, &d->idle);
    d->check.data = d;
    d->idle.data = d;
    uv_check_start(&d->check, on_check);
    uv_unref((uv_handle_t *)&d->check);
    dq = d;
    return 0;
}

static void dq_closed(uv_handle_t *h)
{
    done_queue *d = h->data;
    if (h == (uv_handle_t *)&d->idle) {
        free(d->q);
        free(d);
    }
}

void dp_stream_loop_close(void)
{
    done_queue *d = dq;
    if (!d)
        return;
    run_done(d);
    dq = NULL;
    uv_close((uv_handle_t *)&d->check, NULL);
    uv_close((uv_handle_t *)&d->idle, dq_closed); /* closes after check: frees d */
}

static int dq_push(done_queue *d, dp_stream *s, dp_stream_write_cb cb, void *arg)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        done_entry *q = realloc(d->q, cap * sizeof(*q));
        if (!q)
            return -1;
        d->q = q;
        d->cap = cap;
    }
    d->q[d->n++] = (done_entry){s, cb, arg};
    uv_idle_start(&d->idle, on_idle);
    return 0;
}

/* Tries to write everything now. Returns 1 when all went out (cb queued), 0 when some is left
 * (*skip says how many bytes went), or a negative error. */
static int try_write_all(dp_stream *s, const uv_buf_t *bufs, unsigned n, size_t *skip,
                         dp_stream_write_cb cb, void *arg)
{
    done_queue *d = dq;
    *skip = 0;
    if (!d || d->loop != s->tcp.loop || !cb)
        return 0;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    int r = uv_try_write((uv_stream_t *)&s->tcp, bufs, n);
    if (r == UV_EAGAIN || r == UV_ENOSYS)
        return 0;
    if (r < 0)
        return r;
    if ((size_t)r < total) {
        *skip = (size_t)r;
        return 0;
    }
    if (dq_push(d, s, cb, arg) != 0)
        return UV_ENOMEM;
    return 1;
}

int dp_stream_init(dp_stream *s, uv_loop_t *loop, void *owner, dp_stream_buf_cb get_buf,
                   dp_stream_read_cb on_read)
{
    memset(s, 0, sizeof(*s));
    s->owner = owner;
    s->get_buf = get_buf;
    s->on_read = on_read;
    s->tcp.data = s;
    return uv_tcp_init(loop, &s->tcp);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    dp_stream *s = h->data;
    if (s->ssl) {
        *buf = uv_buf_init(cipher_in, sizeof(cipher_in));
        return;
    }
    size_t cap = 0;
    char *p = s->get_buf(s, &cap);
    *buf = uv_buf_init(p, (unsigned)cap);
}

static void flush_done(uv_write_t *req, int status)
{
    dp_stream_wreq *w = req->data;
    dp_stream *s = w->s;
    free(w->tls_buf);
    w->tls_buf = NULL;
    w->busy = 0;
    dp_stream_write_cb cb = w->cb;
    void *arg = w->arg;
    if (w->heap)
        free(w);
    if (cb)
        cb(s, status, arg);
}

static dp_stream_wreq *wreq_get(dp_stream *s)
{
    for (int i = 0; i < DP_STREAM_WREQS; i++)
        if (!s->wreqs[i].busy) {
            s->wreqs[i].busy = 1;
            s->wreqs[i].heap = 0;
            return &s->wreqs[i];
        }
    dp_stream_wreq *w = calloc(1, sizeof(*w));
    if (w) {
        w->busy = 1;
        w->heap = 1;
    }
    return w;
}

static void write_done(uv_write_t *req, int status)
{
    dp_stream_wreq *w = req->data;
    w->s->write_queue = uv_stream_get_write_queue_size((uv_stream_t *)&w->s->tcp);
    flush_done(req, status);
}

/* Sends whatever OpenSSL has produced (handshake records, encrypted data). */
static int tls_flush(dp_stream *s, dp_stream_write_cb cb, void *arg)
{
    char *data;
    long n = BIO_get_mem_data(s->wbio, &data);
    if (n <= 0) {
        if (cb)
            cb(s, 0, arg); /* nothing to send: completes at once */
        return 0;
    }
    dp_stream_wreq *w = wreq_get(s);
    char *copy = malloc((size_t)n);
    if (!w || !copy) {
        free(copy);
        if (w && w->heap)
            free(w);
        else if (w)
            w->busy = 0;
        return UV_ENOMEM;
    }
    memcpy(copy, data, (size_t)n);
    (void)BIO_reset(s->wbio);
    w->s = s;
    w->cb = cb;
    w->arg = arg;
    w->tls_buf = copy;
    w->req.data = w;
    uv_buf_t b = uv_buf_init(copy, (unsigned)n);
    int rc = uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, write_done);
    if (rc) {
        free(copy);
        w->tls_buf = NULL;
        if (w->heap)
            free(w);
        else
            w->busy = 0;
    }
    return rc;
}

static void read_cb(uv_stream_t *h, ssize_t n, const uv_buf_t *buf)
{
    dp_stream *s = h->data;
    if (n == 0 || s->closing)
        return;
    if (!s->ssl) {
        s->on_read(s, n);
        return;
    }
    if (n < 0) {
        s->eof = 1;
        if (!s->handshake_done && s->on_handshake)
            s->on_handshake(s, (int)n);
        else
            s->on_read(s, n);
        return;
    }
    BIO_write(s->rbio, buf->base, (int)n);
    tls_pump(s);
}

static void pump_cb(uv_timer_t *t)
{
    dp_stream *s = t->data;
    if (!s->closing && s->reading)
        tls_pump(s);
}

static void tls_pump(dp_stream *s)
{
    if (!s->handshake_done) {
        int r = SSL_do_handshake(s->ssl);
        tls_flush(s, NULL, NULL);
        if (r != 1) {
            int e = SSL_get_error(s->ssl, r);
            ERR_clear_error();
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return;
            if (s->on_handshake)
                s->on_handshake(s, UV_EPROTO);
            return;
        }
        s->handshake_done = 1;
        if (s->on_handshake)
            s->on_handshake(s, 0);
        if (s->closing)
            return;
    }
    while (s->reading && !s->closing) {
        size_t cap = 0;
        char *p = s->get_buf(s, &cap);
        if (!cap)
            break;
        int r = SSL_read(s->ssl, p, cap > 0x7fffffff ? 0x7fffffff : (int)cap);
        if (r > 0) {
            s->on_read(s, r);
            continue;
        }
        int e = SSL_get_error(s->ssl, r);
        ERR_clear_error();
        tls_flush(s, NULL, NULL); /* TLS 1.3 post-handshake messages */
        if (e == SSL_ERROR_WANT_READ)
            break;
        s->on_read(s, e == SSL_ERROR_ZERO_RETURN ? UV_EOF : UV_EPROTO);
        return;
    }
}

static int tls_setup(dp_stream *s, SSL_CTX *ctx)
{
    s->ssl = SSL_new(ctx);
    s->rbio = BIO_new(BIO_s_mem());
    s->wbio = BIO_new(BIO_s_mem());
    if (!s->ssl || !s->rbio || !s->wbio)
        return UV_ENOMEM;
    BIO_set_mem_eof_return(s->rbio, -1);
    SSL_set_bio(s->ssl, s->rbio, s->wbio);
    uv_timer_init(s->tcp.loop, &s->pump);
    s->pump.data = s;
    s->pump_init = 1;
    return 0;
}

int dp_stream_tls_server(dp_stream *s, SSL_CTX *ctx)
{
    int rc = tls_setup(s, ctx);
    if (rc)
        return rc;
    SSL_set_accept_state(s->ssl);
    return 0;
}

int dp_stream_tls_client(dp_stream *s, SSL_CTX *ctx, const char *sni, int verify)
{
    int rc = tls_setup(s, ctx);
    if (rc)
        return rc;
    SSL_set_connect_state(s->ssl);
    if (sni && *sni) {
        /* an address is checked against the certificate's IP entries and is never sent as
         * SNI (RFC 6066 allows only host names there) */
        unsigned char ip[16];
        int is_ip = inet_pton(AF_INET, sni, ip) == 1 || inet_pton(AF_INET6, sni, ip) == 1;
        if (!is_ip)
            SSL_set_tlsext_host_name(s->ssl, sni);
        if (verify) {
            X509_VERIFY_PARAM *vp = SSL_get0_param(s->ssl);
            X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (is_ip ? !X509_VERIFY_PARAM_set1_ip_asc(vp, sni)
                      : !X509_VERIFY_PARAM_set1_host(vp, sni, 0))
                return UV_EINVAL;
        }
    }
    s->reading = 1;
    uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, read_cb);
    tls_pump(s); /* sends the ClientHello */
    return 0;
}

void dp_stream_read_start(dp_stream *s)
{
    if (s->closing)
        return;
    if (!s->reading) {
        s->reading = 1;
        uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, read_cb);
    }
    if (s->ssl && s->handshake_done && (SSL_pending(s->ssl) > 0 || BIO_pending(s->rbio) > 0))
        uv_timer_start(&s->pump, pump_cb, 0, 0);
}

void dp_stream_read_stop(dp_stream *s)
{
    if (!s->reading)
        return;
    s->reading = 0;
    if (!s->closing)
        uv_read_stop((uv_stream_t *)&s->tcp);
}

int dp_stream_write(dp_stream *s, const uv_buf_t *bufs, unsigned n, dp_stream_write_cb cb,
                    void *arg)
{
    if (s->closing)
        return UV_ECANCELED;
    if (s->ssl) {
        for (unsigned i = 0; i < n; i++) {
            if (!bufs[i].len)
                continue;
            int r = SSL_write(s->ssl, bufs[i].base, (int)bufs[i].len);
            if (r <= 0) {
                ERR_clear_error();
                return UV_EPROTO;
            }
        }
        return tls_flush(s, cb, arg);
    }
    size_t skip;
    int tr = try_write_all(s, bufs, n, &skip, cb, arg);
    if (tr < 0)
        return tr;
    if (tr == 1)
        return 0;
    uv_buf_t rest[DP_STREAM_MAX_IOV];
    if (skip) { /* a partial write: the rest goes through a queued write */
        unsigned k = 0;
        while (k < n && skip >= bufs[k].len)
            skip -= bufs[k++].len;
        if (n - k > DP_STREAM_MAX_IOV)
            return UV_EINVAL;
        for (unsigned i = k; i < n; i++)
            rest[i - k] = bufs[i];
        rest[0].base += skip;
        rest[0].len -= skip;
        bufs = rest;
        n -= k;
    }
    dp_stream_wreq *w = wreq_get(s);
    if (!w)
        return UV_ENOMEM;
    w->s = s;
    w->cb = cb;
    w->arg = arg;
    w->tls_buf = NULL;
    w->req.data = w;
    int rc = uv_write(&w->req, (uv_stream_t *)&s->tcp, bufs, n, write_done);
    if (rc) {
        if (w->heap)
            free(w);
        else
            w->busy = 0;
        return rc;
    }
    s->write_queue = uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp);
    return 0;
}

static void handle_closed(uv_handle_t *h)
{
    dp_stream *s = h->data;
    if (--s->pending_closes > 0)
        return;
    if (s->ssl)
        SSL_free(s->ssl); /* frees both BIOs */
    s->ssl = NULL;
    if (s->on_close)
        s->on_close(s);
}

void dp_stream_close(dp_stream *s, dp_stream_close_cb on_close)
{
    if (s->closing)
        return;
    s->closing = 1;
    s->reading = 0;
    s->on_close = on_close;
    s->pending_closes = 1 + s->pump_init;
    if (s->pump_init)
        uv_close((uv_handle_t *)&s->pump, handle_closed);
    uv_close((uv_handle_t *)&s->tcp, handle_closed);
}

const char *dp_stream_sni(const dp_stream *s)
{
    return s->ssl ? SSL_get_servername(s->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}
