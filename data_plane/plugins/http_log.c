/* http-log (PRIORITY 12), Kong's kong/plugins/http-log with kong/tools/queue.lua: the same
 * entries as file-log, POSTed (config.method) to http_endpoint in batches. Each distinct
 * config has one sender thread (shared across generations while the config is unchanged):
 * it waits until queue.max_batch_size entries are pending or queue.max_coalescing_delay
 * passed since the oldest, sends them (one entry alone when max_batch_size is 1, else a JSON
 * array), and retries failures (no answer, or a status >= 300) with exponential backoff from
 * initial_retry_delay up to max_retry_delay until max_retry_time is spent, then gives the
 * batch up with a [warn]. Its sockets are blocking with config.timeout, which is fine: only
 * this thread ever waits on them. Entries past queue.max_entries are dropped at push time.
 * HTTPS endpoints are not certificate-checked (Kong's default lua_ssl_verify off). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "data_plane/plugins/log_queue.h"
#include "data_plane/plugins/plugin.h"
#include "proto/log.h"
#include "proto/version.h"

#define RESP_HEAD_MAX 16384
#define RESP_BODY_MAX (1024 * 1024) /* a longer answer is not read: the connection closes */

typedef struct entry {
    struct entry *next;
    char *line;
    size_t len;
} entry;

typedef struct {
    dp_log_sink *sink;
    /* the endpoint */
    char *host, *port, *path, *hostport;
    int https;
    char *head_fixed; /* the request head lines after the request line, but Content-Length */
    char *method;
    long timeout_ms;
    double keepalive_s;
    /* queue settings */
    long max_batch;
    double delay, max_retry_time, initial_delay, max_delay;
    /* entries handed over by the log thread */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    entry *head, *tail;
    size_t n;
    double first_at;
    int stop;
    pthread_t thread;
    /* the kept-alive connection (sender thread only) */
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    double idle_since;
} sender;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct timespec abs_time(double mono_s)
{
    /* condition variables here use CLOCK_MONOTONIC (see sender_make) */
    struct timespec ts;
    ts.tv_sec = (time_t)mono_s;
    ts.tv_nsec = (long)((mono_s - (double)ts.tv_sec) * 1e9);
    return ts;
}

/* --- the connection --- */

