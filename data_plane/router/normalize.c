#include <ctype.h>
#include <string.h>

#include "data_plane/router/router.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int unreserved(int c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

long dp_path_normalize(const char *in, size_t len, char *out)
{
    /* pass 1: escapes (never grows the text) */
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
        if (unreserved(c)) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = (char)toupper((unsigned char)in[i + 1]);
            out[o++] = (char)toupper((unsigned char)in[i + 2]);
        }
        i += 2;
    }
    /* pass 2: dot segments (RFC 3986 5.2.4), in place: the output never outruns the input */
    if (o == 0 || out[0] != '/')
        return (long)o; /* "*" and other non-paths: left alone */
    size_t r = 0, w = 0;
    while (r < o) {
        size_t s = r + 1, e = s; /* out[r] is '/'; the segment is out[s..e) */
        while (e < o && out[e] != '/')
            e++;
        int last = e == o;
        size_t seglen = e - s;
        if (seglen == 1 && out[s] == '.') {
            if (last)
                out[w++] = '/';
        } else if (seglen == 2 && out[s] == '.' && out[s + 1] == '.') {
            while (w > 0 && out[w - 1] != '/')
                w--;
            if (w > 0)
                w--;
            if (last)
                out[w++] = '/';
        } else {
            memmove(out + w, out + r, e - r);
            w += e - r;
        }
        r = e;
    }
    if (w == 0)
        out[w++] = '/';
    return (long)w;
}
