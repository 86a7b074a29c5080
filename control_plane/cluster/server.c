#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "control_plane/cluster/cluster.h"
#include "control_plane/cluster/dp_table.h"
#include "control_plane/cluster/registry.h"
#include "proto/cluster_msg.h"
#include "proto/digest.h"
#include "proto/log.h"
#include "proto/lws_reaper.h"
#include "proto/version.h"

/* The control plane side of /v1/outlet: libwebsockets on the control plane's own libuv loop
 * (a "foreign" loop to lws), mutual TLS, one session per data plane. */

#define CHUNK (64 * 1024)  /* bytes of a snapshot written per WRITEABLE callback */
#define HELLO_TIMEOUT_S 10 /* a connection that says nothing is dropped after this */
#define PING_WRITE_GAP_S 5 /* a ping that changes nothing reaches PostgreSQL at most this often */
#define DELTAS_KEPT 64     /* recent deltas kept, so a DP a few versions behind catches up */
#define DELTAS_MAX_BYTES (64u * 1024 * 1024) /* and at most this many bytes of them */
#define DELTA_SILENCE_S 5 /* a delta neither acked nor refused this long: the DP ignores deltas */
#define PROTOCOL_NAME "sluice-cluster"
#define OUTLET_PATH "/v1/outlet"

typedef struct cp_session cp_session;

struct cp_cluster {
    uv_loop_t *loop;
    struct lws_context *ctx; /* lws writes NULL here when its destruction has completed */
    cp_registry *reg;
    cp_dp_table *table;       /* the registry in PostgreSQL, for every replica; NULL after stop */
    cp_snapshot_ref *current; /* newest full snapshot */
    cp_snapshot_ref *deltas[DELTAS_KEPT]; /* recent deltas, oldest first */
    size_t ndeltas, delta_bytes;
    cp_session *sessions; /* established websocket sessions */
    int shared;           /* cluster_mtls = shared: pin the peer to our own certificate */
    char pin[SL_SHA256_HEX];
    char *cert, *key, *ca;
    char iface[256];
    unsigned char *scratch;       /* LWS_PRE + CHUNK: one write at a time on the loop thread */
    lws_retry_bo_t idle;          /* ws ping after 15 s idle, hang up after 30 s without a reply */
    sl_lws_reaper reaper;         /* after stop: waits for lws to finish, then frees this */
    void (*want_full)(void *arg); /* asks the builder for the newest full snapshot */
    void *want_full_arg;
};

struct cp_session {
    cp_cluster *c;
    struct lws *wsi;
    cp_session *next, *prev;
    char ip[64];
    char node_id[37];
    uint64_t conn;      /* registry connection number; 0 until a valid hello */
    json_t *plugins;    /* names the data plane has */
    int64_t dp_version; /* what the data plane says it serves */
    char dp_hash[65];
    int sent_any;
    int64_t sent_version; /* newest version queued to this data plane */
    /* What the data plane will serve once it has applied everything queued; unknown (have_ok
     * 0) after it reported an error: then its own word (dp_version, dp_hash) is all we know. */
    int have_ok;
    int64_t have_version;
    char have_hash[65];
    int64_t full_version; /* version of the last full snapshot queued (-1: none) */
    int delta_since_full; /* a delta was queued after that full snapshot */
    int need_full;        /* it refused a delta: the next thing queued is a full snapshot */
    int no_deltas;        /* it ignored a delta (a data plane that predates them) */
    int delta_unanswered; /* a delta was written and no ack or error came since */
    time_t delta_written;
    int blocked; /* plugin_set_incompatible for the current snapshot */
    cp_snapshot_ref *sending;
    size_t sent;
    unsigned char *ctrl; /* a control message waiting for WRITEABLE (refused) */
    size_t ctrl_len;
    int close_after_ctrl;
    unsigned char *rx;
    size_t rx_len;
    time_t table_written; /* when this data plane's row was last queued for PostgreSQL */
};

/* One index for our pointer in the listener's SSL_CTX, so the certificate verify callback
 * (which lws calls with no usable connection) finds the cluster. */
