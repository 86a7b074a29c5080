#include "proto/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"debug", "info", "notice", "warn",
                                          "error", "crit", "alert"};
static volatile int min_level = SL_LOG_INFO;

int sl_log_level_parse(const char *name)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

void sl_log_set_level(sl_log_level level)
{
    min_level = (int)level;
}

int sl_log_enabled(sl_log_level level)
{
    return (int)level >= min_level;
}

void sl_log(sl_log_level level, const char *fmt, ...)
{
    if (!sl_log_enabled(level))
        return;
    char line[2048];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    int n = (int)strftime(line, sizeof(line), "%Y/%m/%d %H:%M:%S", &tm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, " [%s] %d#%ld: ", level_names[level],
                  (int)getpid(), (long)syscall(SYS_gettid));
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    /* One write per line keeps lines from different threads whole. */
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
