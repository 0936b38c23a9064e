/* Containers: the pieces CreateContainer assembles a container from.
 *
 * This header grows with the container RPCs; today it holds the pure parts
 * that turn a CRI ContainerConfig plus an image config into a process
 * (argv and the rootfs mount live below it, in server/process.h and
 * server/rootfs.h, as the pod's pause image needs them too): environment,
 * working directory, and
 * the user and groups resolved in the container's own /etc/passwd and
 * /etc/group. Nothing here touches the daemon's stores. */
#ifndef CRICKET_SERVER_CONTAINER_H
#define CRICKET_SERVER_CONTAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>

#include "common/error.h"
#include "server/events.h"

/* One KEY=value pair from the CRI request. */
typedef struct container_env_kv {
    const char *key;
    const char *value;
} container_env_kv_t;

/* The environment: the image's Env, then the config's envs replacing equal
 * keys (in order, a later duplicate wins), then HOSTNAME=<hostname> and a
 * default PATH when missing. An empty key is EINVAL. *ret_env is a
 * NULL-terminated "K=V" vector (strv_free). */
int container_env(char *const *image_env, const container_env_kv_t *envs, size_t n_envs,
                  const char *hostname, char ***ret_env, cri_error_t *err);

/* How the request names the user. Fields unset by the request are -1/NULL. */
typedef struct container_user_req {
    int64_t run_as_user;         /* -1 = unset */
    const char *run_as_username; /* NULL or "" = unset */
    int64_t run_as_group;        /* -1 = unset */
    const int64_t *supplemental; /* supplemental_groups */
    size_t n_supplemental;
    bool strict_groups;     /* SupplementalGroupsPolicy Strict: not the image's /etc/group */
    const char *image_user; /* image config User: "", "1000", "name", "1000:100", "name:grp" */
} container_user_req_t;

typedef struct container_user {
    uid_t uid;
    gid_t gid;
    gid_t *additional; /* the primary gid, the groups naming the user in /etc/group (not with
                        * strict_groups), then supplemental; no dups */
    size_t n_additional;
    char *username; /* from /etc/passwd when found, else NULL */
} container_user_t;

void container_user_free(container_user_t *u);

/* Resolves the user the way containerd and CRI-O do: run_as_username (must
 * exist in the rootfs's /etc/passwd) over run_as_user over the image User;
 * run_as_group applies only with one of the first two (alone it is EINVAL);
 * a numeric uid missing from /etc/passwd gets gid 0 (or the image's group).
 * Names are looked up in rootfs/etc/passwd and rootfs/etc/group, read
 * without following symlinks out of rootfs. ENOENT naming the user or group
 * when a name does not exist; EINVAL for malformed input. */
int container_user_resolve(const char *rootfs, const container_user_req_t *req,
                           container_user_t *ret, cri_error_t *err);

/* Opens path inside root as if root were "/": symlinks and ".." cannot
 * leave it. Only a regular file of at most max_size bytes is opened for
 * reading (never blocking): anything else (FIFO, device, directory, socket)
 * or a bigger file is EINVAL naming path, checked before it is opened.
 * Returns an O_CLOEXEC fd for reading, or -1 with err (ENOENT when
 * missing). */
int container_open_in_root(const char *root, const char *path, size_t max_size, cri_error_t *err);

/* ------------------------------------------------------------------ */
/* Containers of the daemon (store.c, record.c and the RPC files)      */
/* ------------------------------------------------------------------ */

struct daemon;
struct store;
struct sandbox;
struct conmon_exit;
struct exit_watcher_death;

/* ContainerStatus.reason of a container whose monitor (cricket-conmon) died
 * without writing its exit file: the exit code is the kernel's when it can
 * be had (pidfd), else 255; the message says which. */
#define CONTAINER_REASON_MONITOR_DIED "ContainerMonitorDied"

/* CRI ContainerState numbers (CREATED is 0). */
typedef enum container_state {
    CONTAINER_STATE_CREATED = 0,
    CONTAINER_STATE_RUNNING = 1,
    CONTAINER_STATE_EXITED = 2,
    CONTAINER_STATE_UNKNOWN = 3,
} container_state_t;

