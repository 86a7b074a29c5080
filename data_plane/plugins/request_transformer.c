/* request-transformer (PRIORITY 801), Kong's kong/plugins/request-transformer/access.lua: in
 * the access phase, in Kong's order: replace.uri as the upstream path, http_method, then
 * headers, body and query string each with remove, rename ("old:new", only when old is
 * present), replace ("name:value", only when present), add (only when absent), append (always,
 * as another value). Values are literal (Kong's $(...) Lua templates are not supported). Query
 * and form parameters keep their order; new ones are appended percent-encoded. A Host header
 * set here becomes the upstream Host (the proxy reads it back).
 *
 * Bodies: application/x-www-form-urlencoded and top-level members of a JSON object (values
 * are strings, like Kong's). wants_body makes the proxy read a Content-Length body up to
 * DP_PLUGIN_MAX_BODY before access; the new body goes up with its own Content-Length. Chunked
 * or larger bodies pass untransformed (a [warn] once), as Kong only rewrites a body it could
 * read; multipart/form-data passes untransformed too (not implemented). http_method GET,
 * HEAD or TRACE moves a form body's parameters into the query string, like Kong. */
#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_plane/plugins/plugin.h"
#include "data_plane/plugins/transform_actions.h"
#include "proto/log.h"

#define MAX_PARAMS 128       /* query parameters handled; more pass untransformed */
#define MAX_BODY_PARAMS 1024 /* form body parameters handled; more pass untransformed */

typedef struct {
    dp_tx_list headers[DP_TX_ACTIONS], query[DP_TX_ACTIONS], body[DP_TX_ACTIONS];
    char *uri;    /* replace.uri */
    char *method; /* http_method */
    int body_work;
} rt_conf;

static void rt_free(void *state)
{
    rt_conf *c = state;
    if (!c)
        return;
    for (int a = 0; a < DP_TX_ACTIONS; a++) {
        dp_tx_free(&c->headers[a]);
        dp_tx_free(&c->query[a]);
        dp_tx_free(&c->body[a]);
    }
    free(c->uri);
    free(c->method);
    free(c);
}

