#include "data_plane/plugins/counters.h"

#include <openssl/sha.h>
#include <pthread.h>
#include <string.h>

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
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_shards(void)
{
    for (int i = 0; i < DP_COUNTER_SHARDS; i++)
        pthread_mutex_init(&shards[i].lock, NULL);
}

void dp_counter_key_digest(dp_counter_key *key, const void *data, size_t len)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(data, len, d);
    memcpy(key->h, d, sizeof(key->h));
}

static uint64_t mix(const dp_counter_key *k)
{
    uint64_t x = k->h[0] ^ ((uint64_t)k->window_start * 0x9E3779B97F4A7C15ull) ^
                 ((uint64_t)(k->window_end - k->window_start) << 1);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* The slot for key in its shard (locked by the caller): the matching one, else a free or
 * expired one, else the one expiring first (evicted). create 0: NULL when absent. */
static slot *find(shard *sh, const dp_counter_key *k, uint64_t m, int64_t now, int create)
{
    slot *spare = NULL;
    size_t base = (size_t)(m / DP_COUNTER_SHARDS);
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
        if (!spare || (spare->end > now && (s->end <= now || s->end < spare->end)))
            spare = s;
    }
    if (!create)
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
    pthread_once(&once, init_shards);
    uint64_t m = mix(key);
    shard *sh = &shards[m % DP_COUNTER_SHARDS];
    pthread_mutex_lock(&sh->lock);
    slot *s = find(sh, key, m, now, 1);
    int taken = s->count < limit;
    if (taken)
        s->count++;
    *count = s->count;
    pthread_mutex_unlock(&sh->lock);
    return taken;
}

void dp_counter_give_back(const dp_counter_key *key, int64_t now)
{
    pthread_once(&once, init_shards);
    uint64_t m = mix(key);
    shard *sh = &shards[m % DP_COUNTER_SHARDS];
    pthread_mutex_lock(&sh->lock);
    slot *s = find(sh, key, m, now, 0);
    if (s && s->count)
        s->count--;
    pthread_mutex_unlock(&sh->lock);
}

uint64_t dp_counter_get(const dp_counter_key *key, int64_t now)
{
    pthread_once(&once, init_shards);
    uint64_t m = mix(key);
    shard *sh = &shards[m % DP_COUNTER_SHARDS];
    pthread_mutex_lock(&sh->lock);
    slot *s = find(sh, key, m, now, 0);
    uint64_t c = s ? s->count : 0;
    pthread_mutex_unlock(&sh->lock);
    return c;
}
