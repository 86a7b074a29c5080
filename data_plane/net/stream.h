#ifndef DP_STREAM_H
#define DP_STREAM_H

/* A TCP connection with optional TLS (OpenSSL over memory BIOs), so the proxy code is the same
 * for http and https on both sides. Reads land directly in the owner's buffer (plaintext);
 * writes take iovecs that must stay valid until the write callback. */

#include <openssl/ssl.h>
#include <uv.h>

typedef struct dp_stream dp_stream;

/* The owner's read space: returns where the next plaintext goes and sets *cap (0: full). */
typedef char *(*dp_stream_buf_cb)(dp_stream *s, size_t *cap);
/* n > 0: bytes appended at the last buffer; n < 0: UV_EOF or an error. */
typedef void (*dp_stream_read_cb)(dp_stream *s, ssize_t n);
/* TLS handshake done (status 0) or failed (< 0); plain connections never call it. */
typedef void (*dp_stream_hs_cb)(dp_stream *s, int status);
typedef void (*dp_stream_write_cb)(dp_stream *s, int status, void *arg);
typedef void (*dp_stream_close_cb)(dp_stream *s);

#define DP_STREAM_WREQS 4

typedef struct {
    uv_write_t req;
    dp_stream *s;
    dp_stream_write_cb cb;
    void *arg;
    char *tls_buf; /* ciphertext (TLS only), freed after the write */
    int busy;
    int heap; /* allocated because the embedded slots were busy */
} dp_stream_wreq;

struct dp_stream {
    uv_tcp_t tcp;
    SSL *ssl;
    BIO *rbio, *wbio;
    uv_timer_t pump; /* TLS: delivers plaintext OpenSSL already holds when reading resumes */
    void *owner;
    dp_stream_buf_cb get_buf;
    dp_stream_read_cb on_read;
    dp_stream_hs_cb on_handshake;
    dp_stream_close_cb on_close;
    unsigned reading : 1, handshake_done : 1, closing : 1, pump_init : 1, eof : 1;
    int pending_closes;
    size_t write_queue; /* bytes queued in writes not yet completed */
    dp_stream_wreq wreqs[DP_STREAM_WREQS];
};

/* Largest iovec count of one dp_stream_write. */
#define DP_STREAM_MAX_IOV 256

/* On a worker thread, before its loop runs: writes that complete at once skip libuv's write
 * queue (their callbacks run on the loop's check phase). Streams on other loops use plain
 * queued writes. dp_stream_loop_close (same thread, when the loop is being shut down) runs what
 * is queued and closes the handles. */
int dp_stream_loop_init(uv_loop_t *loop);
void dp_stream_loop_close(void);

/* Initializes the handle on loop (then uv_accept or dp_stream_connect). */
int dp_stream_init(dp_stream *s, uv_loop_t *loop, void *owner, dp_stream_buf_cb get_buf,
                   dp_stream_read_cb on_read);

/* Starts TLS on an accepted (server) or connected (client) stream. For clients, sni is sent
 * and, when verify, checked against the certificate. The handshake runs as data is read. */
int dp_stream_tls_server(dp_stream *s, SSL_CTX *ctx);
int dp_stream_tls_client(dp_stream *s, SSL_CTX *ctx, const char *sni, int verify);

void dp_stream_read_start(dp_stream *s);
void dp_stream_read_stop(dp_stream *s);

/* Queues bufs (which must stay valid until cb). cb is called once, also on close
 * (UV_ECANCELED). Returns 0 or a negative error (cb not called). */
int dp_stream_write(dp_stream *s, const uv_buf_t *bufs, unsigned n, dp_stream_write_cb cb,
                    void *arg);

/* Closes; on_close runs once every handle is closed, after pending write callbacks. */
void dp_stream_close(dp_stream *s, dp_stream_close_cb on_close);

/* The SNI the client sent (TLS server streams), or NULL. */
const char *dp_stream_sni(const dp_stream *s);

#endif
