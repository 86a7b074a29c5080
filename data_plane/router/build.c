/* Compiles Kong route objects into the immutable lookup structure of internal.h. Runs on the
 * control thread during a snapshot apply; everything is sized from the input in a few passes
 * (no per-route malloc), so 100,000 routes build in a fraction of a second.
 *
 * A router for the next generation (dp_router_builder_new_next) takes the previous router's
 * route records over for the routes that did not change (their arena chunks are refcounted
 * and shared), compiles only the others, merges their sub-routes into the previous order
 * instead of sorting everything again, and patches a copy of the previous index; so a small
 * config change costs its own size plus a few array copies.
 *
 * A whole build of many routes runs in parts (dp_router_builder_split), one per run of
 * positions, each with its own arena chunks and sub-route list, on as many threads as the
 * caller likes; finish joins them and sorts every sub-route at once with integer keys
 * (radix.c), so the result does not depend on how the parts were scheduled. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data_plane/config/route_fields.h"
#include "data_plane/router/internal.h"
#include "proto/log.h"
#include "proto/sort.h"

/* ------------------------------------------------------------------ arena */

/* The regexes compiled for a chunk's records: freed with the chunk, which is what lets
 * routers share records without knowing which of them still uses which regex. */
typedef struct rt_regex_node {
    pcre2_code *re;
    struct rt_regex_node *next;
} rt_regex_node;

/* Routers of successive generations share chunks; each holds one reference per chunk, and
 * the last one to be freed (on any thread) frees the chunk. */
struct rt_chunk {
    _Atomic uint32_t refs;
    size_t size, used;
    rt_regex_node *regexes;
    _Alignas(16) char data[];
};

#define RT_CHUNK 65536
#define RT_CHUNK_MIN 4096 /* a small change makes a small chunk: the next one doubles */

static void chunk_unref(rt_chunk *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (rt_regex_node *n = c->regexes; n; n = n->next)
        pcre2_code_free(n->re);
    free(c);
}

static int hold_chunk(dp_router *r, rt_chunk *c)
{
    if (r->nchunks == r->capchunks) {
        uint32_t cap = r->capchunks ? r->capchunks * 2 : 16;
        rt_chunk **a = realloc(r->chunks, cap * sizeof(*a));
        if (!a)
            return -1;
        r->chunks = a;
        r->capchunks = cap;
    }
    r->chunks[r->nchunks++] = c;
    r->arena += sizeof(rt_chunk) + c->size;
    r->bytes += sizeof(rt_chunk) + c->size;
    return 0;
}

/* n bytes of the arena aligned to align (a power of two, at most 16), not zeroed. Strings
 * are packed byte-aligned: the arena is most of a router's memory, and every page of it is a
 * page fault on a fresh heap. */
static void *arena_take(dp_router *r, size_t n, size_t align)
{
    rt_chunk *c = r->cur;
    size_t at = c ? (c->used + align - 1) & ~(align - 1) : 0;
    if (!c || at > c->size || c->size - at < n) {
        size_t want = c ? (c->size * 2 < RT_CHUNK ? c->size * 2 : RT_CHUNK) : RT_CHUNK_MIN;
        size_t size = n > want ? n : want;
        c = malloc(sizeof(rt_chunk) + size);
        if (!c)
            return NULL;
        atomic_init(&c->refs, 1);
        c->size = size;
        c->used = 0;
        c->regexes = NULL;
        if (hold_chunk(r, c) != 0) {
            free(c);
            return NULL;
        }
        r->cur = c;
        at = 0;
    }
    void *p = c->data + at;
    r->live += at + n - c->used;
    c->used = at + n;
    return p;
}

/* Zeroed records (every record type holds pointers at most: 8-byte alignment). */
static void *rt_alloc(dp_router *r, size_t n)
{
    void *p = arena_take(r, n, 8);
    if (p)
        memset(p, 0, n);
    return p;
}

