/* correlation-id (Kong's PRIORITY 100001): gives each request an id in a header (kept when the
 * client sent one), sent upstream and, with echo_downstream, back to the client. */
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data_plane/plugins/plugin.h"

enum { GEN_UUID, GEN_UUID_COUNTER, GEN_TRACKER };

typedef struct {
    char *header;
    int generator;
    int echo;
} cid_conf;

static int cid_init(const json_t *config, const char *id, void *shared, void **state, char *err,
                    size_t errlen)
{
    cid_conf *c = calloc(1, sizeof(*c));
    const char *h = json_string_value(json_object_get(config, "header_name"));
    const char *g = json_string_value(json_object_get(config, "generator"));
    if (!c || !(c->header = strdup(h && *h ? h : "Kong-Request-ID"))) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->generator = !g || strcmp(g, "uuid#counter") == 0 ? GEN_UUID_COUNTER
                   : strcmp(g, "uuid") == 0             ? GEN_UUID
                                                        : GEN_TRACKER;
    c->echo = json_is_true(json_object_get(config, "echo_downstream"));
    *state = c;
    return 0;
}

static void cid_free(void *state)
{
    cid_conf *c = state;
    if (c)
        free(c->header);
    free(c);
}

/* A random (version 4) UUID in its 36-character text form. */
static void uuid_v4(char out[37])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1) { /* never expected; still unique enough per process */
        static _Atomic uint64_t fallback;
        uint64_t v = atomic_fetch_add(&fallback, 1) ^ (uint64_t)getpid() << 32;
        memcpy(b, &v, 8);
        memcpy(b + 8, &v, 8);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* uuid#counter: like Kong's per-worker uuid plus a counter, one base per worker thread. */
static _Thread_local char worker_uuid[37];
static _Thread_local uint64_t worker_counter;
static _Atomic uint64_t tracker_seq;

static dp_plugin_result cid_access(void *state, dp_plugin_req *req, void **ctx)
{
    cid_conf *c = state;
    const dp_slice *have = dp_plugin_req_header(req, c->header);
    dp_slice *id = dp_arena_alloc(req->arena, sizeof(dp_slice));
    if (!id)
        return DP_PLUGIN_CONTINUE;
    if (have && have->len) {
        *id = *have; /* the client's id is kept */
    } else {
        char *v = dp_arena_alloc(req->arena, 96);
        if (!v)
            return DP_PLUGIN_CONTINUE;
        int n;
        if (c->generator == GEN_UUID) {
            uuid_v4(v);
            n = 36;
        } else if (c->generator == GEN_UUID_COUNTER) {
            if (!worker_uuid[0])
                uuid_v4(worker_uuid);
            n = snprintf(v, 96, "%s#%llu", worker_uuid, (unsigned long long)++worker_counter);
        } else { /* tracker: client address, process, sequence, start time */
            n = snprintf(v, 96, "%.*s-%ld-%llu-%lld", (int)req->client_ip.len, req->client_ip.p,
                         (long)getpid(), (unsigned long long)atomic_fetch_add(&tracker_seq, 1) + 1,
                         (long long)req->started_at_ms);
        }
        *id = (dp_slice){v, (size_t)n};
        dp_plugin_up_header_set(req, c->header, *id);
    }
    *ctx = id;
    return DP_PLUGIN_CONTINUE;
}

static void cid_header_filter(void *state, dp_plugin_req *req, void **ctx)
{
    cid_conf *c = state;
    if (c->echo && *ctx)
        dp_plugin_resp_header_set(req, c->header, *(dp_slice *)*ctx);
}

const dp_plugin dp_plugin_correlation_id = {
    .name = "correlation-id",
    .init = cid_init,
    .free_state = cid_free,
    .access = cid_access,
    .header_filter = cid_header_filter,
};
