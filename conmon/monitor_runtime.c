/* Starting the container (or exec'd process) through the OCI runtime, and
 * finding its memory cgroup for OOM accounting. */
#include "conmon-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define EARLY_ERR_MAX 4096

typedef struct start_ctx {
    char *pidfile;
    char *runtime_log;
    char *console_path;
    bool own_pidfile; /* ours to remove afterwards */
    int console_fd;   /* listening console socket, -1 without a terminal */
    int child_in, child_out, child_err;
    int out_r, err_r, in_w; /* our ends */
    char **argv;
    size_t argc;
} start_ctx_t;

static void ctx_free(start_ctx_t *c)
{
    int fds[] = {c->console_fd, c->child_in, c->child_out, c->child_err,
                 c->out_r,      c->err_r,    c->in_w};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (c->console_path)
        unlink(c->console_path);
    if (c->runtime_log)
        unlink(c->runtime_log);
    if (c->own_pidfile && c->pidfile)
        unlink(c->pidfile);
    free(c->pidfile);
    free(c->runtime_log);
    free(c->console_path);
    strv_free(c->argv);
}

static void argv_add(start_ctx_t *c, const char *s)
{
    c->argv = xrealloc(c->argv, (c->argc + 2) * sizeof(char *));
    c->argv[c->argc++] = xstrdup(s);
    c->argv[c->argc] = NULL;
}

static void build_argv(const conmon_opts_t *o, start_ctx_t *c)
{
    argv_add(c, o->runtime);
    for (size_t i = 0; i < o->n_runtime_args; i++)
        argv_add(c, o->runtime_args[i]);
    argv_add(c, "--log");
    argv_add(c, c->runtime_log);
    argv_add(c, "--log-format");
    argv_add(c, "json");
    if (o->exec) {
        argv_add(c, "exec");
        argv_add(c, "--detach");
        argv_add(c, "--process");
        argv_add(c, o->exec_process);
    } else {
        argv_add(c, "create");
        argv_add(c, "--bundle");
        argv_add(c, o->bundle);
    }
    argv_add(c, "--pid-file");
    argv_add(c, c->pidfile);
    if (c->console_path) {
        argv_add(c, "--console-socket");
        argv_add(c, c->console_path);
    }
    argv_add(c, o->id);
}

static int listen_console(start_ctx_t *c, cri_error_t *err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(c->console_path) >= sizeof(addr.sun_path))
        return cri_error_set(err, ENAMETOOLONG, "console socket path `%s` is too long",
                             c->console_path);
    memcpy(addr.sun_path, c->console_path, strlen(c->console_path) + 1);
    unlink(c->console_path);
    c->console_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->console_fd < 0)
        return cri_error_make(err, errno, "console socket");
    if (bind(c->console_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(c->console_fd, 1) < 0)
        return cri_error_make(err, errno, "listen on `%s`", c->console_path);
    return 0;
}

static int make_pipe(int *ret_r, int *ret_w, cri_error_t *err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return cri_error_make(err, errno, "pipe");
    *ret_r = p[0];
    *ret_w = p[1];
    return 0;
}

/* Pipes for stdio, or /dev/null and an error pipe around a pty. */
static int setup_stdio(const conmon_opts_t *o, start_ctx_t *c, cri_error_t *err)
{
    if (o->terminal) {
        c->child_in = open("/dev/null", O_RDWR | O_CLOEXEC);
        c->child_out = fcntl(c->child_in, F_DUPFD_CLOEXEC, 3);
        if (c->child_in < 0 || c->child_out < 0)
            return cri_error_make(err, errno, "open /dev/null");
        return make_pipe(&c->err_r, &c->child_err, err) < 0 ? -1 : listen_console(c, err);
    }
    if (make_pipe(&c->out_r, &c->child_out, err) < 0 ||
        make_pipe(&c->err_r, &c->child_err, err) < 0)
        return -1;
    if (o->stdin_open)
        return make_pipe(&c->child_in, &c->in_w, err);
    c->child_in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (c->child_in < 0)
        return cri_error_make(err, errno, "open /dev/null");
    return 0;
}

static void write_oom_adj(int value)
{
    char buf[16];
    int n = snprintf(buf, sizeof(buf), "%d", value);
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, buf, (size_t)n) < 0) {
            /* not allowed to lower it: the runtime keeps ours */
        }
        close(fd);
    }
}

