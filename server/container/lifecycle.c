/* What Stop, Remove, the pod hooks and the exit watcher share: waiting for
 * exits, killing, and taking a container's host state apart. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "conmon/conmon.h"
#include "server/testhooks.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/events.h"
#include "server/metrics.h"
#include "server/exits.h"
#include "server/host_ops.h"
#include "server/pool.h"
#include "server/rootfs.h"
#include "server/trash.h"

char *container_dir(const daemon_t *d, const char *id)
{
    return xasprintf("%s/containers/%s", daemon_root(d), id);
}

char *container_userns_rootfs(const daemon_t *d, const char *id)
{
    return xasprintf("%s/rootfs-userns/%s", daemon_root(d), id);
}

char *container_bundle_dir(const daemon_t *d, const char *id)
{
    return xasprintf("%s/containers/%s", daemon_runroot(d), id);
}

static const char *exit_reason(const conmon_exit_t *e)
{
    if (e->oom_killed)
        return "OOMKilled";
    return e->exit_code == 0 ? "Completed" : "Error";
}

void container_mark_exited(daemon_t *d, container_t *c, int64_t finished_at, int exit_code,
                           const char *reason, const char *message)
{
    pthread_mutex_lock(&c->event_lock);
    if (container_set_exited(c, finished_at, exit_code, reason, message)) {
        /* an exit that beat StartContainer's own STARTED */
        if (c->start_begun && !c->started_published) {
            events_publish(daemon_events(d), EVENTS_CONTAINER_STARTED, c->id, c->sandbox_id);
            c->started_published = true;
        }
        events_publish(daemon_events(d), EVENTS_CONTAINER_STOPPED, c->id, c->sandbox_id);
    }
    pthread_mutex_unlock(&c->event_lock);
}

int container_record_write(daemon_t *d, container_t *c, cri_error_t *err)
{
    /* dump and write in one go under record_lock, so two writers (an RPC
     * and the exit watcher) cannot land an older state last; never under
     * op_lock alone: its holder may be waiting for this very exit (Stop) */
    pthread_mutex_lock(&c->record_lock);
    int rc = c->forgotten ? 0 : container_store_persist(daemon_containers(d), c, false, err);
    pthread_mutex_unlock(&c->record_lock);
    return rc;
}

void container_persist_exit(daemon_t *d, container_t *c)
{
    cri_error_t err = CRI_ERROR_INIT;
    if (container_record_write(d, c, &err) < 0)
        log_warn("record the exit of container `%s`: %s, ignoring", c->id, err.msg);
}

static bool is_exited(container_t *c)
{
    pthread_mutex_lock(&c->lock);
    bool exited = c->state == CONTAINER_STATE_EXITED;
    pthread_mutex_unlock(&c->lock);
    return exited;
}

/* Deletes c from the runtime and unmounts its rootfs mount points, unless
 * done since its exit (at_exit: the background job, else Remove; each has
 * its failpoint after the delete). Caller holds c->op_lock. */
static int release_locked(daemon_t *d, container_t *c, bool at_exit, cri_error_t *err)
{
    daemon_runtime_t *rt = daemon_runtime(d, c->runtime);
    cri_error_t derr = CRI_ERROR_INIT;
    if (!c->released && rt && oci_runtime_delete(rt->oci, c->id, true, &derr) < 0 &&
        derr.status != ENOENT) {
        *err = derr;
        return cri_error_wrap(err, "delete container `%s`", c->id);
    }
    if (at_exit)
        testhook_failpoint("exit.after_runtime_delete");
    else
        testhook_failpoint("remove.after_runc_delete");
    if (c->released)
        return 0;
    cleanup_free char *dir = container_dir(d, c->id);
    cleanup_free char *rootfs = xasprintf("%s/rootfs", dir);
    cleanup_free char *userns_rootfs = container_userns_rootfs(d, c->id);
    if (daemon_host_ops(d)->rootfs_unmount(rootfs, err) < 0 ||
        daemon_host_ops(d)->rootfs_unmount(userns_rootfs, err) < 0)
        return -1;
    c->released = true;
    return 0;
}

typedef struct release_job {
    daemon_t *d;
    container_t *c;
} release_job_t;

/* What containerd's shim does when a task exits: the runtime's delete
 * (runc delete, ~10 ms of a Go binary) and the rootfs unmount (the kernel
 * syncs the upper fs) right after the exit, so RemoveContainer only drops
 * files and the record. Under op_lock, as Start, Stop and Remove. */
