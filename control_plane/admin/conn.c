/* One Admin API client connection on the loop: optional TLS through memory BIOs, HTTP/1.1 with
 * llhttp (strict), one request at a time (pipelined ones wait in the input buffer), limits,
 * admin_token, and the hand-off to the DB threads. */

#include <llhttp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "control_plane/admin/conn.h"
#include "control_plane/admin/form.h"
#include "control_plane/admin/http_out.h"
#include "proto/log.h"

#define MAX_PENDING_INPUT (1024 * 1024) /* plaintext waiting behind a request in flight */

typedef struct {
    char *p; /* NUL-terminated when non-NULL */
    size_t len, cap;
} buf;

typedef enum {
    HDR_OTHER,
    HDR_CONTENT_TYPE,
    HDR_AUTHORIZATION,
    HDR_EXPECT,
} hdr_kind;

typedef enum {
    PHASE_IDLE,    /* between requests: the keepalive idle timeout runs */
    PHASE_HEADERS, /* request line and headers: one deadline from the first byte */
    PHASE_BODY,    /* body: a timeout between reads */
} req_phase;

typedef enum {
    CONN_READING,  /* parsing input as it comes */
    CONN_BUSY,     /* a request is on a DB thread or its answer is being written; no reading */
    CONN_DRAINING, /* a final response is going out; input is discarded until EOF or timer */
    CONN_CLOSED,   /* uv_close called; waiting for handles and jobs to let go */
} conn_state;

struct cp_admin_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    cp_admin_server *srv;
    cp_admin_conn *prev, *next;
    int refs; /* open handles (tcp, timer) + jobs on DB threads; freed at 0 */
    conn_state state;
    req_phase phase;
    int reading;  /* uv_read_start is in effect */
    int writes;   /* uv_write requests in flight */
    int answered; /* BUSY: the response has been queued for writing */
    int shut;     /* DRAINING: shutdown sent */
    SSL *ssl;     /* NULL on plain listeners */
    llhttp_t parser;
    buf in; /* plaintext not yet parsed */
    size_t in_off;
    char remote_ip[64];
    char rbuf[16384];

    /* The request being parsed. */
    buf url, field, value, body;
    hdr_kind field_kind;
    int field_long; /* the current header name passed 64 bytes */
    int headers_done;
    size_t header_bytes;
    int nheaders;
    char *content_type;
    int ct_count;
    char *authorization;
    int auth_count;
    int expect_continue;
    int err_status; /* set by a callback that stops the parser: the answer, then close */
    const char *err_msg;
    int reject_401; /* bad token on a request without body: answered, connection kept */
    int keepalive;  /* of the response being written */
};

static llhttp_settings_t parser_settings;
static void process(cp_admin_conn *c);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

