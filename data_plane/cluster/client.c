#include "data_plane/cluster/client.h"

#include <errno.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data_plane/cluster/apply_queue.h"
#include "proto/cluster_msg.h"
#include "proto/snapshot_delta.h"
#include "proto/digest.h"
#include "proto/log.h"
#include "proto/lws_reaper.h"
#include "proto/uuid.h"
#include "proto/version.h"

/* Provided by the plugin table in data_plane/plugins/: the names of compiled-in plugins,
 * NULL-terminated. Weak, so the client links (with an empty list) before that table exists. */
extern const char *const *dp_plugin_names(void) __attribute__((weak));

#define PROTOCOL_NAME "sluice-cluster"
#define OUTLET_PATH "/v1/outlet"
#define SHARED_SNI "sluice_cluster" /* shared mode: the name is not checked, the digest is */
#define PING_INTERVAL_MS 10000
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 30000
#define MAX_QUEUED 64             /* control messages waiting for the socket */
#define PEEK_KEEP 512             /* bytes kept of an oversized snapshot, to name its version */
#define CONNECT_WATCHDOG_MS 15000 /* an attempt not established by then is given up */

typedef enum {
    ST_IDLE,       /* waiting for the retry timer */
    ST_RESOLVING,  /* uv_getaddrinfo on the control plane's host */
    ST_CONNECTING, /* lws: TCP, TLS, websocket upgrade */
    ST_CONNECTED,  /* hello sent; snapshots flow */
    ST_STOPPING,   /* dp_cluster_client_stop called */
} client_state;

typedef struct out_msg {
    struct out_msg *next;
    sl_cmsg_type type;
    size_t len;
    unsigned char buf[]; /* LWS_PRE + message */
} out_msg;

struct dp_cluster_client {
    uv_loop_t *loop;
    struct lws_context *ctx; /* lws writes NULL here when destruction has completed */
    dp_cluster_callbacks cb;
    client_state state;
    char node_id[37];
    char hostname[SL_CMSG_MAX_HOSTNAME + 1];
    int shared;
    char pin[SL_SHA256_HEX];
    char *cert, *key, *ca;
    char cp_host[256];
    int cp_port;
    char server_name[256];
    char address[INET6_ADDRSTRLEN];
    size_t max_payload;
    struct lws *wsi;
    unsigned attempt;
    uv_timer_t retry_timer, ping_timer, watchdog;
    sl_lws_reaper reaper; /* after stop: waits for lws and getaddrinfo, then frees this */
    uv_getaddrinfo_t gai;
    int gai_active;
    lws_retry_bo_t idle;
    unsigned char *rx;
    size_t rx_len, rx_cap, rx_total;
    int rx_oversize;
    unsigned char rx_head[PEEK_KEEP]; /* first bytes of an oversized message */
    size_t rx_head_len;
    out_msg *out_head, *out_tail;
    size_t out_count;
    char tls_refusal[200];  /* why we refused the control plane's certificate, for the log */
    struct lws *killed_wsi; /* an attempt the watchdog gave up: its late callbacks are ignored */
    dp_apply_queue *applying;
};

static void lws_log_emit(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    /* Refused certificates are logged by us at [warn] with the reason; lws's own lines about
     * them are details. */
    sl_log((level & (LLL_ERR | LLL_WARN)) ? SL_LOG_INFO : SL_LOG_DEBUG, "cluster: lws: %.*s",
           (int)n, line);
}

static void connect_now(dp_cluster_client *c);
static void on_retry_timer(uv_timer_t *t)
{
    connect_now(t->data);
}

/* ---- outgoing messages ---- */

static void out_clear(dp_cluster_client *c)
{
    while (c->out_head) {
        out_msg *m = c->out_head;
        c->out_head = m->next;
        free(m);
    }
    c->out_tail = NULL;
    c->out_count = 0;
}

