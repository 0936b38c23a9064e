/* The monitor's one epoll loop: container output to the CRI log and attach
 * clients, attach input to the container's stdin, control requests (log
 * reopen, resize), child reaping and the exec timeout. */
#include "conmon-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define MAX_CLIENTS 16
#define DRAIN_NS (2 * 1000000000LL) /* output still read after the exit */

enum kind { K_OUT = 1, K_ERR, K_IN, K_SIG, K_TIMER, K_ATTACH_L, K_CTL_L, K_ATTACH, K_CTL };

typedef struct loop {
    const conmon_opts_t *o;
    conmon_child_t *ch;
    conmon_log_t *log;
    conmon_result_t *res;
    int ep, sigfd, timerfd, attach_l, ctl_l;
    int attach[MAX_CLIENTS];
    bool attach_eof[MAX_CLIENTS]; /* the client shut down its sending side */
    int ctl[MAX_CLIENTS];
    bool exited;
    bool log_warned;
    bool close_stdin; /* stdin_once: close stdin when pending is written */
    char *pending;    /* stdin bytes the container has not taken yet */
    size_t pending_len;
} loop_t;

static char iobuf[CONMON_STDIO_BUF];

static uint64_t tag(enum kind k, int fd)
{
    return ((uint64_t)k << 32) | (uint32_t)fd;
}

static int ep_add(loop_t *l, int fd, enum kind k, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u64 = tag(k, fd)};
    return epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev);
}

static void ep_mod(loop_t *l, int fd, enum kind k, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u64 = tag(k, fd)};
    epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &ev);
}

static void close_fd(loop_t *l, int *fd)
{
    if (*fd < 0)
        return;
    epoll_ctl(l->ep, EPOLL_CTL_DEL, *fd, NULL);
    close(*fd);
    *fd = -1;
}

static void append_capped(char **buf, size_t *len, bool *trunc, size_t cap, const char *d, size_t n)
{
    size_t keep = *len + n > cap ? cap - *len : n;
    if (keep < n)
        *trunc = true;
    if (keep == 0)
        return;
    *buf = xrealloc(*buf, *len + keep + 1);
    memcpy(*buf + *len, d, keep);
    *len += keep;
    (*buf)[*len] = '\0';
}

static bool live_exec(const loop_t *l)
{
    return l->o->exec && l->o->exec_attach_fd >= 0;
}

/* Closes attach client `slot`. In interactive exec the one client is the
 * daemon: when it goes away, so does the exec'd process (its process group
 * too, when it leads one: a shell's children). */
static void drop_attach(loop_t *l, int slot)
{
    close_fd(l, &l->attach[slot]);
    if (live_exec(l) && !l->exited) {
        kill(-l->ch->pid, SIGKILL);
        kill(l->ch->pid, SIGKILL); /* unreaped until we reap it: no pid reuse */
    }
}

static void broadcast(loop_t *l, unsigned char stream, const char *d, size_t n)
{
    /* a client too slow to keep up loses this packet, never the log; the
     * daemon's exec socket is blocking instead: its output is never lost
     * and a slow client slows the process down (backpressure) */
    int flags = MSG_NOSIGNAL | (live_exec(l) ? 0 : MSG_DONTWAIT);
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (l->attach[i] < 0)
            continue;
        struct iovec iov[2] = {{&stream, 1}, {(void *)d, n}};
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
        ssize_t k;
        do
            k = sendmsg(l->attach[i], &msg, flags);
        while (k < 0 && errno == EINTR);
        if (k < 0 && errno != EAGAIN)
            drop_attach(l, i);
    }
}

static void on_output(loop_t *l, bool is_err, const char *d, size_t n)
{
    if (live_exec(l)) {
        broadcast(l, is_err ? 2 : 1, d, n);
        return;
    }
    if (l->o->exec) {
        conmon_result_t *r = l->res;
        if (is_err)
            append_capped(&r->err, &r->err_len, &r->err_trunc, l->o->exec_output_cap, d, n);
        else
            append_capped(&r->out, &r->out_len, &r->out_trunc, l->o->exec_output_cap, d, n);
        return;
    }
    cri_error_t err = CRI_ERROR_INIT;
    if (conmon_log_write(l->log, is_err ? "stderr" : "stdout", d, n, now_unix_ns(), &err) < 0 &&
        !l->log_warned) {
        log_warn("container `%s`: %s, ignoring", l->o->id, err.msg);
        l->log_warned = true;
    }
    broadcast(l, is_err ? 2 : 1, d, n);
}

