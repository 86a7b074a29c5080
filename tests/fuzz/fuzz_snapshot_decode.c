/* libFuzzer target: the data plane's snapshot decoder on arbitrary bytes.
 *
 * Each input is tried twice: as an envelope exactly as received (size, envelope and inflate
 * checks), and as canonical bytes wrapped in a correct envelope (compressed, with the config
 * hash of the rows as they are: sl_snapshot_payload_hash), so the
 * fuzzer also reaches the msgpack reader, schema validation and reference checks behind the
 * hash, which random mutations of an envelope almost never pass.
 * Whatever the input, decoding must return 0 or -1 without crashing, leaking or reading out
 * of bounds; on success the result must re-encode and peek must agree with the decoder.
 * Every envelope is also decoded while being inflated (as large payloads are), which must
 * give the very same result or error.
 * Seeds: tests/fuzz/corpus/snapshot/ (valid envelopes, broken ones, canonical payloads). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "proto/compress.h"
#include "proto/digest.h"
#include "proto/msgpack_json.h"
#include "proto/snapshot.h"

static void check_decode(const uint8_t *data, size_t size)
{
    json_t *config = NULL, *errors = NULL;
    int64_t version = 0;
    char hash[SL_SNAPSHOT_HASH_HEX], err[512];
    /* A small decompressed bound keeps each run fast; the code path is the same. */
    sl_snapshot_limits lim = {.max_canonical = 8u << 20};
    int rc = sl_snapshot_decode_limits(data, size, &lim, &config, &version, hash, &errors, err,
                                       sizeof(err));

    /* Read while inflating (what large payloads get), the same bytes must give the same
     * answer: the same error, or the same config at the same version and hash. */
    json_t *streamed = NULL, *serrors = NULL;
    int64_t sversion = 0;
    char shash[SL_SNAPSHOT_HASH_HEX], serr[512];
    sl_snapshot_limits slim = {.max_canonical = lim.max_canonical, .stream_min = 1};
    int src = sl_snapshot_decode_limits(data, size, &slim, &streamed, &sversion, shash, &serrors,
                                        serr, sizeof(serr));
    if (src != rc || (rc != 0 && strcmp(serr, err) != 0) || !serrors != !errors ||
        (errors && !json_equal(serrors, errors)) ||
        (rc == 0 &&
         (sversion != version || strcmp(shash, hash) != 0 || !json_equal(streamed, config))))
        abort();
    json_decref(streamed);
    json_decref(serrors);

    if (rc == 0) {
        int64_t pv;
        char ph[SL_SNAPSHOT_HASH_HEX];
        if (sl_snapshot_peek(data, size, &pv, ph) != 0 || pv != version || strcmp(ph, hash) != 0)
            abort();
        sl_snapshot s;
        if (sl_snapshot_encode(config, version, &s, err, sizeof(err)) != 0)
            abort();
        sl_snapshot_free(&s);
        json_decref(config);
    } else if (config) {
        abort(); /* a failure must not hand back a config */
    }
    json_decref(errors);
}

/* Wraps canonical bytes in a valid envelope at the version the payload claims (1 if none
 * can be read cheaply: then the decoder reports the mismatch, which is fine too). */
static void check_as_canonical(const uint8_t *data, size_t size)
{
    char hash[SL_SHA256_HEX], err[128];
    unsigned char *z;
    size_t zlen;
    if (sl_snapshot_payload_hash(data, size, hash) && sl_sha256_hex(data, size, hash))
        return;
    if (sl_deflate(data, size, &z, &zlen, err, sizeof(err)))
        return;
    int64_t version = 1;
    sl_mp_reader r;
    uint32_t n;
    sl_mp_reader_init(&r, data, size);
    if (sl_mp_read_map(&r, &n, err, sizeof(err)) == 0) {
        for (uint32_t i = 0; i < n; i++) {
            const char *k;
            uint32_t klen;
            if (sl_mp_read_str(&r, &k, &klen, err, sizeof(err)))
                break;
            if (klen == 7 && memcmp(k, "version", 7) == 0) {
                sl_mp_read_int(&r, &version, err, sizeof(err));
                break;
            }
            if (sl_mp_skip(&r, err, sizeof(err)))
                break;
        }
    }
    if (version < 0)
        version = 1;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    sl_mp_pack_cstr(&pk, "type");
    sl_mp_pack_cstr(&pk, "snapshot");
    sl_mp_pack_cstr(&pk, "format");
    msgpack_pack_int64(&pk, SL_SNAPSHOT_FORMAT);
    sl_mp_pack_cstr(&pk, "version");
    msgpack_pack_int64(&pk, version);
    sl_mp_pack_cstr(&pk, "hash");
    sl_mp_pack_strn(&pk, hash, 64);
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