static int queue_msg(dp_cluster_client *c, const sl_cluster_msg *m)
{
    if (c->state != ST_CONNECTED || !c->wsi)
        return -1;
    if (m->type == SL_CMSG_PING) {
        /* One ping in the queue says all a second one would. */
        for (out_msg *o = c->out_head; o; o = o->next)
            if (o->type == SL_CMSG_PING)
                return 0;
    }
    if (c->out_count >= MAX_QUEUED) {
        sl_warn("cluster: %zu messages wait for the control plane; dropping a %s", c->out_count,
                sl_cmsg_type_name(m->type));
        return -1;
    }
    unsigned char *bytes;
    size_t len;
    char err[200];
    if (sl_cmsg_encode(m, &bytes, &len, err, sizeof(err))) {
        sl_error("cluster: cannot encode %s: %s", sl_cmsg_type_name(m->type), err);
        return -1;
    }
    out_msg *o = malloc(sizeof(*o) + LWS_PRE + len);
    if (!o) {
        free(bytes);
        return -1;
    }
    o->next = NULL;
    o->type = m->type;
    o->len = len;
    memcpy(o->buf + LWS_PRE, bytes, len);
    free(bytes);
    if (c->out_tail)
        c->out_tail->next = o;
    else
        c->out_head = o;
    c->out_tail = o;
    c->out_count++;
    lws_callback_on_writable(c->wsi);
    return 0;
}

static void current(dp_cluster_client *c, int64_t *version, char hash[65])
{
    *version = 0;
    hash[0] = 0;
    if (c->cb.current)
        c->cb.current(c->cb.arg, version, hash);
    if (!sl_is_sha256_hex(hash, strlen(hash)))
        hash[0] = 0;
}

static void send_hello(dp_cluster_client *c)
{
    sl_cluster_msg m;
    memset(&m, 0, sizeof(m));
    m.type = SL_CMSG_HELLO;
    memcpy(m.node_id, c->node_id, sizeof(m.node_id));
    memcpy(m.hostname, c->hostname, sizeof(m.hostname));
    snprintf(m.sw_version, sizeof(m.sw_version), "%s", SL_VERSION);
    m.plugins = json_array();
    const char *const *names = dp_plugin_names ? dp_plugin_names() : NULL;
    for (size_t i = 0; names && names[i] && i < SL_CMSG_MAX_PLUGINS; i++)
        json_array_append_new(m.plugins, json_string(names[i]));
    current(c, &m.config_version, m.config_hash);
    queue_msg(c, &m);
    sl_cmsg_free(&m);
}

static void send_ack(dp_cluster_client *c, int64_t version, const char *hash)
{
    sl_cluster_msg m;
    memset(&m, 0, sizeof(m));
    m.type = SL_CMSG_ACK;
    m.config_version = version;
    sl_cmsg_copy_text(m.config_hash, sizeof(m.config_hash), hash);
    queue_msg(c, &m);
}

/* Sends an error report; a per-entity list too large for one message is cut down (halved
 * until it fits) rather than dropped, so the operator still sees the first reasons. */
static void send_error(dp_cluster_client *c, int64_t version, const char *hash, const char *message,
                       json_t *errors)
{
    sl_cluster_msg m;
    memset(&m, 0, sizeof(m));
    m.type = SL_CMSG_ERROR;
    m.config_version = version;
    sl_cmsg_copy_text(m.config_hash, sizeof(m.config_hash), hash);
    sl_cmsg_copy_text(m.message, sizeof(m.message), message);
    m.errors = json_is_array(errors) ? json_copy(errors) : NULL;
    for (;;) {
        unsigned char *bytes;
        size_t len;
        char err[200];
        if (sl_cmsg_encode(&m, &bytes, &len, err, sizeof(err)) == 0) {
            free(bytes);
            break;
        }
        size_t n = json_array_size(m.errors);
        if (n == 0) {
            json_decref(m.errors);
            m.errors = NULL;
            break;
        }
        while (json_array_size(m.errors) > n / 2)
            json_array_remove(m.errors, json_array_size(m.errors) - 1);
    }
    queue_msg(c, &m);
    sl_cmsg_free(&m);
}

