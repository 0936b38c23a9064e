/* ListMetricDescriptors, ListPodSandboxMetrics, StreamPodSandboxMetrics:
 * the cadvisor-named metrics kubelet serves on /metrics/cadvisor when it
 * takes pod and container stats from the runtime (its CRI metrics
 * collector asks for the descriptors once, then for the samples on every
 * scrape, and drops a sample whose name has no descriptor or whose label
 * values do not match the keys). One table holds every metric: its name,
 * help, type and label keys; a sample is only ever built from a row of it.
 *
 * Labels: "id", "name", "image" (the container's id, its CRI name and
 * image; a pod's own samples carry the pod id, "POD" and ""), plus "cpu"
 * ("total") on the cpu counter and "interface" on the network ones. Values
 * are CRI UInt64: the seconds counter is whole seconds. Per running
 * container: cpu, memory, OOM events, processes, writable layer usage (the
 * 2 s du cache), last seen. Per READY pod: the counters of each interface
 * of its netns. */
#include <string.h>

#include "common/cleanup.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/handlers.h"
#include "server/sandbox/sandbox.h"

enum metric_id {
    M_CPU_USAGE,
    M_MEM_USAGE,
    M_MEM_WORKING_SET,
    M_MEM_RSS,
    M_MEM_CACHE,
    M_MEM_LIMIT,
    M_OOM_EVENTS,
    M_PROCESSES,
    M_FS_USAGE,
    M_LAST_SEEN,
    M_NET_RX_BYTES,
    M_NET_RX_PACKETS,
    M_NET_RX_DROPPED,
    M_NET_RX_ERRORS,
    M_NET_TX_BYTES,
    M_NET_TX_PACKETS,
    M_NET_TX_DROPPED,
    M_NET_TX_ERRORS,
    M_COUNT,
};

#define COUNTER RUNTIME__V1__METRIC_TYPE__COUNTER
#define GAUGE RUNTIME__V1__METRIC_TYPE__GAUGE

static const struct metric_row {
    const char *name, *help;
    Runtime__V1__MetricType type;
    const char *extra_label; /* NULL, "cpu" or "interface" */
} metric_rows[M_COUNT] = {
    [M_CPU_USAGE] = {"container_cpu_usage_seconds_total",
                     "CPU time the container has used, in seconds.", COUNTER, "cpu"},
    [M_MEM_USAGE] = {"container_memory_usage_bytes",
                     "Memory the container's cgroup uses now, page cache included, in bytes.",
                     GAUGE, NULL},
    [M_MEM_WORKING_SET] = {"container_memory_working_set_bytes",
                           "Memory usage less inactive file pages, in bytes.", GAUGE, NULL},
    [M_MEM_RSS] = {"container_memory_rss", "Anonymous memory of the container, in bytes.", GAUGE,
                   NULL},
    [M_MEM_CACHE] = {"container_memory_cache", "Page cache charged to the container, in bytes.",
                     GAUGE, NULL},
    [M_MEM_LIMIT] = {"container_spec_memory_limit_bytes",
                     "Memory limit of the container's cgroup in bytes (0: none).", GAUGE, NULL},
    [M_OOM_EVENTS] = {"container_oom_events_total",
                      "Processes of the container the OOM killer has killed.", COUNTER, NULL},
    [M_PROCESSES] = {"container_processes", "Processes in the container's cgroup now.", GAUGE,
                     NULL},
    [M_FS_USAGE] = {"container_fs_usage_bytes",
                    "Bytes the container's writable layer takes on disk.", GAUGE, NULL},
    [M_LAST_SEEN] = {"container_last_seen",
                     "When the runtime last saw the container, in Unix seconds.", GAUGE, NULL},
    [M_NET_RX_BYTES] = {"container_network_receive_bytes_total", "Bytes received on the interface.",
                        COUNTER, "interface"},
    [M_NET_RX_PACKETS] = {"container_network_receive_packets_total",
                          "Packets received on the interface.", COUNTER, "interface"},
    [M_NET_RX_DROPPED] = {"container_network_receive_packets_dropped_total",
                          "Packets dropped while receiving on the interface.", COUNTER,
                          "interface"},
    [M_NET_RX_ERRORS] = {"container_network_receive_errors_total",
                         "Errors while receiving on the interface.", COUNTER, "interface"},
    [M_NET_TX_BYTES] = {"container_network_transmit_bytes_total", "Bytes sent on the interface.",
                        COUNTER, "interface"},
    [M_NET_TX_PACKETS] = {"container_network_transmit_packets_total",
                          "Packets sent on the interface.", COUNTER, "interface"},
    [M_NET_TX_DROPPED] = {"container_network_transmit_packets_dropped_total",
                          "Packets dropped while sending on the interface.", COUNTER, "interface"},
    [M_NET_TX_ERRORS] = {"container_network_transmit_errors_total",
                         "Errors while sending on the interface.", COUNTER, "interface"},
};

