/* libFuzzer target: the data plane's snapshot decoder on arbitrary bytes. Whatever the input,
 * sl_snapshot_decode must return 0 or -1 without crashing, leaking or reading out of bounds;
 * on success the result must re-encode (it is a valid config) and peek must agree.
 * Seeds: tests/fuzz/corpus/snapshot/ (valid small snapshots and broken ones). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *config = NULL, *errors = NULL;
    int64_t version = 0;
    char hash[SL_SNAPSHOT_HASH_HEX], err[512];
    /* Small decompressed bound so each run stays fast; the code path is the same. */
    sl_snapshot_limits lim = {.max_canonical = 8u << 20};
    int rc = sl_snapshot_decode_limits(data, size, &lim, &config, &version, hash, &errors, err,
                                       sizeof(err));
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
        abort(); /* failure must not hand back a config */
    }
    json_decref(errors);
    return 0;
}
