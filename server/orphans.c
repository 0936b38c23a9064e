/* Waiting for the helpers a killed daemon left behind (see orphans.h).
 *
 * Why wait rather than kill at once: a plugin killed mid-ADD can leave a
 * host-local lease file without the container id in it, which no DEL
 * finds again; let it finish, then the DEL recovery issues (with the
 * config cni/ cached before the first plugin ran) releases what it made.
 * Why not PR_SET_PDEATHSIG: the same kill mid-write, at the moment the
 * daemon dies. The wait is bounded by the per-call timeouts, past which
 * the daemon itself would have killed them. */
#include "server/orphans.h"

#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "server/daemon.h"

#define ORPHANS_MAX 4096
#define PROC_TEXT_MAX ((size_t)256 * 1024)

char *orphans_cni_marker(const char *root)
{
    return xasprintf("CRICKET_CNI_OWNER=%s", root);
}

/* Whether the NUL-separated list holds `entry` as one item. */
static bool list_has(const char *list, size_t len, const char *entry)
{
    for (size_t off = 0; off < len; off += strlen(list + off) + 1)
        if (strcmp(list + off, entry) == 0)
            return true;
    return false;
}

static char *proc_read(int pid, const char *what, size_t *ret_len)
{
    cleanup_free char *path = xasprintf("/proc/%d/%s", pid, what);
    char *data = NULL;
    cri_error_t ignore = CRI_ERROR_INIT;
    if (read_file(path, PROC_TEXT_MAX, &data, ret_len, &ignore) < 0)
        return NULL;
    return data;
}

/* One helper waited for: done when it exited or, for a monitor still in
 * its create phase, when it closed its sync fd (runc create is over). */
typedef struct orphan {
    int pid;
    int sync_fd; /* -1: wait for the exit */
} orphan_t;

/* Whether pid still holds fd as a pipe (the sync pipe; once it is closed
 * the number may be reused, but not for a pipe: a monitor makes its
 * container's pipes before runc create). */
static bool sync_pipe_open(int pid, int fd)
{
    cleanup_free char *path = xasprintf("/proc/%d/fd/%d", pid, fd);
    char target[64];
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n <= 0)
        return false;
    target[n] = '\0';
    return strncmp(target, "pipe:", 5) == 0;
}

/* The value following `flag` in argv, or NULL. */
static const char *arg_after(const char *argv, size_t len, const char *flag)
{
    for (size_t off = 0; off < len; off += strlen(argv + off) + 1)
        if (strcmp(argv + off, flag) == 0) {
            size_t next = off + strlen(argv + off) + 1;
            return next < len ? argv + next : NULL;
        }
    return NULL;
}

/* A monitor of ours (its exit files go to our exit dir) creating its
 * container: it holds its sync fd until `runc create` is over, and a
 * create that ends after recovery looked would leave a container behind.
 * Exec monitors (--exec) are left alone. Returns the sync fd, or -1. */
static int creating_monitor_fd(daemon_t *d, int pid, const char *argv, size_t len)
{
    const char *exit_dir = arg_after(argv, len, "--exit-dir");
    const char *sync = arg_after(argv, len, "--sync-fd");
    if (!exit_dir || !sync || strcmp(exit_dir, d->exit_dir) != 0 || list_has(argv, len, "--exec"))
        return -1;
    char *end = NULL;
    long fd = strtol(sync, &end, 10);
    if (*end || fd < 0 || fd > 65535)
        return -1;
    return sync_pipe_open(pid, (int)fd) ? (int)fd : -1;
}

/* argv[1] == "--root" and argv[2] the root of one of our runtimes. */
static bool is_runtime_call(daemon_t *d, const char *argv, size_t len)
{
    size_t a1 = strlen(argv) + 1;
    if (a1 >= len || strcmp(argv + a1, "--root") != 0)
        return false;
    size_t a2 = a1 + strlen(argv + a1) + 1;
    if (a2 >= len)
        return false;
    for (size_t i = 0; i < d->n_runtimes; i++)
        if (strcmp(argv + a2, d->runtimes[i].oci->root) == 0)
            return true;
    return false;
}

/* An ExecSync's foreground `runtime exec` (oci/exec_ops.c): its caller
 * went with the previous daemon and nothing enforces its timeout any more,
 * so its process (the pid in --pid-file) is killed now; the runtime reaps
 * it and exits, which the wait below sees. */
static void kill_orphan_exec(const char *argv, size_t len)
{
    const char *pid_file = arg_after(argv, len, "--pid-file");
    if (!pid_file || !list_has(argv, len, "exec"))
        return;
    cleanup_free char *data = NULL;
    cri_error_t ignore = CRI_ERROR_INIT;
    if (read_file(pid_file, 64, &data, NULL, &ignore) < 0)
        return;
    char *end = NULL;
    long pid = strtol(data, &end, 10);
    if (end != data && pid > 1 && kill((pid_t)pid, SIGKILL) == 0)
        log_info("killed pid %ld, exec'd for an ExecSync of the previous daemon", pid);
}