static int buf_add(buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

static void buf_free(buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* Forgets the request state so the next message starts clean. */
static void request_reset(cp_admin_conn *c)
{
    buf_free(&c->url);
    buf_free(&c->field);
    buf_free(&c->value);
    buf_free(&c->body);
    free(c->content_type);
    free(c->authorization);
    c->content_type = c->authorization = NULL;
    c->field_kind = HDR_OTHER;
    c->field_long = 0;
    c->headers_done = 0;
    c->header_bytes = 0;
    c->nheaders = 0;
    c->ct_count = c->auth_count = 0;
    c->expect_continue = 0;
    c->err_status = 0;
    c->err_msg = NULL;
    c->reject_401 = 0;
}

/* ---- lifetime ---- */

static void conn_unref(cp_admin_conn *c)
{
    if (--c->refs > 0)
        return;
    request_reset(c);
    buf_free(&c->in);
    if (c->ssl)
        SSL_free(c->ssl);
    cp_admin_server *srv = c->srv;
    free(c);
    cp_admin_server_unref(srv);
}

static void on_handle_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

void cp_admin_conn_close(cp_admin_conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    c->state = CONN_CLOSED;
    cp_admin_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    cp_admin_count(&srv->active, -1);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

/* ---- output ---- */

typedef struct {
    uv_write_t req;
    cp_admin_conn *conn;
    char *data;
} write_req;

static void after_writes(cp_admin_conn *c);

static void on_write(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    cp_admin_conn *c = w->conn;
    free(w->data);
    free(w);
    c->writes--;
    if (status < 0) {
        cp_admin_conn_close(c);
        return;
    }
    after_writes(c);
}

/* Writes bytes to the socket, taking ownership of data. */
static void write_raw(cp_admin_conn *c, char *data, size_t len)
{
    write_req *w = malloc(sizeof(*w));
    if (!w) {
        free(data);
        cp_admin_conn_close(c);
        return;
    }
    w->conn = c;
    w->data = data;
    uv_buf_t b = uv_buf_init(data, (unsigned)len);
    c->writes++;
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc) {
        c->writes--;
        free(data);
        free(w);
        cp_admin_conn_close(c);
    }
}

/* Moves what OpenSSL wrote into the memory BIO (records, alerts) to the socket. */
static void tls_flush(cp_admin_conn *c)
{
    BIO *wbio = SSL_get_wbio(c->ssl);
    size_t pending;
    while (c->state != CONN_CLOSED && (pending = BIO_ctrl_pending(wbio)) > 0) {
        char *data = malloc(pending);
        if (!data) {
            cp_admin_conn_close(c);
            return;
        }
        int n = BIO_read(wbio, data, (int)pending);
        if (n <= 0) {
            free(data);
            return;
        }
        write_raw(c, data, (size_t)n);
    }
}

/* Sends plaintext (through TLS when on), taking ownership of data. */
static void send_bytes(cp_admin_conn *c, char *data, size_t len)
{
    if (c->state == CONN_CLOSED) {
        free(data);
        return;
    }
    if (!c->ssl) {
        write_raw(c, data, len);
        return;
    }
    int n = len ? SSL_write(c->ssl, data, (int)len) : 1;
    free(data);
    if (n <= 0) {
        cp_admin_conn_close(c);
        return;
    }
    tls_flush(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    free(req);
}

static void on_timer(uv_timer_t *t);

/* After the last pending write: finish a response (keepalive: next request; else drain). */
static void after_writes(cp_admin_conn *c)
{
    if (c->writes > 0 || c->state == CONN_CLOSED)
        return;
    if (c->state == CONN_BUSY && c->answered) {
        c->answered = 0;
        if (c->keepalive && !c->srv->stopping) {
            request_reset(c);
            c->state = CONN_READING;
            c->phase = PHASE_IDLE;
            llhttp_resume(&c->parser);
            process(c);
            return;
        }
        c->state = CONN_DRAINING;
    }
    if (c->state == CONN_DRAINING && !c->shut) {
        /* Half-close and read until the peer closes, so that a client still sending a body
         * gets our answer instead of a reset. */
        c->shut = 1;
        if (c->ssl) {
            SSL_shutdown(c->ssl);
            tls_flush(c);
            if (c->state == CONN_CLOSED)
                return;
        }
        uv_shutdown_t *req = malloc(sizeof(*req));
        if (!req || uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown)) {
            free(req);
            cp_admin_conn_close(c);
            return;
        }
        uv_timer_start(&c->timer, on_timer, CP_ADMIN_LINGER_MS, 0);
    }
}

/* Answers with a {"message"} body; keepalive keeps the connection for the next request. */
static void answer_local(cp_admin_conn *c, int status, const char *message, const char *extra,
                         int keepalive)
{
    int head = c->parser.method == HTTP_HEAD;
    size_t len;
    char *data = cp_http_message(status, message, extra, head, keepalive, &len);
    if (!data) {
        cp_admin_conn_close(c);
        return;
    }
    c->keepalive = keepalive;
    c->answered = 1;
    send_bytes(c, data, len);
}

/* A request that cannot be read further: answer, then drain and close. */
static void fail(cp_admin_conn *c, int status, const char *message, const char *extra)
{
    c->state = CONN_DRAINING;
    uv_timer_stop(&c->timer);
    size_t len;
    char *data = cp_http_message(status, message, extra, 0, 0, &len);
    if (!data) {
        cp_admin_conn_close(c);
        return;
    }
    send_bytes(c, data, len);
    if (c->state != CONN_CLOSED && c->writes == 0)
        after_writes(c);
}

/* ---- llhttp callbacks ---- */

static int too_large(cp_admin_conn *c, int status, const char *msg)
{
    c->err_status = status;
    c->err_msg = msg;
    return -1;
}

static int on_message_begin(llhttp_t *p)
{
    cp_admin_conn *c = p->data;
    request_reset(c);
    c->phase = PHASE_HEADERS;
    uv_timer_start(&c->timer, on_timer, CP_ADMIN_READ_MS, 0);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    cp_admin_conn *c = p->data;
    c->header_bytes += n;
    if (c->url.len + n > CP_ADMIN_MAX_URL)
        return too_large(c, 414, "URI too long");
    return buf_add(&c->url, at, n) ? too_large(c, 500, "An unexpected error occurred") : 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    cp_admin_conn *c = p->data;
    c->header_bytes += n;
    if (c->header_bytes > CP_ADMIN_MAX_HEADER_BYTES)
        return too_large(c, 431, "Request header fields too large");
    if (c->field_long || c->field.len + n > 64) {
        c->field_long = 1; /* longer than any name we look at: stays HDR_OTHER */
        return 0;
    }
    return buf_add(&c->field, at, n) ? too_large(c, 500, "An unexpected error occurred") : 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    cp_admin_conn *c = p->data;
    if (++c->nheaders > CP_ADMIN_MAX_HEADERS)
        return too_large(c, 431, "Request header fields too large");
    const char *f = c->field.p && c->field.len ? c->field.p : "";
    c->field_kind = HDR_OTHER;
    if (!c->headers_done && !c->field_long) { /* trailers of a chunked body are not looked at */
        if (strcasecmp(f, "content-type") == 0)
            c->field_kind = HDR_CONTENT_TYPE;
        else if (strcasecmp(f, "authorization") == 0)
            c->field_kind = HDR_AUTHORIZATION;
        else if (strcasecmp(f, "expect") == 0)
            c->field_kind = HDR_EXPECT;
    }
    c->field.len = 0;
    c->field_long = 0;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    cp_admin_conn *c = p->data;
    c->header_bytes += n;
    if (c->header_bytes > CP_ADMIN_MAX_HEADER_BYTES)
        return too_large(c, 431, "Request header fields too large");
    if (c->field_kind == HDR_OTHER)
        return 0;
    return buf_add(&c->value, at, n) ? too_large(c, 500, "An unexpected error occurred") : 0;
}

/* A copy of the value without surrounding whitespace. */
static char *trimmed(const buf *b)
{
    const char *s = b->p ? b->p : "";
    size_t n = b->len;
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return strndup(s, n);
}

static int on_header_value_complete(llhttp_t *p)
{
    cp_admin_conn *c = p->data;
    switch (c->field_kind) {
    case HDR_CONTENT_TYPE:
        if (c->ct_count++ == 0)
            c->content_type = trimmed(&c->value);
        break;
    case HDR_AUTHORIZATION:
        if (c->auth_count++ == 0)
            c->authorization = trimmed(&c->value);
        break;
    case HDR_EXPECT: {
        char *v = trimmed(&c->value);
        c->expect_continue = v && strcasecmp(v, "100-continue") == 0;
        free(v);
        break;
    }
    default:
        break;
    }
    c->value.len = 0;
    c->field_kind = HDR_OTHER;
    return 0;
}

/* Whether the Authorization header carries admin_token, compared in constant time: both
 * sides are hashed so the comparison does not depend on the token's length either. */
static int authorized(cp_admin_conn *c)
{
    if (!c->srv->token_set)
        return 1;
    if (c->auth_count != 1 || !c->authorization)
        return 0;
    const char *a = c->authorization;
    if (strncasecmp(a, "Bearer ", 7) != 0)
        return 0;
    a += 7;
    while (*a == ' ')
        a++;
    unsigned char d[32];
    unsigned int dl = 0;
    if (!EVP_Digest(a, strlen(a), d, &dl, EVP_sha256(), NULL) || dl != sizeof(d))
        return 0;
    return CRYPTO_memcmp(d, c->srv->token_digest, sizeof(d)) == 0;
}

static int on_headers_complete(llhttp_t *p)
{
    cp_admin_conn *c = p->data;
    c->headers_done = 1;
    c->phase = PHASE_BODY;
    int has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length);
    if (!authorized(c)) {
        if (has_body)
            return too_large(c, 401, "Unauthorized");
        c->reject_401 = 1; /* nothing more to read: answer and keep the connection */
        return 0;
    }
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > CP_ADMIN_MAX_BODY)
        return too_large(c, 413, "Payload too large");
    if (c->expect_continue && has_body && p->http_major == 1 && p->http_minor >= 1) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        char *d = malloc(sizeof(cont) - 1);
        if (d) {
            memcpy(d, cont, sizeof(cont) - 1);
            send_bytes(c, d, sizeof(cont) - 1);
        }
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    cp_admin_conn *c = p->data;
    if (c->body.len + n > CP_ADMIN_MAX_BODY)
        return too_large(c, 413, "Payload too large");
    return buf_add(&c->body, at, n) ? too_large(c, 500, "An unexpected error occurred") : 0;
}