static int ssl_ctx_index = -1;
static pthread_once_t ssl_index_once = PTHREAD_ONCE_INIT;
static void make_ssl_index(void)
{
    ssl_ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* ---- lws logs into ours ---- */

static void lws_log_emit(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    /* lws reports a refused peer certificate as an error of its own; we log those (naming the
     * peer) at [warn], so lws's lines are details: [info] for its errors, debug otherwise. */
    sl_log((level & (LLL_ERR | LLL_WARN)) ? SL_LOG_INFO : SL_LOG_DEBUG, "cluster: lws: %.*s",
           (int)n, line);
}

/* ---- certificates ---- */

static int read_cert_pin(const char *path, char pin[SL_SHA256_HEX], char *err, size_t errlen,
                         const char *setting)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read %s: %s", setting, path, strerror(errno));
        return -1;
    }
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!x) {
        snprintf(err, errlen, "%s: %s holds no PEM certificate", setting, path);
        return -1;
    }
    int rc = 0;
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    if (len <= 0 || sl_sha256_hex(der, (size_t)len, pin)) {
        snprintf(err, errlen, "%s: cannot encode the certificate in %s", setting, path);
        rc = -1;
    } else if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
        sl_warn("cluster: %s %s has expired: data planes will refuse it", setting, path);
    }
    OPENSSL_free(der);
    X509_free(x);
    return rc;
}

static int check_readable(const sl_settings *s, const char *name, char **out, char *err,
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

/* The DER sha256 of cert, as hex; -1 when it cannot be encoded. */
static int cert_digest(X509 *cert, char hex[SL_SHA256_HEX])
{
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    int rc = (len > 0 && sl_sha256_hex(der, (size_t)len, hex) == 0) ? 0 : -1;
    OPENSSL_free(der);
    return rc;
}

static void ssl_peer_ip(SSL *ssl, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd = ssl ? SSL_get_fd(ssl) : -1;
    snprintf(buf, len, "?");
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, buf, (socklen_t)len);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, buf, (socklen_t)len);
}

/* Called by OpenSSL (through lws) for each certificate of the data plane's chain. lws accepts
 * whatever we return 0 for, so a failed pre-verification must be refused here explicitly. */
static int verify_client_cert(X509_STORE_CTX *xs, SSL *ssl, int preverify_ok)
{
    SSL_CTX *sctx = ssl ? SSL_get_SSL_CTX(ssl) : NULL;
    cp_cluster *c = sctx && ssl_ctx_index >= 0 ? SSL_CTX_get_ex_data(sctx, ssl_ctx_index) : NULL;
    char ip[64];
    if (!preverify_ok) {
        int e = X509_STORE_CTX_get_error(xs);
        ssl_peer_ip(ssl, ip, sizeof(ip));
        sl_warn("cluster: refused data plane %s: certificate at depth %d: %s", ip,
                X509_STORE_CTX_get_error_depth(xs), X509_verify_cert_error_string(e));
        return 1;
    }
    if (!c) {
        sl_error("cluster: certificate check without cluster state; refusing");
        return 1;
    }
    if (c->shared && X509_STORE_CTX_get_error_depth(xs) == 0) {
        char got[SL_SHA256_HEX];
        X509 *cert = X509_STORE_CTX_get_current_cert(xs);
        if (!cert || cert_digest(cert, got) || strcmp(got, c->pin) != 0) {
            ssl_peer_ip(ssl, ip, sizeof(ip));
            sl_warn("cluster: refused data plane %s: its certificate is not the cluster "
                    "certificate (digest does not match cluster_cert)",
                    ip);
            X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
            return 1;
        }
    }
    return 0;
}

/* ---- sessions ---- */

static void session_unlink(cp_session *s)
{
    cp_cluster *c = s->c;
    if (!c)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else if (c->sessions == s)
        c->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
}

/* Queues this data plane's registry entry for the clustering_data_planes table. */
static void record(cp_session *s)
{
    cp_dp_row row;
    if (!s->c || !s->c->table || !s->conn || cp_registry_get(s->c->reg, s->node_id, &row))
        return;
    cp_dp_table_put(s->c->table, &row);
    free(row.error);
    s->table_written = time(NULL);
}

