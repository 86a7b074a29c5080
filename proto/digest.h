#ifndef SL_DIGEST_H
#define SL_DIGEST_H

/* SHA-256 over a byte range, as lower-case hex: what snapshot hashes and certificate pins
 * are compared by. */

#include <stddef.h>

#define SL_SHA256_HEX 65 /* 64 hex + NUL */

/* Writes the 32-byte sha256 of bytes[0..len) into out. Cheap to call for many small ranges
 * (no per-call algorithm lookup or allocation) and safe from any thread. 0, or -1 if OpenSSL
 * fails (out of memory). */
int sl_sha256(const void *bytes, size_t len, unsigned char out[32]);

/* Writes the sha256 of bytes[0..len) as 64 lower-case hex digits + NUL into hex.
 * Returns 0, or -1 if OpenSSL fails (out of memory). */
int sl_sha256_hex(const void *bytes, size_t len, char hex[SL_SHA256_HEX]);

/* True when s is exactly 64 lower-case hex digits followed by NUL. */
int sl_is_sha256_hex(const char *s, size_t len);

#endif
