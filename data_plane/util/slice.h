#ifndef DP_SLICE_H
#define DP_SLICE_H

/* (pointer, length) views into buffers someone else owns, the way HAProxy's `ist` avoids
 * copying request bytes: a request head is a set of slices into the connection's read buffer. */

#include <stddef.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *p;
    size_t len;
} dp_slice;

typedef struct {
    dp_slice name;
    dp_slice value;
} dp_header;

#define DP_SLICE_LIT(s) ((dp_slice){(s), sizeof(s) - 1})

static inline dp_slice dp_slice_cstr(const char *s)
{
    return (dp_slice){s, s ? strlen(s) : 0};
}

/* Exact byte comparison. */
static inline int dp_slice_eq(dp_slice a, dp_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* ASCII case-insensitive comparison with a C string (header names, tokens). */
static inline int dp_slice_ieq(dp_slice a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && strncasecmp(a.p, s, n) == 0;
}

/* Finds the first header named name (case-insensitive); NULL when absent. */
static inline const dp_header *dp_headers_find(const dp_header *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (dp_slice_ieq(h[i].name, name))
            return &h[i];
    return NULL;
}

#endif
