/* oci/: OCI runtime spec generation and OCI runtime invocation.
 *
 * Two halves share this header:
 *
 * 1. Spec generation. The server translates CRI messages (ContainerConfig,
 *    PodSandboxConfig, the image config) into a plain oci_desc_t and calls
 *    oci_spec_build() or oci_spec_write(). The description borrows every
 *    string and array from the caller: oci/ never frees or keeps them. Facts
 *    about the host (capabilities this process may hand out, cgroup version,
 *    the lowest oom_score_adj allowed, recursive read-only support) come in
 *    an oci_host_t, filled once at startup by oci_host_detect(); unit tests
 *    fill one by hand so the output does not depend on the machine.
 *
 * 2. Runtime invocation. An oci_runtime_t is an ops table plus settings.
 *    oci_runtime_new() gives the real implementation (any runc-compatible
 *    binary: runc, crun); tests of the server pass their own ops table to
 *    oci_runtime_new_with_ops(). Callers go through the oci_runtime_*()
 *    wrappers, which dispatch to the table.
 *
 * Errors follow common/error.h. A failure of the runtime binary carries the
 * runtime's own message: "runc start `abc`: container does not exist". */
#ifndef CRICKET_OCI_OCI_H
#define CRICKET_OCI_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/error.h"

/* ------------------------------------------------------------------ */
/* Host facts                                                          */
/* ------------------------------------------------------------------ */

typedef struct oci_host {
    uint64_t cap_bounding; /* capabilities this process may grant (bit n = cap n) */
    int cap_last;          /* highest capability number the kernel knows */
    bool cgroup2;          /* pure cgroup v2 (unified) host */
    bool hugetlb;          /* the hugetlb controller is usable; hugepage limits dropped if not */
    int oom_score_adj_min; /* lowest oom_score_adj a container may get here */
    bool rro_supported;    /* kernel >= 5.12 and the runtime knows "rro" */
    bool userns_supported; /* pod user namespaces work (id-mapped layers; set by the daemon) */
    /* cricket-rro: applies recursive read-only itself as a createContainer
     * hook when the runtime does not know "rro"; NULL = none (set only
     * where the kernel has mount_setattr: oci_mount_setattr_supported()) */
    const char *rro_hook;
    const char *dev_root; /* where host devices live ("/dev"); privileged specs walk it */
} oci_host_t;

/* Fills *ret_host from the running system: the bounding set from
 * /proc/self/status, cap_last from /proc/sys/kernel/cap_last_cap, the cgroup
 * version of /sys/fs/cgroup, and the oom_score_adj floor (the current value of
 * /proc/self/oom_score_adj when this process lacks CAP_SYS_RESOURCE, else
 * -1000). rro_supported is left false: set it from oci_runtime_features().
 * Logs once (warn) when oom_score_adj requests will be clamped. Never fails:
 * unreadable facts fall back to conservative values. */
void oci_host_detect(oci_host_t *ret_host);

/* Whether the kernel has mount_setattr(2) (Linux >= 5.12), which
 * cricket-rro needs. */
bool oci_mount_setattr_supported(void);

/* ------------------------------------------------------------------ */
/* Description of a container                                          */
/* ------------------------------------------------------------------ */

typedef struct oci_kv {
    const char *key;
    const char *value;
} oci_kv_t;

typedef struct oci_rlimit {
    const char *type; /* "RLIMIT_NOFILE" */
    uint64_t soft;
    uint64_t hard;
} oci_rlimit_t;

/* The process. Also the argument of oci_runtime_exec(). */
typedef struct oci_process {
    const char *const *args; /* NULL-terminated; args[0] required */
    const char *const *env;  /* NULL-terminated "K=V" list; may be NULL */
    const char *cwd;         /* absolute; NULL = "/" */
    uint32_t uid;
    uint32_t gid;
    const uint32_t *additional_gids;
    size_t n_additional_gids;
    const oci_rlimit_t *rlimits;
    size_t n_rlimits;
    bool terminal;
    bool no_new_privileges;
    bool has_oom_score_adj; /* oom_score_adj is set (clamped to the host's floor) */
    int oom_score_adj;
    const char *apparmor_profile; /* NULL/"" = none (this host has no AppArmor) */
    const char *selinux_label;    /* NULL/"" = none */
} oci_process_t;

