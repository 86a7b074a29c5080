#ifndef DP_ROUTER_INTERNAL_H
#define DP_ROUTER_INTERNAL_H

/* The compiled router, shared by build.c (writes it once) and match.c (reads it from every
 * worker). Layout, chosen so a lookup costs the same with 1 or 100,000 routes:
 *
 *   matchers[]    every (route, path group) pair, sorted into Kong's order: rank = index, so
 *                 "higher priority" is "smaller rank" and every candidate list below is a run
 *                 of ascending ranks.
 *   hosts         hash of (kind, port, lower-case name) -> bucket; bucket 0 holds the routes
 *                 without hosts. "*.x" is stored as ".x" (kind SUFFIX), "x.*" as "x." (PREFIX).
 *   prefixes      hash of (bucket, plain path) -> list of ranks; each bucket also keeps the
 *                 distinct prefix lengths it holds, so a request probes one entry per length.
 *   buckets[]     per bucket: the lists of its regex matchers and of its path-less matchers.
 *   postings[]    all lists, back to back (uint32 ranks).
 *
 * The routes and sub-routes live in an arena of refcounted chunks; the ordering and the index
 * are plain arrays. A router built for the next generation shares the previous one's chunks
 * (the routes that did not change are taken over as they are) and copies and patches its
 * arrays. Nothing is written after the build. */

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "data_plane/router/router.h"

enum { RT_HOST_EXACT, RT_HOST_SUFFIX, RT_HOST_PREFIX };

#define RT_MAX_HOST 255 /* longer request hosts can only reach the routes without hosts */

typedef struct {
    const char *p; /* arena; lower-cased where the comparison is case-insensitive */
    uint32_t len;
} rt_str;

typedef struct {
    rt_str value;   /* plain value, lower case */
    pcre2_code *re; /* "~*" value: caseless regex, unanchored */
} rt_hval;

typedef struct {
    rt_str name; /* lower case, '_' folded to '-' */
    rt_hval *vals;
    uint32_t nvals;
} rt_hrule;

typedef struct {
    int kind;
    int port; /* 0: any */
    rt_str name;
} rt_host;

/* One sub-route in Kong's sense: a route with its paths of one kind and length. */
typedef struct {
    uint64_t priority;
    pcre2_code **res; /* regex group: the route's regexes in their order */
    uint32_t nres;
    uint32_t nprefixes;
    rt_str *prefixes; /* plain paths of this group (all the same length) */
} rt_sub;

/* A compiled route. Immutable once built and kept in the arena, so the router of the next
 * generation can take it over unchanged (see dp_router_builder_keep): nothing in it depends on
 * the route's position or on the other routes. */
typedef struct {
    const char *id; /* arena */
    long long created_at;
    rt_str *methods; /* NULL when none, as are the other arrays */
    rt_hrule *hdrs;
    rt_str *snis; /* lower case, trailing dot removed */
    rt_host *hosts;
    rt_sub *subs;
    int protocols; /* DP_ROUTER_PROTO_* the route accepts when matching */
    uint32_t nmethods, nhdrs, nsnis, nhosts, nsubs;
    uint32_t bytes; /* arena bytes the route's records take (garbage accounting) */
} rt_route;

/* A sub-route at its rank. */
typedef struct {
    const rt_route *route;
    const rt_sub *sub;
    uint64_t priority; /* sub->priority, here for the ordering without a pointer chase */
    int index;         /* the route's position in the routes array the router was built for */
} rt_matcher;

typedef struct {
    uint32_t off, n;
} rt_list;

#define RT_NO_LIST UINT32_MAX

typedef struct {
    uint32_t nopath, regex;   /* list ids (RT_NO_LIST: none) */
    uint32_t lens_off, nlens; /* distinct prefix lengths, ascending, in r->lens */
} rt_bucket;

typedef struct {
    uint32_t hash;
    uint32_t len;
    const char *key; /* NULL: free slot */
    uint32_t tag;    /* hosts: kind | port << 2; prefixes: bucket */
    uint32_t value;  /* hosts: bucket; prefixes: list index */
} rt_slot;

