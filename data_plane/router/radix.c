/* Stable LSD radix sorts for the router build. Sorting 100,000 sub-routes with a comparison
 * that ends in strcmp of route ids (which sit scattered in the arena) took longer than the rest
 * of the build; integer keys sorted one byte at a time cost a few passes over a flat array, and
 * the bytes every key has alike (created_at is often the same for all routes, most priority
 * bits are) are not passed over at all. */
#include <string.h>

#include "data_plane/router/internal.h"

/* Byte `byte` (0 = least significant) of the 20-byte key tie | lo | hi. */
static inline unsigned key_byte(const rt_sort_rec *x, unsigned byte)
{
    if (byte < 4)
        return (x->tie >> (8 * byte)) & 0xff;
    if (byte < 12)
        return (unsigned)(x->lo >> (8 * (byte - 4))) & 0xff;
    return (unsigned)(x->hi >> (8 * (byte - 12))) & 0xff;
}

/* Turns per-byte counts into each byte's first output position (exclusive prefix sums). */
static void counts_to_offsets(size_t count[256])
{
    size_t off = 0;
    for (unsigned k = 0; k < 256; k++) {
        size_t c = count[k];
        count[k] = off;
        off += c;
    }
}

rt_sort_rec *rt_radix_sort(rt_sort_rec *a, rt_sort_rec *tmp, size_t n, int with_tie)
{
    if (n < 2)
        return a;
    /* which bits differ anywhere: a byte that is the same in every key orders nothing */
    uint64_t dhi = 0, dlo = 0;
    uint32_t dtie = 0;
    for (size_t i = 1; i < n; i++) {
        dhi |= a[i].hi ^ a[0].hi;
        dlo |= a[i].lo ^ a[0].lo;
        dtie |= a[i].tie ^ a[0].tie;
    }
    if (!with_tie)
        dtie = 0;
    rt_sort_rec *src = a, *dst = tmp;
    size_t count[256];
    for (unsigned byte = 0; byte < 20; byte++) {
        unsigned diff = byte < 4    ? (dtie >> (8 * byte)) & 0xff
                        : byte < 12 ? (unsigned)(dlo >> (8 * (byte - 4))) & 0xff
                                    : (unsigned)(dhi >> (8 * (byte - 12))) & 0xff;
        if (!diff)
            continue;
        memset(count, 0, sizeof(count));
        for (size_t i = 0; i < n; i++)
            count[key_byte(&src[i], byte)]++;
        counts_to_offsets(count);
        for (size_t i = 0; i < n; i++)
            dst[count[key_byte(&src[i], byte)]++] = src[i];
        rt_sort_rec *t = src;
        src = dst;
        dst = t;
    }
    return src;
}

uint64_t *rt_radix_sort_u64(uint64_t *a, uint64_t *tmp, size_t n)
{
    if (n < 2)
        return a;
    uint64_t d = 0;
    for (size_t i = 1; i < n; i++)
        d |= a[i] ^ a[0];
    uint64_t *src = a, *dst = tmp;
    size_t count[256];
    for (unsigned byte = 0; byte < 8; byte++) {
        unsigned shift = 8 * byte;
        if (!((d >> shift) & 0xff))
            continue;
        memset(count, 0, sizeof(count));
        for (size_t i = 0; i < n; i++)
            count[(src[i] >> shift) & 0xff]++;
        counts_to_offsets(count);
        for (size_t i = 0; i < n; i++)
            dst[count[(src[i] >> shift) & 0xff]++] = src[i];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    return src;
}