static int on_message_complete(llhttp_t *p)
{
    /* One request at a time: stop here; what follows waits in the input buffer. */
    return HPE_PAUSED;
}

/* ---- requests ---- */

/* Turns the parsed message into a job for a DB thread, or answers it here. */
static void request_complete(cp_admin_conn *c)
{
    cp_admin_server *srv = c->srv;
    c->state = CONN_BUSY;
    c->phase = PHASE_IDLE;
    uv_timer_stop(&c->timer);
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
    cp_admin_count(&srv->requests, 1);
    int keepalive = llhttp_should_keep_alive(&c->parser) && !llhttp_get_upgrade(&c->parser);

    if (c->reject_401) {
        answer_local(c, 401, "Unauthorized", "WWW-Authenticate: Bearer\r\n", keepalive);
        return;
    }

    /* The request target: origin-form "/p?q", or absolute-form "http://h/p?q". */
    const char *u = c->url.p ? c->url.p : "";
    if (strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0) {
        const char *slash = strchr(strstr(u, "://") + 3, '/');
        u = slash ? slash : "/";
    }
    size_t plen = strcspn(u, "?#");
    const char *q = u[plen] == '?' ? u + plen + 1 : NULL;

    cp_admin_job *job = calloc(1, sizeof(*job));
    if (!job) {
        answer_local(c, 500, "An unexpected error occurred", NULL, 0);
        return;
    }
    job->req.path = malloc(plen + 2);
    if (job->req.path) {
        size_t dl = cp_form_unescape(u, plen, job->req.path, 0);
        job->req.path[dl] = 0;
        if (memchr(job->req.path, 0, dl) || dl == 0) {
            cp_admin_job_free(job);
            answer_local(c, 400, "Bad request", NULL, 0);
            return;
        }
    }
    if (q)
        job->req.query = strndup(q, strcspn(q, "#"));
    snprintf(job->req.method, sizeof(job->req.method), "%s",
             llhttp_method_name((llhttp_method_t)c->parser.method));
    /* HEAD is GET without the body. */
    job->head = c->parser.method == HTTP_HEAD;
    if (job->head)
        strcpy(job->req.method, "GET");
    job->req.content_type = c->content_type;
    c->content_type = NULL;
    job->req.content_type_count = c->ct_count;
    job->req.body = c->body.p ? c->body.p : strdup("");
    job->req.body_len = c->body.len;
    memset(&c->body, 0, sizeof(c->body));
    snprintf(job->req.remote_ip, sizeof(job->req.remote_ip), "%s", c->remote_ip);
    job->owner = c;
    job->keepalive = keepalive;
    job->received_ns = uv_hrtime();
    if (!job->req.path || (q && !job->req.query) || !job->req.body) {
        cp_admin_job_free(job);
        answer_local(c, 500, "An unexpected error occurred", NULL, 0);
        return;
    }
    c->keepalive = keepalive;
    if (cp_dbpool_submit(srv->pool, job)) {
        cp_admin_job_free(job);
        answer_local(c, 503, "Admin API overloaded", NULL, keepalive);
        return;
    }
    c->refs++; /* the job holds the connection until its answer comes back */
}

