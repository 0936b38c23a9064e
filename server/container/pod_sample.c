/* One look at a pod for PodSandboxStats and the pod metrics: its cgroup
 * figures, its netns' interfaces and its containers. Kept cheap: a few
 * small cgroup files, one short thread for /proc/net/dev in the pod's
 * netns, and no runc or disk walk (the writable layers come from the 2 s
 * du cache in stats.c). */
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/sandbox/sandbox.h"

/* A running container's pid, else 0. */
pid_t container_running_pid(container_t *c)
{
    container_status_t st;
    container_get_status(c, &st);
    pid_t pid = st.state == CONTAINER_STATE_RUNNING ? st.pid : 0;
    container_status_clear(&st);
    return pid;
}

/* The pod's own cgroup (cgroup_parent), or the sum of its infra's and its
 * running containers' cgroups when it has none (the default parent is
 * shared by every pod). */
static void pod_cgroup(struct daemon *d, sandbox_t *sb, pid_t infra, container_t **ctrs, size_t n,
                       cgroup_stats_t *ret)
{
    memset(ret, 0, sizeof(*ret));
    if (sb->cgroup_parent[0]) {
        cleanup_free char *rel = NULL;
        cri_error_t ignored = CRI_ERROR_INIT;
        if (cgroup_parent_path(sb->cgroup_parent, daemon_cgroup_systemd(d), &rel, &ignored) == 0)
            cgroup_read_stats(CGROUP_ROOT, rel, daemon_host(d)->cgroup2, ret);
        if (ret->valid)
            return;
    }
    cgroup_stats_t one;
    container_cgroup_stats(infra, &one);
    cgroup_stats_add(ret, &one);
    for (size_t i = 0; i < n; i++) {
        container_cgroup_stats(container_running_pid(ctrs[i]), &one);
        cgroup_stats_add(ret, &one);
    }
}

void container_pod_sample(struct daemon *d, sandbox_t *sb, container_pod_sample_t *ret)
{
    memset(ret, 0, sizeof(*ret));
    pid_t infra = 0;
    ret->ready = sandbox_get_state(sb, &infra) == SANDBOX_STATE_READY;
    container_store_list(daemon_containers(d), sb->id, &ret->ctrs, &ret->n_ctrs);
    pod_cgroup(d, sb, ret->ready ? infra : 0, ret->ctrs, ret->n_ctrs, &ret->cg);
    ret->now = now_unix_ns();
    if (ret->ready && sb->netns_path[0]) {
        /* the infra's /proc/<pid>/net/dev when it is in the pod's netns (no
         * thread), else a thread in the pinned netns; gone: no figures */
        cri_error_t ignored = CRI_ERROR_INIT;
        ret->has_net = (infra > 0 && netdev_read_pid(infra, sb->netns_path, &ret->ifs, &ret->n_ifs,
                                                     &ignored) == 0) ||
                       netdev_read_netns(sb->netns_path, &ret->ifs, &ret->n_ifs, &ignored) == 0;
    }
}

void container_pod_sample_clear(container_pod_sample_t *s)
{
    container_list_free(s->ctrs, s->n_ctrs);
    free(s->ifs);
    memset(s, 0, sizeof(*s));
}
