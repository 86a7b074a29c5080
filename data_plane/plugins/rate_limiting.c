/* rate-limiting (Kong's PRIORITY 910), policy `local`: fixed calendar windows (second to
 * year, UTC) counted in this node's shared counters (counters.h), exact across worker
 * threads. Identifies the client like Kong (consumer, credential, ip, service, header, path,
 * falling back to the client address) and sends RateLimit-* / X-RateLimit-* headers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data_plane/plugins/counters.h"
#include "data_plane/plugins/plugin.h"

enum { W_SECOND, W_MINUTE, W_HOUR, W_DAY, W_MONTH, W_YEAR, NWINDOWS };
static const char *const wnames[NWINDOWS] = {"second", "minute", "hour", "day", "month", "year"};
static const char *const limit_hdr[NWINDOWS] = {
    "X-RateLimit-Limit-Second", "X-RateLimit-Limit-Minute", "X-RateLimit-Limit-Hour",
    "X-RateLimit-Limit-Day",    "X-RateLimit-Limit-Month",  "X-RateLimit-Limit-Year"};
static const char *const remaining_hdr[NWINDOWS] = {
    "X-RateLimit-Remaining-Second", "X-RateLimit-Remaining-Minute", "X-RateLimit-Remaining-Hour",
    "X-RateLimit-Remaining-Day",    "X-RateLimit-Remaining-Month",  "X-RateLimit-Remaining-Year"};

_Static_assert(NWINDOWS <= DP_COUNTER_MAX_WINDOWS, "one counter call takes every window");

enum { BY_CONSUMER, BY_CREDENTIAL, BY_IP, BY_SERVICE, BY_HEADER, BY_PATH };

typedef struct {
    char *id;
    size_t id_len;
    uint64_t limit[NWINDOWS];     /* 0: window not configured */
    char limit_str[NWINDOWS][21]; /* their decimal text, for the headers of every request */
    size_t limit_len[NWINDOWS];
    int by;
    char *header_name, *path;
    int hide;
    int error_code;
    char *error_message;
} rl_conf;

static void rl_free(void *state)
{
    rl_conf *c = state;
    if (!c)
        return;
    free(c->id);
    free(c->header_name);
    free(c->path);
    free(c->error_message);
    free(c);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Writes v in decimal at out (at least 20 bytes), two digits per division; returns its
 * length. snprintf cost more than the rest of the plugin. */
static size_t put_u64(char *out, uint64_t v)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930"
                                "31323334353637383940414243444546474849505152535455565758596061"
                                "62636465666768697071727374757677787980818283848586878889909192"
                                "93949596979899";
    char d[20], *p = d + sizeof(d);
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, pairs + 2 * r, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, pairs + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    size_t n = (size_t)(d + sizeof(d) - p);
    memcpy(out, p, n);
    return n;
}

