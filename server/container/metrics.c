/* ListMetricDescriptors, ListPodSandboxMetrics, StreamPodSandboxMetrics:
 * the cadvisor-named metrics kubelet serves on /metrics/cadvisor when it
 * takes pod and container stats from the runtime (its CRI metrics
 * collector asks for the descriptors once, then for the samples on every
 * scrape, and drops a sample whose name has no descriptor or whose label
 * values do not match the keys). One table holds every metric: its name,
 * help, type and label keys; a sample is only ever built from a row of it.
 *
 * Labels: "id", "name", "image" (the container's id, its CRI name and
 * image; a pod's own samples carry the pod id, "POD" and ""), plus the
 * row's extra labels as cadvisor has them ("cpu" on the cpu counter,
 * "interface" on the network ones, "device" on the fs ones, ...). Values
 * are CRI UInt64: the seconds counters are whole seconds. Per running
 * container: cpu, memory, OOM events, processes, writable layer usage (the
 * 2 s du cache), last seen, and the cadvisor extras (CFS throttling, memory
 * failures, threads, fds, spec limits, fs size, blkio; see README.md). Per
 * READY pod: the counters of each interface of its netns. */

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
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
    M_CPU_USER,
    M_CPU_SYSTEM,
    M_CFS_PERIODS,
    M_CFS_THROTTLED_PERIODS,
    M_CFS_THROTTLED_SECONDS,
    M_MEM_FAILCNT,
    M_MEM_FAILURES,
    M_MEM_KERNEL,
    M_MEM_MAPPED_FILE,
    M_MEM_MAX_USAGE,
    M_MEM_SWAP,
    M_THREADS,
    M_THREADS_MAX,
    M_FILE_DESCRIPTORS,
    M_SOCKETS,
    M_SPEC_CPU_PERIOD,
    M_SPEC_CPU_SHARES,
    M_SPEC_SWAP_LIMIT,
    M_START_TIME,
    M_FS_INODES_FREE,
    M_FS_INODES_TOTAL,
    M_FS_LIMIT,
    M_FS_READS_BYTES,
    M_FS_READS,
    M_FS_WRITES_BYTES,
    M_FS_WRITES,
    M_BLKIO_DEVICE_USAGE,
    M_COUNT,
};

#define COUNTER RUNTIME__V1__METRIC_TYPE__COUNTER
#define GAUGE RUNTIME__V1__METRIC_TYPE__GAUGE
#define N_BASE_LABELS 3  /* id, name, image */
#define N_EXTRA_LABELS 4 /* at most: device, major, minor, operation */
#define DEV      \
    {            \
        "device" \
    }

