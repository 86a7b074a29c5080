/* basic-auth (Kong's PRIORITY 1100): checks `Authorization: Basic` (or Proxy-Authorization)
 * against the generation's hashed credentials. PBKDF2 is slow on purpose, so a successful
 * check is remembered for the generation (by a digest of credential and password, never the
 * password itself) and repeated requests cost one SHA-256. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/sort.h"
#include "data_plane/plugins/plugin.h"
#include "proto/password.h"

#define CACHE_SLOTS 4096 /* remembered verifications per generation; older ones are replaced */
#define MAX_HEADER 4096

typedef struct {
    const char *username, *password, *id; /* generation config memory */
    const dp_consumer *consumer;
} ba_cred;

typedef struct {
    ba_cred *creds; /* sorted by username */
    size_t n;
    pthread_mutex_t lock;
    unsigned char (*cache)[SHA256_DIGEST_LENGTH]; /* CACHE_SLOTS digests of good pairs */
} ba_index;

typedef struct {
    int hide;
    char *anonymous;
    char *www_auth;
    ba_index *ix;
} ba_conf;

static int cred_cmp(const void *a, const void *b)
{
    return strcmp(((const ba_cred *)a)->username, ((const ba_cred *)b)->username);
}

static int ba_gen_init(const json_t *config, const dp_plugin_gen *gen, void **shared, char *err,
                       size_t errlen)
{
    const json_t *arr = json_object_get(config, "basicauth_credentials");
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    ba_index *ix = calloc(1, sizeof(*ix));
    if (!ix || !(ix->creds = calloc(n + 1, sizeof(ba_cred))) ||
        !(ix->cache = calloc(CACHE_SLOTS, SHA256_DIGEST_LENGTH))) {
        if (ix)
            free(ix->creds);
        free(ix);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&ix->lock, NULL);
    size_t i;
    const json_t *c;
    json_array_foreach(arr, i, c)
    {
        ba_cred *k = &ix->creds[ix->n];
        k->username = json_string_value(json_object_get(c, "username"));
        k->password = json_string_value(json_object_get(c, "password"));
        k->id = json_string_value(json_object_get(c, "id"));
        k->consumer = dp_plugin_consumer_by_id(
            gen, json_string_value(json_object_get(json_object_get(c, "consumer"), "id")));
        if (k->username && k->password && k->consumer)
            ix->n++;
    }
    sl_sort(ix->creds, ix->n, sizeof(ba_cred), cred_cmp);
    *shared = ix;
    return 0;
}

static void ba_gen_free(void *shared)
{
    ba_index *ix = shared;
    if (!ix)
        return;
    pthread_mutex_destroy(&ix->lock);
    free(ix->creds);
    free(ix->cache);
    free(ix);
}

static void ba_free(void *state)
{
    ba_conf *c = state;
    if (!c)
        return;
    free(c->anonymous);
    free(c->www_auth);
    free(c);
}

