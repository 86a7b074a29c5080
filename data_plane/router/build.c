/* Compiles Kong route objects into the immutable lookup structure of internal.h. Runs on the
 * control thread during a snapshot apply; everything is sized from the input in a few passes
 * (no per-route malloc), so 100,000 routes build in a fraction of a second. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data_plane/config/route_fields.h"
#include "data_plane/router/internal.h"
#include "proto/log.h"
#include "proto/sort.h"

/* ------------------------------------------------------------------ arena */

struct rt_chunk {
    rt_chunk *next;
    size_t size, used;
    _Alignas(16) char data[];
};

#define RT_CHUNK 65536

static void *rt_alloc(dp_router *r, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    rt_chunk *c = r->chunks;
    if (!c || c->size - c->used < n) {
        size_t size = n > RT_CHUNK ? n : RT_CHUNK;
        c = malloc(sizeof(rt_chunk) + size);
        if (!c)
            return NULL;
        c->size = size;
        c->used = 0;
        c->next = r->chunks;
        r->chunks = c;
        r->bytes += sizeof(rt_chunk) + size;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

static rt_str rt_strdup(dp_router *r, const char *s, size_t n, int lower)
{
    char *d = rt_alloc(r, n + 1);
    if (!d)
        return (rt_str){NULL, 0};
    for (size_t i = 0; i < n; i++)
        d[i] = (char)(lower && s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    d[n] = 0;
    return (rt_str){d, (uint32_t)n};
}

/* ------------------------------------------------------------------ build-time records */

typedef struct {
    int kind;
    int port; /* 0: any */
    rt_str name;
} bhost;

typedef struct {
    rt_matcher m;
    const rt_route *route;
    rt_str *prefixes; /* plain paths of this group (all the same length) */
    uint32_t nprefixes;
    const bhost *hosts; /* the route's hosts */
    uint32_t nhosts;
} bmatch;

typedef struct {
    uint32_t list, rank;
} bposting;

typedef struct {
    uint32_t bucket, len;
} blen;

struct dp_router_builder {
    dp_router *r;
    size_t cap; /* routes the builder was sized for */
    double t0;
    bmatch *bm;
    size_t nbm, capbm;
    bposting *post;
    size_t npost, cappost;
    blen *lens;
    size_t nlens, caplens;
    size_t caplists, capbuckets;
    char *err;
    size_t errlen;
};
typedef struct dp_router_builder builder;

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

static int oom(builder *b)
{
    snprintf(b->err, b->errlen, "router: out of memory");
    return -1;
}

static size_t arr_len(const json_t *a)
{
    return json_is_array(a) ? json_array_size(a) : 0;
}

static const char *jstr(const json_t *v)
{
    const char *s = json_string_value(v);
    return s ? s : "";
}

static pcre2_code *compile(dp_router *r, const char *pat, uint32_t opts, const char *id, char *err,
                           size_t errlen)
{
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, opts, &ec, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(ec, msg, sizeof(msg));
        snprintf(err, errlen, "routes %s: invalid regex '%s' at %zu: %s", id, pat, (size_t)off,
                 (char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* best effort: the interpreter still works */
    size_t size = 0, jit = 0;
    pcre2_pattern_info(re, PCRE2_INFO_SIZE, &size);
    if (pcre2_pattern_info(re, PCRE2_INFO_JITSIZE, &jit) != 0)
        jit = 0;
    r->bytes += size + jit;
    return re;
}

/* ------------------------------------------------------------------ one route */

/* Kong's split_host_port, plus "[v6]:port"; then "*.x" -> suffix ".x", "x.*" -> prefix "x.". */
static void parse_host(dp_router *r, const char *h, bhost *out)
{
    size_t n = strlen(h);
    out->port = 0;
    const char *colon = h[0] == '[' ? strstr(h, "]:") : strchr(h, ':');
    if (colon) {
        const char *ps = colon + (h[0] == '[' ? 2 : 1);
        char *end;
        long port = strtol(ps, &end, 10);
        if (*ps && !*end && port > 0 && port < 65536) {
            out->port = (int)port;
            n = (size_t)(colon - h) + (h[0] == '[' ? 1 : 0);
        }
    }
    if (n >= 1 && h[0] == '*') {
        out->kind = RT_HOST_SUFFIX;
        out->name = rt_strdup(r, h + 1, n - 1, 1);
    } else if (n >= 1 && h[n - 1] == '*') {
        out->kind = RT_HOST_PREFIX;
        out->name = rt_strdup(r, h, n - 1, 1);
    } else {
        out->kind = RT_HOST_EXACT;
        out->name = rt_strdup(r, h, n, 1);
    }
}

static void fold_header_name(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '_')
            s[i] = '-';
}

static int build_headers(builder *b, rt_route *rr, const json_t *hdrs)
{
    dp_router *r = b->r;
    rr->nhdrs = json_is_object(hdrs) ? (uint32_t)json_object_size(hdrs) : 0;
    if (!rr->nhdrs)
        return 0;
    rr->hdrs = rt_alloc(r, rr->nhdrs * sizeof(rt_hrule));
    if (!rr->hdrs)
        return oom(b);
    const char *k;
    json_t *vals;
    uint32_t hi = 0;
    json_object_foreach((json_t *)hdrs, k, vals)
    {
        rt_hrule *hr = &rr->hdrs[hi++];
        hr->name = rt_strdup(r, k, strlen(k), 1);
        if (!hr->name.p)
            return oom(b);
        fold_header_name((char *)hr->name.p, hr->name.len);
        hr->nvals = (uint32_t)arr_len(vals);
        hr->vals = rt_alloc(r, (hr->nvals + 1) * sizeof(rt_hval));
        if (!hr->vals)
            return oom(b);
        size_t i;
        json_t *v;
        json_array_foreach(vals, i, v)
        {
            const char *s = jstr(v);
            if (s[0] == '~' && s[1] == '*') {
                hr->vals[i].re = compile(r, s + 2, PCRE2_CASELESS, rr->id, b->err, b->errlen);
                if (!hr->vals[i].re)
                    return -1;
            } else {
                hr->vals[i].value = rt_strdup(r, s, strlen(s), 1);
                if (!hr->vals[i].value.p)
                    return oom(b);
            }
        }
    }
    return 0;
}

/* Kong's traditional_compatible priority (router/transform.lua get_priority), in two parts:
 * what the route as a whole gives (route_priority), and what each sub-route adds. */
static uint64_t route_priority(const dp_route_fields *j, const rt_route *rr)
{
    const json_t *hosts = j->hosts;
    uint64_t weight = (rr->nmethods > 0) + (arr_len(hosts) > 0) + (rr->nhdrs > 0) + (rr->nsnis > 0);
    uint64_t p = weight << 61;
    /* Kong sets the plain-hosts bit whenever hosts is a table, even an empty one */
    if (json_is_array(hosts)) {
        int plain = 1;
        size_t i;
        json_t *h;
        json_array_foreach(hosts, i, h) if (strchr(jstr(h), '*')) plain = 0;
        if (plain)
            p |= 1ull << 60;
    }
    p |= (uint64_t)(rr->nhdrs > 255 ? 255 : rr->nhdrs) << 52;
    return p;
}

static uint64_t priority(uint64_t base, int has_paths, int regex, size_t plain_len,
                         long long regex_priority)
{
    uint64_t p = base + ((uint64_t)(has_paths != 0) << 61);
    if (regex) {
        /* regex_priority is a signed 32-bit value; shifting it by 2^31 keeps the order of every
         * value (Kong only ever compares them among regex routes) inside the 32 bits it owns */
        long long v = regex_priority;
        if (v < INT32_MIN)
            v = INT32_MIN;
        if (v > INT32_MAX)
            v = INT32_MAX;
        p |= 1ull << 51;
        p |= (uint64_t)(v + 2147483648LL) << 19;
    } else {
        p |= plain_len & 0x7ffff;
    }
    return p;
}

static bmatch *new_match(builder *b, const rt_route *rr, const bhost *hosts, uint32_t nhosts)
{
    if (grow((void **)&b->bm, &b->capbm, b->nbm + 1, sizeof(bmatch)))
        return NULL;
    bmatch *m = &b->bm[b->nbm++];
    memset(m, 0, sizeof(*m));
    m->route = rr;
    m->m.route = rr;
    m->hosts = hosts;
    m->nhosts = nhosts;
    return m;
}

static int cmp_len(const void *a, const void *b)
{
    const rt_str *x = a, *y = b;
    return x->len < y->len ? -1 : x->len > y->len;
}

static int build_route(builder *b, rt_route *rr, const dp_route_fields *j)
{
    dp_router *r = b->r;
    const char *id = j->id;
    rr->id = rt_strdup(r, id ? id : "", id ? strlen(id) : 0, 0).p;
    const json_t *ca = j->created_at;
    rr->created_at = json_is_integer(ca) ? json_integer_value(ca)
                     : json_is_real(ca)  ? (long long)json_real_value(ca)
                                         : 0;

    const json_t *protos = j->protocols;
    int http = 0, https = 0;
    size_t i;
    json_t *v;
    json_array_foreach(protos, i, v)
    {
        http |= strcmp(jstr(v), "http") == 0;
        https |= strcmp(jstr(v), "https") == 0;
    }
    /* Kong leaves net.protocol out of an https-only route's expression so plain http still
     * reaches it and gets 426 or a redirect; any other set is matched as given */
    if ((https && !http && arr_len(protos) == 1) || arr_len(protos) == 0)
        rr->protocols = DP_ROUTER_PROTO_HTTP | DP_ROUTER_PROTO_HTTPS;
    else
        rr->protocols = (http ? DP_ROUTER_PROTO_HTTP : 0) | (https ? DP_ROUTER_PROTO_HTTPS : 0);

    const json_t *methods = j->methods;
    rr->nmethods = (uint32_t)arr_len(methods);
    rr->methods = rt_alloc(r, (rr->nmethods + 1) * sizeof(rt_str));
    if (!rr->methods)
        return oom(b);
    json_array_foreach(methods, i, v) rr->methods[i] = rt_strdup(r, jstr(v), strlen(jstr(v)), 0);

    const json_t *snis = j->snis;
    rr->nsnis = (uint32_t)arr_len(snis);
    rr->snis = rt_alloc(r, (rr->nsnis + 1) * sizeof(rt_str));
    if (!rr->snis)
        return oom(b);
    json_array_foreach(snis, i, v)
    {
        size_t n = strlen(jstr(v));
        if (n > 1 && jstr(v)[n - 1] == '.') /* a FQDN's last dot is not used for routing */
            n--;
        rr->snis[i] = rt_strdup(r, jstr(v), n, 1);
    }
    if (build_headers(b, rr, j->headers) != 0)
        return -1;

    const json_t *hj = j->hosts;
    uint32_t nhosts = (uint32_t)arr_len(hj);
    bhost *hosts = rt_alloc(r, (nhosts + 1) * sizeof(bhost));
    if (!hosts)
        return oom(b);
    json_array_foreach(hj, i, v)
    {
        parse_host(r, jstr(v), &hosts[i]);
        if (!hosts[i].name.p)
            return oom(b);
        r->has_suffix |= hosts[i].kind == RT_HOST_SUFFIX;
        r->has_prefix |= hosts[i].kind == RT_HOST_PREFIX;
        r->has_port |= hosts[i].port != 0;
    }

    long long rp = json_integer_value(j->regex_priority);
    uint64_t base = route_priority(j, rr);
    const json_t *paths = j->paths;
    size_t np = arr_len(paths), nre = 0, nplain = 0;
    if (np == 0) {
        bmatch *m = new_match(b, rr, hosts, nhosts);
        if (!m)
            return oom(b);
        m->m.priority = priority(base, 0, 0, 0, 0);
        return 0;
    }
    /* one walk over the paths: plain ones copied (they are most), regexes counted */
    rt_str *plain = rt_alloc(r, np * sizeof(rt_str));
    if (!plain)
        return oom(b);
    json_array_foreach(paths, i, v)
    {
        const char *s = jstr(v);
        if (s[0] == '~') {
            nre++;
            continue;
        }
        plain[nplain] = rt_strdup(r, s, strlen(s), 0);
        if (!plain[nplain++].p)
            return oom(b);
    }
    if (nre) {
        bmatch *m = new_match(b, rr, hosts, nhosts);
        if (!m)
            return oom(b);
        m->m.priority = priority(base, 1, 1, 0, rp);
        m->m.res = rt_alloc(r, nre * sizeof(pcre2_code *));
        if (!m->m.res)
            return oom(b);
        json_array_foreach(paths, i, v)
        {
            if (jstr(v)[0] != '~')
                continue;
            pcre2_code *re = compile(r, jstr(v) + 1, PCRE2_ANCHORED, rr->id, b->err, b->errlen);
            if (!re)
                return -1;
            m->m.res[m->m.nres++] = re;
        }
    }
    if (nplain) {
        /* one sub-route per prefix length, like Kong's split routes */
        sl_sort(plain, nplain, sizeof(rt_str), cmp_len);
        for (size_t k = 0; k < nplain;) {
            size_t e = k;
            while (e < nplain && plain[e].len == plain[k].len)
                e++;
            bmatch *m = new_match(b, rr, hosts, nhosts);
            if (!m)
                return oom(b);
            m->m.priority = priority(base, 1, 0, plain[k].len, 0);
            m->prefixes = plain + k;
            m->nprefixes = (uint32_t)(e - k);
            k = e;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ index */

/* Kong's order of sub-routes: priority descending, then created_at, then id, then position.
 * Sorted as small keys (the comparison rarely needs the id) and applied to the matchers
 * once, instead of moving the large build records on every merge step. */
typedef struct {
    uint64_t priority;
    long long created_at;
    const bmatch *m;
} match_key;

static inline int cmp_match_key(const match_key *x, const match_key *y)
{
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    if (x->created_at != y->created_at)
        return x->created_at < y->created_at ? -1 : 1;
    int c = strcmp(x->m->route->id, y->m->route->id);
    if (c)
        return c;
    return x->m->route->index - y->m->route->index;
}

static int sort_matches(builder *b)
{
    if (b->nbm < 2)
        return 0;
    size_t n = b->nbm;
    match_key *keys = malloc(2 * n * sizeof(*keys));
    bmatch *sorted = malloc(n * sizeof(*sorted));
    if (!keys || !sorted) {
        free(keys);
        free(sorted);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        keys[i] = (match_key){b->bm[i].m.priority, b->bm[i].route->created_at, &b->bm[i]};
    /* bottom-up merge sort (stable, n log n, the comparison inlined) between two halves */
    match_key *src = keys, *dst = keys + n;
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                dst[k++] = cmp_match_key(&src[j], &src[i]) < 0 ? src[j++] : src[i++];
            while (i < mid)
                dst[k++] = src[i++];
            while (j < hi)
                dst[k++] = src[j++];
        }
        match_key *t = src;
        src = dst;
        dst = t;
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = *src[i].m;
    free(keys);
    free(b->bm);
    b->bm = sorted;
    b->capbm = b->nbm;
    return 0;
}

static int table_grow(dp_router *r, rt_table *t)
{
    uint32_t cap = t->slots ? (t->mask + 1) * 2 : 1024;
    rt_slot *s = calloc(cap, sizeof(rt_slot));
    if (!s)
        return -1;
    for (uint32_t i = 0; t->slots && i <= t->mask; i++) {
        if (!t->slots[i].key)
            continue;
        uint32_t k = t->slots[i].hash & (cap - 1);
        while (s[k].key)
            k = (k + 1) & (cap - 1);
        s[k] = t->slots[i];
    }
    if (t->slots)
        r->bytes -= (t->mask + 1) * sizeof(rt_slot);
    free(t->slots);
    t->slots = s;
    t->mask = cap - 1;
    r->bytes += cap * sizeof(rt_slot);
    return 0;
}

/* Returns the slot for (tag, key), inserting it with value UINT32_MAX when new; NULL on OOM. */
static rt_slot *table_put(dp_router *r, rt_table *t, uint32_t tag, rt_str key)
{
    if ((!t->slots || (t->used + 1) * 2 > t->mask + 1) && table_grow(r, t) != 0)
        return NULL;
    uint32_t h = rt_hash_key(tag, key.p, key.len);
    uint32_t i = h & t->mask;
    for (;; i = (i + 1) & t->mask) {
        rt_slot *s = &t->slots[i];
        if (!s->key) {
            *s = (rt_slot){h, key.len, key.p ? key.p : "", tag, UINT32_MAX};
            t->used++;
            return s;
        }
        if (s->hash == h && s->tag == tag && s->len == key.len &&
            memcmp(s->key, key.p, key.len) == 0)
            return s;
    }
}

static uint32_t new_list(builder *b)
{
    dp_router *r = b->r;
    if (grow((void **)&r->lists, &b->caplists, r->nlists + 1, sizeof(rt_list)))
        return RT_NO_LIST;
    r->lists[r->nlists] = (rt_list){0, 0};
    return r->nlists++;
}

static uint32_t new_bucket(builder *b)
{
    dp_router *r = b->r;
    if (grow((void **)&r->buckets, &b->capbuckets, r->nbuckets + 1, sizeof(rt_bucket)))
        return RT_NO_LIST;
    r->buckets[r->nbuckets] = (rt_bucket){RT_NO_LIST, RT_NO_LIST, 0, 0};
    return r->nbuckets++;
}

static int post(builder *b, uint32_t list, uint32_t rank)
{
    if (list == RT_NO_LIST || grow((void **)&b->post, &b->cappost, b->npost + 1, sizeof(bposting)))
        return -1;
    b->post[b->npost++] = (bposting){list, rank};
    return 0;
}

/* Files matcher `rank` under bucket bk: its prefixes, its regex group, or the path-less list. */
static int file_match(builder *b, uint32_t bk, uint32_t rank)
{
    dp_router *r = b->r;
    const bmatch *m = &b->bm[rank];
    if (m->m.nres) {
        if (r->buckets[bk].regex == RT_NO_LIST)
            r->buckets[bk].regex = new_list(b);
        return post(b, r->buckets[bk].regex, rank);
    }
    if (!m->nprefixes) {
        if (r->buckets[bk].nopath == RT_NO_LIST)
            r->buckets[bk].nopath = new_list(b);
        return post(b, r->buckets[bk].nopath, rank);
    }
    for (uint32_t k = 0; k < m->nprefixes; k++) {
        rt_slot *s = table_put(r, &r->prefixes, bk, m->prefixes[k]);
        if (!s)
            return -1;
        if (s->value == UINT32_MAX) {
            s->value = new_list(b);
            if (grow((void **)&b->lens, &b->caplens, b->nlens + 1, sizeof(blen)))
                return -1;
            b->lens[b->nlens++] = (blen){bk, m->prefixes[k].len};
        }
        if (post(b, s->value, rank) != 0)
            return -1;
    }
    return 0;
}

static int cmp_blen(const void *a, const void *b)
{
    const blen *x = a, *y = b;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    return x->len < y->len ? -1 : x->len > y->len;
}

static int build_index(builder *b)
{
    dp_router *r = b->r;
    if (new_bucket(b) != 0) /* bucket 0: routes without hosts */
        return oom(b);
    for (uint32_t rank = 0; rank < b->nbm; rank++) {
        const bmatch *m = &b->bm[rank];
        if (!m->nhosts) {
            if (file_match(b, 0, rank) != 0)
                return oom(b);
            continue;
        }
        for (uint32_t h = 0; h < m->nhosts; h++) {
            const bhost *hp = &m->hosts[h];
            rt_slot *s =
                table_put(r, &r->hosts, (uint32_t)hp->kind | (uint32_t)hp->port << 2, hp->name);
            if (!s)
                return oom(b);
            if (s->value == UINT32_MAX && (s->value = new_bucket(b)) == RT_NO_LIST)
                return oom(b);
            if (file_match(b, s->value, rank) != 0)
                return oom(b);
        }
    }
    /* counting sort of the postings by list: each list stays in ascending rank order */
    r->postings = malloc((b->npost + 1) * sizeof(uint32_t));
    if (!r->postings)
        return oom(b);
    r->bytes += (b->npost + 1) * sizeof(uint32_t) + r->nlists * sizeof(rt_list) +
                r->nbuckets * sizeof(rt_bucket);
    for (size_t i = 0; i < b->npost; i++)
        r->lists[b->post[i].list].n++;
    uint32_t off = 0;
    for (uint32_t i = 0; i < r->nlists; i++) {
        r->lists[i].off = off;
        off += r->lists[i].n;
        r->lists[i].n = 0;
    }
    for (size_t i = 0; i < b->npost; i++) {
        rt_list *l = &r->lists[b->post[i].list];
        r->postings[l->off + l->n++] = b->post[i].rank;
    }
    /* each bucket's distinct prefix lengths, ascending */
    sl_sort(b->lens, b->nlens, sizeof(blen), cmp_blen);
    r->lens = malloc((b->nlens + 1) * sizeof(uint32_t));
    if (!r->lens)
        return oom(b);
    r->bytes += (b->nlens + 1) * sizeof(uint32_t);
    uint32_t n = 0;
    for (size_t i = 0; i < b->nlens; i++) {
        if (i && b->lens[i].bucket == b->lens[i - 1].bucket && b->lens[i].len == b->lens[i - 1].len)
            continue;
        rt_bucket *bk = &r->buckets[b->lens[i].bucket];
        if (!bk->nlens)
            bk->lens_off = n;
        bk->nlens++;
        r->lens[n++] = b->lens[i].len;
    }
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

dp_router_builder *dp_router_builder_new(size_t n, char *err, size_t errlen)
{
    builder *b = calloc(1, sizeof(*b));
    dp_router *r = calloc(1, sizeof(*r));
    if (!b || !r) {
        free(b);
        free(r);
        snprintf(err, errlen, "router: out of memory");
        return NULL;
    }
    *b = (builder){.r = r, .cap = n, .t0 = now_ms(), .err = err, .errlen = errlen};
    r->bytes = sizeof(*r);
    r->routes = rt_alloc(r, (n + 1) * sizeof(rt_route));
    /* most routes give one sub-route: sized once, the arrays rarely grow */
    if (!r->routes || grow((void **)&b->bm, &b->capbm, n + 1, sizeof(bmatch)) ||
        grow((void **)&b->post, &b->cappost, n + 1, sizeof(bposting))) {
        oom(b);
        dp_router_builder_abort(b);
        return NULL;
    }
    return b;
}

int dp_router_builder_add(dp_router_builder *b, size_t index, const dp_route_fields *f)
{
    if (b->r->nroutes >= b->cap) {
        snprintf(b->err, b->errlen, "router: more routes than the builder was sized for");
        return -1;
    }
    rt_route *rr = &b->r->routes[b->r->nroutes++];
    rr->index = (int)index;
    return build_route(b, rr, f);
}

void dp_router_builder_abort(dp_router_builder *b)
{
    if (!b)
        return;
    /* regexes compiled so far belong to the matchers and headers built so far */
    for (size_t i = 0; i < b->nbm; i++)
        for (uint32_t k = 0; k < b->bm[i].m.nres; k++)
            pcre2_code_free(b->bm[i].m.res[k]);
    b->r->nmatchers = 0;
    dp_router_free(b->r);
    free(b->bm);
    free(b->post);
    free(b->lens);
    free(b);
}

dp_router *dp_router_builder_finish(dp_router_builder *b)
{
    dp_router *r = b->r;
    if (sort_matches(b) != 0) {
        oom(b);
        dp_router_builder_abort(b);
        return NULL;
    }
    if (build_index(b) != 0) {
        dp_router_builder_abort(b);
        return NULL;
    }
    r->nmatchers = (uint32_t)b->nbm;
    r->matchers = rt_alloc(r, (b->nbm + 1) * sizeof(rt_matcher));
    if (!r->matchers) {
        r->nmatchers = 0;
        oom(b);
        dp_router_builder_abort(b);
        return NULL;
    }
    for (size_t i = 0; i < b->nbm; i++)
        r->matchers[i] = b->bm[i].m;
    r->build_ms = now_ms() - b->t0;
    free(b->bm);
    free(b->post);
    free(b->lens);
    free(b);
    sl_info("router built: %u routes (%u sub-routes) in %.1f ms, %zu KB", r->nroutes, r->nmatchers,
            r->build_ms, r->bytes / 1024);
    return r;
}

dp_router *dp_router_build(const json_t *routes, const unsigned char *skip, char *err,
                           size_t errlen)
{
    size_t n = arr_len(routes);
    dp_router_builder *b = dp_router_builder_new(n, err, errlen);
    if (!b)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (skip && skip[i])
            continue;
        dp_route_fields f;
        dp_route_fields_read(json_array_get(routes, i), &f);
        if (dp_router_builder_add(b, i, &f) != 0) {
            dp_router_builder_abort(b);
            return NULL;
        }
    }
    return dp_router_builder_finish(b);
}

void dp_router_free(dp_router *r)
{
    if (!r)
        return;
    for (uint32_t i = 0; i < r->nmatchers; i++)
        for (uint32_t k = 0; k < r->matchers[i].nres; k++)
            pcre2_code_free(r->matchers[i].res[k]);
    for (uint32_t i = 0; i < r->nroutes; i++)
        for (uint32_t h = 0; h < r->routes[i].nhdrs; h++)
            for (uint32_t v = 0; v < r->routes[i].hdrs[h].nvals; v++)
                pcre2_code_free(r->routes[i].hdrs[h].vals[v].re);
    free(r->hosts.slots);
    free(r->prefixes.slots);
    free(r->buckets);
    free(r->lists);
    free(r->postings);
    free(r->lens);
    while (r->chunks) {
        rt_chunk *c = r->chunks;
        r->chunks = c->next;
        free(c);
    }
    free(r);
}

void dp_router_stats(const dp_router *r, size_t *routes, size_t *matchers, size_t *bytes,
                     double *build_ms)
{
    if (routes)
        *routes = r ? r->nroutes : 0;
    if (matchers)
        *matchers = r ? r->nmatchers : 0;
    if (bytes)
        *bytes = r ? r->bytes : 0;
    if (build_ms)
        *build_ms = r ? r->build_ms : 0;
}
