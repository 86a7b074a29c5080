#include <stdio.h>

#include "data_plane/proxy/proxy.h"

void dp_out_reset(dp_out *o, int chunked)
{
    o->n = 0;
    o->nslices = 0;
    o->chunked = chunked;
    o->body_bytes = 0;
}

void dp_out_add(dp_out *o, const char *p, size_t len)
{
    if (len && o->n < sizeof(o->iov) / sizeof(o->iov[0]))
        o->iov[o->n++] = uv_buf_init((char *)p, (unsigned)len);
}

int dp_out_full(const dp_out *o)
{
    return o->nslices >= DP_MAX_SLICES;
}

int dp_out_body(dp_out *o, const char *p, size_t len)
{
    if (!len)
        return 0;
    if (o->nslices >= DP_MAX_SLICES)
        return -1;
    if (o->chunked) {
        char *h = o->hex[o->nslices];
        int n = snprintf(h, sizeof(o->hex[0]), "%zx\r\n", len);
        dp_out_add(o, h, (size_t)n);
        dp_out_add(o, p, len);
        dp_out_add(o, "\r\n", 2);
    } else {
        dp_out_add(o, p, len);
    }
    o->nslices++;
    o->body_bytes += len;
    return 0;
}

void dp_out_end(dp_out *o)
{
    if (o->chunked)
        dp_out_add(o, "0\r\n\r\n", 5);
}