/* A status change, recorded when it is one (maybe_send runs on every publish). */
static void set_status(cp_session *s, const char *status)
{
    cp_dp_row row;
    cp_cluster *c = s->c;
    if (cp_registry_get(c->reg, s->node_id, &row) == 0) {
        int same = strcmp(row.sync_status, status) == 0;
        free(row.error);
        if (same)
            return;
    }
    cp_registry_set_status(c->reg, s->node_id, status);
    record(s);
}

static int plugin_missing(const cp_session *s, const json_t *used, const char **which)
{
    size_t i, j;
    json_t *u;
    json_array_foreach(used, i, u)
    {
        const char *name = json_string_value(u);
        if (!name)
            continue;
        int found = 0;
        json_t *p;
        json_array_foreach(s->plugins, j, p)
        {
            if (json_string_value(p) && strcmp(json_string_value(p), name) == 0) {
                found = 1;
                break;
            }
        }
        if (!found) {
            *which = name;
            return 1;
        }
    }
    return 0;
}

/* The newest thing published: the newest delta when it is newer than the full snapshot (whose
 * own full snapshot is then still being built), else the full snapshot. */
static cp_snapshot_ref *newest_ref(const cp_cluster *c)
{
    cp_snapshot_ref *d = c->ndeltas ? c->deltas[c->ndeltas - 1] : NULL;
    if (d && (!c->current || d->version > c->current->version))
        return d;
    return c->current;
}

/* The kept delta that applies to (version, hash), or NULL. */
static cp_snapshot_ref *delta_from(const cp_cluster *c, int64_t version, const char *hash)
{
    for (size_t i = c->ndeltas; i-- > 0;) {
        cp_snapshot_ref *d = c->deltas[i];
        if (d->base_version == version && strcmp(d->base_hash, hash) == 0)
            return d;
    }
    return NULL;
}

/* Whether catching up delta by delta from first to top beats the full snapshot: the chain
 * must reach top (kept deltas are bounded) and, when top's full snapshot is built, weigh less
 * (a data plane back after many changes gets one snapshot, not a long series). */
static int chain_worth_it(const cp_cluster *c, const cp_snapshot_ref *first,
                          const cp_snapshot_ref *top)
{
    size_t bytes = 0;
    const cp_snapshot_ref *d = first;
    for (size_t steps = 0; d && steps <= c->ndeltas; steps++) {
        bytes += d->len;
        if (d->version == top->version && strcmp(d->hash, top->hash) == 0)
            return !c->current || c->current->version < top->version || bytes < c->current->len;
        d = delta_from(c, d->version, d->hash);
    }
    return 0;
}

/* Decides what, if anything, goes to this data plane now and queues it: the delta from what
 * it has, else the newest full snapshot. Never sends a version older than what the data
 * plane serves or what was already queued to it (except the full snapshot of a version whose
 * delta it refused). */