typedef struct {
    rt_slot *slots;
    uint32_t mask, used;
} rt_table;

typedef struct rt_chunk rt_chunk;

struct dp_router {
    const rt_route **by_index; /* per route position: its record, NULL when left out */
    uint32_t nindex;
    uint32_t nroutes;
    rt_matcher *matchers;
    uint32_t nmatchers;
    rt_table hosts, prefixes;
    rt_bucket *buckets;
    uint32_t nbuckets;
    rt_list *lists; /* every candidate list, by id (prefix table values, bucket lists) */
    uint32_t nlists;
    uint32_t *postings;
    uint32_t npostings;
    uint32_t *lens;
    uint32_t nlens;
    uint32_t empty_lists; /* lists left empty by routes gone (garbage of incremental builds) */
    int has_suffix, has_prefix, has_port; /* which host lookups are worth doing */
    /* the arena: refcounted chunks, shared with the routers built from this one */
    rt_chunk **chunks;
    uint32_t nchunks, capchunks;
    rt_chunk *cur; /* the chunk new records go to (build only) */
    size_t arena;  /* bytes of the chunks held */
    size_t live;   /* bytes of them the router's routes use */
    size_t bytes;  /* everything the router holds, for the log line */
    double build_ms;
};

/* A sub-route's place in Kong's order as one integer key, for rt_radix_sort: hi is the
 * priority inverted (higher first), lo created_at with its sign bit flipped (older first), tie
 * the rank of the route's (id, position) among those sorted; m is the sub-route's number. */
typedef struct {
    uint64_t hi, lo;
    uint32_t tie, m;
} rt_sort_rec;

/* Sorts a[0..n) by (hi, lo, tie) ascending, or by (hi, lo) when with_tie is 0 (the caller
 * knows a is already in tie order: the sort is stable). tmp holds n records. Returns a or tmp,
 * whichever holds the result; the other is scratch. */
rt_sort_rec *rt_radix_sort(rt_sort_rec *a, rt_sort_rec *tmp, size_t n, int with_tie);

/* Sorts a[0..n) ascending; tmp holds n. Returns a or tmp, whichever holds the result. */
uint64_t *rt_radix_sort_u64(uint64_t *a, uint64_t *tmp, size_t n);

/* FNV-1a, 32 bit: cheap, and it extends one byte at a time, so the prefix lookups hash each
 * request path once while probing every stored prefix length. */
#define RT_FNV_SEED 2166136261u
#define RT_FNV_PRIME 16777619u

static inline uint32_t rt_hash_step(uint32_t h, unsigned char c)
{
    return (h ^ c) * RT_FNV_PRIME;
}

static inline uint32_t rt_hash_tag(uint32_t tag)
{
    uint32_t h = RT_FNV_SEED;
    for (int i = 0; i < 4; i++)
        h = rt_hash_step(h, (unsigned char)(tag >> (8 * i)));
    return h;
}

/* Finishes a running hash into the slot hash (mixes in the length). */
static inline uint32_t rt_hash_final(uint32_t h, uint32_t len)
{
    h ^= len * 0x9e3779b1u;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    return h ? h : 1;
}

/* Looks up (tag, key[0..len)) with a precomputed final hash; NULL when absent. */
static inline const rt_slot *rt_table_get(const rt_table *t, uint32_t hash, uint32_t tag,
                                          const char *key, uint32_t len)
{
    if (!t->slots)
        return 0;
    for (uint32_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        const rt_slot *s = &t->slots[i];
        if (!s->key)
            return 0;
        if (s->hash == hash && s->tag == tag && s->len == len &&
            (len == 0 || __builtin_memcmp(s->key, key, len) == 0))
            return s;
    }
}

/* Hash of a whole key. */
static inline uint32_t rt_hash_key(uint32_t tag, const char *key, uint32_t len)
{
    uint32_t h = rt_hash_tag(tag);
    for (uint32_t i = 0; i < len; i++)
        h = rt_hash_step(h, (unsigned char)key[i]);
    return rt_hash_final(h, len);
}

#endif
