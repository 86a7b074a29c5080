#include "proto/local_http.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short events, long long deadline)
{
    long long left = deadline - now_ms();
    if (left <= 0)
        return -1;
    struct pollfd p = {.fd = fd, .events = events};
    return poll(&p, 1, (int)left) == 1 ? 0 : -1;
}

int sl_local_http_get(const char *host, int port, const char *path, const char *bearer,
                      int timeout_ms, char *body, size_t bodylen, char *err, size_t errlen)
{
    if (!strcmp(host, "0.0.0.0") || !strcmp(host, "*"))
        host = "127.0.0.1";
    else if (!strcmp(host, "::"))
        host = "::1";
    long long deadline = now_ms() + timeout_ms;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    int gai = getaddrinfo(host, portstr, &hints, &ai);
    if (gai) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(gai));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS)) {
        snprintf(err, errlen, "cannot connect to %s:%d: %s", host, port, strerror(errno));
        freeaddrinfo(ai);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    freeaddrinfo(ai);
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (wait_fd(fd, POLLOUT, deadline) || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) ||
        soerr) {
        snprintf(err, errlen, "cannot connect to %s:%d: %s", host, port,
                 soerr ? strerror(soerr) : "timed out");
        close(fd);
        return -1;
    }
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n%s%s%s\r\n", path,
                     host, port, bearer ? "Authorization: Bearer " : "", bearer ? bearer : "",
                     bearer ? "\r\n" : "");
    if (n >= (int)sizeof(req) || write(fd, req, (size_t)n) != n) {
        snprintf(err, errlen, "cannot send request to %s:%d", host, port);
        close(fd);
        return -1;
    }
    char buf[16384];
    size_t got = 0;
    for (;;) {
        if (wait_fd(fd, POLLIN, deadline)) {
            snprintf(err, errlen, "no answer from %s:%d within %d ms", host, port, timeout_ms);
            close(fd);
            return -1;
        }
        ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == sizeof(buf) - 1)
            break;
    }
    close(fd);
    buf[got] = 0;
    int status;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
        snprintf(err, errlen, "not an HTTP answer from %s:%d", host, port);
        return -1;
    }
    const char *b = strstr(buf, "\r\n\r\n");
    snprintf(body, bodylen, "%s", b ? b + 4 : "");
    return status;
}
