#ifndef CP_ADMIN_HTTP_OUT_H
#define CP_ADMIN_HTTP_OUT_H

/* Serializes Admin API responses to HTTP/1.1 bytes. Pure functions (no I/O): the DB threads
 * build the bytes of dispatched responses, the loop those it answers itself (401, 413, 503). */

#include <stddef.h>

#include "control_plane/admin/admin.h"

/* The whole response for resp: status line, Content-Type, Content-Length, Server,
 * X-Sluice-Admin-Latency, Connection, Access-Control-Allow-Origin, resp->extra_headers, then
 * the compact JSON body (omitted for head; 204 and 304 have neither body nor length).
 * Returns a malloc'd buffer (caller frees) and its length in *len; NULL when out of memory. */
char *cp_http_response(const cp_admin_response *resp, int head, int keepalive,
                       unsigned long latency_ms, size_t *len);

/* A response with body {"message": message} and optional extra header lines ("Name: v\r\n"). */
char *cp_http_message(int status, const char *message, const char *extra, int head, int keepalive,
                      size_t *len);

#endif
