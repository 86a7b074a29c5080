/* response-transformer (PRIORITY 800), Kong's kong/plugins/response-transformer: response
 * headers in header_filter, then top-level keys of a JSON object body in body_filter, each in
 * Kong's order remove, rename, replace (only present keys), add (only absent ones), append.
 * json_types[i] types the i-th value of the same action ("boolean": "true" is true, "number",
 * "string" (the default)). Only application/json bodies up to DP_RT_MAX_BODY are rewritten:
 * they are held back in the request arena and sent, re-serialized, at the end, framed as
 * chunked because the length changes (the framework drops Content-Length). A body that turns
 * out larger, or is not a JSON object, goes out unchanged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data_plane/plugins/plugin.h"
#include "data_plane/plugins/transform_actions.h"
#include "proto/log.h"

#define DP_RT_MAX_BODY (1024 * 1024)

typedef struct {
    dp_tx_list headers[DP_TX_ACTIONS], json[DP_TX_ACTIONS];
    int json_work;
} rsp_conf;

typedef struct {
    char *buf;
    size_t len, cap;
    int passthrough; /* gave up: bytes go out as they come */
} body_ctx;

static void rsp_free(void *state)
{
    rsp_conf *c = state;
    if (!c)
        return;
    for (int a = 0; a < DP_TX_ACTIONS; a++) {
        dp_tx_free(&c->headers[a]);
        dp_tx_free(&c->json[a]);
    }
    free(c);
}

static int rsp_init(const json_t *config, const char *id, void *shared, void **state, char *err,
                    size_t errlen)
{
    rsp_conf *c = calloc(1, sizeof(*c));
    if (!c)
        goto oom;
    for (int a = 0; a < DP_TX_ACTIONS; a++) {
        if (dp_tx_parse(config, a, "headers", NULL, &c->headers[a]) != 0 ||
            dp_tx_parse(config, a, "json", "json_types", &c->json[a]) != 0)
            goto oom;
        c->json_work |= c->json[a].n > 0;
    }
    *state = c;
    return 0;
oom:
    rsp_free(c);
    snprintf(err, errlen, "response-transformer: out of memory");
    return -1;
}

static int is_json(const dp_slice *ct)
{
    if (!ct)
        return 0;
    static const char want[] = "application/json";
    for (size_t i = 0; i + sizeof(want) - 1 <= ct->len; i++)
        if (strncasecmp(ct->p + i, want, sizeof(want) - 1) == 0)
            return 1;
    return 0;
}

static void rsp_header_filter(void *state, dp_plugin_req *req, void **ctx)
{
    const rsp_conf *c = state;
    dp_tx_apply_headers(c->headers, &dp_tx_response_headers, req);

    if (!c->json_work || req->status == 204 || req->status == 304 ||
        dp_slice_ieq(req->method, "HEAD") || !is_json(dp_plugin_resp_header(req, "Content-Type")))
        return;
    const dp_slice *cl = dp_plugin_resp_header(req, "Content-Length");
    size_t want = 16384;
    if (cl) {
        char tmp[24];
        size_t n = cl->len < sizeof(tmp) - 1 ? cl->len : sizeof(tmp) - 1;
        memcpy(tmp, cl->p, n);
        tmp[n] = 0;
        unsigned long long len = strtoull(tmp, NULL, 10);
        if (len > DP_RT_MAX_BODY) {
            static int warned;
            if (!warned)
                sl_warn("response-transformer: JSON body of %llu bytes is over the %d byte "
                        "bound: sent untransformed",
                        len, DP_RT_MAX_BODY);
            warned = 1;
            return;
        }
        want = (size_t)len + 1;
    }
    body_ctx *b = dp_arena_alloc(req->arena, sizeof(*b));
    if (!b)
        return;
    memset(b, 0, sizeof(*b));
    b->cap = want;
    b->buf = dp_arena_alloc(req->arena, want);
    if (!b->buf)
        return;
    *ctx = b;
    req->resp_body_changed = 1;
}

/* Kong's cast_value. NULL when out of memory. */
static json_t *typed(const dp_tx_item *it)
{
    switch (it->type) {
    case DP_TX_BOOLEAN:
        return json_boolean(strcmp(it->value, "true") == 0);
    case DP_TX_NUMBER: {
        char *end;
        double d = strtod(it->value, &end);
        if (end == it->value || *end)
            return json_null(); /* Kong's tonumber gives nil */
        if (d == (double)(json_int_t)d && !strpbrk(it->value, ".eE"))
            return json_integer((json_int_t)d);
        return json_real(d);
    }
    default:
        return json_string(it->value);
    }
}

