/* server/sandbox/: pod sandboxes. One file per RPC (run.c, stop.c,
 * remove.c, status.c, list.c) plus the helpers they share: the sandbox
 * store (memory + LMDB), netns pinning, pod files, the infra container and
 * the CNI attachment. This header is the module's contract with the rest of
 * the daemon (daemon.c opens the store, main.c runs the startup recovery,
 * the container RPCs will look sandboxes up).
 *
 * A sandbox_t is refcounted. Its identity fields are fixed once it is in the
 * store and are read without a lock; `state` and `pid` change under `lock`.
 * Slow operations on one pod (stop, remove) are serialised by `op_lock`. */
#ifndef CRICKET_SERVER_SANDBOX_SANDBOX_H
#define CRICKET_SERVER_SANDBOX_SANDBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "server/cgroup.h"

struct daemon;
struct store;

/* CRI PodSandboxState numbers. */
typedef enum sandbox_state {
    SANDBOX_STATE_READY = 0,
    SANDBOX_STATE_NOTREADY = 1,
} sandbox_state_t;

/* CRI NamespaceMode numbers. */
enum sandbox_ns_mode {
    SANDBOX_NS_POD = 0,
    SANDBOX_NS_CONTAINER = 1,
    SANDBOX_NS_NODE = 2,
    SANDBOX_NS_TARGET = 3,
};

/* Time spent in each part of RunPodSandbox, in nanoseconds. */
typedef struct sandbox_timings {
    int64_t netns_ns;
    int64_t cni_ns;   /* CNI ADD (runs alongside the infra start) */
    int64_t infra_ns; /* shm, spec, monitor + runc create, runc start */
    int64_t files_ns; /* shm mount and spec (part of infra_ns) */
    int64_t total_ns;
} sandbox_timings_t;

typedef struct sandbox {
    /* fixed once stored */
    char *id;   /* 64 hex digits */
    char *name; /* reserved name: k8s_POD_<name>_<namespace>_<uid>_<attempt> */
    char *meta_name, *meta_uid, *meta_namespace;
    uint32_t attempt;
    char **labels;                  /* key, value, key, value, ..., NULL */
    char **annotations;             /* same */
    char *runtime_handler;          /* as requested; "" = the default handler */
    char *runtime;                  /* the conf handler used */
    int64_t created_at;             /* Unix ns */
    int ns_network, ns_pid, ns_ipc; /* enum sandbox_ns_mode */
    bool privileged; /* security_context.privileged at creation (false in older records) */
    char *hostname;
    char *log_directory;
    char *cgroup_parent;
    char *netns_path; /* pinned netns; "" for host network */
    /* pinned ipc and uts namespaces of a pod without an infra process
     * ("" = none: the infra holds them, or the host's) */
    char *ipcns_path, *utsns_path;
    /* the pod has an infra (pause) process; false with runtime.drop_infra
     * for a pod that does not share its PID namespace (true in older
     * records) */
    bool infra;
    /* pod user namespace (userns_options mode POD): pinned at userns_path,
     * one range each as {container id, host id, length}; "" = the host's */
    char *userns_path;
    uint32_t uid_map[3], gid_map[3];
    char *cni_network; /* network attached with CNI ADD; "" = none */
    char **ips;        /* pod IPs, primary first; NULL-terminated */
    char *spec_json;   /* the infra config.json text ("" when unknown) */
    sandbox_timings_t timings;
    bool creating; /* loaded from the record of an unfinished RunPodSandbox */

    /* behind lock */
    pthread_mutex_t lock;
    sandbox_state_t state;
    pid_t pid;         /* infra pid; 0 once stopped or without an infra */
    pid_t monitor_pid; /* the infra's cricket-conmon (0 after a restart) */
    bool monitor_dead; /* it died without an exit file */
    /* the last UpdatePodSandboxResources (persisted; PodSandboxStatus verbose) */
    bool resources_set;
    cgroup_limits_t resources, overhead;
    /* the pod's cpu counter at the last stats call (usage_nano_cores) */
    uint64_t cpu_sample_ns;
    int64_t cpu_sample_at; /* Unix ns; 0 = none yet */

    pthread_mutex_t op_lock; /* held across Stop and Remove of this pod */
    bool removed;            /* behind op_lock: Remove finished */
    int refs;                /* atomic */
} sandbox_t;