static void send_ping(dp_cluster_client *c)
{
    sl_cluster_msg m;
    memset(&m, 0, sizeof(m));
    m.type = SL_CMSG_PING;
    current(c, &m.config_version, m.config_hash);
    queue_msg(c, &m);
}

static int on_writeable(dp_cluster_client *c)
{
    out_msg *o = c->out_head;
    if (!o)
        return 0;
    c->out_head = o->next;
    if (!c->out_head)
        c->out_tail = NULL;
    c->out_count--;
    int w = lws_write(c->wsi, o->buf + LWS_PRE, o->len, LWS_WRITE_BINARY);
    size_t len = o->len;
    free(o);
    if (w < (int)len)
        return -1;
    if (c->out_head)
        lws_callback_on_writable(c->wsi);
    return 0;
}

/* ---- incoming messages ---- */

static void rx_reset(dp_cluster_client *c)
{
    free(c->rx);
    c->rx = NULL;
    c->rx_len = c->rx_cap = c->rx_total = 0;
    c->rx_oversize = 0;
    c->rx_head_len = 0;
}

/* ---- applying config (data_plane/cluster/apply_queue.h) ---- */

/* On the loop before a snapshot or delta is applied: unreadable envelopes are refused and the
 * config already serving is acknowledged, without work. */
static int apply_prepare(void *arg, dp_apply_job *j)
{
    dp_cluster_client *c = arg;
    int64_t cur_version;
    char cur_hash[65];
    if (j->kind == DP_APPLY_SNAPSHOT) {
        if (sl_cmsg_peek_snapshot(j->bytes, j->len, &j->version, j->hash)) {
            sl_warn("cluster: received a snapshot without a readable version; rejected");
            send_error(c, 0, "", "snapshot envelope unreadable (no version)", NULL);
            return 0;
        }
        current(c, &cur_version, cur_hash);
        if (j->hash[0] && strcmp(j->hash, cur_hash) == 0 && j->version == cur_version) {
            /* Same config at the same version (e.g. after a reconnect): nothing to rebuild.
             * The hash names content only, so the same content at a new version is applied:
             * the version the data plane reports must move on. */
            send_ack(c, j->version, j->hash);
            return 0;
        }
        return 1;
    }
    char base_hash[65];
    if (sl_delta_peek(j->bytes, j->len, &j->base_version, base_hash, &j->version, j->hash)) {
        sl_warn("cluster: received an unreadable delta; rejected");
        send_error(c, 0, "", "delta envelope unreadable", NULL);
        return 0;
    }
    current(c, &cur_version, cur_hash);
    if (strcmp(j->hash, cur_hash) == 0 && j->version == cur_version) {
        send_ack(c, j->version, j->hash);
        return 0;
    }
    return 1;
}

/* On a work thread: only the application callbacks (a copy owned by the queue) are used. */
static void apply_work(void *work_arg, dp_apply_job *j)
{
    const dp_cluster_callbacks *cb = work_arg;
    if (j->kind == DP_APPLY_SNAPSHOT)
        j->rc = cb->apply ? cb->apply(cb->arg, j->bytes, j->len, j->err, sizeof(j->err), &j->errors)
                          : -1;
    else /* A delta applies only to the config it was made from; anything else is answered
            with an error, which makes the control plane send the whole snapshot. */
        j->rc = cb->apply_delta
                    ? cb->apply_delta(cb->arg, j->bytes, j->len, j->err, sizeof(j->err), &j->errors)
                    : -1;
}