/* CRI MountPropagation values, same numbers. */
typedef enum oci_propagation {
    OCI_PROPAGATION_PRIVATE = 0,           /* rprivate */
    OCI_PROPAGATION_HOST_TO_CONTAINER = 1, /* rslave */
    OCI_PROPAGATION_BIDIRECTIONAL = 2,     /* rshared */
} oci_propagation_t;

/* A mount on top of the defaults. A mount whose destination equals a default
 * mount's (/dev/shm, /etc/hosts ...) replaces it. Binds are sorted parents
 * first (by path depth, stable). */
typedef struct oci_mount {
    const char *destination;    /* absolute path in the container */
    const char *source;         /* host path for binds */
    const char *type;           /* NULL/"bind" = recursive bind */
    const char *const *options; /* extra options (NULL-terminated); NULL for binds */
    bool readonly;
    bool recursive_readonly; /* "rro" (host->rro_supported) or host->rro_hook, else ENOTSUP */
    oci_propagation_t propagation;
} oci_mount_t;

/* A host device made visible in the container (CRI Device). */
typedef struct oci_device {
    const char *container_path;
    const char *host_path;   /* must be a char or block device (symlinks followed) */
    const char *permissions; /* subset of "rwm"; NULL/"" = "rwm" */
} oci_device_t;

typedef enum oci_ns_mode {
    OCI_NS_NEW = 0, /* a new namespace */
    OCI_NS_HOST,    /* the host's: omitted from the spec */
    OCI_NS_JOIN,    /* join the one at `path` (/proc/<pid>/ns/x or a pinned bind mount) */
} oci_ns_mode_t;

typedef struct oci_namespace {
    oci_ns_mode_t mode;
    const char *path; /* OCI_NS_JOIN only */
} oci_namespace_t;

/* One id range of a user namespace: container ids [container_id,
 * container_id + length) are host ids [host_id, host_id + length). */
typedef struct oci_idmap {
    uint32_t container_id;
    uint32_t host_id;
    uint32_t length;
} oci_idmap_t;

typedef struct oci_hugepage {
    const char *page_size; /* "2MB", "1GB" */
    uint64_t limit;        /* bytes */
} oci_hugepage_t;

/* Linux resources. A zero field is "unset" and left out (as in CRI). */
typedef struct oci_resources {
    uint64_t cpu_shares;
    int64_t cpu_quota;
    uint64_t cpu_period;
    const char *cpuset_cpus;
    const char *cpuset_mems;
    int64_t memory_limit; /* bytes */
    int64_t memory_swap;  /* memory+swap bytes; -1 = unlimited */
    int64_t pids_limit;   /* -1 = unlimited */
    const oci_hugepage_t *hugepages;
    size_t n_hugepages;
    const oci_kv_t *unified; /* cgroup v2 files ("memory.high" = "1G") */
    size_t n_unified;
} oci_resources_t;

typedef enum oci_seccomp_kind {
    OCI_SECCOMP_RUNTIME_DEFAULT = 0, /* cricket's default profile (CRI zero value) */
    OCI_SECCOMP_UNCONFINED,          /* no seccomp */
    OCI_SECCOMP_LOCALHOST,           /* a JSON profile file */
} oci_seccomp_kind_t;