static void release_job(void *arg)
{
    release_job_t *j = arg;
    container_t *c = j->c;
    pthread_mutex_lock(&c->op_lock);
    cri_error_t err = CRI_ERROR_INIT;
    if (!c->removed && is_exited(c) && release_locked(j->d, c, true, &err) < 0)
        log_info("container `%s` exited: %s; RemoveContainer retries", c->id, err.msg);
    pthread_mutex_unlock(&c->op_lock);
    container_unref(c);
    free(j);
}

void container_release_stopped_locked(daemon_t *d, container_t *c)
{
    cri_error_t err = CRI_ERROR_INIT;
    if (!c->removed && is_exited(c) && release_locked(d, c, true, &err) < 0)
        log_info("container `%s` stopped: %s; RemoveContainer retries", c->id, err.msg);
}

/* Queues release_job once per container; a full queue leaves it to Remove. */
static void queue_release(daemon_t *d, container_t *c)
{
    pool_t *pool = daemon_bg_pool(d);
    if (!pool || __atomic_exchange_n(&c->release_queued, true, __ATOMIC_ACQ_REL))
        return;
    release_job_t *j = xcalloc(1, sizeof(*j));
    j->d = d;
    j->c = container_ref(c);
    if (pool_submit(pool, release_job, j) < 0) {
        container_unref(c);
        free(j);
    }
}

static void record_exit(daemon_t *d, container_t *c, const conmon_exit_t *e)
{
    container_status_t st;
    container_get_status(c, &st);
    bool done = st.state == CONTAINER_STATE_EXITED;
    container_status_clear(&st);
    if (done)
        return;
    if (e->oom_killed)
        metrics_oom_kill(daemon_metrics(d));
    container_mark_exited(d, c, e->finished_at, e->exit_code, exit_reason(e), NULL);
    container_persist_exit(d, c);
    queue_release(d, c);
}

bool container_check_exit_file(daemon_t *d, container_t *c)
{
    cleanup_free char *path = daemon_exit_file(d, c->id);
    conmon_exit_t e;
    cri_error_t ignore = CRI_ERROR_INIT;
    if (conmon_exit_read(path, &e, &ignore) < 0)
        return false;
    record_exit(d, c, &e);
    return true;
}

bool container_on_exit(daemon_t *d, const char *id, const conmon_exit_t *e)
{
    cleanup_container container_t *c = NULL;
    cri_error_t ignore = CRI_ERROR_INIT;
    if (!daemon_containers(d) || container_store_get(daemon_containers(d), id, &c, &ignore) < 0 ||
        strcmp(c->id, id) != 0)
        return false;
    record_exit(d, c, e);
    return true;
}

bool container_wait_exit(daemon_t *d, container_t *c, int timeout_ms)
{
    const struct timespec tick = {0, 5L * 1000 * 1000};
    for (int waited = 0;; waited += 5) {
        /* EXITED without an exit file: the exit watcher saw the process of
         * a container whose monitor died end (monitor.c) */
        if (container_check_exit_file(d, c) || is_exited(c))
            return true;
        if (waited >= timeout_ms)
            return false;
        nanosleep(&tick, NULL);
    }
}

/* Whether the runtime still has a live process for c. */
static bool runtime_alive(daemon_runtime_t *rt, container_t *c)
{
    oci_state_t st;
    cri_error_t ignore = CRI_ERROR_INIT;
    if (oci_runtime_state(rt->oci, c->id, &st, &ignore) < 0)
        return false;
    return st.status == OCI_STATUS_RUNNING || st.status == OCI_STATUS_CREATED ||
           st.status == OCI_STATUS_PAUSED;
}

/* Sends signo; "not running" answers are fine (it exited meanwhile). */
static int send_signal(daemon_runtime_t *rt, container_t *c, int signo, cri_error_t *err)
{
    cri_error_t kerr = CRI_ERROR_INIT;
    if (oci_runtime_kill(rt->oci, c->id, signo, signo == SIGKILL, &kerr) == 0 ||
        !runtime_alive(rt, c))
        return 0;
    *err = kerr;
    return cri_error_wrap(err, "signal %d", signo);
}

/* The stop signal, then up to timeout_ms for the exit. A signal the
 * kernel dropped (stop_signal.c) is sent again, once, when the process
 * has installed a handler for it. */