static int ba_init(const json_t *config, const char *id, void *shared, void **state, char *err,
                   size_t errlen)
{
    ba_conf *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    *state = c;
    c->ix = shared;
    c->hide = json_is_true(json_object_get(config, "hide_credentials"));
    const char *anon = json_string_value(json_object_get(config, "anonymous"));
    if (anon && *anon && !(c->anonymous = strdup(anon)))
        return -1;
    const char *realm = json_string_value(json_object_get(config, "realm"));
    char buf[1200];
    snprintf(buf, sizeof(buf), "Basic realm=\"%s\"", realm ? realm : "service");
    if (!(c->www_auth = strdup(buf))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* The digest that stands for "this credential accepted this password". */
static void pair_digest(const ba_cred *k, const char *pw, unsigned char out[SHA256_DIGEST_LENGTH])
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned int len = 0;
    if (!m || EVP_DigestInit_ex(m, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(m, k->id ? k->id : "", k->id ? strlen(k->id) + 1 : 1) != 1 ||
        EVP_DigestUpdate(m, k->password, strlen(k->password) + 1) != 1 ||
        EVP_DigestUpdate(m, pw, strlen(pw)) != 1 || EVP_DigestFinal_ex(m, out, &len) != 1)
        memset(out, 0, SHA256_DIGEST_LENGTH);
    EVP_MD_CTX_free(m);
}

static int verify(ba_index *ix, const ba_cred *k, const char *pw)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    pair_digest(k, pw, d);
    size_t slot;
    memcpy(&slot, d, sizeof(slot));
    slot %= CACHE_SLOTS;
    pthread_mutex_lock(&ix->lock);
    int hit = CRYPTO_memcmp(ix->cache[slot], d, sizeof(d)) == 0;
    pthread_mutex_unlock(&ix->lock);
    if (hit)
        return 1;
    int ok;
    if (sl_password_is_hash(k->password))
        ok = sl_password_verify(pw, k->password);
    else /* a plain value (never written by the CP, which hashes): compared in constant time */
        ok = strlen(pw) == strlen(k->password) && CRYPTO_memcmp(pw, k->password, strlen(pw)) == 0;
    if (ok) {
        pthread_mutex_lock(&ix->lock);
        memcpy(ix->cache[slot], d, sizeof(d));
        pthread_mutex_unlock(&ix->lock);
    }
    return ok;
}

/* Decodes "Basic <base64>" into user and password (arena). Returns 0 or -1. */
static int parse_basic(dp_plugin_req *req, const dp_slice *h, char **user, char **pw)
{
    if (!h || h->len < 7 || h->len > MAX_HEADER || strncasecmp(h->p, "basic ", 6) != 0)
        return -1;
    dp_slice b = {h->p + 6, h->len - 6};
    while (b.len && b.p[0] == ' ') {
        b.p++;
        b.len--;
    }
    while (b.len && (b.p[b.len - 1] == ' ' || b.p[b.len - 1] == '\t'))
        b.len--;
    if (!b.len || b.len % 4)
        return -1;
    unsigned char *out = dp_arena_alloc(req->arena, b.len + 4);
    if (!out)
        return -1;
    int n = EVP_DecodeBlock(out, (const unsigned char *)b.p, (int)b.len);
    if (n < 0)
        return -1;
    if (b.len >= 1 && b.p[b.len - 1] == '=')
        n--;
    if (b.len >= 2 && b.p[b.len - 2] == '=')
        n--;
    out[n] = 0;
    if (memchr(out, 0, (size_t)n))
        return -1;
    char *colon = strchr((char *)out, ':');
    if (!colon)
        return -1;
    *colon = 0;
    *user = (char *)out;
    *pw = colon + 1;
    return 0;
}

static dp_plugin_result ba_access(void *state, dp_plugin_req *req, void **ctx)
{
    ba_conf *c = state;
    if (req->consumer && !req->anonymous && c->anonymous)
        return DP_PLUGIN_CONTINUE; /* an earlier auth plugin identified the client */
    const char *hname = "authorization";
    const dp_slice *h = dp_plugin_req_header(req, hname);
    if (!h) {
        hname = "proxy-authorization";
        h = dp_plugin_req_header(req, hname);
    }
    char *user, *pw;
    if (h && parse_basic(req, h, &user, &pw) == 0) {
        ba_cred want = {.username = user};
        const ba_cred *k = bsearch(&want, c->ix->creds, c->ix->n, sizeof(ba_cred), cred_cmp);
        if (k && strlen(pw) <= SL_PASSWORD_MAX_LEN && verify(c->ix, k, pw)) {
            if (c->hide)
                dp_plugin_up_header_remove(req, hname);
            dp_plugin_authenticate(req, k->consumer, k->id);
            return DP_PLUGIN_CONTINUE;
        }
    }
    if (c->anonymous) {
        if (dp_plugin_authenticate_anonymous(req, c->anonymous) != 0)
            return dp_plugin_respond(req, 500, "An unexpected error occurred");
        return DP_PLUGIN_CONTINUE;
    }
    dp_plugin_resp_header_set(req, "WWW-Authenticate", dp_slice_cstr(c->www_auth));
    return dp_plugin_respond(req, 401, "Unauthorized");
}

const dp_plugin dp_plugin_basic_auth = {
    .name = "basic-auth",
    .gen_init = ba_gen_init,
    .gen_free = ba_gen_free,
    .init = ba_init,
    .free_state = ba_free,
    .access = ba_access,
};
