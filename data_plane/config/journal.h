#ifndef DP_JOURNAL_H
#define DP_JOURNAL_H

/* The data plane's on-disk config: <prefix>/config.snapshot (the last whole snapshot, written
 * atomically) plus <prefix>/config.journal, the deltas applied since, appended and fsynced one
 * record at a time before they are acknowledged. A restart loads the snapshot, then replays
 * the journal's deltas that follow on from it; a record cut short by a crash is ignored.
 *
 * Record: 4 bytes big-endian length, then a delta envelope (proto/snapshot_delta.h). */

#include <stddef.h>
#include <stdint.h>

/* Appends one delta and fsyncs. Returns 0, or -1 with err. */
int dp_journal_append(const char *dir, const unsigned char *delta, size_t len, char *err,
                      size_t errlen);

/* Removes the journal (after a whole snapshot was saved). */
void dp_journal_clear(const char *dir);

/* Size of the journal in bytes (0 when there is none). */
size_t dp_journal_size(const char *dir);

/* Calls apply(arg, record, len) for each whole record in order until one returns nonzero.
 * Returns the number of records applied, or -1 with err when the file can't be read. Records
 * over max_record bytes end the replay (a damaged length). */
typedef int (*dp_journal_apply_fn)(void *arg, const unsigned char *rec, size_t len);
long dp_journal_replay(const char *dir, size_t max_record, dp_journal_apply_fn apply, void *arg,
                       char *err, size_t errlen);

#endif
