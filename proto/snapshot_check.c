/* Whole-snapshot checks (proto/snapshot_check.h). */
#include "proto/snapshot_check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/parallel.h"
#include "proto/schema.h"
#include "proto/snapshot.h"
#include "proto/sort.h"

/* Collects reasons, keeping at most SL_SNAPSHOT_MAX_REASONS of them but counting all, and
 * remembering the first as text. */
typedef struct {
    json_t *list;
    long count;
    char *first;
    size_t firstlen;
} sl_reasons;

static void reason_add(sl_reasons *rs, const sl_entity *e, const char *id, json_t *fields,
                       const char *text)
{
    if (rs->count == 0)
        snprintf(rs->first, rs->firstlen, "%s %s: %s", e->name, id ? id : "(no id)", text);
    rs->count++;
    if (json_array_size(rs->list) < SL_SNAPSHOT_MAX_REASONS) {
        json_array_append_new(rs->list, json_pack("{s:s, s:o?, s:o}", "entity", e->name, "id",
                                                  id ? json_string(id) : NULL, "errors", fields));
    } else {
        json_decref(fields);
    }
}

/* Sorted ids of one entity, for reference checks by binary search. */
typedef struct {
    const char **ids;
    size_t n;
} sl_id_index;

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *row_id(const json_t *row)
{
    return json_string_value(json_object_get(row, "id"));
}

static int id_present(const sl_id_index *idx, const char *id)
{
    return bsearch(&id, idx->ids, idx->n, sizeof(*idx->ids), str_cmp) != NULL;
}

/* One row to check, and what the checks said about it. */
typedef struct {
    const sl_entity *e;
    size_t x; /* e's index in sl_entities */
    json_t *row;
    const char *id; /* once validated (validation may rewrite it) */
    json_t *errs;   /* fields object when invalid */
    int count;      /* number of schema violations; 0: valid */
    int validated;  /* by the decoder already */
    int bad_refs;   /* some reference names a row not in the snapshot */
} sl_row_check;

typedef struct {
    sl_row_check *checks;
    const sl_id_index *index; /* per entity */
    const size_t *targets;    /* [x * maxf + k]: entity field k of entity x refers to */
    size_t maxf;
} sl_check_job;

/* The entity a FOREIGN field refers to (sl_entity_count when it names none). */
static size_t target_of(const sl_field *f)
{
    size_t t = 0;
    while (f->ref && t < sl_entity_count && strcmp(sl_entities[t]->name, f->ref) != 0)
        t++;
    return f->ref ? t : sl_entity_count;
}

/* The reference named by FOREIGN field f of row, when it names no row of the snapshot. */
static const char *dangling_ref(const sl_check_job *job, const json_t *row, size_t x, size_t k)
{
    const sl_field *f = &sl_entities[x]->fields[k];
    const char *ref = json_string_value(json_object_get(json_object_get(row, f->name), "id"));
    size_t t = job->targets[x * job->maxf + k];
    if (!ref || (t < sl_entity_count && id_present(&job->index[t], ref)))
        return NULL;
    return ref;
}

void sl_snapshot_validate_row(const sl_entity *e, json_t *row, sl_row_verdict *v)
{
    v->errs = NULL;
    v->count = sl_schema_validate(e, row, SL_VALIDATE_CANONICAL, &v->errs);
}

static void validate_range(void *arg, size_t begin, size_t end)
{
    sl_check_job *job = arg;
    for (size_t i = begin; i < end; i++) {
        sl_row_check *c = &job->checks[i];
        if (!c->validated) {
            c->count = sl_schema_validate(c->e, c->row, SL_VALIDATE_CANONICAL, &c->errs);
            c->id = row_id(c->row);
        }
    }
}

/* After validation (which may rewrite values, ids included) and indexing: rows only read. */
static void references_range(void *arg, size_t begin, size_t end)
{
    sl_check_job *job = arg;
    for (size_t i = begin; i < end; i++) {
        sl_row_check *c = &job->checks[i];
        for (size_t k = 0; k < c->e->nfields && !c->bad_refs; k++)
            if (c->e->fields[k].type == SL_T_FOREIGN && dangling_ref(job, c->row, c->x, k))
                c->bad_refs = 1;
    }
}

/* Rows are independent and validation is CPU-bound, so a large snapshot is checked on a few
 * cores (the schema code keeps no shared mutable state); below this many rows a single thread
 * is faster than starting others. */
#define SL_PARALLEL_MIN_ROWS 4096
#define SL_PARALLEL_CHUNK 512
#define SL_PARALLEL_THREADS 4

static void run(sl_check_job *job, size_t total, void (*fn)(void *, size_t, size_t))
{
    if (total >= SL_PARALLEL_MIN_ROWS)
        sl_parallel_for(total, SL_PARALLEL_CHUNK, SL_PARALLEL_THREADS, fn, job);
    else
        fn(job, 0, total);
}

/* Indexes the ids of every entity (rows come in id order, so sorting is rarely needed). */
static int index_ids(const sl_check_job *job, size_t total, sl_id_index *index)
{
    size_t k = 0;
    for (size_t x = 0; x < sl_entity_count; x++) {
        size_t first = k;
        while (k < total && job->checks[k].x == x)
            k++;
        sl_id_index *idx = &index[x];
        idx->ids = malloc((k - first ? k - first : 1) * sizeof(*idx->ids));
        if (!idx->ids)
            return -1;
        int sorted = 1;
        for (size_t i = first; i < k; i++) {
            const char *id = job->checks[i].id;
            if (!id)
                continue;
            if (idx->n && strcmp(idx->ids[idx->n - 1], id) > 0)
                sorted = 0;
            idx->ids[idx->n++] = id;
        }
        if (!sorted)
            sl_sort(idx->ids, idx->n, sizeof(*idx->ids), str_cmp);
    }
    return 0;
}

