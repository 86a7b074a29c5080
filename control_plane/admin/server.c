/* Admin API listeners: binds admin_listen, sets up TLS for 'ssl' entries, owns the DB thread
 * pool, and shuts everything down. Connections themselves live in conn.c. */

#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_plane/admin/conn.h"
#include "proto/log.h"

void cp_admin_server_unref(cp_admin_server *srv)
{
    if (--srv->refs > 0)
        return;
    if (srv->ssl_ctx)
        SSL_CTX_free(srv->ssl_ctx);
    OPENSSL_cleanse(srv->token_digest, sizeof(srv->token_digest));
    free(srv);
}

static void on_listener_closed(uv_handle_t *h)
{
    cp_admin_listener *l = h->data;
    cp_admin_server *srv = l->srv;
    free(l);
    cp_admin_server_unref(srv);
}

static void on_connection(uv_stream_t *s, int status)
{
    cp_admin_listener *l = s->data;
    if (status < 0) {
        sl_error("admin: accept failed: %s", uv_strerror(status));
        return;
    }
    cp_admin_conn_accept(l->srv, l);
}

/* "127.0.0.1:8001" or "[::1]:8001", for messages. */
static void addr_name(const sl_listen_addr *a, char *out, size_t len)
{
    if (strchr(a->host, ':'))
        snprintf(out, len, "[%s]:%d", a->host, a->port);
    else
        snprintf(out, len, "%s:%d", a->host, a->port);
}

static int is_loopback(const char *host)
{
    return strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0 ||
           strncmp(host, "127.", 4) == 0;
}

