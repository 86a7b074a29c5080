/* file-log (PRIORITY 9), Kong's kong/plugins/file-log: one JSON line per request appended to
 * config.path. The worker only serializes the entry and hands it to the log queue; the log
 * thread opens and writes the file (log_queue.c), so a slow or full disk never stalls a
 * request. Also the shared serializer of file-log and http-log (Kong's
 * kong/pdk/log.lua serialize()). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_plane/plugins/log_queue.h"
#include "data_plane/plugins/plugin.h"

/* --- the serializer --- */

/* A JSON string for bytes that may not be UTF-8: invalid bytes become '?'. */
static json_t *str_n(const char *p, size_t n)
{
    json_t *s = json_stringn(p ? p : "", p ? n : 0);
    if (s || !p)
        return s;
    char *c = malloc(n + 1);
    if (!c)
        return NULL;
    for (size_t i = 0; i < n; i++)
        c[i] = (unsigned char)p[i] < 0x80 && p[i] ? p[i] : '?';
    s = json_stringn(c, n);
    free(c);
    return s;
}

static json_t *str_s(dp_slice s)
{
    return str_n(s.p, s.len);
}

static int redacted(dp_slice name)
{
    return dp_slice_ieq(name, "authorization") || dp_slice_ieq(name, "proxy-authorization") ||
           dp_slice_ieq(name, "cookie") || dp_slice_ieq(name, "set-cookie");
}

/* Kong's shape: lower-case names, repeated headers as an array of values. */
static json_t *headers_obj(const dp_header *h, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < n; i++) {
        char name[256];
        size_t nl = h[i].name.len < sizeof(name) - 1 ? h[i].name.len : sizeof(name) - 1;
        for (size_t k = 0; k < nl; k++) {
            char ch = h[i].name.p[k];
            name[k] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
        }
        name[nl] = 0;
        json_t *v = redacted(h[i].name) ? json_string("REDACTED") : str_s(h[i].value);
        json_t *cur = json_object_get(o, name);
        if (!cur) {
            json_object_set_new(o, name, v);
        } else if (json_is_array(cur)) {
            json_array_append_new(cur, v);
        } else {
            json_t *arr = json_array();
            json_array_append(arr, cur);
            json_array_append_new(arr, v);
            json_object_set_new(o, name, arr);
        }
    }
    return o;
}

static int hexv(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static json_t *decoded(const char *p, size_t n)
{
    char *o = malloc(n + 1);
    if (!o)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%' && i + 2 < n && hexv(p[i + 1]) >= 0 && hexv(p[i + 2]) >= 0) {
            o[k++] = (char)(hexv(p[i + 1]) * 16 + hexv(p[i + 2]));
            i += 2;
        } else {
            o[k++] = p[i] == '+' ? ' ' : p[i];
        }
    }
    json_t *s = str_n(o, k);
    free(o);
    return s;
}

/* Kong's querystring: decoded; a key without '=' is true; repeated keys become arrays. */
static json_t *query_obj(dp_slice q)
{
    json_t *o = json_object();
    size_t count = 0;
    for (size_t i = 0; o && i < q.len && count < 100; count++) {
        const char *amp = memchr(q.p + i, '&', q.len - i);
        size_t end = amp ? (size_t)(amp - q.p) : q.len;
        if (end > i) {
            const char *eq = memchr(q.p + i, '=', end - i);
            size_t kl = eq ? (size_t)(eq - (q.p + i)) : end - i;
            json_t *k = decoded(q.p + i, kl);
            json_t *v = eq ? decoded(eq + 1, end - i - kl - 1) : json_true();
            const char *key = json_string_value(k);
            if (key && v) {
                json_t *cur = json_object_get(o, key);
                if (!cur) {
                    json_object_set(o, key, v);
                } else if (json_is_array(cur)) {
                    json_array_append(cur, v);
                } else {
                    json_t *arr = json_array();
                    json_array_append(arr, cur);
                    json_array_append(arr, v);
                    json_object_set_new(o, key, arr);
                }
            }
            json_decref(k);
            json_decref(v);
        }
        i = end + 1;
    }
    return o;
}

static json_t *entity(const char *id, const char *name)
{
    if (!id)
        return NULL;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    if (name)
        json_object_set_new(o, "name", json_string(name));
    return o;
}