/* A new sandbox with one reference, every string "" and state NOTREADY. */
sandbox_t *sandbox_new(void);
sandbox_t *sandbox_ref(sandbox_t *sb);
/* Drops a reference; frees on the last. Accepts NULL. */
void sandbox_unref(sandbox_t *sb);
static inline void sandbox_unrefp(sandbox_t **sb)
{
    sandbox_unref(*sb);
}
#define cleanup_sandbox __attribute__((cleanup(sandbox_unrefp)))

/* Current state and infra pid (under sb->lock). */
sandbox_state_t sandbox_get_state(sandbox_t *sb, pid_t *ret_pid);
void sandbox_set_state(sandbox_t *sb, sandbox_state_t state, pid_t pid);

/* Value of label `key`, or NULL. */
const char *sandbox_label(const sandbox_t *sb, const char *key);

/* ---- the store: every sandbox in memory, persisted in STORE_PODS ---- */

typedef struct sandbox_store sandbox_store_t;

/* An empty store writing through to persist (not owned). Never fails. */
sandbox_store_t *sandbox_store_new(struct store *persist);
/* Drops every entry's reference and frees the store. Accepts NULL. */
void sandbox_store_free(sandbox_store_t *s);

/* Adds sb (the store takes its own reference). EEXIST when the id is taken. */
int sandbox_store_add(sandbox_store_t *s, sandbox_t *sb, cri_error_t *err);

/* Finds a sandbox by full id or unique id prefix; *ret gets a reference.
 * EINVAL for an empty id or an ambiguous prefix, ENOENT when none matches. */
int sandbox_store_get(sandbox_store_t *s, const char *id, sandbox_t **ret, cri_error_t *err);

/* Removes sb from memory (no-op when absent). */
void sandbox_store_remove(sandbox_store_t *s, sandbox_t *sb);

/* A snapshot of every sandbox: *ret_list (caller frees with
 * sandbox_list_free) holds one reference each. Never fails. */
void sandbox_store_list(sandbox_store_t *s, sandbox_t ***ret_list, size_t *ret_n);
void sandbox_list_free(sandbox_t **list, size_t n);

/* Writes sb's record (JSON) to STORE_PODS. With `reserve`, also reserves
 * sb->name for sb->id in the same transaction: EEXIST naming the holder when
 * another pod has it, and then nothing is written. */
int sandbox_store_persist(sandbox_store_t *s, sandbox_t *sb, bool reserve, cri_error_t *err);

/* Deletes sb's record and releases its name, in one transaction. A missing
 * record is success. */
int sandbox_store_forget(sandbox_store_t *s, sandbox_t *sb, cri_error_t *err);

/* Loads every record of STORE_PODS into memory (records marked creating
 * too, with sb->creating set). A record that does not parse is logged with
 * its key and the reason and skipped; *ret_skipped (may be NULL) counts
 * them. Fails only when the store cannot be read. */
int sandbox_store_load(sandbox_store_t *s, size_t *ret_skipped, cri_error_t *err);

/* What a pod's Stop and Remove do to its containers. The sandbox module
 * knows nothing of containers: the container module's functions are
 * registered at startup (daemon.c), the way image_store_set_in_use_fn()
 * hears of layers in use. Each gets the registered data and the full pod
 * id. */
