#include "data_plane/config/apply.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data_plane/config/delta.h"
#include "data_plane/config/journal.h"
#include "proto/declarative.h"
#include "proto/digest.h"
#include "proto/log.h"
#include "proto/snapshot.h"

#define CACHE_NAME "config.snapshot"

static char prefix_dir[4096] = ".";
static dp_worker *workers;
static int nworkers;
static dp_generation *current;
/* What current's hash was computed from (control-plane configs only): a delta applies to it. */
static sl_digest_set current_digests;
static int have_digests;
/* the status listener reads current from the control thread too; the lock is off the proxy
 * hot path (workers get generations through their own pointers) */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* One apply at a time, whichever thread asks: the cluster client applies on a work thread
 * while a SIGHUP reload runs on the control loop. Recursive: a declarative load applies
 * through dp_config_apply_json. */
static pthread_mutex_t apply_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

void dp_config_init(const char *prefix, dp_worker *w, int n)
{
    snprintf(prefix_dir, sizeof(prefix_dir), "%s", prefix && *prefix ? prefix : ".");
    workers = w;
    nworkers = n;
}

static void *release_main(void *arg)
{
    dp_generation_unref(arg);
    return NULL;
}

/* Drops a reference to an old generation on a short-lived thread: freeing a large config
 * (every route, certificate, the decoded JSON) takes milliseconds that belong to nobody's
 * critical path. Falls back to freeing here when no thread can start. */
static void release_later(dp_generation *old)
{
    pthread_t t;
    pthread_attr_t attr;
    if (!old)
        return;
    if (pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, release_main, old);
        pthread_attr_destroy(&attr);
        if (rc == 0)
            return;
    }
    dp_generation_unref(old);
}

