#include "proto/malloc_tune.h"

#include <malloc.h>

void sl_malloc_tune(void)
{
    mallopt(M_MXFAST, 0); /* no fastbins: frees coalesce at once (see the header) */
}