static rt_str rt_strdup(dp_router *r, const char *s, size_t n, int lower)
{
    char *d = arena_take(r, n + 1, 1);
    if (!d)
        return (rt_str){NULL, 0};
    if (lower) {
        for (size_t i = 0; i < n; i++)
            d[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    } else if (n) {
        memcpy(d, s, n);
    }
    d[n] = 0;
    return (rt_str){d, (uint32_t)n};
}

/* ------------------------------------------------------------------ build-time records */

typedef struct {
    uint32_t list, rank;
} bposting;

/* (bucket, prefix length) of a prefix key, as bucket << 32 | length: sorted as integers */
typedef uint64_t blen;

/* Bytes of a part's error message (a part reports its first error at finish). */
#define RT_PART_ERR 512

struct dp_router_builder {
    dp_router *r;              /* a part's own router holds only its arena, flags and counters */
    const rt_route **by_index; /* the router's by_index; a part writes its own positions */
    const dp_router *prev;     /* NULL: everything is built here */
    uint32_t *prev_to_new;     /* per position in prev: the new position, UINT32_MAX: not kept */
    size_t cap;                /* routes the builder was sized for */
    double t0;
    rt_matcher *nm; /* the sub-routes of the routes built here (not kept), unordered */
    size_t nnm, capnm;
    int nm_borrowed; /* a part: nm is its slice of the whole builder's, not its own */
    bposting *post;  /* postings to file (incremental: those of the new sub-routes only) */
    size_t npost, cappost;
    blen *lens; /* (bucket, length) of each prefix key added */
    size_t nlens, caplens;
    size_t caplists, capbuckets;
    size_t nkept, last_kept, last_kept_to; /* routes taken over from prev, the last one */
    /* The routes built here (add), in the order added: whether their (id, position) ascend
     * together, which lets the sort take the order of addition for the id order */
    size_t nadd, first_index, last_index;
    const char *first_id, *last_id; /* arena */
    int unsorted;
    size_t nhost_keys, nprefix_keys;  /* upper bounds of the index's keys, to size its tables */
    struct dp_router_builder **parts; /* dp_router_builder_split */
    size_t nparts;
    int failed;         /* a part: an add failed, err holds why */
    uint32_t hash_sink; /* keeps build_index's prefetches (see prefetch_slot) */
    char *err;
    size_t errlen;
    char part_err[]; /* a part's err (RT_PART_ERR bytes) */
};
typedef struct dp_router_builder builder;

/* Zeroed memory for arrays that are read before they are written (tables, counters): calloc
 * leaves fresh pages unmapped, so the first read of each maps the zero page and the first
 * write faults again; writing them here costs one fault a page (3 us each on this kind of
 * host, 1,500 of them for the prefix table of 100,000 routes). NULL on OOM. */
static void *(*const volatile zero_fill)(void *, int, size_t) = memset; /* not folded into
                                                                           calloc by the compiler */

static void *zalloc(size_t n, size_t elem)
{
    void *p = malloc(n * elem);
    if (p)
        zero_fill(p, 0, n * elem);
    return p;
}

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

/* Compiles pat; the regex belongs to the arena chunk the router allocates in now. */
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
    rt_regex_node *node = rt_alloc(r, sizeof(*node));
    if (!node) {
        pcre2_code_free(re);
        snprintf(err, errlen, "router: out of memory");
        return NULL;
    }
    node->re = re;
    node->next = r->cur->regexes;
    r->cur->regexes = node;
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* best effort: the interpreter still works */
    size_t size = 0, jit = 0;
    pcre2_pattern_info(re, PCRE2_INFO_SIZE, &size);
    if (pcre2_pattern_info(re, PCRE2_INFO_JITSIZE, &jit) != 0)
        jit = 0;
    r->bytes += size + jit;
    r->arena += size + jit;
    r->live += size + jit;
    return re;
}

/* ------------------------------------------------------------------ one route */

/* Kong's split_host_port, plus "[v6]:port"; then "*.x" -> suffix ".x", "x.*" -> prefix "x.". */
static void parse_host(dp_router *r, const char *h, rt_host *out)
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

/* A new sub-route of rr (its records are filled by the caller). */
static rt_sub *new_sub(builder *b, rt_route *rr, int index)
{
    if (b->nm_borrowed && b->nnm == b->capnm) {
        /* the part's slice is full: on in an array of its own */
        rt_matcher *own = malloc((2 * b->capnm + 64) * sizeof(rt_matcher));
        if (!own)
            return NULL;
        if (b->nnm)
            memcpy(own, b->nm, b->nnm * sizeof(rt_matcher));
        b->nm = own;
        b->capnm = 2 * b->capnm + 64;
        b->nm_borrowed = 0;
    }
    if (grow((void **)&b->nm, &b->capnm, b->nnm + 1, sizeof(rt_matcher)))
        return NULL;
    rt_sub *sub = &rr->subs[rr->nsubs++];
    b->nm[b->nnm++] = (rt_matcher){rr, sub, 0, index};
    return sub;
}

/* Sets the priority of the sub-route new_sub just made, in it and in its matcher. */
static void set_priority(builder *b, rt_sub *sub, uint64_t p)
{
    sub->priority = p;
    b->nm[b->nnm - 1].priority = p;
}

static int cmp_len(const void *a, const void *b)
{
    const rt_str *x = a, *y = b;
    return x->len < y->len ? -1 : x->len > y->len;
}

