/* Request path normalization before matching, as Kong's kong.tools.uri normalize(uri, true). */
#include <string.h>

#include "data_plane/router/router.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Escapes that stay escaped: RFC 3986 reserved characters (decoding them would change what
 * the path means) and control characters (so the decoded path is safe in a header value). */
static int keep_escaped(int c)
{
    return c < 0x20 || c == 0x7f || (c && strchr("!*'();:@&=+$,/?%#[]", c) != NULL);
}

/* Removes the last output segment (each starts at a '/', except a first one without). */
static size_t pop_segment(const char *out, size_t w)
{
    while (w > 0 && out[w - 1] != '/')
        w--;
    return w > 0 ? w - 1 : 0;
}

long dp_path_normalize(const char *in, size_t len, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] != '%') {
            out[o++] = in[i];
            continue;
        }
        if (i + 2 >= len)
            return -1;
        int h = hexval((unsigned char)in[i + 1]), l = hexval((unsigned char)in[i + 2]);
        if (h < 0 || l < 0)
            return -1;
        int c = h * 16 + l;
        if (keep_escaped(c)) {
            out[o++] = '%';
            out[o++] = hex[h];
            out[o++] = hex[l];
        } else {
            out[o++] = (char)c;
        }
        i += 2;
    }
    if (o == 0 || out[0] != '/')
        return (long)o; /* "*" and other non-paths: left alone */
    /* dot segments and repeated slashes, in place: w never passes r */
    size_t r = 0, w = 0;
    while (r < o) {
        size_t rem = o - r;
        const char *s = out + r;
        if (rem == 2 && s[0] == '/' && s[1] == '.') {
            r = o - 1;
            out[r] = '/';
        } else if (rem == 3 && s[0] == '/' && s[1] == '.' && s[2] == '.') {
            r = o - 1;
            out[r] = '/';
            w = pop_segment(out, w);
        } else if ((rem == 1 && s[0] == '.') || (rem == 2 && s[0] == '.' && s[1] == '.')) {
            r = o;
        } else if (rem >= 3 && s[0] == '.' && s[1] == '.' && s[2] == '/') {
            r += 3;
        } else if (rem >= 2 && s[0] == '.' && s[1] == '/') {
            r += 2;
        } else if (rem >= 3 && s[0] == '/' && s[1] == '.' && s[2] == '/') {
            r += 2;
        } else if (rem >= 4 && s[0] == '/' && s[1] == '.' && s[2] == '.' && s[3] == '/') {
            r += 3;
            w = pop_segment(out, w);
        } else if (rem >= 2 && s[0] == '/' && s[1] == '/') {
            r += 1;
        } else {
            const char *e = memchr(s + 1, '/', rem - 1);
            size_t n = e ? (size_t)(e - s) : rem;
            memmove(out + w, s, n);
            w += n;
            r += n;
        }
    }
    return (long)w;
}