/* A CRI mount as requested (kept for ContainerStatus.mounts). */
typedef struct container_mount {
    char *container_path;
    char *host_path; /* as resolved (symlinks followed) */
    bool readonly;
    bool selinux_relabel;
    int propagation; /* CRI MountPropagation */
    /* an image volume (Mount.image): NULL for host paths */
    char *image;          /* the reference as requested */
    char *image_ref;      /* the image id it resolved to */
    char *image_sub_path; /* "" = the image's root */
} container_mount_t;

/* Linux resources as CRI carries them (ContainerStatus.resources, update). */
typedef struct container_resources {
    int64_t cpu_period, cpu_quota, cpu_shares, memory_limit, memory_swap, oom_score_adj;
    char *cpuset_cpus, *cpuset_mems;
} container_resources_t;

/* A container. Identity fields are fixed once it is in the store and are
 * read without a lock; the run state changes under `lock`; Start, Stop,
 * Remove and Update of one container are serialised by `op_lock`. */
typedef struct container {
    char *id;         /* 64 hex digits */
    char *name;       /* reserved: k8s_<name>_<pod name>_<namespace>_<uid>_<attempt> */
    char *sandbox_id; /* full pod id */
    char *meta_name;
    uint32_t attempt;
    char **labels;      /* key, value, ..., NULL */
    char **annotations; /* same */
    char *image_name;   /* ImageSpec.image reported: first repo tag, else as requested */
    char *image_user;   /* ImageSpec.user_specified_image */
    char *image_ref;    /* first repo digest, else the image id */
    char *image_id;     /* sha256:<config hex> */
    char **chain_ids;   /* the image's layers (kept from GC while the container exists) */
    char *runtime;      /* conf handler name */
    char *log_path;     /* absolute; "" = no log */
    int64_t created_at;
    int stop_signal; /* signal number */
    bool tty, stdin_open, stdin_once;
    container_mount_t *mounts;
    size_t n_mounts;
    uint32_t uid, gid;
    int64_t *gids; /* additional gids */
    size_t n_gids;
    char *spec_json; /* config.json text ("" when unknown) */
    bool creating;   /* loaded from a record of an unfinished create */

    pthread_mutex_t lock; /* behind it: the fields below */
    container_state_t state;
    pid_t pid;
    pid_t monitor_pid; /* from create (0 after a restart: found again from pid) */
    bool monitor_dead; /* its cricket-conmon died without an exit file */
    int64_t started_at, finished_at;
    int exit_code;
    char *reason, *message;
    container_resources_t resources;
    /* the writable layer's usage as last walked (stats.c cache) */
    int64_t usage_at; /* Unix ns of the walk; 0 = never */
    uint64_t usage_bytes, usage_inodes;
    /* the cgroup cpu counter at the last stats call (usage_nano_cores) */
    uint64_t cpu_sample_ns;
    int64_t cpu_sample_at; /* Unix ns; 0 = none yet */

    pthread_mutex_t op_lock;
    bool removed; /* behind op_lock */
    /* behind op_lock: the runtime's container deleted and the rootfs
     * unmounted after the exit (lifecycle.c), so Remove skips them; memory
     * only: after a restart Remove does them again (both idempotent) */
    bool released;
    bool release_queued; /* atomic: the background release was queued */
    /* held only across a write of the record by someone without op_lock
     * (an exit seen by the exit watcher) and across Remove's delete of it,
     * so an exit cannot write back a record Remove just deleted */
    pthread_mutex_t record_lock;
    bool forgotten; /* behind record_lock: the record is deleted */
    /* STARTED before STOPPED: a process that exits at once can be seen by
     * the exit watcher before StartContainer publishes STARTED; both sides
     * decide and publish under event_lock, and the exit side publishes
     * STARTED first when a start was under way (lifecycle.c) */
    pthread_mutex_t event_lock;
    bool start_begun;       /* behind event_lock: runc start was called */
    bool started_published; /* behind event_lock */
    int refs;               /* atomic */
} container_t;

