#ifndef SL_SNAPSHOT_CHECK_H
#define SL_SNAPSHOT_CHECK_H

/* Whole-snapshot checks after decoding: every row valid by its entity's schema, ids present
 * and unique, and every reference naming a row of the same snapshot. Shared by the snapshot
 * decoder (what a data plane applies) and anything else that must refuse a config the way a
 * data plane would. */

#include <jansson.h>
#include <stddef.h>

#include "proto/schema.h"

/* What validating one row said: sl_schema_validate's count and fields object. */
typedef struct {
    int count;
    json_t *errs;
    const char *id; /* the row's id after validation (NULL: none), owned by the row */
    int taken;      /* the row is a served one, taken over unread (sl_snapshot_decode_served) */
} sl_row_verdict;

/* Validates row i of entity e into v (what the decoder does while a row is still in cache). */
void sl_snapshot_validate_row(const sl_entity *e, json_t *row, sl_row_verdict *v);

/* Checks cfg ({"<entity>": [rows...]} for every known entity, each array in id order as the
 * decoder leaves it). verdicts is NULL or has one entry per entity (sl_entities order): NULL,
 * or the verdicts of that entity's rows in array order (the decoder validated them; their
 * errs are taken over). Other rows are validated here in place (SL_VALIDATE_CANONICAL), on several
 * threads when there are many. Returns the number of violations found (0: valid); *reasons gets a
 * new array of at most SL_SNAPSHOT_MAX_REASONS {"entity", "id", "errors"} objects in entity and row
 * order (validation first, then references), and first the text of the first one. Returns -1 when
 * out of memory (*reasons NULL). */
long sl_snapshot_check(json_t *cfg, sl_row_verdict *const *verdicts, json_t **reasons, char *first,
                       size_t firstlen);

#endif
