/* Kong's v0 upstream path: the service path joined with what the route leaves of the request
 * path, then escaped for the request line (the normalized path may carry decoded bytes such as
 * spaces that must not travel raw). */
#include <string.h>

#include "data_plane/router/router.h"

/* Kong's escape(): keep what is safe in a request line, %XX-encode everything else. */
static int keep_raw(unsigned char c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return 1;
    return c && strchr("!#$&'()*+,/:;=?@[]-_.~%", c) != NULL;
}

typedef struct {
    char *p, *end;
    int overflow;
} wbuf;

static void put(wbuf *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t need = keep_raw(c) ? 1 : 3;
        if ((size_t)(w->end - w->p) < need) {
            w->overflow = 1;
            return;
        }
        if (need == 1) {
            *w->p++ = (char)c;
        } else {
            *w->p++ = '%';
            *w->p++ = hex[c >> 4];
            *w->p++ = hex[c & 15];
        }
    }
}

size_t dp_router_upstream_path_cap(const char *service_path, size_t path_len)
{
    return 3 * ((service_path ? strlen(service_path) : 1) + path_len + 2);
}

long dp_router_upstream_path(const char *service_path, int strip_path, dp_slice path,
                             size_t prefix_len, char *out, size_t cap)
{
    const char *base = service_path && *service_path ? service_path : "/";
    size_t bl = strlen(base);
    const char *uri = path.len ? path.p : "/";
    size_t ul = path.len ? path.len : 1;
    /* the remainder after the matched path; without a matched path, all but the first slash */
    size_t skip = strip_path && prefix_len ? (prefix_len <= ul ? prefix_len : ul) : 1;
    const char *post = uri + skip;
    size_t pl = ul - skip;
    /* Kong's sanitize_uri_postfix: a remainder of only dot segments adds nothing */
    if ((pl == 1 && post[0] == '.') || (pl == 2 && post[0] == '.' && post[1] == '.')) {
        pl = 0;
    } else if (pl >= 2 && post[0] == '.' && post[1] == '/') {
        post += 2;
        pl -= 2;
    } else if (pl >= 3 && post[0] == '.' && post[1] == '.' && post[2] == '/') {
        post += 3;
        pl -= 3;
    }
    wbuf w = {out, out + cap, 0};
    int base_slash = base[bl - 1] == '/';
    if (strip_path) {
        if (pl == 0) {
            if (bl == 1 && base_slash)
                put(&w, "/", 1);
            else if (base_slash) /* keep the service path's slash only if the request had one */
                put(&w, base, uri[ul - 1] == '/' ? bl : bl - 1);
            else {
                put(&w, base, bl);
                if (ul > 1 && uri[ul - 1] == '/')
                    put(&w, "/", 1);
            }
        } else if (post[0] == '/') {
            put(&w, base, base_slash ? bl - 1 : bl); /* one slash at the join */
            put(&w, post, pl);
        } else {
            put(&w, base, bl);
            if (!base_slash)
                put(&w, "/", 1);
            put(&w, post, pl);
        }
    } else if (base_slash) {
        put(&w, base, bl);
        put(&w, uri + 1, ul - 1);
    } else {
        put(&w, base, bl);
        if (!(ul == 1 && uri[0] == '/'))
            put(&w, uri, ul);
    }
    return w.overflow ? -1 : (long)(w.p - out);
}