static const struct metric_row {
    const char *name, *help;
    Runtime__V1__MetricType type;
    const char *extra[N_EXTRA_LABELS + 1]; /* labels after the base ones, NULL-ended */
} metric_rows[M_COUNT] = {
    [M_CPU_USAGE] = {"container_cpu_usage_seconds_total",
                     "CPU time the container has used, in seconds.",
                     COUNTER,
                     {"cpu"}},
    [M_MEM_USAGE] = {"container_memory_usage_bytes",
                     "Memory the container's cgroup uses now, page cache included, in bytes.",
                     GAUGE,
                     {NULL}},
    [M_MEM_WORKING_SET] = {"container_memory_working_set_bytes",
                           "Memory usage less inactive file pages, in bytes.",
                           GAUGE,
                           {NULL}},
    [M_MEM_RSS] = {"container_memory_rss",
                   "Anonymous memory of the container, in bytes.",
                   GAUGE,
                   {NULL}},
    [M_MEM_CACHE] = {"container_memory_cache",
                     "Page cache charged to the container, in bytes.",
                     GAUGE,
                     {NULL}},
    [M_MEM_LIMIT] = {"container_spec_memory_limit_bytes",
                     "Memory limit of the container's cgroup in bytes (0: none).",
                     GAUGE,
                     {NULL}},
    [M_OOM_EVENTS] = {"container_oom_events_total",
                      "Processes of the container the OOM killer has killed.",
                      COUNTER,
                      {NULL}},
    [M_PROCESSES] = {"container_processes",
                     "Processes in the container's cgroup now.",
                     GAUGE,
                     {NULL}},
    [M_FS_USAGE] = {"container_fs_usage_bytes",
                    "Bytes the container's writable layer takes on disk.",
                    GAUGE,
                    {NULL}},
    [M_LAST_SEEN] = {"container_last_seen",
                     "When the runtime last saw the container, in Unix seconds.",
                     GAUGE,
                     {NULL}},
    [M_NET_RX_BYTES] = {"container_network_receive_bytes_total",
                        "Bytes received on the interface.",
                        COUNTER,
                        {"interface"}},
    [M_NET_RX_PACKETS] = {"container_network_receive_packets_total",
                          "Packets received on the interface.",
                          COUNTER,
                          {"interface"}},
    [M_NET_RX_DROPPED] = {"container_network_receive_packets_dropped_total",
                          "Packets dropped while receiving on the interface.",
                          COUNTER,
                          {"interface"}},
    [M_NET_RX_ERRORS] = {"container_network_receive_errors_total",
                         "Errors while receiving on the interface.",
                         COUNTER,
                         {"interface"}},
    [M_NET_TX_BYTES] = {"container_network_transmit_bytes_total",
                        "Bytes sent on the interface.",
                        COUNTER,
                        {"interface"}},
    [M_NET_TX_PACKETS] = {"container_network_transmit_packets_total",
                          "Packets sent on the interface.",
                          COUNTER,
                          {"interface"}},
    [M_NET_TX_DROPPED] = {"container_network_transmit_packets_dropped_total",
                          "Packets dropped while sending on the interface.",
                          COUNTER,
                          {"interface"}},
    [M_NET_TX_ERRORS] = {"container_network_transmit_errors_total",
                         "Errors while sending on the interface.",
                         COUNTER,
                         {"interface"}},
    [M_CPU_USER] = {"container_cpu_user_seconds_total",
                    "CPU time spent in user mode, in seconds.",
                    COUNTER,
                    {NULL}},
    [M_CPU_SYSTEM] = {"container_cpu_system_seconds_total",
                      "CPU time spent in kernel mode, in seconds.",
                      COUNTER,
                      {NULL}},
    [M_CFS_PERIODS] = {"container_cpu_cfs_periods_total",
                       "CFS enforcement periods that have elapsed.",
                       COUNTER,
                       {NULL}},
    [M_CFS_THROTTLED_PERIODS] = {"container_cpu_cfs_throttled_periods_total",
                                 "CFS periods in which the container was throttled.",
                                 COUNTER,
                                 {NULL}},
    [M_CFS_THROTTLED_SECONDS] = {"container_cpu_cfs_throttled_seconds_total",
                                 "Time the container was throttled, in seconds.",
                                 COUNTER,
                                 {NULL}},
    [M_MEM_FAILCNT] = {"container_memory_failcnt",
                       "Times the memory usage hit the limit.",
                       COUNTER,
                       {NULL}},
    [M_MEM_FAILURES] = {"container_memory_failures_total",
                        "Page faults of the container (failure_type pgfault or pgmajfault; "
                        "scope container or hierarchy).",
                        COUNTER,
                        {"failure_type", "scope"}},
    [M_MEM_KERNEL] = {"container_memory_kernel_usage",
                      "Kernel memory charged to the container, "
                      "in bytes.",
                      GAUGE,
                      {NULL}},
    [M_MEM_MAPPED_FILE] = {"container_memory_mapped_file",
                           "Memory-mapped file pages of the container, in bytes.",
                           GAUGE,
                           {NULL}},
    [M_MEM_MAX_USAGE] = {"container_memory_max_usage_bytes",
                         "Highest memory usage recorded, in bytes.",
                         GAUGE,
                         {NULL}},
    [M_MEM_SWAP] = {"container_memory_swap", "Swap the container uses, in bytes.", GAUGE, {NULL}},
    [M_THREADS] = {"container_threads",
                   "Tasks (threads) in the container's cgroup now.",
                   GAUGE,
                   {NULL}},
    [M_THREADS_MAX] = {"container_threads_max",
                       "Task limit of the container's cgroup (0: none).",
                       GAUGE,
                       {NULL}},
    [M_FILE_DESCRIPTORS] = {"container_file_descriptors",
                            "Open file descriptors of the container's processes.",
                            GAUGE,
                            {NULL}},
    [M_SOCKETS] = {"container_sockets",
                   "Open sockets of the container's processes.",
                   GAUGE,
                   {NULL}},
    [M_SPEC_CPU_PERIOD] = {"container_spec_cpu_period",
                           "CFS period of the container's cgroup, in microseconds.",
                           GAUGE,
                           {NULL}},
    [M_SPEC_CPU_SHARES] = {"container_spec_cpu_shares",
                           "CPU shares of the container's cgroup.",
                           GAUGE,
                           {NULL}},
    [M_SPEC_SWAP_LIMIT] = {"container_spec_memory_swap_limit_bytes",
                           "Memory plus swap limit of the container's cgroup in bytes (0: none).",
                           GAUGE,
                           {NULL}},
    [M_START_TIME] = {"container_start_time_seconds",
                      "When the container started, in Unix seconds.",
                      GAUGE,
                      {NULL}},
    [M_FS_INODES_FREE] = {"container_fs_inodes_free",
                          "Free inodes of the filesystem of the container's writable layer.", GAUGE,
                          DEV},
    [M_FS_INODES_TOTAL] = {"container_fs_inodes_total",
                           "Inodes of the filesystem of the container's writable layer.", GAUGE,
                           DEV},
    [M_FS_LIMIT] = {"container_fs_limit_bytes",
                    "Size of the filesystem of the container's writable layer, in bytes.", GAUGE,
                    DEV},
    [M_FS_READS_BYTES] = {"container_fs_reads_bytes_total", "Bytes read from the device.", COUNTER,
                          DEV},
    [M_FS_READS] = {"container_fs_reads_total", "Reads completed on the device.", COUNTER, DEV},
    [M_FS_WRITES_BYTES] = {"container_fs_writes_bytes_total", "Bytes written to the device.",
                           COUNTER, DEV},
    [M_FS_WRITES] = {"container_fs_writes_total", "Writes completed on the device.", COUNTER, DEV},
    [M_BLKIO_DEVICE_USAGE] = {"container_blkio_device_usage_total",
                              "Bytes transferred to or from the device, by operation.",
                              COUNTER,
                              {"device", "major", "minor", "operation"}},
};

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
        d->label_keys = rpc_alloc_array(ctx, N_BASE_LABELS + N_EXTRA_LABELS, char *);
        for (size_t k = 0; k < N_BASE_LABELS; k++)
            d->label_keys[d->n_label_keys++] = (char *)base[k];
        for (size_t k = 0; row->extra[k]; k++)
            d->label_keys[d->n_label_keys++] = (char *)row->extra[k];
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

