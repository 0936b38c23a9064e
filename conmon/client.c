/* The daemon side of the monitor protocol: start monitors with
 * posix_spawn() (safe in a threaded process), read their sync pipe, and
 * talk to running ones over their control socket. */
#include "conmon-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

extern char **environ;

#define SYNC_FD 3
#define DEFAULT_CREATE_TIMEOUT_MS 60000
#define DEFAULT_EXEC_CAP (16u << 20)
#define EXEC_GRACE_MS 30000 /* beyond the exec timeout, for runc itself */

typedef struct strv_builder {
    char **v;
    size_t n;
} strv_builder_t;

static void sb_add(strv_builder_t *b, const char *s)
{
    b->v = xrealloc(b->v, (b->n + 2) * sizeof(char *));
    b->v[b->n++] = xstrdup(s);
    b->v[b->n] = NULL;
}

static void sb_add2(strv_builder_t *b, const char *opt, const char *val)
{
    sb_add(b, opt);
    sb_add(b, val);
}

static void sb_common(strv_builder_t *b, const conmon_config_t *cfg, const char *id)
{
    sb_add(b, cfg->monitor_path);
    sb_add2(b, "--id", id);
    sb_add2(b, "--runtime", cfg->runtime_path);
    for (const char *const *a = cfg->runtime_args; a && *a; a++)
        sb_add2(b, "--runtime-arg", *a);
    sb_add2(b, "--sync-fd", "3");
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* posix_spawn()s the monitor with the sync pipe's write end as fd 3 and
 * extra[i] (borrowed) as fd 4 + i, and reaps the first process, which exits
 * as soon as it has forked. */
static int spawn_monitor(const conmon_config_t *cfg, char **argv, const int *extra, size_t n_extra,
                         int *ret_rfd, cri_error_t *err)
{
    /* posix_spawn() reports exec failures only when it really uses vfork */
    if (access(cfg->monitor_path, X_OK) < 0)
        return cri_error_make(err, errno, "monitor `%s`", cfg->monitor_path);
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return cri_error_make(err, errno, "pipe");
    cleanup_close int rfd = p[0];
    /* above SYNC_FD, so the dup2 below always makes a fresh, inheritable fd */
    cleanup_close int wfd = fcntl(p[1], F_DUPFD_CLOEXEC, 10);
    close(p[1]);
    if (wfd < 0)
        return cri_error_make(err, errno, "dup sync pipe");

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, cfg->monitor_log ? cfg->monitor_log : "/dev/null",
                                     O_WRONLY | O_APPEND | O_CREAT, 0600);
    posix_spawn_file_actions_adddup2(&fa, wfd, SYNC_FD);
    /* copies above the targets, so no dup2 clobbers a source or maps an fd
     * onto itself (which would keep its close-on-exec flag) */
    int high[2] = {-1, -1};
    for (size_t i = 0; i < n_extra && i < 2; i++) {
        high[i] = fcntl(extra[i], F_DUPFD_CLOEXEC, 10);
        if (high[i] >= 0)
            posix_spawn_file_actions_adddup2(&fa, high[i], SYNC_FD + 1 + (int)i);
    }
    pid_t pid = -1;
    int r = (n_extra > 0 && high[0] < 0) || (n_extra > 1 && high[1] < 0)
                ? errno
                : posix_spawn(&pid, cfg->monitor_path, &fa, &attr, argv, environ);
    for (size_t i = 0; i < 2; i++)
        if (high[i] >= 0)
            close(high[i]);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (r != 0)
        return cri_error_make(err, r, "spawn `%s`", cfg->monitor_path);
    close(TAKE_FD(wfd)); /* now only the monitor holds the write end */
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    *ret_rfd = TAKE_FD(rfd);
    return 0;
}

typedef struct sync_reader {
    int fd;
    char *buf;
    size_t len, cap;
    int64_t deadline; /* monotonic ms; 0 = none */
} sync_reader_t;

