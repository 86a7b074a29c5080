#ifndef CP_CLUSTER_REGISTRY_H
#define CP_CLUSTER_REGISTRY_H

/* The control plane's table of data planes it has seen: what GET /clustering/data-planes
 * shows. The cluster server writes it on the event loop; the Admin API reads it from its
 * database threads, so every function takes the table's mutex. Entries stay after their data
 * plane disconnects (connected=false); past max_entries the longest-disconnected entry goes. */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct cp_registry cp_registry;

/* A new empty table holding at most max_entries data planes (0: a default of 10000). NULL
 * when out of memory. */
cp_registry *cp_registry_new(size_t max_entries);
void cp_registry_free(cp_registry *r);

/* Records a hello: creates or refreshes node_id's entry (connected, last_seen = now, sync_status
 * "unknown", error cleared). Returns a connection number that cp_registry_disconnect takes, so
 * a data plane that reconnects before its old connection closes stays connected. 0 when the
 * table is full of connected planes or out of memory (the caller refuses the connection). */
uint64_t cp_registry_connect(cp_registry *r, const char *node_id, const char *hostname,
                             const char *ip, const char *version, int64_t config_version,
                             const char *config_hash, time_t now);

/* A ping: last_seen = now and the version/hash the data plane serves. */
void cp_registry_seen(cp_registry *r, const char *node_id, int64_t config_version,
                      const char *config_hash, time_t now);

/* Sets sync_status ("normal", "version_incompatible", "plugin_set_incompatible"...). */
void cp_registry_set_status(cp_registry *r, const char *node_id, const char *status);

/* An ack: the data plane serves version/hash; sync_status "normal", error cleared. */
void cp_registry_ack(cp_registry *r, const char *node_id, int64_t config_version,
                     const char *config_hash, time_t now);

/* An error report about a snapshot: sync_status "config_rejected" and error = {message,
 * version, hash, errors} (errors: array or NULL, borrowed and copied). */
void cp_registry_error(cp_registry *r, const char *node_id, int64_t config_version,
                       const char *config_hash, const char *message, json_t *errors, time_t now);

/* The connection numbered conn closed: connected = false (unless a newer connection of the
 * same data plane is up). */
void cp_registry_disconnect(cp_registry *r, const char *node_id, uint64_t conn);

/* One data plane's entry, copied out of the table (for the database writer). */
typedef struct {
    char id[37];
    char hostname[256];
    char ip[64];
    char version[32];
    int64_t config_version;
    char config_hash[65];
    time_t last_seen;
    char sync_status[32];
    char *error; /* the error object as compact JSON (malloc'd, caller frees), or NULL */
    int connected;
} cp_dp_row;

/* Copies node_id's entry into *out. 0, or -1 when there is no such entry (out untouched). */
int cp_registry_get(cp_registry *r, const char *node_id, cp_dp_row *out);

/* A new JSON array with one object per data plane: id, hostname, ip, version, config_version,
 * config_hash, last_seen, sync_status, connected, error. Caller owns it; NULL on no memory. */
json_t *cp_registry_list(cp_registry *r);

#endif