static void apply_done(void *arg, dp_apply_job *j)
{
    dp_cluster_client *c = arg;
    int64_t cur_version;
    char cur_hash[65];
    current(c, &cur_version, cur_hash);
    if (j->kind == DP_APPLY_SNAPSHOT && j->rc == 0) {
        sl_notice("cluster: applied config version %lld", (long long)j->version);
        send_ack(c, cur_hash[0] ? cur_version : j->version, cur_hash[0] ? cur_hash : j->hash);
    } else if (j->rc == 0) {
        sl_info("cluster: applied config version %lld (delta from %lld)", (long long)j->version,
                (long long)j->base_version);
        send_ack(c, j->version, j->hash);
    } else {
        const char *why = j->err[0]                      ? j->err
                          : j->kind == DP_APPLY_SNAPSHOT ? "apply failed"
                                                         : "delta not supported";
        sl_warn("cluster: rejected %s config version %lld: %s (still serving version %lld)",
                j->kind == DP_APPLY_SNAPSHOT ? "the snapshot of" : "the delta to",
                (long long)j->version, why, (long long)cur_version);
        send_error(c, j->version, j->hash, why, j->errors);
    }
}

static void free_callbacks(void *work_arg)
{
    free(work_arg);
}

static void queue_apply(dp_cluster_client *c, dp_apply_kind kind, const unsigned char *bytes,
                        size_t len)
{
    if (dp_apply_queue_push(c->applying, kind, bytes, len) == 0)
        return;
    /* dropped: say so, so that the control plane sends the whole config */
    int64_t version = 0, base_version;
    char hash[65] = "", base_hash[65];
    if (kind == DP_APPLY_SNAPSHOT)
        sl_cmsg_peek_snapshot(bytes, len, &version, hash);
    else
        sl_delta_peek(bytes, len, &base_version, base_hash, &version, hash);
    send_error(c, version, hash, "too many config messages waiting to be applied; dropped", NULL);
}

static void on_message(dp_cluster_client *c, const unsigned char *bytes, size_t len)
{
    sl_cmsg_type t;
    char err[256];
    if (sl_cmsg_peek_type(bytes, len, &t, err, sizeof(err))) {
        sl_warn("cluster: unreadable message from the control plane: %s", err);
        return;
    }
    if (t == SL_CMSG_SNAPSHOT || t == SL_CMSG_DELTA) {
        queue_apply(c, t == SL_CMSG_SNAPSHOT ? DP_APPLY_SNAPSHOT : DP_APPLY_DELTA, bytes, len);
        return;
    }
    if (t == SL_CMSG_REFUSED) {
        sl_cluster_msg m;
        if (sl_cmsg_decode(bytes, len, &m, err, sizeof(err)) == 0) {
            sl_warn("cluster: the control plane refused this data plane (%s): %s", m.reason,
                    m.message);
            sl_cmsg_free(&m);
        }
        /* Retrying fast would only be refused again: wait the longest interval. */
        c->attempt = 16;
        return;
    }
    sl_debug("cluster: ignoring a %s message from the control plane", sl_cmsg_type_name(t));
}

static int on_receive(dp_cluster_client *c, const unsigned char *in, size_t len)
{
    c->rx_total += len;
    if (c->rx_head_len < PEEK_KEEP) {
        size_t n = PEEK_KEEP - c->rx_head_len < len ? PEEK_KEEP - c->rx_head_len : len;
        memcpy(c->rx_head + c->rx_head_len, in, n);
        c->rx_head_len += n;
    }
    if (!c->rx_oversize && c->rx_total > c->max_payload) {
        /* Past cluster_max_payload: stop buffering, keep reading to the end of the message
         * and then tell the control plane. */
        c->rx_oversize = 1;
        free(c->rx);
        c->rx = NULL;
        c->rx_len = c->rx_cap = 0;
    }
    if (!c->rx_oversize && len) {
        if (c->rx_len + len > c->rx_cap) {
            size_t cap = c->rx_cap ? c->rx_cap : 65536;
            while (cap < c->rx_len + len)
                cap *= 2;
            if (cap > c->max_payload)
                cap = c->max_payload;
            unsigned char *p = realloc(c->rx, cap);
            if (!p) {
                sl_error("cluster: out of memory receiving a snapshot");
                return -1;
            }
            c->rx = p;
            c->rx_cap = cap;
        }
        memcpy(c->rx + c->rx_len, in, len);
        c->rx_len += len;
    }
    if (!lws_is_final_fragment(c->wsi) || lws_remaining_packet_payload(c->wsi))
        return 0;
    if (c->rx_oversize) {
        int64_t version = 0;
        char hash[65] = "", msg[200];
        sl_cmsg_peek_snapshot(c->rx_head, c->rx_head_len, &version, hash);
        snprintf(msg, sizeof(msg),
                 "snapshot of %zu bytes exceeds cluster_max_payload (%zu bytes); refused",
                 c->rx_total, c->max_payload);
        sl_warn("cluster: config version %lld: %s", (long long)version, msg);
        send_error(c, version, hash, msg, NULL);
    } else {
        on_message(c, c->rx, c->rx_len);
    }
    rx_reset(c);
    return 0;
}

