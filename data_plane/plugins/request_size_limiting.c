/* request-size-limiting (Kong's PRIORITY 951): refuses bodies over a size, by Content-Length
 * before anything goes upstream, and for chunked bodies by counting as they stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data_plane/plugins/plugin.h"

typedef struct {
    uint64_t limit; /* bytes */
    int require_cl;
} rsl_conf;

static const char too_large[] = "Request size limit exceeded";

static int rsl_init(const json_t *config, const char *id, void *shared, void **state, char *err,
                    size_t errlen)
{
    rsl_conf *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    json_int_t n = json_integer_value(json_object_get(config, "allowed_payload_size"));
    const char *unit = json_string_value(json_object_get(config, "size_unit"));
    uint64_t mult = !unit || strcmp(unit, "megabytes") == 0 ? 1024 * 1024
                    : strcmp(unit, "kilobytes") == 0        ? 1024
                                                            : 1;
    c->limit = n > 0 ? (uint64_t)n * mult : 0;
    c->require_cl = json_is_true(json_object_get(config, "require_content_length"));
    *state = c;
    return 0;
}

/* Kong answers 417 instead of 413 when the client waits for 100-continue. */
static dp_plugin_result refuse(dp_plugin_req *req)
{
    const dp_slice *e = dp_plugin_req_header(req, "expect");
    int expect = e && e->len == 12 && strncasecmp(e->p, "100-continue", 12) == 0;
    return dp_plugin_respond(req, expect ? 417 : 413, too_large);
}

static dp_plugin_result rsl_access(void *state, dp_plugin_req *req, void **ctx)
{
    rsl_conf *c = state;
    if (req->content_length >= 0 && !req->chunked)
        return (uint64_t)req->content_length > c->limit ? refuse(req) : DP_PLUGIN_CONTINUE;
    if (c->require_cl)
        return dp_plugin_respond(req, 411, "A valid Content-Length header is required");
    return DP_PLUGIN_CONTINUE;
}

static dp_plugin_result rsl_body(void *state, dp_plugin_req *req, void **ctx, const char *data,
                                 size_t len)
{
    rsl_conf *c = state;
    return req->body_seen > c->limit ? refuse(req) : DP_PLUGIN_CONTINUE;
}

const dp_plugin dp_plugin_request_size_limiting = {
    .name = "request-size-limiting",
    .init = rsl_init,
    .free_state = free,
    .access = rsl_access,
    .request_body = rsl_body,
};