/* In the forked child: only async-signal-safe calls until execv. */
static void exec_runtime(const start_ctx_t *c, int oom_adj)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    (void)signal(SIGPIPE, SIG_DFL);
    write_oom_adj(oom_adj);
    if (dup2(c->child_in, 0) < 0 || dup2(c->child_out, 1) < 0 || dup2(c->child_err, 2) < 0)
        _exit(127);
    execv(c->argv[0], c->argv);
    static const char msg[] = "cannot execute the OCI runtime\n";
    if (write(2, msg, sizeof(msg) - 1) < 0)
        _exit(127);
    _exit(127);
}

/* Takes the pty master runc sends over the console socket. */
static int recv_console(int listen_fd, int *ret_fd, cri_error_t *err)
{
    cleanup_close int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0)
        return cri_error_make(err, errno, "accept console socket");
    char name[256];
    struct iovec iov = {name, sizeof(name)};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    ssize_t n;
    do
        n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return cri_error_make(err, errno, "receive pty master");
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
        cm->cmsg_len != CMSG_LEN(sizeof(int)))
        return cri_error_set(err, EPROTO, "console socket: no pty master received");
    memcpy(ret_fd, CMSG_DATA(cm), sizeof(int));
    return 0;
}

typedef struct wait_state {
    char *early; /* stderr collected while the runtime ran */
    size_t early_len;
    int pty; /* pty master received, or -1 */
} wait_state_t;

static void collect_err(int fd, wait_state_t *w)
{
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0)
        return;
    size_t keep = (size_t)n;
    if (w->early_len + keep > EARLY_ERR_MAX)
        keep = EARLY_ERR_MAX - w->early_len;
    if (keep == 0)
        return;
    w->early = xrealloc(w->early, w->early_len + keep + 1);
    memcpy(w->early + w->early_len, buf, keep);
    w->early_len += keep;
    w->early[w->early_len] = '\0';
}

/* Waits for the runtime process while draining its stderr and taking the
 * pty master; returns its wait status. */
static int wait_runtime(pid_t pid, const start_ctx_t *c, wait_state_t *w, int *ret_status,
                        cri_error_t *err)
{
    cleanup_close int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0)
        return cri_error_make(err, errno, "pidfd_open");
    fcntl(c->err_r, F_SETFL, O_NONBLOCK);
    for (bool done = false; !done;) {
        struct pollfd p[3] = {
            {pidfd, POLLIN, 0}, {c->err_r, POLLIN, 0}, {c->console_fd, POLLIN, 0}};
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            return cri_error_make(err, errno, "poll");
        }
        if (p[1].revents)
            collect_err(c->err_r, w);
        if ((p[2].revents & POLLIN) && w->pty < 0 && recv_console(c->console_fd, &w->pty, err) < 0)
            return -1;
        done = p[0].revents != 0;
    }
    collect_err(c->err_r, w);
    if (c->console_fd >= 0 && w->pty < 0) {
        /* runc may have sent the fd just before exiting */
        struct pollfd p = {c->console_fd, POLLIN, 0};
        if (poll(&p, 1, 0) == 1 && recv_console(c->console_fd, &w->pty, err) < 0)
            return -1;
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return cri_error_make(err, errno, "waitpid runtime");
    }
    *ret_status = st;
    return 0;
}

/* The last "error" message in runc's --log json file, else its stderr. */
static int runtime_failure(const start_ctx_t *c, const wait_state_t *w, int status,
                           cri_error_t *err)
{
    cleanup_free char *data = NULL;
    cri_error_t rerr = CRI_ERROR_INIT;
    char msg[1024] = "";
    if (read_file(c->runtime_log, 1 << 20, &data, NULL, &rerr) == 0) {
        for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
            json_t *j = json_loads(line, 0, NULL);
            const char *lvl = NULL, *m = NULL;
            if (j && json_unpack(j, "{s:s, s:s}", "level", &lvl, "msg", &m) == 0 &&
                (strcmp(lvl, "error") == 0 || strcmp(lvl, "fatal") == 0))
                (void)snprintf(msg, sizeof(msg), "%s", m);
            json_decref(j);
        }
    }
    if (!msg[0] && w->early_len) {
        (void)snprintf(msg, sizeof(msg), "%s", w->early);
        for (size_t n = strlen(msg); n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r');)
            msg[--n] = '\0';
        for (char *p = msg; *p; p++)
            if (*p == '\n')
                *p = ' ';
    }
    if (!msg[0]) {
        if (WIFSIGNALED(status))
            (void)snprintf(msg, sizeof(msg), "runtime killed by signal %d", WTERMSIG(status));
        else
            (void)snprintf(msg, sizeof(msg), "runtime exited with status %d", WEXITSTATUS(status));
    }
    return cri_error_set(err, EIO, "%s", msg);
}