#define N_BASE_LABELS 3 /* id, name, image */

RPC_HANDLER(handle_list_metric_descriptors)
{
    static const char *base[N_BASE_LABELS] = {"id", "name", "image"};
    Runtime__V1__ListMetricDescriptorsResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__list_metric_descriptors_response__init(resp);
    resp->descriptors = rpc_alloc_array(ctx, M_COUNT, Runtime__V1__MetricDescriptor *);
    for (size_t i = 0; i < M_COUNT; i++) {
        const struct metric_row *row = &metric_rows[i];
        Runtime__V1__MetricDescriptor *d = rpc_alloc(ctx, sizeof(*d));
        runtime__v1__metric_descriptor__init(d);
        d->name = (char *)row->name;
        d->help = (char *)row->help;
        d->label_keys = rpc_alloc_array(ctx, N_BASE_LABELS + 1, char *);
        for (size_t k = 0; k < N_BASE_LABELS; k++)
            d->label_keys[d->n_label_keys++] = (char *)base[k];
        if (row->extra_label)
            d->label_keys[d->n_label_keys++] = (char *)row->extra_label;
        resp->descriptors[resp->n_descriptors++] = d;
    }
    *ret_resp = &resp->base;
    return 0;
}

/* Samples under construction: a growing arena array. */
typedef struct samples {
    Runtime__V1__Metric **v;
    size_t n, cap;
    int64_t now;
    const char *id, *name, *image; /* base label values */
} samples_t;

static void add(rpc_ctx_t *ctx, samples_t *s, enum metric_id m, uint64_t value, const char *extra)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        Runtime__V1__Metric **v = rpc_alloc_array(ctx, cap, Runtime__V1__Metric *);
        if (s->n)
            memcpy(v, s->v, s->n * sizeof(*v));
        s->v = v;
        s->cap = cap;
    }
    const struct metric_row *row = &metric_rows[m];
    Runtime__V1__Metric *x = rpc_alloc(ctx, sizeof(*x));
    runtime__v1__metric__init(x);
    x->name = (char *)row->name;
    x->timestamp = s->now;
    x->metric_type = row->type;
    x->label_values = rpc_alloc_array(ctx, N_BASE_LABELS + 1, char *);
    x->label_values[x->n_label_values++] = rpc_strdup(ctx, s->id);
    x->label_values[x->n_label_values++] = rpc_strdup(ctx, s->name);
    x->label_values[x->n_label_values++] = rpc_strdup(ctx, s->image);
    if (row->extra_label)
        x->label_values[x->n_label_values++] = rpc_strdup(ctx, extra);
    x->value = container_u64(ctx, value);
    s->v[s->n++] = x;
}

static Runtime__V1__ContainerMetrics *container_metrics(rpc_ctx_t *ctx, container_t *c, pid_t pid,
                                                        int64_t now)
{
    cgroup_stats_t cg;
    container_cgroup_stats(pid, &cg);
    int64_t at = 0;
    uint64_t bytes = 0, inodes = 0;
    container_layer_usage(rpc_daemon(ctx), c, now, &at, &bytes, &inodes);
    samples_t s = {.now = now,
                   .id = c->id,
                   .name = c->name ? c->name : "",
                   .image = c->image_name ? c->image_name : ""};
    add(ctx, &s, M_CPU_USAGE, cg.cpu_ns / 1000000000u, "total");
    add(ctx, &s, M_MEM_USAGE, cg.mem_usage, NULL);
    add(ctx, &s, M_MEM_WORKING_SET, cg.mem_working_set, NULL);
    add(ctx, &s, M_MEM_RSS, cg.mem_rss, NULL);
    add(ctx, &s, M_MEM_CACHE, cg.mem_cache, NULL);
    add(ctx, &s, M_MEM_LIMIT, cg.mem_limit, NULL);
    add(ctx, &s, M_OOM_EVENTS, cg.oom_events, NULL);
    add(ctx, &s, M_PROCESSES, cg.pids, NULL);
    add(ctx, &s, M_FS_USAGE, bytes, NULL);
    add(ctx, &s, M_LAST_SEEN, (uint64_t)(now / 1000000000), NULL);
    Runtime__V1__ContainerMetrics *cm = rpc_alloc(ctx, sizeof(*cm));
    runtime__v1__container_metrics__init(cm);
    cm->container_id = rpc_strdup(ctx, c->id);
    cm->metrics = s.v;
    cm->n_metrics = s.n;
    return cm;
}