void cp_admin_conn_job_done(cp_admin_job *job, void *arg)
{
    cp_admin_conn *c = job->owner;
    if (c->state == CONN_BUSY && !job->cancelled) {
        if (job->out) {
            c->answered = 1;
            send_bytes(c, job->out, job->outlen);
            job->out = NULL;
        } else {
            answer_local(c, 500, "An unexpected error occurred", NULL, 0);
        }
    } else if (c->state == CONN_BUSY) {
        cp_admin_conn_close(c);
    }
    /* else the client went away while the request ran: the answer is dropped */
    cp_admin_job_free(job);
    conn_unref(c);
}

/* ---- input ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    cp_admin_conn *c = h->data;
    *b = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

/* Runs the parser over buffered plaintext while the connection is free to take a request. */
static void process(cp_admin_conn *c)
{
    while (c->state == CONN_READING && c->in_off < c->in.len) {
        const char *p = c->in.p + c->in_off;
        size_t n = c->in.len - c->in_off;
        llhttp_errno_t e = llhttp_execute(&c->parser, p, n);
        if (e == HPE_OK) {
            c->in_off = c->in.len;
            break;
        }
        if (e == HPE_PAUSED) {
            c->in_off += (size_t)(llhttp_get_error_pos(&c->parser) - p);
            request_complete(c);
            break;
        }
        if (c->err_status == 401)
            fail(c, 401, "Unauthorized", "WWW-Authenticate: Bearer\r\n");
        else if (c->err_status)
            fail(c, c->err_status, c->err_msg, NULL);
        else
            fail(c, 400, "Bad request", NULL);
        return;
    }
    if (c->state == CONN_CLOSED)
        return;
    if (c->in_off == c->in.len) {
        c->in.len = c->in_off = 0;
    } else if (c->in_off > 0 && c->state == CONN_READING) {
        memmove(c->in.p, c->in.p + c->in_off, c->in.len - c->in_off);
        c->in.len -= c->in_off;
        c->in_off = 0;
    }
    if (c->state != CONN_READING)
        return;
    if (c->phase == PHASE_IDLE)
        uv_timer_start(&c->timer, on_timer, CP_ADMIN_IDLE_MS, 0);
    else if (c->phase == PHASE_BODY)
        uv_timer_start(&c->timer, on_timer, CP_ADMIN_READ_MS, 0);
    if (!c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
        else
            cp_admin_conn_close(c);
    }
}