static int rt_init(const json_t *config, const char *id, void *shared, void **state, char *err,
                   size_t errlen)
{
    rt_conf *c = calloc(1, sizeof(*c));
    if (!c)
        goto oom;
    for (int a = 0; a < DP_TX_ACTIONS; a++)
        if (dp_tx_parse(config, a, "headers", NULL, &c->headers[a]) != 0 ||
            dp_tx_parse(config, a, "querystring", NULL, &c->query[a]) != 0 ||
            dp_tx_parse(config, a, "body", NULL, &c->body[a]) != 0)
            goto oom;
    for (int a = 0; a < DP_TX_ACTIONS; a++)
        c->body_work |= c->body[a].n > 0;
    const char *m = json_string_value(json_object_get(config, "http_method"));
    if (m && !(c->method = strdup(m)))
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
    dp_tx_apply_headers(c->headers, &dp_tx_upstream_headers, req);
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

static int q_push(dp_arena *a, qparam *q, size_t *n, size_t max, const char *key, dp_slice value)
{
    if (*n >= max)
        return -1;
    dp_slice ek = url_encode(a, key);
    char *dk = dp_arena_strndup(a, key, strlen(key));
    if (!ek.p || !dk)
        return -1;
    q[(*n)++] = (qparam){ek, value, dk};
    return 0;
}

static int has_work(const dp_tx_list *acts)
{
    for (int a = 0; a < DP_TX_ACTIONS; a++)
        if (acts[a].n)
            return 1;
    return 0;
}

static _Atomic int warned_params, warned_body;

/* Applies acts[DP_TX_ACTIONS] to the form-encoded parameters in `in` (a query string or a form
 * body), at most max of them (room for the added ones included). Returns 0 with *out in the arena,
 * -1 when `in` must pass untransformed. */
static int transform_params(const dp_tx_list *acts, dp_arena *a, dp_slice in, size_t max,
                            const char *what, dp_slice *out)
{
    qparam *q = dp_arena_alloc(a, max * sizeof(qparam));
    if (!q)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < in.len;) {
        const char *amp = memchr(in.p + i, '&', in.len - i);
        size_t end = amp ? (size_t)(amp - in.p) : in.len;
        if (end > i) {
            if (n == max) {
                if (!atomic_exchange(&warned_params, 1))
                    sl_warn("request-transformer: more than %zu %s parameters: passed "
                            "untransformed",
                            max, what);
                return -1;
            }
            dp_slice piece = {in.p + i, end - i};
            const char *eq = memchr(piece.p, '=', piece.len);
            qparam *p = &q[n++];
            p->key = eq ? (dp_slice){piece.p, (size_t)(eq - piece.p)} : piece;
            p->value = eq ? (dp_slice){eq + 1, piece.len - p->key.len - 1} : (dp_slice){NULL, 0};
            if (!(p->dkey = url_decode(a, p->key)))
                return -1;
        }
        i = end + 1;
    }
    for (size_t i = 0; i < acts[DP_TX_REMOVE].n; i++)
        q_remove(q, &n, acts[DP_TX_REMOVE].items[i].name);
    for (size_t i = 0; i < acts[DP_TX_RENAME].n; i++) {
        const dp_tx_item *p = &acts[DP_TX_RENAME].items[i];
        for (size_t k = 0; k < n; k++)
            if (strcmp(q[k].dkey, p->name) == 0) {
                q[k].key = url_encode(a, p->value);
                q[k].dkey = p->value;
            }
    }
    for (size_t i = 0; i < acts[DP_TX_REPLACE].n; i++) {
        const dp_tx_item *p = &acts[DP_TX_REPLACE].items[i];
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
    for (size_t i = 0; i < acts[DP_TX_ADD].n; i++) {
        const dp_tx_item *p = &acts[DP_TX_ADD].items[i];
        if (!q_has(q, n, p->name))
            q_push(a, q, &n, max, p->name, url_encode(a, p->value));
    }
    for (size_t i = 0; i < acts[DP_TX_APPEND].n; i++) {
        const dp_tx_item *p = &acts[DP_TX_APPEND].items[i];
        q_push(a, q, &n, max, p->name, url_encode(a, p->value));
    }
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += q[i].key.len + q[i].value.len + 2;
    char *o = dp_arena_alloc(a, len + 1);
    if (!o)
        return -1;
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
    *out = (dp_slice){o, k};
    return 0;
}

/* The query string going upstream: an earlier step's (http_method) or the client's. */
static dp_slice current_query(const dp_plugin_req *req)
{
    return req->up_query_set ? req->up_query : req->query;
}

static void transform_query(const rt_conf *c, dp_plugin_req *req)
{
    dp_slice out;
    if (transform_params(c->query, req->arena, current_query(req), MAX_PARAMS, "query", &out) ==
        0) {
        req->up_query = out;
        req->up_query_set = 1;
    }
}

/* --- body --- */

typedef enum { BODY_OTHER, BODY_FORM, BODY_JSON, BODY_MULTIPART } body_kind;

/* The media type of the Content-Type going upstream (after the header actions, like Kong). */
static body_kind kind_of(dp_plugin_req *req)
{
    const dp_slice *ct = dp_plugin_req_header(req, "content-type");
    if (!ct)
        return BODY_OTHER;
    size_t n = 0;
    while (n < ct->len && ct->p[n] != ';' && ct->p[n] != ' ')
        n++;
    dp_slice mt = {ct->p, n};
    if (dp_slice_ieq(mt, "application/x-www-form-urlencoded"))
        return BODY_FORM;
    if (dp_slice_ieq(mt, "application/json"))
        return BODY_JSON;
    if (dp_slice_ieq(mt, "multipart/form-data"))
        return BODY_MULTIPART;
    return BODY_OTHER;
}

/* The client's whole body, or 0 when the proxy couldn't read it first (chunked or past
 * DP_PLUGIN_MAX_BODY): Kong leaves such bodies alone too. */
static int whole_body(dp_plugin_req *req, dp_slice *body)
{
    if (!req->body_replaceable) {
        if (!atomic_exchange(&warned_body, 1))
            sl_warn("request-transformer: a %s request body passed untransformed (only "
                    "Content-Length bodies up to %d bytes are rewritten)",
                    req->chunked ? "chunked" : "large", DP_PLUGIN_MAX_BODY);
        return 0;
    }
    *body = req->body_complete ? req->body : (dp_slice){"", 0};
    return 1;
}

/* append: a missing key takes the value, an array grows, a single value becomes a pair. */
static void json_append(json_t *doc, const char *name, const char *value)
{
    json_t *old = json_object_get(doc, name);
    if (!old) {
        json_object_set_new(doc, name, json_string(value));
    } else if (json_is_array(old)) {
        json_array_append_new(old, json_string(value));
    } else {
        json_t *arr = json_array();
        json_array_append(arr, old);
        json_array_append_new(arr, json_string(value));
        json_object_set_new(doc, name, arr);
    }
}

/* Top-level members of a JSON object; a body that isn't one passes unchanged (Kong too). */
static void transform_json(const rt_conf *c, dp_plugin_req *req, dp_slice body)
{
    json_error_t e;
    json_t *doc = body.len ? json_loadb(body.p, body.len, 0, &e) : json_object();
    if (!json_is_object(doc)) {
        json_decref(doc);
        return;
    }
    for (size_t i = 0; i < c->body[DP_TX_REMOVE].n; i++)
        json_object_del(doc, c->body[DP_TX_REMOVE].items[i].name);
    for (size_t i = 0; i < c->body[DP_TX_RENAME].n; i++) {
        const dp_tx_item *p = &c->body[DP_TX_RENAME].items[i];
        json_t *v = json_object_get(doc, p->name);
        if (!v)
            continue;
        json_incref(v);
        json_object_del(doc, p->name);
        json_object_set_new(doc, p->value, v);
    }
    for (size_t i = 0; i < c->body[DP_TX_REPLACE].n; i++) {
        const dp_tx_item *p = &c->body[DP_TX_REPLACE].items[i];
        if (json_object_get(doc, p->name))
            json_object_set_new(doc, p->name, json_string(p->value));
    }
    for (size_t i = 0; i < c->body[DP_TX_ADD].n; i++) {
        const dp_tx_item *p = &c->body[DP_TX_ADD].items[i];
        if (!json_object_get(doc, p->name))
            json_object_set_new(doc, p->name, json_string(p->value));
    }
    for (size_t i = 0; i < c->body[DP_TX_APPEND].n; i++)
        json_append(doc, c->body[DP_TX_APPEND].items[i].name, c->body[DP_TX_APPEND].items[i].value);
    char *out = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (out)
        dp_plugin_up_body(req, dp_slice_cstr(out)); /* copied into the arena */
    free(out);
}

static void transform_body(const rt_conf *c, dp_plugin_req *req)
{
    body_kind k = kind_of(req);
    if (k != BODY_FORM && k != BODY_JSON)
        return; /* multipart/form-data: not rewritten here; other types: Kong leaves them */
    dp_slice body, out;
    if (!whole_body(req, &body))
        return;
    if (k == BODY_JSON)
        transform_json(c, req, body);
    else if (transform_params(c->body, req->arena, body, MAX_BODY_PARAMS, "form body", &out) == 0)
        dp_plugin_up_body(req, out);
}

static int bodyless(const char *method)
{
    return method && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
                      strcmp(method, "TRACE") == 0);
}

