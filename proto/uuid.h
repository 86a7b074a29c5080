#ifndef SL_UUID_H
#define SL_UUID_H

/* UUIDs as Kong uses them: random v4 ids for entities, name-based v5 ids for derived ones. */

/* Writes a random (version 4) uuid, lower-case and dashed, into out (36 chars + NUL), from
 * getrandom(2). Returns 0, or -1 when the kernel gave no randomness (out is then "").*/
int sl_uuid_v4(char out[37]);

/* True when s is a canonical 8-4-4-4-12 hex uuid (either case), nothing before or after. */
int sl_uuid_is_valid(const char *s);

/* Writes the name-based (version 5, SHA-1) uuid of name within namespace ns (a valid uuid)
 * into out. Returns 0, or -1 when ns is not a valid uuid. */
int sl_uuid_v5(const char ns[37], const char *name, char out[37]);

/* Fills buf with len random bytes from getrandom(2); 0 or -1. Shared by ids, salts, keys. */
int sl_random_bytes(void *buf, unsigned long len);

#endif