/* Adds plaintext to the input buffer, bounded. */
static int take_input(cp_admin_conn *c, const char *data, size_t n)
{
    if (c->in.len - c->in_off + n > MAX_PENDING_INPUT || buf_add(&c->in, data, n)) {
        cp_admin_conn_close(c);
        return -1;
    }
    return 0;
}

/* Decrypts what arrived; 0 on success, -1 when the connection was closed. */
static int tls_input(cp_admin_conn *c, const char *data, size_t n)
{
    if (BIO_write(SSL_get_rbio(c->ssl), data, (int)n) != (int)n) {
        cp_admin_conn_close(c);
        return -1;
    }
    char plain[16384];
    for (;;) {
        int r = SSL_read(c->ssl, plain, sizeof(plain));
        if (r > 0) {
            if (take_input(c, plain, (size_t)r))
                return -1;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e != SSL_ERROR_ZERO_RETURN) {
            char reason[256];
            ERR_error_string_n(ERR_peek_last_error(), reason, sizeof(reason));
            sl_debug("admin: TLS error from %s: %s", c->remote_ip, reason);
        }
        ERR_clear_error();
        tls_flush(c); /* the alert, if any */
        cp_admin_conn_close(c);
        return -1;
    }
    tls_flush(c);
    return c->state == CONN_CLOSED ? -1 : 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    cp_admin_conn *c = s->data;
    if (c->state == CONN_CLOSED)
        return;
    if (nread < 0) {
        cp_admin_conn_close(c); /* EOF or error; a request in flight is not being read */
        return;
    }
    if (nread == 0)
        return;
    if (c->state == CONN_DRAINING)
        return; /* discarded */
    if (c->ssl) {
        if (tls_input(c, b->base, (size_t)nread))
            return;
    } else if (take_input(c, b->base, (size_t)nread)) {
        return;
    }
    process(c);
}