/* Everything the spec says. Start with oci_desc_init(), then fill in. */
typedef struct oci_desc {
    const char *id; /* container id: cgroupsPath's last element */
    oci_process_t process;

    const char *root_path; /* rootfs: absolute, or relative to the bundle */
    bool root_readonly;
    const char *hostname; /* NULL = none; ignored with the host's UTS namespace */

    const oci_mount_t *mounts;
    size_t n_mounts;
    const char *shm_path; /* host dir bound at /dev/shm; NULL = private tmpfs */

    /* namespaces; mount is always new */
    oci_namespace_t ns_pid, ns_network, ns_ipc, ns_uts, ns_cgroup;
    /* user namespace: JOIN (a pinned pod userns) or anything else for the
     * host's; with JOIN the one uid and gid range below go into linux.uidMappings /
     * gidMappings (runc 1.1 wants them even when it joins by path) */
    oci_namespace_t ns_user;
    oci_idmap_t uid_map, gid_map;

    /* cgroupsPath: cgroupfs "<parent>/<id>", systemd "<slice>:<prefix>:<id>" */
    const char *cgroup_parent; /* NULL/"" = "/cricket" (cgroupfs) or "system.slice" */
    bool cgroup_systemd;
    const char *cgroup_scope_prefix; /* systemd only; NULL = "cricket" */
    oci_resources_t resources;

    const oci_device_t *devices;
    size_t n_devices;
    const oci_kv_t *sysctls;
    size_t n_sysctls;
    const oci_kv_t *annotations;
    size_t n_annotations;

    bool privileged;
    const char *const *cap_add;  /* names with or without CAP_, any case; "ALL" */
    const char *const *cap_drop; /* same */
    /* NULL = cricket's defaults; non-NULL (even empty) = exactly these */
    const char *const *masked_paths;
    const char *const *readonly_paths;
    oci_seccomp_kind_t seccomp;
    const char *seccomp_profile_path; /* OCI_SECCOMP_LOCALHOST: absolute path */
} oci_desc_t;

/* Zeroes *desc and sets the defaults a pod container gets: new pid, network,
 * ipc and uts namespaces, a new cgroup namespace only on cgroup v2 hosts
 * (host_cgroup2), RuntimeDefault seccomp, no_new_privileges false. */
void oci_desc_init(oci_desc_t *desc, bool host_cgroup2);

/* ------------------------------------------------------------------ */
/* Spec generation                                                     */
/* ------------------------------------------------------------------ */

/* Builds the config.json document for desc on host. *ret_spec gets a new
 * reference (json_decref it). EINVAL for a bad description (names the field,
 * e.g. "unknown capability `FOO`"), ENOENT/ENOTDIR for a device or seccomp
 * profile that does not exist or is not what it should be, ENOTSUP for "rro"
 * on a host without support. */
int oci_spec_build(const oci_desc_t *desc, const oci_host_t *host, json_t **ret_spec,
                   cri_error_t *err);

/* Builds the spec and writes it atomically to <bundle>/config.json (0600). */
int oci_spec_write(const oci_desc_t *desc, const oci_host_t *host, const char *bundle,
                   cri_error_t *err);

/* The cgroupsPath for desc: "/kubepods/pod1/<id>" or
 * "kubepods-pod1.slice:cricket:<id>". A systemd parent may be a slice name
 * or a path whose last element is a slice; anything else is EINVAL. Caller
 * frees *ret_path. */
int oci_cgroups_path(const oci_desc_t *desc, char **ret_path, cri_error_t *err);

/* The capability set desc ends up with, as a bit mask (bit n = capability
 * n): privileged or add "ALL" = host->cap_bounding; otherwise the default
 * set, "ALL" in drop empties it, then single adds, then single drops.
 * EINVAL naming the first unknown capability. */
int oci_caps_compute(const oci_desc_t *desc, const oci_host_t *host, uint64_t *ret_caps,
                     cri_error_t *err);

/* Parses one capability name ("net_admin", "NET_ADMIN", "CAP_NET_ADMIN") into
 * its number. EINVAL "unknown capability `x`" when libcap does not know it. */
int oci_cap_parse(const char *name, int *ret_cap, cri_error_t *err);

/* The default capability set as a mask (containerd's set; see caps.c). */
uint64_t oci_caps_default(void);

/* The RuntimeDefault seccomp profile for this machine's architecture, given
 * the capabilities the container has (some syscalls follow capabilities, as
 * in the well-known Docker profile). Syscall names the host's libseccomp does
 * not know are dropped so the runtime accepts the profile. New reference. */
json_t *oci_seccomp_default_profile(uint64_t caps);

/* Loads a Localhost seccomp profile: the file must exist and hold a JSON
 * object with a string "defaultAction". OCI profiles pass through as they
 * are; Docker-format ones are reduced to OCI: "archMap" becomes the native
 * "architectures", and rules are kept only where their "includes"/"excludes"
 * (caps against `caps`, arches against this machine, minKernel) allow, as
 * Docker and CRI-O do. New reference. ENOENT when missing, EINVAL when it
 * does not parse (with line/column). */