/* Whether pid is a helper of ours to wait for; *ret_sync_fd as in orphan_t. */
static bool is_ours(daemon_t *d, int pid, const char *marker, int *ret_sync_fd)
{
    size_t len = 0;
    *ret_sync_fd = -1;
    cleanup_free char *argv = proc_read(pid, "cmdline", &len);
    if (argv && len > 0 && is_runtime_call(d, argv, len)) {
        kill_orphan_exec(argv, len);
        return true;
    }
    if (argv && len > 0 && (*ret_sync_fd = creating_monitor_fd(d, pid, argv, len)) >= 0)
        return true;
    cleanup_free char *env = marker ? proc_read(pid, "environ", &len) : NULL;
    return env && len > 0 && list_has(env, len, marker);
}

/* Gone or a zombie (its new parent reaps it when it likes). */
static bool has_exited(int pid)
{
    size_t len = 0;
    cleanup_free char *stat = proc_read(pid, "stat", &len);
    const char *paren = stat ? strrchr(stat, ')') : NULL;
    return !paren || paren[1] != ' ' || paren[2] == 'Z' || paren[2] == 'X';
}

static bool is_done(const orphan_t *o)
{
    if (o->sync_fd >= 0 && !sync_pipe_open(o->pid, o->sync_fd))
        return true;
    return has_exited(o->pid);
}

/* A child of ours (a runtime call this daemon already makes while it
 * recovers) is no helper of the previous daemon. */
static bool is_our_child(int pid)
{
    size_t len = 0;
    cleanup_free char *status = proc_read(pid, "status", &len);
    const char *p = status ? strstr(status, "\nPPid:") : NULL;
    return p && strtol(p + strlen("\nPPid:"), NULL, 10) == (long)getpid();
}

static size_t find_orphans(daemon_t *d, orphan_t *found, size_t max)
{
    DIR *dir = opendir("/proc");
    size_t n = 0;
    if (!dir)
        return 0;
    for (struct dirent *e = readdir(dir); e && n < max; e = readdir(dir)) {
        char *end = NULL;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid())
            continue;
        orphan_t o = {.pid = (int)pid, .sync_fd = -1};
        if (is_ours(d, o.pid, d->cni_marker, &o.sync_fd) && !is_done(&o) && !is_our_child(o.pid))
            found[n++] = o;
    }
    closedir(dir);
    return n;
}

static int longest_timeout(daemon_t *d)
{
    int t = d->cni.timeout_ms;
    for (size_t i = 0; i < d->n_runtimes; i++)
        if (d->runtimes[i].oci->timeout_ms > t)
            t = d->runtimes[i].oci->timeout_ms;
    return t;
}

size_t orphans_wait(daemon_t *d)
{
    int timeout_ms = longest_timeout(d);
    orphan_t *found = xcalloc(ORPHANS_MAX, sizeof(*found));
    size_t n = find_orphans(d, found, ORPHANS_MAX);
    const struct timespec tick = {0, 10L * 1000 * 1000};
    size_t left = n;
    for (size_t i = 0; i < n; i++)
        log_info("waiting for pid %d, left running by the previous daemon%s", found[i].pid,
                 found[i].sync_fd >= 0 ? " (a monitor creating its container)" : "");
    for (int waited = 0; left > 0; waited += 10) {
        left = 0;
        for (size_t i = 0; i < n; i++) {
            if (found[i].pid > 0 && is_done(&found[i]))
                found[i].pid = 0;
            left += found[i].pid > 0;
        }
        if (left == 0 || waited >= timeout_ms)
            break;
        nanosleep(&tick, NULL);
    }
    for (size_t i = 0; i < n && left > 0; i++) {
        if (found[i].pid <= 0 || found[i].sync_fd >= 0)
            continue; /* a monitor is never killed: it may be a healthy one */
        log_warn("pid %d of the previous daemon still runs after %d ms: killing it", found[i].pid,
                 timeout_ms);
        kill(found[i].pid, SIGKILL);
        for (int w = 0; w < 5000 && !has_exited(found[i].pid); w += 10)
            nanosleep(&tick, NULL);
    }
    free(found);
    /* their per-call files too (runc --log and the like) */
    for (size_t i = 0; i < d->n_runtimes; i++) {
        cri_error_t e = CRI_ERROR_INIT;
        if (oci_runtime_sweep_tmp(d->runtimes[i].oci, &e) < 0)
            log_warn("%s, ignoring", e.msg);
    }
    return n;
}
