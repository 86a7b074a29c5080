#ifndef SL_PARALLEL_H
#define SL_PARALLEL_H

/* A parallel loop for CPU-bound work on independent items (validating the rows of a large
 * snapshot): the calling thread works too, helpers take chunks from a shared counter, so a
 * helper that cannot be started only makes the loop slower, never incomplete. */

#include <stddef.h>

/* Calls fn(arg, begin, end) over [0, n) in chunks of `chunk` items, on the calling thread
 * plus up to max_threads - 1 helper threads (fewer when the machine has fewer cores or there
 * are few chunks). Returns when every chunk is done. fn must be safe to run concurrently on
 * disjoint ranges. */
void sl_parallel_for(size_t n, size_t chunk, unsigned max_threads,
                     void (*fn)(void *arg, size_t begin, size_t end), void *arg);

#endif
