#include "spawn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

extern char **environ;

typedef struct capture {
    int fd; /* read end, -1 once at EOF */
    char *buf;
    size_t len, cap, max;
} capture_t;

typedef struct feed {
    int fd; /* write end of the child's stdin, -1 when done */
    const char *data;
    size_t len, off;
} feed_t;

void spawn_result_free(spawn_result_t *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

void spawn_describe_status(int st, char *buf, size_t len)
{
    if (WIFEXITED(st))
        (void)snprintf(buf, len, "exit status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        (void)snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        (void)snprintf(buf, len, "wait status %#x", (unsigned)st);
}

#define SPAWN_KILL_GRACE_MS 2000

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads what is there; closes at EOF. Data past the cap is read and dropped. */
static void capture_read(capture_t *c)
{
    char tmp[8192];
    for (;;) {
        ssize_t n = read(c->fd, tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            close(c->fd);
            c->fd = -1;
            return;
        }
        size_t keep = (size_t)n;
        if (c->len + keep > c->max)
            keep = c->max - c->len;
        if (c->len + keep + 1 > c->cap) {
            c->cap = (c->len + keep + 1) * 2;
            c->buf = xrealloc(c->buf, c->cap);
        }
        memcpy(c->buf + c->len, tmp, keep);
        c->len += keep;
    }
}

/* Writes what the pipe takes; closes when all is written or the reader left. */
static void feed_write(feed_t *f)
{
    while (f->off < f->len) {
        ssize_t n = write(f->fd, f->data + f->off, f->len - f->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0)
            break; /* EPIPE: the child does not read stdin */
        f->off += (size_t)n;
    }
    close(f->fd);
    f->fd = -1;
}

#define KILL_TREE_MAX 4096

/* Adds the children of pid (all its threads') to tree, each SIGSTOPped
 * first so that it forks no more. */
static void stop_children(pid_t pid, pid_t *tree, size_t *n)
{
    cleanup_free char *task = xasprintf("/proc/%d/task", (int)pid);
    cleanup_dir DIR *dir = opendir(task);
    for (struct dirent *e = dir ? readdir(dir) : NULL; e; e = readdir(dir)) {
        if (e->d_name[0] == '.')
            continue;
        cleanup_free char *path = xasprintf("%s/%s/children", task, e->d_name);
        cleanup_free char *list = NULL;
        cri_error_t ignored = CRI_ERROR_INIT;
        if (read_file(path, 65536, &list, NULL, &ignored) < 0)
            continue;
        for (char *p = list, *end = NULL;; p = end) {
            long child = strtol(p, &end, 10);
            if (end == p || *n >= KILL_TREE_MAX)
                break;
            if (child > 1 && kill((pid_t)child, SIGSTOP) == 0)
                tree[(*n)++] = (pid_t)child;
        }
    }
}

/* SIGKILLs pid and its descendants (an exec'd shell's children): all are
 * stopped first, walking down, so none escapes by forking meanwhile. */
static bool kill_tree(pid_t pid)
{
    if (kill(pid, SIGSTOP) < 0)
        return false;
    cleanup_free pid_t *tree = xcalloc(KILL_TREE_MAX, sizeof(*tree));
    size_t n = 0;
    tree[n++] = pid;
    for (size_t i = 0; i < n; i++)
        stop_children(tree[i], tree, &n);
    for (size_t i = n; i-- > 0;)
        kill(tree[i], SIGKILL);
    return true;
}

/* Whether the pid written at path (and its descendants) were sent SIGKILL. */
static bool kill_pid_file(const char *path)
{
    if (!path)
        return false;
    cleanup_free char *data = NULL;
    cri_error_t ignored = CRI_ERROR_INIT;
    if (read_file(path, 64, &data, NULL, &ignored) < 0)
        return false;
    char *end = NULL;
    long pid = strtol(data, &end, 10);
    return end != data && pid > 1 && kill_tree((pid_t)pid);
}

static int spawn_child(const spawn_opts_t *o, int in, int out, int errfd, pid_t *ret_pid,
                       cri_error_t *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    /* dup2 onto 0/1/2 clears their close-on-exec flag (also when fd == target) */
    posix_spawn_file_actions_adddup2(&fa, in, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, errfd, STDERR_FILENO);
    /* the daemon blocks SIGTERM/SIGINT for its threads: the child must not
     * inherit that, nor ignored signals (SIGPIPE) */
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *const *env = o->envp ? (char *const *)o->envp : environ;
    int r = posix_spawn(ret_pid, o->argv[0], &fa, &attr, (char *const *)o->argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (r != 0)
        return cri_error_make(err, r, "spawn `%s`", o->argv[0]);
    return 0;
}

static int open_pipe(int fds[2], int nonblock_end, cri_error_t *err)
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return cri_error_make(err, errno, "pipe");
    fcntl(fds[nonblock_end], F_SETFL, O_NONBLOCK);
    return 0;
}

static void kill_and_reap(pid_t pid, int *status)
{
    kill(pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
}

/* Feeds stdin and polls the captures until the child exits or the deadline
 * passes. */
static int wait_child(const spawn_opts_t *o, pid_t pid, capture_t *caps, feed_t *feed,
                      int *ret_status, cri_error_t *err)
{
    cleanup_close int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int64_t deadline = mono_ms() + o->timeout_ms;
    int status = 0;
    /* past the deadline with a kill_pid_file: that process is killed first
     * and the child (a runtime waiting for it) gets a grace to reap it and
     * exit by itself, so no zombie is left to whoever adopts it */
    bool killing = false, killed = false;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno == ECHILD) /* reaped elsewhere (SIGCHLD ignored, waitpid(-1)) */
            return cri_error_set(err, ECHILD, "`%s`: exit status lost (child reaped elsewhere)",
                                 o->argv[0]);
        int64_t left = deadline - mono_ms();
        if (left <= 0 && o->kill_pid_file && !killing) {
            killing = true;
            deadline = mono_ms() + SPAWN_KILL_GRACE_MS;
            left = SPAWN_KILL_GRACE_MS;
        }
        if (killing && !killed)
            killed = kill_pid_file(o->kill_pid_file); /* retried: it may not be written yet */
        if (left <= 0) {
            kill_pid_file(o->kill_pid_file);
            kill_and_reap(pid, &status);
            return cri_error_set(err, ETIMEDOUT, "`%s` timed out after %d ms, killed", o->argv[0],
                                 o->timeout_ms);
        }
        struct pollfd pfd[4];
        nfds_t n = 0;
        for (int i = 0; i < 2; i++)
            if (caps[i].fd >= 0)
                pfd[n++] = (struct pollfd){.fd = caps[i].fd, .events = POLLIN};
        if (feed->fd >= 0)
            pfd[n++] = (struct pollfd){.fd = feed->fd, .events = POLLOUT};
        if (pidfd >= 0)
            pfd[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
        /* without a pidfd (old kernel) poll in short steps */
        int step = pidfd >= 0 && (!killing || killed) ? (int)left : (left < 10 ? (int)left : 10);
        if (poll(pfd, n, step) < 0 && errno != EINTR) {
            int e = errno;
            kill_and_reap(pid, &status);
            return cri_error_make(err, e, "poll");
        }
        if (feed->fd >= 0)
            feed_write(feed);
        for (int i = 0; i < 2; i++)
            if (caps[i].fd >= 0)
                capture_read(&caps[i]);
    }
    if (killing)
        return cri_error_set(err, ETIMEDOUT, "`%s` timed out after %d ms, killed", o->argv[0],
                             o->timeout_ms);
    /* the child is gone: whatever it wrote is in the pipes now (a grandchild
     * holding them open must not keep us here) */
    for (int i = 0; i < 2; i++)
        if (caps[i].fd >= 0)
            capture_read(&caps[i]);
    *ret_status = status;
    return 0;
}

static char *take_capture(capture_t *c, size_t *ret_len)
{
    *ret_len = c->len;
    if (!c->buf)
        return xstrdup("");
    c->buf[c->len] = '\0';
    return TAKE_PTR(c->buf);
}

int spawn_run(const spawn_opts_t *o, spawn_result_t *ret, cri_error_t *err)
{
    /* posix_spawn reports a failed exec only on some libcs (and not under
     * valgrind): check first so a missing binary is always ENOENT */
    if (access(o->argv[0], X_OK) < 0)
        return cri_error_make(err, errno, "spawn `%s`", o->argv[0]);
    cleanup_close int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0)
        return cri_error_make(err, errno, "open /dev/null");
    size_t max = o->capture_max ? o->capture_max : SPAWN_CAPTURE_MAX_DEFAULT;
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, in_pipe[2] = {-1, -1};
    capture_t caps[2] = {{-1, NULL, 0, 0, max}, {-1, NULL, 0, 0, max}};
    feed_t feed = {-1, o->stdin_data, o->stdin_len, 0};
    int rc = -1;
    pid_t pid;

    bool feeding = o->stdin_fd < 0 && o->stdin_data;
    if ((o->stdout_fd < 0 && open_pipe(out_pipe, 0, err) < 0) ||
        (o->stderr_fd < 0 && open_pipe(err_pipe, 0, err) < 0) ||
        (feeding && open_pipe(in_pipe, 1, err) < 0))
        goto out;
    int in = o->stdin_fd >= 0 ? o->stdin_fd : feeding ? in_pipe[0] : devnull;
    int out_fd = o->stdout_fd >= 0 ? o->stdout_fd : out_pipe[1];
    int err_fd = o->stderr_fd >= 0 ? o->stderr_fd : err_pipe[1];
    if (spawn_child(o, in, out_fd, err_fd, &pid, err) < 0)
        goto out;
    /* only the child may hold these ends, or EOF never comes */
    if (out_pipe[1] >= 0)
        close(TAKE_FD(out_pipe[1]));
    if (err_pipe[1] >= 0)
        close(TAKE_FD(err_pipe[1]));
    if (in_pipe[0] >= 0)
        close(TAKE_FD(in_pipe[0]));
    caps[0].fd = TAKE_FD(out_pipe[0]);
    caps[1].fd = TAKE_FD(err_pipe[0]);
    feed.fd = TAKE_FD(in_pipe[1]);
    if (feed.fd >= 0)
        feed_write(&feed);
    if (o->started)
        o->started(o->started_arg);
    int status = 0;
    if (wait_child(o, pid, caps, &feed, &status, err) < 0)
        goto out;
    ret->wait_status = status;
    ret->out = take_capture(&caps[0], &ret->out_len);
    ret->err = take_capture(&caps[1], &ret->err_len);
    rc = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (caps[i].fd >= 0)
            close(caps[i].fd);
        free(caps[i].buf);
        int *fds[] = {&out_pipe[i], &err_pipe[i], &in_pipe[i]};
        for (size_t k = 0; k < 3; k++)
            if (*fds[k] >= 0)
                close(*fds[k]);
    }
    if (feed.fd >= 0)
        close(feed.fd);
    return rc;
}
