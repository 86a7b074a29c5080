/* libFuzzer target: cp_admin_body_decode and cp_admin_query_decode on arbitrary bytes.
 * The first byte picks the Content-Type (and whether the rest is also tried as a query). */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control_plane/admin/admin.h"

static const char *const types[] = {
    "application/json",
    "application/json; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=XyZ",
    "multipart/form-data; boundary=\"a b\"",
    "multipart/form-data",
    "text/plain",
    NULL,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *ct = types[data[0] % (sizeof(types) / sizeof(types[0]))];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;

    json_t *out = NULL;
    int form = 0;
    char msg[256];
    int rc = cp_admin_body_decode(ct, body, len, &out, &form, msg, sizeof(msg));
    if (rc == 0) {
        if (!json_is_object(out))
            abort();
        char *s = json_dumps(out, JSON_COMPACT); /* the result must serialize */
        if (!s)
            abort();
        free(s);
        json_decref(out);
    } else if (out || !msg[0] || (rc != 400 && rc != 413 && rc != 415)) {
        abort();
    }

    if (data[0] & 0x80) {
        char *q = malloc(len + 1);
        memcpy(q, body, len);
        q[len] = 0;
        json_t *j = cp_admin_query_decode(q);
        json_decref(j);
        free(q);
    }
    return 0;
}