/* ---- TLS ---- */

static int verify_server_cert(dp_cluster_client *c, X509_STORE_CTX *xs, int preverify_ok)
{
    /* The connection error that follows reports the reason we keep here. */
    if (!preverify_ok) {
        int e = X509_STORE_CTX_get_error(xs);
        snprintf(c->tls_refusal, sizeof(c->tls_refusal), "refused its certificate (depth %d): %s",
                 X509_STORE_CTX_get_error_depth(xs), X509_verify_cert_error_string(e));
        return 1;
    }
    if (c->shared && X509_STORE_CTX_get_error_depth(xs) == 0) {
        char got[SL_SHA256_HEX];
        X509 *cert = X509_STORE_CTX_get_current_cert(xs);
        unsigned char *der = NULL;
        int len = cert ? i2d_X509(cert, &der) : -1;
        int ok = len > 0 && sl_sha256_hex(der, (size_t)len, got) == 0 && !strcmp(got, c->pin);
        OPENSSL_free(der);
        if (!ok) {
            snprintf(c->tls_refusal, sizeof(c->tls_refusal),
                     "refused its certificate: not the cluster certificate (digest does not "
                     "match cluster_cert)");
            X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
            return 1;
        }
    }
    return 0;
}

/* ---- connection life ---- */

static void schedule_retry(dp_cluster_client *c)
{
    if (c->state == ST_STOPPING)
        return;
    c->state = ST_IDLE;
    c->wsi = NULL;
    unsigned shift = c->attempt < 16 ? c->attempt : 16;
    uint64_t base = (uint64_t)BACKOFF_FIRST_MS << shift;
    if (base > BACKOFF_MAX_MS)
        base = BACKOFF_MAX_MS;
    /* Jitter in [base/2, base]: data planes restarted together spread their reconnects. */
    uint32_t r = 0;
    sl_random_bytes(&r, sizeof(r));
    uint64_t delay = base / 2 + (base / 2 + 1) * r / 0x100000000ull;
    c->attempt++;
    sl_info("cluster: reconnecting to the control plane in %llu ms", (unsigned long long)delay);
    uv_timer_start(&c->retry_timer, on_retry_timer, delay, 0);
}

static void on_closed(dp_cluster_client *c, const char *why);

/* lws 4.1 does not always report a connection the server closes right after a TLS 1.3
 * handshake (e.g. when the server refuses our certificate): without this, such an attempt
 * would wait forever instead of retrying. */