static int build_route(builder *b, rt_route *rr, const dp_route_fields *j, int index)
{
    dp_router *r = b->r;
    const char *id = j->id;
    rr->id = rt_strdup(r, id ? id : "", id ? strlen(id) : 0, 0).p;
    if (!rr->id)
        return oom(b);
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

    /* the arrays a route leaves empty (most of them) stay NULL: no arena bytes */
    const json_t *methods = j->methods;
    rr->nmethods = (uint32_t)arr_len(methods);
    if (rr->nmethods && !(rr->methods = rt_alloc(r, rr->nmethods * sizeof(rt_str))))
        return oom(b);
    json_array_foreach(methods, i, v) rr->methods[i] = rt_strdup(r, jstr(v), strlen(jstr(v)), 0);

    const json_t *snis = j->snis;
    rr->nsnis = (uint32_t)arr_len(snis);
    if (rr->nsnis && !(rr->snis = rt_alloc(r, rr->nsnis * sizeof(rt_str))))
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
    rr->nhosts = (uint32_t)arr_len(hj);
    if (rr->nhosts && !(rr->hosts = rt_alloc(r, rr->nhosts * sizeof(rt_host))))
        return oom(b);
    b->nhost_keys += rr->nhosts;
    json_array_foreach(hj, i, v)
    {
        parse_host(r, jstr(v), &rr->hosts[i]);
        if (!rr->hosts[i].name.p)
            return oom(b);
        r->has_suffix |= rr->hosts[i].kind == RT_HOST_SUFFIX;
        r->has_prefix |= rr->hosts[i].kind == RT_HOST_PREFIX;
        r->has_port |= rr->hosts[i].port != 0;
    }

    long long rp = json_integer_value(j->regex_priority);
    uint64_t base = route_priority(j, rr);
    const json_t *paths = j->paths;
    size_t np = arr_len(paths), nre = 0, nplain = 0;
    if (np == 0) {
        if (!(rr->subs = rt_alloc(r, sizeof(rt_sub))))
            return oom(b);
        rt_sub *sub = new_sub(b, rr, index);
        if (!sub)
            return oom(b);
        set_priority(b, sub, priority(base, 0, 0, 0, 0));
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
    /* one sub-route per distinct plain length, like Kong's split routes, plus the regexes' */
    sl_sort(plain, nplain, sizeof(rt_str), cmp_len);
    size_t nsubs = nre > 0;
    for (size_t k = 0; k < nplain; k++)
        nsubs += k == 0 || plain[k].len != plain[k - 1].len;
    if (!(rr->subs = rt_alloc(r, nsubs * sizeof(rt_sub))))
        return oom(b);
    b->nprefix_keys += nplain * (rr->nhosts ? rr->nhosts : 1);
    if (nre) {
        rt_sub *sub = new_sub(b, rr, index);
        if (!sub)
            return oom(b);
        set_priority(b, sub, priority(base, 1, 1, 0, rp));
        sub->res = rt_alloc(r, nre * sizeof(pcre2_code *));
        if (!sub->res)
            return oom(b);
        json_array_foreach(paths, i, v)
        {
            if (jstr(v)[0] != '~')
                continue;
            pcre2_code *re = compile(r, jstr(v) + 1, PCRE2_ANCHORED, rr->id, b->err, b->errlen);
            if (!re)
                return -1;
            sub->res[sub->nres++] = re;
        }
    }
    if (nplain) {
        for (size_t k = 0; k < nplain;) {
            size_t e = k;
            while (e < nplain && plain[e].len == plain[k].len)
                e++;
            rt_sub *sub = new_sub(b, rr, index);
            if (!sub)
                return oom(b);
            set_priority(b, sub, priority(base, 1, 0, plain[k].len, 0));
            sub->prefixes = plain + k;
            sub->nprefixes = (uint32_t)(e - k);
            k = e;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ order */

/* Kong's order of sub-routes: priority descending, then created_at, then id, then position. */
static int cmp_matcher(const rt_matcher *x, const rt_matcher *y)
{
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    if (x->route->created_at != y->route->created_at)
        return x->route->created_at < y->route->created_at ? -1 : 1;
    int c = strcmp(x->route->id, y->route->id);
    if (c)
        return c;
    return x->index - y->index;
}

/* The routes of b->nm by (id, position), for the sort's tie key when they were not added in
 * that order. */
typedef struct {
    const char *id;
    int index;
    uint32_t ordinal; /* the route's number in order of addition */
} id_rank;

static int cmp_id_rank(const void *a, const void *b)
{
    const id_rank *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* The order of the sub-routes built here (b->nm) in Kong's order: order[k] is the number in
 * b->nm of the k-th. Each sub-route's key is integers only: when the routes were added with
 * ascending positions and ids (snapshot rows come in id order), the order of addition is the
 * (id, position) order and a stable sort on (priority, created_at) gives the whole order;
 * otherwise each route's rank by (id, position) is computed once and sorted along. Caller
 * frees the result; NULL on OOM. */
static uint32_t *order_new(builder *b)
{
    size_t n = b->nnm;
    rt_sort_rec *recs = malloc((2 * n + 1) * sizeof(*recs));
    uint32_t *order = malloc((n + 1) * sizeof(*order));
    if (!recs || !order) {
        free(recs);
        free(order);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const rt_matcher *m = &b->nm[i];
        recs[i] = (rt_sort_rec){~m->priority, (uint64_t)m->route->created_at ^ (1ull << 63), 0,
                                (uint32_t)i};
    }
    int with_tie = b->unsorted;
    if (with_tie) {
        /* the sub-routes of one route are next to each other in b->nm */
        id_rank *ids = malloc((n + 1) * sizeof(*ids));
        uint32_t *rank = malloc((n + 1) * sizeof(*rank));
        if (!ids || !rank) {
            free(ids);
            free(rank);
            free(recs);
            free(order);
            return NULL;
        }
        size_t nr = 0;
        for (size_t i = 0; i < n; i++) {
            if (i == 0 || b->nm[i].route != b->nm[i - 1].route) {
                ids[nr] = (id_rank){b->nm[i].route->id, b->nm[i].index, (uint32_t)nr};
                nr++;
            }
            recs[i].tie = (uint32_t)(nr - 1); /* the ordinal for now */
        }
        sl_sort(ids, nr, sizeof(*ids), cmp_id_rank);
        for (size_t k = 0; k < nr; k++)
            rank[ids[k].ordinal] = (uint32_t)k;
        for (size_t i = 0; i < n; i++)
            recs[i].tie = rank[recs[i].tie];
        free(ids);
        free(rank);
    }
    const rt_sort_rec *sorted = rt_radix_sort(recs, recs + n, n, with_tie);
    for (size_t k = 0; k < n; k++)
        order[k] = sorted[k].m;
    free(recs);
    return order;
}

/* Sorts the sub-routes built here (b->nm) into Kong's order (the incremental build merges
 * them into the previous order). */
static int sort_new(builder *b)
{
    if (b->nnm < 2)
        return 0;
    size_t n = b->nnm;
    uint32_t *order = order_new(b);
    rt_matcher *sorted = malloc(n * sizeof(*sorted));
    if (!order || !sorted) {
        free(order);
        free(sorted);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = b->nm[order[i]];
    free(order);
    free(b->nm);
    b->nm = sorted;
    b->capnm = n;
    return 0;
}

/* r->matchers: the previous router's sub-routes of the kept routes (in their order, with
 * their new positions) merged with the sorted new ones. Each new one finds its place by
 * binary search, so the cost is a copy of the kept ones plus log n comparisons per new one.
 * rank_map (prev->nmatchers) gets each previous rank's new rank (UINT32_MAX: gone), new_rank
 * (b->nnm) each new sub-route's rank. */
static int merge_matchers(builder *b, uint32_t *rank_map, uint32_t *new_rank)
{
    dp_router *r = b->r;
    const dp_router *prev = b->prev;
    size_t nprev = prev ? prev->nmatchers : 0;
    r->matchers = malloc((nprev + b->nnm + 1) * sizeof(rt_matcher));
    uint32_t *old_rank = malloc((nprev + 1) * sizeof(uint32_t));
    if (!r->matchers || !old_rank) {
        free(old_rank);
        return -1;
    }
    /* the kept ones go to the tail first; the merge writes from the front and never
     * overtakes its reading position */
    rt_matcher *surv = r->matchers + b->nnm;
    size_t ns = 0;
    for (size_t i = 0; i < nprev; i++) {
        const rt_matcher *m = &prev->matchers[i];
        uint32_t to = b->prev_to_new[m->index];
        rank_map[i] = UINT32_MAX;
        if (to == UINT32_MAX)
            continue;
        surv[ns] = *m;
        surv[ns].index = (int)to;
        old_rank[ns++] = (uint32_t)i;
    }
    size_t i = 0, k = 0;
    for (size_t j = 0; j < b->nnm; j++) {
        const rt_matcher *nm = &b->nm[j];
        size_t lo = i, hi = ns; /* first kept one that goes after nm */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (cmp_matcher(&surv[mid], nm) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (; i < lo; i++, k++) {
            r->matchers[k] = surv[i];
            rank_map[old_rank[i]] = (uint32_t)k;
        }
        r->matchers[k] = *nm;
        new_rank[j] = (uint32_t)k++;
    }
    for (; i < ns; i++, k++) {
        r->matchers[k] = surv[i];
        rank_map[old_rank[i]] = (uint32_t)k;
    }
    r->nmatchers = (uint32_t)k;
    r->bytes += (k + 1) * sizeof(rt_matcher);
    free(old_rank);
    return 0;
}

/* ------------------------------------------------------------------ index */

static int table_grow(dp_router *r, rt_table *t)
{
    uint32_t cap = t->slots ? (t->mask + 1) * 2 : 1024;
    rt_slot *s = zalloc(cap, sizeof(rt_slot));
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

/* Files sub-route m, at rank, under bucket bk: its prefixes, its regex group, or the
 * path-less list. */
static int file_match(builder *b, uint32_t bk, const rt_sub *m, uint32_t rank)
{
    dp_router *r = b->r;
    if (m->nres) {
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
            b->lens[b->nlens++] = (blen)bk << 32 | m->prefixes[k].len;
        }
        if (post(b, s->value, rank) != 0)
            return -1;
    }
    return 0;
}

/* Files matcher m, at rank, under each of its route's hosts, or under bucket 0 without
 * hosts. */
static int file_rank(builder *b, const rt_matcher *m, uint32_t rank)
{
    dp_router *r = b->r;
    const rt_route *rr = m->route;
    if (!rr->nhosts)
        return file_match(b, 0, m->sub, rank);
    for (uint32_t h = 0; h < rr->nhosts; h++) {
        const rt_host *hp = &rr->hosts[h];
        rt_slot *s =
            table_put(r, &r->hosts, (uint32_t)hp->kind | (uint32_t)hp->port << 2, hp->name);
        if (!s)
            return -1;
        if (s->value == UINT32_MAX && (s->value = new_bucket(b)) == RT_NO_LIST)
            return -1;
        if (file_match(b, s->value, m->sub, rank) != 0)
            return -1;
    }
    return 0;
}

static int cmp_bposting(const void *a, const void *b)
{
    const bposting *x = a, *y = b;
    if (x->list != y->list)
        return x->list < y->list ? -1 : 1;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

/* Sizes an empty t for n keys (it still grows past that). */
static int table_reserve(dp_router *r, rt_table *t, size_t n)
{
    if (!n || t->slots)
        return 0;
    size_t cap = 1024;
    while ((n + 1) * 2 > cap && cap * 2 <= UINT32_MAX)
        cap *= 2;
    t->slots = zalloc(cap, sizeof(rt_slot));
    if (!t->slots)
        return -1;
    t->mask = (uint32_t)(cap - 1);
    r->bytes += cap * sizeof(rt_slot);
    return 0;
}

/* b->lens sorted, then each bucket's distinct lengths into r->lens. The lengths of prev's
 * buckets (NULL: none) are merged in. */
static int file_lens(builder *b, const dp_router *prev)
{
    dp_router *r = b->r;
    blen *tmp = malloc((b->nlens + 1) * sizeof(blen));
    r->lens = malloc(((prev ? prev->nlens : 0) + b->nlens + 1) * sizeof(uint32_t));
    if (!tmp || !r->lens) {
        free(tmp);
        return oom(b);
    }
    const blen *lens = b->nlens ? rt_radix_sort_u64(b->lens, tmp, b->nlens) : b->lens;
    uint32_t n = 0;
    size_t q = 0;
    for (uint32_t bk = 0; bk < r->nbuckets; bk++) {
        const uint32_t *old = NULL;
        uint32_t no = 0, start = n;
        if (prev && bk < prev->nbuckets) {
            old = prev->lens + prev->buckets[bk].lens_off;
            no = prev->buckets[bk].nlens;
        }
        uint32_t i = 0;
        while (i < no || (q < b->nlens && lens[q] >> 32 == bk)) {
            uint32_t len;
            if (q < b->nlens && lens[q] >> 32 == bk && (i == no || (uint32_t)lens[q] <= old[i]))
                len = (uint32_t)lens[q++];
            else
                len = old[i++];
            if (n == start || r->lens[n - 1] != len)
                r->lens[n++] = len;
        }
        r->buckets[bk].lens_off = start;
        r->buckets[bk].nlens = n - start;
    }
    free(tmp);
    r->nlens = n;
    r->bytes += (n + 1) * sizeof(uint32_t);
    return 0;
}

/* How many sub-routes ahead the filing loop asks for the table slot of a sub-route's first
 * key: the tables are megabytes and each insert lands at random, so without the hint every
 * insert waits for memory in turn. */
#define FILE_AHEAD 16

/* Prefetches the slot m's first key hashes to, and returns that hash: the caller must use it,
 * or the compiler drops the whole computation (a prefetch is not a side effect to it). */
static uint32_t prefetch_slot(const dp_router *r, const rt_matcher *m)
{
    const rt_route *rr = m->route;
    const rt_table *t;
    uint32_t h;
    if (rr->nhosts) {
        const rt_host *hp = &rr->hosts[0];
        t = &r->hosts;
        h = rt_hash_key((uint32_t)hp->kind | (uint32_t)hp->port << 2, hp->name.p, hp->name.len);
    } else if (m->sub->nprefixes) {
        t = &r->prefixes;
        h = rt_hash_key(0, m->sub->prefixes[0].p, m->sub->prefixes[0].len);
    } else {
        return 0;
    }
    if (t->slots)
        __builtin_prefetch(&t->slots[h & t->mask], 1);
    return h;
}

/* The index of a full build. The sub-routes are filed in the order they were built (rank[j]
 * is the rank of b->nm[j]): their records lie in the arena in that order, where filing them
 * by rank would jump around it for every key. */
static int build_index(builder *b, const uint32_t *rank)
{
    dp_router *r = b->r;
    if (new_bucket(b) == RT_NO_LIST) /* bucket 0: routes without hosts */
        return oom(b);
    size_t cap = (size_t)r->nmatchers + 1;
    if (table_reserve(r, &r->hosts, b->nhost_keys < cap ? b->nhost_keys : cap) ||
        table_reserve(r, &r->prefixes, b->nprefix_keys < cap ? b->nprefix_keys : cap))
        return oom(b);
    for (size_t j = 0; j < b->nnm; j++) {
        if (j + FILE_AHEAD < b->nnm)
            b->hash_sink ^= prefetch_slot(r, &b->nm[j + FILE_AHEAD]);
        if (file_rank(b, &b->nm[j], rank[j]) != 0)
            return oom(b);
    }
    /* postings by list, each list in ascending rank: a counting sort by rank, then a stable
     * one by list */
    bposting *by_rank = malloc((b->npost + 1) * sizeof(bposting));
    uint32_t *at = zalloc(r->nmatchers + 1, sizeof(uint32_t));
    r->postings = malloc((b->npost + 1) * sizeof(uint32_t));
    if (!by_rank || !at || !r->postings) {
        free(by_rank);
        free(at);
        return oom(b);
    }
    for (size_t i = 0; i < b->npost; i++)
        at[b->post[i].rank + 1]++;
    for (uint32_t k = 0; k < r->nmatchers; k++)
        at[k + 1] += at[k];
    for (size_t i = 0; i < b->npost; i++)
        by_rank[at[b->post[i].rank]++] = b->post[i];
    free(at);
    r->npostings = (uint32_t)b->npost;
    r->bytes += (b->npost + 1) * sizeof(uint32_t) + r->nlists * sizeof(rt_list) +
                r->nbuckets * sizeof(rt_bucket);
    for (size_t i = 0; i < b->npost; i++)
        r->lists[by_rank[i].list].n++;
    uint32_t off = 0;
    for (uint32_t i = 0; i < r->nlists; i++) {
        r->lists[i].off = off;
        off += r->lists[i].n;
        r->lists[i].n = 0;
    }
    for (size_t i = 0; i < b->npost; i++) {
        rt_list *l = &r->lists[by_rank[i].list];
        r->postings[l->off + l->n++] = by_rank[i].rank;
    }
    free(by_rank);
    /* each bucket's distinct prefix lengths, ascending */
    return file_lens(b, NULL);
}

static int copy_table(dp_router *r, rt_table *t, const rt_table *from)
{
    *t = *from;
    if (!from->slots)
        return 0;
    size_t sz = (from->mask + 1) * sizeof(rt_slot);
    t->slots = malloc(sz);
    if (!t->slots)
        return -1;
    memcpy(t->slots, from->slots, sz);
    r->bytes += sz;
    return 0;
}

/* The index of prev, patched: its tables and lists copied (their keys point into the shared
 * arena), the new sub-routes filed into them, and every list rewritten with the new ranks
 * (a kept sub-route keeps its relative order, so each list stays ascending) merged with the
 * new postings. Keys of routes gone stay, with empty lists: the next full build drops them. */
static int patch_index(builder *b, const uint32_t *rank_map, const uint32_t *new_rank)
{
    dp_router *r = b->r;
    const dp_router *prev = b->prev;
    if (copy_table(r, &r->hosts, &prev->hosts) || copy_table(r, &r->prefixes, &prev->prefixes) ||
        grow((void **)&r->buckets, &b->capbuckets, prev->nbuckets + 1, sizeof(rt_bucket)) ||
        grow((void **)&r->lists, &b->caplists, prev->nlists + 1, sizeof(rt_list)))
        return oom(b);
    if (prev->nbuckets) /* memcpy from NULL is undefined even for 0 bytes */
        memcpy(r->buckets, prev->buckets, prev->nbuckets * sizeof(rt_bucket));
    r->nbuckets = prev->nbuckets;
    if (prev->nlists)
        memcpy(r->lists, prev->lists, prev->nlists * sizeof(rt_list));
    r->nlists = prev->nlists;
    for (size_t j = 0; j < b->nnm; j++)
        if (file_rank(b, &r->matchers[new_rank[j]], new_rank[j]) != 0)
            return oom(b);
    sl_sort(b->post, b->npost, sizeof(bposting), cmp_bposting);

    r->postings = malloc((prev->npostings + b->npost + 1) * sizeof(uint32_t));
    if (!r->postings)
        return oom(b);
    uint32_t pos = 0;
    size_t q = 0;
    r->empty_lists = 0;
    for (uint32_t l = 0; l < r->nlists; l++) {
        uint32_t off = pos;
        if (l < prev->nlists) {
            const rt_list *ol = &prev->lists[l];
            for (uint32_t i = 0; i < ol->n; i++) {
                uint32_t nr = rank_map[prev->postings[ol->off + i]];
                if (nr == UINT32_MAX)
                    continue;
                while (q < b->npost && b->post[q].list == l && b->post[q].rank < nr)
                    r->postings[pos++] = b->post[q++].rank;
                r->postings[pos++] = nr;
            }
        }
        while (q < b->npost && b->post[q].list == l)
            r->postings[pos++] = b->post[q++].rank;
        r->lists[l] = (rt_list){off, pos - off};
        r->empty_lists += pos == off;
    }
    r->npostings = pos;
    r->bytes += (pos + 1) * sizeof(uint32_t) + r->nlists * sizeof(rt_list) +
                r->nbuckets * sizeof(rt_bucket);

    /* prefix lengths: prev's per bucket, merged with those of the keys added */
    return file_lens(b, prev);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Whether prev's arena and index are worth building on: routes replaced leave their records
 * in the shared chunks and their keys in the tables, so past a share of garbage the next
 * router is built afresh (which also keeps the memory of a long run of changes bounded). */
#define RT_GARBAGE_BYTES (1u << 20)
#define RT_GARBAGE_LISTS 4096u

static int reusable(const dp_router *prev)
{
    return prev && prev->arena <= 2 * prev->live + RT_GARBAGE_BYTES &&
           prev->empty_lists <= prev->nlists / 4 + RT_GARBAGE_LISTS;
}

/* A full build: the sub-routes sorted straight into r->matchers, then the index. */
static int finish_full(builder *b)
{
    dp_router *r = b->r;
    size_t n = b->nnm;
    uint32_t *order = order_new(b);
    uint32_t *rank = malloc((n + 1) * sizeof(uint32_t));
    r->matchers = malloc((n + 1) * sizeof(rt_matcher));
    if (!order || !rank || !r->matchers) {
        free(order);
        free(rank);
        return oom(b);
    }
    for (size_t k = 0; k < n; k++) {
        r->matchers[k] = b->nm[order[k]];
        rank[order[k]] = (uint32_t)k;
    }
    r->nmatchers = (uint32_t)n;
    r->bytes += (n + 1) * sizeof(rt_matcher);
    free(order);
    int rc = build_index(b, rank);
    free(rank);
    return rc;
}

/* A build on prev: the new sub-routes sorted and merged into prev's order, prev's index
 * patched. */
static int finish_next(builder *b)
{
    size_t nprev = b->prev->nmatchers;
    uint32_t *rank_map = malloc((nprev + 1) * sizeof(uint32_t));
    uint32_t *new_rank = malloc((b->nnm + 1) * sizeof(uint32_t));
    int rc = !rank_map || !new_rank || sort_new(b) != 0 || merge_matchers(b, rank_map, new_rank);
    if (rc)
        oom(b);
    else
        rc = patch_index(b, rank_map, new_rank);
    free(rank_map);
    free(new_rank);
    return rc;
}

int dp_router_builder_builds_on(const dp_router *prev)
{
    return reusable(prev);
}

dp_router_builder *dp_router_builder_new_next(size_t n, const dp_router *prev, char *err,
                                              size_t errlen)
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
    r->nindex = (uint32_t)n;
    r->by_index = zalloc(n + 1, sizeof(*r->by_index));
    b->by_index = r->by_index;
    r->bytes = sizeof(*r) + (n + 1) * sizeof(*r->by_index);
    if (!r->by_index) {
        oom(b);
        dp_router_builder_abort(b);
        return NULL;
    }
    if (reusable(prev)) {
        b->prev = prev;
        b->prev_to_new = malloc((prev->nindex + 1) * sizeof(uint32_t));
        r->chunks = malloc((prev->nchunks + 16) * sizeof(rt_chunk *));
        if (!b->prev_to_new || !r->chunks) {
            oom(b);
            dp_router_builder_abort(b);
            return NULL;
        }
        memset(b->prev_to_new, 0xff, (prev->nindex + 1) * sizeof(uint32_t));
        r->capchunks = prev->nchunks + 16;
        for (uint32_t i = 0; i < prev->nchunks; i++) {
            atomic_fetch_add_explicit(&prev->chunks[i]->refs, 1, memory_order_relaxed);
            r->chunks[r->nchunks++] = prev->chunks[i];
        }
        r->arena = prev->arena;
        r->bytes += prev->arena;
        r->has_suffix = prev->has_suffix;
        r->has_prefix = prev->has_prefix;
        r->has_port = prev->has_port;
        return b;
    }
    /* most routes give one sub-route: sized once, the arrays rarely grow */
    if (grow((void **)&b->nm, &b->capnm, n + 1, sizeof(rt_matcher)) ||
        grow((void **)&b->post, &b->cappost, n + 1, sizeof(bposting))) {
        oom(b);
        dp_router_builder_abort(b);
        return NULL;
    }
    return b;
}

dp_router_builder *dp_router_builder_new(size_t n, char *err, size_t errlen)
{
    return dp_router_builder_new_next(n, NULL, err, errlen);
}

/* Notes a route built here, for order_new. */
static void note_added(builder *b, size_t index, const char *id)
{
    if (!b->nadd) {
        b->first_index = index;
        b->first_id = id;
    } else if (index <= b->last_index || strcmp(id, b->last_id) <= 0) {
        b->unsorted = 1;
    }
    b->last_index = index;
    b->last_id = id;
    b->nadd++;
}

int dp_router_builder_add(dp_router_builder *b, size_t index, const dp_route_fields *f)
{
    dp_router *r = b->r;
    if (index >= b->cap || b->by_index[index] || b->nparts) {
        snprintf(b->err, b->errlen, "router: route position %zu out of range or taken%s", index,
                 b->nparts ? " (routes go to the parts)" : "");
        b->failed = 1;
        return -1;
    }
    size_t live0 = r->live;
    rt_route *rr = rt_alloc(r, sizeof(rt_route));
    if (!rr || build_route(b, rr, f, (int)index) != 0) {
        if (!rr)
            oom(b);
        b->failed = 1;
        return -1;
    }
    rr->bytes = (uint32_t)(r->live - live0);
    b->by_index[index] = rr;
    r->nroutes++;
    note_added(b, index, rr->id);
    return 0;
}

/* PCRE2's JIT detects the CPU's features into static variables on its first compile; parts
 * compile regexes on several threads at once, so that first compile happens here, once. */
static void jit_warm_up(void)
{
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR) "a", 1, 0, &ec, &off, NULL);
    if (re) {
        pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
        pcre2_code_free(re);
    }
}

int dp_router_builder_split(dp_router_builder *b, size_t per)
{
    static pthread_once_t jit_once = PTHREAD_ONCE_INIT;
    pthread_once(&jit_once, jit_warm_up);
    size_t nparts = per ? (b->cap + per - 1) / per : 0;
    if (b->prev || b->parts || b->nadd || b->nkept || nparts == 0 || b->capnm < b->cap) {
        snprintf(b->err, b->errlen, "router: a builder splits only once, before any route");
        return -1;
    }
    b->parts = calloc(nparts, sizeof(*b->parts));
    if (!b->parts)
        return oom(b);
    b->nparts = nparts;
    for (size_t k = 0; k < nparts; k++) {
        builder *p = calloc(1, sizeof(*p) + RT_PART_ERR);
        dp_router *r = calloc(1, sizeof(*r));
        if (!p || !r) {
            free(p);
            free(r);
            return oom(b);
        }
        /* most routes give one sub-route: each part files its sub-routes in its share of
         * b's array (sized for the routes), which join_parts then only closes up */
        size_t at = k * per;
        *p = (builder){.r = r,
                       .by_index = b->by_index,
                       .cap = b->cap,
                       .nm = b->nm + at,
                       .capnm = b->cap - at < per ? b->cap - at : per,
                       .nm_borrowed = 1,
                       .err = p->part_err,
                       .errlen = RT_PART_ERR};
        b->parts[k] = p;
    }
    return 0;
}

dp_router_builder *dp_router_builder_part(dp_router_builder *b, size_t k)
{
    return k < b->nparts ? b->parts[k] : NULL;
}

/* Frees a part and its router; everything it built goes with it unless moved out first. */
static void part_free(builder *p)
{
    if (!p)
        return;
    dp_router_free(p->r); /* by_index belongs to the whole builder: the part's r has none */
    if (!p->nm_borrowed)
        free(p->nm);
    free(p->post);
    free(p->lens);
    free(p);
}

/* Moves the parts' routes into b, in part order (ascending positions), as if b had built
 * them: arena chunks, flags, counters, sub-routes. -1 with b->err when a part failed (the
 * first one's error: the lowest position, as the serial build reports) or on OOM. */
static int join_parts(builder *b)
{
    dp_router *r = b->r;
    if (!b->nparts)
        return 0;
    for (size_t k = 0; k < b->nparts; k++) {
        if (b->parts[k]->failed) {
            snprintf(b->err, b->errlen, "%s", b->parts[k]->err);
            return -1;
        }
    }
    size_t nchunks = r->nchunks, nnm = 0;
    int own = 0; /* a part outgrew its slice of b->nm */
    for (size_t k = 0; k < b->nparts; k++) {
        nchunks += b->parts[k]->r->nchunks;
        nnm += b->parts[k]->nnm;
        own |= !b->parts[k]->nm_borrowed;
    }
    /* the parts' sub-routes, in part order: closed up in place (each slice moves down, never
     * past the next one's start), or copied out when a part has its own array */
    rt_matcher *nm = own ? malloc((nnm + 1) * sizeof(rt_matcher)) : b->nm;
    if (!nm)
        return oom(b);
    for (size_t k = 0, at = 0; k < b->nparts; k++) {
        builder *p = b->parts[k];
        if (p->nnm && p->nm != nm + at)
            memmove(nm + at, p->nm, p->nnm * sizeof(rt_matcher));
        at += p->nnm;
    }
    if (own) {
        free(b->nm);
        b->nm = nm;
        b->capnm = nnm + 1;
    }
    if (nchunks > r->capchunks) {
        rt_chunk **a = realloc(r->chunks, nchunks * sizeof(*a));
        if (!a)
            return oom(b);
        r->chunks = a;
        r->capchunks = (uint32_t)nchunks;
    }
    for (size_t k = 0; k < b->nparts; k++) {
        builder *p = b->parts[k];
        dp_router *pr = p->r;
        if (pr->nchunks)
            memcpy(r->chunks + r->nchunks, pr->chunks, pr->nchunks * sizeof(*pr->chunks));
        r->nchunks += pr->nchunks;
        pr->nchunks = 0; /* moved: the part's router no longer holds them */
        r->arena += pr->arena;
        r->live += pr->live;
        r->bytes += pr->bytes;
        r->nroutes += pr->nroutes;
        r->has_suffix |= pr->has_suffix;
        r->has_prefix |= pr->has_prefix;
        r->has_port |= pr->has_port;
        b->nnm += p->nnm;
        b->nhost_keys += p->nhost_keys;
        b->nprefix_keys += p->nprefix_keys;
        if (p->nadd) {
            if (b->nadd &&
                (p->first_index <= b->last_index || strcmp(p->first_id, b->last_id) <= 0))
                b->unsorted = 1;
            b->unsorted |= p->unsorted;
            if (!b->nadd) {
                b->first_index = p->first_index;
                b->first_id = p->first_id;
            }
            b->last_index = p->last_index;
            b->last_id = p->last_id;
            b->nadd += p->nadd;
        }
        part_free(p);
        b->parts[k] = NULL;
    }
    free(b->parts);
    b->parts = NULL;
    b->nparts = 0;
    return 0;
}

int dp_router_builder_keep(dp_router_builder *b, size_t index, size_t prev_index,
                           const dp_route_fields *f)
{
    dp_router *r = b->r;
    const dp_router *prev = b->prev;
    /* kept routes must keep their relative order (merge_matchers relies on it): positions
     * that go backwards, or a route prev left out, are built again */
    if (!prev || index >= b->cap || b->by_index[index] || prev_index >= prev->nindex ||
        !prev->by_index[prev_index] || (b->nkept && prev_index <= b->last_kept) ||
        (b->nkept && index <= b->last_kept_to))
        return f ? dp_router_builder_add(b, index, f) : 1;
    const rt_route *rr = prev->by_index[prev_index];
    b->by_index[index] = rr;
    r->nroutes++;
    r->live += rr->bytes;
    b->prev_to_new[prev_index] = (uint32_t)index;
    b->nkept++;
    b->last_kept = prev_index;
    b->last_kept_to = index;
    return 0;
}

void dp_router_builder_abort(dp_router_builder *b)
{
    if (!b)
        return;
    /* the regexes compiled so far belong to the arena chunks */
    for (size_t k = 0; k < b->nparts; k++)
        part_free(b->parts[k]);
    free(b->parts);
    dp_router_free(b->r);
    free(b->prev_to_new);
    free(b->nm);
    free(b->post);
    free(b->lens);
    free(b);
}

dp_router *dp_router_builder_finish(dp_router_builder *b)
{
    dp_router *r = b->r;
    int rc = join_parts(b);
    if (!rc)
        rc = b->prev ? finish_next(b) : finish_full(b);
    if (rc) {
        dp_router_builder_abort(b);
        return NULL;
    }
    r->cur = NULL;
    r->build_ms = now_ms() - b->t0;
    sl_info("router built: %u routes (%u sub-routes, %zu kept) in %.1f ms, %zu KB", r->nroutes,
            r->nmatchers, b->nkept, r->build_ms, r->bytes / 1024);
    free(b->prev_to_new);
    free(b->nm);
    free(b->post);
    free(b->lens);
    free(b);
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
    free(r->by_index);
    free(r->matchers);
    free(r->hosts.slots);
    free(r->prefixes.slots);
    free(r->buckets);
    free(r->lists);
    free(r->postings);
    free(r->lens);
    for (uint32_t i = 0; i < r->nchunks; i++)
        chunk_unref(r->chunks[i]);
    free(r->chunks);
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