/* Reasons in the order a user reads them: per entity its rows' schema violations then its
 * duplicate ids; after every entity, the references that point nowhere. */
static void report(const sl_check_job *job, size_t total, sl_reasons *rs)
{
    size_t k = 0;
    for (size_t x = 0; x < sl_entity_count; x++) {
        const sl_entity *e = sl_entities[x];
        for (; k < total && job->checks[k].x == x; k++) {
            sl_row_check *c = &job->checks[k];
            const char *id = c->id;
            if (c->count) {
                char *msg = sl_schema_violation_message(c->errs, c->count);
                reason_add(rs, e, id, c->errs ? c->errs : json_object(),
                           msg ? msg : "schema violation");
                c->errs = NULL;
                free(msg);
            }
            if (!id && !c->count) /* the store always sets id (SL_F_AUTO): a row without one
                                     cannot be referenced, diffed or reported */
                reason_add(rs, e, NULL, json_pack("{s:s}", "id", "required field missing"),
                           "id: required field missing");
        }
        const sl_id_index *idx = &job->index[x];
        for (size_t i = 1; i < idx->n; i++)
            if (strcmp(idx->ids[i - 1], idx->ids[i]) == 0)
                reason_add(rs, e, idx->ids[i], json_pack("{s:s}", "id", "duplicate id in snapshot"),
                           "duplicate id in snapshot");
    }
    for (size_t x = 0, first = 0; x < sl_entity_count; x++) {
        const sl_entity *e = sl_entities[x];
        size_t last = first;
        while (last < total && job->checks[last].x == x)
            last++;
        for (size_t f = 0; f < e->nfields; f++) {
            if (e->fields[f].type != SL_T_FOREIGN)
                continue;
            for (size_t i = first; i < last; i++) {
                const char *ref;
                if (!job->checks[i].bad_refs ||
                    !(ref = dangling_ref(job, job->checks[i].row, x, f)))
                    continue;
                char msg[256];
                snprintf(msg, sizeof(msg), "references %s id %s, which is not in the snapshot",
                         e->fields[f].ref, ref);
                reason_add(rs, e, job->checks[i].id, json_pack("{s:s}", e->fields[f].name, msg),
                           msg);
            }
        }
        first = last;
    }
}

long sl_snapshot_check(json_t *cfg, sl_row_verdict *const *verdicts, json_t **reasons, char *first,
                       size_t firstlen)
{
    size_t total = 0, maxf = 1;
    for (size_t x = 0; x < sl_entity_count; x++) {
        total += json_array_size(json_object_get(cfg, sl_entities[x]->name));
        if (sl_entities[x]->nfields > maxf)
            maxf = sl_entities[x]->nfields;
    }
    sl_check_job job = {.maxf = maxf};
    sl_id_index *index = calloc(sl_entity_count, sizeof(*index));
    size_t *targets = calloc(sl_entity_count * maxf, sizeof(*targets));
    job.checks = calloc(total ? total : 1, sizeof(*job.checks));
    sl_reasons rs = {.list = json_array(), .first = first, .firstlen = firstlen};
    long rc = -1;
    if (firstlen)
        first[0] = '\0';
    if (!index || !targets || !job.checks || !rs.list) {
        for (size_t x = 0; verdicts && x < sl_entity_count; x++) /* taken over: released */
            for (size_t i = 0;
                 verdicts[x] && i < json_array_size(json_object_get(cfg, sl_entities[x]->name));
                 i++)
                json_decref(verdicts[x][i].errs);
        goto out;
    }
    job.index = index;
    job.targets = targets;
    size_t k = 0, unvalidated = 0;
    for (size_t x = 0; x < sl_entity_count; x++) {
        const sl_entity *e = sl_entities[x];
        for (size_t f = 0; f < e->nfields; f++)
            targets[x * maxf + f] = target_of(&e->fields[f]);
        json_t *rows = json_object_get(cfg, e->name);
        const sl_row_verdict *pre = verdicts ? verdicts[x] : NULL;
        for (size_t i = 0; i < json_array_size(rows); i++, k++) {
            job.checks[k] = (sl_row_check){.e = e, .x = x, .row = json_array_get(rows, i)};
            if (pre) {
                job.checks[k].validated = 1;
                job.checks[k].count = pre[i].count;
                job.checks[k].errs = pre[i].errs;
                job.checks[k].id = pre[i].id;
            }
        }
        unvalidated += pre ? 0 : json_array_size(rows);
    }
    if (unvalidated)
        run(&job, total, validate_range);
    if (index_ids(&job, total, index))
        goto out;
    run(&job, total, references_range);
    report(&job, total, &rs);
    rc = rs.count;
out:
    if (job.checks)
        for (size_t i = 0; i < total; i++)
            json_decref(job.checks[i].errs);
    if (index)
        for (size_t x = 0; x < sl_entity_count; x++)
            free(index[x].ids);
    free(index);
    free(targets);
    free(job.checks);
    if (rc < 0) {
        json_decref(rs.list);
        rs.list = NULL;
    }
    *reasons = rs.list;
    return rc;
}