int oci_seccomp_load_profile(const char *path, uint64_t caps, json_t **ret_profile,
                             cri_error_t *err);

/* The OCI "resources" object for res (only set fields), as written into the
 * spec and given to `runtime update`. New reference, never NULL. */
json_t *oci_resources_to_json(const oci_resources_t *res);

/* The OCI "process" object for proc on host (exec's --process file). */
int oci_process_to_json(const oci_process_t *proc, const oci_host_t *host, json_t **ret,
                        cri_error_t *err);

/* ------------------------------------------------------------------ */
/* Runtime invocation                                                  */
/* ------------------------------------------------------------------ */

typedef struct oci_runtime oci_runtime_t;

typedef enum oci_status {
    OCI_STATUS_UNKNOWN = 0,
    OCI_STATUS_CREATING,
    OCI_STATUS_CREATED,
    OCI_STATUS_RUNNING,
    OCI_STATUS_PAUSED,
    OCI_STATUS_STOPPED,
} oci_status_t;

/* What `<runtime> state <id>` says. */
typedef struct oci_state {
    oci_status_t status;
    pid_t pid; /* 0 when stopped */
    char bundle[4096];
} oci_state_t;

/* How `create` runs. The container's stdio are the runtime's stdio, so they
 * are passed explicitly (-1 = /dev/null). With console_socket set the
 * runtime sends the pty master there (process.terminal must be true). */
typedef struct oci_create_opts {
    const char *pid_file;       /* NULL = none */
    const char *console_socket; /* NULL = none */
    int stdin_fd, stdout_fd, stderr_fd;
    bool no_pivot;
} oci_create_opts_t;

/* How `exec` runs: synchronously, with these stdio (-1 = /dev/null), and a
 * timeout (0 = the runtime's timeout): on expiry the exec'd process is
 * SIGKILLed and ETIMEDOUT returned. */
typedef struct oci_exec_opts {
    int stdin_fd, stdout_fd, stderr_fd;
    int timeout_ms;
} oci_exec_opts_t;

/* How `exec_sync` runs (ExecSync): `exec --process FILE` in the
 * foreground, stdin /dev/null, stdout and stderr captured through pipes. */
typedef struct oci_exec_sync_opts {
    const char *process_json; /* OCI process object (terminal false), JSON text */
    int timeout_ms;           /* > 0: past it the process is SIGKILLed, ETIMEDOUT; 0 = none */
    size_t output_cap;        /* bytes kept per stream (the rest is read and dropped); > 0 */
} oci_exec_sync_opts_t;

typedef struct oci_exec_sync_result {
    int exit_code; /* the process's exit status, or 128 + signal */
    char *out;     /* stdout (NUL-terminated); free with oci_exec_sync_result_clear() */
    size_t out_len;
    char *err; /* stderr (NUL-terminated) */
    size_t err_len;
} oci_exec_sync_result_t;

/* Frees what r owns and zeroes it. */
void oci_exec_sync_result_clear(oci_exec_sync_result_t *r);

/* The contract. Every op returns 0 or -1 with err set; "does not exist" is
 * ENOENT, a timeout ETIMEDOUT. */
struct oci_runtime_ops {
    int (*create)(oci_runtime_t *rt, const char *id, const char *bundle,
                  const oci_create_opts_t *opts, cri_error_t *err);
    int (*start)(oci_runtime_t *rt, const char *id, cri_error_t *err);
    int (*kill)(oci_runtime_t *rt, const char *id, int signo, bool all, cri_error_t *err);
    int (*delete)(oci_runtime_t *rt, const char *id, bool force, cri_error_t *err);
    int (*state)(oci_runtime_t *rt, const char *id, oci_state_t *ret_state, cri_error_t *err);
    int (*update)(oci_runtime_t *rt, const char *id, const oci_resources_t *res, cri_error_t *err);
    int (*pause)(oci_runtime_t *rt, const char *id, cri_error_t *err);
    int (*resume)(oci_runtime_t *rt, const char *id, cri_error_t *err);
    int (*exec)(oci_runtime_t *rt, const char *id, const oci_process_t *proc,
                const oci_exec_opts_t *opts, int *ret_wait_status, cri_error_t *err);
    /* A non-zero exit is success (read ret->exit_code); EIO with the
     * runtime's message when the exec could not start. */
    int (*exec_sync)(oci_runtime_t *rt, const char *id, const oci_exec_sync_opts_t *opts,
                     oci_exec_sync_result_t *ret, cri_error_t *err);
};

