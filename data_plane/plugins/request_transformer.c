/* request-transformer (PRIORITY 801), Kong's kong/plugins/request-transformer/access.lua: in
 * the access phase, for headers and the query string, in Kong's order: remove, rename
 * ("old:new", only when old is present), replace ("name:value", only when present), add (only
 * when absent), append (always, as another value); then replace.uri as the upstream path.
 * Values are literal (Kong's $(...) Lua templates are not supported). Query parameters keep
 * their order; new ones are appended percent-encoded. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_plane/plugins/plugin.h"
#include "proto/log.h"

#define MAX_PARAMS 128 /* query parameters handled; more pass untransformed */

typedef struct {
    char *name, *value; /* value NULL for remove */
} pair;

typedef struct {
    pair *items;
    size_t n;
} pairs;

enum { A_REMOVE, A_RENAME, A_REPLACE, A_ADD, A_APPEND, A__N };
static const char *const ACTIONS[A__N] = {"remove", "rename", "replace", "add", "append"};

typedef struct {
    pairs headers[A__N], query[A__N];
    char *uri; /* replace.uri */
} rt_conf;

static void pairs_free(pairs *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->items[i].name);
        free(p->items[i].value);
    }
    free(p->items);
}

static void rt_free(void *state)
{
    rt_conf *c = state;
    if (!c)
        return;
    for (int a = 0; a < A__N; a++) {
        pairs_free(&c->headers[a]);
        pairs_free(&c->query[a]);
    }
    free(c->uri);
    free(c);
}

/* "name:value" (or a bare name for remove) from config[action][field]. */
static int parse_list(const json_t *config, int action, const char *field, pairs *out)
{
    const json_t *arr = json_object_get(json_object_get(config, ACTIONS[action]), field);
    size_t n = json_array_size(arr), i;
    out->items = calloc(n ? n : 1, sizeof(pair));
    if (!out->items)
        return -1;
    const json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (!s)
            continue;
        const char *colon = action == A_REMOVE ? NULL : strchr(s, ':');
        pair *p = &out->items[out->n];
        p->name = colon ? strndup(s, (size_t)(colon - s)) : strdup(s);
        p->value = colon ? strdup(colon + 1) : NULL;
        if (!p->name || (colon && !p->value)) {
            free(p->name);
            free(p->value);
            return -1;
        }
        out->n++;
    }
    return 0;
}

static int rt_init(const json_t *config, const char *id, void *shared, void **state, char *err,
                   size_t errlen)
{
    rt_conf *c = calloc(1, sizeof(*c));
    if (!c)
        goto oom;
    for (int a = 0; a < A__N; a++)
        if (parse_list(config, a, "headers", &c->headers[a]) != 0 ||
            parse_list(config, a, "querystring", &c->query[a]) != 0)
            goto oom;
    const char *uri = json_string_value(json_object_get(json_object_get(config, "replace"), "uri"));
    if (uri && !(c->uri = strdup(uri)))
        goto oom;
    *state = c;
    return 0;
oom:
    rt_free(c);
    snprintf(err, errlen, "request-transformer: out of memory");
    return -1;
}

/* --- headers --- */

static void transform_headers(const rt_conf *c, dp_plugin_req *req)
{
    for (size_t i = 0; i < c->headers[A_REMOVE].n; i++)
        dp_plugin_up_header_remove(req, c->headers[A_REMOVE].items[i].name);
    for (size_t i = 0; i < c->headers[A_RENAME].n; i++) {
        const pair *p = &c->headers[A_RENAME].items[i];
        const dp_slice *v = dp_plugin_req_header(req, p->name);
        if (!v)
            continue;
        dp_slice keep = *v; /* arena or connection bytes: stay valid after the edits */
        dp_plugin_up_header_remove(req, p->name);
        dp_plugin_up_header_set(req, p->value, keep);
    }
    for (size_t i = 0; i < c->headers[A_REPLACE].n; i++) {
        const pair *p = &c->headers[A_REPLACE].items[i];
        if (dp_plugin_req_header(req, p->name))
            dp_plugin_up_header_set(req, p->name, dp_slice_cstr(p->value));
    }
    for (size_t i = 0; i < c->headers[A_ADD].n; i++) {
        const pair *p = &c->headers[A_ADD].items[i];
        if (!dp_plugin_req_header(req, p->name))
            dp_plugin_up_header_set(req, p->name, dp_slice_cstr(p->value));
    }
    for (size_t i = 0; i < c->headers[A_APPEND].n; i++) {
        const pair *p = &c->headers[A_APPEND].items[i];
        dp_plugin_up_header_add(req, p->name, dp_slice_cstr(p->value));
    }
}

/* --- query string --- */

typedef struct {
    dp_slice key, value; /* raw (encoded) bytes; value.p NULL: "key" without '=' */
    char *dkey;          /* decoded key, for comparisons */
} qparam;

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static char *url_decode(dp_arena *a, dp_slice s)
{
    char *o = dp_arena_alloc(a, s.len + 1);
    if (!o)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] == '%' && i + 2 < s.len && hexval(s.p[i + 1]) >= 0 && hexval(s.p[i + 2]) >= 0) {
            o[n++] = (char)(hexval(s.p[i + 1]) * 16 + hexval(s.p[i + 2]));
            i += 2;
        } else {
            o[n++] = s.p[i] == '+' ? ' ' : s.p[i];
        }
    }
    o[n] = 0;
    return o;
}

