/* libFuzzer target for the cluster control messages (proto/cluster_msg.h): whatever bytes a
 * peer sends, decoding must neither crash nor leak, and a decoded message must survive an
 * encode/decode round trip unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/cluster_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    sl_cmsg_type t;
    int64_t version;
    char hash[65];
    (void)sl_cmsg_peek_type(data, size, &t, err, sizeof(err));
    (void)sl_cmsg_peek_snapshot(data, size, &version, hash);

    sl_cluster_msg m;
    if (sl_cmsg_decode(data, size, &m, err, sizeof(err)) != 0)
        return 0;
    if (m.type != SL_CMSG_UNKNOWN) {
        unsigned char *out;
        size_t outlen;
        sl_cluster_msg again;
        /* Everything the decoder accepts, the encoder can write back; a message cut to fit
         * (message field) only gets shorter. */
        if (sl_cmsg_encode(&m, &out, &outlen, err, sizeof(err)) != 0) {
            /* Only size may stop it: float32 values come back as float64, so a message close
             * to the bound can grow past it. */
            if (!strstr(err, "exceeds"))
                abort();
            sl_cmsg_free(&m);
            return 0;
        }
        if (sl_cmsg_decode(out, outlen, &again, err, sizeof(err)) != 0)
            abort();
        if (again.type != m.type || again.config_version != m.config_version ||
            strcmp(again.config_hash, m.config_hash) != 0 ||
            strcmp(again.node_id, m.node_id) != 0 || strcmp(again.reason, m.reason) != 0 ||
            strcmp(again.message, m.message) != 0 ||
            (m.plugins && !json_equal(again.plugins, m.plugins)) ||
            (m.errors && !json_equal(again.errors, m.errors)))
            abort();
        sl_cmsg_free(&again);
        free(out);
    }
    sl_cmsg_free(&m);
    return 0;
}
