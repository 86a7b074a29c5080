#include "proto/settings.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/log.h"

static const char *const mtls_modes[] = {"shared", "pki", NULL};
static const char *const on_off[] = {"on", "off", NULL};

const sl_setting_def sl_setting_defs[] = {
    {"pg_host", "127.0.0.1", SL_SET_STRING, SL_FOR_CP, 0, 0, NULL, "PostgreSQL host"},
    {"pg_port", "5432", SL_SET_PORT, SL_FOR_CP, 0, 0, NULL, "PostgreSQL port"},
    {"pg_user", "sluice", SL_SET_STRING, SL_FOR_CP, 0, 0, NULL, "PostgreSQL user"},
    {"pg_password", NULL, SL_SET_STRING, SL_FOR_CP, 0, 0, NULL,
     "PostgreSQL password (never logged)"},
    {"pg_database", "sluice", SL_SET_STRING, SL_FOR_CP, 0, 0, NULL, "PostgreSQL database"},
    {"pg_ssl", "off", SL_SET_ENUM, SL_FOR_CP, 0, 0, on_off, "TLS to PostgreSQL"},
    {"admin_listen", "127.0.0.1:8001", SL_SET_LISTEN, SL_FOR_CP, 0, 0, NULL,
     "Admin API listeners (add ' ssl' for TLS)"},
    {"admin_token", NULL, SL_SET_STRING, SL_FOR_CP, 0, 0, NULL,
     "Bearer token required on every Admin API request"},
    {"admin_ssl_cert", NULL, SL_SET_STRING, SL_FOR_CP, 0, 0, NULL,
     "certificate for 'ssl' admin listeners"},
    {"admin_ssl_cert_key", NULL, SL_SET_STRING, SL_FOR_CP, 0, 0, NULL,
     "key for 'ssl' admin listeners"},
    {"cluster_listen", "0.0.0.0:8005", SL_SET_HOSTPORT, SL_FOR_CP, 0, 0, NULL,
     "cluster (data plane) listener"},
    {"cluster_control_plane", "127.0.0.1:8005", SL_SET_HOSTPORT, SL_FOR_DP, 0, 0, NULL,
     "control plane address"},
    {"cluster_mtls", "shared", SL_SET_ENUM, SL_FOR_BOTH, 0, 0, mtls_modes,
     "cluster mutual TLS mode"},
    {"cluster_cert", NULL, SL_SET_STRING, SL_FOR_BOTH, 0, 0, NULL,
     "cluster certificate (PEM file)"},
    {"cluster_cert_key", NULL, SL_SET_STRING, SL_FOR_BOTH, 0, 0, NULL, "cluster key (PEM file)"},
    {"cluster_ca_cert", NULL, SL_SET_STRING, SL_FOR_BOTH, 0, 0, NULL, "CA for pki mode"},
    {"cluster_server_name", NULL, SL_SET_STRING, SL_FOR_DP, 0, 0, NULL,
     "server name checked in pki mode"},
    {"cluster_data_plane_purge_delay", "1209600", SL_SET_INT, SL_FOR_CP, 60, 315360000, NULL,
     "seconds a data plane stays in GET /clustering/data-planes after it was last seen"},
    {"cluster_max_payload", "67108864", SL_SET_INT, SL_FOR_BOTH, 65536, 1073741824, NULL,
     "largest compressed snapshot accepted, bytes"},
    {"proxy_listen", "0.0.0.0:8000, 0.0.0.0:8443 ssl", SL_SET_LISTEN, SL_FOR_DP, 0, 0, NULL,
     "proxy listeners"},
    {"status_listen", "127.0.0.1:8100", SL_SET_LISTEN, SL_FOR_DP, 0, 0, NULL,
     "status listener (/status, /status/ready, /metrics)"},
    {"worker_threads", "0", SL_SET_INT, SL_FOR_DP, 0, 1024, NULL,
     "proxy worker threads (0: number of cores)"},
    {"prefix", "./sluice-data", SL_SET_STRING, SL_FOR_BOTH, 0, 0, NULL,
     "folder for node id, snapshot cache, logs"},
    {"declarative_config", NULL, SL_SET_STRING, SL_FOR_DP, 0, 0, NULL,
     "serve this file without a control plane"},
    {"log_level", "info", SL_SET_LOG_LEVEL, SL_FOR_BOTH, 0, 0, NULL, "lowest level logged"},
    {"headers", "server_tokens, latency_tokens, X-Sluice-Request-Id", SL_SET_STRING, SL_FOR_DP, 0,
     0, NULL, "headers the proxy adds: server_tokens, latency_tokens, X-Sluice-Request-Id, off"},
    {"client_header_timeout", "60", SL_SET_INT, SL_FOR_DP, 1, 3600, NULL,
     "seconds a client may take to send the request head"},
    {"client_body_timeout", "60", SL_SET_INT, SL_FOR_DP, 1, 3600, NULL,
     "seconds between two reads of a request body"},
    {"keepalive_timeout", "75", SL_SET_INT, SL_FOR_DP, 0, 3600, NULL,
     "seconds an idle client connection stays open (0: no keepalive)"},
    {"upstream_keepalive_pool_size", "512", SL_SET_INT, SL_FOR_DP, 0, 100000, NULL,
     "idle upstream connections kept per worker and upstream address"},
    {"upstream_keepalive_max_requests", "10000", SL_SET_INT, SL_FOR_DP, 0, 100000000, NULL,
     "requests on one upstream connection before it is closed"},
    {"upstream_keepalive_idle_timeout", "60", SL_SET_INT, SL_FOR_DP, 0, 3600, NULL,
     "seconds an idle upstream connection is kept"},
    {"drain_timeout", "30", SL_SET_INT, SL_FOR_DP, 0, 3600, NULL,
     "seconds SIGTERM waits for in-flight requests"},
};
const size_t sl_setting_count = sizeof(sl_setting_defs) / sizeof(sl_setting_defs[0]);

