#define PCRE2_CODE_UNIT_WIDTH 8
#include "data_plane/router/router.h"

#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { HOST_EXACT, HOST_SUFFIX /* "*.x" */, HOST_PREFIX /* "x.*" */ };

typedef struct {
    char *name; /* lower case; for wildcards without the "*" */
    size_t len;
    int kind;
    int port; /* 0: any */
} host_pat;

typedef struct {
    char *value; /* lower case */
    size_t len;
    pcre2_code *re; /* "~*" values */
} hdr_val;

typedef struct {
    char *name; /* lower case */
    hdr_val *vals;
    size_t nvals;
} hdr_rule;

typedef struct {
    char **methods;
    size_t nmethods;
    host_pat *hosts;
    size_t nhosts;
    hdr_rule *hdrs;
    size_t nhdrs;
    char **snis;
    size_t nsnis;
    const char *id;
    int index;
} rroute;

typedef struct {
    rroute *route;
    char *prefix; /* plain path; NULL when regex or none */
    size_t prefix_len;
    pcre2_code *re;
    uint64_t priority;
} matcher;

struct dp_router {
    rroute *routes;
    size_t nroutes;
    matcher *m;
    size_t nm;
};

static char *lower_dup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
    d[n] = 0;
    return d;
}

static pcre2_code *compile(const char *pat, uint32_t opts, char *err, size_t errlen)
{
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, opts, &ec, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(ec, msg, sizeof(msg));
        snprintf(err, errlen, "invalid regex '%s' at %zu: %s", pat, (size_t)off, (char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* best effort: falls back to the interpreter */
    return re;
}

static size_t arr_len(const json_t *a)
{
    return json_is_array(a) ? json_array_size(a) : 0;
}

static int build_route(rroute *r, const json_t *j, char *err, size_t errlen)
{
    const json_t *v;
    size_t i;
    const json_t *methods = json_object_get(j, "methods");
    r->nmethods = arr_len(methods);
    r->methods = calloc(r->nmethods + 1, sizeof(char *));
    json_array_foreach(methods, i, v) r->methods[i] =
        strdup(json_string_value(v) ? json_string_value(v) : "");

    const json_t *hosts = json_object_get(j, "hosts");
    r->nhosts = arr_len(hosts);
    r->hosts = calloc(r->nhosts + 1, sizeof(host_pat));
    json_array_foreach(hosts, i, v)
    {
        const char *h = json_string_value(v) ? json_string_value(v) : "";
        host_pat *hp = &r->hosts[i];
        size_t n = strlen(h);
        const char *colon = strrchr(h, ':');
        if (colon && h[0] != '[') {
            hp->port = atoi(colon + 1);
            n = (size_t)(colon - h);
        }
        if (n >= 2 && h[0] == '*' && h[1] == '.') {
            hp->kind = HOST_SUFFIX; /* keep ".x" so "x" itself doesn't match */
            hp->name = lower_dup(h + 1, n - 1);
        } else if (n >= 2 && h[n - 1] == '*' && h[n - 2] == '.') {
            hp->kind = HOST_PREFIX; /* keep "x." */
            hp->name = lower_dup(h, n - 1);
        } else {
            hp->kind = HOST_EXACT;
            hp->name = lower_dup(h, n);
        }
        hp->len = strlen(hp->name);
    }

    const json_t *hdrs = json_object_get(j, "headers");
    r->nhdrs = json_is_object(hdrs) ? json_object_size(hdrs) : 0;
    r->hdrs = calloc(r->nhdrs + 1, sizeof(hdr_rule));
    if (r->nhdrs) {
        const char *k;
        json_t *vals;
        size_t hi = 0;
        json_object_foreach((json_t *)hdrs, k, vals)
        {
            hdr_rule *hr = &r->hdrs[hi++];
            hr->name = lower_dup(k, strlen(k));
            hr->nvals = arr_len(vals);
            hr->vals = calloc(hr->nvals + 1, sizeof(hdr_val));
            json_array_foreach(vals, i, v)
            {
                const char *s = json_string_value(v) ? json_string_value(v) : "";
                if (strncmp(s, "~*", 2) == 0) {
                    hr->vals[i].re = compile(s + 2, PCRE2_CASELESS, err, errlen);
                    if (!hr->vals[i].re)
                        return -1;
                } else {
                    hr->vals[i].value = lower_dup(s, strlen(s));
                    hr->vals[i].len = strlen(s);
                }
            }
        }
    }

    const json_t *snis = json_object_get(j, "snis");
    r->nsnis = arr_len(snis);
    r->snis = calloc(r->nsnis + 1, sizeof(char *));
    json_array_foreach(snis, i, v)
    {
        const char *s = json_string_value(v) ? json_string_value(v) : "";
        size_t n = strlen(s);
        if (n && s[n - 1] == '.') /* Kong strips a trailing dot */
            n--;
        r->snis[i] = lower_dup(s, n);
    }
    const char *id = json_string_value(json_object_get(j, "id"));
    r->id = id ? id : "";
    return 0;
}

/* Kong's priority bits (kong/router/transform.lua get_priority). */
static uint64_t priority(const rroute *r, int has_path, int regex, size_t plain_len,
                         long long regex_priority)
{
    uint64_t weight =
        (r->nmethods > 0) + (r->nhosts > 0) + (r->nhdrs > 0) + (r->nsnis > 0) + (has_path != 0);
    uint64_t p = weight << 61;
    int plain_hosts = r->nhosts > 0;
    for (size_t i = 0; i < r->nhosts; i++)
        if (r->hosts[i].kind != HOST_EXACT)
            plain_hosts = 0;
    if (plain_hosts)
        p |= 1ull << 60;
    p |= (uint64_t)(r->nhdrs > 255 ? 255 : r->nhdrs) << 52;
    if (regex) {
        if (regex_priority < 0)
            regex_priority = 0;
        p |= 1ull << 51;
        p |= ((uint64_t)regex_priority & 0xffffffffull) << 19;
    } else {
        p |= plain_len > 0x7ffff ? 0x7ffff : plain_len;
    }
    return p;
}

static int cmp_matcher(const void *a, const void *b)
{
    const matcher *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    int c = strcmp(y->route->id, x->route->id); /* ties: higher id first, like atc-router */
    if (c)
        return c;
    return x->route->index - y->route->index;
}

dp_router *dp_router_build(const json_t *routes, const unsigned char *skip, char *err,
                           size_t errlen)
{
    dp_router *r = calloc(1, sizeof(*r));
    size_t n = arr_len(routes), total = 0;
    r->routes = calloc(n + 1, sizeof(rroute));
    for (size_t i = 0; i < n; i++)
        total += arr_len(json_object_get(json_array_get(routes, i), "paths")) + 1;
    r->m = calloc(total + 1, sizeof(matcher));
    for (size_t i = 0; i < n; i++) {
        if (skip && skip[i])
            continue;
        const json_t *j = json_array_get(routes, i);
        rroute *rr = &r->routes[r->nroutes++];
        rr->index = (int)i;
        if (build_route(rr, j, err, errlen) != 0) {
            dp_router_free(r);
            return NULL;
        }
        long long rp = json_integer_value(json_object_get(j, "regex_priority"));
        const json_t *paths = json_object_get(j, "paths");
        size_t np = arr_len(paths);
        if (np == 0) {
            matcher *m = &r->m[r->nm++];
            m->route = rr;
            m->priority = priority(rr, 0, 0, 0, 0);
        }
        for (size_t k = 0; k < np; k++) {
            const char *p = json_string_value(json_array_get(paths, k));
            if (!p)
                continue;
            matcher *m = &r->m[r->nm++];
            m->route = rr;
            if (p[0] == '~') {
                m->re = compile(p + 1, PCRE2_ANCHORED, err, errlen);
                if (!m->re) {
                    dp_router_free(r);
                    return NULL;
                }
                m->priority = priority(rr, 1, 1, 0, rp);
            } else {
                m->prefix = strdup(p);
                m->prefix_len = strlen(p);
                m->priority = priority(rr, 1, 0, m->prefix_len, 0);
            }
        }
    }
    qsort(r->m, r->nm, sizeof(matcher), cmp_matcher);
    return r;
}

static int host_match(const rroute *r, dp_slice host, int port)
{
    for (size_t i = 0; i < r->nhosts; i++) {
        const host_pat *h = &r->hosts[i];
        if (h->port && h->port != port)
            continue;
        if (h->kind == HOST_EXACT) {
            if (host.len == h->len && strncasecmp(host.p, h->name, h->len) == 0)
                return 1;
        } else if (host.len > h->len) {
            const char *s = h->kind == HOST_SUFFIX ? host.p + host.len - h->len : host.p;
            if (strncasecmp(s, h->name, h->len) == 0)
                return 1;
        }
    }
    return 0;
}

static int sni_match(const rroute *r, dp_slice sni)
{
    for (size_t i = 0; i < r->nsnis; i++)
        if (dp_slice_ieq(sni, r->snis[i]))
            return 1;
    return 0;
}

static _Thread_local pcre2_match_data *md;

void dp_router_thread_done(void)
{
    pcre2_match_data_free(md);
    md = NULL;
}

static pcre2_match_data *match_data(void)
{
    if (!md)
        md = pcre2_match_data_create(16, NULL);
    return md;
}

static int re_match(const pcre2_code *re, dp_slice s, size_t *end)
{
    pcre2_match_data *mdata = match_data();
    if (!mdata)
        return 0;
    int rc = pcre2_match(re, (PCRE2_SPTR)(s.p ? s.p : ""), s.len, 0, 0, mdata, NULL);
    if (rc < 0)
        return 0;
    if (end)
        *end = pcre2_get_ovector_pointer(mdata)[1];
    return 1;
}

static int header_match(const rroute *r, const dp_router_input *in)
{
    for (size_t k = 0; k < r->nhdrs; k++) {
        const hdr_rule *hr = &r->hdrs[k];
        int ok = 0;
        for (size_t i = 0; i < in->nheaders && !ok; i++) {
            dp_slice n = in->headers[i].name;
            if (!dp_slice_ieq(n, hr->name))
                continue;
            for (size_t v = 0; v < hr->nvals && !ok; v++) {
                const hdr_val *hv = &hr->vals[v];
                if (hv->re)
                    ok = re_match(hv->re, in->headers[i].value, NULL);
                else
                    ok = dp_slice_ieq(in->headers[i].value, hv->value);
            }
        }
        if (!ok)
            return 0;
    }
    return 1;
}

int dp_router_find(const dp_router *r, const dp_router_input *in, dp_router_match *out)
{
    for (size_t i = 0; i < r->nm; i++) {
        const matcher *m = &r->m[i];
        const rroute *rr = m->route;
        size_t plen = 0;
        if (m->prefix) {
            if (in->path.len < m->prefix_len || memcmp(in->path.p, m->prefix, m->prefix_len))
                continue;
            plen = m->prefix_len;
        } else if (m->re) {
            if (!re_match(m->re, in->path, &plen))
                continue;
        }
        if (rr->nmethods) {
            size_t k = 0;
            while (k < rr->nmethods && !dp_slice_eq(in->method, dp_slice_cstr(rr->methods[k])))
                k++;
            if (k == rr->nmethods)
                continue;
        }
        if (rr->nhosts && !host_match(rr, in->host, in->port))
            continue;
        if (rr->nhdrs && !header_match(rr, in))
            continue;
        if (rr->nsnis && in->https && !sni_match(rr, in->sni))
            continue;
        out->route = rr->index;
        out->prefix_len = plen;
        return 0;
    }
    return -1;
}

void dp_router_free(dp_router *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nroutes; i++) {
        rroute *rr = &r->routes[i];
        for (size_t k = 0; k < rr->nmethods; k++)
            free(rr->methods[k]);
        free(rr->methods);
        for (size_t k = 0; k < rr->nhosts; k++)
            free(rr->hosts[k].name);
        free(rr->hosts);
        for (size_t k = 0; k < rr->nhdrs; k++) {
            for (size_t v = 0; v < rr->hdrs[k].nvals; v++) {
                free(rr->hdrs[k].vals[v].value);
                pcre2_code_free(rr->hdrs[k].vals[v].re);
            }
            free(rr->hdrs[k].vals);
            free(rr->hdrs[k].name);
        }
        free(rr->hdrs);
        for (size_t k = 0; k < rr->nsnis; k++)
            free(rr->snis[k]);
        free(rr->snis);
    }
    for (size_t i = 0; i < r->nm; i++) {
        free(r->m[i].prefix);
        pcre2_code_free(r->m[i].re);
    }
    free(r->m);
    free(r->routes);
    free(r);
}
