#ifndef CP_ADMIN_SERVER_H
#define CP_ADMIN_SERVER_H

#include <uv.h>

#include "control_plane/admin/admin.h"
#include "proto/settings.h"

/* Admin API listeners (admin_listen) on the loop, plus a pool of DB threads, each with its own
 * store connection, that run cp_admin_dispatch. A request stuck in PostgreSQL pins one DB
 * thread, never the loop: other requests go to the other threads. */
typedef struct cp_admin_server cp_admin_server;

/* Binds every admin_listen entry (TLS ones with admin_ssl_cert/admin_ssl_cert_key) and starts
 * the DB threads. NULL with err (naming the address) on failure. ctx must outlive the server.
 * The server keeps a copy of *ctx whose connections_active/connections_accepted/total_requests
 * point at its own counters (the caller's values of those three are ignored); the dispatcher
 * receives that copy. */
cp_admin_server *cp_admin_server_start(uv_loop_t *loop, const sl_settings *s,
                                       const cp_admin_ctx *ctx, char *err, size_t errlen);

/* Closes listeners and connections, joins DB threads (waiting for requests they run).
 * Callable from a loop callback; handles close asynchronously, so the loop must run once more
 * (uv_run) for the server's memory to be freed. */
void cp_admin_server_stop(cp_admin_server *srv);

/* Reads the connection counters (open now, accepted since start, requests received). */
void cp_admin_server_counters(const cp_admin_server *srv, long *active, long *accepted,
                              long *requests);

#endif
