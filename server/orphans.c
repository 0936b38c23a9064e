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

static bool is_ours(daemon_t *d, int pid, const char *marker)
{
    size_t len = 0;
    cleanup_free char *argv = proc_read(pid, "cmdline", &len);
    if (argv && len > 0 && is_runtime_call(d, argv, len))
        return true;
    cleanup_free char *env = proc_read(pid, "environ", &len);
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

static size_t find_orphans(daemon_t *d, int *pids, size_t max)
{
    const char *marker = d->cni_marker;
    DIR *dir = opendir("/proc");
    size_t n = 0;
    if (!dir)
        return 0;
    for (struct dirent *e = readdir(dir); e && n < max; e = readdir(dir)) {
        char *end = NULL;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid())
            continue;
        if (marker && is_ours(d, (int)pid, marker) && !has_exited((int)pid))
            pids[n++] = (int)pid;
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
    int *pids = xcalloc(ORPHANS_MAX, sizeof(int));
    size_t n = find_orphans(d, pids, ORPHANS_MAX);
    const struct timespec tick = {0, 10L * 1000 * 1000};
    size_t left = n;
    for (size_t i = 0; i < n; i++)
        log_info("waiting for pid %d, left running by the previous daemon", pids[i]);
    for (int waited = 0; left > 0; waited += 10) {
        left = 0;
        for (size_t i = 0; i < n; i++) {
            if (pids[i] > 0 && has_exited(pids[i]))
                pids[i] = 0;
            left += pids[i] > 0;
        }
        if (left == 0 || waited >= timeout_ms)
            break;
        nanosleep(&tick, NULL);
    }
    for (size_t i = 0; i < n && left > 0; i++) {
        if (pids[i] <= 0)
            continue;
        log_warn("pid %d of the previous daemon still runs after %d ms: killing it", pids[i],
                 timeout_ms);
        kill(pids[i], SIGKILL);
        for (int w = 0; w < 5000 && !has_exited(pids[i]); w += 10)
            nanosleep(&tick, NULL);
    }
    free(pids);
    return n;
}
