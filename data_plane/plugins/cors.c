/* cors (PRIORITY 2000), Kong's kong/plugins/cors/handler.lua: a preflight (OPTIONS with Origin
 * and Access-Control-Request-Method) is answered by the gateway with 200 and the
 * Access-Control-Allow-* headers, unless preflight_continue hands it to the upstream; every
 * other response gets Access-Control-Allow-Origin (and -Credentials, -Expose-Headers) in
 * header_filter. Origins: "*" allows any; an entry with characters outside [A-Za-z0-9.:/-] is
 * a regex that must match the whole normalized request origin, with or without its default
 * port; any other entry is compared as a normalized origin (scheme://host:port). When the
 * allowed origin depends on the request, Vary: Origin tells caches so. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_plane/plugins/plugin.h"

#define ORIGIN_MAX 512 /* longer Origin values never match */

typedef struct {
    pcre2_code *re; /* regex entries */
    char *plain;    /* normalized plain entries */
} origin_entry;

typedef struct {
    int allow_all; /* no origins, or only "*" */
    origin_entry *origins;
    size_t norigins;
    char *headers, *exposed, *methods, *max_age; /* joined with ","; NULL: not configured */
    int credentials, preflight_continue, private_network, allow_origin_absent;
} cors_conf;

/* Writes scheme://host:port (lower case, default port filled in) of origin[0..n) into out.
 * Origins without "://" are copied lower-cased. Returns the length, -1 when too long. */
static long normalize_origin(const char *o, size_t n, char *out, size_t cap)
{
    const char *sep = NULL;
    for (size_t i = 0; i + 2 < n; i++)
        if (o[i] == ':' && o[i + 1] == '/' && o[i + 2] == '/') {
            sep = o + i;
            break;
        }
    if (n >= cap)
        return -1;
    if (!sep) {
        for (size_t i = 0; i < n; i++)
            out[i] = (char)tolower((unsigned char)o[i]);
        out[n] = 0;
        return (long)n;
    }
    size_t sl = (size_t)(sep - o);
    const char *h = sep + 3, *end = o + n;
    const char *slash = memchr(h, '/', (size_t)(end - h));
    if (slash)
        end = slash;
    const char *port = NULL;
    const char *close = *h == '[' ? memchr(h, ']', (size_t)(end - h)) : NULL;
    const char *colon = memchr(close ? close : h, ':', (size_t)(end - (close ? close : h)));
    if (colon) {
        port = colon + 1;
        end = colon;
    }
    char scheme[16];
    if (sl >= sizeof(scheme))
        return -1;
    for (size_t i = 0; i < sl; i++)
        scheme[i] = (char)tolower((unsigned char)o[i]);
    scheme[sl] = 0;
    char portbuf[8];
    if (port) {
        size_t pl = strcspn(port, "/");
        if (pl > (size_t)(o + n - port))
            pl = (size_t)(o + n - port);
        if (pl == 0 || pl >= sizeof(portbuf))
            return -1;
        memcpy(portbuf, port, pl);
        portbuf[pl] = 0;
    } else {
        snprintf(portbuf, sizeof(portbuf), "%s", strcmp(scheme, "https") == 0 ? "443" : "80");
    }
    size_t hl = (size_t)(end - h);
    int len = snprintf(out, cap, "%s://%.*s:%s", scheme, (int)hl, h, portbuf);
    if (len < 0 || (size_t)len >= cap)
        return -1;
    for (size_t i = sl + 3; i < sl + 3 + hl; i++)
        out[i] = (char)tolower((unsigned char)out[i]);
    return len;
}

static int is_regex(const char *s)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(".:/-", *s))
            return 1;
    return 0;
}

static char *join(const json_t *arr)
{
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return NULL;
    size_t len = 0, i;
    const json_t *v;
    json_array_foreach(arr, i, v) len += json_string_length(v) + 1;
    char *out = malloc(len + 1), *p = out;
    if (!out)
        return NULL;
    json_array_foreach(arr, i, v)
    {
        if (i)
            *p++ = ',';
        memcpy(p, json_string_value(v), json_string_length(v));
        p += json_string_length(v);
    }
    *p = 0;
    return out;
}

