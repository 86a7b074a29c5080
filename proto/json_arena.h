#ifndef SL_JSON_ARENA_H
#define SL_JSON_ARENA_H

/* Bump allocation for the JSON trees of a whole snapshot.
 *
 * A decoded 100,000-route snapshot is about four million jansson allocations. Taken from
 * malloc they cost a third of the decode (its bookkeeping and the heap growth); taken by
 * bumping a pointer through 1 MiB chunks they cost almost nothing and pack tighter.
 *
 * Chunks are carved from one reserved address range, so telling an arena pointer from a
 * malloc one is a comparison. Each chunk counts its live allocations; when the last is freed
 * (a row replaced by a delta, or the whole tree when a new snapshot takes over) the chunk is
 * reused, and past a bound its pages go back to the kernel. Freeing is an atomic decrement,
 * from any thread. */

#include <stddef.h>

/* Routes jansson's allocations through the arena's functions. Call once, first thing in main,
 * before any thread uses jansson. Returns 0, or -1 when the arena is not used (the address
 * range cannot be reserved, or an AddressSanitizer build, which must see every allocation):
 * jansson then keeps malloc and the calls below do nothing. */
int sl_json_arena_install(void);

/* Between enter and leave, this thread's jansson allocations come from the arena (large
 * ones still from malloc). The thread keeps its partly used chunk across leave and enter. */
void sl_json_arena_enter(void);
void sl_json_arena_leave(void);

/* Hands this thread's partly used chunk back, so it can be reused once its allocations are
 * freed. Call when a thread is done decoding (before it ends, or goes idle). */
void sl_json_arena_flush(void);

typedef struct {
    size_t chunks_used; /* chunks holding live allocations, or owned by a thread */
    size_t chunks_warm; /* free chunks kept with their pages, for the next snapshot */
    size_t chunks_cold; /* free chunks whose pages went back to the kernel */
    size_t chunk_size;
} sl_json_arena_stats;

void sl_json_arena_stats_get(sl_json_arena_stats *s);

#endif