static int stop_gracefully(daemon_t *d, daemon_runtime_t *rt, container_t *c, int timeout_ms,
                           cri_error_t *err)
{
    pthread_mutex_lock(&c->lock);
    pid_t pid = c->pid;
    pthread_mutex_unlock(&c->lock);
    int sig = c->stop_signal;
    container_sig_fate_t before = container_sig_fate(pid, sig);
    if (send_signal(rt, c, sig, err) < 0)
        return -1;
    bool dropped =
        before == CONTAINER_SIG_DROPPED && container_sig_fate(pid, sig) == CONTAINER_SIG_DROPPED;
    const int slice = 50;
    for (int waited = 0; dropped && waited < timeout_ms; waited += slice) {
        if (container_wait_exit(d, c, slice))
            return 0;
        if (container_sig_fate(pid, sig) == CONTAINER_SIG_DELIVERED) {
            log_info("container `%s`: signal %d was dropped (no handler yet), sending it again",
                     c->id, sig);
            if (send_signal(rt, c, sig, err) < 0)
                return -1;
            container_wait_exit(d, c, timeout_ms - waited - slice);
            return 0;
        }
    }
    if (!dropped)
        container_wait_exit(d, c, timeout_ms);
    return 0;
}

static int stop_locked(daemon_t *d, container_t *c, int64_t timeout_s, cri_error_t *err)
{
    container_status_t st;
    container_get_status(c, &st);
    container_state_t state = st.state;
    container_status_clear(&st);
    if (c->removed || state == CONTAINER_STATE_EXITED || container_check_exit_file(d, c))
        return 0;
    daemon_runtime_t *rt = daemon_runtime(d, c->runtime);
    if (!rt)
        return cri_error_set(err, EINVAL, "runtime handler `%s` is not configured", c->runtime);
    if (state == CONTAINER_STATE_CREATED || !runtime_alive(rt, c)) {
        /* never started (or already gone): nothing to wait for but the
         * monitor, which writes an exit file once runc's init dies */
        if (runtime_alive(rt, c) && send_signal(rt, c, SIGKILL, err) < 0)
            return -1;
        if (!container_wait_exit(d, c, CONTAINER_KILL_WAIT_MS))
            container_mark_exited(d, c, now_unix_ns(), 255, "Unknown", "no exit status");
        return 0;
    }
    if (timeout_s > 0 && c->stop_signal != SIGKILL) {
        int64_t ms = timeout_s > 86400 ? 86400000 : timeout_s * 1000;
        if (stop_gracefully(d, rt, c, (int)ms, err) < 0)
            return -1;
        if (is_exited(c))
            return 0;
    }
    if (send_signal(rt, c, SIGKILL, err) < 0)
        return -1;
    testhook_failpoint("stop.after_kill");
    if (!container_wait_exit(d, c, CONTAINER_KILL_WAIT_MS))
        return cri_error_set(err, ETIMEDOUT, "container `%s` did not exit %d ms after SIGKILL",
                             c->id, CONTAINER_KILL_WAIT_MS);
    testhook_failpoint("stop.after_exit");
    return 0;
}

int container_stop_locked(daemon_t *d, container_t *c, int64_t timeout_s, cri_error_t *err)
{
    bool was_exited = is_exited(c);
    if (stop_locked(d, c, timeout_s, err) < 0)
        return -1;
    if (was_exited || c->removed)
        return 0; /* nothing new to write */
    /* the exit as Stop saw it (also one Stop decided itself, such as
     * "no exit status"), so it survives a restart and a reboot */
    cri_error_t perr = CRI_ERROR_INIT;
    if (container_record_write(d, c, &perr) < 0)
        log_warn("record the exit of container `%s`: %s, ignoring", c->id, perr.msg);
    return 0;
}

int container_remove_dirs(daemon_t *d, container_t *c, cri_error_t *err)
{
    cleanup_free char *dir = container_dir(d, c->id);
    cleanup_free char *bundle = container_bundle_dir(d, c->id);
    cleanup_free char *mon = daemon_monitor_dir(d, c->id);
    cleanup_free char *exit_file = daemon_exit_file(d, c->id);
    cleanup_free char *userns_rootfs = container_userns_rootfs(d, c->id);
    /* every path is tried; the first failure is what the caller hears.
     * Each tree is renamed into the trash, deleted in the background. */
    cri_error_t first = CRI_ERROR_INIT, e = CRI_ERROR_INIT;
    const char *trees[] = {dir, bundle, mon, userns_rootfs};
    for (size_t i = 0; i < sizeof(trees) / sizeof(trees[0]); i++) {
        if (trash_put(daemon_trash(d), trees[i], &e) < 0 && !first.status)
            first = e;
        cri_error_clear(&e);
    }
    if (unlink(exit_file) < 0 && errno != ENOENT && !first.status)
        cri_error_make(&first, errno, "remove exit file `%s`", exit_file);
    if (!first.status)
        return 0;
    *err = first;
    return -1;
}

