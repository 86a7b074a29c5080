#include "data_plane/util/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct dp_arena_block {
    dp_arena_block *next;
    size_t size, used;
    size_t pad; /* keeps data 16-aligned: the header is 32 bytes */
    char data[];
};

void dp_arena_init(dp_arena *a, char *buf, size_t size)
{
    a->base = buf;
    a->size = size;
    a->used = 0;
    a->extra = NULL;
    a->total = 0;
}

static size_t align16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

void *dp_arena_alloc(dp_arena *a, size_t n)
{
    n = align16(n ? n : 1);
    if (n > DP_ARENA_MAX || a->total + n > DP_ARENA_MAX)
        return NULL;
    /* base may not be 16-aligned by the caller; align the offset from the real address */
    uintptr_t start = align16((uintptr_t)(a->base + a->used));
    size_t off = (size_t)(start - (uintptr_t)a->base);
    if (a->base && off + n <= a->size) {
        a->used = off + n;
        a->total += n;
        return a->base + off;
    }
    dp_arena_block *b = a->extra;
    if (b && b->used + n <= b->size) {
        void *p = b->data + b->used;
        b->used += n;
        a->total += n;
        return p;
    }
    size_t bsize = n > 16384 ? n : 16384;
    b = malloc(sizeof(*b) + bsize);
    if (!b)
        return NULL;
    b->next = a->extra;
    b->size = bsize;
    b->used = n;
    a->extra = b;
    a->total += n;
    return b->data;
}

char *dp_arena_strndup(dp_arena *a, const char *s, size_t n)
{
    char *d = dp_arena_alloc(a, n + 1);
    if (!d)
        return NULL;
    if (n)
        memcpy(d, s, n);
    d[n] = 0;
    return d;
}

void dp_arena_reset(dp_arena *a)
{
    while (a->extra) {
        dp_arena_block *n = a->extra->next;
        free(a->extra);
        a->extra = n;
    }
    a->used = 0;
    a->total = 0;
}
