#ifndef DP_HEX_H
#define DP_HEX_H

/* Lower-case hex of a 64-bit number without a table lookup per digit: every request gets a
 * 32-digit id, and the digit loop cost more than routing the request. */

#include <stdint.h>
#include <string.h>

/* Writes the 16 hex digits of v (most significant first, lower case) to out; no NUL. */
static inline void dp_hex_u64(char *out, uint64_t v)
{
    for (int half = 0; half < 2; half++) {
        uint64_t x = half ? (uint32_t)v : v >> 32;
        /* spread the 8 nibbles into 8 bytes, the lowest nibble in the lowest byte */
        x = ((x & 0xffff0000ull) << 16) | (x & 0xffffull);
        x = ((x & 0x0000ff000000ff00ull) << 8) | (x & 0x000000ff000000ffull);
        x = ((x & 0x00f000f000f000f0ull) << 4) | (x & 0x000f000f000f000full);
        /* 1 in each byte whose nibble is 10 or more: those become 'a'..'f', the rest '0'..'9' */
        uint64_t letter = ((x + 0x0606060606060606ull) >> 4) & 0x0101010101010101ull;
        x += 0x3030303030303030ull + letter * ('a' - '0' - 10);
        /* the most significant digit goes first: the highest byte first in memory */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        x = __builtin_bswap64(x);
#endif
        memcpy(out + 8 * half, &x, 8);
    }
}

#endif
