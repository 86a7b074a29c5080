/* ip-restriction (Kong's PRIORITY 990): allows or denies client addresses by IPv4/IPv6
 * address or CIDR range; deny wins over allow, like Kong. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_plane/plugins/plugin.h"

/* An address range in IPv6 form (IPv4 as ::ffff:a.b.c.d/96+bits), so one comparison serves
 * both families. */
typedef struct {
    unsigned char addr[16];
    int bits;
} cidr;

typedef struct {
    cidr *allow, *deny;
    size_t nallow, ndeny;
    int has_allow;
    int status;
    char *message;
} ipr_conf;

/* Parses "a.b.c.d", "a.b.c.d/n", "v6" or "v6/n" into r. */
static int parse_cidr(const char *s, cidr *r)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t len = slash ? (size_t)(slash - s) : strlen(s);
    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    int max;
    memset(r->addr, 0, 16);
    if (inet_pton(AF_INET, buf, r->addr + 12) == 1) {
        r->addr[10] = r->addr[11] = 0xff;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, r->addr) == 1) {
        max = 128;
    } else {
        return -1;
    }
    int bits = max;
    if (slash) {
        char *end;
        long b = strtol(slash + 1, &end, 10);
        if (*end || end == slash + 1 || b < 0 || b > max)
            return -1;
        bits = (int)b;
    }
    r->bits = bits + (max == 32 ? 96 : 0);
    return 0;
}

static int in_range(const cidr *r, const unsigned char a[16])
{
    int full = r->bits / 8, rest = r->bits % 8;
    if (memcmp(r->addr, a, (size_t)full) != 0)
        return 0;
    if (!rest)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (r->addr[full] & mask) == (a[full] & mask);
}

static int parse_list(const json_t *arr, cidr **out, size_t *n, char *err, size_t errlen)
{
    size_t cnt = json_is_array(arr) ? json_array_size(arr) : 0;
    *out = calloc(cnt + 1, sizeof(cidr));
    if (!*out)
        return -1;
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (!s || parse_cidr(s, &(*out)[*n]) != 0) {
            snprintf(err, errlen, "bad address or range '%s'", s ? s : "?");
            return -1;
        }
        (*n)++;
    }
    return 0;
}

static void ipr_free(void *state)
{
    ipr_conf *c = state;
    if (!c)
        return;
    free(c->allow);
    free(c->deny);
    free(c->message);
    free(c);
}

static int ipr_init(const json_t *config, const char *id, void *shared, void **state, char *err,
                    size_t errlen)
{
    ipr_conf *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    *state = c;
    const json_t *allow = json_object_get(config, "allow");
    c->has_allow = json_is_array(allow) && json_array_size(allow) > 0;
    if (parse_list(allow, &c->allow, &c->nallow, err, errlen) != 0 ||
        parse_list(json_object_get(config, "deny"), &c->deny, &c->ndeny, err, errlen) != 0)
        return -1;
    const json_t *st = json_object_get(config, "status");
    c->status = json_is_integer(st) ? (int)json_integer_value(st) : 403;
    const char *m = json_string_value(json_object_get(config, "message"));
    if (m && !(c->message = strdup(m)))
        return -1;
    return 0;
}

static dp_plugin_result ipr_access(void *state, dp_plugin_req *req, void **ctx)
{
    ipr_conf *c = state;
    char ip[64];
    unsigned char a[16] = {0};
    size_t n = req->client_ip.len < sizeof(ip) - 1 ? req->client_ip.len : sizeof(ip) - 1;
    memcpy(ip, req->client_ip.p ? req->client_ip.p : "", n);
    ip[n] = 0;
    int ok = 1;
    if (inet_pton(AF_INET, ip, a + 12) == 1) {
        a[10] = a[11] = 0xff;
    } else if (inet_pton(AF_INET6, ip, a) != 1) {
        ok = 0; /* an address we can't read matches nothing: allow lists refuse it */
    }
    int blocked = 0;
    for (size_t i = 0; ok && i < c->ndeny && !blocked; i++)
        blocked = in_range(&c->deny[i], a);
    if (!blocked && c->has_allow) {
        int found = 0;
        for (size_t i = 0; ok && i < c->nallow && !found; i++)
            found = in_range(&c->allow[i], a);
        blocked = !found;
    }
    if (!blocked)
        return DP_PLUGIN_CONTINUE;
    if (c->message)
        return dp_plugin_respond(req, c->status, c->message);
    char msg[96];
    snprintf(msg, sizeof(msg), "IP address not allowed: %s", ip);
    return dp_plugin_respond(req, c->status, msg);
}

const dp_plugin dp_plugin_ip_restriction = {
    .name = "ip-restriction",
    .init = ipr_init,
    .free_state = ipr_free,
    .access = ipr_access,
};
