/* libFuzzer target: the data plane's delta decoder (proto/snapshot_delta.h) on arbitrary bytes,
 * as an envelope exactly as received and as canonical delta bytes wrapped in a valid envelope
 * (so mutations reach the row reader and schema validation behind the envelope checks).
 * Whatever the input, decoding returns 0 or -1 without crashing, leaking or reading out of
 * bounds, and a failure hands back nothing; on success peek agrees with the decoder and every
 * validated row can be encoded again. Seeds: tests/fuzz/corpus/delta_decode/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "proto/compress.h"
#include "proto/msgpack_json.h"
#include "proto/snapshot_delta.h"

static void check_decode(const uint8_t *data, size_t size)
{
    sl_delta_decoded d;
    json_t *errors = NULL;
    char err[512];
    sl_snapshot_limits lim = {.max_canonical = 8u << 20, .max_rows = 10000};
    if (sl_delta_decode(data, size, &lim, &d, &errors, err, sizeof(err)) == 0) {
        int64_t bv, v;
        char bh[65], h[65];
        if (sl_delta_peek(data, size, &bv, bh, &v, h) || bv != d.base_version || v != d.version)
            abort();
        for (size_t i = 0; i < d.nupserts; i++) {
            sl_digest again;
            if (d.upserts[i].entity &&
                sl_row_digest(d.upserts[i].entity, d.upserts[i].row, &again, err, sizeof(err)))
                abort(); /* a valid row always encodes */
        }
        sl_delta_decoded_free(&d);
    } else if (d.nupserts || d.ndeletes) {
        abort(); /* a failure hands back nothing */
    }
    json_decref(errors);
}

static void check_as_canonical(const uint8_t *data, size_t size)
{
    static const char h0[] = "0000000000000000000000000000000000000000000000000000000000000000";
    unsigned char *z;
    size_t zlen;
    char err[128];
    if (sl_deflate(data, size, &z, &zlen, err, sizeof(err)))
        return;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 7);
    sl_mp_pack_cstr(&pk, "type");
    sl_mp_pack_cstr(&pk, "delta");
    sl_mp_pack_cstr(&pk, "format");
    msgpack_pack_int64(&pk, SL_SNAPSHOT_FORMAT);
    sl_mp_pack_cstr(&pk, "base_version");
    msgpack_pack_int64(&pk, 1);
    sl_mp_pack_cstr(&pk, "base_hash");
    sl_mp_pack_cstr(&pk, h0);
    sl_mp_pack_cstr(&pk, "version");
    msgpack_pack_int64(&pk, 2);
    sl_mp_pack_cstr(&pk, "hash");
    sl_mp_pack_cstr(&pk, h0);
    sl_mp_pack_cstr(&pk, "payload");
    msgpack_pack_bin(&pk, zlen);
    msgpack_pack_bin_body(&pk, z, zlen);
    free(z);
    check_decode((const uint8_t *)sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_decode(data, size);
    check_as_canonical(data, size);
    return 0;
}