static void read_output(loop_t *l, int *fd, bool is_err)
{
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t n = read(*fd, iobuf, sizeof(iobuf));
        if (n > 0) {
            on_output(l, is_err, iobuf, (size_t)n);
            continue;
        }
        if (n < 0 && (errno == EINTR))
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        /* EOF, or EIO from a pty whose other side is gone */
        if (l->ch->in_fd >= 0 && l->o->terminal && fd == &l->ch->out_fd)
            close_fd(l, &l->ch->in_fd);
        close_fd(l, fd);
        return;
    }
}

static void pause_clients(loop_t *l, bool paused)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (l->attach[i] >= 0 && !l->attach_eof[i])
            ep_mod(l, l->attach[i], K_ATTACH, paused ? 0 : EPOLLIN);
}

/* Writes to stdin; what does not fit waits for EPOLLOUT while attach
 * clients are not read, so input is never dropped or reordered. */
static void flush_stdin(loop_t *l, const char *d, size_t n)
{
    while (n > 0) {
        ssize_t w = write(l->ch->in_fd, d, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            break;
        if (w < 0) { /* EPIPE: the container closed its stdin */
            close_fd(l, &l->ch->in_fd);
            n = 0;
            break;
        }
        d += w;
        n -= (size_t)w;
    }
    char *rest = NULL; /* a copy: d may point into pending; bytes, not a string */
    if (n) {
        rest = xmalloc(n);
        memcpy(rest, d, n);
    }
    free(l->pending);
    l->pending = rest;
    l->pending_len = n;
    if (n && l->ch->in_fd >= 0) {
        if (ep_add(l, l->ch->in_fd, K_IN, EPOLLOUT) < 0)
            ep_mod(l, l->ch->in_fd, K_IN, EPOLLOUT);
        pause_clients(l, true);
    } else {
        if (l->ch->in_fd >= 0)
            epoll_ctl(l->ep, EPOLL_CTL_DEL, l->ch->in_fd, NULL);
        if (l->close_stdin)
            close_fd(l, &l->ch->in_fd);
        pause_clients(l, false);
    }
}

static void on_attach(loop_t *l, int slot)
{
    ssize_t n = recv(l->attach[slot], iobuf, sizeof(iobuf), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) {
        if (l->ch->in_fd >= 0)
            flush_stdin(l, iobuf, (size_t)n);
        return;
    }
    if (n == 0 && !l->attach_eof[slot]) {
        /* half close: no more input, but output still flows until the
         * client goes away completely (EPOLLHUP comes back here) */
        l->attach_eof[slot] = true;
        ep_mod(l, l->attach[slot], K_ATTACH, 0);
        if (l->o->stdin_once && !l->o->terminal) {
            if (l->pending)
                l->close_stdin = true; /* once what is queued got through */
            else
                close_fd(l, &l->ch->in_fd);
        }
        return;
    }
    drop_attach(l, slot);
}

static void reply(int fd, int status, const char *msg)
{
    char buf[512];
    int n = status ? snprintf(buf, sizeof(buf), "error %d %s", status, msg)
                   : snprintf(buf, sizeof(buf), "ok");
    if (n > 0 && send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        log_debug("control reply: %s", strerror(errno));
}

static void do_resize(loop_t *l, int fd, const char *args)
{
    unsigned long w = 0, h = 0;
    const char *p = args;
    if (!parse_ulong_prefix(p, 0xffff, &w, &p) || !parse_ulong_prefix(p, 0xffff, &h, NULL))
        return reply(fd, EINVAL, "usage: resize <width> <height>");
    if (!l->o->terminal || l->ch->out_fd < 0)
        return reply(fd, ENOTTY, "container has no terminal");
    struct winsize ws = {.ws_row = (unsigned short)h, .ws_col = (unsigned short)w};
    if (ioctl(l->ch->out_fd, TIOCSWINSZ, &ws) < 0)
        return reply(fd, errno, strerror(errno));
    reply(fd, 0, NULL);
}

static void on_ctl(loop_t *l, int slot)
{
    char req[256];
    int fd = l->ctl[slot];
    ssize_t n = recv(fd, req, sizeof(req) - 1, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        close_fd(l, &l->ctl[slot]);
        return;
    }
    req[n] = '\0';
    req[strcspn(req, "\r\n")] = '\0';
    if (strcmp(req, "reopen") == 0) {
        cri_error_t err = CRI_ERROR_INIT;
        if (conmon_log_reopen(l->log, &err) < 0)
            return reply(fd, err.status, err.msg);
        return reply(fd, 0, NULL);
    }
    if (str_has_prefix(req, "resize "))
        return do_resize(l, fd, req + 7);
    reply(fd, EINVAL, "unknown command");
}

static void on_accept(loop_t *l, int lfd, int *slots, enum kind k)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (slots[i] < 0) {
            bool paused = k == K_ATTACH && l->pending;
            if (ep_add(l, fd, k, paused ? 0 : EPOLLIN) < 0)
                break;
            slots[i] = fd;
            if (k == K_ATTACH)
                l->attach_eof[i] = false;
            return;
        }
    }
    close(fd); /* full: refuse */
}

