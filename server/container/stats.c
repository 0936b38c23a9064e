/* ContainerStats: cpu and memory from the container's cgroup, and its
 * writable layer's usage (walked at most every 2 s). Stats of a container that does not run carry
 * timestamps and zero usage. Unknown id → NOT_FOUND. */
#include <errno.h>
#include <pthread.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/handlers.h"

#define USAGE_CACHE_NS (2 * 1000000000LL) /* writable layer walks: one per 2 s */

Runtime__V1__UInt64Value *container_u64(rpc_ctx_t *ctx, uint64_t v)
{
    Runtime__V1__UInt64Value *p = rpc_alloc(ctx, sizeof(*p));
    runtime__v1__uint64_value__init(p);
    p->value = v;
    return p;
}

static Runtime__V1__ContainerAttributes *attributes(rpc_ctx_t *ctx, container_t *c)
{
    Runtime__V1__ContainerAttributes *a = rpc_alloc(ctx, sizeof(*a));
    runtime__v1__container_attributes__init(a);
    a->id = rpc_strdup(ctx, c->id);
    a->metadata = container_reply_metadata(ctx, c);
    a->labels = (Runtime__V1__ContainerAttributes__LabelsEntry **)rpc_map_entries(
        ctx, &runtime__v1__container_attributes__labels_entry__descriptor, c->labels, &a->n_labels);
    a->annotations = (Runtime__V1__ContainerAttributes__AnnotationsEntry **)rpc_map_entries(
        ctx, &runtime__v1__container_attributes__annotations_entry__descriptor, c->annotations,
        &a->n_annotations);
    return a;
}

/* The writable layer's usage, walked at most once per USAGE_CACHE_NS per
 * container: kubelet asks every few seconds (and ListContainerStats for
 * every container), and a big upper dir takes long to walk. The reply's
 * timestamp is the time of the walk. */
void container_layer_usage(daemon_t *d, container_t *c, int64_t now, int64_t *ret_at,
                           uint64_t *ret_bytes, uint64_t *ret_inodes)
{
    pthread_mutex_lock(&c->lock);
    bool fresh = c->usage_at > 0 && now - c->usage_at < USAGE_CACHE_NS && now >= c->usage_at;
    *ret_at = c->usage_at;
    *ret_bytes = c->usage_bytes;
    *ret_inodes = c->usage_inodes;
    pthread_mutex_unlock(&c->lock);
    if (fresh)
        return;
    cleanup_free char *dir = container_dir(d, c->id);
    cleanup_free char *upper = xasprintf("%s/upper", dir);
    uint64_t bytes = 0, inodes = 0;
    cri_error_t ignored = CRI_ERROR_INIT;
    dir_usage(upper, &bytes, &inodes, &ignored); /* missing or unreadable: zero */
    now = now_unix_ns(); /* a long walk still counts as fresh for the full period */
    pthread_mutex_lock(&c->lock);
    c->usage_at = now;
    c->usage_bytes = bytes;
    c->usage_inodes = inodes;
    pthread_mutex_unlock(&c->lock);
    *ret_at = now;
    *ret_bytes = bytes;
    *ret_inodes = inodes;
}

static Runtime__V1__FilesystemUsage *writable_layer(rpc_ctx_t *ctx, daemon_t *d, container_t *c,
                                                    int64_t now)
{
    int64_t at = 0;
    uint64_t bytes = 0, inodes = 0;
    container_layer_usage(d, c, now, &at, &bytes, &inodes);
    Runtime__V1__FilesystemUsage *u = rpc_alloc(ctx, sizeof(*u));
    runtime__v1__filesystem_usage__init(u);
    u->timestamp = at;
    u->fs_id = rpc_alloc(ctx, sizeof(*u->fs_id));
    runtime__v1__filesystem_identifier__init(u->fs_id);
    u->fs_id->mountpoint = rpc_strdup(ctx, daemon_root(d));
    u->used_bytes = container_u64(ctx, bytes);
    u->inodes_used = container_u64(ctx, inodes);
    return u;
}

