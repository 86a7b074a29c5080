/* key-auth (Kong's PRIORITY 1250): finds an API key in a header, the query string or the
 * body (form or JSON), looks it up in the generation's key index and sets the consumer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "proto/sort.h"
#include "data_plane/plugins/plugin.h"

#define MAX_KEY 1024

typedef struct {
    const char *key, *id; /* generation config memory */
    size_t key_len;
    const dp_consumer *consumer;
    int64_t expires; /* seconds since the epoch; 0: never (ttl) */
} ka_cred;

typedef struct {
    ka_cred *creds; /* sorted by key */
    size_t n;
} ka_index;

typedef struct ka_conf ka_conf;
struct ka_conf {
    char **names;
    size_t nnames;
    int hide, in_header, in_query, in_body, preflight;
    char *anonymous;
    char *www_auth;
    const ka_index *ix; /* the generation's keys */
};

static int cred_cmp(const void *a, const void *b)
{
    return strcmp(((const ka_cred *)a)->key, ((const ka_cred *)b)->key);
}

static int ka_gen_init(const json_t *config, const dp_plugin_gen *gen, void **shared, char *err,
                       size_t errlen)
{
    const json_t *arr = json_object_get(config, "keyauth_credentials");
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    ka_index *ix = calloc(1, sizeof(*ix));
    if (!ix || !(ix->creds = calloc(n + 1, sizeof(ka_cred)))) {
        free(ix);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t i;
    const json_t *c;
    json_array_foreach(arr, i, c)
    {
        ka_cred *k = &ix->creds[ix->n];
        k->key = json_string_value(json_object_get(c, "key"));
        k->id = json_string_value(json_object_get(c, "id"));
        k->consumer = dp_plugin_consumer_by_id(
            gen, json_string_value(json_object_get(json_object_get(c, "consumer"), "id")));
        json_int_t ttl = json_integer_value(json_object_get(c, "ttl"));
        json_int_t created = json_integer_value(json_object_get(c, "created_at"));
        k->expires = ttl > 0 ? (int64_t)(created + ttl) : 0;
        if (k->key && k->consumer) {
            k->key_len = strlen(k->key);
            ix->n++;
        }
    }
    sl_sort(ix->creds, ix->n, sizeof(ka_cred), cred_cmp);
    *shared = ix;
    return 0;
}

static void ka_gen_free(void *shared)
{
    ka_index *ix = shared;
    if (ix)
        free(ix->creds);
    free(ix);
}

static void ka_free(void *state)
{
    ka_conf *c = state;
    if (!c)
        return;
    for (size_t i = 0; i < c->nnames; i++)
        free(c->names[i]);
    free(c->names);
    free(c->anonymous);
    free(c->www_auth);
    free(c);
}

static int ka_init(const json_t *config, const char *id, void *shared, void **state, char *err,
                   size_t errlen)
{
    ka_conf *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    *state = c;
    c->ix = shared;
    const json_t *names = json_object_get(config, "key_names");
    size_t n = json_is_array(names) ? json_array_size(names) : 0;
    c->names = calloc(n + 1, sizeof(char *));
    if (!c->names)
        return -1;
    size_t i;
    const json_t *v;
    json_array_foreach(names, i, v)
    {
        if (json_string_value(v) && !(c->names[c->nnames++] = strdup(json_string_value(v))))
            return -1;
    }
    c->hide = json_is_true(json_object_get(config, "hide_credentials"));
    c->in_header = !json_is_false(json_object_get(config, "key_in_header"));
    c->in_query = !json_is_false(json_object_get(config, "key_in_query"));
    c->in_body = json_is_true(json_object_get(config, "key_in_body"));
    c->preflight = !json_is_false(json_object_get(config, "run_on_preflight"));
    const char *anon = json_string_value(json_object_get(config, "anonymous"));
    if (anon && *anon && !(c->anonymous = strdup(anon)))
        return -1;
    const char *realm = json_string_value(json_object_get(config, "realm"));
    char buf[1200];
    if (realm)
        snprintf(buf, sizeof(buf), "Key realm=\"%s\"", realm);
    else
        snprintf(buf, sizeof(buf), "Key");
    if (!(c->www_auth = strdup(buf))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* URL-decodes s into out (at most cap-1 bytes); '+' is a space in form encoding. */
static size_t url_decode(dp_slice s, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len && n + 1 < cap; i++) {
        char ch = s.p[i];
        if (ch == '%' && i + 2 < s.len && hexval(s.p[i + 1]) >= 0 && hexval(s.p[i + 2]) >= 0) {
            ch = (char)(hexval(s.p[i + 1]) * 16 + hexval(s.p[i + 2]));
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        out[n++] = ch;
    }
    out[n] = 0;
    return n;
}

/* Finds name=value in an &-separated list; *where gets the whole pair. */
static int find_param(dp_slice q, const char *name, dp_slice *value, dp_slice *where)
{
    size_t nl = strlen(name);
    const char *p = q.p, *end = q.p + q.len;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        const char *ne = eq ? eq : e;
        char dn[256];
        if ((size_t)(ne - p) < sizeof(dn)) {
            size_t dl = url_decode((dp_slice){p, (size_t)(ne - p)}, dn, sizeof(dn));
            if (dl == nl && memcmp(dn, name, nl) == 0) {
                *value = eq ? (dp_slice){eq + 1, (size_t)(e - eq - 1)} : (dp_slice){"", 0};
                *where = (dp_slice){p, (size_t)(e - p)};
                return 1;
            }
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

/* The query without the pair at `where` (for hide_credentials). */
static dp_slice query_without(dp_plugin_req *req, dp_slice q, dp_slice where)
{
    char *o = dp_arena_alloc(req->arena, q.len + 1);
    if (!o)
        return q;
    size_t before = (size_t)(where.p - q.p), n = 0;
    memcpy(o, q.p, before);
    n = before;
    size_t after = before + where.len;
    if (after < q.len)
        after++; /* its '&' */
    else if (n)
        n--; /* it was last: drop the '&' before it */
    memcpy(o + n, q.p + after, q.len - after);
    n += q.len - after;
    return (dp_slice){o, n};
}

/* A key from a JSON body: a top-level string (or number) member. */
static int json_key(dp_slice body, const char *name, char *out, size_t cap)
{
    json_error_t e;
    json_t *doc = json_loadb(body.p, body.len, 0, &e);
    const json_t *v = json_object_get(doc, name);
    int found = 0;
    if (json_is_string(v) && json_string_length(v) < cap) {
        memcpy(out, json_string_value(v), json_string_length(v) + 1);
        found = 1;
    } else if (json_is_integer(v)) {
        snprintf(out, cap, "%lld", (long long)json_integer_value(v));
        found = 1;
    }
    json_decref(doc);
    return found;
}

/* The key of the request: from a header, a slice of the received bytes; else decoded into
 * arena memory. 0 when none (or too long), -1 when the arena is exhausted. */
static int find_key(ka_conf *c, dp_plugin_req *req, dp_slice *out)
{
    dp_slice q = req->up_query_set ? req->up_query : req->query;
    const size_t cap = MAX_KEY + 1;
    char *key = NULL; /* for decoded keys, allocated on first need */
    for (size_t i = 0; i < c->nnames; i++) {
        const char *name = c->names[i];
        const dp_slice *h = c->in_header ? dp_plugin_req_header(req, name) : NULL;
        if (h && h->len) {
            if (h->len >= cap)
                return 0;
            *out = *h; /* the bytes stay in the connection buffer; the list entry may not */
            if (c->hide)
                dp_plugin_up_header_remove(req, name);
            return 1;
        }
        if (!key && (c->in_query || c->in_body) && !(key = dp_arena_alloc(req->arena, cap)))
            return -1;
        dp_slice v, where;
        if (c->in_query && q.len && find_param(q, name, &v, &where) && v.len) {
            url_decode(v, key, cap);
            *out = dp_slice_cstr(key); /* up to a decoded NUL, like a C string lookup */
            if (c->hide) {
                req->up_query = query_without(req, q, where);
                req->up_query_set = 1;
            }
            return 1;
        }
        if (c->in_body && req->body_complete && req->body.len) {
            const dp_slice *ct = dp_plugin_req_header(req, "content-type");
            if (ct && ct->len >= 16 && strncasecmp(ct->p, "application/json", 16) == 0) {
                if (json_key(req->body, name, key, cap)) {
                    *out = dp_slice_cstr(key);
                    return 1;
                }
            } else if (ct && ct->len >= 33 &&
                       strncasecmp(ct->p, "application/x-www-form-urlencoded", 33) == 0) {
                if (find_param(req->body, name, &v, &where) && v.len) {
                    url_decode(v, key, cap);
                    *out = dp_slice_cstr(key);
                    return 1;
                }
            }
        }
    }
    return 0;
}

/* The credential whose key is k (binary search in strcmp order), or NULL. */
static const ka_cred *cred_find(const ka_index *ix, dp_slice k)
{
    size_t lo = 0, hi = ix->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const ka_cred *x = &ix->creds[mid];
        size_t m = x->key_len < k.len ? x->key_len : k.len;
        int r = m ? memcmp(x->key, k.p, m) : 0;
        if (!r)
            r = x->key_len < k.len ? -1 : x->key_len > k.len;
        if (!r)
            return x;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static dp_plugin_result unauthorized(ka_conf *c, dp_plugin_req *req, const char *msg)
{
    dp_plugin_resp_header_set(req, "WWW-Authenticate", dp_slice_cstr(c->www_auth));
    return dp_plugin_respond(req, 401, msg);
}

static dp_plugin_result ka_access(void *state, dp_plugin_req *req, void **ctx)
{
    ka_conf *c = state;
    if (!c->preflight && dp_slice_ieq(req->method, "OPTIONS"))
        return DP_PLUGIN_CONTINUE;
    /* several auth plugins with anonymous: the first that identifies someone wins */
    if (req->consumer && !req->anonymous && c->anonymous)
        return DP_PLUGIN_CONTINUE;
    const char *msg = "No API key found in request";
    dp_slice key;
    int found = find_key(c, req, &key);
    if (found < 0)
        return dp_plugin_respond(req, 500, "An unexpected error occurred");
    if (found) {
        const ka_cred *k = cred_find(c->ix, key);
        if (k && (!k->expires || time(NULL) < k->expires)) {
            dp_plugin_authenticate(req, k->consumer, k->id);
            return DP_PLUGIN_CONTINUE;
        }
        msg = "Unauthorized";
    }
    if (c->anonymous) {
        if (dp_plugin_authenticate_anonymous(req, c->anonymous) != 0)
            return dp_plugin_respond(req, 500, "An unexpected error occurred");
        return DP_PLUGIN_CONTINUE;
    }
    return unauthorized(c, req, msg);
}

const dp_plugin dp_plugin_key_auth = {
    .name = "key-auth",
    .gen_init = ka_gen_init,
    .gen_free = ka_gen_free,
    .init = ka_init,
    .free_state = ka_free,
    .access = ka_access,
};
