#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "conf/conf.h"
#include "server/container/container.h"
#include "server/events.h"
#include "server/metrics.h"
#include "server/host_ops.h"
#include "server/rootfs.h"
#include "server/image/image.h"
#include "server/orphans.h"
#include "server/pool.h"
#include "server/sandbox/sandbox.h"
#include "server/store.h"
#include "server/testhooks.h"
#include "server/trash.h"

#define DAEMON_RUNTIME_TIMEOUT_MS 120000
#define DAEMON_CNI_TIMEOUT_MS 60000

/* Takes an exclusive flock on `path`, writing our pid into it. EBUSY with
 * the holder's pid when another daemon has it. */
static int lock_file(const char *path, const char *what, int *ret_fd, cri_error_t *err)
{
    cleanup_close int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return cri_error_make(err, errno, "open lock file `%s`", path);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK)
            return cri_error_make(err, errno, "lock `%s`", path);
        char buf[32] = {0};
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
        if (n > 0)
            buf[strcspn(buf, "\n")] = '\0';
        return cri_error_set(err, EBUSY, "another cricketd (pid %s) is using %s (lock `%s`)",
                             n > 0 && buf[0] ? buf : "unknown", what, path);
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        return cri_error_make(err, errno, "write lock file `%s`", path);
    *ret_fd = TAKE_FD(fd);
    return 0;
}

static const char *socket_path(const char *listen)
{
    if (str_has_prefix(listen, "unix://"))
        return listen + strlen("unix://");
    if (str_has_prefix(listen, "unix:"))
        return listen + strlen("unix:");
    return listen;
}

/* Directories under root and runroot that lead to container files, layers,
 * bundles and state. A container's rootfs may hold setuid files and device
 * nodes, so nobody but root may reach them (the Moby CVE-2021-41091 class):
 * each of these is 0700, and root/runroot themselves 0711 at most. Existing
 * installs are tightened here at every start. */
static const char *const root_private_dirs[] = {"meta",      "blobs", "layers", "containers",
                                                "sandboxes", "pause", "cni"};
static const char *const runroot_private_dirs[] = {"containers", "sandboxes", "netns", "exits",
                                                   "conmon"};

static int tighten_dir(const char *path, mode_t max_mode, cri_error_t *err)
{
    mode_t old = 0;
    if (mkdir_private(path, max_mode, &old, err) < 0)
        return -1;
    if (old & ~max_mode)
        log_info("tightened the mode of `%s` from %04o to %04o", path, (unsigned)old,
                 (unsigned)(old & max_mode));
    return 0;
}

static int tighten_subdirs(const char *base, const char *const *names, size_t n, cri_error_t *err)
{
    for (size_t i = 0; i < n; i++) {
        cleanup_free char *p = xasprintf("%s/%s", base, names[i]);
        if (tighten_dir(p, 0700, err) < 0)
            return -1;
    }
    return 0;
}

static int prepare_dirs(conf_t *conf, cri_error_t *err)
{
    const char *sock = socket_path(conf->listen);
    cleanup_free char *sock_dir = xstrdup(sock);
    char *slash = strrchr(sock_dir, '/');
    if (slash && slash != sock_dir)
        *slash = '\0';
    if (mkdir_p(sock_dir, 0711, err) < 0 || tighten_dir(conf->root, 0711, err) < 0 ||
        tighten_dir(conf->runroot, 0711, err) < 0)
        return -1;
    if (tighten_subdirs(conf->root, root_private_dirs,
                        sizeof(root_private_dirs) / sizeof(root_private_dirs[0]), err) < 0)
        return -1;
    return tighten_subdirs(conf->runroot, runroot_private_dirs,
                           sizeof(runroot_private_dirs) / sizeof(runroot_private_dirs[0]), err);
}

/* A runtime's state dir: the handler's root, else the runtime's own
 * default (/run/<binary name>, as runc and crun use). */
