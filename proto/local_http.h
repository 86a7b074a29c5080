#ifndef SL_LOCAL_HTTP_H
#define SL_LOCAL_HTTP_H

#include <stddef.h>

/* A blocking HTTP/1.1 GET for the `health` commands only (never called on an event loop):
 * connects to host:port (a wildcard listen address means the loopback), sends the request
 * with an optional bearer token, waits at most timeout_ms in total, and returns the status
 * code with up to bodylen-1 bytes of body in body (NUL-terminated). -1 with err on failure. */
int sl_local_http_get(const char *host, int port, const char *path, const char *bearer,
                      int timeout_ms, char *body, size_t bodylen, char *err, size_t errlen);

#endif