Runtime__V1__UInt64Value *container_nano_cores(rpc_ctx_t *ctx, uint64_t prev_ns, int64_t prev_at,
                                               uint64_t cpu_ns, int64_t now)
{
    if (prev_at <= 0 || now <= prev_at || cpu_ns < prev_ns)
        return NULL; /* no earlier sample, or the counter went back (new cgroup) */
    long double rate = (long double)(cpu_ns - prev_ns) * 1e9L / (long double)(now - prev_at);
    return container_u64(ctx, (uint64_t)rate);
}

/* Swaps c's last cpu sample for (cpu_ns, now): the previous one is returned. */
static void cpu_sample(container_t *c, uint64_t cpu_ns, int64_t now, uint64_t *ret_prev_ns,
                       int64_t *ret_prev_at)
{
    pthread_mutex_lock(&c->lock);
    *ret_prev_ns = c->cpu_sample_ns;
    *ret_prev_at = c->cpu_sample_at;
    c->cpu_sample_ns = cpu_ns;
    c->cpu_sample_at = now;
    pthread_mutex_unlock(&c->lock);
}

Runtime__V1__ContainerStats *container_reply_stats(rpc_ctx_t *ctx, container_t *c)
{
    daemon_t *d = rpc_daemon(ctx);
    container_status_t st;
    container_get_status(c, &st);
    cgroup_stats_t cg;
    container_cgroup_stats(st.state == CONTAINER_STATE_RUNNING ? st.pid : 0, &cg);
    container_status_clear(&st);
    int64_t now = now_unix_ns();

    Runtime__V1__ContainerStats *s = rpc_alloc(ctx, sizeof(*s));
    runtime__v1__container_stats__init(s);
    s->attributes = attributes(ctx, c);
    s->cpu = rpc_alloc(ctx, sizeof(*s->cpu));
    runtime__v1__cpu_usage__init(s->cpu);
    s->cpu->timestamp = now;
    s->cpu->usage_core_nano_seconds = container_u64(ctx, cg.cpu_ns);
    if (cg.valid) {
        uint64_t prev_ns = 0;
        int64_t prev_at = 0;
        cpu_sample(c, cg.cpu_ns, now, &prev_ns, &prev_at);
        s->cpu->usage_nano_cores = container_nano_cores(ctx, prev_ns, prev_at, cg.cpu_ns, now);
    }
    s->memory = rpc_alloc(ctx, sizeof(*s->memory));
    runtime__v1__memory_usage__init(s->memory);
    s->memory->timestamp = now;
    s->memory->working_set_bytes = container_u64(ctx, cg.mem_working_set);
    s->memory->usage_bytes = container_u64(ctx, cg.mem_usage);
    s->memory->rss_bytes = container_u64(ctx, cg.mem_rss);
    s->memory->page_faults = container_u64(ctx, cg.page_faults);
    s->memory->major_page_faults = container_u64(ctx, cg.major_page_faults);
    if (cg.mem_limit)
        s->memory->available_bytes = container_u64(
            ctx, cg.mem_limit > cg.mem_working_set ? cg.mem_limit - cg.mem_working_set : 0);
    s->writable_layer = writable_layer(ctx, d, c, now);
    return s;
}

RPC_HANDLER(handle_container_stats)
{
    const Runtime__V1__ContainerStatsRequest *r = (const Runtime__V1__ContainerStatsRequest *)req;
    if (!r->container_id[0])
        return cri_error_set(err, EINVAL, "container_id is empty");
    cleanup_container container_t *c = NULL;
    if (container_store_get(daemon_containers(rpc_daemon(ctx)), r->container_id, &c, err) < 0)
        return -1;
    Runtime__V1__ContainerStatsResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__container_stats_response__init(resp);
    resp->stats = container_reply_stats(ctx, c);
    *ret_resp = &resp->base;
    return 0;
}
