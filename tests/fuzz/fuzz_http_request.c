/* libFuzzer target: the request parsing path (llhttp + smuggling checks) and the upstream head
 * rewrite, over arbitrary bytes, possibly several pipelined messages. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "data_plane/http/h1.h"
#include "data_plane/http/rewrite.h"
#include "data_plane/router/router.h"

static void on_body(void *ud, const char *at, size_t len)
{
    volatile const char *p = at;
    if (len)
        (void)p[len - 1];
}

static int on_chunk(void *ud)
{
    return (*(int *)ud)++ % 3 == 0; /* exercise pausing too */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static dp_h1 h;
    static char out[128 * 1024];
    int chunks = 0;
    dp_h1_init(&h, DP_H1_REQUEST, on_body, on_chunk, &chunks);
    size_t off = 0;
    for (int rounds = 0; rounds < 64 && off <= size; rounds++) {
        size_t used;
        dp_h1_result r = dp_h1_execute(&h, (const char *)data + off, size - off, &used);
        off += used;
        if (r == DP_H1_ERROR || r == DP_H1_UPGRADE)
            break;
        if (h.head_complete) {
            dp_upstream_req_info info = {.upstream_uri = h.head.path,
                                         .host = DP_SLICE_LIT("up"),
                                         .client_ip = DP_SLICE_LIT("127.0.0.1"),
                                         .scheme = "http",
                                         .fwd_host = DP_SLICE_LIT("h"),
                                         .fwd_port = 8000,
                                         .fwd_path = h.head.path,
                                         .request_id = DP_SLICE_LIT("id"),
                                         .headers = DP_HDR_ALL};
            size_t cap = dp_rewrite_request_size(&h.head, &info);
            if (cap <= sizeof(out) && dp_rewrite_request(&h.head, &info, out, cap) < 0)
                __builtin_trap(); /* the size function promised enough room */
            char norm[DP_MAX_URI + 8];
            if (h.head.path.len <= DP_MAX_URI)
                dp_path_normalize(h.head.path.p, h.head.path.len, norm);
        }
        if (h.msg_complete)
            dp_h1_next(&h);
        else if (used == 0)
            break;
    }
    return 0;
}