typedef struct sandbox_container_hooks {
    /* stop every container of the pod with no grace period */
    int (*stop)(void *data, const char *sandbox_id, cri_error_t *err);
    /* remove every container of the pod (after stop) */
    int (*remove)(void *data, const char *sandbox_id, cri_error_t *err);
} sandbox_container_hooks_t;

/* Registers the hooks (copied; data is not owned). Before it, a pod has no
 * containers to stop or remove. Call before serving: not synchronised. */
void sandbox_store_set_container_hooks(sandbox_store_t *s, const sandbox_container_hooks_t *hooks,
                                       void *data);

/* Runs the registered stop / remove hook for sb's containers (0 when none
 * is registered). */
int sandbox_stop_containers(sandbox_store_t *s, sandbox_t *sb, cri_error_t *err);
int sandbox_remove_containers(sandbox_store_t *s, sandbox_t *sb, cri_error_t *err);

/* Serialises sb as the JSON record text (malloc'd). `creating` marks a pod
 * whose RunPodSandbox has not finished (torn down by recovery). */
char *sandbox_record_dump(sandbox_t *sb, bool creating);
/* Parses a record. *ret_creating says whether it was marked creating. */
int sandbox_record_parse(const char *json, size_t len, sandbox_t **ret, bool *ret_creating,
                         cri_error_t *err);

/* ---- operations shared by the RPCs and the recovery ---- */

/* Stops sb: its containers, the network (CNI DEL from the cache), the
 * infra container, the shm mount and the netns pin; then NOTREADY,
 * persisted. Idempotent; succeeds with the netns or the infra already gone.
 * Caller holds sb->op_lock. */
int sandbox_stop_locked(struct daemon *d, sandbox_t *sb, cri_error_t *err);

/* Removes what Stop leaves: bundle and pod dirs, exit file, the record and
 * the name reservation, and the memory entry. Caller holds sb->op_lock and
 * has stopped sb. */
int sandbox_remove_locked(struct daemon *d, sandbox_t *sb, cri_error_t *err);

/* For the exit watcher: when `id` is a pod's infra container (full id),
 * marks the pod NOTREADY in memory (a restart re-derives it from runc state
 * and the exit file) and returns true (a pod without an infra is left
 * READY: it has no process); false for any other id. Never
 * blocks on anything but the store's read lock and the pod's state lock. */
bool sandbox_on_infra_exit(struct daemon *d, const char *id);

struct exit_watcher_death;
/* For the exit watcher: when `id` is a pod's infra container, its monitor
 * died without an exit file: the pod is NOTREADY at once (as for an infra
 * exit; Stop kills what is left of the infra without waiting for an exit
 * file that will never come). False for any other id. */
bool sandbox_on_infra_monitor_death(struct daemon *d, const char *id,
                                    const struct exit_watcher_death *death);

/* Startup, once the exit watcher runs: watches the infra monitor of every
 * READY pod (a pod whose monitor is gone turns NOTREADY). */
void sandbox_watch_monitors(struct daemon *d);

/* Startup: loads every record of STORE_PODS into the sandbox store, tears down
 * pods whose RunPodSandbox never finished, and marks NOTREADY the pods whose
 * infra container is gone (runc state and exit files). Per-pod problems are
 * logged as warnings and skipped; *ret_loaded (may be NULL) gets the count.
 * Fails only when the store cannot be read. */
int sandbox_recover(struct daemon *d, size_t *ret_loaded, cri_error_t *err);

/* Paths other modules use (malloc'd): the pod files dir (<root>/sandboxes/
 * <id>: hostname, resolv.conf, hosts) and the pod's shm mount point. */
char *sandbox_files_dir(const struct daemon *d, const char *id);
char *sandbox_shm_dir(const struct daemon *d, const char *id);

/* For a pod with its own user namespace: makes desc join it (the pin) with
 * its uid and gid range. Nothing for a pod in the host's. */
struct oci_desc;
void sandbox_oci_userns(const sandbox_t *sb, struct oci_desc *desc);

#endif