static char *runtime_root(const conf_handler_t *h, const char *path)
{
    if (h->root[0])
        return xstrdup(h->root);
    const char *base = strrchr(path, '/');
    return xasprintf("/run/%s", base ? base + 1 : path);
}

/* Recursive read-only mounts: through the default runtime's "rro" when it
 * knows it (runc >= 1.2), else through cricket-rro (beside cricket-conmon)
 * as a createContainer hook when the kernel has mount_setattr. Runs on its
 * own thread (a runtime call: ~20 ms of the startup otherwise) and writes
 * only d->rro_probe; daemon_features_wait applies it. */
static void *detect_rro(void *data)
{
    daemon_t *d = data;
    cri_error_t ferr = CRI_ERROR_INIT;
    bool rro = false;
    if (d->n_runtimes > 0 && oci_runtime_supports_rro(d->runtimes[0].oci, &rro, &ferr) < 0)
        log_debug("runtime features: %s", ferr.msg);
    d->rro_probe.rro = rro;
    if (rro || !oci_mount_setattr_supported())
        return NULL;
    cleanup_free char *dir = xstrdup(d->conf->runtime.conmon_path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    cleanup_free char *hook = xasprintf("%s/cricket-rro", dir);
    if (access(hook, X_OK) < 0) {
        log_warn("`%s` not found: recursive read-only mounts are refused", hook);
        return NULL;
    }
    d->rro_probe.hook = TAKE_PTR(hook);
    return NULL;
}

static void start_rro_probe(daemon_t *d)
{
    int r = pthread_create(&d->rro_probe.thread, NULL, detect_rro, d);
    if (r == 0) {
        d->rro_probe.running = true;
        return;
    }
    log_warn("runtime features thread: %s; asking in line", strerror(r));
    detect_rro(d);
}

void daemon_features_wait(daemon_t *d)
{
    if (d->rro_probe.running) {
        pthread_join(d->rro_probe.thread, NULL);
        d->rro_probe.running = false;
    }
    d->host.rro_supported = d->rro_probe.rro;
    if (d->rro_probe.hook) {
        free(d->rro_hook);
        d->rro_hook = TAKE_PTR(d->rro_probe.hook);
    }
    d->host.rro_hook = d->rro_hook;
}

static int open_runtimes(daemon_t *d, const conf_t *conf, cri_error_t *err)
{
    d->runtimes =
        xcalloc(conf->runtime.n_handlers ? conf->runtime.n_handlers : 1, sizeof(*d->runtimes));
    for (size_t i = 0; i < conf->runtime.n_handlers; i++) {
        const conf_handler_t *h = &conf->runtime.handlers[i];
        daemon_runtime_t *r = &d->runtimes[i];
        cleanup_free char *root = runtime_root(h, h->path);
        if (oci_runtime_new(h->path, root, DAEMON_RUNTIME_TIMEOUT_MS, &d->host, &r->oci, err) < 0)
            return cri_error_wrap(err, "runtime handler `%s`", h->name);
        d->n_runtimes++;
        r->name = h->name;
        r->root_args[0] = "--root";
        r->root_args[1] = r->oci->root;
        r->conmon.monitor_path = conf->runtime.conmon_path;
        r->conmon.runtime_path = r->oci->path;
        r->conmon.runtime_args = r->root_args;
        r->conmon.exit_dir = d->exit_dir;
        r->conmon.socket_dir = d->conmon_dir;
        r->conmon.monitor_log = getenv("CRICKET_MONITOR_LOG");
    }
    return 0;
}

/* A pod's Stop and Remove reach its containers through these: the sandbox
 * module does not know the container module (which depends on it). */
static int stop_pod_containers(void *data, const char *sandbox_id, cri_error_t *err)
{
    return container_stop_pod(data, sandbox_id, err);
}

static int remove_pod_containers(void *data, const char *sandbox_id, cri_error_t *err)
{
    return container_remove_pod(data, sandbox_id, err);
}

static const sandbox_container_hooks_t pod_container_hooks = {
    .stop = stop_pod_containers,
    .remove = remove_pod_containers,
};

/* Failpoints inside CNI ADD and DEL (test builds; nothing otherwise). */
static void cni_plugin_started(const char *command)
{
    if (strcmp(command, "ADD") == 0)
        testhook_failpoint("cni.add.plugin_running");
    else if (strcmp(command, "DEL") == 0)
        testhook_failpoint("cni.del.plugin_running");
}

/* Runtimes, monitor dirs, CNI options and the sandbox store. */
static int open_pod_runtime(daemon_t *d, conf_t *conf, cri_error_t *err)
{
    oci_host_detect(&d->host);
    /* the layer store's filesystem (layers/ may not exist yet) */
    d->host.userns_supported = rootfs_idmap_supported(conf->root);
    cleanup_free char *blocker = NULL;
    if (d->host.userns_supported && !rootfs_path_walkable(conf->root, &blocker)) {
        log_warn("pod user namespaces are off: `%s` (on the way to root `%s`) does not let "
                 "others through, so a pod's mapped root cannot reach its rootfs",
                 blocker, conf->root);
        d->host.userns_supported = false;
    }
    d->exit_dir = xasprintf("%s/exits", conf->runroot);
    d->conmon_dir = xasprintf("%s/conmon", conf->runroot);
    d->cni_cache_dir = xasprintf("%s/cni/results", conf->root);
    if (mkdir_p(d->exit_dir, 0700, err) < 0 || mkdir_p(d->conmon_dir, 0700, err) < 0 ||
        mkdir_p(d->cni_cache_dir, 0700, err) < 0)
        return -1;
    uint64_t timeout = conf->network.plugin_timeout_ms;
    d->cni.plugin_dirs = conf->network.plugin_dirs;
    d->cni.cache_dir = d->cni_cache_dir;
    d->cni.timeout_ms = timeout > 0 && timeout < 3600000 ? (int)timeout : DAEMON_CNI_TIMEOUT_MS;
    d->cni_marker = orphans_cni_marker(conf->root);
    d->cni.marker_env = d->cni_marker;
    d->cni.plugin_started = cni_plugin_started;
    if (cni_cache_sweep(&d->cni, err) < 0)
        return -1;
    if (open_runtimes(d, conf, err) < 0)
        return -1;
    start_rro_probe(d);
    d->sandboxes = sandbox_store_new(d->store);
    sandbox_store_set_container_hooks(d->sandboxes, &pod_container_hooks, d);
    /* without a watch (the dir cannot be made or watched) every reader
     * scans the dir instead: slower, same answers */
    cri_error_t werr = CRI_ERROR_INIT;
    if (cni_watch_start(conf->network.conf_dir, conf->network.default_network, &d->cni_watch,
                        &werr) < 0)
        log_warn("%s, scanning it on every use instead", werr.msg);
    return 0;
}

int daemon_cni_config(daemon_t *d, char **ret_path, cri_error_t *err)
{
    if (d->cni_watch)
        return cni_watch_current(d->cni_watch, ret_path, NULL, err);
    pthread_mutex_lock(&d->lock);
    cleanup_free char *name = xstrdup(d->cni_network);
    pthread_mutex_unlock(&d->lock);
    return cni_find_config(d->cni_conf_dir, name, ret_path, NULL, err);
}

static void close_pod_runtime(daemon_t *d)
{
    cni_watch_stop(d->cni_watch);
    d->cni_watch = NULL;
    sandbox_store_free(d->sandboxes);
    d->sandboxes = NULL;
    for (size_t i = 0; i < d->n_runtimes; i++)
        oci_runtime_free(d->runtimes[i].oci);
    free(d->runtimes);
    d->runtimes = NULL;
    d->n_runtimes = 0;
    free(d->exit_dir);
    free(d->rro_hook);
    free(d->conmon_dir);
    free(d->cni_cache_dir);
    free(d->cni_marker);
    d->cni_marker = NULL;
    d->exit_dir = d->conmon_dir = d->cni_cache_dir = NULL;
}

static void daemon_release(daemon_t *d)
{
    daemon_features_wait(d); /* its thread uses the runtimes */
    pool_free(d->bg_pool);   /* its jobs use the runtimes and containers */
    d->bg_pool = NULL;
    free(d->rro_probe.hook);
    d->rro_probe.hook = NULL;
    close_pod_runtime(d);
    for (int i = 0; i < 2; i++) {
        if (d->lock_fds[i] >= 0)
            close(d->lock_fds[i]);
        d->lock_fds[i] = -1;
    }
    image_store_close(d->images);
    d->images = NULL;
    trash_close(d->trash); /* after the image store, which puts into it */
    d->trash = NULL;
    container_store_free(d->containers);
    d->containers = NULL;
    events_hub_free(d->events); /* rpc_server_stop ended every subscriber */
    d->events = NULL;
    metrics_free(d->metrics);
    d->metrics = NULL;
    store_close(d->store);
    d->store = NULL;
}

/* Directories, locks and the store: everything daemon_open can fail on. */
static int daemon_acquire(daemon_t *d, conf_t *conf, cri_error_t *err)
{
    d->config_json = conf_to_json(conf);
    if (prepare_dirs(conf, err) < 0)
        return -1;

    const char *sock = socket_path(conf->listen);
    cleanup_free char *sock_lock = xasprintf("%s.lock", sock);
    cleanup_free char *sock_what = xasprintf("socket `%s`", sock);
    if (lock_file(sock_lock, sock_what, &d->lock_fds[0], err) < 0)
        return -1;
    cleanup_free char *root_lock = xasprintf("%s/cricketd.lock", conf->root);
    cleanup_free char *root_what = xasprintf("root `%s`", conf->root);
    if (lock_file(root_lock, root_what, &d->lock_fds[1], err) < 0)
        return -1;

    cleanup_free char *meta = xasprintf("%s/meta", conf->root);
    if (store_open(meta, &d->store, err) < 0)
        return -1;
    cleanup_free char *trash_root = xasprintf("%s/trash", conf->root);
    cleanup_free char *trash_run = xasprintf("%s/trash", conf->runroot);
    const char *trash_dirs[] = {trash_root, trash_run};
    if (trash_open(trash_dirs, 2, &d->trash, err) < 0)
        return -1;
    if (image_store_open(conf, d->store, &d->images, err) < 0)
        return -1;
    image_store_set_trash(d->images, d->trash);
    /* container records first: GC must keep the layers containers use */
    d->containers = container_store_new(d->store);
    d->bg_pool = pool_new(1, 4096, 1000);
    if (container_store_load(d->containers, NULL, err) < 0)
        return -1;
    image_store_set_in_use_fn(d->images, container_layer_in_use, d->containers);
    d->events = events_hub_new(conf->events.queue_length);
    d->metrics = metrics_new();
    events_hub_set_snapshot(d->events, container_events_snapshot, d);
    if (image_store_gc(d->images, err) < 0)
        return -1;
    return open_pod_runtime(d, conf, err);
}

int daemon_open(daemon_t *d, conf_t *conf, cri_error_t *err)
{
    memset(d, 0, sizeof(*d));
    d->lock_fds[0] = d->lock_fds[1] = -1;
    d->conf = conf;
    d->root = conf->root;
    d->runroot = conf->runroot;
    d->cni_conf_dir = conf->network.conf_dir;
    d->cni_network = xstrdup(conf->network.default_network);
    d->cgroup_systemd = strcmp(conf->runtime.cgroup_manager, "systemd") == 0;
    d->started_ns = now_unix_ns();
    d->pod_cidr = xstrdup("");
    d->cni_ops = &cni_plugin_ops;
    d->conmon_ops = &conmon_monitor_ops;
    d->host_ops = &host_real_ops;
    pthread_mutex_init(&d->lock, NULL);

    if (daemon_acquire(d, conf, err) == 0)
        return 0;
    d->conf = NULL; /* the caller still owns conf on failure */
    daemon_close(d);
    return -1;
}

void daemon_close(daemon_t *d)
{
    daemon_release(d);
    conf_free(d->conf);
    free(d->config_json);
    free(d->cni_network);
    free(d->pod_cidr);
    pthread_mutex_destroy(&d->lock);
    memset(d, 0, sizeof(*d));
}

daemon_runtime_t *daemon_runtime(daemon_t *d, const char *handler)
{
    const char *name = handler && handler[0] ? handler : d->conf->runtime.default_handler;
    for (size_t i = 0; i < d->n_runtimes; i++)
        if (strcmp(d->runtimes[i].name, name) == 0)
            return &d->runtimes[i];
    return NULL;
}

char *daemon_config_json(daemon_t *d)
{
    pthread_mutex_lock(&d->lock);
    char *s = xstrdup(d->config_json);
    pthread_mutex_unlock(&d->lock);
    return s;
}

char *daemon_pod_cidr(daemon_t *d)
{
    pthread_mutex_lock(&d->lock);
    char *s = xstrdup(d->pod_cidr);
    pthread_mutex_unlock(&d->lock);
    return s;
}

void daemon_set_pod_cidr(daemon_t *d, const char *cidr)
{
    char *copy = xstrdup(cidr);
    pthread_mutex_lock(&d->lock);
    free(d->pod_cidr);
    d->pod_cidr = copy;
    pthread_mutex_unlock(&d->lock);
}

struct sandbox_store *daemon_sandboxes(const daemon_t *d)
{
    return d->sandboxes;
}

struct container_store *daemon_containers(const daemon_t *d)
{
    return d->containers;
}

struct metrics *daemon_metrics(const daemon_t *d)
{
    return d->metrics;
}

struct events_hub *daemon_events(const daemon_t *d)
{
    return d->events;
}

struct image_store *daemon_images(const daemon_t *d)
{
    return d->images;
}

struct streaming_server *daemon_streaming(const daemon_t *d)
{
    return d->streaming;
}

const conf_t *daemon_conf(const daemon_t *d)
{
    return d->conf;
}

const char *daemon_root(const daemon_t *d)
{
    return d->root;
}

const char *daemon_runroot(const daemon_t *d)
{
    return d->runroot;
}

char *const *daemon_cdi_spec_dirs(const daemon_t *d)
{
    return d->conf->runtime.cdi_spec_dirs;
}

const oci_host_t *daemon_host(const daemon_t *d)
{
    return &d->host;
}

bool daemon_cgroup_systemd(const daemon_t *d)
{
    return d->cgroup_systemd;
}

const cni_opts_t *daemon_cni(const daemon_t *d)
{
    return &d->cni;
}

const char *daemon_conmon_dir(const daemon_t *d)
{
    return d->conmon_dir;
}

struct exit_watcher *daemon_exits(const daemon_t *d)
{
    return d->exits;
}

struct trash *daemon_trash(const daemon_t *d)
{
    return d->trash;
}

struct pool *daemon_bg_pool(const daemon_t *d)
{
    return d->bg_pool;
}

const cni_ops_t *daemon_cni_ops(const daemon_t *d)
{
    return d->cni_ops;
}

const conmon_ops_t *daemon_conmon_ops(const daemon_t *d)
{
    return d->conmon_ops;
}

const struct host_ops *daemon_host_ops(const daemon_t *d)
{
    return d->host_ops;
}

char *daemon_exit_file(const daemon_t *d, const char *id)
{
    return xasprintf("%s/%s", d->exit_dir, id);
}

const char *daemon_exit_dir(const daemon_t *d)
{
    return d->exit_dir;
}

char *daemon_monitor_dir(const daemon_t *d, const char *id)
{
    return xasprintf("%s/%s", d->conmon_dir, id);
}