static dp_slice url_encode(dp_arena *a, const char *s)
{
    static const char hx[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *o = dp_arena_alloc(a, 3 * n + 1);
    if (!o)
        return (dp_slice){NULL, 0};
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (isalnum(ch) || strchr("-._~", ch)) {
            o[k++] = (char)ch;
        } else {
            o[k++] = '%';
            o[k++] = hx[ch >> 4];
            o[k++] = hx[ch & 15];
        }
    }
    return (dp_slice){o, k};
}

static void q_remove(qparam *q, size_t *n, const char *key)
{
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (strcmp(q[i].dkey, key) != 0)
            q[k++] = q[i];
    *n = k;
}

static int q_has(const qparam *q, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(q[i].dkey, key) == 0)
            return 1;
    return 0;
}

static int q_push(dp_arena *a, qparam *q, size_t *n, const char *key, dp_slice value)
{
    if (*n >= MAX_PARAMS)
        return -1;
    dp_slice ek = url_encode(a, key);
    char *dk = dp_arena_strndup(a, key, strlen(key));
    if (!ek.p || !dk)
        return -1;
    q[(*n)++] = (qparam){ek, value, dk};
    return 0;
}

static int has_query_work(const rt_conf *c)
{
    for (int a = 0; a < A__N; a++)
        if (c->query[a].n)
            return 1;
    return 0;
}

static void transform_query(const rt_conf *c, dp_plugin_req *req)
{
    dp_arena *a = req->arena;
    qparam *q = dp_arena_alloc(a, MAX_PARAMS * sizeof(qparam));
    if (!q)
        return;
    size_t n = 0;
    dp_slice in = req->query;
    for (size_t i = 0; i < in.len;) {
        const char *amp = memchr(in.p + i, '&', in.len - i);
        size_t end = amp ? (size_t)(amp - in.p) : in.len;
        if (end > i) {
            if (n == MAX_PARAMS) {
                static int warned;
                if (!warned)
                    sl_warn("request-transformer: more than %d query parameters: query string "
                            "passed untransformed",
                            MAX_PARAMS);
                warned = 1;
                return;
            }
            dp_slice piece = {in.p + i, end - i};
            const char *eq = memchr(piece.p, '=', piece.len);
            qparam *p = &q[n++];
            p->key = eq ? (dp_slice){piece.p, (size_t)(eq - piece.p)} : piece;
            p->value = eq ? (dp_slice){eq + 1, piece.len - p->key.len - 1} : (dp_slice){NULL, 0};
            if (!(p->dkey = url_decode(a, p->key)))
                return;
        }
        i = end + 1;
    }
    for (size_t i = 0; i < c->query[A_REMOVE].n; i++)
        q_remove(q, &n, c->query[A_REMOVE].items[i].name);
    for (size_t i = 0; i < c->query[A_RENAME].n; i++) {
        const pair *p = &c->query[A_RENAME].items[i];
        for (size_t k = 0; k < n; k++)
            if (strcmp(q[k].dkey, p->name) == 0) {
                q[k].key = url_encode(a, p->value);
                q[k].dkey = p->value;
            }
    }
    for (size_t i = 0; i < c->query[A_REPLACE].n; i++) {
        const pair *p = &c->query[A_REPLACE].items[i];
        /* in place: the first occurrence takes the value, repeats go */
        size_t k = 0;
        int seen = 0;
        for (size_t j = 0; j < n; j++) {
            if (strcmp(q[j].dkey, p->name) == 0) {
                if (seen++)
                    continue;
                q[j].value = url_encode(a, p->value);
            }
            q[k++] = q[j];
        }
        n = k;
    }
    for (size_t i = 0; i < c->query[A_ADD].n; i++) {
        const pair *p = &c->query[A_ADD].items[i];
        if (!q_has(q, n, p->name))
            q_push(a, q, &n, p->name, url_encode(a, p->value));
    }
    for (size_t i = 0; i < c->query[A_APPEND].n; i++) {
        const pair *p = &c->query[A_APPEND].items[i];
        q_push(a, q, &n, p->name, url_encode(a, p->value));
    }
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += q[i].key.len + q[i].value.len + 2;
    char *o = dp_arena_alloc(a, len + 1);
    if (!o)
        return;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            o[k++] = '&';
        memcpy(o + k, q[i].key.p, q[i].key.len);
        k += q[i].key.len;
        if (q[i].value.p) {
            o[k++] = '=';
            memcpy(o + k, q[i].value.p, q[i].value.len);
            k += q[i].value.len;
        }
    }
    req->up_query = (dp_slice){o, k};
    req->up_query_set = 1;
}

static dp_plugin_result rt_access(void *state, dp_plugin_req *req, void **ctx)
{
    const rt_conf *c = state;
    transform_headers(c, req);
    if (has_query_work(c))
        transform_query(c, req);
    if (c->uri) {
        req->up_path = dp_slice_cstr(c->uri);
        req->up_path_set = 1;
    }
    return DP_PLUGIN_CONTINUE;
}

const dp_plugin dp_plugin_request_transformer = {
    .name = "request-transformer",
    .init = rt_init,
    .free_state = rt_free,
    .access = rt_access,
};
