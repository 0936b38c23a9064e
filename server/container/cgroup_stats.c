/* Reading a container's cgroup: cpu and memory usage for ContainerStats.
 * The cgroup is found through /proc/<pid>/cgroup, so the cgroupfs and the
 * systemd layout, cgroup v1, v2 and the hybrid mode all work the same. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/container/container-internal.h"

#define CGROUP_FILE_MAX ((size_t)256 * 1024)

/* The cgroup dir of pid for a v1 controller ("cpuacct", "memory"), or its
 * v2 dir when the controller is not mounted as v1. NULL when pid is gone. */
static char *cgroup_dir(pid_t pid, const char *controller, bool *ret_v2)
{
    cleanup_free char *path = xasprintf("/proc/%d/cgroup", (int)pid);
    cleanup_free char *data = NULL;
    cri_error_t ignored = CRI_ERROR_INIT;
    if (read_file(path, CGROUP_FILE_MAX, &data, NULL, &ignored) < 0)
        return NULL;
    char *v2 = NULL;
    for (char *save = NULL, *line = strtok_r(data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *ctrls = strchr(line, ':');
        char *rel = ctrls ? strchr(ctrls + 1, ':') : NULL;
        if (!rel)
            continue;
        *rel++ = '\0';
        ctrls++;
        if (!*ctrls) {
            str_set(&v2, rel);
            continue;
        }
        for (char *s2 = NULL, *c = strtok_r(ctrls, ",", &s2); c; c = strtok_r(NULL, ",", &s2))
            if (strcmp(c, controller) == 0) {
                free(v2);
                *ret_v2 = false;
                return xasprintf("/sys/fs/cgroup/%s%s", controller, rel);
            }
    }
    if (!v2)
        return NULL;
    /* pure v2 mounts at /sys/fs/cgroup; hybrid hosts at .../unified */
    cleanup_free char *unified = xasprintf("/sys/fs/cgroup/unified%s", v2);
    char *dir = access(unified, F_OK) == 0 ? xstrdup(unified) : xasprintf("/sys/fs/cgroup%s", v2);
    free(v2);
    *ret_v2 = true;
    return dir;
}

/* A single number from dir/file; 0 when unreadable. */
static uint64_t read_u64(const char *dir, const char *file)
{
    cleanup_free char *path = xasprintf("%s/%s", dir, file);
    cleanup_free char *data = NULL;
    cri_error_t ignored = CRI_ERROR_INIT;
    if (read_file(path, 64, &data, NULL, &ignored) < 0)
        return 0;
    return strtoull(data, NULL, 10);
}

/* The value of `key` in a "key value" per line file (memory.stat, cpu.stat). */
static uint64_t read_keyed(const char *dir, const char *file, const char *key)
{
    cleanup_free char *path = xasprintf("%s/%s", dir, file);
    cleanup_free char *data = NULL;
    cri_error_t ignored = CRI_ERROR_INIT;
    if (read_file(path, CGROUP_FILE_MAX, &data, NULL, &ignored) < 0)
        return 0;
    size_t klen = strlen(key);
    for (char *p = data; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, key, klen) == 0 && p[klen] == ' ')
            return strtoull(p + klen + 1, NULL, 10);
    return 0;
}

void container_cgroup_stats(pid_t pid, container_cgroup_stats_t *ret)
{
    memset(ret, 0, sizeof(*ret));
    if (pid <= 0)
        return;
    bool v2 = false;
    cleanup_free char *cpu = cgroup_dir(pid, "cpuacct", &v2);
    if (cpu)
        ret->cpu_ns =
            v2 ? read_keyed(cpu, "cpu.stat", "usage_usec") * 1000 : read_u64(cpu, "cpuacct.usage");
    cleanup_free char *mem = cgroup_dir(pid, "memory", &v2);
    if (!mem)
        return;
    uint64_t inactive;
    if (v2) {
        ret->mem_usage = read_u64(mem, "memory.current");
        inactive = read_keyed(mem, "memory.stat", "inactive_file");
        ret->mem_rss = read_keyed(mem, "memory.stat", "anon");
        ret->page_faults = read_keyed(mem, "memory.stat", "pgfault");
        ret->major_page_faults = read_keyed(mem, "memory.stat", "pgmajfault");
    } else {
        ret->mem_usage = read_u64(mem, "memory.usage_in_bytes");
        inactive = read_keyed(mem, "memory.stat", "total_inactive_file");
        ret->mem_rss = read_keyed(mem, "memory.stat", "total_rss");
        ret->page_faults = read_keyed(mem, "memory.stat", "total_pgfault");
        ret->major_page_faults = read_keyed(mem, "memory.stat", "total_pgmajfault");
    }
    /* kubelet's working set: usage minus the page cache it could drop */
    ret->mem_working_set = ret->mem_usage > inactive ? ret->mem_usage - inactive : 0;
    ret->valid = true;
}
