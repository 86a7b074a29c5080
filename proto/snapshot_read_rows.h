#ifndef SL_SNAPSHOT_READ_ROWS_H
#define SL_SNAPSHOT_READ_ROWS_H

/* One entity's array of canonical rows turned into JSON rows, their digests and their
 * validation verdicts: the bulk of decoding a whole snapshot. A large array is read on several
 * threads while its row boundaries are still being found, so the cores that are not finding
 * boundaries do not wait for them. */

#include <jansson.h>

#include "proto/config_hash.h"
#include "proto/msgpack_json.h"
#include "proto/schema.h"
#include "proto/snapshot_check.h"

/* Reads the array at r (more: NULL, or where bytes still to come are waited for; served: NULL,
 * or rows that may be taken over) into a new JSON
 * array of e's rows (fields e's schema does not know are dropped), in id order. Each row's digest
 * goes into digests (rows without a usable id get none: the hash check or validation refuses them).
 * *verdicts gets a new array of one verdict per row in the returned order (rows validated while in
 * cache), or NULL when rows had to be put in order (the checks validate them then). More than
 * max_rows rows is refused. Returns NULL with err (naming the first row that fails, as a serial
 * read would). */
/* Rows a data plane already serves (sorted by id) and their digests (the same ids, in the same
 * order): a row read whose bytes hash to the digest of the served row with its id is that row,
 * shared and not decoded or validated again. */
typedef struct {
    const json_t *rows;
    const sl_row_digests *digests;
    size_t taken; /* out: rows taken over */
} sl_rows_served;

json_t *sl_snapshot_read_rows(sl_mp_reader *r, const sl_mp_more *more, sl_rows_served *served,
                              const sl_entity *e, size_t max_rows, sl_row_digests *digests,
                              sl_row_verdict **verdicts, char *err, size_t errlen);

/* Frees n verdicts and their errs. NULL is ignored. */
void sl_row_verdicts_free(sl_row_verdict *v, size_t n);

#endif
