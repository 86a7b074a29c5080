#include "data_plane/upstream/dns.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SIZE 64
#define TTL_MS 30000
#define NEG_TTL_MS 1000
#define LIT_SLOTS 32
#define LIT_HOST_MAX 48 /* longer than any address literal (INET6_ADDRSTRLEN is 46) */

typedef struct {
    char host[256];
    uint32_t hash; /* of host: the lookup compares it before the string */
    uint64_t expires;
    int status;
    dp_dns_result res; /* ports 0 */
    uint64_t used;
} entry;

/* What a host string is, remembered: every request to a service asks again for the same
 * target, and parsing an address (inet_pton) and copying a whole result cost more than the
 * rest of picking the target. A literal's answer is kept ready, port set, and handed out
 * without a copy; a name is marked so it goes straight to the cache. Direct-mapped by hash of
 * host and port; the strings are compared, so a slot never answers for another host. */
enum { LIT_EMPTY, LIT_ADDR, LIT_NAME };

typedef struct {
    char host[LIT_HOST_MAX];
    int port;
    int kind;
    dp_dns_result res; /* LIT_ADDR: one address, port set */
} lit_slot;

struct dp_dns {
    uv_loop_t *loop;
    entry cache[CACHE_SIZE];
    lit_slot lit[LIT_SLOTS];
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

/* FNV-1a over host; *len gets its length (at most max: longer reports max + 1). */
static uint32_t host_hash(const char *host, size_t max, size_t *len)
{
    uint32_t h = 2166136261u;
    size_t n = 0;
    for (; n <= max && host[n]; n++)
        h = (h ^ (unsigned char)host[n]) * 16777619u;
    *len = n;
    return h;
}

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
    dp_dns_result r; /* only the addresses there are: the whole array is a kilobyte */
    r.naddrs = e->res.naddrs;
    memcpy(r.addrs, e->res.addrs, (size_t)r.naddrs * sizeof(r.addrs[0]));
    for (int i = 0; i < r.naddrs; i++)
        set_port(&r.addrs[i], port);
    cb(arg, 0, &r);
}

static entry *slot_for(dp_dns *d, const char *host, uint32_t hash)
{
    entry *victim = &d->cache[0];
    for (int i = 0; i < CACHE_SIZE; i++) {
        if (d->cache[i].hash == hash && strcmp(d->cache[i].host, host) == 0)
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
    size_t hl;
    uint32_t hash = host_hash(q->host, sizeof(q->host), &hl);
    entry *e = slot_for(d, q->host, hash);
    memset(e, 0, sizeof(*e));
    snprintf(e->host, sizeof(e->host), "%s", q->host);
    e->hash = hash;
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

/* The literal memo's slot for host:port, filled (parsed) when it held something else; NULL
 * when host is too long to be a literal. */
static lit_slot *lit_lookup(dp_dns *d, const char *host, int port, uint32_t *hash, size_t *len)
{
    *hash = host_hash(host, 255, len);
    if (*len >= LIT_HOST_MAX)
        return NULL;
    lit_slot *l = &d->lit[(*hash ^ (uint32_t)port * 2654435761u) % LIT_SLOTS];
    if (l->kind != LIT_EMPTY && l->port == port && memcmp(l->host, host, *len + 1) == 0)
        return l;
    memcpy(l->host, host, *len + 1);
    l->port = port;
    l->kind = LIT_NAME;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&l->res.addrs[0];
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&l->res.addrs[0];
    memset(&l->res.addrs[0], 0, sizeof(l->res.addrs[0]));
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        l->kind = LIT_ADDR;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        l->kind = LIT_ADDR;
    }
    l->res.naddrs = l->kind == LIT_ADDR;
    return l;
}

int dp_dns_resolve(dp_dns *d, const char *host, int port, dp_dns_cb cb, void *arg,
                   dp_dns_query **qout)
{
    uint32_t hash;
    size_t hl;
    const lit_slot *l = lit_lookup(d, host, port, &hash, &hl);
    if (l && l->kind == LIT_ADDR) {
        cb(arg, 0, &l->res);
        return 1;
    }
    if (hl >= 256)
        return UV_EINVAL;
    uint64_t now = uv_now(d->loop);
    for (int i = 0; i < CACHE_SIZE; i++) {
        entry *e = &d->cache[i];
        if (e->hash == hash && e->host[0] && e->expires > now && strcmp(e->host, host) == 0) {
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