static void on_timer(uv_timer_t *t)
{
    cp_admin_conn *c = t->data;
    if (c->state == CONN_READING && c->phase != PHASE_IDLE)
        fail(c, 408, "Request timeout", NULL);
    else
        cp_admin_conn_close(c);
}

/* ---- accept ---- */

void cp_admin_conn_accept(cp_admin_server *srv, cp_admin_listener *l)
{
    if (!parser_settings.on_message_complete) {
        llhttp_settings_init(&parser_settings);
        parser_settings.on_message_begin = on_message_begin;
        parser_settings.on_url = on_url;
        parser_settings.on_header_field = on_header_field;
        parser_settings.on_header_field_complete = on_header_field_complete;
        parser_settings.on_header_value = on_header_value;
        parser_settings.on_header_value_complete = on_header_value_complete;
        parser_settings.on_headers_complete = on_headers_complete;
        parser_settings.on_body = on_body;
        parser_settings.on_message_complete = on_message_complete;
    }
    cp_admin_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    if (uv_tcp_init(srv->loop, &c->tcp)) {
        free(c);
        return;
    }
    c->srv = srv;
    c->tcp.data = c;
    c->refs = 2;
    srv->refs++;
    uv_timer_init(srv->loop, &c->timer);
    c->timer.data = c;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    cp_admin_count(&srv->active, 1);
    cp_admin_count(&srv->accepted, 1);
    c->state = CONN_READING;

    if (uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&c->tcp)) {
        cp_admin_conn_close(c);
        return;
    }
    if (__atomic_load_n(&srv->active, __ATOMIC_RELAXED) > CP_ADMIN_MAX_CONNS) {
        sl_warn("admin: more than %d connections, closing a new one", CP_ADMIN_MAX_CONNS);
        cp_admin_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->remote_ip, sizeof(c->remote_ip));
        else
            uv_ip4_name((struct sockaddr_in *)&ss, c->remote_ip, sizeof(c->remote_ip));
    }
    if (l->ssl) {
        c->ssl = SSL_new(srv->ssl_ctx);
        BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
        if (!c->ssl || !rbio || !wbio) {
            BIO_free(rbio);
            BIO_free(wbio);
            cp_admin_conn_close(c);
            return;
        }
        SSL_set_bio(c->ssl, rbio, wbio);
        SSL_set_accept_state(c->ssl);
    }
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    c->phase = PHASE_IDLE;
    process(c); /* starts reading and the idle timer */
}
