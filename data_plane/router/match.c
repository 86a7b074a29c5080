/* The lookup: find the host buckets the request's host falls in, then in each bucket the
 * candidate lists for its path (one hash probe per stored prefix length, the regex list, the
 * path-less list). Lists hold ranks in ascending order, so each list is scanned only until a
 * candidate passes its remaining checks or its rank can no longer beat the best found. */
#include <string.h>

#include "data_plane/router/internal.h"

static _Thread_local pcre2_match_data *md;

void dp_router_thread_done(void)
{
    pcre2_match_data_free(md);
    md = NULL;
}

/* Regex scratch, one per thread, made on the thread's first regex match. */
static pcre2_match_data *match_data(void)
{
    if (!md)
        md = pcre2_match_data_create(1, NULL);
    return md;
}

static int re_match(const pcre2_code *re, dp_slice s, size_t *end)
{
    pcre2_match_data *m = match_data();
    if (!m)
        return 0;
    int rc = pcre2_match(re, (PCRE2_SPTR)(s.p ? s.p : ""), s.len, 0, 0, m, NULL);
    if (rc < 0)
        return 0;
    if (end)
        *end = pcre2_get_ovector_pointer(m)[1];
    return 1;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Header names compare case-insensitively with '-' and '_' alike (Kong reads headers through
 * nginx's table, which folds both). */
static int name_eq(dp_slice a, rt_str b)
{
    if (a.len != b.len)
        return 0;
    for (size_t i = 0; i < a.len; i++) {
        int c = lower((unsigned char)a.p[i]);
        if (c == '_')
            c = '-';
        if (c != b.p[i])
            return 0;
    }
    return 1;
}

static int ieq(dp_slice a, rt_str b)
{
    if (a.len != b.len)
        return 0;
    for (size_t i = 0; i < a.len; i++)
        if (lower((unsigned char)a.p[i]) != b.p[i])
            return 0;
    return 1;
}

static int headers_ok(const rt_route *rr, const dp_router_input *in)
{
    for (uint32_t k = 0; k < rr->nhdrs; k++) {
        const rt_hrule *hr = &rr->hdrs[k];
        int ok = 0;
        for (size_t i = 0; i < in->nheaders && !ok; i++) {
            if (!name_eq(in->headers[i].name, hr->name))
                continue;
            for (uint32_t v = 0; v < hr->nvals && !ok; v++) {
                const rt_hval *hv = &hr->vals[v];
                ok = hv->re ? re_match(hv->re, in->headers[i].value, NULL)
                            : ieq(in->headers[i].value, hv->value);
            }
        }
        if (!ok)
            return 0;
    }
    return 1;
}

/* The checks the index doesn't make: protocol, methods, snis, headers. */
static int route_ok(const rt_route *rr, const dp_router_input *in)
{
    if (!(rr->protocols & (in->https ? DP_ROUTER_PROTO_HTTPS : DP_ROUTER_PROTO_HTTP)))
        return 0;
    if (rr->nmethods) {
        uint32_t k = 0;
        while (k < rr->nmethods && !(in->method.len == rr->methods[k].len &&
                                     memcmp(in->method.p, rr->methods[k].p, in->method.len) == 0))
            k++;
        if (k == rr->nmethods)
            return 0;
    }
    if (rr->nsnis && in->https) { /* Kong: SNIs only count on https */
        uint32_t k = 0;
        while (k < rr->nsnis && !ieq(in->sni, rr->snis[k]))
            k++;
        if (k == rr->nsnis)
            return 0;
    }
    return !rr->nhdrs || headers_ok(rr, in);
}

typedef struct {
    uint32_t rank; /* best so far; UINT32_MAX: none */
    size_t prefix_len;
} best_t;

/* Scans one candidate list. kind: 0 path-less, 1 regex, 2 prefix of length plen. */
static void scan(const dp_router *r, uint32_t list, int kind, size_t plen,
                 const dp_router_input *in, best_t *best)
{
    if (list == RT_NO_LIST)
        return;
    const rt_list *l = &r->lists[list];
    for (uint32_t i = 0; i < l->n; i++) {
        uint32_t rank = r->postings[l->off + i];
        if (rank >= best->rank)
            return;
        const rt_matcher *m = &r->matchers[rank];
        size_t end = plen;
        if (kind == 1) {
            uint32_t k = 0;
            const rt_sub *sub = m->sub;
            while (k < sub->nres && !re_match(sub->res[k], in->path, &end))
                k++;
            if (k == sub->nres)
                continue;
        }
        if (!route_ok(m->route, in))
            continue;
        best->rank = rank;
        best->prefix_len = kind ? end : 0;
        return;
    }
}

static void scan_bucket(const dp_router *r, uint32_t b, const dp_router_input *in, best_t *best)
{
    const rt_bucket *bk = &r->buckets[b];
    scan(r, bk->nopath, 0, 0, in, best);
    if (bk->nlens) {
        const uint32_t *lens = r->lens + bk->lens_off;
        uint32_t h = rt_hash_tag(b), k = 0;
        size_t n = in->path.len;
        for (size_t i = 0; i <= n && k < bk->nlens; i++) {
            if (i == lens[k]) {
                const rt_slot *s = rt_table_get(&r->prefixes, rt_hash_final(h, (uint32_t)i), b,
                                                in->path.p, (uint32_t)i);
                if (s)
                    scan(r, s->value, 2, i, in, best);
                k++;
            }
            if (i < n)
                h = rt_hash_step(h, (unsigned char)in->path.p[i]);
        }
    }
    scan(r, bk->regex, 1, 0, in, best);
}

/* Looks up one host key under the port-less and the listener-port tags. */
static void host_key(const dp_router *r, int kind, const char *p, uint32_t len,
                     const dp_router_input *in, best_t *best)
{
    const rt_slot *s =
        rt_table_get(&r->hosts, rt_hash_key((uint32_t)kind, p, len), (uint32_t)kind, p, len);
    if (s)
        scan_bucket(r, s->value, in, best);
    if (r->has_port && in->port > 0 && in->port < 65536) {
        uint32_t tag = (uint32_t)kind | (uint32_t)in->port << 2;
        s = rt_table_get(&r->hosts, rt_hash_key(tag, p, len), tag, p, len);
        if (s)
            scan_bucket(r, s->value, in, best);
    }
}

int dp_router_find(const dp_router *r, const dp_router_input *in, dp_router_match *out)
{
    best_t best = {UINT32_MAX, 0};
    if (r->hosts.used && in->host.len && in->host.len <= RT_MAX_HOST) {
        char host[RT_MAX_HOST + 1] = ""; /* every byte read is written first; the
                                            initialiser keeps -O1's flow analysis quiet */
        uint32_t n = (uint32_t)in->host.len;
        for (uint32_t i = 0; i < n; i++)
            host[i] = (char)lower((unsigned char)in->host.p[i]);
        host_key(r, RT_HOST_EXACT, host, n, in, &best);
        if (r->has_suffix || r->has_prefix) {
            for (uint32_t i = 1; i + 1 < n; i++) {
                if (host[i] != '.')
                    continue;
                if (r->has_suffix) /* "*.x" stored as ".x": the host's tail from this dot */
                    host_key(r, RT_HOST_SUFFIX, host + i, n - i, in, &best);
                if (r->has_prefix) /* "x.*" stored as "x.": the host's head up to this dot */
                    host_key(r, RT_HOST_PREFIX, host, i + 1, in, &best);
            }
        }
    }
    scan_bucket(r, 0, in, &best);
    if (best.rank == UINT32_MAX)
        return -1;
    out->route = r->matchers[best.rank].index;
    out->prefix_len = best.prefix_len;
    return 0;
}
