#ifndef CP_ADMIN_CONN_H
#define CP_ADMIN_CONN_H

/* Internals shared by server.c (listeners, start/stop) and conn.c (one client connection:
 * TLS, HTTP/1.1 parsing, limits, auth, responses). Not for other modules. */

#include <openssl/ssl.h>
#include <uv.h>

#include "control_plane/admin/dbpool.h"
#include "control_plane/admin/server.h"

#define CP_ADMIN_MAX_HEADER_BYTES (64 * 1024) /* request line + headers: 431 */
#define CP_ADMIN_MAX_HEADERS 100              /* header lines: 431 */
#define CP_ADMIN_MAX_URL (8 * 1024)           /* request target: 414 */
#define CP_ADMIN_MAX_CONNS 4096               /* open connections; more are closed at accept */
#define CP_ADMIN_IDLE_MS 60000                /* keepalive idle between requests */
#define CP_ADMIN_READ_MS 30000                /* header section deadline; body between reads */
#define CP_ADMIN_LINGER_MS 2000               /* draining input after a final response */
#define CP_ADMIN_DB_THREADS 8
#define CP_ADMIN_QUEUE 1024 /* requests waiting for a DB thread; more: 503 */

typedef struct cp_admin_conn cp_admin_conn;

typedef struct {
    uv_tcp_t tcp;
    cp_admin_server *srv;
    int ssl;
} cp_admin_listener;

struct cp_admin_server {
    uv_loop_t *loop;
    cp_admin_ctx ctx; /* the caller's, with the counter pointers aimed at the fields below */
    SSL_CTX *ssl_ctx; /* NULL without ssl listeners */
    int token_set;
    unsigned char token_digest[32]; /* SHA-256 of admin_token */
    cp_admin_listener *listeners[16];
    int nlisteners;
    cp_admin_conn *conns; /* open connections (doubly linked) */
    cp_dbpool *pool;
    int stopping;
    int refs; /* 1 until stop + open listener handles + live connections; freed at 0 */
    /* Counters for GET /status. Written on the loop thread only (atomic stores), read by the
     * DB threads through ctx. */
    volatile long active, accepted, requests;
};

/* Accepts one connection from a listener (loop thread). */
void cp_admin_conn_accept(cp_admin_server *srv, cp_admin_listener *l);

/* Closes a connection now; its memory goes when its handles have closed and no job is left. */
void cp_admin_conn_close(cp_admin_conn *c);

/* The pool's completion callback (loop thread): writes the response, or drops it when the
 * connection is gone. arg is the server. */
void cp_admin_conn_job_done(cp_admin_job *job, void *arg);

/* Drops a reference to the server; the last one frees it. */
void cp_admin_server_unref(cp_admin_server *srv);

/* Atomic counter updates on the loop thread, readable from the DB threads. */
static inline void cp_admin_count(volatile long *c, long delta)
{
    __atomic_add_fetch(c, delta, __ATOMIC_RELAXED);
}

#endif