/* A snapshot of the run state (strings malloc'd; container_status_clear). */
typedef struct container_status {
    container_state_t state;
    pid_t pid;
    int64_t started_at, finished_at;
    int exit_code;
    char *reason, *message;
} container_status_t;

container_t *container_new(void);
container_t *container_ref(container_t *c);
/* Drops a reference; frees on the last. Accepts NULL. */
void container_unref(container_t *c);
static inline void container_unrefp(container_t **c)
{
    container_unref(*c);
}
#define cleanup_container __attribute__((cleanup(container_unrefp)))

/* Looks up a container that must be running (ExecSync, ReopenContainerLog,
 * Exec, Attach): *ret gets a reference. ENOENT when unknown, EINVAL naming
 * it when it is not running (an exit file that arrived counts as not
 * running). */
int container_get_running(struct daemon *d, const char *id, container_t **ret, cri_error_t *err);

/* Reads the run state under c->lock into *ret. */
void container_get_status(container_t *c, container_status_t *ret);
void container_status_clear(container_status_t *st);
/* Sets EXITED with the given code and reason (message may be NULL). True
 * when c was not EXITED before (the caller then publishes STOPPED). */
bool container_set_exited(container_t *c, int64_t finished_at, int exit_code, const char *reason,
                          const char *message);

/* Value of label `key`, or NULL. */
const char *container_label(const container_t *c, const char *key);

/* The record (JSON text, malloc'd). `creating` marks an unfinished create. */
char *container_record_dump(container_t *c, bool creating);
/* Parses a record; EINVAL naming what is wrong. */
int container_record_parse(const char *json, size_t len, container_t **ret, bool *ret_creating,
                           cri_error_t *err);

/* ---- the store: every container in memory, persisted in STORE_CONTAINERS ---- */

typedef struct container_store container_store_t;

container_store_t *container_store_new(struct store *persist);
void container_store_free(container_store_t *s);
/* Adds c (the store takes a reference). EEXIST when the id is taken. */
int container_store_add(container_store_t *s, container_t *c, cri_error_t *err);
/* By full id or unique prefix; *ret gets a reference. EINVAL for an empty id
 * or ambiguous prefix, ENOENT when none matches. */
int container_store_get(container_store_t *s, const char *id, container_t **ret, cri_error_t *err);
void container_store_remove(container_store_t *s, container_t *c);
/* Snapshot of every container (one reference each); never fails. With
 * sandbox_id, only that pod's containers (full id). */
void container_store_list(container_store_t *s, const char *sandbox_id, container_t ***ret_list,
                          size_t *ret_n);
void container_list_free(container_t **list, size_t n);
/* Writes c's record; with `reserve` also reserves c->name in the same
 * transaction (EEXIST naming the holder) and marks the record creating. */
int container_store_persist(container_store_t *s, container_t *c, bool reserve, cri_error_t *err);
/* Deletes c's record and releases its name. Missing is success. */
int container_store_forget(container_store_t *s, container_t *c, cri_error_t *err);
/* Loads every record into memory (no host checks: container_recover does
 * those). Records marked creating are loaded too, with c->creating set for
 * container_recover; a record that does not parse is logged with its key
 * and the reason, and skipped. Needed before image GC. */
int container_store_load(container_store_t *s, size_t *ret_skipped, cri_error_t *err);
/* For image_store_set_in_use_fn: true when a container uses chain_id. */
bool container_layer_in_use(const char *chain_id, void *data);

/* ---- operations shared by the RPCs, the pod hooks and recovery ---- */

/* <root>/containers/<id> (upper, work, rootfs) and <runroot>/containers/<id>
 * (bundle). malloc'd. */
char *container_dir(const struct daemon *d, const char *id);
char *container_bundle_dir(const struct daemon *d, const char *id);
/* <root>/rootfs-userns/<id>: the rootfs mount point of a container whose
 * pod has its own user namespace. The pod's root must walk to it (runc
 * mounts the rootfs from inside the user namespace), so it lies outside the
 * 0700 <root>/containers: the dir is 0711 and what it holds is owned by the
 * pod's mapped ids, never by host root. */
