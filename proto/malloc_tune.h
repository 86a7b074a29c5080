#ifndef SL_MALLOC_TUNE_H
#define SL_MALLOC_TUNE_H

/* Both planes build and free configurations of hundreds of thousands of small allocations
 * (a decoded snapshot is ~55 per route). With glibc's fastbins, freeing them defers the work
 * to malloc_consolidate, which then runs inside later large allocations: measured on a
 * 100,000-route snapshot, decode went from 2.2 s to 0.7-1.4 s and freeing the tree from 2.1 s
 * to 0.2-0.5 s with fastbins off. The proxy's hot path allocates from per-connection arenas,
 * so it does not lean on fastbins. Call once, first thing in main. */
void sl_malloc_tune(void);

#endif
