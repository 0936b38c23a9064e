/* Running the runtime binary: posix_spawn (vfork-style, nothing allocated
 * between fork and exec, so safe in a threaded daemon), captured output, a
 * deadline enforced with SIGKILL. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "oci/oci-internal.h"

extern char **environ;

typedef struct capture {
    int fd; /* read end, -1 once at EOF */
    char *buf;
    size_t len, cap;
} capture_t;

void oci_spawn_result_free(oci_spawn_result_t *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

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
        if (c->len + keep > OCI_SPAWN_CAPTURE_MAX)
            keep = OCI_SPAWN_CAPTURE_MAX - c->len;
        if (c->len + keep + 1 > c->cap) {
            c->cap = (c->len + keep + 1) * 2;
            c->buf = xrealloc(c->buf, c->cap);
        }
        memcpy(c->buf + c->len, tmp, keep);
        c->len += keep;
    }
}

static void kill_pid_file(const char *path)
{
    if (!path)
        return;
    cleanup_free char *data = NULL;
    cri_error_t ignored = CRI_ERROR_INIT;
    if (read_file(path, 64, &data, NULL, &ignored) < 0)
        return;
    char *end = NULL;
    long pid = strtol(data, &end, 10);
    if (end != data && pid > 1)
        kill((pid_t)pid, SIGKILL);
}

static int spawn_child(const oci_spawn_t *sp, int in, int out, int errfd, pid_t *ret_pid,
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
    /* the daemon blocks SIGTERM/SIGINT for its threads: the runtime must not
     * inherit that, nor ignored signals */
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int r = posix_spawn(ret_pid, sp->argv[0], &fa, &attr, (char *const *)sp->argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (r != 0)
        return cri_error_make(err, r, "spawn `%s`", sp->argv[0]);
    return 0;
}

static int open_pipe(int fds[2], cri_error_t *err)
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return cri_error_make(err, errno, "pipe");
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    return 0;
}

/* Polls captures and the child until it exits or the deadline passes. */
static int wait_child(const oci_spawn_t *sp, pid_t pid, capture_t *caps, int *ret_status,
                      cri_error_t *err)
{
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int64_t deadline = mono_ms() + sp->timeout_ms;
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno == ECHILD) {
            /* someone else reaped it (SIGCHLD ignored, or a waitpid(-1)) */
            if (pidfd >= 0)
                close(pidfd);
            return cri_error_set(err, ECHILD, "`%s`: exit status lost (child reaped elsewhere)",
                                 sp->argv[0]);
        }
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            kill_pid_file(sp->kill_pid_file);
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            if (pidfd >= 0)
                close(pidfd);
            return cri_error_set(err, ETIMEDOUT, "`%s` timed out after %d ms, killed", sp->argv[0],
                                 sp->timeout_ms);
        }
        struct pollfd pfd[3];
        nfds_t n = 0;
        for (int i = 0; i < 2; i++)
            if (caps[i].fd >= 0)
                pfd[n++] = (struct pollfd){.fd = caps[i].fd, .events = POLLIN};
        if (pidfd >= 0)
            pfd[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
        /* without a pidfd (old kernel) poll in short steps */
        int step = pidfd >= 0 ? (int)left : (left < 10 ? (int)left : 10);
        if (poll(pfd, n, step) < 0 && errno != EINTR) {
            int e = errno;
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            if (pidfd >= 0)
                close(pidfd);
            return cri_error_make(err, e, "poll");
        }
        for (int i = 0; i < 2; i++)
            if (caps[i].fd >= 0)
                capture_read(&caps[i]);
    }
    if (pidfd >= 0)
        close(pidfd);
    /* the child is gone: whatever it wrote is in the pipes now (a grandchild
     * holding them open must not keep us here) */
    for (int i = 0; i < 2; i++)
        if (caps[i].fd >= 0)
            capture_read(&caps[i]);
    *ret_status = status;
    return 0;
}

int oci_spawn_run(const oci_spawn_t *sp, oci_spawn_result_t *ret, cri_error_t *err)
{
    cleanup_close int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0)
        return cri_error_make(err, errno, "open /dev/null");
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    capture_t caps[2] = {{-1, NULL, 0, 0}, {-1, NULL, 0, 0}};
    int rc = -1;
    pid_t pid;

    if ((sp->stdout_fd < 0 && open_pipe(out_pipe, err) < 0) ||
        (sp->stderr_fd < 0 && open_pipe(err_pipe, err) < 0))
        goto out;
    int in = sp->stdin_fd >= 0 ? sp->stdin_fd : devnull;
    int o = sp->stdout_fd >= 0 ? sp->stdout_fd : out_pipe[1];
    int e = sp->stderr_fd >= 0 ? sp->stderr_fd : err_pipe[1];
    if (spawn_child(sp, in, o, e, &pid, err) < 0)
        goto out;
    /* only the child may hold the write ends, or EOF never comes */
    if (out_pipe[1] >= 0)
        close(TAKE_FD(out_pipe[1]));
    if (err_pipe[1] >= 0)
        close(TAKE_FD(err_pipe[1]));
    caps[0].fd = TAKE_FD(out_pipe[0]);
    caps[1].fd = TAKE_FD(err_pipe[0]);
    int status = 0;
    if (wait_child(sp, pid, caps, &status, err) < 0)
        goto out;
    ret->wait_status = status;
    ret->out = caps[0].buf ? caps[0].buf : xstrdup("");
    ret->out_len = caps[0].len;
    if (caps[0].buf)
        caps[0].buf[caps[0].len] = '\0';
    ret->err = caps[1].buf ? caps[1].buf : xstrdup("");
    ret->err_len = caps[1].len;
    if (caps[1].buf)
        caps[1].buf[caps[1].len] = '\0';
    caps[0].buf = caps[1].buf = NULL;
    rc = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (caps[i].fd >= 0)
            close(caps[i].fd);
        free(caps[i].buf);
        if (out_pipe[i] >= 0)
            close(out_pipe[i]);
        if (err_pipe[i] >= 0)
            close(err_pipe[i]);
    }
    return rc;
}
