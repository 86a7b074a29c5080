#ifndef SL_PASSWORD_H
#define SL_PASSWORD_H

#include <stddef.h>

/* Salted password hashes for basic-auth credentials, in a self-describing text form:
 *   "$pbkdf2-sha256$<iterations>$<base64 salt>$<base64 hash>"
 * (PBKDF2-HMAC-SHA256, 16-byte random salt, 32-byte hash, standard base64 with padding). */

#define SL_PASSWORD_ITERATIONS 4096
#define SL_PASSWORD_HASH_MAX 128 /* longest string sl_password_hash writes, NUL included */
#define SL_PASSWORD_MAX_LEN 1024 /* longer passwords are refused (bounds hashing work) */

/* Hashes pw with a fresh salt into out. Returns 0, or -1 when outlen is too small, pw is too
 * long or randomness/OpenSSL failed (out is then ""). */
int sl_password_hash(const char *pw, char *out, size_t outlen);

/* True when pw matches stored (a string from sl_password_hash). The comparison of hashes is
 * constant-time; a malformed stored value or iteration count outside 1..1000000 never matches. */
int sl_password_verify(const char *pw, const char *stored);

/* True when s has the shape of a hash sl_password_hash writes (so it is not hashed again). */
int sl_password_is_hash(const char *s);

#endif
