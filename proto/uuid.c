#include "proto/uuid.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/random.h>

static const char HEX[] = "0123456789abcdef";

int sl_random_bytes(void *buf, unsigned long len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (unsigned long)n;
    }
    return 0;
}

static void format_uuid(const unsigned char b[16], char out[37])
{
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = HEX[b[i] >> 4];
        *o++ = HEX[b[i] & 15];
    }
    *o = '\0';
}

int sl_uuid_v4(char out[37])
{
    unsigned char b[16];
    out[0] = '\0';
    if (sl_random_bytes(b, sizeof b) != 0)
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    format_uuid(b, out);
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int sl_uuid_is_valid(const char *s)
{
    if (s == NULL)
        return 0;
    for (int i = 0; i < 36; i++) {
        int dash = (i == 8 || i == 13 || i == 18 || i == 23);
        if (s[i] == '\0')
            return 0;
        if (dash ? s[i] != '-' : hexval(s[i]) < 0)
            return 0;
    }
    return s[36] == '\0';
}

int sl_uuid_v5(const char ns[37], const char *name, char out[37])
{
    unsigned char nsb[16], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (!sl_uuid_is_valid(ns) || name == NULL)
        return -1;
    for (int i = 0, j = 0; i < 16; i++) {
        if (ns[j] == '-')
            j++;
        nsb[i] = (unsigned char)(hexval(ns[j]) << 4 | hexval(ns[j + 1]));
        j += 2;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return -1;
    int ok = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) && EVP_DigestUpdate(ctx, nsb, 16) &&
             EVP_DigestUpdate(ctx, name, strlen(name)) && EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (!ok || mdlen < 16)
        return -1;
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x50); /* version 5 */
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
    format_uuid(md, out);
    return 0;
}
