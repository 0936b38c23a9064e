/* UpdatePodSandboxResources: kubelet's in-place pod resize. The pod's
 * cgroup (its cgroup_parent) gets the cpu and memory limits of `resources`
 * plus `overhead` (v1: cpu.cfs_period_us, cpu.cfs_quota_us, cpu.shares,
 * memory.limit_in_bytes; v2: cpu.max, cpu.weight, memory.max); both are kept
 * in the pod record and shown by PodSandboxStatus verbose. Unknown pod ->
 * NOT_FOUND; a pod without a cgroup_parent has no cgroup of its own to
 * resize (its containers sit in the shared default parent) -> INVALID_ARGUMENT;
 * the kernel refusing a value (a memory limit under the usage on v1: EBUSY)
 * is the kernel's error naming the file, and nothing is recorded. */
#include <errno.h>
#include <string.h>

#include "common/cleanup.h"
#include "server/cgroup.h"
#include "server/daemon.h"
#include "server/handlers.h"
#include "server/sandbox/sandbox-internal.h"

/* The CRI values kubelet sends; 0 is "unset" throughout. */
static int check_limits(const char *field, const Runtime__V1__LinuxContainerResources *r,
                        cri_error_t *err)
{
    if (!r)
        return 0;
    if (r->cpu_period && (r->cpu_period < 1000 || r->cpu_period > 1000000))
        return cri_error_set(err, EINVAL, "%s.cpu_period: %lld is outside 1000..1000000 us", field,
                             (long long)r->cpu_period);
    if (r->cpu_quota < -1 || (r->cpu_quota > 0 && r->cpu_quota < 1000))
        return cri_error_set(err, EINVAL, "%s.cpu_quota: %lld is neither -1 nor >= 1000 us", field,
                             (long long)r->cpu_quota);
    if (r->cpu_shares < 0 || r->cpu_shares > 262144)
        return cri_error_set(err, EINVAL, "%s.cpu_shares: %lld is outside 0..262144", field,
                             (long long)r->cpu_shares);
    if (r->memory_limit_in_bytes < 0)
        return cri_error_set(err, EINVAL, "%s.memory_limit_in_bytes: %lld is negative", field,
                             (long long)r->memory_limit_in_bytes);
    return 0;
}

static void limits_of(const Runtime__V1__LinuxContainerResources *r, cgroup_limits_t *ret)
{
    memset(ret, 0, sizeof(*ret));
    if (!r)
        return;
    ret->cpu_period = r->cpu_period;
    ret->cpu_quota = r->cpu_quota;
    ret->cpu_shares = r->cpu_shares;
    ret->memory_limit = r->memory_limit_in_bytes;
}

/* What the pod cgroup gets: resources plus overhead, each limit only when
 * resources sets it (an unlimited quota stays unlimited). */
static void pod_limits(const cgroup_limits_t *res, const cgroup_limits_t *over,
                       cgroup_limits_t *ret)
{
    *ret = *res;
    if (!ret->cpu_period)
        ret->cpu_period = over->cpu_period;
    if (res->cpu_quota > 0 && over->cpu_quota > 0)
        ret->cpu_quota += over->cpu_quota;
    if (res->cpu_shares)
        ret->cpu_shares += over->cpu_shares;
    if (ret->cpu_shares > 262144)
        ret->cpu_shares = 262144;
    if (res->memory_limit)
        ret->memory_limit += over->memory_limit;
}

static int update_locked(daemon_t *d, sandbox_t *sb, const cgroup_limits_t *res,
                         const cgroup_limits_t *over, cri_error_t *err)
{
    if (sb->removed)
        return cri_error_set(err, ENOENT, "pod sandbox `%s` not found", sb->id);
    if (!sb->cgroup_parent[0])
        return cri_error_set(
            err, EINVAL, "pod sandbox `%s` has no cgroup_parent: no pod cgroup to resize", sb->id);
    cleanup_free char *rel = NULL;
    if (cgroup_parent_path(sb->cgroup_parent, daemon_cgroup_systemd(d), &rel, err) < 0)
        return -1;
    cgroup_limits_t l;
    pod_limits(res, over, &l);
    if (cgroup_set_limits(CGROUP_ROOT, rel, daemon_host(d)->cgroup2, &l, err) < 0)
        return -1;
    pthread_mutex_lock(&sb->lock);
    sb->resources = *res;
    sb->overhead = *over;
    sb->resources_set = true;
    pthread_mutex_unlock(&sb->lock);
    return sandbox_store_persist(daemon_sandboxes(d), sb, false, err);
}

RPC_HANDLER(handle_update_pod_sandbox_resources)
{
    const Runtime__V1__UpdatePodSandboxResourcesRequest *r =
        (const Runtime__V1__UpdatePodSandboxResourcesRequest *)req;
    daemon_t *d = rpc_daemon(ctx);
    if (!r->pod_sandbox_id[0])
        return cri_error_set(err, EINVAL, "pod_sandbox_id is empty");
    if (!r->resources)
        return cri_error_set(err, EINVAL, "resources is missing");
    if (check_limits("resources", r->resources, err) < 0 ||
        check_limits("overhead", r->overhead, err) < 0)
        return -1;
    cleanup_sandbox sandbox_t *sb = NULL;
    if (sandbox_store_get(daemon_sandboxes(d), r->pod_sandbox_id, &sb, err) < 0)
        return -1;
    cgroup_limits_t res, over;
    limits_of(r->resources, &res);
    limits_of(r->overhead, &over);
    pthread_mutex_lock(&sb->op_lock);
    int rc = update_locked(d, sb, &res, &over, err);
    pthread_mutex_unlock(&sb->op_lock);
    if (rc < 0)
        return cri_error_wrap(err, "update resources of pod sandbox `%s`", sb->id);
    Runtime__V1__UpdatePodSandboxResourcesResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__update_pod_sandbox_resources_response__init(resp);
    *ret_resp = &resp->base;
    return 0;
}
