#include "control_plane/cluster/registry.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/cluster_msg.h"

#define DEFAULT_MAX_ENTRIES 10000

typedef struct {
    char id[37];
    char hostname[SL_CMSG_MAX_HOSTNAME + 1];
    char ip[64];
    char version[SL_CMSG_MAX_SW_VERSION + 1];
    int64_t config_version;
    char config_hash[65];
    time_t last_seen;
    char sync_status[32];
    json_t *error; /* object or NULL */
    int connected;
    uint64_t conn; /* number of the connection that last said hello */
} cp_dp_entry;

struct cp_registry {
    pthread_mutex_t mu;
    cp_dp_entry *e;
    size_t n, cap, max;
    uint64_t next_conn;
};

cp_registry *cp_registry_new(size_t max_entries)
{
    cp_registry *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    pthread_mutex_init(&r->mu, NULL);
    r->max = max_entries ? max_entries : DEFAULT_MAX_ENTRIES;
    r->next_conn = 1;
    return r;
}

void cp_registry_free(cp_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        json_decref(r->e[i].error);
    free(r->e);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static cp_dp_entry *find(cp_registry *r, const char *node_id)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->e[i].id, node_id) == 0)
            return &r->e[i];
    return NULL;
}

/* A slot for a new entry: grows the array, or reuses the longest-disconnected entry when the
 * table is at its bound. NULL when every entry is connected (or out of memory). */
static cp_dp_entry *new_slot(cp_registry *r)
{
    if (r->n < r->max) {
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 16;
            if (cap > r->max)
                cap = r->max;
            cp_dp_entry *e = realloc(r->e, cap * sizeof(*e));
            if (!e)
                return NULL;
            r->e = e;
            r->cap = cap;
        }
        cp_dp_entry *slot = &r->e[r->n++];
        memset(slot, 0, sizeof(*slot));
        return slot;
    }
    cp_dp_entry *oldest = NULL;
    for (size_t i = 0; i < r->n; i++)
        if (!r->e[i].connected && (!oldest || r->e[i].last_seen < oldest->last_seen))
            oldest = &r->e[i];
    if (oldest) {
        json_decref(oldest->error);
        memset(oldest, 0, sizeof(*oldest));
    }
    return oldest;
}

static void set_config(cp_dp_entry *e, int64_t config_version, const char *config_hash)
{
    e->config_version = config_version;
    sl_cmsg_copy_text(e->config_hash, sizeof(e->config_hash), config_hash ? config_hash : "");
}

uint64_t cp_registry_connect(cp_registry *r, const char *node_id, const char *hostname,
                             const char *ip, const char *version, int64_t config_version,
                             const char *config_hash, time_t now)
{
    pthread_mutex_lock(&r->mu);
    cp_dp_entry *e = find(r, node_id);
    if (!e)
        e = new_slot(r);
    uint64_t conn = 0;
    if (e) {
        sl_cmsg_copy_text(e->id, sizeof(e->id), node_id);
        sl_cmsg_copy_text(e->hostname, sizeof(e->hostname), hostname ? hostname : "");
        sl_cmsg_copy_text(e->ip, sizeof(e->ip), ip ? ip : "");
        sl_cmsg_copy_text(e->version, sizeof(e->version), version ? version : "");
        set_config(e, config_version, config_hash);
        e->last_seen = now;
        snprintf(e->sync_status, sizeof(e->sync_status), "unknown");
        json_decref(e->error);
        e->error = NULL;
        e->connected = 1;
        conn = e->conn = r->next_conn++;
    }
    pthread_mutex_unlock(&r->mu);
    return conn;
}

void cp_registry_seen(cp_registry *r, const char *node_id, int64_t config_version,
                      const char *config_hash, time_t now)
{
    pthread_mutex_lock(&r->mu);
    cp_dp_entry *e = find(r, node_id);
    if (e) {
        set_config(e, config_version, config_hash);
        e->last_seen = now;
    }
    pthread_mutex_unlock(&r->mu);
}