char *container_userns_rootfs(const struct daemon *d, const char *id);

/* The process of an exec in c: c's own process object from its spec (user,
 * groups, env, cwd, capabilities, no_new_privs, seccomp, apparmor) with
 * args = cmd and `terminal` set, written to a new file in c's bundle for
 * `runtime exec --process`. *ret_path is malloc'd; the caller unlinks the
 * file when done. EIO when c has no process spec, EINVAL when cmd is not
 * UTF-8. (ExecSync and the streaming Exec.) */
int container_exec_process_file(struct daemon *d, container_t *c, char *const *cmd, size_t n_cmd,
                                bool terminal, char **ret_path, cri_error_t *err);

/* Shrinks the kept stdout/stderr lengths so together they fit budget bytes:
 * a stream under half the budget keeps all it has and the other gets the
 * rest; both over half get half each. Lengths that fit stay as they are. */
void container_exec_fit_reply(size_t budget, size_t *out_len, size_t *err_len);

/* Stops c: stop signal, then SIGKILL after timeout_s (0 = SIGKILL now);
 * returns once it has exited. Not running is success. Caller holds
 * c->op_lock. */
int container_stop_locked(struct daemon *d, container_t *c, int64_t timeout_s, cri_error_t *err);

/* StopContainer's last step: the runtime's delete and the rootfs unmount
 * of the exited c, in the request rather than in the background job the
 * exit queued, so a RemoveContainer right after (kubelet's order) finds
 * them done; containerd's StopContainer likewise returns after its shim
 * deleted the task. A failure is logged and left to Remove. Caller holds
 * c->op_lock. */
void container_release_stopped_locked(struct daemon *d, container_t *c);
/* Kills if running, deletes it from the runtime, unmounts and deletes its
 * dirs, exit file, record and name, and the memory entry. Caller holds
 * c->op_lock. */
int container_remove_locked(struct daemon *d, container_t *c, cri_error_t *err);

/* Stops (no grace) / removes every container of pod `sandbox_id`. */
int container_stop_pod(struct daemon *d, const char *sandbox_id, cri_error_t *err);
int container_remove_pod(struct daemon *d, const char *sandbox_id, cri_error_t *err);

/* Exit watcher: when id is a container, records its exit (idempotent). */
bool container_on_exit(struct daemon *d, const char *id, const struct conmon_exit *e);

/* The hub's snapshot function (events.h events_snapshot_fn, data = the
 * daemon): the packed ContainerEventResponse of one event, with the pod's
 * status and its containers' statuses as they are now (memory only). */
int container_events_snapshot(events_type_t type, const char *container_id, const char *sandbox_id,
                              int64_t created_at, void *data, void **ret_buf, size_t *ret_len);

/* Exit watcher: when id is a container, records that its monitor died
 * without an exit file: with the process still running, the container is
 * marked so that exec, attach, log reopen and start fail with EOWNERDEAD
 * (FAILED_PRECONDITION) while Stop still works; once the process has ended,
 * EXITED with reason CONTAINER_REASON_MONITOR_DIED. */
bool container_on_monitor_death(struct daemon *d, const char *id,
                                const struct exit_watcher_death *death);

/* Startup, once the exit watcher runs: watches the monitor of every
 * created or running container (found as the parent of its process; a
 * process whose monitor is gone is reported at once). */
void container_watch_monitors(struct daemon *d);

/* EOWNERDEAD naming c when its monitor died, else 0. */
int container_check_monitor(container_t *c, cri_error_t *err);

/* Startup: rolls back unfinished creates and reconciles every container
 * with the runtime's state and exit files. Per-container problems are
 * logged and skipped. */
int container_recover(struct daemon *d, size_t *ret_loaded, cri_error_t *err);

/* Signal name ("SIGTERM", "TERM", "15") to number; EINVAL when unknown. */
int container_signal_parse(const char *s, int *ret, cri_error_t *err);
/* CRI Signal enum <-> signal number (0 = unknown / RUNTIME_DEFAULT). */
int container_signal_from_cri(int cri);
int container_signal_to_cri(int signo);

#endif
