/* Private helpers of server/sandbox/: only the files of this folder (and
 * its unit tests) include this. */
#ifndef CRICKET_SERVER_SANDBOX_SANDBOX_INTERNAL_H
#define CRICKET_SERVER_SANDBOX_SANDBOX_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "api/cri/v1/api.pb-c.h"
#include "server/host_ops.h"
#include "server/rpc.h"
#include "common/error.h"
#include "server/sandbox/sandbox.h"

struct daemon;
struct cni_network;

/* Default size of a pod's /dev/shm tmpfs (kubelet's and containerd's). */
#define SANDBOX_SHM_SIZE "65536k"
/* How long Stop waits for the infra's exit file after SIGKILL. */
#define SANDBOX_STOP_WAIT_MS 10000

/* ---- paths (all malloc'd) ---- */

/* <runroot>/sandboxes/<id>: bundle (config.json) and shm mount point. */
char *sandbox_bundle_dir(const struct daemon *d, const char *id);
/* <root>/sandboxes/<id>: hostname, resolv.conf, hosts. */
char *sandbox_files_dir(const struct daemon *d, const char *id);
/* <runroot>/sandboxes/<id>/shm */
char *sandbox_shm_dir(const struct daemon *d, const char *id);
/* <runroot>/netns/<id> */
char *sandbox_netns_path(const struct daemon *d, const char *id);
/* <runroot>/userns/<id> */
char *sandbox_userns_path(const struct daemon *d, const char *id);
/* <runroot>/ipcns/<id>, <runroot>/utsns/<id> (pods without an infra) */
char *sandbox_ipcns_path(const struct daemon *d, const char *id);
char *sandbox_utsns_path(const struct daemon *d, const char *id);

/* ---- validation (validate.c) ---- */

/* Checks a RunPodSandbox request: config, metadata fields, every enum
 * (namespace modes, port protocols), ports, sysctls (namespaced ones only,
 * matching the pod's namespaces), hostname. EINVAL naming the field. */
int sandbox_validate_config(const Runtime__V1__PodSandboxConfig *cfg, cri_error_t *err);

/* Whether sysctl `name` may be set on a pod with these namespace modes.
 * EINVAL naming the sysctl and why not. */
int sandbox_validate_sysctl(const char *name, int ns_network, int ns_ipc, cri_error_t *err);

/* A fresh 64-hex-digit id (getrandom). */
char *sandbox_new_id(void);

/* ---- network namespace (netns.c) ---- */

/* An empty file at path (its dir created 0711), to bind a namespace onto;
 * `what` names the pin in the error ("create <what> pin `path`"). */
int sandbox_pin_file(const char *path, const char *what, cri_error_t *err);

/* Creates the namespaces `pins` names (net with lo up, ipc, uts with
 * pins->hostname) in one unshare and pins each at its path (bind mount of
 * the namespace file onto an empty file). Nothing is left behind on
 * failure. */
int sandbox_ns_pin(const host_ns_pins_t *pins, cri_error_t *err);

/* Writes each sysctl of `sysctls` (/proc/sys path, value, ..., NULL; NULL
 * = none) in the calling thread's namespaces; async-signal-safe (open,
 * write, close). On failure errno is set and *ret_failed is the index of
 * the path that failed. */
int sandbox_write_sysctls(char *const *sysctls, size_t *ret_failed);

/* The pod's sysctls as sandbox_write_sysctls() wants them (malloc'd, free
 * with strv_free); NULL when it has none. */
char **sandbox_sysctl_paths(const Runtime__V1__PodSandboxConfig *cfg);

/* Binds /proc/<pid>/ns/<type> onto an empty file at path. Nothing is left
 * behind on failure. */
int sandbox_ns_bind(const char *src, const char *type, const char *path, cri_error_t *err);

/* Unmounts and removes the pin. A missing pin, or one that is no longer a
 * mount (after a reboot, or removed by hand), is success. */
int sandbox_netns_unpin(const char *path, cri_error_t *err);

/* Unpins every namespace of sb (net, ipc, uts, user); each step runs, the
 * first error is the one returned. */
int sandbox_unpin_all(struct daemon *d, sandbox_t *sb, cri_error_t *err);

/* For a pod without an infra: whether it is still whole, i.e. its bundle
 * dir (runroot) exists and every pin it records is a live nsfs mount. */
bool sandbox_pins_alive(struct daemon *d, sandbox_t *sb);

/* True when `path` is a pinned network namespace (nsfs mount). */
bool sandbox_netns_alive(const char *path);

/* ---- pod user namespace (userns.c) ---- */

/* Makes a user namespace with one uid and one gid range ({container id,
 * host id, length}), pins it at userns_path and makes the namespaces pins
 * names inside it (net with lo up, ipc, uts with the hostname), each
 * pinned at its path. Nothing is left behind on failure. Unpin each with
 * sandbox_netns_unpin(). */
int sandbox_userns_pin(const char *userns_path, const host_ns_pins_t *pins,
                       const uint32_t uid_map[3], const uint32_t gid_map[3], cri_error_t *err);