static int reader_fill(sync_reader_t *r, cri_error_t *err)
{
    if (r->len == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 4096;
        r->buf = xrealloc(r->buf, r->cap);
    }
    for (;;) {
        int wait = -1;
        if (r->deadline) {
            int64_t left = r->deadline - mono_ms();
            if (left <= 0)
                return cri_error_set(err, ETIMEDOUT, "timed out waiting for the monitor");
            wait = left > INT_MAX ? INT_MAX : (int)left;
        }
        struct pollfd p = {r->fd, POLLIN, 0};
        int n = poll(&p, 1, wait);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cri_error_make(err, errno, "poll sync pipe");
        if (n == 0)
            continue; /* the deadline check above fires */
        ssize_t got = read(r->fd, r->buf + r->len, r->cap - r->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return cri_error_make(err, errno, "read sync pipe");
        if (got == 0)
            return cri_error_set(err, EIO, "monitor exited without reporting");
        r->len += (size_t)got;
        return 0;
    }
}

/* Parses the next line into *ret (the caller clears it). */
static int reader_next(sync_reader_t *r, conmon_sync_msg_t *ret, cri_error_t *err)
{
    for (;;) {
        char *nl = r->len ? memchr(r->buf, '\n', r->len) : NULL;
        if (nl) {
            size_t line = (size_t)(nl - r->buf) + 1;
            int rc = conmon_sync_parse(r->buf, line, ret, err);
            memmove(r->buf, r->buf + line, r->len - line);
            r->len -= line;
            return rc;
        }
        if (r->len > 1 << 20)
            return cri_error_set(err, EPROTO, "sync message too long");
        if (reader_fill(r, err) < 0)
            return -1;
    }
}

/* Reads exactly n raw bytes that follow a message into a new buffer. */
static int reader_take(sync_reader_t *r, size_t n, char **ret, cri_error_t *err)
{
    cleanup_free char *out = xmalloc(n + 1);
    size_t have = 0;
    while (have < n) {
        if (r->len == 0 && reader_fill(r, err) < 0)
            return -1;
        size_t take = r->len < n - have ? r->len : n - have;
        memcpy(out + have, r->buf, take);
        memmove(r->buf, r->buf + take, r->len - take);
        r->len -= take;
        have += take;
    }
    out[n] = '\0';
    *ret = TAKE_PTR(out);
    return 0;
}

static void monitor_kill(pid_t monitor)
{
    if (monitor > 0)
        kill(monitor, SIGKILL);
}

int conmon_create(const conmon_config_t *cfg, const conmon_create_opts_t *opts,
                  pid_t *ret_container_pid, pid_t *ret_monitor_pid, cri_error_t *err)
{
    if (!cfg->monitor_path || !cfg->runtime_path || !cfg->exit_dir || !cfg->socket_dir ||
        !opts->id || !*opts->id || !opts->bundle)
        return cri_error_set(err, EINVAL, "create monitor: missing option");
    strv_builder_t b = {0};
    sb_common(&b, cfg, opts->id);
    sb_add2(&b, "--bundle", opts->bundle);
    sb_add2(&b, "--exit-dir", cfg->exit_dir);
    sb_add2(&b, "--socket-dir", cfg->socket_dir);
    if (opts->log_path && *opts->log_path)
        sb_add2(&b, "--log-path", opts->log_path);
    if (opts->log_max_size > 0) {
        char num[32];
        (void)snprintf(num, sizeof(num), "%lld", (long long)opts->log_max_size);
        sb_add2(&b, "--log-max-size", num);
    }
    if (opts->terminal)
        sb_add(&b, "--terminal");
    if (opts->stdin_open)
        sb_add(&b, "--stdin");
    if (opts->stdin_once)
        sb_add(&b, "--stdin-once");
    cleanup_strv char **argv = b.v;

    cleanup_close int rfd = -1;
    if (spawn_monitor(cfg, argv, NULL, 0, &rfd, err) < 0)
        return cri_error_wrap(err, "create container `%s`", opts->id);
    int timeout = opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_CREATE_TIMEOUT_MS;
    sync_reader_t r = {.fd = rfd, .deadline = mono_ms() + timeout};
    pid_t monitor = 0;
    int rc = -1;
    for (;;) {
        conmon_sync_msg_t m = {0};
        if (reader_next(&r, &m, err) < 0) {
            if (err->status == ETIMEDOUT)
                monitor_kill(monitor);
            break;
        }
        if (m.type == CONMON_SYNC_MONITOR) {
            monitor = m.pid;
        } else if (m.type == CONMON_SYNC_CREATED) {
            *ret_container_pid = m.pid;
            if (ret_monitor_pid)
                *ret_monitor_pid = monitor;
            rc = 0;
        } else if (m.type == CONMON_SYNC_ERROR) {
            cri_error_set(err, m.status, "%s", m.message);
        } else {
            cri_error_set(err, EPROTO, "unexpected sync message %d", (int)m.type);
        }
        bool done = m.type != CONMON_SYNC_MONITOR;
        conmon_sync_msg_clear(&m);
        if (done)
            break;
    }
    free(r.buf);
    if (rc < 0)
        return cri_error_wrap(err, "create container `%s`", opts->id);
    return 0;
}

void conmon_exec_result_free(conmon_exec_result_t *r)
{
    if (!r)
        return;
    free(r->out);
    free(r->err);
    free(r);
}

static int read_exec_result(sync_reader_t *r, size_t cap, conmon_exec_result_t **ret,
                            cri_error_t *err)
{
    pid_t monitor = 0;
    for (;;) {
        conmon_sync_msg_t m = {0};
        if (reader_next(r, &m, err) < 0) {
            if (err->status == ETIMEDOUT)
                monitor_kill(monitor);
            return -1;
        }
        if (m.type == CONMON_SYNC_MONITOR) {
            monitor = m.pid;
            continue;
        }
        if (m.type == CONMON_SYNC_ERROR) {
            cri_error_set(err, m.status, "%s", m.message);
            conmon_sync_msg_clear(&m);
            return -1;
        }
        if (m.type != CONMON_SYNC_EXEC || m.stdout_len > cap || m.stderr_len > cap) {
            conmon_sync_msg_clear(&m);
            return cri_error_set(err, EPROTO, "unexpected sync message from exec monitor");
        }
        conmon_exec_result_t *res = xcalloc(1, sizeof(*res));
        res->exit_code = m.exit_code;
        res->timed_out = m.timed_out;
        if (reader_take(r, m.stdout_len, &res->out, err) < 0 ||
            reader_take(r, m.stderr_len, &res->err, err) < 0) {
            conmon_exec_result_free(res);
            return -1;
        }
        res->out_len = m.stdout_len;
        res->err_len = m.stderr_len;
        *ret = res;
        return 0;
    }
}

int conmon_exec_sync(const conmon_config_t *cfg, const conmon_exec_opts_t *opts,
                     conmon_exec_result_t **ret, cri_error_t *err)
{
    if (!cfg->monitor_path || !cfg->runtime_path || !opts->id || !*opts->id || !opts->process_path)
        return cri_error_set(err, EINVAL, "exec: missing option");
    size_t cap = opts->output_cap ? opts->output_cap : DEFAULT_EXEC_CAP;
    char num[32];
    strv_builder_t b = {0};
    sb_common(&b, cfg, opts->id);
    sb_add(&b, "--exec");
    sb_add2(&b, "--exec-process", opts->process_path);
    (void)snprintf(num, sizeof(num), "%d", opts->timeout_s > 0 ? opts->timeout_s : 0);
    sb_add2(&b, "--timeout", num);
    (void)snprintf(num, sizeof(num), "%zu", cap);
    sb_add2(&b, "--exec-output-cap", num);
    if (opts->terminal)
        sb_add(&b, "--terminal");
    cleanup_strv char **argv = b.v;

    cleanup_close int rfd = -1;
    if (spawn_monitor(cfg, argv, NULL, 0, &rfd, err) < 0)
        return cri_error_wrap(err, "exec in container `%s`", opts->id);
    sync_reader_t r = {.fd = rfd};
    if (opts->timeout_s > 0)
        r.deadline = mono_ms() + (int64_t)opts->timeout_s * 1000 + EXEC_GRACE_MS;
    int rc = read_exec_result(&r, cap, ret, err);
    free(r.buf);
    if (rc < 0)
        return cri_error_wrap(err, "exec in container `%s`", opts->id);
    return 0;
}

/* ---- interactive exec ---------------------------------------------------- */

struct conmon_exec_live {
    char *id;
    int attach_fd; /* our end of the monitor's attach-style socket */
    int ctl_fd;    /* our end of its ctl socket */
    sync_reader_t r;
    pid_t monitor;
    bool done; /* the exec (or error) message was read */
    int exit_code;
};

void conmon_exec_live_free(conmon_exec_live_t *x)
{
    if (!x)
        return;
    conmon_exec_live_cancel(x);
    if (x->r.fd >= 0)
        close(x->r.fd);
    free(x->r.buf);
    free(x->id);
    free(x);
}

int conmon_exec_live_fd(const conmon_exec_live_t *x)
{
    return x->attach_fd;
}

void conmon_exec_live_cancel(conmon_exec_live_t *x)
{
    /* the monitor sees its client go and kills the process */
    if (x->attach_fd >= 0)
        close(x->attach_fd);
    if (x->ctl_fd >= 0)
        close(x->ctl_fd);
    x->attach_fd = x->ctl_fd = -1;
}

static int seqpacket_pair(int *ret_mine, int *ret_theirs, cri_error_t *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return cri_error_make(err, errno, "socketpair");
    *ret_mine = sv[0];
    *ret_theirs = sv[1];
    return 0;
}

int conmon_exec_live_start(const conmon_config_t *cfg, const conmon_exec_live_opts_t *opts,
                           conmon_exec_live_t **ret, cri_error_t *err)
{
    if (!cfg->monitor_path || !cfg->runtime_path || !opts->id || !*opts->id || !opts->process_path)
        return cri_error_set(err, EINVAL, "exec: missing option");
    strv_builder_t b = {0};
    sb_common(&b, cfg, opts->id);
    sb_add(&b, "--exec");
    sb_add2(&b, "--exec-process", opts->process_path);
    sb_add2(&b, "--exec-attach-fd", "4");
    sb_add2(&b, "--exec-ctl-fd", "5");
    if (cfg->socket_dir)
        sb_add2(&b, "--socket-dir", cfg->socket_dir);
    if (opts->terminal)
        sb_add(&b, "--terminal");
    if (opts->stdin_open) {
        sb_add(&b, "--stdin");
        sb_add(&b, "--stdin-once");
    }
    cleanup_strv char **argv = b.v;

    conmon_exec_live_t *x = xcalloc(1, sizeof(*x));
    x->id = xstrdup(opts->id);
    x->attach_fd = x->ctl_fd = x->r.fd = -1;
    cleanup_close int attach_peer = -1, ctl_peer = -1;
    if (seqpacket_pair(&x->attach_fd, &attach_peer, err) < 0 ||
        seqpacket_pair(&x->ctl_fd, &ctl_peer, err) < 0) {
        conmon_exec_live_free(x);
        return cri_error_wrap(err, "exec in container `%s`", opts->id);
    }
    int extra[2] = {attach_peer, ctl_peer};
    if (spawn_monitor(cfg, argv, extra, 2, &x->r.fd, err) < 0) {
        conmon_exec_live_free(x);
        return cri_error_wrap(err, "exec in container `%s`", opts->id);
    }
    *ret = x;
    return 0;
}

int conmon_exec_live_resize(conmon_exec_live_t *x, unsigned width, unsigned height,
                            cri_error_t *err)
{
    if (x->ctl_fd < 0)
        return cri_error_set(err, ESRCH, "exec in `%s` has ended", x->id);
    char buf[600];
    /* answers of earlier requests: read and dropped */
    while (recv(x->ctl_fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
    int n = snprintf(buf, sizeof(buf), "resize %u %u", width, height);
    if (send(x->ctl_fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        return cri_error_make(err, errno == EPIPE ? ESRCH : errno, "resize exec in `%s`", x->id);
    return 0;
}

int conmon_exec_live_wait(conmon_exec_live_t *x, int timeout_ms, int *ret_exit_code,
                          cri_error_t *err)
{
    x->r.deadline = timeout_ms > 0 ? mono_ms() + timeout_ms : 0;
    while (!x->done) {
        conmon_sync_msg_t m = {0};
        if (reader_next(&x->r, &m, err) < 0)
            return cri_error_wrap(err, "exec in container `%s`", x->id);
        if (m.type == CONMON_SYNC_MONITOR) {
            x->monitor = m.pid;
        } else if (m.type == CONMON_SYNC_EXEC) {
            x->done = true;
            x->exit_code = m.exit_code;
        } else {
            int st = m.type == CONMON_SYNC_ERROR ? m.status : EPROTO;
            cri_error_set(err, st, "exec in container `%s`: %s", x->id,
                          m.type == CONMON_SYNC_ERROR ? m.message : "unexpected sync message");
            conmon_sync_msg_clear(&m);
            return -1;
        }
        conmon_sync_msg_clear(&m);
    }
    *ret_exit_code = x->exit_code;
    return 0;
}
