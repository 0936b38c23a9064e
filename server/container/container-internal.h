/* Private helpers of server/container/: only its files (and unit tests)
 * include this. */
#ifndef CRICKET_SERVER_CONTAINER_CONTAINER_INTERNAL_H
#define CRICKET_SERVER_CONTAINER_CONTAINER_INTERNAL_H

#include <stdbool.h>

#include "api/cri/v1/api.pb-c.h"
#include "common/error.h"
#include "server/cgroup.h"
#include "server/netdev.h"
#include "oci/oci.h"
#include "server/container/container.h"
#include "server/rpc.h"

struct daemon;
struct sandbox;
struct image;

/* How long Stop and Remove wait for the exit file after SIGKILL. */
#define CONTAINER_KILL_WAIT_MS 10000

/* Writes the OCI spec of c into bundle (config.json) and keeps its text in
 * c->spec_json; fills c's user, mounts, stop signal and resources from the
 * request. rootfs is the mounted root filesystem (for user lookup). EINVAL
 * naming the field for bad input. */
int container_spec_write(struct daemon *d, container_t *c, struct sandbox *sb,
                         const Runtime__V1__CreateContainerRequest *r, struct image *img,
                         const char *rootfs, const char *bundle, cri_error_t *err);

/* Checks a CreateContainer request (validate.c): names, sizes of every
 * repeated field, log_path, mounts, privileged. Pure: no daemon, no I/O.
 * EINVAL naming the field. */
int container_validate_create(const Runtime__V1__CreateContainerRequest *r, cri_error_t *err);

/* Checks of an ExecSync and an UpdateContainerResources request before any
 * lookup (exec_sync.c, update.c): pure, also run by test/fuzz/. EINVAL
 * naming the field. */
int container_validate_exec_sync(const Runtime__V1__ExecSyncRequest *r, cri_error_t *err);
int container_validate_update(const Runtime__V1__UpdateContainerResourcesRequest *r,
                              cri_error_t *err);

/* Mounts one container may have (each becomes a mount in its spec). */
#define CONTAINER_MAX_MOUNTS 256

/* ---- image volumes (image_volume.c) ---- */

/* Checks mount i, an image volume: readonly must be set, image_sub_path
 * relative and clean. EINVAL naming the field. */
int container_validate_image_volume(const Runtime__V1__Mount *m, size_t i, cri_error_t *err);

/* Mounts the image of m (already in the store: ENOENT naming
 * mounts[i].image.image otherwise; kubelet pulls it first) read-only under
 * c's bundle dir (ivol/<i>), resolves image_sub_path inside it, appends
 * the entry to c->mounts (host_path "") and the
 * image's layers to c->chain_ids (so GC keeps them while c exists, even
 * after RemoveImage). *ret_source (malloc'd) is what to bind. ENOENT
 * naming mounts[i].image_sub_path when the sub path is not in the image. */
int container_image_volume_mount(struct daemon *d, container_t *c, const Runtime__V1__Mount *m,
                                 size_t i, char **ret_source, cri_error_t *err);

/* Unmounts and removes every image volume of container id (none is fine). */
int container_image_volumes_unmount(struct daemon *d, const char *id, cri_error_t *err);

/* Checks the CRI mounts of a request (paths absolute, propagation known). */
int container_validate_mounts(const Runtime__V1__ContainerConfig *cfg, cri_error_t *err);

/* stop_signal.c: what the kernel does with signo sent to pid now: delivered
 * (a handler, SIG_IGN, or not a pid namespace's init), dropped (the init of
 * its pid namespace with SIG_DFL), or unknown (no /proc entry). */
typedef enum {
    CONTAINER_SIG_UNKNOWN,
    CONTAINER_SIG_DELIVERED,
    CONTAINER_SIG_DROPPED,
} container_sig_fate_t;
container_sig_fate_t container_sig_fate(pid_t pid, int signo);
/* The same from a /proc/<pid>/status text (unit tests). */
container_sig_fate_t container_sig_fate_parse(const char *status, int signo);

/* container_set_exited() plus the STOPPED event when c was not EXITED. */
void container_mark_exited(struct daemon *d, container_t *c, int64_t finished_at, int exit_code,
                           const char *reason, const char *message);
/* cdi.c: what CDI devices add to a container (strings owned by strs). */
typedef struct container_cdi {
    container_env_kv_t *env; /* appended after the config's envs: a CDI value wins */
    size_t n_env;
    oci_device_t *devices;
    size_t n_devices;
    oci_mount_t *mounts;
    size_t n_mounts;
    char **applied_specs; /* spec files whose top-level edits are in (once each) */
    char **strs;
    size_t n_strs;
} container_cdi_t;

/* Resolves CDI_devices through the spec files of dirs (see cdi.c). EINVAL
 * or ENOENT naming CDI_devices[i]; *ret untouched on failure. */
int container_cdi_resolve(char *const *dirs, Runtime__V1__CDIDevice *const *devs, size_t n,
                          container_cdi_t *ret, cri_error_t *err);
void container_cdi_free(container_cdi_t *c);

/* apparmor.c: whether the host has AppArmor enabled. */
bool container_apparmor_enabled(void);

/* The AppArmor profile for the OCI spec from `apparmor` (or, when absent,
 * the deprecated `apparmor_profile`): *ret_profile NULL = none. EINVAL
 * naming the field for a malformed value, and for a Localhost profile on a
 * host without AppArmor (host_enabled false). */
