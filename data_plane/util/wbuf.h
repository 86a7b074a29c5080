#ifndef DP_WBUF_H
#define DP_WBUF_H

/* A bounded writer for response and request heads: writes past the end set overflow instead
 * of writing, so a caller sizes its buffer once and checks a single flag at the end. An
 * overflow also ends the space (end = p), so every later write fails the one length check
 * each write makes anyway: heads take dozens of writes per request. */

#include <stddef.h>
#include <string.h>

#include "data_plane/util/slice.h"

typedef struct {
    char *p, *end;
    int overflow;
} dp_wbuf;

static inline void dp_wbuf_put(dp_wbuf *w, const char *s, size_t n)
{
    if ((size_t)(w->end - w->p) < n) {
        w->overflow = 1;
        w->end = w->p;
        return;
    }
    memcpy(w->p, s, n);
    w->p += n;
}

/* Inlined, so strlen of a literal folds to a constant. */
static inline void dp_wbuf_puts(dp_wbuf *w, const char *s)
{
    dp_wbuf_put(w, s, strlen(s));
}

static inline void dp_wbuf_slice(dp_wbuf *w, dp_slice s)
{
    dp_wbuf_put(w, s.p, s.len);
}

/* Decimal without snprintf: heads carry several numbers and printf's setup dominated them. */
static inline void dp_wbuf_num(dp_wbuf *w, long long v)
{
    char b[24];
    char *e = b + sizeof(b), *p = e;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    dp_wbuf_put(w, p, (size_t)(e - p));
}

#endif
