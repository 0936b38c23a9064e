/* The daemon state every handler works on.
 *
 * Settings are copied from the config at startup and never change while
 * serving, so handlers read them without a lock. The few mutable fields
 * sit behind `lock` and are reached through the functions below. */
#ifndef CRICKET_SERVER_DAEMON_H
#define CRICKET_SERVER_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cni/cni.h"
#include "common/error.h"
#include "conmon/conmon.h"
#include "oci/oci.h"

struct conf;
struct store;
struct image_store;
struct sandbox_store;
struct container_store;
struct exit_watcher;
struct streaming_server;
struct host_ops;

/* One runtime handler of the config, ready to run containers. */
typedef struct daemon_runtime {
    const char *name;         /* conf handler name */
    oci_runtime_t *oci;       /* runc ops with --root */
    conmon_config_t conmon;   /* monitors of this handler's containers */
    const char *root_args[3]; /* "--root", oci->root, NULL */
} daemon_runtime_t;

typedef struct daemon daemon_t;

/* The fields are for daemon.c, main.c, the status RPCs and the modules not
 * yet moved to the accessors below. server/sandbox/, server/container/ and
 * server/streaming/ are compiled with CRICKET_DAEMON_OPAQUE
 * (cricket_server_opaque_sources): for them daemon_t is opaque and the
 * accessors are all they see. */
#ifndef CRICKET_DAEMON_OPAQUE
struct daemon {
    /* fixed at startup */
    struct conf *conf;
    struct store *store;
    const char *root;         /* conf root, e.g. /var/lib/cricket */
    const char *runroot;      /* conf runroot, e.g. /run/cricket */
    const char *cni_conf_dir; /* network.conf_dir */
    char *cni_network;        /* network.default_network ("" = first); behind lock */
    bool cgroup_systemd;      /* runtime.cgroup_manager == systemd */
    char *config_json;        /* effective config as JSON; behind lock (SIGHUP changes it) */
    int64_t started_ns;
    int lock_fds[2]; /* flocks on the socket and on root */

    struct image_store *images; /* server/image: pulls, image records, layers */

    /* containers and pods, fixed at startup */
    oci_host_t host;
    char *rro_hook;       /* host.rro_hook's string (cricket-rro beside cricket-conmon) */
    struct {              /* the default runtime's `features`, asked on a thread */
        pthread_t thread; /* while startup recovers (daemon_features_wait) */
        bool running, rro;
        char *hook;
    } rro_probe;
    daemon_runtime_t *runtimes; /* one per runtime.handlers entry, same order */
    size_t n_runtimes;
    char *exit_dir;                     /* <runroot>/exits: monitors' exit files */
    char *conmon_dir;                   /* <runroot>/conmon: monitors' socket dirs */
    char *cni_cache_dir;                /* <root>/cni/results */
    cni_opts_t cni;                     /* plugin dirs, cache dir, per-plugin timeout */
    char *cni_marker;                   /* the plugins' CRICKET_CNI_OWNER (server/orphans.h) */
    cni_watch_t *cni_watch;             /* the config in use; NULL: scan on every use */
    struct sandbox_store *sandboxes;    /* server/sandbox */
    struct container_store *containers; /* server/container (loaded before image GC) */
    struct exit_watcher *exits;         /* started by main after recovery */
    struct streaming_server *streaming; /* server/streaming; set by main before serving */
    struct events_hub *events;          /* GetContainerEvents subscribers (server/events.h) */
    struct metrics *metrics;            /* Prometheus counters (server/metrics.h) */
    struct trash *trash;                /* <root>/trash, <runroot>/trash (server/trash.h) */
    struct pool *bg_pool;               /* exited containers' runtime delete (lifecycle.c) */

    /* what handlers run outside the process: the real tables (daemon_open);
     * handler unit tests put fakes here */
    const cni_ops_t *cni_ops;        /* CNI ADD/DEL/CHECK */
    const conmon_ops_t *conmon_ops;  /* monitors: create, exec, reopen, attach */
    const struct host_ops *host_ops; /* netns pins, shm and rootfs mounts */

    /* mutable, behind lock */
    pthread_mutex_t lock;
    char *pod_cidr;
};
#endif

/* On success takes ownership of conf (on failure the caller keeps it); prepares the directories
 * under root and runroot, takes the daemon locks (a second daemon on the same socket or root gets
 * EBUSY naming the holder's pid) and opens the state store. On failure nothing is left held. */
int daemon_open(daemon_t *d, struct conf *conf, cri_error_t *err);

