/* Starting a created runc container without running `runc start`.
 *
 * What `runc start` does for a created container is read its exec fifo,
 * <root>/<id>/exec.fifo: the container's `runc init` blocks writing one
 * byte there, then execs the process, and start removes the fifo once
 * read (runc tells "created" from "running" by the fifo being there). Doing
 * that here spares a runtime process (a Go binary starting up) per start.
 * The init process is the one in <root>/<id>/state.json (checked by its
 * start time, so a recycled pid is never taken for it), watched through a
 * pidfd so that a dead init never leaves us waiting. Whenever anything is
 * not as expected (another runtime, no fifo, no state, a dead init) the
 * caller falls back to `<runtime> start`, whose messages are the ones users
 * know. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "oci/oci-internal.h"

#define STATE_MAX ((size_t)4 << 20)

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Field 22 of /proc/<pid>/stat (start time in clock ticks), or 0. */
static uint64_t proc_start_time(pid_t pid)
{
    cleanup_free char *path = xasprintf("/proc/%d/stat", (int)pid);
    cleanup_free char *stat = NULL;
    cri_error_t ignored = CRI_ERROR_INIT;
    if (read_file(path, 4096, &stat, NULL, &ignored) < 0)
        return 0;
    char *p = strrchr(stat, ')');
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

/* A pidfd of the container's init, as state.json names it; -1 when there
 * is no such state or the process is gone. */
static int init_pidfd(const char *dir)
{
    cleanup_free char *path = xasprintf("%s/state.json", dir);
    cleanup_free char *text = NULL;
    cri_error_t ignored = CRI_ERROR_INIT;
    if (read_file(path, STATE_MAX, &text, NULL, &ignored) < 0)
        return -1;
    cleanup_json json_t *j = json_loads(text, 0, NULL);
    /* newer runc (opencontainers/runc#5186) runs poststart hooks in `runc
     * start`, after the fifo is
     * read: a container that has any must be started by the runtime */
    json_t *poststart =
        json_object_get(json_object_get(json_object_get(j, "config"), "Hooks"), "poststart");
    if (json_array_size(poststart) > 0)
        return -1;
    json_t *pid = json_object_get(j, "init_process_pid");
    json_t *start = json_object_get(j, "init_process_start");
    if (!json_is_integer(pid) || !json_is_integer(start) || json_integer_value(pid) <= 1)
        return -1;
    int fd = (int)syscall(SYS_pidfd_open, (pid_t)json_integer_value(pid), 0);
    /* checked after the pidfd exists: the pid cannot be recycled under it */
    if (fd >= 0 &&
        proc_start_time((pid_t)json_integer_value(pid)) != (uint64_t)json_integer_value(start)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Waits for fd to be readable or hung up, or for the init to die first.
 * 1 readable, 0 the init died, -1 with err on timeout or failure. */
static int wait_fifo(int fifo, int pidfd, int64_t deadline, short *ret_revents, cri_error_t *err)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return cri_error_set(err, ETIMEDOUT, "timed out waiting for the container's init");
        struct pollfd p[2] = {{fifo, POLLIN, 0}, {pidfd, POLLIN, 0}};
        int n = poll(p, 2, (int)(left > 60000 ? 60000 : left));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cri_error_make(err, errno, "poll exec fifo");
        if (p[0].revents) {
            *ret_revents = p[0].revents;
            return 1;
        }
        if (p[1].revents)
            return 0;
    }
}

int oci_fifo_start(oci_runtime_t *rt, const char *id, cri_error_t *err)
{
    cleanup_free char *dir = xasprintf("%s/%s", rt->root, id);
    cleanup_free char *fifo_path = xasprintf("%s/exec.fifo", dir);
    cleanup_close int pidfd = init_pidfd(dir);
    if (pidfd < 0)
        return 1;
    /* non-blocking: the open never waits for a writer */
    cleanup_close int fifo = open(fifo_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fifo < 0 || fstat(fifo, &st) < 0 || !S_ISFIFO(st.st_mode))
        return 1;
    int64_t deadline = mono_ms() + rt->timeout_ms;
    bool got = false;
    for (;;) {
        short revents = 0;
        int r = wait_fifo(fifo, pidfd, deadline, &revents, err);
        if (r < 0)
            return cri_error_wrap(err, "start `%s`", id);
        if (r == 0 && !got)
            return 1; /* the init died before it was let go: `runtime start` says so */
        if (r == 0)
            break;
        char buf[64];
        ssize_t n = read(fifo, buf, sizeof(buf));
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return cri_error_make(err, errno, "read `%s`", fifo_path);
        if (n == 0 && !got)
            return 1; /* a writer came and went without a byte: let the runtime judge */
        if (n == 0)
            break; /* EOF: the init exec'd the process (its end was close-on-exec) */
        got = true;
    }
    if (unlink(fifo_path) < 0 && errno != ENOENT)
        return cri_error_make(err, errno, "remove `%s`", fifo_path);
    return 0;
}