static SSL_CTX *tls_context(const sl_settings *s, char *err, size_t errlen)
{
    const char *cert = sl_settings_get(s, "admin_ssl_cert");
    const char *key = sl_settings_get(s, "admin_ssl_cert_key");
    if (!cert || !*cert || !key || !*key) {
        snprintf(err, errlen,
                 "admin_listen has an 'ssl' entry but admin_ssl_cert and admin_ssl_cert_key are "
                 "not both set");
        return NULL;
    }
    /* OpenSSL's own text for a missing file ("system lib") does not say which. */
    const char *const files[2][2] = {{"admin_ssl_cert", cert}, {"admin_ssl_cert_key", key}};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(files[i][1], "r");
        if (!f) {
            snprintf(err, errlen, "%s: cannot read '%s': %s", files[i][0], files[i][1],
                     strerror(errno));
            return NULL;
        }
        fclose(f);
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "admin: cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    const char *what = NULL, *file = NULL;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        what = "admin_ssl_cert";
        file = cert;
    } else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        what = "admin_ssl_cert_key";
        file = key;
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        what = "admin_ssl_cert_key";
        file = key;
    }
    if (what) {
        char reason[256];
        ERR_error_string_n(ERR_peek_last_error(), reason, sizeof(reason));
        ERR_clear_error();
        snprintf(err, errlen, "%s: cannot use '%s': %s", what, file, reason);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Binds and listens on one entry. Returns 0, or -1 with err naming the address. */
static int listen_one(cp_admin_server *srv, const sl_listen_addr *a, char *err, size_t errlen)
{
    char name[300];
    addr_name(a, name, sizeof(name));
    char port[16];
    snprintf(port, sizeof(port), "%d", a->port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    /* Start-up only, before the loop runs: a blocking lookup is acceptable here. */
    int gai = getaddrinfo(a->host, port, &hints, &res);
    if (gai) {
        snprintf(err, errlen, "cannot listen on %s: %s", name, gai_strerror(gai));
        return -1;
    }
    cp_admin_listener *l = calloc(1, sizeof(*l));
    if (!l) {
        freeaddrinfo(res);
        snprintf(err, errlen, "cannot listen on %s: out of memory", name);
        return -1;
    }
    l->srv = srv;
    l->ssl = a->ssl;
    uv_tcp_init(srv->loop, &l->tcp);
    l->tcp.data = l;
    srv->listeners[srv->nlisteners++] = l;
    srv->refs++;
    /* uv_tcp_bind sets SO_REUSEADDR, so a restart does not wait for TIME_WAIT. */
    int rc = uv_tcp_bind(&l->tcp, res->ai_addr, 0);
    freeaddrinfo(res);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
    if (rc) {
        snprintf(err, errlen, "cannot listen on %s: %s", name, uv_strerror(rc));
        return -1;
    }
    sl_info("admin: listening on %s%s", name, a->ssl ? " (TLS)" : "");
    return 0;
}

static void close_listeners(cp_admin_server *srv)
{
    for (int i = 0; i < srv->nlisteners; i++)
        uv_close((uv_handle_t *)&srv->listeners[i]->tcp, on_listener_closed);
    srv->nlisteners = 0;
}

cp_admin_server *cp_admin_server_start(uv_loop_t *loop, const sl_settings *s,
                                       const cp_admin_ctx *ctx, char *err, size_t errlen)
{
    sl_listen_addr addrs[16];
    const char *listen = sl_settings_get(s, "admin_listen");
    char perr[256];
    int n = sl_listen_parse(listen ? listen : "", addrs, 16, perr, sizeof(perr));
    if (n < 0) {
        snprintf(err, errlen, "admin_listen: %s", perr);
        return NULL;
    }
    if (n == 0) {
        snprintf(err, errlen, "admin_listen: no address to listen on");
        return NULL;
    }
    cp_admin_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->loop = loop;
    srv->refs = 1;
    srv->ctx = *ctx;
    srv->ctx.connections_active = &srv->active;
    srv->ctx.connections_accepted = &srv->accepted;
    srv->ctx.total_requests = &srv->requests;

    const char *token = sl_settings_get(s, "admin_token");
    if (token && *token) {
        unsigned int dl = 0;
        if (!EVP_Digest(token, strlen(token), srv->token_digest, &dl, EVP_sha256(), NULL)) {
            snprintf(err, errlen, "admin_token: cannot hash it");
            goto fail;
        }
        srv->token_set = 1;
    }
    for (int i = 0; i < n; i++) {
        if (addrs[i].ssl && !srv->ssl_ctx) {
            srv->ssl_ctx = tls_context(s, err, errlen);
            if (!srv->ssl_ctx)
                goto fail;
        }
    }
    for (int i = 0; i < n; i++)
        if (listen_one(srv, &addrs[i], err, errlen))
            goto fail;
    for (int i = 0; i < n; i++) {
        if (!srv->token_set && !is_loopback(addrs[i].host)) {
            char name[300];
            addr_name(&addrs[i], name, sizeof(name));
            sl_warn("admin: the Admin API is unauthenticated on non-loopback address %s: set "
                    "admin_token, or listen on 127.0.0.1",
                    name);
        }
    }
    srv->pool = cp_dbpool_start(loop, s, &srv->ctx, CP_ADMIN_DB_THREADS, CP_ADMIN_QUEUE,
                                cp_admin_conn_job_done, srv, err, errlen);
    if (!srv->pool)
        goto fail;
    return srv;

fail:
    /* Handles already made close on the loop's next run, which frees the rest. */
    srv->stopping = 1;
    close_listeners(srv);
    cp_admin_server_unref(srv);
    return NULL;
}

void cp_admin_server_stop(cp_admin_server *srv)
{
    if (!srv)
        return;
    srv->stopping = 1;
    close_listeners(srv);
    while (srv->conns)
        cp_admin_conn_close(srv->conns);
    /* Joins the DB threads; jobs still queued come back cancelled and release their
     * (already closed) connections. */
    cp_dbpool_stop(srv->pool);
    srv->pool = NULL;
    cp_admin_server_unref(srv);
}

void cp_admin_server_counters(const cp_admin_server *srv, long *active, long *accepted,
                              long *requests)
{
    if (active)
        *active = __atomic_load_n(&srv->active, __ATOMIC_RELAXED);
    if (accepted)
        *accepted = __atomic_load_n(&srv->accepted, __ATOMIC_RELAXED);
    if (requests)
        *requests = __atomic_load_n(&srv->requests, __ATOMIC_RELAXED);
}