/* A sample of row m; extra holds one value per extra label of the row. */
static void add_n(rpc_ctx_t *ctx, samples_t *s, enum metric_id m, uint64_t value,
                  const char *const *extra)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        Runtime__V1__Metric **v = rpc_alloc_array(ctx, cap, Runtime__V1__Metric *);
        for (size_t i = 0; i < s->n; i++)
            v[i] = s->v[i];
        s->v = v;
        s->cap = cap;
    }
    const struct metric_row *row = &metric_rows[m];
    Runtime__V1__Metric *x = rpc_alloc(ctx, sizeof(*x));
    runtime__v1__metric__init(x);
    x->name = (char *)row->name;
    x->timestamp = s->now;
    x->metric_type = row->type;
    x->label_values = rpc_alloc_array(ctx, N_BASE_LABELS + N_EXTRA_LABELS, char *);
    x->label_values[x->n_label_values++] = rpc_strdup(ctx, s->id);
    x->label_values[x->n_label_values++] = rpc_strdup(ctx, s->name);
    x->label_values[x->n_label_values++] = rpc_strdup(ctx, s->image);
    for (size_t k = 0; row->extra[k]; k++)
        x->label_values[x->n_label_values++] = rpc_strdup(ctx, extra[k]);
    x->value = container_u64(ctx, value);
    s->v[s->n++] = x;
}

/* A sample of a row with no extra label or with one. */
static void add(rpc_ctx_t *ctx, samples_t *s, enum metric_id m, uint64_t value, const char *extra)
{
    const char *one[1] = {extra};
    add_n(ctx, s, m, value, one);
}

/* "/dev/sda" for 8:0 (from /sys/dev/block), "M:m" when no block device. */
static char *dev_name(rpc_ctx_t *ctx, uint32_t major, uint32_t minor)
{
    char link[64], target[PATH_MAX];
    (void)snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major, minor);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0)
        return rpc_printf(ctx, "%u:%u", major, minor);
    target[n] = '\0';
    const char *base = strrchr(target, '/');
    return rpc_printf(ctx, "/dev/%s", base ? base + 1 : target);
}

