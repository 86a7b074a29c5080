#include "proto/node_id.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/uuid.h"

int sl_prefix_ensure(const char *prefix, char *err, size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s", prefix) >= (int)sizeof(path)) {
        snprintf(err, errlen, "prefix: path too long");
        return -1;
    }
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(path, 0700) && errno != EEXIST) {
            snprintf(err, errlen, "prefix: cannot create %s: %s", path, strerror(errno));
            return -1;
        }
        *p = '/';
    }
    if (mkdir(path, 0700) && errno != EEXIST) {
        snprintf(err, errlen, "prefix: cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int sl_node_id_load(const char *prefix, char out[37], char *err, size_t errlen)
{
    if (sl_prefix_ensure(prefix, err, errlen))
        return -1;
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/node_id", prefix);
    FILE *f = fopen(path, "r");
    if (f) {
        char buf[64] = "";
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        buf[strcspn(buf, "\r\n ")] = 0;
        if (sl_uuid_is_valid(buf)) {
            memcpy(out, buf, 37);
            return 0;
        }
        /* A damaged id file gets a fresh id rather than a node that cannot start. */
    }
    sl_uuid_v4(out);
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    char line[40];
    int len = snprintf(line, sizeof(line), "%s\n", out);
    if (write(fd, line, (size_t)len) != len || fsync(fd)) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, path)) {
        snprintf(err, errlen, "cannot rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
