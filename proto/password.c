#include "proto/password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/uuid.h"

#define PREFIX "$pbkdf2-sha256$"
#define SALT_LEN 16
#define HASH_LEN 32
#define MAX_ITERATIONS 1000000 /* stored values come from the database: bound the work */
#define MAX_DECODED 64

static int derive(const char *pw, const unsigned char *salt, int saltlen, int iterations,
                  unsigned char *out, int outlen)
{
    return PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, saltlen, iterations, EVP_sha256(), outlen,
                             out) == 1
               ? 0
               : -1;
}

int sl_password_hash(const char *pw, char *out, size_t outlen)
{
    unsigned char salt[SALT_LEN], hash[HASH_LEN];
    char salt64[32], hash64[64];
    if (outlen > 0)
        out[0] = '\0';
    if (pw == NULL || strlen(pw) > SL_PASSWORD_MAX_LEN)
        return -1;
    if (sl_random_bytes(salt, sizeof salt) != 0)
        return -1;
    if (derive(pw, salt, SALT_LEN, SL_PASSWORD_ITERATIONS, hash, HASH_LEN) != 0)
        return -1;
    EVP_EncodeBlock((unsigned char *)salt64, salt, SALT_LEN);
    EVP_EncodeBlock((unsigned char *)hash64, hash, HASH_LEN);
    int n = snprintf(out, outlen, PREFIX "%d$%s$%s", SL_PASSWORD_ITERATIONS, salt64, hash64);
    if (n < 0 || (size_t)n >= outlen) {
        if (outlen > 0)
            out[0] = '\0';
        return -1;
    }
    return 0;
}

/* Decodes padded standard base64 of at most MAX_DECODED bytes; returns the length or -1. */
static int b64_decode(const char *s, size_t len, unsigned char *out)
{
    unsigned char tmp[MAX_DECODED + 3];
    if (len == 0 || len % 4 != 0 || len / 4 * 3 > sizeof tmp)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '+' || c == '/' || (c == '=' && i >= len - 2);
        if (!ok)
            return -1;
    }
    int n = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)len);
    if (n < 0)
        return -1;
    if (s[len - 1] == '=')
        n--;
    if (s[len - 2] == '=')
        n--;
    if (n <= 0 || n > MAX_DECODED)
        return -1;
    memcpy(out, tmp, (size_t)n);
    return n;
}

/* Splits a stored hash into its parts; returns 0 when well-formed. */
static int parse(const char *stored, int *iterations, unsigned char *salt, int *saltlen,
                 unsigned char *hash, int *hashlen)
{
    if (stored == NULL || strncmp(stored, PREFIX, strlen(PREFIX)) != 0)
        return -1;
    const char *p = stored + strlen(PREFIX);
    char *end;
    if (*p < '1' || *p > '9')
        return -1;
    long it = strtol(p, &end, 10);
    if (*end != '$' || it < 1 || it > MAX_ITERATIONS)
        return -1;
    const char *s = end + 1;
    const char *d = strchr(s, '$');
    if (d == NULL)
        return -1;
    *saltlen = b64_decode(s, (size_t)(d - s), salt);
    *hashlen = b64_decode(d + 1, strlen(d + 1), hash);
    if (*saltlen < 0 || *hashlen < 0)
        return -1;
    *iterations = (int)it;
    return 0;
}

int sl_password_verify(const char *pw, const char *stored)
{
    unsigned char salt[MAX_DECODED], hash[MAX_DECODED], got[MAX_DECODED];
    int it, saltlen, hashlen;
    if (pw == NULL || strlen(pw) > SL_PASSWORD_MAX_LEN)
        return 0;
    if (parse(stored, &it, salt, &saltlen, hash, &hashlen) != 0)
        return 0;
    if (derive(pw, salt, saltlen, it, got, hashlen) != 0)
        return 0;
    return CRYPTO_memcmp(got, hash, (size_t)hashlen) == 0;
}

int sl_password_is_hash(const char *s)
{
    unsigned char salt[MAX_DECODED], hash[MAX_DECODED];
    int it, saltlen, hashlen;
    return parse(s, &it, salt, &saltlen, hash, &hashlen) == 0;
}