static void on_watchdog(uv_timer_t *t)
{
    dp_cluster_client *c = t->data;
    if (c->state != ST_CONNECTING)
        return;
    if (c->wsi) {
        /* lws closes it later; its callbacks for it are ignored (killed_wsi), the retry is
         * scheduled here. */
        c->killed_wsi = c->wsi;
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_AWAITING_SERVER_RESPONSE, LWS_TO_KILL_ASYNC);
        c->wsi = NULL;
    }
    on_closed(c, c->tls_refusal[0] ? c->tls_refusal
                                   : "no websocket answer (certificate refused by the control "
                                     "plane?)");
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    dp_cluster_client *c = req->data;
    c->gai_active = 0;
    if (c->state == ST_STOPPING) {
        uv_freeaddrinfo(res);
        return;
    }
    if (status < 0 || !res) {
        sl_warn("cluster: cannot resolve control plane %s: %s", c->cp_host, uv_strerror(status));
        uv_freeaddrinfo(res);
        schedule_retry(c);
        return;
    }
    if (res->ai_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)res->ai_addr, c->address, sizeof(c->address));
    else
        uv_ip4_name((struct sockaddr_in *)res->ai_addr, c->address, sizeof(c->address));
    uv_freeaddrinfo(res);

    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = c->ctx;
    ci.address = c->address; /* numeric: lws must not resolve (it would block the loop) */
    ci.port = c->cp_port;
    ci.ssl_connection = LCCSCF_USE_SSL | (c->shared ? LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK : 0);
    ci.path = OUTLET_PATH;
    ci.host = c->server_name; /* Host header, SNI and (pki) the name checked */
    ci.origin = c->server_name;
    ci.protocol = PROTOCOL_NAME;
    ci.pwsi = &c->wsi;
    ci.retry_and_idle_policy = &c->idle;
    c->state = ST_CONNECTING;
    uv_timer_start(&c->watchdog, on_watchdog, CONNECT_WATCHDOG_MS, 0);
    /* A failure may already have been reported through CLIENT_CONNECTION_ERROR (which
     * scheduled the retry); only an unreported one is handled here. */
    if (!lws_client_connect_via_info(&ci) && c->state == ST_CONNECTING) {
        uv_timer_stop(&c->watchdog);
        sl_warn("cluster: cannot start a connection to the control plane %s:%d", c->cp_host,
                c->cp_port);
        schedule_retry(c);
    }
}

static void connect_now(dp_cluster_client *c)
{
    if (c->state == ST_STOPPING)
        return;
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->gai.data = c;
    c->state = ST_RESOLVING;
    char port[16];
    snprintf(port, sizeof(port), "%d", c->cp_port);
    int rc = uv_getaddrinfo(c->loop, &c->gai, on_resolved, c->cp_host, port, &hints);
    if (rc) {
        sl_warn("cluster: cannot resolve control plane %s: %s", c->cp_host, uv_strerror(rc));
        schedule_retry(c);
        return;
    }
    c->gai_active = 1;
}

static void on_ping_timer(uv_timer_t *t)
{
    dp_cluster_client *c = t->data;
    if (c->state == ST_CONNECTED)
        send_ping(c);
}