/* ---- pod files (podfiles.c) ---- */

/* Writes hostname, resolv.conf and hosts into files_dir (created).
 * resolv.conf comes from dns_config when it sets anything, else the host's
 * /etc/resolv.conf; hosts is the host's for host-network pods. */
int sandbox_podfiles_write(const sandbox_t *sb, const Runtime__V1__DNSConfig *dns,
                           const char *files_dir, cri_error_t *err);

/* Mounts the pod's /dev/shm tmpfs (SANDBOX_SHM_SIZE) on shm_dir (created),
 * its root owned by uid:gid (the pod's mapped root; 0:0 without a pod user
 * namespace). */
int sandbox_shm_mount(const char *shm_dir, uint32_t uid, uint32_t gid, cri_error_t *err);

/* The resolv.conf text for dns (malloc'd); NULL when dns sets nothing. */
char *sandbox_resolv_conf(const Runtime__V1__DNSConfig *dns);

/* Unmounts the shm tmpfs (not mounted = success). */
int sandbox_shm_unmount(const char *shm_dir, cri_error_t *err);

/* ---- infra container (infra.c) ---- */

/* The infra rootfs under <root>/pause/rootfs, holding a copy of pause_path
 * as /pause; built once, atomically (rebuilt when the binary changed).
 * *ret_path is malloc'd. */
int sandbox_infra_rootfs(const char *root, const char *pause_path, char **ret_path,
                         cri_error_t *err);

/* Writes the infra spec for sb into bundle (config.json) from cfg, and
 * keeps its text in sb->spec_json. args is the infra's argv (NULL: the
 * built-in rootfs's /pause). */
int sandbox_infra_spec(struct daemon *d, sandbox_t *sb, const Runtime__V1__PodSandboxConfig *cfg,
                       const char *rootfs, char *const *args, const char *bundle,
                       const char *shm_path, cri_error_t *err);

/* ---- image.pause_image (pause_image.c) ---- */

/* Resolves image.pause_image (pulling it when absent), mounts its layers
 * read-only for pod sb and gives the rootfs path and the image's
 * Entrypoint + Cmd (both malloc'd). On failure nothing stays mounted. */
int sandbox_pause_image_prepare(struct daemon *d, sandbox_t *sb, char **ret_rootfs,
                                char ***ret_argv, cri_error_t *err);
/* Unmounts and removes pod `id`'s pause-image rootfs; none is fine. */
int sandbox_pause_image_release(struct daemon *d, const char *id, cri_error_t *err);

/* Starts the infra container (monitor + runtime create, runtime start).
 * *ret_pid gets its pid. On failure the container is deleted again. */
int sandbox_infra_start(struct daemon *d, sandbox_t *sb, const char *bundle, pid_t *ret_pid,
                        cri_error_t *err);

/* Kills the infra with SIGKILL, waits for its exit file, deletes it from the
 * runtime. A container the runtime does not know is success. */
int sandbox_infra_stop(struct daemon *d, sandbox_t *sb, cri_error_t *err);

/* Whether the infra container still runs: no exit file, and its recorded
 * pid runs under its live monitor or (the monitor silent) the runtime's
 * state says running. *ret_pid gets its pid when it does. */
bool sandbox_infra_running(struct daemon *d, sandbox_t *sb, pid_t *ret_pid);

/* Removes the pod's bundle and pod dirs, its pause image mount and exit
 * file (remove.c); the record is the caller's. */
int sandbox_remove_files(struct daemon *d, sandbox_t *sb, cri_error_t *err);

/* ---- CNI (network.c) ---- */

/* Loads the daemon's current network and sets sb->cni_network to its name
 * (before the pod's record is written, so a DEL of that network is owed
 * from then on). *ret is freed with cni_network_free(). ENETDOWN when
 * there is no network config. */
int sandbox_network_prepare(struct daemon *d, sandbox_t *sb, struct cni_network **ret,
                            cri_error_t *err);

/* CNI ADD of net for sb (netns sb->netns_path), with K8S_POD_* CNI_ARGS and
 * the portMappings, dns and cgroupPath capability args from cfg. On
 * success sb->ips is set. */
int sandbox_network_setup(struct daemon *d, sandbox_t *sb, const struct cni_network *net,
                          const Runtime__V1__PodSandboxConfig *cfg, cri_error_t *err);

/* CNI DEL with the cached ADD result (netns "" when the pin is gone).
 * Nothing to do when sb has no network. */
int sandbox_network_teardown(struct daemon *d, sandbox_t *sb, cri_error_t *err);

/* The pod's CRI metadata (arena), shared by ListPodSandbox and
 * PodSandboxStatus (list.c). */
Runtime__V1__PodSandboxMetadata *sandbox_reply_metadata(rpc_ctx_t *ctx, const sandbox_t *sb);

/* {"cpu_period", "cpu_quota", "cpu_shares", "memory_limit"} of l, for the
 * record and PodSandboxStatus verbose (record.c). New reference. */
json_t *sandbox_limits_to_json(const cgroup_limits_t *l);

#endif