static void cors_free(void *state)
{
    cors_conf *c = state;
    if (!c)
        return;
    for (size_t i = 0; i < c->norigins; i++) {
        pcre2_code_free(c->origins[i].re);
        free(c->origins[i].plain);
    }
    free(c->origins);
    free(c->headers);
    free(c->exposed);
    free(c->methods);
    free(c->max_age);
    free(c);
}

static int cors_init(const json_t *config, const char *id, void *shared, void **state, char *err,
                     size_t errlen)
{
    cors_conf *c = calloc(1, sizeof(*c));
    if (!c)
        goto oom;
    const json_t *origins = json_object_get(config, "origins");
    size_t n = json_array_size(origins);
    c->allow_all = n == 0;
    c->origins = calloc(n ? n : 1, sizeof(*c->origins));
    if (!c->origins)
        goto oom;
    size_t i;
    const json_t *v;
    json_array_foreach(origins, i, v)
    {
        const char *s = json_string_value(v);
        if (!s)
            continue;
        if (strcmp(s, "*") == 0) {
            c->allow_all = 1; /* Kong: "*" anywhere makes the list pointless */
            continue;
        }
        origin_entry *e = &c->origins[c->norigins];
        if (is_regex(s)) {
            int ec;
            PCRE2_SIZE off;
            e->re = pcre2_compile((PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED,
                                  PCRE2_ANCHORED | PCRE2_ENDANCHORED, &ec, &off, NULL);
            if (!e->re) {
                snprintf(err, errlen, "cors: origins: '%s' is not a valid regex", s);
                cors_free(c);
                return -1;
            }
            pcre2_jit_compile(e->re, PCRE2_JIT_COMPLETE); /* optional speed-up */
        } else {
            char buf[ORIGIN_MAX];
            long l = normalize_origin(s, strlen(s), buf, sizeof(buf));
            if (l < 0 || !(e->plain = strdup(buf)))
                continue; /* an origin that long can never match a request's */
        }
        c->norigins++;
    }
    c->headers = join(json_object_get(config, "headers"));
    c->exposed = join(json_object_get(config, "exposed_headers"));
    c->methods = join(json_object_get(config, "methods"));
    if (!c->methods)
        c->methods = strdup("GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT");
    const json_t *ma = json_object_get(config, "max_age");
    if (json_is_number(ma)) {
        char buf[32];
        double d = json_number_value(ma);
        if (d == (double)(long long)d)
            snprintf(buf, sizeof(buf), "%lld", (long long)d);
        else
            snprintf(buf, sizeof(buf), "%g", d);
        c->max_age = strdup(buf);
    }
    c->credentials = json_is_true(json_object_get(config, "credentials"));
    c->preflight_continue = json_is_true(json_object_get(config, "preflight_continue"));
    c->private_network = json_is_true(json_object_get(config, "private_network"));
    c->allow_origin_absent = !json_is_false(json_object_get(config, "allow_origin_absent"));
    if (!c->methods)
        goto oom;
    *state = c;
    return 0;
oom:
    cors_free(c);
    snprintf(err, errlen, "cors: out of memory");
    return -1;
}

static const dp_slice *origin_of(dp_plugin_req *req)
{
    const dp_header *h = dp_headers_find(req->headers, req->nheaders, "Origin");
    return h ? &h->value : NULL;
}

/* One match block per thread, freed when the thread ends: no allocation per request. */
static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_free(void *md)
{
    pcre2_match_data_free(md);
}

static void md_key_make(void)
{
    pthread_key_create(&md_key, md_free);
}

static pcre2_match_data *thread_match_data(void)
{
    pthread_once(&md_once, md_key_make);
    pcre2_match_data *md = pthread_getspecific(md_key);
    if (!md && (md = pcre2_match_data_create(1, NULL)) != NULL)
        pthread_setspecific(md_key, md);
    return md;
}

static int origin_allowed(const cors_conf *c, dp_slice origin)
{
    char norm[ORIGIN_MAX];
    long n = normalize_origin(origin.p, origin.len, norm, sizeof(norm));
    if (n < 0)
        return 0;
    /* the same without a default port ("https://a.test:443" -> "https://a.test") */
    size_t short_len = (size_t)n;
    if (n > 12 && strncmp(norm, "https://", 8) == 0 && strcmp(norm + n - 4, ":443") == 0)
        short_len = (size_t)n - 4;
    else if (n > 10 && strncmp(norm, "http://", 7) == 0 && strcmp(norm + n - 3, ":80") == 0)
        short_len = (size_t)n - 3;
    pcre2_match_data *md = thread_match_data();
    if (!md)
        return 0;
    for (size_t i = 0; i < c->norigins; i++) {
        const origin_entry *e = &c->origins[i];
        if (e->plain) {
            if (strcmp(e->plain, norm) == 0)
                return 1;
            continue;
        }
        /* a regex may be written with or without the default port: either form matches */
        if (pcre2_match(e->re, (PCRE2_SPTR)norm, (size_t)n, 0, 0, md, NULL) >= 0 ||
            pcre2_match(e->re, (PCRE2_SPTR)norm, short_len, 0, 0, md, NULL) >= 0)
            return 1;
    }
    return 0;
}

static int set(dp_plugin_req *req, const char *name, const char *value)
{
    return dp_plugin_resp_header_set(req, name, dp_slice_cstr(value));
}

/* Adds Origin to Vary unless a Vary header already names it (or is "*"). */
static void add_vary(dp_plugin_req *req)
{
    for (size_t i = 0; i < req->resp_headers.n; i++) {
        const dp_header *h = &req->resp_headers.items[i];
        if (dp_slice_ieq(h->name, "Vary") &&
            (dp_h1_has_token(h->value, "Origin") || dp_h1_has_token(h->value, "*")))
            return;
    }
    dp_plugin_resp_header_add(req, "Vary", DP_SLICE_LIT("Origin"));
}

/* Kong's configure_origin + configure_credentials. */
static void allow_origin(const cors_conf *c, dp_plugin_req *req)
{
    const dp_slice *origin = origin_of(req);
    char *o = origin ? dp_arena_strndup(req->arena, origin->p, origin->len) : NULL;
    if (c->allow_all) {
        if (c->credentials && o) {
            /* "*" is not allowed with credentials: echo the origin instead */
            add_vary(req);
            set(req, "Access-Control-Allow-Origin", o);
            set(req, "Access-Control-Allow-Credentials", "true");
        } else {
            set(req, "Access-Control-Allow-Origin", "*");
        }
        return;
    }
    add_vary(req);
    if (o && origin_allowed(c, *origin))
        set(req, "Access-Control-Allow-Origin", o);
    if (c->credentials)
        set(req, "Access-Control-Allow-Credentials", "true");
}

static const char preflight_marker;

static dp_plugin_result cors_access(void *state, dp_plugin_req *req, void **ctx)
{
    const cors_conf *c = state;
    if (!dp_slice_ieq(req->method, "OPTIONS") || !origin_of(req) ||
        !dp_headers_find(req->headers, req->nheaders, "Access-Control-Request-Method"))
        return DP_PLUGIN_CONTINUE;
    /* the preflight's headers are set here (or left to the upstream): none in header_filter */
    *ctx = (void *)&preflight_marker;
    if (c->preflight_continue)
        return DP_PLUGIN_CONTINUE;
    allow_origin(c, req);
    if (c->headers) {
        set(req, "Access-Control-Allow-Headers", c->headers);
    } else {
        const dp_header *h =
            dp_headers_find(req->headers, req->nheaders, "Access-Control-Request-Headers");
        if (h)
            dp_plugin_resp_header_set(req, "Access-Control-Allow-Headers", h->value);
    }
    set(req, "Access-Control-Allow-Methods", c->methods);
    if (c->max_age)
        set(req, "Access-Control-Max-Age", c->max_age);
    const dp_header *pn =
        dp_headers_find(req->headers, req->nheaders, "Access-Control-Request-Private-Network");
    if (c->private_network && pn && dp_slice_eq(pn->value, DP_SLICE_LIT("true")))
        set(req, "Access-Control-Allow-Private-Network", "true");
    return dp_plugin_respond(req, 200, NULL);
}

static void cors_header_filter(void *state, dp_plugin_req *req, void **ctx)
{
    const cors_conf *c = state;
    if (*ctx == &preflight_marker)
        return;
    if (!c->allow_origin_absent && !origin_of(req))
        return;
    allow_origin(c, req);
    if (c->exposed)
        set(req, "Access-Control-Expose-Headers", c->exposed);
}

const dp_plugin dp_plugin_cors = {
    .name = "cors",
    .init = cors_init,
    .free_state = cors_free,
    .access = cors_access,
    .header_filter = cors_header_filter,
};
