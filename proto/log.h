#ifndef SL_LOG_H
#define SL_LOG_H

/* Levels as nginx names them, so "[alert]" in a log means what operators expect. */
typedef enum {
    SL_LOG_DEBUG,
    SL_LOG_INFO,
    SL_LOG_NOTICE,
    SL_LOG_WARN,
    SL_LOG_ERROR,
    SL_LOG_CRIT,
    SL_LOG_ALERT,
} sl_log_level;

/* Parses "debug".."alert"; returns -1 for an unknown name. */
int sl_log_level_parse(const char *name);

/* Sets the lowest level written (default info). Thread-safe to call once at start. */
void sl_log_set_level(sl_log_level level);

/* True when a message at this level would be written: lets callers skip costly formatting. */
int sl_log_enabled(sl_log_level level);

/* Writes one line to stderr: "2026/11/26 04:05:06 [warn] 1234#5: message". Thread-safe:
 * each line is formatted into a local buffer and written with one write(2). */
void sl_log(sl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define sl_debug(...) sl_log(SL_LOG_DEBUG, __VA_ARGS__)
#define sl_info(...) sl_log(SL_LOG_INFO, __VA_ARGS__)
#define sl_notice(...) sl_log(SL_LOG_NOTICE, __VA_ARGS__)
#define sl_warn(...) sl_log(SL_LOG_WARN, __VA_ARGS__)
#define sl_error(...) sl_log(SL_LOG_ERROR, __VA_ARGS__)
#define sl_alert(...) sl_log(SL_LOG_ALERT, __VA_ARGS__)

#endif