int container_cleanup_host(daemon_t *d, container_t *c, cri_error_t *err)
{
    cri_error_t first = CRI_ERROR_INIT, e = CRI_ERROR_INIT;
    bool failed = false;
    daemon_runtime_t *rt = daemon_runtime(d, c->runtime);
    oci_state_t st;
    if (rt && oci_runtime_state(rt->oci, c->id, &st, &e) == 0) {
        /* its monitor writes the exit file once it dies: wait for that,
         * or the file would come back after the dirs went */
        if (oci_runtime_kill(rt->oci, c->id, SIGKILL, false, &e) == 0)
            container_wait_exit(d, c, CONTAINER_KILL_WAIT_MS);
        failed = oci_runtime_delete(rt->oci, c->id, true, &first) < 0 && first.status != ENOENT;
    }
    cleanup_free char *dir = container_dir(d, c->id);
    cleanup_free char *rootfs = xasprintf("%s/rootfs", dir);
    cleanup_free char *userns_rootfs = container_userns_rootfs(d, c->id);
    if (daemon_host_ops(d)->rootfs_unmount(rootfs, failed ? &e : &first) < 0)
        failed = true;
    if (daemon_host_ops(d)->rootfs_unmount(userns_rootfs, failed ? &e : &first) < 0)
        failed = true;
    if (container_image_volumes_unmount(d, c->id, failed ? &e : &first) < 0)
        failed = true;
    if (container_remove_dirs(d, c, failed ? &e : &first) < 0)
        failed = true;
    if (!failed)
        return 0;
    *err = first;
    return -1;
}

int container_remove_locked(daemon_t *d, container_t *c, cri_error_t *err)
{
    if (c->removed)
        return 0;
    if (container_stop_locked(d, c, 0, err) < 0)
        return cri_error_wrap(err, "kill container `%s`", c->id);
    /* the runtime delete and rootfs unmount may have run at the exit */
    if (release_locked(d, c, false, err) < 0 || container_image_volumes_unmount(d, c->id, err) < 0)
        return -1;
    testhook_failpoint("remove.after_unmount");
    /* a tree that cannot go keeps the record, so a later Remove or the next
     * start retries instead of forgetting the disk it holds */
    if (container_remove_dirs(d, c, err) < 0)
        return cri_error_wrap(err, "remove files of container `%s`", c->id);
    testhook_failpoint("remove.after_dirs");
    pthread_mutex_lock(&c->record_lock);
    int rc = container_store_forget(daemon_containers(d), c, err);
    c->forgotten = rc == 0;
    pthread_mutex_unlock(&c->record_lock);
    if (rc < 0)
        return -1;
    exit_watcher_unwatch(daemon_exits(d), c->id);
    c->removed = true;
    container_store_remove(daemon_containers(d), c);
    events_publish(daemon_events(d), EVENTS_CONTAINER_DELETED, c->id, c->sandbox_id);
    return 0;
}

typedef int (*pod_op_fn)(daemon_t *d, container_t *c, cri_error_t *err);

static int pod_stop_one(daemon_t *d, container_t *c, cri_error_t *err)
{
    return container_stop_locked(d, c, 0, err);
}

static int for_each_of_pod(daemon_t *d, const char *sandbox_id, pod_op_fn fn, cri_error_t *err)
{
    if (!daemon_containers(d))
        return 0;
    container_t **list = NULL;
    size_t n = 0;
    container_store_list(daemon_containers(d), sandbox_id, &list, &n);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        pthread_mutex_lock(&list[i]->op_lock);
        rc = fn(d, list[i], err);
        pthread_mutex_unlock(&list[i]->op_lock);
        if (rc < 0)
            cri_error_wrap(err, "container `%s`", list[i]->id);
    }
    container_list_free(list, n);
    return rc;
}

int container_stop_pod(daemon_t *d, const char *sandbox_id, cri_error_t *err)
{
    return for_each_of_pod(d, sandbox_id, pod_stop_one, err);
}

int container_remove_pod(daemon_t *d, const char *sandbox_id, cri_error_t *err)
{
    return for_each_of_pod(d, sandbox_id, container_remove_locked, err);
}

int container_get_running(daemon_t *d, const char *id, container_t **ret, cri_error_t *err)
{
    cleanup_container container_t *c = NULL;
    if (container_store_get(daemon_containers(d), id, &c, err) < 0)
        return -1;
    container_status_t st;
    container_get_status(c, &st);
    bool running = st.state == CONTAINER_STATE_RUNNING;
    container_status_clear(&st);
    if (!running || container_check_exit_file(d, c))
        return cri_error_set(err, EINVAL, "container `%s` is not running", c->id);
    if (container_check_monitor(c, err) < 0)
        return -1;
    *ret = TAKE_PTR(c);
    return 0;
}
