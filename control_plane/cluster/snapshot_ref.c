#include "control_plane/cluster/snapshot_ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A snapshot or delta is built once per version and sent to every data plane from the same
 * bytes; each connection that is sending it holds a reference, so a newer publish can replace
 * it while older sends finish. */

cp_snapshot_ref *cp_snapshot_ref_new(int64_t version, const char *hash, unsigned char *bytes,
                                     size_t len, json_t *plugins_used)
{
    /* Takes ownership of bytes (malloc'd) and of the caller's reference to plugins_used,
     * also on failure, so callers have one path. */
    cp_snapshot_ref *s = calloc(1, sizeof(*s));
    if (!s) {
        free(bytes);
        json_decref(plugins_used);
        return NULL;
    }
    s->refs = 1;
    s->kind = CP_REF_SNAPSHOT;
    s->version = version;
    snprintf(s->hash, sizeof(s->hash), "%s", hash ? hash : "");
    s->bytes = bytes;
    s->len = len;
    s->plugins_used = plugins_used;
    return s;
}

cp_snapshot_ref *cp_delta_ref_new(int64_t base_version, const char *base_hash, int64_t version,
                                  const char *hash, unsigned char *bytes, size_t len,
                                  json_t *plugins_used)
{
    cp_snapshot_ref *s = cp_snapshot_ref_new(version, hash, bytes, len, plugins_used);
    if (!s)
        return NULL;
    s->kind = CP_REF_DELTA;
    s->base_version = base_version;
    snprintf(s->base_hash, sizeof(s->base_hash), "%s", base_hash ? base_hash : "");
    return s;
}

void cp_snapshot_ref_release(cp_snapshot_ref *s)
{
    if (!s || --s->refs > 0)
        return;
    free(s->bytes);
    json_decref(s->plugins_used);
    free(s);
}