static void reap(loop_t *l)
{
    int st = 0;
    pid_t p;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
        if (p == l->ch->pid && !l->exited) {
            l->exited = true;
            l->res->wait_status = st;
        }
    }
}

static void on_signal(loop_t *l)
{
    struct signalfd_siginfo si;
    while (read(l->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo != SIGCHLD)
            log_debug("ignoring signal %u", si.ssi_signo);
    }
    reap(l);
}

static void on_timer(loop_t *l)
{
    uint64_t ticks;
    if (read(l->timerfd, &ticks, sizeof(ticks)) < 0)
        return;
    /* the child is unreaped until we reap it, so its pid cannot be reused */
    if (!l->exited && kill(l->ch->pid, SIGKILL) == 0)
        l->res->timed_out = true;
}

static void dispatch(loop_t *l, uint64_t data)
{
    enum kind k = (enum kind)(data >> 32);
    int fd = (int)(uint32_t)data;
    switch (k) {
    case K_OUT:
        read_output(l, &l->ch->out_fd, false);
        break;
    case K_ERR:
        read_output(l, &l->ch->err_fd, true);
        break;
    case K_IN:
        flush_stdin(l, l->pending, l->pending_len);
        break;
    case K_SIG:
        on_signal(l);
        break;
    case K_TIMER:
        on_timer(l);
        break;
    case K_ATTACH_L:
        on_accept(l, l->attach_l, l->attach, K_ATTACH);
        break;
    case K_CTL_L:
        on_accept(l, l->ctl_l, l->ctl, K_CTL);
        break;
    case K_ATTACH:
    case K_CTL:
        for (int i = 0; i < MAX_CLIENTS; i++) {
            if (k == K_ATTACH && l->attach[i] == fd)
                on_attach(l, i);
            else if (k == K_CTL && l->ctl[i] == fd)
                on_ctl(l, i);
        }
        break;
    }
}

static int setup_signals(loop_t *l, cri_error_t *err)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return cri_error_make(err, errno, "block signals");
    l->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (l->sigfd < 0 || ep_add(l, l->sigfd, K_SIG, EPOLLIN) < 0)
        return cri_error_make(err, errno, "signalfd");
    if (l->o->exec && l->o->timeout_s > 0) {
        l->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        struct itimerspec its = {.it_value = {.tv_sec = l->o->timeout_s}};
        if (l->timerfd < 0 || timerfd_settime(l->timerfd, 0, &its, NULL) < 0 ||
            ep_add(l, l->timerfd, K_TIMER, EPOLLIN) < 0)
            return cri_error_make(err, errno, "timerfd");
    }
    return 0;
}

