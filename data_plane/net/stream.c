#include "data_plane/net/stream.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

/* One worker thread reads ciphertext into this before handing it to OpenSSL. */
static _Thread_local char cipher_in[65536];

static void tls_pump(dp_stream *s);

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
        SSL_set_tlsext_host_name(s->ssl, sni);
        if (verify) {
            X509_VERIFY_PARAM *vp = SSL_get0_param(s->ssl);
            X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (!X509_VERIFY_PARAM_set1_host(vp, sni, 0))
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