static int read_pidfile(const char *path, pid_t *ret, cri_error_t *err)
{
    cleanup_free char *data = NULL;
    if (read_file(path, 64, &data, NULL, err) < 0)
        return -1;
    char *end = NULL;
    long v = strtol(data, &end, 10);
    if (v <= 0 || end == data)
        return cri_error_set(err, EINVAL, "bad pid file `%s`", path);
    *ret = (pid_t)v;
    return 0;
}

static void ctx_paths(const conmon_opts_t *o, start_ctx_t *c)
{
    const char *base = NULL;
    cleanup_free char *dir = NULL;
    if (o->exec && o->socket_dir) {
        /* short: a console socket path must fit in sun_path */
        dir = xasprintf("%s/exec-%d", o->socket_dir, (int)getpid());
        base = dir;
    } else if (o->exec) {
        base = o->exec_process;
    } else {
        dir = xasprintf("%s/%s/runtime", o->socket_dir, o->id);
        base = dir;
    }
    c->runtime_log = xasprintf("%s.log", base);
    c->own_pidfile = !o->pidfile;
    c->pidfile = o->pidfile ? xstrdup(o->pidfile) : xasprintf("%s.pid", base);
    if (o->terminal)
        c->console_path = xasprintf("%s.sock", base);
}

static int open_oom(pid_t pid, conmon_child_t *ch)
{
    cri_error_t err = CRI_ERROR_INIT;
    if (conmon_oom_open(pid, &ch->oom_fd, &ch->oom_v2, &err) < 0) {
        log_debug("no memory cgroup for pid %d: %s", (int)pid, err.msg);
        return 0;
    }
    if (conmon_oom_count(ch->oom_fd, &ch->oom_base, &err) < 0)
        ch->oom_base = 0;
    return 0;
}

static int finish_start(const conmon_opts_t *o, start_ctx_t *c, wait_state_t *w, conmon_child_t *ch,
                        cri_error_t *err)
{
    if (o->terminal && w->pty < 0)
        return cri_error_set(err, EPROTO, "runtime sent no pty master");
    if (read_pidfile(c->pidfile, &ch->pid, err) < 0)
        return -1;
    if (o->terminal) {
        ch->out_fd = TAKE_FD(w->pty);
        if (o->stdin_open && (ch->in_fd = fcntl(ch->out_fd, F_DUPFD_CLOEXEC, 3)) < 0)
            return cri_error_make(err, errno, "dup pty master");
    } else {
        ch->out_fd = TAKE_FD(c->out_r);
        ch->in_fd = TAKE_FD(c->in_w);
    }
    ch->err_fd = TAKE_FD(c->err_r);
    ch->early_err = TAKE_PTR(w->early);
    ch->early_err_len = w->early_len;
    if (!o->exec)
        open_oom(ch->pid, ch);
    return 0;
}

int conmon_runtime_start(const conmon_opts_t *o, int orig_oom_adj, conmon_child_t *ret,
                         cri_error_t *err)
{
    start_ctx_t c = {.console_fd = -1,
                     .child_in = -1,
                     .child_out = -1,
                     .child_err = -1,
                     .out_r = -1,
                     .err_r = -1,
                     .in_w = -1};
    wait_state_t w = {.pty = -1};
    conmon_child_t ch = {.pid = -1, .out_fd = -1, .err_fd = -1, .in_fd = -1, .oom_fd = -1};
    int rc = -1, status = 0;

    ctx_paths(o, &c);
    if (setup_stdio(o, &c, err) < 0)
        goto out;
    build_argv(o, &c);
    pid_t pid = fork();
    if (pid < 0) {
        cri_error_make(err, errno, "fork runtime");
        goto out;
    }
    if (pid == 0)
        exec_runtime(&c, orig_oom_adj);
    /* our copies of the child's ends must go, or EOF never comes */
    close(c.child_in);
    close(c.child_out);
    close(c.child_err);
    c.child_in = c.child_out = c.child_err = -1;
    if (wait_runtime(pid, &c, &w, &status, err) < 0)
        goto out;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        runtime_failure(&c, &w, status, err);
        goto out;
    }
    if (finish_start(o, &c, &w, &ch, err) < 0)
        goto out;
    *ret = ch;
    memset(&ch, 0, sizeof(ch));
    ch.out_fd = ch.err_fd = ch.in_fd = ch.oom_fd = -1;
    rc = 0;
out:
    if (w.pty >= 0)
        close(w.pty);
    free(w.early);
    free(ch.early_err);
    int fds[] = {ch.out_fd, ch.err_fd, ch.in_fd, ch.oom_fd};
    for (size_t i = 0; i < 4; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    ctx_free(&c);
    return rc;
}
