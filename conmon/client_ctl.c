/* Talking to a running monitor: its control and attach sockets in
 * <socket-dir>/<id>/ (SOCK_SEQPACKET, see PROTOCOL.md). */
#include "conmon-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

#define DEFAULT_CTL_TIMEOUT_MS 10000

/* Connects to <socket_dir>/<id>/<name>; paths too long for sun_path go
 * through /proc/self/fd/<dirfd>/<name>. */
static int connect_at(const char *socket_dir, const char *id, const char *name, int *ret_fd,
                      cri_error_t *err)
{
    if (!id || !*id || strchr(id, '/'))
        return cri_error_set(err, EINVAL, "bad container id");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    cleanup_free char *dir = xasprintf("%s/%s", socket_dir, id);
    cleanup_close int dir_fd = -1;
    int n = snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(addr.sun_path)) {
        dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
            return cri_error_set(err, ESRCH, "container `%s` has no running monitor", id);
        n = snprintf(addr.sun_path, sizeof(addr.sun_path), "/proc/self/fd/%d/%s", dir_fd, name);
        if (n < 0 || (size_t)n >= sizeof(addr.sun_path))
            return cri_error_set(err, ENAMETOOLONG, "socket name `%s` is too long", name);
    }
    cleanup_close int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return cri_error_make(err, errno, "socket");
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        if (errno == ENOENT || errno == ECONNREFUSED || errno == ENOTDIR)
            return cri_error_set(err, ESRCH, "container `%s` has no running monitor", id);
        return cri_error_make(err, errno, "connect `%s`", addr.sun_path);
    }
    *ret_fd = TAKE_FD(fd);
    return 0;
}

int conmon_ctl_exchange(int fd, const char *req, int timeout_ms, const char *id, cri_error_t *err)
{
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0)
        return cri_error_make(err, errno, "send to monitor of `%s`", id);
    struct pollfd p = {fd, POLLIN, 0};
    int n;
    do
        n = poll(&p, 1, timeout_ms > 0 ? timeout_ms : DEFAULT_CTL_TIMEOUT_MS);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        return cri_error_set(err, ETIMEDOUT, "monitor of `%s` did not answer", id);
    char buf[600];
    ssize_t got = n < 0 ? -1 : recv(fd, buf, sizeof(buf) - 1, 0);
    if (got < 0)
        return cri_error_make(err, errno, "receive from monitor of `%s`", id);
    if (got == 0)
        return cri_error_set(err, ESRCH, "monitor of `%s` went away", id);
    buf[got] = '\0';
    if (strcmp(buf, "ok") == 0)
        return 0;
    unsigned long status = 0;
    const char *msg = NULL;
    if (str_has_prefix(buf, "error ") && parse_ulong_prefix(buf + 6, INT_MAX, &status, &msg)) {
        msg += strspn(msg, " \t\n");
        return cri_error_set(err, status > 0 ? (int)status : EIO, "monitor of `%s`: %s", id, msg);
    }
    return cri_error_set(err, EPROTO, "monitor of `%s`: bad answer", id);
}

/* Sends one request on a new connection to `id`'s ctl socket. */
static int ctl_request(const char *socket_dir, const char *id, const char *req, int timeout_ms,
                       cri_error_t *err)
{
    cleanup_close int fd = -1;
    if (connect_at(socket_dir, id, "ctl", &fd, err) < 0)
        return -1;
    return conmon_ctl_exchange(fd, req, timeout_ms, id, err);
}

int conmon_reopen_log(const char *socket_dir, const char *id, int timeout_ms, cri_error_t *err)
{
    return ctl_request(socket_dir, id, "reopen", timeout_ms, err);
}

int conmon_resize(const char *socket_dir, const char *id, unsigned width, unsigned height,
                  cri_error_t *err)
{
    char req[64];
    (void)snprintf(req, sizeof(req), "resize %u %u", width, height);
    return ctl_request(socket_dir, id, req, 0, err);
}

int conmon_attach_connect(const char *socket_dir, const char *id, int *ret_fd, cri_error_t *err)
{
    return connect_at(socket_dir, id, "attach", ret_fd, err);
}
