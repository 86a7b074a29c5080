/* The proxy's settings, read once at start into a plain struct, so the hot path never looks a
 * setting up by name. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "data_plane/http/rewrite.h"
#include "data_plane/worker/worker.h"

/* Kong's `headers` names, with our header names where Kong has its own. */
static const struct {
    const char *name;
    unsigned bits;
} header_names[] = {
    {"server_tokens", DP_HDR_VIA | DP_HDR_SERVER},
    {"latency_tokens", DP_HDR_LATENCY},
    {"X-Sluice-Request-Id", DP_HDR_REQUEST_ID},
    {"Via", DP_HDR_VIA},
    {"Server", DP_HDR_SERVER},
};

static int parse_headers(const char *v, unsigned *out, char *err, size_t errlen)
{
    unsigned bits = 0;
    int off = 0, n = 0;
    const char *p = v ? v : "";
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        size_t len = (size_t)(p - start);
        if (!len)
            continue;
        n++;
        if (len == 3 && strncasecmp(start, "off", 3) == 0) {
            off = 1;
            continue;
        }
        size_t i = 0;
        for (; i < sizeof(header_names) / sizeof(header_names[0]); i++)
            if (strlen(header_names[i].name) == len &&
                strncasecmp(start, header_names[i].name, len) == 0)
                break;
        if (i == sizeof(header_names) / sizeof(header_names[0])) {
            snprintf(err, errlen,
                     "headers: unknown value '%.*s' (server_tokens, latency_tokens, "
                     "X-Sluice-Request-Id, Server, Via, off)",
                     (int)(len > 64 ? 64 : len), start);
            return -1;
        }
        bits |= header_names[i].bits;
    }
    if (off && n > 1) {
        snprintf(err, errlen, "headers: 'off' cannot be combined with other values");
        return -1;
    }
    *out = off ? 0 : bits;
    return 0;
}

int dp_proxy_conf_load(dp_proxy_conf *conf, const sl_settings *s, char *err, size_t errlen)
{
    memset(conf, 0, sizeof(*conf));
    if (parse_headers(sl_settings_get(s, "headers"), &conf->headers, err, errlen) != 0)
        return -1;
    /* the settings table bounds every integer, so the products cannot overflow */
    conf->client_header_timeout = (uint64_t)sl_settings_int(s, "client_header_timeout") * 1000;
    conf->client_body_timeout = (uint64_t)sl_settings_int(s, "client_body_timeout") * 1000;
    conf->keepalive_timeout = (uint64_t)sl_settings_int(s, "keepalive_timeout") * 1000;
    conf->pool_size = (int)sl_settings_int(s, "upstream_keepalive_pool_size");
    conf->pool_max_requests = (int)sl_settings_int(s, "upstream_keepalive_max_requests");
    conf->pool_idle_timeout =
        (uint64_t)sl_settings_int(s, "upstream_keepalive_idle_timeout") * 1000;
    return 0;
}
