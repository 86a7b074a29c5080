#ifndef DP_DNS_H
#define DP_DNS_H

/* Per-worker name resolution with a small TTL cache. uv_getaddrinfo runs in libuv's thread
 * pool, so the worker loop never blocks on DNS. Address literals resolve at once. */

#include <netinet/in.h>
#include <uv.h>

#define DP_DNS_MAX_ADDRS 8

typedef struct {
    struct sockaddr_storage addrs[DP_DNS_MAX_ADDRS];
    int naddrs;
} dp_dns_result;

typedef struct dp_dns dp_dns;
typedef struct dp_dns_query dp_dns_query;

/* status 0 with res, or a negative libuv error. */
typedef void (*dp_dns_cb)(void *arg, int status, const dp_dns_result *res);

dp_dns *dp_dns_new(uv_loop_t *loop);
/* Frees the cache; pending lookups finish into nothing. */
void dp_dns_free(dp_dns *d);

/* Resolves host (port set in every address). Calls cb synchronously when the answer is
 * cached or host is a literal (returns 1), else later (returns 0, *q set so the caller can
 * cancel with dp_dns_cancel). Negative on error (cb not called). The result cb gets is valid
 * only during the call and may be the resolver's own storage: the next dp_dns_resolve may
 * change it, so cb copies what it keeps before resolving again. */
int dp_dns_resolve(dp_dns *d, const char *host, int port, dp_dns_cb cb, void *arg,
                   dp_dns_query **q);

/* The caller no longer wants the answer (its callback won't run). */
void dp_dns_cancel(dp_dns_query *q);

#endif
