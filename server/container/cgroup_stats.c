/* Reading a container's cgroup for ContainerStats and the pod stats. The
 * cgroup is found through /proc/<pid>/cgroup, so the cgroupfs and the
 * systemd layout, cgroup v1, v2 and the hybrid mode all work the same; the
 * files are read by server/cgroup.c. */
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/cgroup.h"
#include "server/container/container-internal.h"

void container_cgroup_stats(pid_t pid, cgroup_stats_t *ret)
{
    memset(ret, 0, sizeof(*ret));
    if (pid <= 0)
        return;
    bool v2 = false;
    cleanup_free char *rel = cgroup_of_pid(pid, "memory", &v2);
    if (!rel)
        return;
    const char *root = CGROUP_ROOT;
    cleanup_free char *unified = NULL;
    if (v2) {
        /* pure v2 mounts at /sys/fs/cgroup; hybrid hosts at .../unified */
        cleanup_free char *probe = xasprintf("%s/unified%s", CGROUP_ROOT, rel);
        if (access(probe, F_OK) == 0)
            root = unified = xasprintf("%s/unified", CGROUP_ROOT);
    }
    cgroup_read_stats(root, rel, v2, ret);
}