static void maybe_send(cp_session *s)
{
    cp_cluster *c = s->c;
    cp_snapshot_ref *top = newest_ref(c);
    if (!s->conn || s->close_after_ctrl || !top)
        return;
    if (s->sending) {
        /* The frame in flight finishes first; WRITEABLE then comes back here. */
        return;
    }
    if (top->version < s->dp_version)
        return;
    if (s->sent_any && top->version <= s->sent_version && !s->need_full)
        return;
    if (s->dp_version == top->version && s->dp_hash[0] && strcmp(s->dp_hash, top->hash) == 0 &&
        !s->need_full) {
        s->sent_any = 1;
        s->sent_version = top->version;
        s->have_ok = 1;
        s->have_version = top->version;
        memcpy(s->have_hash, top->hash, sizeof(s->have_hash));
        set_status(s, "normal");
        return;
    }
    cp_snapshot_ref *pick = NULL;
    const char *hash = s->have_ok ? s->have_hash : s->dp_hash;
    if (!s->need_full && !s->no_deltas && hash[0]) {
        pick = delta_from(c, s->have_ok ? s->have_version : s->dp_version, hash);
        if (pick && s->sent_any && pick->version <= s->sent_version)
            pick = NULL;
        if (pick && !chain_worth_it(c, pick, top))
            pick = NULL;
    }
    if (!pick) {
        /* Wait for the newest version's full snapshot rather than send an older one. */
        pick = c->current;
        if (!pick || pick->version < top->version) {
            if (c->want_full)
                c->want_full(c->want_full_arg);
            return;
        }
        if (s->sent_any && pick->version <= s->sent_version && !s->need_full)
            return;
    }
    const char *missing = NULL;
    if (plugin_missing(s, pick->plugins_used, &missing)) {
        if (!s->blocked)
            sl_warn("cluster: data plane %s (%s) lacks plugin '%s' used by config version %lld; "
                    "config withheld",
                    s->node_id, s->ip, missing, (long long)pick->version);
        s->blocked = 1;
        set_status(s, "plugin_set_incompatible");
        return;
    }
    s->blocked = 0;
    pick->refs++;
    s->sending = pick;
    s->sent = 0;
    s->sent_any = 1;
    s->sent_version = pick->version;
    s->have_ok = 1;
    s->have_version = pick->version;
    memcpy(s->have_hash, pick->hash, sizeof(s->have_hash));
    if (pick->kind == CP_REF_SNAPSHOT) {
        s->full_version = pick->version;
        s->delta_since_full = 0;
        s->need_full = 0;
    } else {
        s->delta_since_full = 1;
    }
    lws_callback_on_writable(s->wsi);
}

static void queue_refused(cp_session *s, const char *reason, const char *message)
{
    sl_cluster_msg m;
    char err[200];
    memset(&m, 0, sizeof(m));
    m.type = SL_CMSG_REFUSED;
    sl_cmsg_copy_text(m.reason, sizeof(m.reason), reason);
    sl_cmsg_copy_text(m.message, sizeof(m.message), message);
    free(s->ctrl);
    s->ctrl = NULL;
    if (sl_cmsg_encode(&m, &s->ctrl, &s->ctrl_len, err, sizeof(err)))
        sl_error("cluster: cannot encode refused message: %s", err);
    s->close_after_ctrl = 1;
    lws_callback_on_writable(s->wsi);
}

static int on_hello(cp_session *s, sl_cluster_msg *m)
{
    cp_cluster *c = s->c;
    char why[200];
    lws_set_timeout(s->wsi, NO_PENDING_TIMEOUT, 0);
    snprintf(s->node_id, sizeof(s->node_id), "%s", m->node_id);
    s->dp_version = m->config_version;
    memcpy(s->dp_hash, m->config_hash, sizeof(s->dp_hash));
    s->conn = cp_registry_connect(c->reg, m->node_id, m->hostname, s->ip, m->sw_version,
                                  m->config_version, m->config_hash, time(NULL));
    if (!s->conn) {
        sl_warn("cluster: data plane %s (%s) refused: registry full", m->node_id, s->ip);
        queue_refused(s, "registry_full", "the control plane tracks too many data planes");
        return 0;
    }
    if (sl_cmsg_version_compatible(SL_VERSION, m->sw_version, why, sizeof(why))) {
        sl_warn("cluster: data plane %s (%s, %s) refused: %s", m->node_id, s->ip, m->sw_version,
                why);
        cp_registry_set_status(c->reg, s->node_id, "version_incompatible");
        record(s);
        queue_refused(s, "version_incompatible", why);
        return 0;
    }
    json_decref(s->plugins);
    s->plugins = json_incref(m->plugins);
    sl_notice("cluster: data plane %s (%s, %s, version %s) connected, serving config version "
              "%lld",
              m->node_id, m->hostname, s->ip, m->sw_version, (long long)m->config_version);
    record(s);
    maybe_send(s);
    return 0;
}

