/* Startup recovery of containers. container_store_load() (called by
 * daemon_open before image GC, so the layers containers use are kept) put
 * every record in memory; here each is reconciled with the host:
 * - a create that never finished is rolled back and forgotten;
 * - an exit file gives the real exit (also for exits while the daemon was
 *   down);
 * - else the runtime's state: running/created stay so (with the pid);
 *   stopped waits a moment for the monitor's exit file, else the monitor
 *   died (EXITED 255, reason ContainerMonitorDied); unknown to the
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

#define RECOVER_SPEC_MAX ((size_t)4 * 1024 * 1024)
#define RECOVER_EXIT_WAIT_MS 1000

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

static void reconcile(daemon_t *d, container_t *c)
{
    container_status_t st;
    container_get_status(c, &st);
    container_state_t state = st.state;
    container_status_clear(&st);
    if (container_check_exit_file(d, c) || state == CONTAINER_STATE_EXITED)
        return;
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
    container_mark_exited(d, c, now_unix_ns(), 255, "Unknown",
                          "the container's exit status was lost (runtime state gone)");
    container_persist_exit(d, c);
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
    container_t **list = NULL;
    size_t n = 0, loaded = 0;
    container_store_list(daemon_containers(d), NULL, &list, &n);
    for (size_t i = 0; i < n; i++) {
        container_t *c = list[i];
        if (c->creating && recover_unfinished(d, c) == 0) {
            container_store_remove(daemon_containers(d), c);
            continue;
        }
        load_spec(d, c);
        reconcile(d, c);
        loaded++;
    }
    container_list_free(list, n);
    if (ret_loaded)
        *ret_loaded = loaded;
    return 0;
}