int container_apparmor(const Runtime__V1__LinuxContainerSecurityContext *sc, bool host_enabled,
                       const char **ret_profile, cri_error_t *err);

/* Waits up to timeout_ms for c's exit file and records the exit. True when
 * c has exited. */
bool container_wait_exit(struct daemon *d, container_t *c, int timeout_ms);

/* Writes c's record (its current state) under c->record_lock, unless
 * Remove deleted it. Every write after create goes through here. */
int container_record_write(struct daemon *d, container_t *c, cri_error_t *err);

/* container_record_write() that logs a failure: for the exit watcher and
 * the readers of exit files, which record an exit as they see it. */
void container_persist_exit(struct daemon *d, container_t *c);

/* Reads c's exit file into its state when there is one. True when found. */
bool container_check_exit_file(struct daemon *d, container_t *c);

/* Removes what create may have left for c: the runtime's container
 * (killed, and its exit file awaited, when it exists), rootfs mount, dirs,
 * bundle, exit file, monitor dir. Every step is tried; the first failure
 * is returned, and the caller then keeps c's record (a later Remove or
 * the next start retries). */
int container_cleanup_host(struct daemon *d, container_t *c, cri_error_t *err);

/* Removes c's dir (upper, work, rootfs mount point), bundle, monitor dir
 * and exit file: each is tried, and the first that cannot go (EBUSY when
 * a mount is left inside) is the error; the caller then keeps c's record.
 * container_cleanup_host() uses it best effort. */
int container_remove_dirs(struct daemon *d, container_t *c, cri_error_t *err);

/* Resources from CRI into c->resources (under c->lock) and into *ret for
 * the OCI runtime (borrowing strings from r). */
void container_resources_from_cri(const Runtime__V1__LinuxContainerResources *r,
                                  container_resources_t *ret);

/* Reply pieces shared by ListContainers and ContainerStatus (arena). */
Runtime__V1__ContainerMetadata *container_reply_metadata(rpc_ctx_t *ctx, const container_t *c);
Runtime__V1__ImageSpec *container_reply_image(rpc_ctx_t *ctx, const container_t *c);

/* The cgroup figures of a running container (cgroup_stats.c): pid's cgroup
 * (0 or a gone pid: all zero, valid false). */
void container_cgroup_stats(pid_t pid, cgroup_stats_t *ret);
/* The cadvisor extras of pid's cgroup, and the open fds and sockets of the
 * cgroup's processes (at most 1024 of them walked). Zeros when pid is gone. */
void container_cgroup_extra(pid_t pid, cgroup_extra_t *ret, uint64_t *ret_fds,
                            uint64_t *ret_sockets);

/* c's writable layer usage, walked at most every 2 s (stats.c): the time
 * of the walk, bytes and inodes. */
void container_layer_usage(struct daemon *d, container_t *c, int64_t now, int64_t *ret_at,
                           uint64_t *ret_bytes, uint64_t *ret_inodes);

/* An arena UInt64Value. */
Runtime__V1__UInt64Value *container_u64(rpc_ctx_t *ctx, uint64_t v);

/* usage_nano_cores from two samples of a cpu counter (ns) taken at prev_at
 * and now (Unix ns); NULL without an earlier sample or when the counter
 * went back. */
Runtime__V1__UInt64Value *container_nano_cores(rpc_ctx_t *ctx, uint64_t prev_ns, int64_t prev_at,
                                               uint64_t cpu_ns, int64_t now);

/* The CRI stats of c (stats.c): attributes, cgroup cpu/memory, writable layer. */
Runtime__V1__ContainerStats *container_reply_stats(rpc_ctx_t *ctx, container_t *c);

/* Whether c passes a ListContainers filter (NULL passes everything). */
bool container_filter_matches(container_t *c, const Runtime__V1__ContainerFilter *f);

/* A running container's pid, else 0 (pod_sample.c). */
pid_t container_running_pid(container_t *c);

/* One look at a pod (pod_sample.c): its cgroup figures when READY (its
 * cgroup_parent, or the sum of its infra's and running containers' cgroups
 * when it has none; a stopped pod's are zero), the interfaces of its netns (READY pods with a netns
 * of their own), and its containers (one reference each). */
typedef struct container_pod_sample {
    bool ready;
    cgroup_stats_t cg;
    int64_t now; /* Unix ns */
    bool has_net;
    netdev_iface_t *ifs;
    size_t n_ifs;
    container_t **ctrs;
    size_t n_ctrs;
} container_pod_sample_t;

void container_pod_sample(struct daemon *d, struct sandbox *sb, container_pod_sample_t *ret);
void container_pod_sample_clear(container_pod_sample_t *s);

/* The PodSandboxStats of sb (pod_stats.c): attributes, cpu (usage_nano_cores
 * from the previous call's sample), memory, network, process count, io PSI
 * and every running container's ContainerStats. */
Runtime__V1__PodSandboxStats *container_reply_pod_stats(rpc_ctx_t *ctx, struct sandbox *sb);

/* Checks a PodSandboxStatsFilter (NULL passes): id a hex prefix of at most
 * 64, label keys not empty. EINVAL naming the field. */
int container_validate_pod_stats_filter(const Runtime__V1__PodSandboxStatsFilter *f,
                                        cri_error_t *err);
/* Whether sb passes f (NULL passes everything): id prefix and labels. */
bool container_pod_stats_filter_matches(struct sandbox *sb,
                                        const Runtime__V1__PodSandboxStatsFilter *f);

#endif