void cp_registry_set_status(cp_registry *r, const char *node_id, const char *status)
{
    pthread_mutex_lock(&r->mu);
    cp_dp_entry *e = find(r, node_id);
    if (e)
        sl_cmsg_copy_text(e->sync_status, sizeof(e->sync_status), status);
    pthread_mutex_unlock(&r->mu);
}

void cp_registry_ack(cp_registry *r, const char *node_id, int64_t config_version,
                     const char *config_hash, time_t now)
{
    pthread_mutex_lock(&r->mu);
    cp_dp_entry *e = find(r, node_id);
    if (e) {
        set_config(e, config_version, config_hash);
        e->last_seen = now;
        snprintf(e->sync_status, sizeof(e->sync_status), "normal");
        json_decref(e->error);
        e->error = NULL;
    }
    pthread_mutex_unlock(&r->mu);
}

void cp_registry_error(cp_registry *r, const char *node_id, int64_t config_version,
                       const char *config_hash, const char *message, json_t *errors, time_t now)
{
    /* Build the JSON outside the lock: a large per-entity list must not stall readers. */
    json_t *err = json_pack("{s:s, s:I, s:s, s:O?}", "message", message ? message : "", "version",
                            (json_int_t)config_version, "hash", config_hash ? config_hash : "",
                            "errors", errors);
    pthread_mutex_lock(&r->mu);
    cp_dp_entry *e = find(r, node_id);
    if (e) {
        e->last_seen = now;
        snprintf(e->sync_status, sizeof(e->sync_status), "config_rejected");
        json_decref(e->error);
        e->error = err;
        err = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    json_decref(err);
}

void cp_registry_disconnect(cp_registry *r, const char *node_id, uint64_t conn)
{
    pthread_mutex_lock(&r->mu);
    cp_dp_entry *e = find(r, node_id);
    if (e && e->conn == conn)
        e->connected = 0;
    pthread_mutex_unlock(&r->mu);
}

int cp_registry_get(cp_registry *r, const char *node_id, cp_dp_row *out)
{
    pthread_mutex_lock(&r->mu);
    cp_dp_entry *e = find(r, node_id);
    if (e) {
        memset(out, 0, sizeof(*out));
        memcpy(out->id, e->id, sizeof(out->id));
        sl_cmsg_copy_text(out->hostname, sizeof(out->hostname), e->hostname);
        sl_cmsg_copy_text(out->ip, sizeof(out->ip), e->ip);
        sl_cmsg_copy_text(out->version, sizeof(out->version), e->version);
        out->config_version = e->config_version;
        memcpy(out->config_hash, e->config_hash, sizeof(out->config_hash));
        out->last_seen = e->last_seen;
        sl_cmsg_copy_text(out->sync_status, sizeof(out->sync_status), e->sync_status);
        out->error = e->error ? json_dumps(e->error, JSON_COMPACT) : NULL;
        out->connected = e->connected;
    }
    pthread_mutex_unlock(&r->mu);
    return e ? 0 : -1;
}

json_t *cp_registry_list(cp_registry *r)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n; i++) {
        cp_dp_entry *e = &r->e[i];
        /* The error object is deep-copied: the caller may use it after the lock is gone
         * while the loop replaces the entry's error. */
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:s, s:b, s:o}", "id", e->id, "hostname",
                      e->hostname, "ip", e->ip, "version", e->version, "config_version",
                      (json_int_t)e->config_version, "config_hash", e->config_hash, "last_seen",
                      (json_int_t)e->last_seen, "sync_status", e->sync_status, "connected",
                      e->connected, "error", e->error ? json_deep_copy(e->error) : json_null());
        if (o)
            json_array_append_new(a, o);
    }
    pthread_mutex_unlock(&r->mu);
    return a;
}