static int rl_init(const json_t *config, const char *id, void *shared, void **state, char *err,
                   size_t errlen)
{
    rl_conf *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    *state = c;
    c->id = strdup(id);
    c->id_len = strlen(id);
    for (int w = 0; w < NWINDOWS; w++) {
        const json_t *v = json_object_get(config, wnames[w]);
        double d = json_is_number(v) ? json_number_value(v) : 0;
        c->limit[w] = d >= 1 ? (uint64_t)d : d > 0 ? 1 : 0;
        c->limit_len[w] = put_u64(c->limit_str[w], c->limit[w]);
    }
    static const char *const bys[] = {"consumer", "credential", "ip", "service", "header", "path"};
    const char *by = json_string_value(json_object_get(config, "limit_by"));
    c->by = BY_CONSUMER;
    for (int i = 0; by && i < 6; i++)
        if (strcmp(by, bys[i]) == 0)
            c->by = i;
    c->header_name = dup_or_null(json_string_value(json_object_get(config, "header_name")));
    c->path = dup_or_null(json_string_value(json_object_get(config, "path")));
    c->hide = json_is_true(json_object_get(config, "hide_client_headers"));
    const json_t *code = json_object_get(config, "error_code");
    c->error_code = json_is_number(code) ? (int)json_number_value(code) : 429;
    const char *msg = json_string_value(json_object_get(config, "error_message"));
    c->error_message = strdup(msg ? msg : "API rate limit exceeded");
    if (!c->id || !c->error_message) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* Kong's get_identifier: the chosen source, else the client address. */
static dp_slice identifier(const rl_conf *c, dp_plugin_req *req)
{
    const char *s = NULL;
    switch (c->by) {
    case BY_CONSUMER:
        s = req->consumer ? req->consumer->id : req->credential_id;
        break;
    case BY_CREDENTIAL:
        s = req->credential_id;
        break;
    case BY_SERVICE:
        s = req->service_id;
        break;
    case BY_HEADER: {
        const dp_slice *h = c->header_name ? dp_plugin_req_header(req, c->header_name) : NULL;
        if (h && h->len)
            return *h;
        break;
    }
    case BY_PATH:
        if (c->path && dp_slice_eq(req->path, dp_slice_cstr(c->path)))
            return req->path;
        break;
    }
    return s ? dp_slice_cstr(s) : req->client_ip;
}

/* The calendar window (UTC) of kind w containing now. Months and years need the calendar
 * (gmtime/timegm, costly per request): each thread keeps the last window it computed. */
static void window_of(int w, int64_t now, int64_t *start, int64_t *end)
{
    static const int64_t fixed[] = {1, 60, 3600, 86400};
    if (w <= W_DAY) {
        *start = now - now % fixed[w];
        *end = *start + fixed[w];
        return;
    }
    static _Thread_local int64_t cached[2][2]; /* [month, year][start, end) */
    int64_t *cw = cached[w - W_MONTH];
    if (cw[1] && cw[0] <= now && now < cw[1]) {
        *start = cw[0];
        *end = cw[1];
        return;
    }
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_sec = tm.tm_min = tm.tm_hour = 0;
    tm.tm_mday = 1;
    if (w == W_YEAR)
        tm.tm_mon = 0;
    *start = (int64_t)timegm(&tm);
    if (w == W_YEAR)
        tm.tm_year++;
    else
        tm.tm_mon++;
    *end = (int64_t)timegm(&tm);
    cw[0] = *start;
    cw[1] = *end;
}

/* Our header names: RateLimit-*, X-RateLimit-*, Retry-After. */
static int ours(dp_slice n)
{
    return (n.len >= 10 && strncasecmp(n.p, "ratelimit-", 10) == 0) ||
           (n.len >= 12 && strncasecmp(n.p, "x-ratelimit-", 12) == 0) ||
           (n.len == 11 && strncasecmp(n.p, "retry-after", 11) == 0);
}

/* Sets a response header; fresh: adds it, as no header of ours is there to replace. */
static void set_hdr(dp_plugin_req *req, int fresh, const char *name, dp_slice v)
{
    if (fresh)
        dp_plugin_resp_header_add(req, name, v);
    else
        dp_plugin_resp_header_set(req, name, v);
}

static void set_num(dp_plugin_req *req, int fresh, const char *name, uint64_t v)
{
    char b[20];
    set_hdr(req, fresh, name, (dp_slice){b, put_u64(b, v)});
}

/* The configured limit of window kind w, as header text. */
static dp_slice limit_text(const rl_conf *c, int w)
{
    return (dp_slice){c->limit_str[w], c->limit_len[w]};
}

static dp_plugin_result rl_access(void *state, dp_plugin_req *req, void **ctx)
{
    rl_conf *c = state;
    dp_slice ident = identifier(c, req);
    /* what is counted: this plugin (its scope), the identifier; the id's NUL separates them */
    dp_counter_key base;
    dp_counter_key_digest2(&base, c->id, c->id_len + 1, ident.p, ident.len);
    int64_t now = (int64_t)time(NULL);
    /* the configured windows, shortest first */
    dp_counter_key keys[NWINDOWS];
    uint64_t limits[NWINDOWS], count[NWINDOWS];
    int kind[NWINDOWS];
    size_t n = 0;
    for (int w = 0; w < NWINDOWS; w++) {
        if (!c->limit[w])
            continue;
        keys[n] = base;
        window_of(w, now, &keys[n].window_start, &keys[n].window_end);
        limits[n] = c->limit[w];
        kind[n++] = w;
    }
    int stop = dp_counter_take_all(keys, limits, n, now, count);
    if (!c->hide && n) {
        /* RateLimit-*: the most restrictive window (least remaining; the longer on a tie) */
        size_t best = 0;
        uint64_t best_rem = 0;
        int fresh = 1; /* usually nothing set them before: adding skips a scan per header */
        for (size_t i = 0; i < req->resp_headers.n && fresh; i++)
            fresh = !ours(req->resp_headers.items[i].name);
        for (size_t i = 0; i < n; i++) {
            uint64_t rem = count[i] >= limits[i] || (int)i == stop ? 0 : limits[i] - count[i];
            set_hdr(req, fresh, limit_hdr[kind[i]], limit_text(c, kind[i]));
            set_num(req, fresh, remaining_hdr[kind[i]], rem);
            if (i == 0 || rem <= best_rem) {
                best = i;
                best_rem = rem;
            }
        }
        int64_t reset = keys[best].window_end - now;
        set_hdr(req, fresh, "RateLimit-Limit", limit_text(c, kind[best]));
        set_num(req, fresh, "RateLimit-Remaining", best_rem);
        set_num(req, fresh, "RateLimit-Reset", (uint64_t)(reset > 0 ? reset : 1));
        if (stop >= 0) {
            int64_t ra = keys[stop].window_end - now;
            set_num(req, fresh, "Retry-After", (uint64_t)(ra > 0 ? ra : 1));
        }
    }
    if (stop >= 0)
        return dp_plugin_respond(req, c->error_code, c->error_message);
    return DP_PLUGIN_CONTINUE;
}

const dp_plugin dp_plugin_rate_limiting = {
    .name = "rate-limiting",
    .init = rl_init,
    .free_state = rl_free,
    .access = rl_access,
};