/* Makes g current; returns the previous generation (the caller releases it). */
static dp_generation *swap_in(dp_generation *g)
{
    for (int i = 0; i < nworkers; i++)
        dp_worker_set_generation(&workers[i], g);
    pthread_mutex_lock(&lock);
    dp_generation *old = current;
    current = g;
    pthread_mutex_unlock(&lock);
    return old;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

dp_generation *dp_config_current(void)
{
    pthread_mutex_lock(&lock);
    dp_generation *g = dp_generation_ref(current);
    pthread_mutex_unlock(&lock);
    return g;
}

void dp_config_shutdown(void)
{
    pthread_mutex_lock(&apply_lock);
    pthread_mutex_lock(&lock);
    dp_generation *g = current;
    current = NULL;
    pthread_mutex_unlock(&lock);
    dp_generation_unref(g);
    if (have_digests)
        sl_digest_set_free(&current_digests);
    have_digests = 0;
    pthread_mutex_unlock(&apply_lock);
}

/* The digests of the generation just swapped in (NULL: it has none, e.g. a declarative file). */
static void set_digests(sl_digest_set *d)
{
    if (have_digests)
        sl_digest_set_free(&current_digests);
    have_digests = d != NULL;
    if (d)
        current_digests = *d;
}

/* temp file, fsync, rename, fsync the folder: a crash leaves the old or the new file whole */
static int persist(const unsigned char *bytes, size_t len, char *err, size_t errlen)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof(path), "%s/%s", prefix_dir, CACHE_NAME);
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    mkdir(prefix_dir, 0700);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, bytes + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot save %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    int dfd = open(prefix_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

static int apply(const unsigned char *bytes, size_t len, int save, json_t **errors, char *err,
                 size_t errlen)
{
    json_t *config = NULL;
    int64_t version = 0;
    char hash[SL_SNAPSHOT_HASH_HEX];
    sl_digest_set digests;
    double t0 = now_ms();
    /* Rows the new snapshot has unchanged are taken over from the served config, and so are
     * their routes: a whole snapshot sent to a data plane that fell behind costs about what
     * its changes do. */
    dp_generation *cur = have_digests ? dp_config_current() : NULL;
    if (cur) { /* digests that are not the served config's would take over the wrong rows */
        char had[SL_SNAPSHOT_HASH_HEX];
        sl_digest_set_hash(&current_digests, had);
        if (strcmp(had, cur->hash) != 0) {
            dp_generation_unref(cur);
            cur = NULL;
        }
    }
    sl_snapshot_served served = {cur ? cur->config : NULL, &current_digests, 0};
    if (sl_snapshot_decode_served(bytes, len, NULL, cur ? &served : NULL, &config, &version, hash,
                                  &digests, errors, err, errlen) != 0) {
        dp_generation_unref(cur);
        return -1;
    }
    double t1 = now_ms();
    /* Building on the served generation goes route by route on one thread: worth it when it
     * takes most of them over, else the whole build (in parallel) is faster. */
    size_t nroutes = json_array_size(json_object_get(config, "routes"));
    dp_generation *g = dp_generation_build_next(
        config, version, hash, served.taken * 2 >= nroutes ? cur : NULL, err, errlen);
    dp_generation_unref(cur);
    json_decref(config);
    if (!g) {
        sl_digest_set_free(&digests);
        return -1;
    }
    double t2 = now_ms();
    /* Swap first, then cache: the new config serves as soon as it is built, and the file is
     * still written (atomically) before the control plane hears the ack. A crash in between
     * restarts on the previous cached version, which the control plane then replaces. */
    release_later(swap_in(g));
    set_digests(&digests);
    double t3 = now_ms();
    if (save && persist(bytes, len, err, errlen) != 0) {
        /* serving the new config matters more than caching it */
        sl_warn("config version %lld applied but not cached: %s", (long long)version, err);
    } else if (save) {
        dp_journal_clear(prefix_dir); /* its deltas led up to what the snapshot now holds */
    }
    double t4 = now_ms();
    sl_notice("config version %lld applied (hash %.12s) in %.1f ms: decode+validate %.1f ms, "
              "build %.1f ms, swap %.1f ms, cache write %.1f ms (%zu bytes, %zu rows kept from "
              "the config served before)",
              (long long)version, hash, t4 - t0, t1 - t0, t2 - t1, t3 - t2, t4 - t3, len,
              served.taken);
    return 0;
}

int dp_config_apply_snapshot(const unsigned char *bytes, size_t len, json_t **errors, char *err,
                             size_t errlen)
{
    pthread_mutex_lock(&apply_lock);
    int rc = apply(bytes, len, 1, errors, err, errlen);
    pthread_mutex_unlock(&apply_lock);
    return rc;
}

/* A delta journal this many times the snapshot's size (or 1 MiB, whichever is more) is folded
 * into a new snapshot, so replay at start-up stays short and the file bounded. */
#define JOURNAL_FOLD_RATIO 2
#define JOURNAL_FOLD_MIN (1u << 20)

static size_t snapshot_size(void)
{
    char path[4200];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", prefix_dir, CACHE_NAME);
    return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

/* Writes the current config as a whole snapshot and drops the journal. */
static void fold_journal(dp_generation *g)
{
    sl_snapshot snap;
    char err[512];
    double t0 = now_ms();
    if (sl_snapshot_encode(g->config, g->version, &snap, err, sizeof(err)) != 0 ||
        strcmp(snap.hash, g->hash) != 0) {
        sl_warn("config journal not folded: %s",
                snap.bytes ? "the re-encoded snapshot has another hash" : err);
        sl_snapshot_free(&snap);
        return;
    }
    if (persist(snap.bytes, snap.len, err, sizeof(err)) == 0) {
        dp_journal_clear(prefix_dir);
        sl_info("config journal folded into a snapshot of version %lld in %.1f ms",
                (long long)g->version, now_ms() - t0);
    } else {
        sl_warn("config journal not folded: %s", err);
    }
    sl_snapshot_free(&snap);
}

static int apply_delta(const unsigned char *bytes, size_t len, int save, json_t **errors, char *err,
                       size_t errlen)
{
    double t0 = now_ms();
    sl_delta_decoded dd;
    if (sl_delta_decode(bytes, len, NULL, &dd, errors, err, errlen) != 0)
        return -1;
    dp_generation *cur = dp_config_current();
    if (!cur || !have_digests || cur->version != dd.base_version ||
        strcmp(cur->hash, dd.base_hash) != 0) {
        snprintf(err, errlen,
                 "delta from version %lld does not apply here (serving version %lld, hash "
                 "%.12s)",
                 (long long)dd.base_version, cur ? (long long)cur->version : -1LL,
                 cur ? cur->hash : "");
        dp_generation_unref(cur);
        sl_delta_decoded_free(&dd);
        return -1;
    }
    json_t *config = NULL;
    sl_digest_set digests;
    int rc =
        dp_delta_apply(cur->config, &current_digests, &dd, &config, &digests, errors, err, errlen);
    size_t nchanges = dd.nupserts + dd.ndeletes;
    int64_t version = dd.version;
    char hash[SL_SNAPSHOT_HASH_HEX];
    memcpy(hash, dd.hash, sizeof(hash));
    sl_delta_decoded_free(&dd);
    if (rc) {
        dp_generation_unref(cur);
        return -1;
    }
    double t1 = now_ms();
    dp_generation *g = dp_generation_build_next(config, version, hash, cur, err, errlen);
    dp_generation_unref(cur);
    json_decref(config);
    if (!g) {
        sl_digest_set_free(&digests);
        return -1;
    }
    double t2 = now_ms();
    release_later(swap_in(g));
    set_digests(&digests);
    double t3 = now_ms();
    if (save) {
        if (dp_journal_append(prefix_dir, bytes, len, err, errlen) != 0)
            sl_warn("config version %lld applied but not cached: %s", (long long)version, err);
        else if (dp_journal_size(prefix_dir) >
                 (snapshot_size() * JOURNAL_FOLD_RATIO > JOURNAL_FOLD_MIN
                      ? snapshot_size() * JOURNAL_FOLD_RATIO
                      : JOURNAL_FOLD_MIN))
            fold_journal(g);
    }
    double t4 = now_ms();
    sl_notice("config version %lld applied (hash %.12s) in %.1f ms: delta of %zu changes "
              "decode+apply %.1f ms, build %.1f ms, swap %.1f ms, cache write %.1f ms (%zu bytes)",
              (long long)version, hash, t4 - t0, nchanges, t1 - t0, t2 - t1, t3 - t2, t4 - t3, len);
    return 0;
}

int dp_config_apply_delta(const unsigned char *bytes, size_t len, json_t **errors, char *err,
                          size_t errlen)
{
    pthread_mutex_lock(&apply_lock);
    int rc = apply_delta(bytes, len, 1, errors, err, errlen);
    pthread_mutex_unlock(&apply_lock);
    return rc;
}

/* Journal replay at start-up: stops at the first delta that does not follow on. */
static int replay_one(void *arg, const unsigned char *rec, size_t len)
{
    char err[512];
    if (apply_delta(rec, len, 0, NULL, err, sizeof(err)) != 0) {
        sl_warn("config journal: stopped at a delta that does not apply: %s", err);
        return -1;
    }
    return 0;
}

int dp_config_apply_json(json_t *config, int64_t version, const char *hash, char *err,
                         size_t errlen)
{
    pthread_mutex_lock(&apply_lock);
    dp_generation *g = dp_generation_build(config, version, hash, err, errlen);
    if (g) {
        release_later(swap_in(g));
        set_digests(NULL); /* what it serves now has none */
    }
    pthread_mutex_unlock(&apply_lock);
    return g ? 0 : -1;
}

static unsigned char *read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen,
                                int *missing)
{
    *missing = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *missing = errno == ENOENT;
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || (size_t)st.st_size > max) {
        snprintf(err, errlen, "%s: too large", path);
        fclose(f);
        return NULL;
    }
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    if (!buf || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        snprintf(err, errlen, "cannot read %s", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[st.st_size] = 0;
    *len = (size_t)st.st_size;
    return buf;
}

static int load_cache(char *err, size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", prefix_dir, CACHE_NAME);
    size_t len;
    int missing;
    unsigned char *b =
        read_file(path, SL_SNAPSHOT_MAX_COMPRESSED + 4096, &len, err, errlen, &missing);
    if (!b)
        return missing ? 0 : -1;
    int rc = apply(b, len, 0, NULL, err, errlen);
    free(b);
    if (rc != 0)
        return -1;
    /* deltas applied after that snapshot was saved */
    char jerr[512];
    long n = dp_journal_replay(prefix_dir, SL_SNAPSHOT_MAX_COMPRESSED, replay_one, NULL, jerr,
                               sizeof(jerr));
    if (n < 0)
        sl_warn("config journal not read: %s", jerr);
    else if (n > 0)
        sl_notice("config journal: %ld deltas replayed", n);
    return 1;
}

int dp_config_load_cache(char *err, size_t errlen)
{
    pthread_mutex_lock(&apply_lock);
    int rc = load_cache(err, errlen);
    pthread_mutex_unlock(&apply_lock);
    return rc;
}

static int load_declarative(const char *path, char *err, size_t errlen)
{
    size_t len;
    int missing;
    unsigned char *b = read_file(path, 64u * 1024 * 1024, &len, err, errlen, &missing);
    if (!b)
        return -1;
    char hash[SL_SHA256_HEX];
    sl_sha256_hex(b, len, hash);
    json_t *config = sl_declarative_load((const char *)b, len, NULL, err, errlen);
    free(b);
    if (!config)
        return -1;
    int rc = dp_config_apply_json(config, 0, hash, err, errlen); /* no digests: no delta */
    json_decref(config);
    if (rc == 0) /* the log says which file is served: the DP has no CP to ask */
        sl_notice("declarative config %s applied (sha256 %.12s)", path, hash);
    return rc;
}

int dp_config_load_declarative(const char *path, char *err, size_t errlen)
{
    pthread_mutex_lock(&apply_lock);
    int rc = load_declarative(path, err, errlen);
    pthread_mutex_unlock(&apply_lock);
    return rc;
}