static int find_def(const char *name)
{
    for (size_t i = 0; i < sl_setting_count; i++)
        if (strcmp(sl_setting_defs[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int parse_ll(const char *v, long long *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end)
        return -1;
    *out = n;
    return 0;
}

static int parse_bool(const char *v)
{
    static const char *const yes[] = {"on", "true", "yes", "1"};
    static const char *const no[] = {"off", "false", "no", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return 1;
        if (strcasecmp(v, no[i]) == 0)
            return 0;
    }
    return -1;
}

/* "host:port" with host possibly "[v6]"; port checked. */
static int parse_hostport(const char *v, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v)
        return -1;
    size_t hl = (size_t)(colon - v);
    if (v[0] == '[') {
        if (hl < 3 || v[hl - 1] != ']')
            return -1;
        v++;
        hl -= 2;
    }
    if (hl >= hostlen)
        return -1;
    memcpy(host, v, hl);
    host[hl] = 0;
    long long p;
    if (parse_ll(colon + 1, &p) || p < 1 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

int sl_listen_parse(const char *value, sl_listen_addr *out, int max, char *err, size_t errlen)
{
    int n = 0;
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[300];
        if (len >= sizeof(item)) {
            snprintf(err, errlen, "listen entry too long");
            return -1;
        }
        memcpy(item, p, len);
        item[len] = 0;
        while (len && item[len - 1] == ' ')
            item[--len] = 0;
        if (n == max) {
            snprintf(err, errlen, "more than %d listen entries", max);
            return -1;
        }
        sl_listen_addr *a = &out[n];
        memset(a, 0, sizeof(*a));
        char *sp = strchr(item, ' ');
        if (sp) {
            *sp = 0;
            char *flag = sp + 1;
            while (*flag == ' ')
                flag++;
            if (strcmp(flag, "ssl") != 0) {
                snprintf(err, errlen, "unknown listen flag '%s' (only 'ssl')", flag);
                return -1;
            }
            a->ssl = 1;
        }
        if (parse_hostport(item, a->host, sizeof(a->host), &a->port)) {
            snprintf(err, errlen, "'%s' is not host:port", item);
            return -1;
        }
        n++;
        p += len;
    }
    return n;
}

static int check_value(const sl_setting_def *d, const char *v, char *err, size_t errlen)
{
    long long n;
    switch (d->kind) {
    case SL_SET_STRING:
        return 0;
    case SL_SET_PORT:
        if (parse_ll(v, &n) || n < 1 || n > 65535) {
            snprintf(err, errlen, "%s: '%s' is not a port (1-65535)", d->name, v);
            return -1;
        }
        return 0;
    case SL_SET_INT:
        if (parse_ll(v, &n) || n < d->min || n > d->max) {
            snprintf(err, errlen, "%s: '%s' is not an integer from %lld to %lld", d->name, v,
                     d->min, d->max);
            return -1;
        }
        return 0;
    case SL_SET_BOOL:
        if (parse_bool(v) < 0) {
            snprintf(err, errlen, "%s: '%s' is not on or off", d->name, v);
            return -1;
        }
        return 0;
    case SL_SET_ENUM:
        for (const char *const *c = d->choices; *c; c++)
            if (strcmp(*c, v) == 0)
                return 0;
        {
            char list[200] = "";
            for (const char *const *c = d->choices; *c; c++) {
                if (c != d->choices)
                    strncat(list, ", ", sizeof(list) - strlen(list) - 1);
                strncat(list, *c, sizeof(list) - strlen(list) - 1);
            }
            snprintf(err, errlen, "%s: '%s' is not one of: %s", d->name, v, list);
        }
        return -1;
    case SL_SET_LISTEN: {
        sl_listen_addr addrs[16];
        char e[200];
        int c = sl_listen_parse(v, addrs, 16, e, sizeof(e));
        if (c < 0) {
            snprintf(err, errlen, "%s: %s", d->name, e);
            return -1;
        }
        return 0;
    }
    case SL_SET_HOSTPORT: {
        char host[256];
        int port;
        if (parse_hostport(v, host, sizeof(host), &port)) {
            snprintf(err, errlen, "%s: '%s' is not host:port", d->name, v);
            return -1;
        }
        return 0;
    }
    case SL_SET_LOG_LEVEL:
        if (sl_log_level_parse(v) < 0) {
            snprintf(err, errlen,
                     "%s: '%s' is not one of: debug, info, notice, warn, error, crit, alert",
                     d->name, v);
            return -1;
        }
        return 0;
    }
    return 0;
}

int sl_settings_set(sl_settings *s, const char *name, const char *value, char *err, size_t errlen)
{
    int i = find_def(name);
    if (i < 0) {
        snprintf(err, errlen, "unknown setting '%s'", name);
        return -1;
    }
    if (check_value(&sl_setting_defs[i], value, err, errlen))
        return -1;
    free(s->values[i]);
    s->values[i] = strdup(value);
    return 0;
}

static char *trim(char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    size_t n = strlen(p);
    while (n && isspace((unsigned char)p[n - 1]))
        p[--n] = 0;
    return p;
}

static int load_file(sl_settings *s, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read configuration file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errlen, "%s:%d: line too long", path, lineno);
            fclose(f);
            return -1;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *p = trim(line);
        if (!*p)
            continue;
        char *eq = strchr(p, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%d: expected 'name = value'", path, lineno);
            fclose(f);
            return -1;
        }
        *eq = 0;
        char *name = trim(p), *value = trim(eq + 1);
        char e[400];
        if (sl_settings_set(s, name, value, e, sizeof(e))) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, e);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

/* Kubernetes injects <SERVICE>_SERVICE_HOST / _PORT... for every Service; a Service named
 * "sluice-cp" yields SLUICE_CP_SERVICE_HOST. Those are not settings and must not stop a pod. */
static int is_kubernetes_link(const char *name)
{
    return strstr(name, "_SERVICE_HOST") || strstr(name, "_SERVICE_PORT") ||
           strstr(name, "_PORT_") ||
           (strlen(name) > 5 && !strcmp(name + strlen(name) - 5, "_PORT"));
}

extern char **environ;

int sl_settings_load(sl_settings *s, const char *conf_path, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < sl_setting_count; i++)
        if (sl_setting_defs[i].dflt)
            s->values[i] = strdup(sl_setting_defs[i].dflt);
    if (conf_path && load_file(s, conf_path, err, errlen))
        return -1;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "SLUICE_", 7) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        char name[128];
        size_t len = (size_t)(eq - *e) - 7;
        if (len >= sizeof(name))
            len = sizeof(name) - 1;
        for (size_t i = 0; i < len; i++)
            name[i] = (char)tolower((unsigned char)(*e)[7 + i]);
        name[len] = 0;
        if (find_def(name) < 0 && is_kubernetes_link(*e))
            continue;
        char msg[400];
        if (sl_settings_set(s, name, eq + 1, msg, sizeof(msg))) {
            snprintf(err, errlen, "environment SLUICE_%.*s: %s", (int)len, *e + 7, msg);
            return -1;
        }
    }
    return 0;
}

const char *sl_settings_get(const sl_settings *s, const char *name)
{
    int i = find_def(name);
    return i < 0 ? NULL : s->values[i];
}

long long sl_settings_int(const sl_settings *s, const char *name)
{
    const char *v = sl_settings_get(s, name);
    long long n = 0;
    if (v)
        parse_ll(v, &n);
    return n;
}

int sl_settings_bool(const sl_settings *s, const char *name)
{
    const char *v = sl_settings_get(s, name);
    return v ? parse_bool(v) == 1 : 0;
}

void sl_settings_free(sl_settings *s)
{
    for (size_t i = 0; i < sl_setting_count; i++) {
        free(s->values[i]);
        s->values[i] = NULL;
    }
}

void sl_settings_print_help(int used_by)
{
    printf("Settings (--conf FILE with 'name = value' lines, or SLUICE_<NAME> variables):\n");
    for (size_t i = 0; i < sl_setting_count; i++) {
        const sl_setting_def *d = &sl_setting_defs[i];
        if (!(d->used_by & used_by))
            continue;
        printf("  %-22s %-32s %s\n", d->name, d->dflt ? d->dflt : "(none)", d->help);
    }
}
