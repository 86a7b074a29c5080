/* Reading an entity's rows (proto/snapshot_read_rows.h). */
#include "proto/snapshot_read_rows.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/digest.h"
#include "proto/json_arena.h"
#include "proto/snapshot_rows.h"
#include "proto/sort.h"

void sl_row_verdicts_free(sl_row_verdict *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        json_decref(v[i].errs);
    free(v);
}

static int row_id_cmp(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "id"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "id"));
    return strcmp(x ? x : "", y ? y : "");
}

/* Puts rows in id order (rows without an id first: validation refuses them). 0 or -1 (OOM). */
static int sort_rows(json_t *rows)
{
    size_t n = json_array_size(rows);
    json_t **v = malloc((n ? n : 1) * sizeof(*v));
    if (!v)
        return -1;
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(rows, i));
    sl_sort(v, n, sizeof(*v), row_id_cmp);
    json_array_clear(rows);
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(rows, v[i]))
            rc = -1;
    free(v);
    return rc;
}

/* Where the rows of one array go while they are read. */
typedef struct {
    const sl_entity *e;
    const sl_rows_served *served; /* NULL: none */
    int arena;                    /* the rows' trees come from the JSON arena */
    json_t **rows;
    sl_digest *d;
    sl_row_verdict *v; /* v[i].id: the row's id once validated (validation may rewrite it) */
} sl_rows_out;

/* The id a row starts with (canonical rows list "id" first), or "" when it does not. */
static void first_id(const sl_mp_reader *r, char id[SL_UUID_LEN + 1])
{
    sl_mp_reader p = *r;
    uint32_t m, klen, vlen;
    const char *k, *v;
    char err[64];
    id[0] = '\0';
    if (sl_mp_read_map(&p, &m, err, sizeof(err)) || m == 0 ||
        sl_mp_read_str(&p, &k, &klen, err, sizeof(err)) || klen != 2 || memcmp(k, "id", 2) != 0 ||
        sl_mp_read_str(&p, &v, &vlen, err, sizeof(err)) || vlen > SL_UUID_LEN)
        return;
    memcpy(id, v, vlen);
    id[vlen] = '\0';
}

/* The served row the row at r is (advancing r past it), or NULL. Same id, same digest: the same
 * bytes, so decoding and validating them again would give the same row. A row whose id is not
 * served costs a look-up, not a hash. */
static json_t *served_row(sl_mp_reader *r, const sl_rows_out *o, size_t i)
{
    const sl_row_digests *sd = o->served->digests;
    char id[SL_UUID_LEN + 1], err[128];
    first_id(r, id);
    const sl_digest *had = id[0] ? sl_row_digests_get(sd, id) : NULL;
    if (!had)
        return NULL;
    sl_mp_reader probe = *r;
    if (sl_mp_skip(&probe, err, sizeof(err)) ||
        sl_sha256(r->p, (size_t)(probe.p - r->p), o->d[i].b) ||
        memcmp(had->b, o->d[i].b, sizeof(had->b)) != 0)
        return NULL;
    /* the served rows and their digests are in the same id order */
    json_t *row = json_array_get(o->served->rows, (size_t)(had - sd->digests));
    const char *rid = json_string_value(json_object_get(row, "id"));
    if (!rid || strcmp(rid, id) != 0)
        return NULL;
    r->p = probe.p;
    o->v[i].count = 0;
    o->v[i].errs = NULL;
    o->v[i].id = rid;
    o->v[i].taken = 1;
    return json_incref(row);
}

/* Reads, validates and notes the id of one row. NULL with err when it cannot be read. */
static json_t *read_one(sl_mp_reader *r, const sl_rows_out *o, unsigned char *seen, size_t i,
                        char *err, size_t errlen)
{
    json_t *had = o->served ? served_row(r, o, i) : NULL;
    if (had)
        return had;
    /* the row's tree from the arena; what validation allocates and drops does not go there */
    if (o->arena)
        sl_json_arena_enter();
    json_t *row = sl_snapshot_read_row(r, o->e, seen, &o->d[i], "", (uint32_t)i, err, errlen);
    sl_json_arena_leave();
    if (row) {
        sl_snapshot_validate_row(o->e, row, &o->v[i]); /* while the row is in cache */
        o->v[i].id = json_string_value(json_object_get(row, "id"));
    }
    return row;
}

/* Rows [0, n) one after another. 0, or -1 with err (rows read so far stay in o->rows for the
 * caller to free). */
