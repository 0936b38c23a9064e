/* The real attach backend: the container's monitor keeps an attach socket
 * (conmon/PROTOCOL.md "Attach socket"): SOCK_SEQPACKET, monitor-to-client
 * packets are one stream byte (1 stdout, 2 stderr) and the bytes of one
 * read; client-to-monitor packets go to the container's stdin, and
 * shutdown(SHUT_WR) ends our input (closing stdin with stdin_once). The
 * terminal size goes through the monitor's control socket. The loop runs
 * until the monitor closes the socket (the container exited) or the
 * client went away (io->cancel). */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "conmon/conmon.h"
#include "server/daemon.h"
#include "server/streaming/streaming-internal.h"

#define ATTACH_PACKET 8193 /* stream byte + at most 8192 bytes */

/* One packet from the monitor to the client's stdout/stderr. 0 = go on,
 * 1 = the monitor closed the socket. */
static int from_monitor(int sock, const streaming_stdio_t *io)
{
    uint8_t pkt[ATTACH_PACKET];
    ssize_t k = recv(sock, pkt, sizeof(pkt), 0);
    if (k < 0 && errno == EINTR)
        return 0;
    if (k <= 0)
        return 1;
    int fd = pkt[0] == 2 && io->err >= 0 ? io->err : io->out;
    if (fd >= 0 && k > 1 && write_all(fd, pkt + 1, (size_t)k - 1) < 0)
        return 1; /* the client is gone */
    return 0;
}

/* Client stdin to the monitor; EOF half-closes the socket. */
static void to_monitor(int sock, int *in)
{
    uint8_t buf[ATTACH_PACKET - 1];
    ssize_t k = read(*in, buf, sizeof(buf));
    if (k < 0 && errno == EINTR)
        return;
    if (k <= 0) {
        shutdown(sock, SHUT_WR);
        *in = -1; /* stop polling it; the caller closes the fd */
        return;
    }
    if (send(sock, buf, (size_t)k, MSG_NOSIGNAL) < 0) {
        shutdown(sock, SHUT_WR);
        *in = -1;
    }
}

static void resize(const struct daemon *d, const char *id, int fd)
{
    streaming_winsize_t ws;
    if (read(fd, &ws, sizeof(ws)) != sizeof(ws))
        return;
    cri_error_t ignore = CRI_ERROR_INIT;
    daemon_conmon_ops(d)->resize(daemon_conmon_dir(d), id, ws.width, ws.height,
                                 &ignore); /* best effort */
}

int streaming_attach_conmon(void *data, const streaming_request_t *r, const streaming_stdio_t *io,
                            cri_error_t *err)
{
    struct daemon *d = data;
    cleanup_close int sock = -1;
    if (daemon_conmon_ops(d)->attach_connect(daemon_conmon_dir(d), r->container_id, &sock, err) < 0)
        return cri_error_wrap(err, "attach to container `%s`", r->container_id);
    int in = r->in ? io->in : -1;
    if (in < 0)
        shutdown(sock, SHUT_WR);
    int resize_fd = io->resize;
    for (;;) {
        struct pollfd p[4] = {{.fd = sock, .events = POLLIN},
                              {.fd = in, .events = POLLIN},
                              {.fd = resize_fd, .events = POLLIN},
                              {.fd = io->cancel, .events = POLLIN}};
        if (poll(p, 4, -1) < 0) {
            if (errno == EINTR)
                continue;
            return cri_error_make(err, errno, "poll");
        }
        if (p[3].revents)
            return 0;
        if (p[2].revents & POLLIN)
            resize(d, r->container_id, resize_fd);
        else if (p[2].revents)
            resize_fd = -1;
        if (p[1].revents)
            to_monitor(sock, &in);
        if (p[0].revents && from_monitor(sock, io))
            return 0;
    }
}
