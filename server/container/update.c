/* UpdateContainerResources: `runc update` with the fields the request sets
 * (zero = unchanged, as containerd merges onto the spec; a memory limit
 * without a swap limit gets swap = limit), then the merged values are
 * stored and shown by ContainerStatus. Fails as a whole when the runtime
 * refuses, and then nothing is stored. */
#include <errno.h>
#include <stdlib.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/handlers.h"
#include "server/validate.h"

static void merge(container_resources_t *into, const container_resources_t *set)
{
    if (set->cpu_period)
        into->cpu_period = set->cpu_period;
    if (set->cpu_quota)
        into->cpu_quota = set->cpu_quota;
    if (set->cpu_shares)
        into->cpu_shares = set->cpu_shares;
    if (set->memory_limit)
        into->memory_limit = set->memory_limit;
    if (set->memory_swap)
        into->memory_swap = set->memory_swap;
    if (set->oom_score_adj)
        into->oom_score_adj = set->oom_score_adj;
    if (set->cpuset_cpus[0]) {
        str_set(&into->cpuset_cpus, set->cpuset_cpus);
    }
    if (set->cpuset_mems[0]) {
        str_set(&into->cpuset_mems, set->cpuset_mems);
    }
}

static int update_locked(daemon_t *d, container_t *c, const Runtime__V1__LinuxContainerResources *l,
                         cri_error_t *err)
{
    daemon_runtime_t *rt = daemon_runtime(d, c->runtime);
    if (!rt)
        return cri_error_set(err, EINVAL, "runtime handler `%s` is not configured", c->runtime);
    oci_resources_t res = {
        .cpu_shares = (uint64_t)l->cpu_shares,
        .cpu_quota = l->cpu_quota,
        .cpu_period = (uint64_t)l->cpu_period,
        .cpuset_cpus = l->cpuset_cpus,
        .cpuset_mems = l->cpuset_mems,
        .memory_limit = l->memory_limit_in_bytes,
        .memory_swap = l->memory_swap_limit_in_bytes ? l->memory_swap_limit_in_bytes
                                                     : l->memory_limit_in_bytes,
    };
    cleanup_free oci_kv_t *unified = xcalloc(l->n_unified + 1, sizeof(*unified));
    for (size_t i = 0; i < l->n_unified; i++)
        unified[i] = (oci_kv_t){l->unified[i]->key, l->unified[i]->value};
    res.unified = unified;
    res.n_unified = l->n_unified;
    if (oci_runtime_update(rt->oci, c->id, &res, err) < 0)
        return -1;
    container_resources_t set = {0};
    set.cpuset_cpus = xstrdup("");
    set.cpuset_mems = xstrdup("");
    container_resources_from_cri(l, &set);
    set.memory_swap = res.memory_swap;
    pthread_mutex_lock(&c->lock);
    merge(&c->resources, &set);
    pthread_mutex_unlock(&c->lock);
    free(set.cpuset_cpus);
    free(set.cpuset_mems);
    return container_record_write(d, c, err);
}

int container_validate_update(const Runtime__V1__UpdateContainerResourcesRequest *r,
                              cri_error_t *err)
{
    if (!r->linux)
        return cri_error_set(err, EINVAL, "linux resources are missing");
    const Runtime__V1__LinuxContainerResources *l = r->linux;
    if (validate_count("linux.hugepage_limits", l->n_hugepage_limits, VALIDATE_MAX_ENTRIES, err) <
            0 ||
        validate_count("linux.unified", l->n_unified, VALIDATE_MAX_ENTRIES, err) < 0 ||
        validate_map("linux.unified", (void *const *)l->unified, l->n_unified, false, err) < 0 ||
        validate_map("annotations", (void *const *)r->annotations, r->n_annotations, false, err) <
            0)
        return -1;
    return 0;
}

RPC_HANDLER(handle_update_container_resources)
{
    const Runtime__V1__UpdateContainerResourcesRequest *r =
        (const Runtime__V1__UpdateContainerResourcesRequest *)req;
    daemon_t *d = rpc_daemon(ctx);
    if (container_validate_update(r, err) < 0)
        return -1;
    cleanup_container container_t *c = NULL;
    if (container_store_get(daemon_containers(d), r->container_id, &c, err) < 0)
        return -1;
    pthread_mutex_lock(&c->op_lock);
    int rc = c->removed ? cri_error_set(err, ENOENT, "container `%s` not found", c->id)
                        : update_locked(d, c, r->linux, err);
    pthread_mutex_unlock(&c->op_lock);
    if (rc < 0)
        return cri_error_wrap(err, "update resources of `%s`", c->id);
    Runtime__V1__UpdateContainerResourcesResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__update_container_resources_response__init(resp);
    *ret_resp = &resp->base;
    return 0;
}
