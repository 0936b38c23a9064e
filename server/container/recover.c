/* Startup recovery of containers. container_store_load() (called by
 * daemon_open before image GC, so the layers containers use are kept) put
 * every record in memory; here each is reconciled with the host:
 * - a create that never finished is rolled back and forgotten;
 * - an exit file gives the real exit (also for exits while the daemon was
 *   down);
 * - a RUNNING record whose process still runs under its live monitor
 *   (exit_watcher_live_monitor) stays RUNNING: no runtime call;
 * - else (the monitors are silent) the runtime's state, asked for all such
 *   containers at once on a few threads: running/created stay so (with the
 *   pid); stopped waits a moment for the monitor's exit file, else the
 *   monitor died (EXITED 255, reason ContainerMonitorDied); unknown to the
 *   runtime (a reboot) is EXITED with code 255, reason Unknown.
 * Nothing is remounted: a rootfs mount that survived is still in use, and
 * one that did not belongs to a container that can no longer run. */
#include <errno.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/exits.h"
#include "server/pool.h"

#define RECOVER_SPEC_MAX ((size_t)4 * 1024 * 1024)
#define RECOVER_EXIT_WAIT_MS 1000
/* runtime calls at once for the containers the monitors are silent about */
#define RECOVER_WORKERS 8

static void load_spec(daemon_t *d, container_t *c)
{
    cleanup_free char *bundle = container_bundle_dir(d, c->id);
    cleanup_free char *path = xasprintf("%s/config.json", bundle);
    char *text = NULL;
    cri_error_t ignore = CRI_ERROR_INIT;
    if (read_file(path, RECOVER_SPEC_MAX, &text, NULL, &ignore) == 0) {
        free(c->spec_json);
        c->spec_json = text;
    }
}

/* What the exit file and the monitor say, without the runtime: true when
 * c is settled (exited, or RUNNING under its live monitor). */
static bool reconcile_quick(daemon_t *d, container_t *c)
{
    if (container_check_exit_file(d, c))
        return true;
    pthread_mutex_lock(&c->lock);
    container_state_t state = c->state;
    pid_t pid = c->pid;
    pthread_mutex_unlock(&c->lock);
    if (state == CONTAINER_STATE_EXITED)
        return true;
    /* CREATED: a start may have run after the record was written; only
     * the runtime knows whether it did */
    if (state != CONTAINER_STATE_RUNNING || pid <= 0)
        return false;
    pid_t monitor = exit_watcher_live_monitor(pid, c->id, daemon_exit_dir(d));
    if (monitor <= 0)
        return false;
    pthread_mutex_lock(&c->lock);
    c->monitor_pid = monitor;
    pthread_mutex_unlock(&c->lock);
    return true;
}

/* The monitors are silent about c: ask the runtime. */
static void reconcile_runtime(daemon_t *d, container_t *c)
{
    daemon_runtime_t *rt = daemon_runtime(d, c->runtime);
    oci_state_t os;
    cri_error_t serr = CRI_ERROR_INIT;
    if (rt && oci_runtime_state(rt->oci, c->id, &os, &serr) == 0) {
        if (os.status == OCI_STATUS_RUNNING || os.status == OCI_STATUS_PAUSED ||
            os.status == OCI_STATUS_CREATED) {
            pthread_mutex_lock(&c->lock);
            c->pid = os.pid;
            if (os.status != OCI_STATUS_CREATED)
                c->state = CONTAINER_STATE_RUNNING;
            pthread_mutex_unlock(&c->lock);
            return;
        }
        if (container_wait_exit(d, c, RECOVER_EXIT_WAIT_MS))
            return;
        /* the runtime saw it end, but no monitor wrote the exit file */
        container_mark_exited(d, c, now_unix_ns(), 255, CONTAINER_REASON_MONITOR_DIED,
                              "the container's monitor (cricket-conmon) died before the "
                              "container; its exit status is lost");
        container_persist_exit(d, c);
        return;
    }
    if (container_check_exit_file(d, c))
        return; /* it ended (and its runtime state went) while we looked */
    container_mark_exited(d, c, now_unix_ns(), 255, "Unknown",
                          "the container's exit status was lost (runtime state gone)");
    container_persist_exit(d, c);
}

typedef struct recover_job {
    daemon_t *d;
    container_t *c;
} recover_job_t;

static void reconcile_job(void *arg)
{
    recover_job_t *job = arg;
    reconcile_runtime(job->d, job->c);
}

/* reconcile_runtime() for every job, RECOVER_WORKERS at a time. */
static void reconcile_all(recover_job_t *jobs, size_t n)
{
    if (n == 0)
        return;
    if (n == 1) {
        reconcile_job(&jobs[0]);
        return;
    }
    pool_t *pool = pool_new(n < RECOVER_WORKERS ? n : RECOVER_WORKERS, n, 1000);
    for (size_t i = 0; i < n; i++)
        if (pool_submit(pool, reconcile_job, &jobs[i]) < 0)
            reconcile_job(&jobs[i]); /* cannot happen: room for n queued */
    pool_free(pool);                 /* runs them all, waits for the workers */
}

/* CreateContainer died half way: undo what it got to. The record goes
 * only when that worked; else c stays, exited, so RemoveContainer (or the
 * next start) retries. 0 when c is gone. */
static int recover_unfinished(daemon_t *d, container_t *c)
{
    cri_error_t e = CRI_ERROR_INIT;
    if (container_cleanup_host(d, c, &e) == 0 &&
        container_store_forget(daemon_containers(d), c, &e) == 0)
        return 0;
    log_warn("recover container `%s`: %s; keeping it as exited", c->id, e.msg);
    c->creating = false;
    container_set_exited(c, now_unix_ns(), 255, "CreateError", e.msg);
    cri_error_t ignore = CRI_ERROR_INIT;
    container_store_persist(daemon_containers(d), c, false, &ignore);
    return -1;
}

int container_recover(daemon_t *d, size_t *ret_loaded, cri_error_t *err)
{
    (void)err;
    container_t **list = NULL;
    size_t n = 0, loaded = 0, asked = 0;
    container_store_list(daemon_containers(d), NULL, &list, &n);
    recover_job_t *jobs = xcalloc(n ? n : 1, sizeof(*jobs));
    for (size_t i = 0; i < n; i++) {
        container_t *c = list[i];
        if (c->creating && recover_unfinished(d, c) == 0) {
            container_store_remove(daemon_containers(d), c);
            continue;
        }
        load_spec(d, c);
        loaded++;
        if (!reconcile_quick(d, c))
            jobs[asked++] = (recover_job_t){.d = d, .c = c};
    }
    reconcile_all(jobs, asked);
    log_debug("recovered %zu containers, %zu of them through the runtime", loaded, asked);
    free(jobs);
    container_list_free(list, n);
    if (ret_loaded)
        *ret_loaded = loaded;
    return 0;
}
