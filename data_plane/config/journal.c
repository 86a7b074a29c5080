/* Delta journal (data_plane/config/journal.h). */
#include "data_plane/config/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOURNAL_NAME "config.journal"

static void path_of(const char *dir, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", dir, JOURNAL_NAME);
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int dp_journal_append(const char *dir, const unsigned char *delta, size_t len, char *err,
                      size_t errlen)
{
    char path[4200];
    path_of(dir, path, sizeof(path));
    if (len > UINT32_MAX) {
        snprintf(err, errlen, "delta of %zu bytes is too large to journal", len);
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    unsigned char head[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
                             (unsigned char)(len >> 8), (unsigned char)len};
    /* one record at the end of the file: a crash mid-write leaves a short last record, which
     * replay ignores */
    if (write_all(fd, head, 4) || write_all(fd, delta, len) || fsync(fd)) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

void dp_journal_clear(const char *dir)
{
    char path[4200];
    path_of(dir, path, sizeof(path));
    unlink(path);
}

size_t dp_journal_size(const char *dir)
{
    char path[4200];
    struct stat st;
    path_of(dir, path, sizeof(path));
    return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

long dp_journal_replay(const char *dir, size_t max_record, dp_journal_apply_fn apply, void *arg,
                       char *err, size_t errlen)
{
    char path[4200];
    path_of(dir, path, sizeof(path));
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    long applied = 0;
    unsigned char head[4];
    while (fread(head, 1, 4, f) == 4) {
        size_t len = (size_t)head[0] << 24 | (size_t)head[1] << 16 | (size_t)head[2] << 8 | head[3];
        if (len == 0 || len > max_record)
            break;
        unsigned char *rec = malloc(len);
        if (!rec || fread(rec, 1, len, f) != len) { /* cut short by a crash: the end */
            free(rec);
            break;
        }
        int rc = apply(arg, rec, len);
        free(rec);
        if (rc)
            break;
        applied++;
    }
    fclose(f);
    return applied;
}