static void on_closed(dp_cluster_client *c, const char *why)
{
    int was_connected = c->state == ST_CONNECTED;
    uv_timer_stop(&c->ping_timer);
    uv_timer_stop(&c->watchdog);
    out_clear(c);
    rx_reset(c);
    if (c->state == ST_STOPPING)
        return;
    if (was_connected)
        sl_warn("cluster: disconnected from the control plane %s:%d%s%s", c->cp_host, c->cp_port,
                why ? ": " : "", why ? why : "");
    else
        sl_warn("cluster: cannot connect to the control plane %s:%d: %s", c->cp_host, c->cp_port,
                why ? why : "connection failed");
    schedule_retry(c);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_context *ctx = wsi ? lws_get_context(wsi) : NULL;
    dp_cluster_client *c = ctx ? lws_context_user(ctx) : NULL;
    if (!c)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
        return verify_server_cert(c, (X509_STORE_CTX *)user, (int)len);
    case LWS_CALLBACK_WSI_DESTROY:
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        /* A connection the server closes during the upgrade (e.g. after refusing our
         * certificate once TLS 1.3 finished on our side) ends here, not in
         * CLIENT_CONNECTION_ERROR; and c->wsi must never outlive the wsi. */
        if (wsi != c->wsi)
            return 0;
        c->wsi = NULL;
        on_closed(c, c->tls_refusal[0] ? c->tls_refusal
                                       : "closed during the websocket upgrade (certificate "
                                         "refused by the control plane?)");
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (wsi == c->killed_wsi) {
            c->killed_wsi = NULL;
            return 0;
        }
        if (reason == LWS_CALLBACK_CLIENT_CLOSED) {
            c->wsi = NULL;
            on_closed(c, NULL);
            return 0;
        }
        {
            char why[200];
            snprintf(why, sizeof(why), "%.*s", in ? (int)strnlen(in, 190) : 0,
                     in ? (const char *)in : "");
            c->wsi = NULL;
            if (c->tls_refusal[0])
                snprintf(why, sizeof(why), "%s", c->tls_refusal);
            c->tls_refusal[0] = 0;
            on_closed(c, why[0] ? why : NULL);
            return 0;
        }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->tls_refusal[0] = 0;
        uv_timer_stop(&c->watchdog);
        c->state = ST_CONNECTED;
        c->attempt = 0;
        rx_reset(c);
        sl_notice("cluster: connected to the control plane %s:%d", c->cp_host, c->cp_port);
        send_hello(c);
        uv_timer_start(&c->ping_timer, on_ping_timer, PING_INTERVAL_MS, PING_INTERVAL_MS);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (c->state != ST_CONNECTED)
            return -1;
        return on_receive(c, in, len);
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return c->state == ST_CONNECTED ? on_writeable(c) : 0;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {PROTOCOL_NAME, callback, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- start / stop ---- */

static void client_free(dp_cluster_client *c)
{
    dp_apply_queue_stop(c->applying);
    out_clear(c);
    rx_reset(c);
    free(c->cert);
    free(c->key);
    free(c->ca);
    free(c);
}

static int setting_file(const sl_settings *s, const char *name, char **out, char *err,
                        size_t errlen, const char *why)
{
    const char *v = sl_settings_get(s, name);
    if (!v || !*v) {
        snprintf(err, errlen, "%s is not set (%s)", name, why);
        return -1;
    }
    if (access(v, R_OK) != 0) {
        snprintf(err, errlen, "%s: cannot read %s: %s", name, v, strerror(errno));
        return -1;
    }
    *out = strdup(v);
    return *out ? 0 : -1;
}

static int load_pin(const char *path, char pin[SL_SHA256_HEX], char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (!x) {
        snprintf(err, errlen, "cluster_cert: %s holds no PEM certificate", path);
        return -1;
    }
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    int rc = (len > 0 && sl_sha256_hex(der, (size_t)len, pin) == 0) ? 0 : -1;
    if (rc)
        snprintf(err, errlen, "cluster_cert: cannot encode the certificate in %s", path);
    else if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
        sl_warn("cluster: cluster_cert %s has expired: the control plane will refuse it", path);
    OPENSSL_free(der);
    X509_free(x);
    return rc;
}

dp_cluster_client *dp_cluster_client_start(uv_loop_t *loop, const sl_settings *s,
                                           const char *node_id, const dp_cluster_callbacks *cb,
                                           char *err, size_t errlen)
{
    dp_cluster_client *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->loop = loop;
    c->cb = *cb;
    snprintf(c->node_id, sizeof(c->node_id), "%s", node_id);
    if (!sl_uuid_is_valid(c->node_id)) {
        snprintf(err, errlen, "node id '%s' is not a uuid", node_id);
        goto fail;
    }
    if (gethostname(c->hostname, sizeof(c->hostname) - 1) != 0)
        snprintf(c->hostname, sizeof(c->hostname), "localhost");
    const char *mode = sl_settings_get(s, "cluster_mtls");
    c->shared = !mode || strcmp(mode, "pki") != 0;
    if (setting_file(s, "cluster_cert", &c->cert, err, errlen,
                     "the data plane presents it to the control plane") ||
        setting_file(s, "cluster_cert_key", &c->key, err, errlen, "the key of cluster_cert") ||
        (!c->shared && setting_file(s, "cluster_ca_cert", &c->ca, err, errlen,
                                    "cluster_mtls = pki checks the control plane against it")) ||
        load_pin(c->cert, c->pin, err, errlen))
        goto fail;
    if (c->shared) {
        snprintf(c->server_name, sizeof(c->server_name), "%s", SHARED_SNI);
    } else {
        const char *sn = sl_settings_get(s, "cluster_server_name");
        if (!sn || !*sn) {
            snprintf(err, errlen,
                     "cluster_server_name is not set (cluster_mtls = pki checks "
                     "the control plane's certificate against it)");
            goto fail;
        }
        snprintf(c->server_name, sizeof(c->server_name), "%s", sn);
    }
    sl_listen_addr addr;
    char e[200];
    if (sl_listen_parse(sl_settings_get(s, "cluster_control_plane"), &addr, 1, e, sizeof(e)) != 1) {
        snprintf(err, errlen, "cluster_control_plane: %s", e);
        goto fail;
    }
    snprintf(c->cp_host, sizeof(c->cp_host), "%s", addr.host);
    c->cp_port = addr.port;
    long long maxp = sl_settings_int(s, "cluster_max_payload");
    c->max_payload = maxp > 0 ? (size_t)maxp : 64u * 1024 * 1024;
    dp_cluster_callbacks *wcb = malloc(sizeof(*wcb));
    if (wcb)
        *wcb = *cb;
    dp_apply_queue_ops ops = {apply_prepare, apply_work, apply_done, c, wcb, free_callbacks};
    /* deltas waiting behind a snapshot: the size of one more whole config */
    if (!wcb || !(c->applying = dp_apply_queue_new(loop, &ops, c->max_payload))) {
        free(wcb);
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    c->idle.secs_since_valid_ping = 15;
    c->idle.secs_since_valid_hangup = 30;

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
    void *loops[1] = {loop};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
                   LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN |
                   LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS |
                   LWS_SERVER_OPTION_SKIP_SERVER_CANONICAL_NAME;
    info.foreign_loops = loops;
    info.pcontext = &c->ctx;
    info.user = c;
    info.client_ssl_cert_filepath = c->cert;
    info.client_ssl_private_key_filepath = c->key;
    /* shared: trust exactly the cluster certificate; pki: the CA. */
    info.client_ssl_ca_filepath = c->shared ? c->cert : c->ca;
    info.timeout_secs = 10;
    info.connect_timeout_secs = 10;
    c->ctx = lws_create_context(&info);
    if (!c->ctx) {
        snprintf(err, errlen,
                 "cannot start the cluster client (cluster_cert/cluster_cert_key "
                 "do not load: see the log)");
        goto fail;
    }
    uv_timer_init(loop, &c->retry_timer);
    uv_timer_init(loop, &c->ping_timer);
    uv_timer_init(loop, &c->watchdog);
    c->retry_timer.data = c->ping_timer.data = c->watchdog.data = c;
    sl_notice("cluster: data plane %s connects to the control plane %s:%d (mtls %s)", c->node_id,
              c->cp_host, c->cp_port, c->shared ? "shared" : "pki");
    connect_now(c);
    return c;
fail:
    client_free(c);
    return NULL;
}

int dp_cluster_client_connected(const dp_cluster_client *c)
{
    return c && c->state == ST_CONNECTED;
}

int64_t dp_cluster_client_applying(const dp_cluster_client *c)
{
    return c ? dp_apply_queue_running_version(c->applying) : -1;
}

static int gai_pending(void *arg)
{
    return ((dp_cluster_client *)arg)->gai_active;
}

static void reaped(void *arg)
{
    client_free(arg);
}

void dp_cluster_client_stop(dp_cluster_client *c)
{
    if (!c)
        return;
    c->state = ST_STOPPING;
    uv_timer_stop(&c->retry_timer);
    uv_timer_stop(&c->ping_timer);
    uv_timer_stop(&c->watchdog);
    uv_close((uv_handle_t *)&c->watchdog, NULL);
    uv_close((uv_handle_t *)&c->retry_timer, NULL);
    uv_close((uv_handle_t *)&c->ping_timer, NULL);
    if (c->gai_active)
        uv_cancel((uv_req_t *)&c->gai);
    lws_context_destroy(c->ctx);
    sl_lws_reaper_start(&c->reaper, c->loop, &c->ctx, gai_pending, reaped, c, "cluster client");
}