static int read_serial(sl_mp_reader *r, const sl_mp_more *more, const sl_rows_out *o, size_t n,
                       char *err, size_t errlen)
{
    /* which fields a row already set: a duplicate key is refused, not silently replaced */
    unsigned char *seen = malloc(o->e->nfields ? o->e->nfields : 1);
    if (!seen) {
        snprintf(err, errlen, "out of memory decoding %s", o->e->name);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const unsigned char *at = r->p;
        while (!(o->rows[i] = read_one(r, o, seen, i, err, errlen))) {
            if (!sl_mp_more_bytes(more, r)) {
                rc = -1;
                break;
            }
            r->p = at;
        }
    }
    sl_json_arena_flush();
    free(seen);
    return rc;
}

/* Below this many rows one thread is faster than starting others. */
#define PARALLEL_MIN 4096
#define CHUNK 1024
#define MAX_THREADS 4
#define PUBLISH_EVERY 64 /* rows skimmed between two updates of the shared count */

/* Rows read on several threads. The calling thread skims the array for row boundaries and
 * publishes how far it got; every thread (the caller too, once done skimming) takes chunks
 * of rows whose boundaries are known. */
typedef struct {
    sl_rows_out out;
    size_t n;
    const unsigned char *base, **starts; /* n + 1 row boundaries */
    atomic_size_t skimmed;               /* starts[0..skimmed] are set */
    atomic_int skim_failed;
    atomic_size_t next; /* first row of the next chunk to take */
    pthread_mutex_t lock;
    size_t bad; /* lowest row that failed, or n */
    char err[512];
} sl_rows_job;

static void take_chunks(sl_rows_job *job)
{
    char err[512];
    unsigned char *seen = malloc(job->out.e->nfields ? job->out.e->nfields : 1);
    for (;;) {
        size_t begin = atomic_fetch_add(&job->next, CHUNK);
        if (begin >= job->n)
            break;
        size_t end = job->n - begin < CHUNK ? job->n : begin + CHUNK;
        while (atomic_load_explicit(&job->skimmed, memory_order_acquire) < end) {
            if (atomic_load(&job->skim_failed))
                goto out;
            sched_yield(); /* the skim runs far ahead of reading: a short wait, first chunk only */
        }
        for (size_t i = begin; i < end; i++) {
            sl_mp_reader r = {.base = job->base, .p = job->starts[i], .end = job->starts[i + 1]};
            if (!seen)
                snprintf(err, sizeof(err), "out of memory decoding %s", job->out.e->name);
            else
                job->out.rows[i] = read_one(&r, &job->out, seen, i, err, sizeof(err));
            if (!job->out.rows[i]) {
                pthread_mutex_lock(&job->lock);
                if (i < job->bad) {
                    job->bad = i;
                    snprintf(job->err, sizeof(job->err), "%s", err);
                }
                pthread_mutex_unlock(&job->lock);
                break;
            }
        }
    }
out:
    sl_json_arena_flush();
    free(seen);
}

static void *helper_main(void *arg)
{
    take_chunks(arg);
    return NULL;
}

