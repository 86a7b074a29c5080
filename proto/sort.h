#ifndef SL_SORT_H
#define SL_SORT_H

#include <stdlib.h>

/* qsort for arrays that may be empty: qsort's base must not be NULL even when n is 0 (C11
 * 7.22.5), and empty arrays here are often NULL. Sorting fewer than two items is a no-op. */
static inline void sl_sort(void *base, size_t n, size_t size,
                           int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, n, size, cmp);
}

#endif