static void conn_close(sender *s)
{
    if (s->ssl) {
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

static int conn_open(sender *s, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(s->host, s->port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", s->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    snprintf(err, errlen, "cannot connect");
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        int r = connect(fd, a->ai_addr, a->ai_addrlen);
        if (r != 0 && errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int soerr = ETIMEDOUT;
            socklen_t sl = sizeof(soerr);
            if (poll(&p, 1, (int)s->timeout_ms) == 1)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            r = soerr ? -1 : 0;
            errno = soerr;
        }
        if (r != 0) {
            snprintf(err, errlen, "cannot connect: %s", strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    struct timeval tv = {s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    s->fd = fd;
    if (s->https) {
        if (!s->ctx && !(s->ctx = SSL_CTX_new(TLS_client_method()))) {
            snprintf(err, errlen, "TLS setup failed");
            conn_close(s);
            return -1;
        }
        s->ssl = SSL_new(s->ctx);
        if (!s->ssl || !SSL_set_fd(s->ssl, fd) || !SSL_set_tlsext_host_name(s->ssl, s->host) ||
            SSL_connect(s->ssl) != 1) {
            snprintf(err, errlen, "TLS handshake failed");
            ERR_clear_error();
            conn_close(s);
            return -1;
        }
    }
    return 0;
}

static int io_write(sender *s, const char *p, size_t n)
{
    while (n) {
        ssize_t w = s->ssl ? SSL_write(s->ssl, p, (int)n) : send(s->fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (!s->ssl && w < 0 && errno == EINTR)
                continue;
            ERR_clear_error();
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static ssize_t io_read(sender *s, char *p, size_t n)
{
    for (;;) {
        ssize_t r = s->ssl ? SSL_read(s->ssl, p, (int)n) : recv(s->fd, p, n, 0);
        if (r < 0 && !s->ssl && errno == EINTR)
            continue;
        if (r <= 0)
            ERR_clear_error();
        return r;
    }
}

/* One exchange on the current connection. Returns the status, or -1 with err. *reusable says
 * whether the connection may carry the next request. *got_bytes: the peer answered at all. */
static int exchange(sender *s, const char *body, size_t blen, int *reusable, int *got_bytes,
                    char *err, size_t errlen)
{
    *reusable = 0;
    *got_bytes = 0;
    char head[4096];
    int hl = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\n%sContent-Length: %zu\r\n\r\n",
                      s->method, s->path, s->head_fixed, blen);
    if (hl < 0 || (size_t)hl >= sizeof(head)) {
        snprintf(err, errlen, "request head too long");
        return -1;
    }
    if (io_write(s, head, (size_t)hl) != 0 || io_write(s, body, blen) != 0) {
        snprintf(err, errlen, "send failed");
        return -1;
    }
    static _Thread_local char buf[RESP_HEAD_MAX + 1];
    size_t len = 0;
    char *end = NULL;
    while (!end) {
        if (len == RESP_HEAD_MAX) {
            snprintf(err, errlen, "response head too long");
            return -1;
        }
        ssize_t r = io_read(s, buf + len, RESP_HEAD_MAX - len);
        if (r <= 0) {
            snprintf(err, errlen, r == 0 ? "connection closed" : "read failed or timed out");
            return -1;
        }
        *got_bytes = 1;
        len += (size_t)r;
        buf[len] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || status < 100) {
        snprintf(err, errlen, "bad response");
        return -1;
    }
    long long clen = -1;
    int close_after = 0, chunked = 0;
    for (char *line = strstr(buf, "\r\n") + 2; line < end; line = strstr(line, "\r\n") + 2) {
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            clen = strtoll(line + 15, NULL, 10);
        else if (strncasecmp(line, "Connection:", 11) == 0 && strcasestr(line, "close") &&
                 strcasestr(line, "close") < strstr(line, "\r\n"))
            close_after = 1;
        else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0)
            chunked = 1;
    }
    size_t have = len - (size_t)(end + 4 - buf);
    if (clen >= 0 && !chunked && clen <= RESP_BODY_MAX) {
        long long left = clen - (long long)have;
        while (left > 0) {
            ssize_t r = io_read(s, buf, left < RESP_HEAD_MAX ? (size_t)left : RESP_HEAD_MAX);
            if (r <= 0)
                return status; /* the answer is in; only the connection is lost */
            left -= r;
        }
        *reusable = !close_after && left == 0;
    }
    return status;
}

/* Sends one payload, reusing the kept-alive connection when fresh enough. 0 on a 2xx. */
static int send_once(sender *s, const char *body, size_t blen, char *err, size_t errlen)
{
    double t = now_s();
    int reused = s->fd >= 0;
    if (reused && t - s->idle_since > s->keepalive_s) {
        conn_close(s);
        reused = 0;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        if (s->fd < 0 && conn_open(s, err, errlen) != 0)
            return -1;
        int reusable, got;
        int st = exchange(s, body, blen, &reusable, &got, err, errlen);
        if (!reusable)
            conn_close(s);
        else
            s->idle_since = now_s();
        if (st < 0 && reused && !got && attempt == 0) {
            reused = 0; /* the server had closed the idle connection: once more on a new one */
            continue;
        }
        if (st < 0)
            return -1;
        if (st >= 300) {
            snprintf(err, errlen, "request to %s returned status code %d", s->hostport, st);
            return -1;
        }
        return 0;
    }
    return -1;
}

/* Sends a batch with Kong's retry schedule. 0 when delivered. */
static int send_batch(sender *s, entry *batch, size_t n)
{
    size_t blen = 0;
    for (entry *e = batch; e; e = e->next)
        blen += e->len + 1;
    char *body = malloc(blen + 2);
    if (!body)
        return -1;
    size_t k = 0;
    if (s->max_batch == 1) {
        memcpy(body, batch->line, batch->len);
        k = batch->len;
    } else {
        body[k++] = '[';
        for (entry *e = batch; e; e = e->next) {
            if (e != batch)
                body[k++] = ',';
            memcpy(body + k, e->line, e->len);
            k += e->len;
        }
        body[k++] = ']';
    }
    double start = now_s(), delay = s->initial_delay;
    char err[256] = "";
    int tries = 0, ok = -1;
    for (;;) {
        tries++;
        if (send_once(s, body, k, err, sizeof(err)) == 0) {
            ok = 0;
            break;
        }
        if (now_s() + delay - start > s->max_retry_time)
            break;
        struct timespec ts = {(time_t)delay, (long)((delay - floor(delay)) * 1e9)};
        nanosleep(&ts, NULL);
        delay = delay * 2 > s->max_delay ? s->max_delay : delay * 2;
    }
    if (ok != 0)
        sl_warn("http-log: could not send %zu entries to %s after %d tries: %s; dropped", n,
                s->hostport, tries, err);
    free(body);
    return ok;
}

static void *sender_thread(void *arg)
{
    sender *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && s->n == 0)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->n == 0)
            break; /* stopping, nothing left */
        while (!s->stop && (long)s->n < s->max_batch && now_s() < s->first_at + s->delay) {
            struct timespec ts = abs_time(s->first_at + s->delay);
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        entry *batch = s->head, *last = s->head;
        size_t n = 1, bytes = last->len;
        while (last->next && (long)n < s->max_batch) {
            last = last->next;
            bytes += last->len;
            n++;
        }
        s->head = last->next;
        last->next = NULL;
        if (!s->head)
            s->tail = NULL;
        s->n -= n;
        s->first_at = now_s(); /* the rest waits its own coalescing delay */
        pthread_mutex_unlock(&s->mu);
        int ok = send_batch(s, batch, n);
        while (batch) {
            entry *e = batch;
            batch = batch->next;
            free(e->line);
            free(e);
        }
        dp_log_done(s->sink, n, bytes, ok != 0); /* may let the sink die: only s is used after */
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    conn_close(s);
    return NULL;
}

/* --- the sink --- */

static void sender_deliver(void *ud, char *line, size_t len)
{
    sender *s = ud;
    entry *e = malloc(sizeof(*e));
    if (!e) {
        free(line);
        dp_log_done(s->sink, 1, len, 1);
        return;
    }
    *e = (entry){NULL, line, len};
    pthread_mutex_lock(&s->mu);
    if (s->tail)
        s->tail->next = e;
    else
        s->head = e;
    s->tail = e;
    if (s->n++ == 0)
        s->first_at = now_s();
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void sender_free(sender *s)
{
    free(s->host);
    free(s->port);
    free(s->path);
    free(s->hostport);
    free(s->head_fixed);
    free(s->method);
    if (s->ctx)
        SSL_CTX_free(s->ctx);
    free(s);
}

static void sender_destroy(void *ud)
{
    sender *s = ud;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL); /* nothing is pending (the sink has no entries left) */
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    sender_free(s);
}

static const dp_log_sink_ops sender_ops = {sender_deliver, sender_destroy};

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void base64(const unsigned char *in, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[k++] = b64[v >> 18 & 63];
        out[k++] = b64[v >> 12 & 63];
        out[k++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
        out[k++] = i + 2 < n ? b64[v & 63] : '=';
    }
    out[k] = 0;
}

/* Percent-decodes userinfo in place (Kong unescapes user and password). */
static void unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        unsigned v;
        if (*s == '%' && sscanf(s + 1, "%2x", &v) == 1) {
            *o++ = (char)v;
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
}

typedef struct {
    const json_t *config;
    char *err;
    size_t errlen;
} make_arg;

static double num(const json_t *o, const char *k, double dflt)
{
    const json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static void *sender_make(void *argp, dp_log_sink *sink)
{
    make_arg *a = argp;
    const json_t *c = a->config, *q = json_object_get(c, "queue");
    const char *url = json_string_value(json_object_get(c, "http_endpoint"));
    sender *s = calloc(1, sizeof(*s));
    if (!s || !url)
        goto fail;
    s->sink = sink;
    s->fd = -1;
    const char *sep = strstr(url, "://");
    if (!sep)
        goto fail;
    s->https = (size_t)(sep - url) == 5 && strncasecmp(url, "https", 5) == 0;
    const char *auth_start = sep + 3;
    const char *path = auth_start + strcspn(auth_start, "/?#");
    const char *at = memchr(auth_start, '@', (size_t)(path - auth_start));
    const char *hp = at ? at + 1 : auth_start;
    char authz[1024] = "";
    if (at && (size_t)(at - auth_start) < 700) {
        char ui[720];
        memcpy(ui, auth_start, (size_t)(at - auth_start));
        ui[at - auth_start] = 0;
        unescape(ui);
        char enc[1000];
        base64((const unsigned char *)ui, strlen(ui), enc);
        snprintf(authz, sizeof(authz), "Authorization: Basic %s\r\n", enc);
    }
    s->hostport = strndup(hp, (size_t)(path - hp));
    if (!s->hostport)
        goto fail;
    const char *h = s->hostport, *colon;
    if (*h == '[') {
        const char *close = strchr(h, ']');
        if (!close)
            goto fail;
        s->host = strndup(h + 1, (size_t)(close - h - 1));
        colon = close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = strrchr(h, ':');
        s->host = strndup(h, colon ? (size_t)(colon - h) : strlen(h));
    }
    s->port = strdup(colon ? colon + 1 : s->https ? "443" : "80");
    s->path = *path == '/' ? strndup(path, strcspn(path, "#")) : NULL;
    if (!s->path && *path == '?') { /* "http://h?x" */
        size_t n = strcspn(path, "#");
        if ((s->path = malloc(n + 2))) {
            s->path[0] = '/';
            memcpy(s->path + 1, path, n);
            s->path[n + 1] = 0;
        }
    } else if (!s->path) {
        s->path = strdup("/");
    }
    const char *method = json_string_value(json_object_get(c, "method"));
    s->method = strdup(method ? method : "POST");
    s->timeout_ms = (long)num(c, "timeout", 10000);
    if (s->timeout_ms <= 0)
        s->timeout_ms = 10000;
    s->keepalive_s = num(c, "keepalive", 60000) / 1000.0;
    s->max_batch = (long)num(q, "max_batch_size", 1);
    s->delay = num(q, "max_coalescing_delay", 1);
    s->max_retry_time = num(q, "max_retry_time", 60);
    s->initial_delay = num(q, "initial_retry_delay", 0.01);
    s->max_delay = num(q, "max_retry_delay", 60);
    if (s->max_batch < 1)
        s->max_batch = 1;
    /* the fixed head lines */
    const char *ct = json_string_value(json_object_get(c, "content_type"));
    size_t cap = 2048;
    const json_t *hdrs = json_object_get(c, "headers");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)hdrs, k, v) cap += strlen(k) + json_string_length(v) + 4;
    s->head_fixed = malloc(cap);
    if (!s->host || !s->port || !s->path || !s->method || !s->head_fixed)
        goto fail;
    int n = snprintf(s->head_fixed, cap,
                     "Host: %s\r\nUser-Agent: sluice/" SL_VERSION "\r\nContent-Type: %s\r\n%s",
                     s->hostport, ct ? ct : "application/json", authz);
    json_object_foreach((json_t *)hdrs, k, v)
    {
        const char *sv = json_string_value(v);
        if (sv && n >= 0 && (size_t)n < cap)
            n += snprintf(s->head_fixed + n, cap - (size_t)n, "%s: %s\r\n", k, sv);
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->mu, NULL);
    if (pthread_create(&s->thread, NULL, sender_thread, s) != 0) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        goto fail;
    }
    return s;
fail:
    snprintf(a->err, a->errlen, "http-log: cannot use http_endpoint '%s'", url ? url : "");
    if (s)
        sender_free(s);
    return NULL;
}

static int hl_init(const json_t *config, const char *id, void *shared, void **state, char *err,
                   size_t errlen)
{
    char *key = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS);
    if (!key) {
        snprintf(err, errlen, "http-log: out of memory");
        return -1;
    }
    long max_entries = (long)num(json_object_get(config, "queue"), "max_entries", 10000);
    make_arg a = {config, err, errlen};
    snprintf(err, errlen, "http-log: cannot start the log sender");
    long max_bytes = (long)num(json_object_get(config, "queue"), "max_bytes", 0);
    dp_log_sink *s =
        dp_log_sink_custom(key, &sender_ops, max_entries, max_bytes, "http-log", sender_make, &a);
    free(key);
    if (!s)
        return -1;
    *state = s;
    return 0;
}

static void hl_free(void *state)
{
    dp_log_sink_release(state);
}

/* See file_log.c: asks the framework for the full response header list. */
static void hl_header_filter(void *state, dp_plugin_req *req, void **ctx) {}

static void hl_log(void *state, dp_plugin_req *req, void **ctx)
{
    size_t len;
    char *line = dp_log_serialize(req, &len);
    dp_log_push(state, line, line ? len : 0);
}

const dp_plugin dp_plugin_http_log = {
    .name = "http-log",
    .init = hl_init,
    .free_state = hl_free,
    .header_filter = hl_header_filter,
    .log = hl_log,
};
