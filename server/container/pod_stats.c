/* PodSandboxStats: the pod's cpu (usage_nano_cores from the previous
 * call's sample), memory (available_bytes only under a limit), network per
 * interface of its netns (eth0 as the default interface), process count,
 * io and cpu/memory PSI where the kernel exposes them (cgroup v2), and the
 * ContainerStats of every running container of the pod. A NOTREADY pod is
 * answered with zero figures and no network. Unknown id -> NOT_FOUND. */
#include <errno.h>
#include <pthread.h>

#include "common/cleanup.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/handlers.h"
#include "server/sandbox/sandbox.h"

static Runtime__V1__PodSandboxAttributes *pod_attributes(rpc_ctx_t *ctx, sandbox_t *sb)
{
    Runtime__V1__PodSandboxAttributes *a = rpc_alloc(ctx, sizeof(*a));
    runtime__v1__pod_sandbox_attributes__init(a);
    a->id = rpc_strdup(ctx, sb->id);
    a->metadata = rpc_alloc(ctx, sizeof(*a->metadata));
    runtime__v1__pod_sandbox_metadata__init(a->metadata);
    a->metadata->name = rpc_strdup(ctx, sb->meta_name);
    a->metadata->uid = rpc_strdup(ctx, sb->meta_uid);
    a->metadata->namespace_ = rpc_strdup(ctx, sb->meta_namespace);
    a->metadata->attempt = sb->attempt;
    a->labels = (Runtime__V1__PodSandboxAttributes__LabelsEntry **)rpc_map_entries(
        ctx, &runtime__v1__pod_sandbox_attributes__labels_entry__descriptor, sb->labels,
        &a->n_labels);
    a->annotations = (Runtime__V1__PodSandboxAttributes__AnnotationsEntry **)rpc_map_entries(
        ctx, &runtime__v1__pod_sandbox_attributes__annotations_entry__descriptor, sb->annotations,
        &a->n_annotations);
    return a;
}

static Runtime__V1__PsiData *psi_data(rpc_ctx_t *ctx, const cgroup_psi_line_t *l)
{
    if (!l->valid)
        return NULL;
    Runtime__V1__PsiData *p = rpc_alloc(ctx, sizeof(*p));
    runtime__v1__psi_data__init(p);
    p->total = l->total;
    p->avg10 = l->avg10;
    p->avg60 = l->avg60;
    p->avg300 = l->avg300;
    return p;
}

static Runtime__V1__PsiStats *psi(rpc_ctx_t *ctx, const cgroup_psi_t *c)
{
    if (!c->valid)
        return NULL;
    Runtime__V1__PsiStats *p = rpc_alloc(ctx, sizeof(*p));
    runtime__v1__psi_stats__init(p);
    p->full = psi_data(ctx, &c->full);
    p->some = psi_data(ctx, &c->some);
    return p;
}

static Runtime__V1__CpuUsage *pod_cpu(rpc_ctx_t *ctx, sandbox_t *sb,
                                      const container_pod_sample_t *s)
{
    Runtime__V1__CpuUsage *cpu = rpc_alloc(ctx, sizeof(*cpu));
    runtime__v1__cpu_usage__init(cpu);
    cpu->timestamp = s->now;
    cpu->usage_core_nano_seconds = container_u64(ctx, s->cg.cpu_ns);
    if (s->cg.valid) {
        pthread_mutex_lock(&sb->lock);
        uint64_t prev_ns = sb->cpu_sample_ns;
        int64_t prev_at = sb->cpu_sample_at;
        sb->cpu_sample_ns = s->cg.cpu_ns;
        sb->cpu_sample_at = s->now;
        pthread_mutex_unlock(&sb->lock);
        cpu->usage_nano_cores = container_nano_cores(ctx, prev_ns, prev_at, s->cg.cpu_ns, s->now);
    }
    cpu->psi = psi(ctx, &s->cg.cpu_psi);
    return cpu;
}

static Runtime__V1__MemoryUsage *pod_memory(rpc_ctx_t *ctx, const container_pod_sample_t *s)
{
    const cgroup_stats_t *cg = &s->cg;
    Runtime__V1__MemoryUsage *m = rpc_alloc(ctx, sizeof(*m));
    runtime__v1__memory_usage__init(m);
    m->timestamp = s->now;
    m->working_set_bytes = container_u64(ctx, cg->mem_working_set);
    m->usage_bytes = container_u64(ctx, cg->mem_usage);
    m->rss_bytes = container_u64(ctx, cg->mem_rss);
    m->page_faults = container_u64(ctx, cg->page_faults);
    m->major_page_faults = container_u64(ctx, cg->major_page_faults);
    if (cg->mem_limit)
        m->available_bytes = container_u64(
            ctx, cg->mem_limit > cg->mem_working_set ? cg->mem_limit - cg->mem_working_set : 0);
    m->psi = psi(ctx, &cg->mem_psi);
    return m;
}