static int read_parallel(sl_mp_reader *r, const sl_mp_more *more, const sl_rows_out *o, size_t n,
                         char *err, size_t errlen)
{
    sl_rows_job job = {.out = *o, .n = n, .base = r->base, .bad = n};
    job.starts = malloc((n + 1) * sizeof(*job.starts));
    if (!job.starts) {
        snprintf(err, errlen, "out of memory decoding %s", o->e->name);
        return -1;
    }
    atomic_init(&job.skimmed, 0);
    atomic_init(&job.skim_failed, 0);
    atomic_init(&job.next, 0);
    pthread_mutex_init(&job.lock, NULL);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t helpers = cores > 1 ? (size_t)cores - 1 : 0;
    if (helpers > MAX_THREADS - 1)
        helpers = MAX_THREADS - 1;
    pthread_t tid[MAX_THREADS - 1];
    size_t started = 0;
    for (; started < helpers; started++)
        if (pthread_create(&tid[started], NULL, helper_main, &job) != 0)
            break; /* fewer threads: slower, never incomplete (this one reads too) */

    sl_mp_reader skim = *r;
    job.starts[0] = skim.p;
    int failed = 0;
    for (size_t i = 0; i < n && !failed; i++) {
        while (sl_mp_skip(&skim, err, errlen)) {
            if (!sl_mp_more_bytes(more, &skim)) {
                atomic_store(&job.skim_failed, 1);
                failed = 1;
                break;
            }
            skim.p = job.starts[i];
        }
        if (failed)
            break;
        job.starts[i + 1] = skim.p;
        if ((i + 1) % PUBLISH_EVERY == 0 || i + 1 == n)
            atomic_store_explicit(&job.skimmed, i + 1, memory_order_release);
    }
    if (!atomic_load(&job.skim_failed))
        take_chunks(&job);
    for (size_t t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    pthread_mutex_destroy(&job.lock);
    free(job.starts);
    r->end = skim.end; /* what arrived while skimming */
    if (atomic_load(&job.skim_failed)) {
        /* damaged bytes: start over serially, which names the first row that fails */
        for (size_t i = 0; i < n; i++) {
            json_decref(o->rows[i]);
            o->rows[i] = NULL;
            json_decref(o->v[i].errs);
            memset(&o->v[i], 0, sizeof(o->v[i]));
        }
        return read_serial(r, more, o, n, err, errlen);
    }
    if (job.bad < n) {
        snprintf(err, errlen, "%s", job.err);
        return -1;
    }
    r->p = skim.p;
    return 0;
}

json_t *sl_snapshot_read_rows(sl_mp_reader *r, const sl_mp_more *more, sl_rows_served *served,
                              const sl_entity *e, size_t max_rows, sl_row_digests *digests,
                              sl_row_verdict **verdicts, char *err, size_t errlen)
{
    uint32_t n;
    *verdicts = NULL;
    for (const unsigned char *at = r->p; sl_mp_read_array(r, &n, err, errlen); r->p = at)
        if (!sl_mp_more_bytes(more, r))
            return NULL;
    if (n > max_rows) {
        snprintf(err, errlen, "%s: %u rows, over the limit of %zu", e->name, n, max_rows);
        return NULL;
    }
    /* Not from the arena when rows are taken over from a served config: a chunk lives while
     * any row in it does, so rows kept across many snapshots would pin chunks of rows long
     * gone. Only a decode that shares nothing (a data plane's first config, mostly) uses it, so
     * the chunks in use never hold more than one config's rows. */
    sl_rows_out o = {.e = e,
                     .arena = served == NULL,
                     .served = served && served->digests && served->digests->n &&
                                       json_array_size(served->rows) == served->digests->n
                                   ? served
                                   : NULL};
    o.rows = calloc(n ? n : 1, sizeof(*o.rows));
    o.d = malloc((n ? n : 1) * sizeof(*o.d));
    o.v = calloc(n ? n : 1, sizeof(*o.v));
    json_t *rows = NULL;
    uint32_t i = 0;
    if (!o.rows || !o.d || !o.v) {
        snprintf(err, errlen, "out of memory decoding %s", e->name);
        goto out;
    }
    if ((n >= PARALLEL_MIN ? read_parallel : read_serial)(r, more, &o, n, err, errlen))
        goto out;
    rows = json_array();
    const char *prev = NULL;
    int sorted = 1;
    for (; rows && i < n; i++) {
        const char *id = o.v[i].id;
        if (o.v[i].taken)
            served->taken++;
        if (json_array_append_new(rows, o.rows[i]) ||
            (id && strlen(id) <= SL_UUID_LEN && sl_row_digests_set(digests, id, &o.d[i]))) {
            i++; /* appended (or freed by a failed append): no longer ours */
            json_decref(rows);
            rows = NULL;
            break;
        }
        if (sorted && i > 0 && (!id || !prev || strcmp(prev, id) >= 0))
            sorted = 0;
        prev = id;
    }
    /* Rows in id order are what deltas are applied to (binary search): a sender that did not
     * sort them (not this control plane) is put in order here. */
    if (rows && !sorted) {
        /* the verdicts follow the order read: the checks validate the sorted rows again */
        sl_row_verdicts_free(o.v, n);
        o.v = NULL;
        if (sort_rows(rows)) {
            json_decref(rows);
            rows = NULL;
        }
    }
    if (!rows)
        snprintf(err, errlen, "out of memory decoding %s", e->name);
out:
    for (; o.rows && i < n; i++)
        json_decref(o.rows[i]);
    free(o.rows);
    free(o.d);
    if (rows)
        *verdicts = o.v;
    else
        sl_row_verdicts_free(o.v, n);
    return rows;
}
