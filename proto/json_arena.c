/* The JSON arena (proto/json_arena.h). */
#include "proto/json_arena.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <jansson.h>

#define CHUNK_SHIFT 20
#define CHUNK ((size_t)1 << CHUNK_SHIFT)
/* Address space only: pages are made usable a chunk at a time. 32 GiB is far beyond any
 * snapshot the decoder's limits let in; when it runs out, allocations fall back to malloc. */
#define RESERVE ((size_t)32 << 30)
#define NCHUNKS (RESERVE / CHUNK)
/* Larger allocations (the tables of big arrays) come from malloc: a chunk wastes at most
 * this much at its end. */
#define MAX_BUMP (CHUNK / 16)
/* Free chunks kept with their pages: the next snapshot of a large config reuses them without
 * page faults, as a malloc heap would. Past this, pages go back to the kernel. */
#define WARM_MAX 256
/* A chunk owned by a thread counts this much more than its live allocations, so frees from
 * other threads never bring it to zero while it is still being filled. */
#define OWNED_BIAS ((int64_t)1 << 40)

typedef struct {
    _Atomic int64_t live;
    char pad[64 - sizeof(int64_t)]; /* allocations start on their own cache line */
} chunk_head;

static char *region; /* NULL: not installed */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t warm[NCHUNKS], cold[NCHUNKS]; /* free chunk indices (stacks), under lock */
static size_t nwarm, ncold, nfresh;           /* nfresh: chunks never handed out yet */
static atomic_size_t used;

static _Thread_local struct {
    int on;
    chunk_head *chunk;
    char *p, *end;
    int64_t count; /* allocations made from chunk */
} me;

static chunk_head *chunk_at(size_t i)
{
    return (chunk_head *)(region + i * CHUNK);
}

/* A free chunk (one with its pages first), or a fresh one; NULL when the range is used up.
 * bulk: the thread has filled a chunk already, so it will likely fill this one too: its pages
 * are taken in one call rather than one page fault each (a fifth of a large decode's time). */
static chunk_head *acquire(int bulk)
{
    chunk_head *h = NULL;
    int paged = 0;
    pthread_mutex_lock(&lock);
    if (nwarm) {
        h = chunk_at(warm[--nwarm]);
        paged = 1;
    } else if (ncold) {
        h = chunk_at(cold[--ncold]);
    } else if (nfresh < NCHUNKS && mprotect(chunk_at(nfresh), CHUNK, PROT_READ | PROT_WRITE) == 0) {
        h = chunk_at(nfresh++);
    }
    pthread_mutex_unlock(&lock);
    if (!h)
        return NULL;
    if (bulk && !paged)
        madvise(h, CHUNK, MADV_POPULATE_WRITE); /* older kernels refuse it: faults then */
    atomic_store_explicit(&h->live, OWNED_BIAS, memory_order_relaxed);
    atomic_fetch_add_explicit(&used, 1, memory_order_relaxed);
    return h;
}

static void release(chunk_head *h)
{
    uint32_t i = (uint32_t)(((char *)h - region) >> CHUNK_SHIFT);
    atomic_fetch_sub_explicit(&used, 1, memory_order_relaxed);
    pthread_mutex_lock(&lock);
    if (nwarm < WARM_MAX) {
        warm[nwarm++] = i;
    } else {
        madvise(h, CHUNK, MADV_DONTNEED); /* reads back as zeros when reused */
        cold[ncold++] = i;
    }
    pthread_mutex_unlock(&lock);
}

/* Gives up ownership of this thread's chunk: from now on only frees count it down. */
static void seal(void)
{
    chunk_head *h = me.chunk;
    if (!h)
        return;
    me.chunk = NULL;
    me.p = me.end = NULL;
    int64_t delta = me.count - OWNED_BIAS;
    if (atomic_fetch_add_explicit(&h->live, delta, memory_order_acq_rel) + delta == 0)
        release(h);
}

static void *arena_malloc(size_t n)
{
    if (!me.on || n > MAX_BUMP)
        return malloc(n);
    n = (n + 7) & ~(size_t)7; /* jansson's structs need no more than 8-byte alignment */
    if ((size_t)(me.end - me.p) < n) {
        int bulk = me.chunk != NULL;
        seal();
        chunk_head *h = acquire(bulk);
        if (!h)
            return malloc(n);
        me.chunk = h;
        me.p = (char *)(h + 1);
        me.end = (char *)h + CHUNK;
        me.count = 0;
    }
    void *r = me.p;
    me.p += n;
    me.count++;
    return r;
}

static void arena_free(void *p)
{
    if ((uintptr_t)p - (uintptr_t)region >= RESERVE) { /* malloc's (or NULL) */
        free(p);
        return;
    }
    chunk_head *h = (chunk_head *)((uintptr_t)p & ~(uintptr_t)(CHUNK - 1));
    if (atomic_fetch_sub_explicit(&h->live, 1, memory_order_acq_rel) == 1)
        release(h);
}

/* AddressSanitizer must see every allocation to find misuse of the trees */
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_USABLE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_USABLE 0
#endif
#endif
#ifndef ARENA_USABLE
#define ARENA_USABLE 1
#endif

int sl_json_arena_install(void)
{
    if (!ARENA_USABLE)
        return -1;
    if (region)
        return 0;
    /* one chunk more, so chunks can start on CHUNK boundaries: a pointer's chunk is then its
     * address rounded down */
    void *r =
        mmap(NULL, RESERVE + CHUNK, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED)
        return -1;
    region = (char *)(((uintptr_t)r + CHUNK - 1) & ~(uintptr_t)(CHUNK - 1));
    json_set_alloc_funcs(arena_malloc, arena_free);
    return 0;
}

void sl_json_arena_enter(void)
{
    me.on = region != NULL;
}

void sl_json_arena_leave(void)
{
    me.on = 0;
}

void sl_json_arena_flush(void)
{
    seal();
}

void sl_json_arena_stats_get(sl_json_arena_stats *s)
{
    pthread_mutex_lock(&lock);
    s->chunks_warm = nwarm;
    s->chunks_cold = ncold;
    pthread_mutex_unlock(&lock);
    s->chunks_used = atomic_load_explicit(&used, memory_order_relaxed);
    s->chunk_size = CHUNK;
}