/* http_method; GET, HEAD and TRACE carry a form body's parameters in the query instead. */
static void transform_method(const rt_conf *c, dp_plugin_req *req)
{
    dp_plugin_up_method(req, dp_slice_cstr(c->method));
    if (!bodyless(c->method))
        return;
    dp_slice body;
    if (kind_of(req) != BODY_FORM || !whole_body(req, &body) || !body.len)
        return;
    dp_slice q = current_query(req);
    char *o = dp_arena_alloc(req->arena, q.len + body.len + 2);
    if (!o)
        return;
    size_t n = 0;
    if (q.len) {
        memcpy(o, q.p, q.len);
        o[q.len] = '&';
        n = q.len + 1;
    }
    memcpy(o + n, body.p, body.len);
    req->up_query = (dp_slice){o, n + body.len};
    req->up_query_set = 1;
}

static int rt_wants_body(const void *state)
{
    const rt_conf *c = state;
    return c->body_work || bodyless(c->method);
}

static dp_plugin_result rt_access(void *state, dp_plugin_req *req, void **ctx)
{
    const rt_conf *c = state;
    if (c->uri) {
        req->up_path = dp_slice_cstr(c->uri);
        req->up_path_set = 1;
    }
    if (c->method)
        transform_method(c, req);
    transform_headers(c, req);
    if (c->body_work)
        transform_body(c, req);
    if (has_work(c->query))
        transform_query(c, req);
    return DP_PLUGIN_CONTINUE;
}

const dp_plugin dp_plugin_request_transformer = {
    .name = "request-transformer",
    .init = rt_init,
    .free_state = rt_free,
    .access = rt_access,
    .wants_body = rt_wants_body,
};