static void add_blkio(rpc_ctx_t *ctx, samples_t *s, const cgroup_extra_t *x)
{
    for (size_t i = 0; i < x->n_devs; i++) {
        const cgroup_blkio_dev_t *d = &x->devs[i];
        const char *dev = dev_name(ctx, d->major, d->minor);
        add(ctx, s, M_FS_READS_BYTES, d->read_bytes, dev);
        add(ctx, s, M_FS_READS, d->reads, dev);
        add(ctx, s, M_FS_WRITES_BYTES, d->write_bytes, dev);
        add(ctx, s, M_FS_WRITES, d->writes, dev);
        const char *ma = rpc_printf(ctx, "%u", d->major), *mi = rpc_printf(ctx, "%u", d->minor);
        const char *rd[4] = {dev, ma, mi, "Read"}, *wr[4] = {dev, ma, mi, "Write"};
        add_n(ctx, s, M_BLKIO_DEVICE_USAGE, d->read_bytes, rd);
        add_n(ctx, s, M_BLKIO_DEVICE_USAGE, d->write_bytes, wr);
    }
}

/* Size and inodes of the filesystem holding the writable layer. */
static void add_fs(rpc_ctx_t *ctx, samples_t *s, container_t *c)
{
    cleanup_free char *dir = container_dir(rpc_daemon(ctx), c->id);
    cleanup_free char *upper = xasprintf("%s/upper", dir);
    struct statvfs vfs;
    struct stat st;
    if (statvfs(upper, &vfs) < 0 || stat(upper, &st) < 0)
        return;
    const char *dev = dev_name(ctx, major(st.st_dev), minor(st.st_dev));
    add(ctx, s, M_FS_INODES_FREE, vfs.f_ffree, dev);
    add(ctx, s, M_FS_INODES_TOTAL, vfs.f_files, dev);
    add(ctx, s, M_FS_LIMIT, (uint64_t)vfs.f_blocks * vfs.f_frsize, dev);
}

static void add_extras(rpc_ctx_t *ctx, samples_t *s, container_t *c, pid_t pid)
{
    cgroup_extra_t x;
    uint64_t fds = 0, sockets = 0;
    container_cgroup_extra(pid, &x, &fds, &sockets);
    add(ctx, s, M_CPU_USER, x.cpu_user_ns / 1000000000u, NULL);
    add(ctx, s, M_CPU_SYSTEM, x.cpu_system_ns / 1000000000u, NULL);
    add(ctx, s, M_CFS_PERIODS, x.cfs_periods, NULL);
    add(ctx, s, M_CFS_THROTTLED_PERIODS, x.cfs_throttled_periods, NULL);
    add(ctx, s, M_CFS_THROTTLED_SECONDS, x.cfs_throttled_ns / 1000000000u, NULL);
    add(ctx, s, M_MEM_FAILCNT, x.mem_failcnt, NULL);
    const struct {
        const char *type, *scope;
        uint64_t v;
    } faults[] = {{"pgfault", "container", x.pgfault},
                  {"pgmajfault", "container", x.pgmajfault},
                  {"pgfault", "hierarchy", x.pgfault_hier},
                  {"pgmajfault", "hierarchy", x.pgmajfault_hier}};
    for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
        const char *lv[2] = {faults[i].type, faults[i].scope};
        add_n(ctx, s, M_MEM_FAILURES, faults[i].v, lv);
    }
    add(ctx, s, M_MEM_KERNEL, x.mem_kernel, NULL);
    add(ctx, s, M_MEM_MAPPED_FILE, x.mem_mapped_file, NULL);
    add(ctx, s, M_MEM_MAX_USAGE, x.mem_max_usage, NULL);
    add(ctx, s, M_MEM_SWAP, x.mem_swap, NULL);
    add(ctx, s, M_THREADS, x.threads, NULL);
    add(ctx, s, M_THREADS_MAX, x.threads_max, NULL);
    add(ctx, s, M_FILE_DESCRIPTORS, fds, NULL);
    add(ctx, s, M_SOCKETS, sockets, NULL);
    add(ctx, s, M_SPEC_CPU_PERIOD, x.cpu_period, NULL);
    add(ctx, s, M_SPEC_CPU_SHARES, x.cpu_shares, NULL);
    add(ctx, s, M_SPEC_SWAP_LIMIT, x.swap_limit, NULL);
    pthread_mutex_lock(&c->lock);
    int64_t started = c->started_at;
    pthread_mutex_unlock(&c->lock);
    add(ctx, s, M_START_TIME, started > 0 ? (uint64_t)(started / 1000000000) : 0, NULL);
    add_fs(ctx, s, c);
    add_blkio(ctx, s, &x);
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
    add_extras(ctx, &s, c, pid);
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
