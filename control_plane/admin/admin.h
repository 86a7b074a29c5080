#ifndef CP_ADMIN_H
#define CP_ADMIN_H

/* The Admin API, split in two halves:
 *  - server.c owns the listeners on the event loop: accepts, parses HTTP/1.1 with llhttp,
 *    bounds sizes, checks admin_token, and hands each complete request to a DB thread;
 *  - api.c (cp_admin_dispatch) runs on that DB thread with its own store connection, decodes
 *    the body, and builds the Kong-shaped response. It never touches the loop. */

#include <jansson.h>
#include <stddef.h>

#include "control_plane/store/store.h"

#define CP_ADMIN_MAX_BODY (8 * 1024 * 1024) /* larger bodies: 413 */
#define CP_ADMIN_MAX_ARGS 1000              /* form arguments, as Kong: 400 "Too many arguments" */

typedef struct {
    char method[16];        /* "GET", "POST", ... (HEAD arrives as GET; body dropped) */
    char *path;             /* percent-decoded path, without the query */
    char *query;            /* raw query string (after '?'), or NULL */
    char *content_type;     /* NULL when absent */
    int content_type_count; /* more than one Content-Type header: 400 */
    char *body;             /* NUL-terminated copy of the body (may contain NULs) */
    size_t body_len;
    char remote_ip[64];
} cp_admin_request;

typedef struct {
    int status;
    json_t *body;            /* owned; serialized compactly; NULL: no body (204) */
    char extra_headers[512]; /* "Name: value\r\n" lines (e.g. "Deprecation: true\r\n") */
} cp_admin_response;

/* What the API half needs from the process; read-only while serving, except through the
 * callbacks, which are thread-safe. */
typedef struct cp_admin_ctx {
    const char *node_id;
    const char *hostname;
    const sl_settings *settings;
    /* GET /clustering/data-planes and /clustering/status: returns a new JSON array of data
     * plane objects (thread-safe snapshot of the registry); NULL when there is no registry. */
    json_t *(*cluster_data_planes)(void *arg);
    void *cluster_arg;
    /* Connection counters for GET /status (server.c keeps them; atomics). */
    const volatile long *connections_active;
    const volatile long *connections_accepted;
    const volatile long *total_requests;
} cp_admin_ctx;

/* Decodes a request body into a JSON object by Content-Type: application/json (mode JSON),
 * application/x-www-form-urlencoded and multipart/form-data (mode FORM: every leaf a string,
 * "paths[]=/a", "paths[1]=/a", repeated keys -> arrays, "config.minute=5" and
 * "config[minute]=5" -> nested objects). An empty body gives an empty object.
 * Returns 0, or an HTTP status (400, 413, 415) with a Kong message in msg. */
int cp_admin_body_decode(const char *content_type, const char *body, size_t len, json_t **out,
                         int *form_mode, char *msg, size_t msglen);

/* Decodes a query string ("size=10&offset=x&tags=a,b") into a JSON object of strings, with
 * the form key rules above (repeated keys -> arrays). NULL query: empty object. Returns a new
 * object (caller owns), or NULL when the query breaks a bound (more than CP_ADMIN_MAX_ARGS
 * arguments, nesting, array index): answer 400. */
json_t *cp_admin_query_decode(const char *query);

/* The same, with the reason for a NULL result in msg ("Too many arguments"). */
json_t *cp_admin_query_decode_msg(const char *query, char *msg, size_t msglen);

/* Handles one request on a DB thread. Always fills resp. st is this thread's connection, or
 * NULL when the database could not be reached (the thread tries again on its next request):
 * then requests that need the database answer 500/503. */
void cp_admin_dispatch(const cp_admin_ctx *ctx, cp_store *st, const cp_admin_request *req,
                       cp_admin_response *resp);

#endif
