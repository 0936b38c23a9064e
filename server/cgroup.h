/* Reading and sizing cgroups: the figures ContainerStats, PodSandboxStats
 * and the pod metrics report, and the limits UpdatePodSandboxResources
 * writes. Pure file work under a cgroup root (/sys/fs/cgroup, or a fixture
 * tree in unit tests); no daemon, no CRI message.
 *
 * A cgroup is named by its path relative to the hierarchy ("/kubepods/pod1"
 * or "/kubepods.slice/kubepods-pod1.slice"). On cgroup v1 each controller
 * has its own hierarchy under root (root/cpuacct/<rel>, root/memory/<rel>,
 * ...); on v2 every file sits in root/<rel>. */
#ifndef CRICKET_SERVER_CGROUP_H
#define CRICKET_SERVER_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

/* One line of a pressure file (cpu.pressure, memory.pressure, io.pressure). */
typedef struct cgroup_psi_line {
    bool valid;
    uint64_t total; /* microseconds stalled */
    double avg10, avg60, avg300;
} cgroup_psi_line_t;

typedef struct cgroup_psi {
    bool valid; /* the file exists and parses */
    cgroup_psi_line_t some, full;
} cgroup_psi_t;

typedef struct cgroup_stats {
    bool valid; /* the memory or cpu files were found */
    uint64_t cpu_ns;
    uint64_t mem_usage, mem_working_set, mem_rss, mem_cache;
    uint64_t mem_limit; /* 0 = no limit */
    uint64_t page_faults, major_page_faults;
    uint64_t oom_events;                   /* kills by the OOM killer in this cgroup */
    uint64_t pids;                         /* processes (pids.current) */
    cgroup_psi_t cpu_psi, mem_psi, io_psi; /* v2 only */
} cgroup_stats_t;

/* Reads the cgroup `rel` under root (v2 layout when v2). Missing files read
 * as zero; valid is false when neither cpu nor memory files exist. */
void cgroup_read_stats(const char *root, const char *rel, bool v2, cgroup_stats_t *ret);

/* One block device's I/O counters (v1 blkio.throttle.io_service_bytes and
 * io_serviced, v2 io.stat). */
typedef struct cgroup_blkio_dev {
    uint32_t major, minor;
    uint64_t read_bytes, write_bytes, reads, writes;
} cgroup_blkio_dev_t;

#define CGROUP_BLKIO_MAX 16

/* The figures cadvisor reports beyond cgroup_stats_t, for the CRI metrics.
 * Limits of "none" read as 0. */
typedef struct cgroup_extra {
    uint64_t cfs_periods, cfs_throttled_periods, cfs_throttled_ns;
    uint64_t cpu_user_ns, cpu_system_ns; /* v1: cpuacct.stat ticks as ns */
    uint64_t mem_failcnt;                /* v1 memory.failcnt; v2 memory.events max */
    uint64_t mem_mapped_file, mem_swap, mem_kernel, mem_max_usage;
    /* page faults of the cgroup alone and of its whole subtree */
    uint64_t pgfault, pgmajfault, pgfault_hier, pgmajfault_hier;
    uint64_t threads, threads_max; /* pids.current, pids.max */
    uint64_t cpu_period, cpu_shares, swap_limit;
    size_t n_devs;
    cgroup_blkio_dev_t devs[CGROUP_BLKIO_MAX];
} cgroup_extra_t;

void cgroup_read_extra(const char *root, const char *rel, bool v2, cgroup_extra_t *ret);

/* Adds b's counters and gauges into a (cpu, memory, page faults, OOM
 * events, pids; not the limit nor PSI). For pods without a cgroup of their
 * own, summed over their containers. */
void cgroup_stats_add(cgroup_stats_t *a, const cgroup_stats_t *b);

/* Parses one pressure file's text ("some avg10=0.00 avg60=... total=N",
 * then "full ..."). False when neither line parses. */
bool cgroup_psi_parse(const char *text, cgroup_psi_t *ret);

/* The relative cgroup path of pid for v1 `controller` ("memory"), or its
 * unified (v2) path when no v1 hierarchy has that controller; *ret_v2 says
 * which. From /proc/<pid>/cgroup. malloc'd; NULL when pid is gone. */
char *cgroup_of_pid(pid_t pid, const char *controller, bool *ret_v2);

/* The relative path of a pod's cgroup_parent: cgroupfs parents as given
 * ("/kubepods/burstable/pod1", a missing leading slash added, trailing
 * slashes dropped); systemd slices expanded the way systemd nests them
 * ("kubepods-burstable-pod1.slice" -> "/kubepods.slice/
 * kubepods-burstable.slice/kubepods-burstable-pod1.slice"). EINVAL naming
 * the parent for an empty one, a ".." component, or (systemd) a name that
 * is not a slice. malloc'd. */
int cgroup_parent_path(const char *parent, bool systemd, char **ret, cri_error_t *err);

/* Limits for a cgroup as CRI carries them; 0 = leave as is. */
typedef struct cgroup_limits {
    int64_t cpu_period, cpu_quota; /* microseconds; quota -1 = unlimited */
    int64_t cpu_shares;
    int64_t memory_limit; /* bytes */
} cgroup_limits_t;

/* Writes l into the cgroup `rel` under root: v1 cpu.cfs_period_us,
 * cpu.cfs_quota_us, cpu.shares, memory.limit_in_bytes; v2 cpu.max,
 * cpu.weight (from shares, as runc converts them), memory.max. ENOENT
 * naming the directory when the cgroup does not exist; the kernel's errno
 * naming the file otherwise (EBUSY: memory limit below the usage on v1). */
int cgroup_set_limits(const char *root, const char *rel, bool v2, const cgroup_limits_t *l,
                      cri_error_t *err);

/* The v2 cpu.weight for CRI cpu shares (2..262144 -> 1..10000). */
uint64_t cgroup_shares_to_weight(uint64_t shares);

#endif
