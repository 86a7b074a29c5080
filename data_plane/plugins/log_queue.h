#ifndef DP_LOG_QUEUE_H
#define DP_LOG_QUEUE_H

/* The shared off-loop log writer for file-log and http-log. A worker hands a finished log line
 * to dp_log_push: a lock-free bounded ring and a semaphore post, never a lock, a syscall that
 * can block, or a failure the request sees. One log thread drains the ring: it appends lines to
 * files itself and passes HTTP entries to the sink's sender thread, which batches, POSTs, and
 * retries with backoff using blocking sockets that only ever stall itself. When a sink's bound
 * (or the ring) is full the entry is dropped and counted.
 *
 * Sinks are shared by key (the same file, or the same http-log config), refcounted: each
 * plugin instance holds one reference, and each entry in the ring one more, so a sink outlives
 * the generation that created it until its last line is out. */

#include <stddef.h>
#include <stdint.h>

#define DP_LOG_RING 16384     /* entries in flight from workers to the log thread */
#define DP_LOG_FILE_MAX 10000 /* file-log: entries queued per file before dropping */
#define DP_LOG_MAX_LINE 65536 /* a longer entry is dropped (and counted) */

typedef struct dp_log_sink dp_log_sink;

/* Opens (or shares) the sink writing JSON lines to path. reopen: close the file after every
 * write, so rotation by rename needs no signal. The file is opened by the log thread on first
 * write; a failure there is logged once and the lines are counted as failed. Returns a
 * reference for dp_log_sink_release, or NULL when out of memory. */
dp_log_sink *dp_log_sink_file(const char *path, int reopen);

/* A sink whose entries someone else delivers (http-log). Called on the log thread only. */
typedef struct {
    /* Takes the entry (ownership of line). The sink must later call dp_log_done for it, from
     * any thread, once it is delivered or given up. */
    void (*deliver)(void *ud, char *line, size_t len);
    /* The sink is dead (no plugin instance uses it and every entry is done): release ud. */
    void (*destroy)(void *ud);
} dp_log_sink_ops;

/* Opens (or shares, when key matches a live sink of the same ops) a custom sink. key
 * identifies the configuration; max_queued bounds entries queued or in delivery, max_bytes
 * (<= 0: no bound) their bytes (Kong's queue.max_entries and queue.max_bytes); plugin
 * names the metrics series ("http-log"). ud is created by the caller only when *created is
 * set on return: pass make(arg) to build it lazily. NULL when out of memory or make fails. */
dp_log_sink *dp_log_sink_custom(const char *key, const dp_log_sink_ops *ops, long max_queued,
                                long max_bytes, const char *plugin,
                                void *(*make)(void *arg, dp_log_sink *s), void *arg);

/* The custom sink delivered (failed = 0) or gave up on (failed = 1) n entries of bytes bytes
 * in all (the lengths given to deliver). Any thread;
 * drops the entries' references, so the caller must not touch s afterwards. */
void dp_log_done(dp_log_sink *s, size_t n, size_t bytes, int failed);

/* Drops a reference taken by dp_log_sink_file/http. Any thread. */
void dp_log_sink_release(dp_log_sink *s);

/* Queues one entry (without a trailing newline); takes ownership of line (malloc'd) in every
 * case. Returns 0 when queued, -1 when dropped (sink bound or ring full, line too long). */
int dp_log_push(dp_log_sink *s, char *line, size_t len);

/* Entries this sink dropped on push, and entries it failed to write/send. */
uint64_t dp_log_sink_dropped(const dp_log_sink *s);
uint64_t dp_log_sink_failed(const dp_log_sink *s);

/* Waits up to timeout_ms until every queued entry of every sink is written or sent (or given
 * up). Returns 0 when all is out, -1 on timeout. For shutdown and tests. */
int dp_log_flush(long timeout_ms);

/* The log entry of a finished request in Kong's basic serializer shape (request, response,
 * route, service, consumer, latencies, client_ip, started_at, ...), one JSON line without a
 * newline; Authorization, Proxy-Authorization, Cookie and Set-Cookie values are "REDACTED".
 * Returns a malloc'd string (the caller frees or pushes it), *len its length; NULL when out of
 * memory. Implemented in file_log.c; http-log sends the same entries. */
struct dp_plugin_req;
char *dp_log_serialize(struct dp_plugin_req *req, size_t *len);

#endif