/* Kong's append_value: a string becomes [old, new], an array grows, anything else is
 * replaced by [new]. */
static void append(json_t *obj, const dp_tx_item *it)
{
    json_t *cur = json_object_get(obj, it->name);
    json_t *v = typed(it);
    if (!v)
        return;
    if (json_is_array(cur)) {
        json_array_append_new(cur, v);
    } else {
        json_t *arr = json_array();
        if (json_is_string(cur))
            json_array_append(arr, cur);
        json_array_append_new(arr, v);
        json_object_set_new(obj, it->name, arr);
    }
}

/* The transformed body in the arena, or NULL to send the original. */
static char *transform(const rsp_conf *c, dp_plugin_req *req, const char *body, size_t len,
                       size_t *outlen)
{
    json_t *o = json_loadb(body, len, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    const dp_tx_list *j = c->json;
    for (size_t i = 0; i < j[DP_TX_REMOVE].n; i++)
        json_object_del(o, j[DP_TX_REMOVE].items[i].name);
    for (size_t i = 0; i < j[DP_TX_RENAME].n; i++) {
        const dp_tx_item *it = &j[DP_TX_RENAME].items[i];
        json_t *v = json_object_get(o, it->name);
        if (v) {
            json_object_set(o, it->value, v);
            json_object_del(o, it->name);
        }
    }
    for (size_t i = 0; i < j[DP_TX_REPLACE].n; i++) {
        const dp_tx_item *it = &j[DP_TX_REPLACE].items[i];
        if (json_object_get(o, it->name))
            json_object_set_new(o, it->name, typed(it));
    }
    for (size_t i = 0; i < j[DP_TX_ADD].n; i++) {
        const dp_tx_item *it = &j[DP_TX_ADD].items[i];
        if (!json_object_get(o, it->name))
            json_object_set_new(o, it->name, typed(it));
    }
    for (size_t i = 0; i < j[DP_TX_APPEND].n; i++)
        append(o, &j[DP_TX_APPEND].items[i]);
    size_t n = json_dumpb(o, NULL, 0, JSON_COMPACT);
    char *out = n ? dp_arena_alloc(req->arena, n) : NULL;
    if (out)
        json_dumpb(o, out, n, JSON_COMPACT);
    json_decref(o);
    *outlen = n;
    return out;
}

static void rsp_body_filter(void *state, dp_plugin_req *req, void **ctx, dp_slice *chunk, int eof)
{
    body_ctx *b = *ctx;
    if (!b || b->passthrough)
        return;
    if (b->len + chunk->len > DP_RT_MAX_BODY) {
        /* over the bound: what was held goes out now, then everything as it comes */
        static int warned;
        if (!warned)
            sl_warn("response-transformer: JSON body over the %d byte bound: sent "
                    "untransformed",
                    DP_RT_MAX_BODY);
        warned = 1;
        b->passthrough = 1;
        char *all = dp_arena_alloc(req->arena, b->len + chunk->len);
        if (all) {
            memcpy(all, b->buf, b->len);
            memcpy(all + b->len, chunk->p, chunk->len);
            *chunk = (dp_slice){all, b->len + chunk->len};
        }
        return;
    }
    if (b->len + chunk->len > b->cap) {
        size_t cap = b->cap * 2;
        while (cap < b->len + chunk->len)
            cap *= 2;
        char *nb = dp_arena_alloc(req->arena, cap);
        if (!nb) {
            b->passthrough = 1;
            char *all = dp_arena_alloc(req->arena, b->len + chunk->len);
            if (all) {
                memcpy(all, b->buf, b->len);
                memcpy(all + b->len, chunk->p, chunk->len);
                *chunk = (dp_slice){all, b->len + chunk->len};
            }
            return;
        }
        memcpy(nb, b->buf, b->len);
        b->buf = nb;
        b->cap = cap;
    }
    if (chunk->len)
        memcpy(b->buf + b->len, chunk->p, chunk->len);
    b->len += chunk->len;
    if (!eof) {
        *chunk = (dp_slice){b->buf, 0}; /* held back */
        return;
    }
    size_t n;
    char *out = transform(state, req, b->buf, b->len, &n);
    *chunk = out ? (dp_slice){out, n} : (dp_slice){b->buf, b->len};
}

const dp_plugin dp_plugin_response_transformer = {
    .name = "response-transformer",
    .init = rsp_init,
    .free_state = rsp_free,
    .header_filter = rsp_header_filter,
    .body_filter = rsp_body_filter,
};
