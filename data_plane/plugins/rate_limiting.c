/* rate-limiting (Kong's PRIORITY 910), policy `local`: fixed calendar windows (second to
 * year, UTC) counted in this node's shared counters (counters.h), exact across worker
 * threads. Identifies the client like Kong (consumer, credential, ip, service, header, path,
 * falling back to the client address) and sends RateLimit-* / X-RateLimit-* headers. */
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

enum { BY_CONSUMER, BY_CREDENTIAL, BY_IP, BY_SERVICE, BY_HEADER, BY_PATH };

typedef struct {
    char *id;
    uint64_t limit[NWINDOWS]; /* 0: window not configured */
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

static int rl_init(const json_t *config, const char *id, void *shared, void **state, char *err,
                   size_t errlen)
{
    rl_conf *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    *state = c;
    c->id = strdup(id);
    for (int w = 0; w < NWINDOWS; w++) {
        const json_t *v = json_object_get(config, wnames[w]);
        double d = json_is_number(v) ? json_number_value(v) : 0;
        c->limit[w] = d >= 1 ? (uint64_t)d : d > 0 ? 1 : 0;
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

/* The calendar window (UTC) of kind w containing now. */
static void window_of(int w, int64_t now, int64_t *start, int64_t *end)
{
    static const int64_t fixed[] = {1, 60, 3600, 86400};
    if (w <= W_DAY) {
        *start = now - now % fixed[w];
        *end = *start + fixed[w];
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
}

static void set_num(dp_plugin_req *req, const char *name, long long v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%lld", v);
    dp_plugin_resp_header_set(req, name, (dp_slice){b, (size_t)n});
}

static dp_plugin_result rl_access(void *state, dp_plugin_req *req, void **ctx)
{
    rl_conf *c = state;
    dp_slice ident = identifier(c, req);
    /* what is counted: this plugin (its scope), the identifier */
    size_t klen = strlen(c->id) + 1 + ident.len;
    char *kb = dp_arena_alloc(req->arena, klen);
    if (!kb)
        return DP_PLUGIN_CONTINUE;
    memcpy(kb, c->id, strlen(c->id) + 1);
    memcpy(kb + strlen(c->id) + 1, ident.p, ident.len);
    dp_counter_key base;
    dp_counter_key_digest(&base, kb, klen);
    int64_t now = (int64_t)time(NULL);
    dp_counter_key keys[NWINDOWS];
    uint64_t count[NWINDOWS];
    int taken[NWINDOWS] = {0};
    int stop = -1;
    for (int w = 0; w < NWINDOWS; w++) {
        if (!c->limit[w])
            continue;
        keys[w] = base;
        window_of(w, now, &keys[w].window_start, &keys[w].window_end);
        taken[w] = dp_counter_take(&keys[w], c->limit[w], now, &count[w]);
        if (!taken[w]) {
            stop = w;
            break;
        }
    }
    if (stop >= 0) { /* refused: the units taken in the other windows go back */
        for (int w = 0; w < stop; w++)
            if (taken[w]) {
                dp_counter_give_back(&keys[w], now);
                count[w]--;
            }
        for (int w = stop + 1; w < NWINDOWS && !c->hide; w++)
            if (c->limit[w]) { /* not reached: their headers show the current use */
                keys[w] = base;
                window_of(w, now, &keys[w].window_start, &keys[w].window_end);
                count[w] = dp_counter_get(&keys[w], now);
            }
    }
    if (!c->hide) {
        /* RateLimit-*: the most restrictive window (least remaining; the longer on a tie) */
        int best = -1;
        uint64_t best_rem = 0;
        for (int w = 0; w < NWINDOWS; w++) {
            if (!c->limit[w])
                continue;
            uint64_t rem = count[w] >= c->limit[w] ? 0 : c->limit[w] - count[w];
            if (w == stop)
                rem = 0;
            set_num(req, limit_hdr[w], (long long)c->limit[w]);
            set_num(req, remaining_hdr[w], (long long)rem);
            if (best < 0 || rem <= best_rem) {
                best = w;
                best_rem = rem;
            }
        }
        if (best >= 0) {
            int64_t reset = keys[best].window_end - now;
            set_num(req, "RateLimit-Limit", (long long)c->limit[best]);
            set_num(req, "RateLimit-Remaining", (long long)best_rem);
            set_num(req, "RateLimit-Reset", (long long)(reset > 0 ? reset : 1));
            if (stop >= 0) {
                int64_t ra = keys[stop].window_end - now;
                set_num(req, "Retry-After", (long long)(ra > 0 ? ra : 1));
            }
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
