#include "data_plane/upstream/dns.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SIZE 64
#define TTL_MS 30000
#define NEG_TTL_MS 1000

typedef struct {
    char host[256];
    uint64_t expires;
    int status;
    dp_dns_result res; /* ports 0 */
    uint64_t used;
} entry;

struct dp_dns {
    uv_loop_t *loop;
    entry cache[CACHE_SIZE];
    int closing;
    int pending;
};

struct dp_dns_query {
    uv_getaddrinfo_t req;
    dp_dns *d;
    char host[256];
    int port;
    dp_dns_cb cb;
    void *arg;
};

dp_dns *dp_dns_new(uv_loop_t *loop)
{
    dp_dns *d = calloc(1, sizeof(*d));
    if (d)
        d->loop = loop;
    return d;
}

void dp_dns_free(dp_dns *d)
{
    if (!d)
        return;
    if (d->pending) { /* the last pending callback frees it */
        d->closing = 1;
        return;
    }
    free(d);
}

static void set_port(struct sockaddr_storage *a, int port)
{
    if (a->ss_family == AF_INET)
        ((struct sockaddr_in *)a)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)a)->sin6_port = htons((uint16_t)port);
}

static void answer(dp_dns_cb cb, void *arg, const entry *e, int port)
{
    if (e->status) {
        cb(arg, e->status, NULL);
        return;
    }
    dp_dns_result r = e->res;
    for (int i = 0; i < r.naddrs; i++)
        set_port(&r.addrs[i], port);
    cb(arg, 0, &r);
}

static entry *slot_for(dp_dns *d, const char *host)
{
    entry *victim = &d->cache[0];
    for (int i = 0; i < CACHE_SIZE; i++) {
        if (strcmp(d->cache[i].host, host) == 0)
            return &d->cache[i];
        if (d->cache[i].used < victim->used)
            victim = &d->cache[i];
    }
    return victim;
}

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    dp_dns_query *q = req->data;
    dp_dns *d = q->d;
    d->pending--;
    if (d->closing) {
        uv_freeaddrinfo(ai);
        if (!d->pending)
            free(d);
        free(q);
        return;
    }
    entry *e = slot_for(d, q->host);
    memset(e, 0, sizeof(*e));
    snprintf(e->host, sizeof(e->host), "%s", q->host);
    uint64_t now = uv_now(d->loop);
    e->used = now;
    e->status = status;
    for (struct addrinfo *p = ai; p && e->res.naddrs < DP_DNS_MAX_ADDRS; p = p->ai_next) {
        if (p->ai_family != AF_INET && p->ai_family != AF_INET6)
            continue;
        memcpy(&e->res.addrs[e->res.naddrs++], p->ai_addr, p->ai_addrlen);
    }
    if (!status && !e->res.naddrs)
        e->status = UV_EAI_NONAME;
    e->expires = now + (e->status ? NEG_TTL_MS : TTL_MS);
    uv_freeaddrinfo(ai);
    if (q->cb)
        answer(q->cb, q->arg, e, q->port);
    free(q);
}

int dp_dns_resolve(dp_dns *d, const char *host, int port, dp_dns_cb cb, void *arg,
                   dp_dns_query **qout)
{
    dp_dns_result lit = {0};
    struct sockaddr_in *a4 = (struct sockaddr_in *)&lit.addrs[0];
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&lit.addrs[0];
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        lit.naddrs = 1;
        cb(arg, 0, &lit);
        return 1;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        lit.naddrs = 1;
        cb(arg, 0, &lit);
        return 1;
    }
    if (strlen(host) >= 256)
        return UV_EINVAL;
    uint64_t now = uv_now(d->loop);
    for (int i = 0; i < CACHE_SIZE; i++) {
        entry *e = &d->cache[i];
        if (e->host[0] && e->expires > now && strcmp(e->host, host) == 0) {
            e->used = now;
            answer(cb, arg, e, port);
            return 1;
        }
    }
    dp_dns_query *q = calloc(1, sizeof(*q));
    if (!q)
        return UV_ENOMEM;
    q->d = d;
    snprintf(q->host, sizeof(q->host), "%s", host);
    q->port = port;
    q->cb = cb;
    q->arg = arg;
    q->req.data = q;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(d->loop, &q->req, resolved, host, NULL, &hints);
    if (rc) {
        free(q);
        return rc;
    }
    d->pending++;
    *qout = q;
    return 0;
}

void dp_dns_cancel(dp_dns_query *q)
{
    if (q)
        q->cb = NULL;
}