struct oci_runtime {
    const struct oci_runtime_ops *ops;
    char *name;      /* for messages: "runc" */
    char *path;      /* binary */
    char *root;      /* --root: the runtime's state dir */
    char *tmp_dir;   /* per-call log and resources files (<root>/cricket) */
    int timeout_ms;  /* per invocation */
    oci_host_t host; /* used to build exec process specs */
    void *userdata;  /* for fake tables */
};

/* The real ops table: runs `<path> --root <root> --log <file> --log-format
 * json <verb> ...` through posix_spawn, with the runtime killed (SIGKILL) and
 * ETIMEDOUT returned past timeout_ms. */
extern const struct oci_runtime_ops oci_runtime_exec_ops;

/* A runtime using oci_runtime_exec_ops. path: absolute, or a name looked up
 * in $PATH (ENOENT when not found or not executable); root is created (0700).
 * timeout_ms <= 0 means 120 s. The host facts are copied. Free with
 * oci_runtime_free(). */
int oci_runtime_new(const char *path, const char *root, int timeout_ms, const oci_host_t *host,
                    oci_runtime_t **ret, cri_error_t *err);

/* A runtime with a caller's ops table (fakes); name and root are copied,
 * path is name. Never fails. */
oci_runtime_t *oci_runtime_new_with_ops(const struct oci_runtime_ops *ops, const char *name,
                                        const char *root, void *userdata);

/* Frees rt; accepts NULL. */
void oci_runtime_free(oci_runtime_t *rt);

/* Removes the per-call temp files (`<kind>-<pid>-XXXXXX` in the tmp dir)
 * of processes that no longer run: a daemon killed during a runtime call
 * leaves them. Call at startup, once the previous daemon's calls ended. */
int oci_runtime_sweep_tmp(oci_runtime_t *rt, cri_error_t *err);

static inline void oci_runtime_freep(oci_runtime_t **rt)
{
    oci_runtime_free(*rt);
}
#define cleanup_oci_runtime __attribute__((cleanup(oci_runtime_freep)))

/* What the runtime binary supports (`<runtime> features`): recursive
 * read-only mounts. EIO/ENOSYS-style errors when the runtime has no
 * `features` verb: callers then assume no support. */
int oci_runtime_supports_rro(oci_runtime_t *rt, bool *ret, cri_error_t *err);

/* Dispatchers to rt->ops; see struct oci_runtime_ops. A NULL op is ENOSYS. */
int oci_runtime_create(oci_runtime_t *rt, const char *id, const char *bundle,
                       const oci_create_opts_t *opts, cri_error_t *err);
int oci_runtime_start(oci_runtime_t *rt, const char *id, cri_error_t *err);
int oci_runtime_kill(oci_runtime_t *rt, const char *id, int signo, bool all, cri_error_t *err);
int oci_runtime_delete(oci_runtime_t *rt, const char *id, bool force, cri_error_t *err);
int oci_runtime_state(oci_runtime_t *rt, const char *id, oci_state_t *ret_state, cri_error_t *err);
int oci_runtime_update(oci_runtime_t *rt, const char *id, const oci_resources_t *res,
                       cri_error_t *err);
int oci_runtime_pause(oci_runtime_t *rt, const char *id, cri_error_t *err);
int oci_runtime_resume(oci_runtime_t *rt, const char *id, cri_error_t *err);
int oci_runtime_exec(oci_runtime_t *rt, const char *id, const oci_process_t *proc,
                     const oci_exec_opts_t *opts, int *ret_wait_status, cri_error_t *err);
int oci_runtime_exec_sync(oci_runtime_t *rt, const char *id, const oci_exec_sync_opts_t *opts,
                          oci_exec_sync_result_t *ret, cri_error_t *err);

/* "created", "running", ...; "unknown" for OCI_STATUS_UNKNOWN. */
const char *oci_status_name(oci_status_t status);
/* The reverse; OCI_STATUS_UNKNOWN for anything else. */
oci_status_t oci_status_parse(const char *s);

#endif