/* Waits for the probe of recursive read-only mount support that daemon_open
 * started on a thread (the default runtime's `features` call runs while the
 * startup recovers) and applies it to the host facts. Call before serving;
 * a second call does nothing. */
void daemon_features_wait(daemon_t *d);

/* Releases locks, closes the store and frees the config. */
void daemon_close(daemon_t *d);

/* The runtime for a RuntimeClass handler name; "" = the default handler.
 * NULL when no such handler is configured. */
daemon_runtime_t *daemon_runtime(daemon_t *d, const char *handler);

/* The effective config as one line of JSON (Status verbose, SIGUSR1): a
 * malloc'd copy the caller frees. */
char *daemon_config_json(daemon_t *d);

/* SIGHUP: applies what can change while serving from conf, a freshly
 * loaded and validated config (log_level, image.registries,
 * image.insecure_registries, image.auth_file, network.default_network),
 * and logs every other changed key as needing a restart. Takes ownership
 * of conf. Returns how many keys were applied. */
int daemon_reload(daemon_t *d, struct conf *conf);

/* The pod CIDR from the last UpdateRuntimeConfig: a malloc'd copy the
 * caller frees, "" when none was given. */
char *daemon_pod_cidr(daemon_t *d);

/* Stores the pod CIDR (kubelet sends it when the node's PodCIDR changes). */
void daemon_set_pod_cidr(daemon_t *d, const char *cidr);

/* ---- what the sandbox, container and streaming modules see (fixed at startup, read
 * without a lock; strings and structs belong to the daemon) ---- */

struct sandbox_store *daemon_sandboxes(const daemon_t *d);
struct container_store *daemon_containers(const daemon_t *d);
struct image_store *daemon_images(const daemon_t *d);
/* The container event hub (server/events.h); NULL in unit tests. */
struct events_hub *daemon_events(const daemon_t *d);
/* The Prometheus counters (server/metrics.h); NULL in unit tests. */
struct metrics *daemon_metrics(const daemon_t *d);
/* The streaming server (NULL until main starts it, before serving). */
struct streaming_server *daemon_streaming(const daemon_t *d);
/* The effective config (conf.h). */
const struct conf *daemon_conf(const daemon_t *d);
/* conf root (e.g. /var/lib/cricket) and runroot (e.g. /run/cricket). */
const char *daemon_root(const daemon_t *d);
const char *daemon_runroot(const daemon_t *d);
/* What oci/ detected about the host (cgroup v2, ...). */
const oci_host_t *daemon_host(const daemon_t *d);

/* runtime.cdi_spec_dirs (NULL-terminated). */
char *const *daemon_cdi_spec_dirs(const daemon_t *d);
/* runtime.cgroup_manager is systemd. */
bool daemon_cgroup_systemd(const daemon_t *d);
/* CNI plugin dirs, result cache dir, per-plugin timeout. */
const cni_opts_t *daemon_cni(const daemon_t *d);
/* <runroot>/conmon: the monitors' socket dirs. */
const char *daemon_conmon_dir(const daemon_t *d);
/* The exit watcher (NULL until main starts it after recovery, and in unit
 * tests): exit_watcher_watch() every new monitor. */
struct exit_watcher *daemon_exits(const daemon_t *d);
/* The trash (server/trash.h): trees removed in the background. NULL in
 * unit tests (trash_put then removes at once). */
struct trash *daemon_trash(const daemon_t *d);
/* One worker, on demand: an exited container's runtime delete and rootfs
 * unmount, off the exit watcher (server/container/lifecycle.c). NULL in
 * unit tests (Remove then does them). */
struct pool *daemon_bg_pool(const daemon_t *d);
/* What runs outside the process, as ops tables (fakes in unit tests):
 * CNI plugins, monitors, and the host's netns pins and mounts. */
const cni_ops_t *daemon_cni_ops(const daemon_t *d);
const conmon_ops_t *daemon_conmon_ops(const daemon_t *d);
const struct host_ops *daemon_host_ops(const daemon_t *d);
/* <runroot>/exits/<id>, the exit file the monitor of `id` writes (malloc'd). */
char *daemon_exit_file(const daemon_t *d, const char *id);
/* <runroot>/exits, where the monitors write their exit files. */
const char *daemon_exit_dir(const daemon_t *d);
/* <runroot>/conmon/<id>, the socket dir of the monitor of `id` (malloc'd). */
char *daemon_monitor_dir(const daemon_t *d, const char *id);

/* The CNI config file in use now (malloc'd path), or ENOENT with the reason
 * there is none. */
int daemon_cni_config(daemon_t *d, char **ret_path, cri_error_t *err);

#endif
