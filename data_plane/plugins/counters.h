#ifndef DP_COUNTERS_H
#define DP_COUNTERS_H

/* Rate-limit counters of this node, shared by all worker threads and kept across config
 * generations (like Kong's shared dict for the `local` policy). A fixed-size table split in
 * shards, each with its own mutex, so taking a unit is exact under concurrency and cheap. All
 * windows of one identity live in the same shard, so a request takes its units in every window
 * under one lock. Bounded: a window's entry is reused once it expired; when a probe finds no
 * free or expired entry, the one expiring first is dropped. */

#include <stddef.h>
#include <stdint.h>

#define DP_COUNTER_SHARDS 64
#define DP_COUNTER_SLOTS 1024    /* per shard: 65536 live windows per node */
#define DP_COUNTER_MAX_WINDOWS 8 /* per dp_counter_take_all call */

/* A counter's identity: a 128-bit digest of what it counts (e.g. plugin id + identifier),
 * plus the window it counts in. */
typedef struct {
    uint64_t h[2];
    int64_t window_start; /* seconds since the epoch */
    int64_t window_end;
} dp_counter_key;

/* Digests data[0..len) into key->h: SipHash-2-4 (128-bit output) under a key drawn at random
 * once per process, so clients can't craft identifiers that share a counter (the counters
 * never leave the process, so the digest needs no stability across restarts). */
void dp_counter_key_digest(dp_counter_key *key, const void *data, size_t len);
/* The same over the concatenation a[0..alen) b[0..blen), without copying them together. */
void dp_counter_key_digest2(dp_counter_key *key, const void *a, size_t alen, const void *b,
                            size_t blen);

/* Takes one unit when the count is below limit: returns 1 and *count gets the new count;
 * else returns 0 and *count gets the current count (the limit was reached). now: seconds. */
int dp_counter_take(const dp_counter_key *key, uint64_t limit, int64_t now, uint64_t *count);

/* Takes one unit in each of keys[0..n) (n <= DP_COUNTER_MAX_WINDOWS; same h, different
 * windows) when every count is below its limit: returns -1 and counts[i] get the new counts.
 * Else takes nothing and returns the index of the first window at its limit; counts[i] get
 * the current counts. All under one lock, so the all-or-nothing is exact across threads. */
int dp_counter_take_all(const dp_counter_key *keys, const uint64_t *limits, size_t n, int64_t now,
                        uint64_t *counts);

/* Gives back a unit taken by dp_counter_take (a later window refused the request). */
void dp_counter_give_back(const dp_counter_key *key, int64_t now);

/* The current count (0 when absent or expired). */
uint64_t dp_counter_get(const dp_counter_key *key, int64_t now);

#endif
