#ifndef SL_HTTP_STATUS_H
#define SL_HTTP_STATUS_H

/* The reason phrase for an HTTP status code ("Bad Gateway"), "Unknown" for others. Shared by
 * the Admin API and the proxy so both answer with the same words. Static strings. */
const char *sl_http_reason(int status);

#endif