static Runtime__V1__NetworkInterfaceUsage *iface(rpc_ctx_t *ctx, const netdev_iface_t *i)
{
    Runtime__V1__NetworkInterfaceUsage *u = rpc_alloc(ctx, sizeof(*u));
    runtime__v1__network_interface_usage__init(u);
    u->name = rpc_strdup(ctx, i->name);
    u->rx_bytes = container_u64(ctx, i->rx_bytes);
    u->rx_errors = container_u64(ctx, i->rx_errors);
    u->tx_bytes = container_u64(ctx, i->tx_bytes);
    u->tx_errors = container_u64(ctx, i->tx_errors);
    return u;
}

static Runtime__V1__NetworkUsage *pod_network(rpc_ctx_t *ctx, const container_pod_sample_t *s)
{
    if (!s->has_net)
        return NULL;
    Runtime__V1__NetworkUsage *n = rpc_alloc(ctx, sizeof(*n));
    runtime__v1__network_usage__init(n);
    n->timestamp = s->now;
    long def = netdev_default(s->ifs, s->n_ifs);
    if (def >= 0)
        n->default_interface = iface(ctx, &s->ifs[def]);
    n->interfaces =
        rpc_alloc_array(ctx, s->n_ifs ? s->n_ifs : 1, Runtime__V1__NetworkInterfaceUsage *);
    for (size_t i = 0; i < s->n_ifs; i++)
        n->interfaces[n->n_interfaces++] = iface(ctx, &s->ifs[i]);
    return n;
}

Runtime__V1__PodSandboxStats *container_reply_pod_stats(rpc_ctx_t *ctx, sandbox_t *sb)
{
    container_pod_sample_t s;
    container_pod_sample(rpc_daemon(ctx), sb, &s);
    Runtime__V1__LinuxPodSandboxStats *lx = rpc_alloc(ctx, sizeof(*lx));
    runtime__v1__linux_pod_sandbox_stats__init(lx);
    lx->cpu = pod_cpu(ctx, sb, &s);
    lx->memory = pod_memory(ctx, &s);
    lx->network = pod_network(ctx, &s);
    lx->process = rpc_alloc(ctx, sizeof(*lx->process));
    runtime__v1__process_usage__init(lx->process);
    lx->process->timestamp = s.now;
    lx->process->process_count = container_u64(ctx, s.cg.pids);
    if (s.cg.io_psi.valid) {
        lx->io = rpc_alloc(ctx, sizeof(*lx->io));
        runtime__v1__io_usage__init(lx->io);
        lx->io->timestamp = s.now;
        lx->io->psi = psi(ctx, &s.cg.io_psi);
    }
    lx->containers = rpc_alloc_array(ctx, s.n_ctrs ? s.n_ctrs : 1, Runtime__V1__ContainerStats *);
    for (size_t i = 0; i < s.n_ctrs; i++)
        if (container_running_pid(s.ctrs[i]) > 0)
            lx->containers[lx->n_containers++] = container_reply_stats(ctx, s.ctrs[i]);
    container_pod_sample_clear(&s);

    Runtime__V1__PodSandboxStats *st = rpc_alloc(ctx, sizeof(*st));
    runtime__v1__pod_sandbox_stats__init(st);
    st->attributes = pod_attributes(ctx, sb);
    st->linux = lx;
    return st;
}

RPC_HANDLER(handle_pod_sandbox_stats)
{
    const Runtime__V1__PodSandboxStatsRequest *r = (const Runtime__V1__PodSandboxStatsRequest *)req;
    if (!r->pod_sandbox_id[0])
        return cri_error_set(err, EINVAL, "pod_sandbox_id is empty");
    cleanup_sandbox sandbox_t *sb = NULL;
    if (sandbox_store_get(daemon_sandboxes(rpc_daemon(ctx)), r->pod_sandbox_id, &sb, err) < 0)
        return -1;
    Runtime__V1__PodSandboxStatsResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__pod_sandbox_stats_response__init(resp);
    resp->stats = container_reply_pod_stats(ctx, sb);
    *ret_resp = &resp->base;
    return 0;
}
