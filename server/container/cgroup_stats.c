/* Reading a container's cgroup for ContainerStats and the pod stats. The
 * cgroup is found through /proc/<pid>/cgroup, so the cgroupfs and the
 * systemd layout, cgroup v1, v2 and the hybrid mode all work the same; the
 * files are read by server/cgroup.c. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/cgroup.h"
#include "server/container/container-internal.h"

/* pid's cgroup (memory controller's path on v1) and the root to read it
 * under; NULL when pid is gone. */
static char *locate(pid_t pid, bool *ret_v2, char **ret_root)
{
    *ret_root = NULL;
    if (pid <= 0)
        return NULL;
    char *rel = cgroup_of_pid(pid, "memory", ret_v2);
    if (!rel)
        return NULL;
    if (*ret_v2) {
        /* pure v2 mounts at /sys/fs/cgroup; hybrid hosts at .../unified */
        cleanup_free char *probe = xasprintf("%s/unified%s", CGROUP_ROOT, rel);
        if (access(probe, F_OK) == 0)
            *ret_root = xasprintf("%s/unified", CGROUP_ROOT);
    }
    if (!*ret_root)
        *ret_root = xstrdup(CGROUP_ROOT);
    return rel;
}

void container_cgroup_stats(pid_t pid, cgroup_stats_t *ret)
{
    memset(ret, 0, sizeof(*ret));
    bool v2 = false;
    cleanup_free char *root = NULL;
    cleanup_free char *rel = locate(pid, &v2, &root);
    if (rel)
        cgroup_read_stats(root, rel, v2, ret);
}

#define FD_WALK_MAX_PROCS 1024

/* Open fds and sockets of one process (/proc/<pid>/fd). */
static void count_fds(long pid, uint64_t *fds, uint64_t *sockets)
{
    char dir[64];
    (void)snprintf(dir, sizeof(dir), "/proc/%ld/fd", pid);
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        (*fds)++;
        char link[64];
        ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);
        if (n > 0 && (link[n] = '\0', str_has_prefix(link, "socket:")))
            (*sockets)++;
    }
    closedir(d);
}

void container_cgroup_extra(pid_t pid, cgroup_extra_t *ret, uint64_t *ret_fds,
                            uint64_t *ret_sockets)
{
    memset(ret, 0, sizeof(*ret));
    *ret_fds = *ret_sockets = 0;
    bool v2 = false;
    cleanup_free char *root = NULL;
    cleanup_free char *rel = locate(pid, &v2, &root);
    if (!rel)
        return;
    cgroup_read_extra(root, rel, v2, ret);
    cleanup_free char *procs = v2 ? xasprintf("%s%s/cgroup.procs", root, rel)
                                  : xasprintf("%s/memory%s/cgroup.procs", root, rel);
    cleanup_fclose FILE *f = fopen(procs, "re");
    char line[32];
    for (int n = 0; f && n < FD_WALK_MAX_PROCS && fgets(line, sizeof(line), f); n++) {
        long p = strtol(line, NULL, 10);
        if (p > 0)
            count_fds(p, ret_fds, ret_sockets);
    }
}
