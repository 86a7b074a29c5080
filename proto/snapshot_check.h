#ifndef SL_SNAPSHOT_CHECK_H
#define SL_SNAPSHOT_CHECK_H

/* Whole-snapshot checks after decoding: every row valid by its entity's schema, ids present
 * and unique, and every reference naming a row of the same snapshot. Shared by the snapshot
 * decoder (what a data plane applies) and anything else that must refuse a config the way a
 * data plane would. */

#include <jansson.h>
#include <stddef.h>

/* Checks cfg ({"<entity>": [rows...]} for every known entity, each array in id order as the
 * decoder leaves it). Rows are validated in place (SL_VALIDATE_JSON), on several threads when
 * there are many. Returns the number of violations found (0: valid); *reasons gets a new
 * array of at most SL_SNAPSHOT_MAX_REASONS {"entity", "id", "errors"} objects in entity and
 * row order (validation first, then references), and first the text of the first one.
 * Returns -1 when out of memory (*reasons NULL). */
long sl_snapshot_check(json_t *cfg, json_t **reasons, char *first, size_t firstlen);

#endif