static int on_message(cp_session *s)
{
    cp_cluster *c = s->c;
    sl_cluster_msg m;
    char err[256];
    if (sl_cmsg_decode(s->rx, s->rx_len, &m, err, sizeof(err))) {
        sl_warn("cluster: bad message from data plane %s: %s", s->ip, err);
        return -1;
    }
    int rc = 0;
    if (!s->conn && m.type != SL_CMSG_HELLO) {
        if (!s->close_after_ctrl) {
            sl_warn("cluster: data plane %s sent %s before hello", s->ip,
                    sl_cmsg_type_name(m.type));
            rc = -1;
        }
        sl_cmsg_free(&m);
        return rc;
    }
    time_t now = time(NULL);
    switch (m.type) {
    case SL_CMSG_HELLO:
        if (s->conn) {
            sl_warn("cluster: data plane %s sent a second hello", s->ip);
            rc = -1;
        } else {
            rc = on_hello(s, &m);
        }
        break;
    case SL_CMSG_ACK:
        s->delta_unanswered = 0;
        s->dp_version = m.config_version;
        memcpy(s->dp_hash, m.config_hash, sizeof(s->dp_hash));
        cp_registry_ack(c->reg, s->node_id, m.config_version, m.config_hash, now);
        record(s);
        sl_info("cluster: data plane %s serves config version %lld", s->node_id,
                (long long)m.config_version);
        break;
    case SL_CMSG_ERROR:
        s->delta_unanswered = 0;
        s->have_ok = 0; /* it does not serve what it refused */
        if (s->delta_since_full && (m.config_version > s->full_version || m.config_version <= 0)) {
            /* Only deltas were queued after the last full snapshot: it refused one of them
             * (its config differs from the delta's base, or the result did not check). The
             * full snapshot settles it; a reason that holds for it too is reported then. */
            sl_notice("cluster: data plane %s (%s) refused the delta to config version %lld: "
                      "%s; sending the full snapshot",
                      s->node_id, s->ip, (long long)m.config_version, m.message);
            s->need_full = 1;
            maybe_send(s);
            break;
        }
        cp_registry_error(c->reg, s->node_id, m.config_version, m.config_hash, m.message, m.errors,
                          now);
        record(s);
        sl_warn("cluster: data plane %s (%s) rejected config version %lld: %s", s->node_id, s->ip,
                (long long)m.config_version, m.message);
        break;
    case SL_CMSG_PING: {
        int changed = m.config_version != s->dp_version || strcmp(m.config_hash, s->dp_hash) != 0;
        s->dp_version = m.config_version;
        memcpy(s->dp_hash, m.config_hash, sizeof(s->dp_hash));
        cp_registry_seen(c->reg, s->node_id, m.config_version, m.config_hash, now);
        /* Pings come every few seconds from every data plane: write last_seen only now and
         * then, unless what the data plane serves changed. */
        if (changed || now - s->table_written >= PING_WRITE_GAP_S)
            record(s);
        if (s->delta_unanswered && !s->sending && now - s->delta_written >= DELTA_SILENCE_S &&
            !(s->have_ok && s->dp_version == s->have_version)) {
            /* A data plane that predates deltas ignores them and keeps pinging its old
             * version: from now on it gets full snapshots only. */
            sl_warn("cluster: data plane %s (%s) neither applied nor refused a delta in %d s; "
                    "sending it full snapshots from now on",
                    s->node_id, s->ip, (int)(now - s->delta_written));
            s->delta_unanswered = 0;
            s->no_deltas = 1;
            s->need_full = 1;
            s->have_ok = 0;
            maybe_send(s);
        }
        break;
    }
    default:
        sl_debug("cluster: ignoring a %s message from data plane %s", sl_cmsg_type_name(m.type),
                 s->ip);
        break;
    }
    sl_cmsg_free(&m);
    return rc;
}

