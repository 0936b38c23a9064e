/* The real exec backend: the container's process object (server/container,
 * as ExecSync) with args = cmd, run by a monitor in interactive exec mode
 * (conmon/PROTOCOL.md "Interactive exec"). The monitor serves the process's
 * stdio on a SOCK_SEQPACKET socket in the attach packet format and takes
 * resize requests on a second one. This loop relays:
 *   monitor packets -> io->out / io->err (stream byte 1 / 2);
 *   io->in -> monitor packets, EOF -> shutdown(SHUT_WR) (closes stdin);
 *   io->resize records -> resize requests;
 *   io->cancel -> close our sockets: the monitor SIGKILLs the process.
 * EOF from the monitor means the process exited and its output is drained;
 * the exit code follows on the monitor's sync pipe. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "conmon/conmon.h"
#include "server/container/container.h"
#include "server/daemon.h"
#include "server/streaming/streaming-internal.h"

#define EXEC_PACKET 8193         /* stream byte + at most 8192 bytes */
#define EXEC_REPORT_MS 30000     /* exit report after the output ended */
#define EXEC_KILL_REPORT_MS 5000 /* exit report after a cancel */

typedef struct relay {
    conmon_exec_live_t *x;
    int sock;
    int in;     /* client stdin, -1 once it ended */
    int resize; /* -1 once it ended */
    uint8_t pending[EXEC_PACKET];
    size_t pending_len; /* stdin the monitor has not taken yet */
    bool in_eof;        /* shut down our sending side once pending is out */
} relay_t;

/* One packet from the monitor. 0 = go on, 1 = the output ended (or the
 * client is gone). */
static int from_monitor(relay_t *rl, const streaming_stdio_t *io)
{
    uint8_t pkt[EXEC_PACKET];
    ssize_t k = recv(rl->sock, pkt, sizeof(pkt), 0);
    if (k < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (k <= 0)
        return 1;
    int fd = pkt[0] == 2 ? io->err : io->out;
    if (fd >= 0 && k > 1 && write_all(fd, pkt + 1, (size_t)k - 1) < 0)
        return 1;
    return 0;
}

/* Sends what stdin left pending; the monitor pauses its clients while the
 * process's stdin is full, then our send says EAGAIN and we wait POLLOUT. */
static void flush_pending(relay_t *rl)
{
    if (rl->pending_len > 0) {
        ssize_t k = send(rl->sock, rl->pending, rl->pending_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        rl->pending_len = 0; /* sent, or the monitor is gone (EOF shows up) */
    }
    if (rl->in_eof) {
        shutdown(rl->sock, SHUT_WR);
        rl->in_eof = false;
    }
}

static void from_client(relay_t *rl)
{
    ssize_t k = read(rl->in, rl->pending, sizeof(rl->pending) - 1);
    if (k < 0 && errno == EINTR)
        return;
    if (k <= 0) {
        rl->in = -1; /* the session closes the fd */
        rl->in_eof = true;
    } else {
        rl->pending_len = (size_t)k;
    }
    flush_pending(rl);
}

static void on_resize(relay_t *rl)
{
    streaming_winsize_t ws;
    ssize_t k = read(rl->resize, &ws, sizeof(ws));
    if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN)) {
        rl->resize = -1;
        return;
    }
    cri_error_t ignore = CRI_ERROR_INIT;
    if (k == (ssize_t)sizeof(ws))
        conmon_exec_live_resize(rl->x, ws.width, ws.height, &ignore); /* best effort */
}

/* Relays until the monitor's output ends (0) or the client went away (1). */
static int relay_run(relay_t *rl, const streaming_stdio_t *io, cri_error_t *err)
{
    for (;;) {
        bool busy = rl->pending_len > 0 || rl->in_eof;
        struct pollfd p[4] = {{.fd = rl->sock, .events = POLLIN | (busy ? POLLOUT : 0)},
                              {.fd = busy ? -1 : rl->in, .events = POLLIN},
                              {.fd = rl->resize, .events = POLLIN},
                              {.fd = io->cancel, .events = POLLIN}};
        if (poll(p, 4, -1) < 0) {
            if (errno == EINTR)
                continue;
            return cri_error_make(err, errno, "poll");
        }
        if (p[3].revents)
            return 1;
        if (p[2].revents)
            on_resize(rl);
        if (p[1].revents)
            from_client(rl);
        if (p[0].revents & POLLOUT)
            flush_pending(rl);
        if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && from_monitor(rl, io))
            return 0;
    }
}

/* Writes the exec process file of r->cmd for the running container. */
static int process_file(struct daemon *d, const streaming_request_t *r, char **ret_path,
                        conmon_config_t *ret_cfg, cri_error_t *err)
{
    cleanup_container container_t *c = NULL;
    if (container_store_get(daemon_containers(d), r->container_id, &c, err) < 0)
        return -1;
    container_status_t st;
    container_get_status(c, &st);
    bool running = st.state == CONTAINER_STATE_RUNNING;
    container_status_clear(&st);
    if (!running)
        return cri_error_set(err, EINVAL, "container `%s` is not running", c->id);
    daemon_runtime_t *rt = daemon_runtime(d, c->runtime);
    if (!rt)
        return cri_error_set(err, EINVAL, "runtime handler `%s` is not configured", c->runtime);
    size_t n = 0;
    while (r->cmd && r->cmd[n])
        n++;
    if (container_exec_process_file(d, c, r->cmd, n, r->tty, ret_path, err) < 0)
        return -1;
    *ret_cfg = rt->conmon; /* the runtime table is fixed at startup */
    return 0;
}

int streaming_exec_conmon(void *data, const streaming_request_t *r, const streaming_stdio_t *io,
                          int *ret_exit_code, cri_error_t *err)
{
    struct daemon *d = data;
    cleanup_free char *path = NULL;
    conmon_config_t cfg;
    if (process_file(d, r, &path, &cfg, err) < 0)
        return cri_error_wrap(err, "exec in container `%s`", r->container_id);
    conmon_exec_live_opts_t o = {
        .id = r->container_id, .process_path = path, .terminal = r->tty, .stdin_open = r->in};
    cleanup_conmon_exec_live conmon_exec_live_t *x = NULL;
    if (daemon_conmon_ops(d)->exec_live_start(&cfg, &o, &x, err) < 0) {
        unlink(path);
        return -1;
    }
    relay_t rl = {.x = x,
                  .sock = conmon_exec_live_fd(x),
                  .in = r->in ? io->in : -1,
                  .resize = r->tty ? io->resize : -1};
    int rc = relay_run(&rl, io, err);
    int code = 0;
    if (rc == 1) {
        /* the client went away: kill, and wait for the report so the
         * process is gone when we return */
        cri_error_t ignore = CRI_ERROR_INIT;
        conmon_exec_live_cancel(x);
        conmon_exec_live_wait(x, EXEC_KILL_REPORT_MS, &code, &ignore);
        rc = 0;
    } else if (rc == 0) {
        rc = conmon_exec_live_wait(x, EXEC_REPORT_MS, &code, err);
    }
    unlink(path);
    if (rc < 0)
        return -1;
    *ret_exit_code = code;
    return 0;
}