char *dp_log_serialize(dp_plugin_req *req, size_t *len)
{
    json_t *e = json_object();
    if (!e)
        return NULL;
    /* request */
    size_t ul = req->path.len + (req->query.p ? req->query.len + 1 : 0);
    char *uri = malloc(ul + 1);
    if (uri) {
        memcpy(uri, req->path.p ? req->path.p : "", req->path.len);
        if (req->query.p) {
            uri[req->path.len] = '?';
            memcpy(uri + req->path.len + 1, req->query.p, req->query.len);
        }
        uri[ul] = 0;
    }
    json_t *r = json_object();
    json_object_set_new(r, "method", str_s(req->method));
    json_object_set_new(r, "uri", str_n(uri, uri ? ul : 0));
    const dp_header *host = dp_headers_find(req->headers, req->nheaders, "host");
    dp_slice hs = host ? host->value : req->host;
    size_t url_cap = hs.len + ul + 16;
    char *url = malloc(url_cap);
    if (url) {
        int n = snprintf(url, url_cap, "%s://%.*s%s", req->https ? "https" : "http", (int)hs.len,
                         hs.p ? hs.p : "", uri ? uri : "");
        json_object_set_new(r, "url", str_n(url, n > 0 ? (size_t)n : 0));
    }
    free(url);
    free(uri);
    json_object_set_new(r, "size", json_integer((json_int_t)req->bytes_in));
    json_object_set_new(r, "querystring", query_obj(req->query));
    json_object_set_new(r, "headers", headers_obj(req->headers, req->nheaders));
    if (req->request_id.len)
        json_object_set_new(r, "id", str_s(req->request_id));
    json_object_set_new(e, "request", r);
    /* response */
    json_t *s = json_object();
    json_object_set_new(s, "status", json_integer(req->status));
    json_object_set_new(s, "size", json_integer((json_int_t)req->bytes_out));
    json_object_set_new(s, "headers", headers_obj(req->resp_headers.items, req->resp_headers.n));
    json_object_set_new(e, "response", s);
    /* what served it */
    json_t *route = entity(req->route_id, req->route_name);
    if (route)
        json_object_set_new(e, "route", route);
    json_t *svc = entity(req->service_id, req->service_name);
    if (svc)
        json_object_set_new(e, "service", svc);
    if (req->consumer) {
        json_t *c = entity(req->consumer->id, NULL);
        if (c && req->consumer->username)
            json_object_set_new(c, "username", json_string(req->consumer->username));
        if (c && req->consumer->custom_id)
            json_object_set_new(c, "custom_id", json_string(req->consumer->custom_id));
        if (c)
            json_object_set_new(e, "consumer", c);
    }
    int proxied = req->upstream_latency_ms >= 0 && !req->response_status;
    long proxy = proxied ? req->upstream_latency_ms : -1;
    long gw = proxied ? req->latency_ms - req->upstream_latency_ms : req->latency_ms;
    json_t *lat = json_object();
    json_object_set_new(lat, "request", json_integer(req->latency_ms));
    json_object_set_new(lat, "proxy", json_integer(proxy));
    json_object_set_new(lat, "gateway", json_integer(gw > 0 ? gw : 0));
    json_object_set_new(lat, "kong", json_integer(gw > 0 ? gw : 0)); /* Kong's name for it */
    json_object_set_new(e, "latencies", lat);
    json_object_set_new(e, "client_ip", str_s(req->client_ip));
    json_object_set_new(e, "started_at", json_integer(req->started_at_ms));
    if (proxied)
        json_object_set_new(e, "upstream_status", json_integer(req->status));
    json_object_set_new(e, "source",
                        json_string(req->response_status ? "exit"
                                    : proxied            ? "service"
                                                         : "kong"));
    char *out = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    if (out)
        *len = strlen(out);
    return out;
}

/* --- the plugin --- */

static int fl_init(const json_t *config, const char *id, void *shared, void **state, char *err,
                   size_t errlen)
{
    const char *path = json_string_value(json_object_get(config, "path"));
    if (!path) {
        snprintf(err, errlen, "file-log: config.path is required");
        return -1;
    }
    dp_log_sink *s = dp_log_sink_file(path, json_is_true(json_object_get(config, "reopen")));
    if (!s) {
        snprintf(err, errlen, "file-log: cannot start the log writer");
        return -1;
    }
    *state = s;
    return 0;
}

static void fl_free(void *state)
{
    dp_log_sink_release(state);
}

/* Nothing to change: having a header_filter makes the framework keep the full response header
 * list, which the entry reports. */
static void fl_header_filter(void *state, dp_plugin_req *req, void **ctx) {}

static void fl_log(void *state, dp_plugin_req *req, void **ctx)
{
    size_t len;
    char *line = dp_log_serialize(req, &len);
    dp_log_push(state, line, line ? len : 0); /* drops (and counts) when full */
}

const dp_plugin dp_plugin_file_log = {
    .name = "file-log",
    .init = fl_init,
    .free_state = fl_free,
    .header_filter = fl_header_filter,
    .log = fl_log,
};
