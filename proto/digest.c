#include "proto/digest.h"

#include <openssl/evp.h>
#include <pthread.h>

/* OpenSSL 3 looks the algorithm up (a locked provider fetch) and allocates a context on every
 * one-shot digest; a snapshot hashes each of its rows (100,000 and more), so the algorithm is
 * fetched once per process and each thread keeps one context, freed when the thread ends. */
static EVP_MD *sha256_md;
static pthread_key_t ctx_key;
static int ready;

static void free_ctx(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void init_once(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    ready = sha256_md && pthread_key_create(&ctx_key, free_ctx) == 0;
}

int sl_sha256(const void *bytes, size_t len, unsigned char out[32])
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_once);
    unsigned int mdlen = 0;
    if (!ready) /* no fetched algorithm: the slower one-shot call still works */
        return EVP_Digest(bytes, len, out, &mdlen, EVP_sha256(), NULL) == 1 && mdlen == 32 ? 0 : -1;
    EVP_MD_CTX *ctx = pthread_getspecific(ctx_key);
    if (!ctx) {
        ctx = EVP_MD_CTX_new();
        if (!ctx || pthread_setspecific(ctx_key, ctx) != 0) {
            EVP_MD_CTX_free(ctx);
            return -1;
        }
    }
    if (EVP_DigestInit_ex2(ctx, sha256_md, NULL) != 1 || EVP_DigestUpdate(ctx, bytes, len) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &mdlen) != 1 || mdlen != 32)
        return -1;
    return 0;
}

int sl_sha256_hex(const void *bytes, size_t len, char hex[SL_SHA256_HEX])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[32];

    if (sl_sha256(bytes, len, md) != 0)
        return -1;
    for (unsigned i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
    return 0;
}

int sl_is_sha256_hex(const char *s, size_t len)
{
    if (len != 64)
        return 0;
    for (size_t i = 0; i < 64; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}