static int setup(loop_t *l, cri_error_t *err)
{
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    if (l->ep < 0)
        return cri_error_make(err, errno, "epoll_create1");
    int *fds[] = {&l->ch->out_fd, &l->ch->err_fd, &l->ch->in_fd};
    for (size_t i = 0; i < 3; i++)
        if (*fds[i] >= 0)
            fcntl(*fds[i], F_SETFL, fcntl(*fds[i], F_GETFL) | O_NONBLOCK);
    if ((l->ch->out_fd >= 0 && ep_add(l, l->ch->out_fd, K_OUT, EPOLLIN) < 0) ||
        (l->ch->err_fd >= 0 && ep_add(l, l->ch->err_fd, K_ERR, EPOLLIN) < 0) ||
        (l->attach_l >= 0 && ep_add(l, l->attach_l, K_ATTACH_L, EPOLLIN) < 0) ||
        (l->ctl_l >= 0 && ep_add(l, l->ctl_l, K_CTL_L, EPOLLIN) < 0))
        return cri_error_make(err, errno, "epoll_ctl");
    return setup_signals(l, err);
}

/* Interactive exec: the daemon's sockets are already-connected clients
 * (the loop owns them from now on). */
static int adopt_exec_sockets(loop_t *l, cri_error_t *err)
{
    l->attach[0] = l->o->exec_attach_fd;
    if (ep_add(l, l->attach[0], K_ATTACH, EPOLLIN) < 0)
        return cri_error_make(err, errno, "epoll_ctl exec socket");
    l->ctl[0] = l->o->exec_ctl_fd;
    if (l->ctl[0] >= 0 && ep_add(l, l->ctl[0], K_CTL, EPOLLIN) < 0)
        return cri_error_make(err, errno, "epoll_ctl exec ctl socket");
    return 0;
}

static void teardown(loop_t *l)
{
    for (int i = 0; i < MAX_CLIENTS; i++) {
        close_fd(l, &l->attach[i]);
        close_fd(l, &l->ctl[i]);
    }
    close_fd(l, &l->sigfd);
    close_fd(l, &l->timerfd);
    if (l->ep >= 0)
        close(l->ep);
    free(l->pending);
}

int conmon_supervise(const conmon_opts_t *o, conmon_child_t *child, conmon_log_t *log,
                     int attach_fd, int ctl_fd, conmon_result_t *ret, cri_error_t *err)
{
    conmon_result_t res = {0};
    loop_t l = {.o = o,
                .ch = child,
                .log = log,
                .res = &res,
                .ep = -1,
                .sigfd = -1,
                .timerfd = -1,
                .attach_l = attach_fd,
                .ctl_l = ctl_fd};
    for (int i = 0; i < MAX_CLIENTS; i++)
        l.attach[i] = l.ctl[i] = -1;
    int rc = setup(&l, err);
    if (rc == 0 && o->exec_attach_fd >= 0)
        rc = adopt_exec_sockets(&l, err);
    if (rc == 0 && child->early_err_len)
        on_output(&l, true, child->early_err, child->early_err_len);
    reap(&l); /* a child that exited before SIGCHLD was blocked */
    int64_t drain_until = 0;
    while (rc == 0) {
        if (l.exited && !drain_until)
            drain_until = now_unix_ns() + DRAIN_NS;
        if (l.exited && ((child->out_fd < 0 && child->err_fd < 0) || now_unix_ns() > drain_until))
            break;
        struct epoll_event evs[16];
        int n = epoll_wait(l.ep, evs, 16, l.exited ? 0 : -1);
        if (n < 0 && errno != EINTR)
            rc = cri_error_make(err, errno, "epoll_wait");
        if (n == 0 && l.exited)
            break; /* nothing left to read */
        for (int i = 0; i < n; i++)
            dispatch(&l, evs[i].data.u64);
    }
    teardown(&l);
    if (rc < 0) {
        free(res.out);
        free(res.err);
        return -1;
    }
    *ret = res;
    return 0;
}
