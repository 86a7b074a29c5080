#ifndef DP_ARENA_H
#define DP_ARENA_H

/* A per-request bump allocator (like nginx's request pool): the first block is memory the
 * owner already has (embedded in the connection), more blocks are malloc'd only when a request
 * needs more, and everything goes at once on reset. Bounded, so input can't grow it forever. */

#include <stddef.h>

#define DP_ARENA_MAX (4u * 1024 * 1024) /* per request, all blocks together */

typedef struct dp_arena_block dp_arena_block;

typedef struct {
    char *base; /* first block, owned by the caller */
    size_t size, used;
    dp_arena_block *extra; /* malloc'd blocks, newest first */
    size_t total;          /* bytes handed out, for the bound */
} dp_arena;

/* Starts an arena over buf[0..size) (caller keeps owning buf). */
void dp_arena_init(dp_arena *a, char *buf, size_t size);

/* Returns n bytes aligned to 16, valid until dp_arena_reset; NULL past DP_ARENA_MAX or when
 * malloc fails. */
void *dp_arena_alloc(dp_arena *a, size_t n);

/* Copies s[0..n) plus a NUL into the arena. NULL on failure. */
char *dp_arena_strndup(dp_arena *a, const char *s, size_t n);

/* Frees the extra blocks and makes the first block empty again. */
void dp_arena_reset(dp_arena *a);

#endif