static Runtime__V1__PodSandboxMetrics *pod_metrics(rpc_ctx_t *ctx, sandbox_t *sb)
{
    container_pod_sample_t ps;
    container_pod_sample(rpc_daemon(ctx), sb, &ps);
    samples_t s = {.now = ps.now, .id = sb->id, .name = "POD", .image = ""};
    for (size_t i = 0; i < ps.n_ifs; i++) {
        const netdev_iface_t *f = &ps.ifs[i];
        add(ctx, &s, M_NET_RX_BYTES, f->rx_bytes, f->name);
        add(ctx, &s, M_NET_RX_PACKETS, f->rx_packets, f->name);
        add(ctx, &s, M_NET_RX_DROPPED, f->rx_dropped, f->name);
        add(ctx, &s, M_NET_RX_ERRORS, f->rx_errors, f->name);
        add(ctx, &s, M_NET_TX_BYTES, f->tx_bytes, f->name);
        add(ctx, &s, M_NET_TX_PACKETS, f->tx_packets, f->name);
        add(ctx, &s, M_NET_TX_DROPPED, f->tx_dropped, f->name);
        add(ctx, &s, M_NET_TX_ERRORS, f->tx_errors, f->name);
    }
    Runtime__V1__PodSandboxMetrics *pm = rpc_alloc(ctx, sizeof(*pm));
    runtime__v1__pod_sandbox_metrics__init(pm);
    pm->pod_sandbox_id = rpc_strdup(ctx, sb->id);
    pm->metrics = s.v;
    pm->n_metrics = s.n;
    pm->container_metrics =
        rpc_alloc_array(ctx, ps.n_ctrs ? ps.n_ctrs : 1, Runtime__V1__ContainerMetrics *);
    for (size_t i = 0; i < ps.n_ctrs; i++) {
        pid_t pid = container_running_pid(ps.ctrs[i]);
        if (pid > 0)
            pm->container_metrics[pm->n_container_metrics++] =
                container_metrics(ctx, ps.ctrs[i], pid, ps.now);
    }
    container_pod_sample_clear(&ps);
    return pm;
}

RPC_HANDLER(handle_list_pod_sandbox_metrics)
{
    sandbox_t **all = NULL;
    size_t n = 0;
    sandbox_store_list(daemon_sandboxes(rpc_daemon(ctx)), &all, &n);
    Runtime__V1__ListPodSandboxMetricsResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__list_pod_sandbox_metrics_response__init(resp);
    resp->pod_metrics = rpc_alloc_array(ctx, n ? n : 1, Runtime__V1__PodSandboxMetrics *);
    for (size_t i = 0; i < n; i++)
        if (sandbox_get_state(all[i], NULL) == SANDBOX_STATE_READY)
            resp->pod_metrics[resp->n_pod_metrics++] = pod_metrics(ctx, all[i]);
    sandbox_list_free(all, n);
    *ret_resp = &resp->base;
    return 0;
}

RPC_STREAM_HANDLER(handle_stream_pod_sandbox_metrics)
{
    Runtime__V1__ListPodSandboxMetricsRequest list =
        RUNTIME__V1__LIST_POD_SANDBOX_METRICS_REQUEST__INIT;
    ProtobufCMessage *out = NULL;
    if (handle_list_pod_sandbox_metrics(ctx, &list.base, &out, err) < 0)
        return -1;
    const Runtime__V1__ListPodSandboxMetricsResponse *all =
        (const Runtime__V1__ListPodSandboxMetricsResponse *)out;
    rpc_stream_slices(ctx, &runtime__v1__stream_pod_sandbox_metrics_response__descriptor,
                      (void **)all->pod_metrics, all->n_pod_metrics, ret_msgs, ret_n);
    return 0;
}