static int on_receive(cp_session *s, const void *in, size_t len)
{
    if (s->rx_len + len > SL_CMSG_MAX_LEN) {
        sl_warn("cluster: data plane %s sent a message over %u bytes; closing", s->ip,
                SL_CMSG_MAX_LEN);
        lws_close_reason(s->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
        return -1;
    }
    if (len) {
        unsigned char *p = realloc(s->rx, s->rx_len + len);
        if (!p)
            return -1;
        s->rx = p;
        memcpy(s->rx + s->rx_len, in, len);
        s->rx_len += len;
    }
    if (!lws_is_final_fragment(s->wsi) || lws_remaining_packet_payload(s->wsi))
        return 0;
    int rc = on_message(s);
    free(s->rx);
    s->rx = NULL;
    s->rx_len = 0;
    return rc;
}

static int on_writeable(cp_session *s)
{
    cp_cluster *c = s->c;
    if (s->ctrl) {
        size_t n = s->ctrl_len;
        unsigned char *buf = malloc(LWS_PRE + n);
        if (!buf)
            return -1;
        memcpy(buf + LWS_PRE, s->ctrl, n);
        int w = lws_write(s->wsi, buf + LWS_PRE, n, LWS_WRITE_BINARY);
        free(buf);
        free(s->ctrl);
        s->ctrl = NULL;
        if (w < (int)n)
            return -1;
        if (s->close_after_ctrl) {
            lws_close_reason(s->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)"refused",
                             7);
            return -1;
        }
    }
    cp_snapshot_ref *snap = s->sending;
    if (!snap)
        return 0;
    size_t n = snap->len - s->sent;
    if (n > CHUNK)
        n = CHUNK;
    int start = s->sent == 0, end = s->sent + n == snap->len;
    /* One copy per chunk into the LWS_PRE-prefixed scratch buffer: the snapshot bytes stay
     * shared by every session. */
    memcpy(c->scratch + LWS_PRE, snap->bytes + s->sent, n);
    int w = lws_write(s->wsi, c->scratch + LWS_PRE, n,
                      (enum lws_write_protocol)lws_write_ws_flags(LWS_WRITE_BINARY, start, end));
    if (w < (int)n) {
        sl_warn("cluster: write to data plane %s failed", s->ip);
        return -1;
    }
    s->sent += n;
    if (!end) {
        lws_callback_on_writable(s->wsi);
        return 0;
    }
    sl_debug("cluster: sent config %s version %lld (%zu bytes) to %s",
             snap->kind == CP_REF_DELTA ? "delta to" : "snapshot", (long long)snap->version,
             snap->len, s->node_id);
    if (snap->kind == CP_REF_DELTA) {
        s->delta_unanswered = 1;
        s->delta_written = time(NULL);
    }
    s->sending = NULL;
    cp_snapshot_ref_release(snap);
    maybe_send(s); /* a newer snapshot may have been published meanwhile */
    return 0;
}

static void session_close(cp_session *s)
{
    if (!s->c)
        return;
    if (s->conn) {
        cp_registry_disconnect(s->c->reg, s->node_id, s->conn);
        record(s);
        sl_notice("cluster: data plane %s (%s) disconnected", s->node_id, s->ip);
    }
    session_unlink(s);
    cp_snapshot_ref_release(s->sending);
    s->sending = NULL;
    json_decref(s->plugins);
    s->plugins = NULL;
    free(s->ctrl);
    s->ctrl = NULL;
    free(s->rx);
    s->rx = NULL;
    s->c = NULL;
}

