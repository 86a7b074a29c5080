#include "data_plane/plugins/counters.h"

#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define PROBE 16

typedef struct {
    uint64_t h0, h1;
    int64_t start, end; /* end == 0: free */
    uint64_t count;
} slot;

typedef struct {
    pthread_mutex_t lock;
    slot slots[DP_COUNTER_SLOTS];
} shard;

static shard shards[DP_COUNTER_SHARDS];
static uint64_t sip_k0, sip_k1;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_once(void)
{
    for (int i = 0; i < DP_COUNTER_SHARDS; i++)
        pthread_mutex_init(&shards[i].lock, NULL);
    uint64_t k[2];
    if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k)) { /* no entropy yet: still varies */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        k[0] = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)&ts;
        k[1] = (uint64_t)ts.tv_sec * 0xC2B2AE3D27D4EB4Full ^ (uint64_t)(uintptr_t)shards;
    }
    sip_k0 = k[0];
    sip_k1 = k[1];
}

/* ------------------------------------------------------------------ SipHash-2-4, 128-bit */

typedef struct {
    uint64_t v0, v1, v2, v3;
    uint64_t tail; /* pending bytes, little-endian */
    size_t ntail, total;
} sip;

static inline uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static inline void sip_round(sip *s)
{
    s->v0 += s->v1;
    s->v1 = rotl(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = rotl(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = rotl(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = rotl(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = rotl(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = rotl(s->v2, 32);
}

static inline void sip_block(sip *s, uint64_t m)
{
    s->v3 ^= m;
    sip_round(s);
    sip_round(s);
    s->v0 ^= m;
}

static void sip_init(sip *s)
{
    s->v0 = sip_k0 ^ 0x736f6d6570736575ull;
    s->v1 = sip_k1 ^ 0x646f72616e646f6dull ^ 0xee;
    s->v2 = sip_k0 ^ 0x6c7967656e657261ull;
    s->v3 = sip_k1 ^ 0x7465646279746573ull;
    s->tail = 0;
    s->ntail = 0;
    s->total = 0;
}

static void sip_update(sip *s, const void *data, size_t len)
{
    const unsigned char *p = data;
    s->total += len;
    while (len && s->ntail) { /* finish a block started by an earlier piece */
        s->tail |= (uint64_t)*p++ << (8 * s->ntail);
        len--;
        if (++s->ntail == 8) {
            sip_block(s, s->tail);
            s->tail = 0;
            s->ntail = 0;
        }
    }
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t m;
        memcpy(&m, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        m = __builtin_bswap64(m); /* SipHash reads little-endian words */
#endif
        sip_block(s, m);
    }
    for (size_t i = 0; i < len; i++)
        s->tail |= (uint64_t)p[i] << (8 * s->ntail++);
}

static void sip_final(sip *s, uint64_t out[2])
{
    sip_block(s, s->tail | ((uint64_t)s->total << 56));
    s->v2 ^= 0xee;
    for (int i = 0; i < 4; i++)
        sip_round(s);
    out[0] = s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
    s->v1 ^= 0xdd;
    for (int i = 0; i < 4; i++)
        sip_round(s);
    out[1] = s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

void dp_counter_key_digest2(dp_counter_key *key, const void *a, size_t alen, const void *b,
                            size_t blen)
{
    pthread_once(&once, init_once);
    sip s;
    sip_init(&s);
    sip_update(&s, a, alen);
    sip_update(&s, b, blen);
    sip_final(&s, key->h);
}

void dp_counter_key_digest(dp_counter_key *key, const void *data, size_t len)
{
    dp_counter_key_digest2(key, data, len, NULL, 0);
}

/* ------------------------------------------------------------------ the table */

/* The shard of an identity: every window of it, so one lock covers a request. */
static shard *shard_of(const dp_counter_key *k)
{
    return &shards[(k->h[0] ^ (k->h[0] >> 32)) % DP_COUNTER_SHARDS];
}

static uint64_t mix(const dp_counter_key *k)
{
    uint64_t x = k->h[1] ^ ((uint64_t)k->window_start * 0x9E3779B97F4A7C15ull) ^
                 ((uint64_t)(k->window_end - k->window_start) << 1);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* The slot for key in its shard (locked by the caller): the matching one, else a free or
 * expired one, else the one expiring first (evicted), never one of held[0..nheld) (slots the
 * caller is using for other windows). create 0: NULL when absent. */
static slot *find(shard *sh, const dp_counter_key *k, int64_t now, int create, slot *const *held,
                  size_t nheld)
{
    slot *spare = NULL;
    size_t base = (size_t)(mix(k) % DP_COUNTER_SLOTS);
    for (int i = 0; i < PROBE; i++) {
        slot *s = &sh->slots[(base + (size_t)i) % DP_COUNTER_SLOTS];
        if (s->end && s->h0 == k->h[0] && s->h1 == k->h[1] && s->start == k->window_start &&
            s->end == k->window_end) {
            if (s->end > now)
                return s;
            if (!create)
                return NULL;
            s->count = 0;
            return s;
        }
        int in_use = 0;
        for (size_t j = 0; j < nheld && !in_use; j++)
            in_use = held[j] == s;
        if (!in_use && (!spare || (spare->end > now && (s->end <= now || s->end < spare->end))))
            spare = s;
    }
    if (!create || !spare)
        return NULL;
    spare->h0 = k->h[0];
    spare->h1 = k->h[1];
    spare->start = k->window_start;
    spare->end = k->window_end;
    spare->count = 0;
    return spare;
}

int dp_counter_take(const dp_counter_key *key, uint64_t limit, int64_t now, uint64_t *count)
{
    return dp_counter_take_all(key, &limit, 1, now, count) < 0;
}

int dp_counter_take_all(const dp_counter_key *keys, const uint64_t *limits, size_t n, int64_t now,
                        uint64_t *counts)
{
    pthread_once(&once, init_once);
    if (n > DP_COUNTER_MAX_WINDOWS)
        n = DP_COUNTER_MAX_WINDOWS;
    if (!n)
        return -1;
    shard *sh = shard_of(&keys[0]);
    slot *s[DP_COUNTER_MAX_WINDOWS];
    int stop = -1;
    pthread_mutex_lock(&sh->lock);
    for (size_t w = 0; w < n; w++) {
        s[w] = find(sh, &keys[w], now, 1, s, w); /* PROBE > MAX_WINDOWS: never NULL */
        counts[w] = s[w]->count;
        if (s[w]->count >= limits[w]) {
            stop = (int)w;
            break;
        }
    }
    if (stop < 0) {
        for (size_t w = 0; w < n; w++)
            counts[w] = ++s[w]->count;
    } else { /* windows not reached: their current use, without creating them */
        for (size_t w = (size_t)stop + 1; w < n; w++) {
            slot *x = find(sh, &keys[w], now, 0, NULL, 0);
            counts[w] = x ? x->count : 0;
        }
    }
    pthread_mutex_unlock(&sh->lock);
    return stop;
}

void dp_counter_give_back(const dp_counter_key *key, int64_t now)
{
    pthread_once(&once, init_once);
    shard *sh = shard_of(key);
    pthread_mutex_lock(&sh->lock);
    slot *s = find(sh, key, now, 0, NULL, 0);
    if (s && s->count)
        s->count--;
    pthread_mutex_unlock(&sh->lock);
}

uint64_t dp_counter_get(const dp_counter_key *key, int64_t now)
{
    pthread_once(&once, init_once);
    shard *sh = shard_of(key);
    pthread_mutex_lock(&sh->lock);
    slot *s = find(sh, key, now, 0, NULL, 0);
    uint64_t c = s ? s->count : 0;
    pthread_mutex_unlock(&sh->lock);
    return c;
}