static cp_cluster *cluster_of(struct lws *wsi)
{
    struct lws_vhost *vh = wsi ? lws_get_vhost(wsi) : NULL;
    return vh ? lws_vhost_user(vh) : NULL;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    cp_session *s = user;
    switch (reason) {
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS: {
        cp_cluster *c = in ? lws_vhost_user((struct lws_vhost *)in) : NULL;
        if (c && user && ssl_ctx_index >= 0)
            SSL_CTX_set_ex_data((SSL_CTX *)user, ssl_ctx_index, c);
        return 0;
    }
    case LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION:
        return verify_client_cert((X509_STORE_CTX *)user, (SSL *)in, (int)len);
    case LWS_CALLBACK_SSL_INFO: {
        /* A peer without any certificate never reaches the verify callback: name it here,
         * from the alert our side sends (116: certificate_required). */
        const struct lws_ssl_info *si = in;
        if (si && (si->where & SSL_CB_ALERT) && (si->where & SSL_CB_WRITE) &&
            (si->ret & 0xff) == 116) {
            char ip[64] = "?";
            lws_get_peer_simple(wsi, ip, sizeof(ip));
            sl_warn("cluster: refused data plane %s: it presented no client certificate", ip);
        }
        return 0;
    }
    case LWS_CALLBACK_HTTP:
        /* Only websocket upgrades on /v1/outlet are served. */
        if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
            return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        char uri[64];
        if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) < 0 ||
            strcmp(uri, OUTLET_PATH) != 0) {
            char ip[64];
            lws_get_peer_simple(wsi, ip, sizeof(ip));
            sl_info("cluster: refused websocket on a path other than %s from %s", OUTLET_PATH, ip);
            return -1;
        }
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED: {
        cp_cluster *c = cluster_of(wsi);
        if (!c)
            return -1;
        memset(s, 0, sizeof(*s));
        s->c = c;
        s->full_version = -1;
        s->wsi = wsi;
        lws_get_peer_simple(wsi, s->ip, sizeof(s->ip));
        s->next = c->sessions;
        if (c->sessions)
            c->sessions->prev = s;
        c->sessions = s;
        lws_set_timeout(wsi, (enum pending_timeout)(PENDING_TIMEOUT_USER_REASON_BASE + 1),
                        HELLO_TIMEOUT_S);
        return 0;
    }
    case LWS_CALLBACK_RECEIVE:
        return s && s->c ? on_receive(s, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return s && s->c ? on_writeable(s) : 0;
    case LWS_CALLBACK_CLOSED:
        if (s)
            session_close(s);
        return 0;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {PROTOCOL_NAME, callback, sizeof(cp_session), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- start / publish / stop ---- */

static void drop_deltas(cp_cluster *c)
{
    for (size_t i = 0; i < c->ndeltas; i++)
        cp_snapshot_ref_release(c->deltas[i]);
    c->ndeltas = 0;
    c->delta_bytes = 0;
}

static void cluster_free(cp_cluster *c)
{
    cp_dp_table_stop(c->table);
    cp_snapshot_ref_release(c->current);
    drop_deltas(c);
    cp_registry_free(c->reg);
    free(c->scratch);
    free(c->cert);
    free(c->key);
    free(c->ca);
    free(c);
}

cp_cluster *cp_cluster_start(uv_loop_t *loop, const sl_settings *s, const char *node_id, char *err,
                             size_t errlen)
{
    pthread_once(&ssl_index_once, make_ssl_index);
    cp_cluster *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->loop = loop;
    const char *mode = sl_settings_get(s, "cluster_mtls");
    c->shared = !mode || strcmp(mode, "pki") != 0;
    if (check_readable(s, "cluster_cert", &c->cert, err, errlen,
                       "the cluster listener needs a certificate; `sluice-cp certs generate "
                       "--out DIR` writes one") ||
        check_readable(s, "cluster_cert_key", &c->key, err, errlen, "the key of cluster_cert") ||
        (!c->shared && check_readable(s, "cluster_ca_cert", &c->ca, err, errlen,
                                      "cluster_mtls = pki needs the CA that signs data plane "
                                      "certificates")) ||
        read_cert_pin(c->cert, c->pin, err, errlen, "cluster_cert"))
        goto fail;

    sl_listen_addr addr;
    char e[200];
    if (sl_listen_parse(sl_settings_get(s, "cluster_listen"), &addr, 1, e, sizeof(e)) != 1) {
        snprintf(err, errlen, "cluster_listen: %s", e);
        goto fail;
    }
    c->reg = cp_registry_new(0);
    c->scratch = malloc(LWS_PRE + CHUNK);
    if (!c->reg || !c->scratch) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    c->table = cp_dp_table_start(s, node_id, err, errlen);
    if (!c->table)
        goto fail;
    snprintf(c->iface, sizeof(c->iface), "%s", addr.host);
    c->idle.secs_since_valid_ping = 15;
    c->idle.secs_since_valid_hangup = 30;

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);

    void *loops[1] = {loop};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = addr.port;
    /* lws binds "0.0.0.0" as an interface name lookup; NULL means every address. */
    info.iface = (strcmp(c->iface, "0.0.0.0") == 0 || strcmp(c->iface, "*") == 0) ? NULL : c->iface;
    info.protocols = protocols;
    info.options =
        LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
        LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT |
        LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN | LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS |
        LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND | LWS_SERVER_OPTION_SKIP_SERVER_CANONICAL_NAME;
    if (strchr(c->iface, ':') == NULL && info.iface)
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    info.foreign_loops = loops;
    info.pcontext = &c->ctx;
    info.user = c;
    info.ssl_cert_filepath = c->cert;
    info.ssl_private_key_filepath = c->key;
    /* shared: the cluster certificate is its own (and only) trust anchor; pki: the CA. */
    info.ssl_ca_filepath = c->shared ? c->cert : c->ca;
    info.retry_and_idle_policy = &c->idle;
    info.timeout_secs = 10;
    info.vhost_name = "sluice-cluster";
    info.ssl_info_event_mask = SSL_CB_ALERT;

    c->ctx = lws_create_context(&info);
    if (!c->ctx) {
        snprintf(err, errlen,
                 "cluster_listen %s:%d: cannot start the cluster listener (address in use, "
                 "or a certificate/key that does not load: see the log)",
                 addr.host, addr.port);
        goto fail;
    }
    sl_notice("cluster: listening on %s:%d (mtls %s)", addr.host, addr.port,
              c->shared ? "shared" : "pki");
    return c;
fail:
    cluster_free(c);
    return NULL;
}

/* Keeps a delta, dropping the oldest past the count or byte bound. */
static void keep_delta(cp_cluster *c, cp_snapshot_ref *d)
{
    d->refs++;
    c->deltas[c->ndeltas++] = d;
    c->delta_bytes += d->len;
    while (c->ndeltas > 1 && (c->ndeltas == DELTAS_KEPT || c->delta_bytes > DELTAS_MAX_BYTES)) {
        c->delta_bytes -= c->deltas[0]->len;
        cp_snapshot_ref_release(c->deltas[0]);
        memmove(c->deltas, c->deltas + 1, --c->ndeltas * sizeof(*c->deltas));
    }
}

void cp_cluster_on_full_wanted(cp_cluster *c, void (*fn)(void *arg), void *arg)
{
    c->want_full = fn;
    c->want_full_arg = arg;
}

void cp_cluster_publish(cp_cluster *c, cp_snapshot_ref *snap)
{
    if (!c || !snap)
        return;
    if (snap->kind == CP_REF_DELTA) {
        const cp_snapshot_ref *top = newest_ref(c);
        if (top && snap->version <= top->version)
            return;
        keep_delta(c, snap);
    } else {
        if (c->current &&
            (snap->version < c->current->version ||
             (snap->version == c->current->version && strcmp(snap->hash, c->current->hash) == 0)))
            return;
        snap->refs++;
        cp_snapshot_ref_release(c->current);
        c->current = snap;
    }
    for (cp_session *s = c->sessions; s; s = s->next)
        maybe_send(s);
}

json_t *cp_cluster_data_planes(void *arg)
{
    cp_cluster *c = arg;
    return c ? cp_registry_list(c->reg) : json_array();
}

static void reaped(void *arg)
{
    cluster_free(arg);
}

void cp_cluster_stop(cp_cluster *c)
{
    if (!c)
        return;
    cp_snapshot_ref_release(c->current);
    c->current = NULL;
    drop_deltas(c);
    /* Closes every connection now (their CLOSED callbacks run inside) and starts closing
     * lws's libuv handles; the loop must run for them to finish. */
    lws_context_destroy(c->ctx);
    /* The disconnections above are queued: write them, then no more rows. */
    cp_dp_table_stop(c->table);
    c->table = NULL;
    sl_lws_reaper_start(&c->reaper, c->loop, &c->ctx, NULL, reaped, c, "cluster listener");
}
