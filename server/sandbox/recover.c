/* Startup recovery: rebuild the sandbox store from STORE_PODS and what is
 * left on the host. A pod whose RunPodSandbox never finished (the daemon
 * died half way) is torn down and forgotten (kept as NOTREADY when the
 * teardown fails, so Stop/Remove retry it); a READY pod whose infra
 * container is gone (runtime state, exit file; a reboot empties both) now
 * reads NOTREADY; so does a pod without an infra whose namespace pins are no
 * longer nsfs mounts (removed by hand, a reboot). Its netns pin may be gone
 * too: Stop copes with that. */
#include <errno.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "server/daemon.h"
#include "server/events.h"
#include "server/exits.h"
#include "server/sandbox/sandbox-internal.h"

#define RECOVER_SPEC_MAX ((size_t)4 * 1024 * 1024)

static void load_spec(daemon_t *d, sandbox_t *sb)
{
    cleanup_free char *bundle = sandbox_bundle_dir(d, sb->id);
    cleanup_free char *path = xasprintf("%s/config.json", bundle);
    char *text = NULL;
    cri_error_t ignore = CRI_ERROR_INIT;
    if (read_file(path, RECOVER_SPEC_MAX, &text, NULL, &ignore) == 0) {
        free(sb->spec_json);
        sb->spec_json = text;
    }
}

/* One loaded pod: 1 when it was kept, 0 when torn down, -1 on error. */
static int recover_one(daemon_t *d, sandbox_t *sb, cri_error_t *err)
{
    if (sb->creating) {
        /* RunPodSandbox died half way: undo whatever it got to (CNI DEL
         * with the network recorded before ADD began, cache or not) */
        cri_error_t terr = CRI_ERROR_INIT;
        if (sandbox_stop_locked(d, sb, &terr) == 0 && sandbox_remove_locked(d, sb, &terr) == 0)
            return 0;
        /* keep it, listed as NOTREADY: Stop/Remove (kubelet's GC) retry */
        log_warn("tear down unfinished pod `%s`: %s; keeping it as not ready", sb->id, terr.msg);
        sb->creating = false;
        sandbox_set_state(sb, SANDBOX_STATE_NOTREADY, 0);
        if (sandbox_store_persist(daemon_sandboxes(d), sb, false, err) < 0)
            return cri_error_wrap(err, "record pod `%s` as not ready", sb->id);
        return 1;
    }
    if (sb->infra)
        load_spec(d, sb);
    pid_t pid = 0;
    if (sandbox_get_state(sb, NULL) == SANDBOX_STATE_READY) {
        /* a pod without an infra lives as long as its pins */
        bool alive = sb->infra ? sandbox_infra_running(d, sb, &pid) : sandbox_pins_alive(d, sb);
        sandbox_set_state(sb, alive ? SANDBOX_STATE_READY : SANDBOX_STATE_NOTREADY,
                          alive ? pid : 0);
        if (!alive && sandbox_store_persist(daemon_sandboxes(d), sb, false, err) < 0)
            return cri_error_wrap(err, "record pod `%s` as not ready", sb->id);
    }
    return 1;
}

int sandbox_recover(daemon_t *d, size_t *ret_loaded, cri_error_t *err)
{
    if (sandbox_store_load(daemon_sandboxes(d), NULL, err) < 0)
        return cri_error_wrap(err, "recover pod sandboxes");
    sandbox_t **list = NULL;
    size_t n = 0, loaded = 0;
    sandbox_store_list(daemon_sandboxes(d), &list, &n);
    for (size_t i = 0; i < n; i++) {
        cri_error_t perr = CRI_ERROR_INIT;
        int r = recover_one(d, list[i], &perr);
        if (r < 0) {
            log_warn("recover pod sandbox: %s, ignoring", perr.msg);
            /* as before the store was shared: a pod that could not be
             * reconciled stays out of memory (its record stays) */
            sandbox_store_remove(daemon_sandboxes(d), list[i]);
        } else {
            loaded += (size_t)r;
        }
    }
    sandbox_list_free(list, n);
    if (ret_loaded)
        *ret_loaded = loaded;
    return 0;
}

bool sandbox_on_infra_exit(daemon_t *d, const char *id)
{
    cleanup_sandbox sandbox_t *sb = NULL;
    cri_error_t ignore = CRI_ERROR_INIT;
    if (!daemon_sandboxes(d) || sandbox_store_get(daemon_sandboxes(d), id, &sb, &ignore) < 0 ||
        strcmp(sb->id, id) != 0)
        return false;
    if (!sb->infra) /* no process to exit: READY until StopPodSandbox */
        return true;
    pid_t pid = 0;
    bool was_ready = sandbox_get_state(sb, &pid) == SANDBOX_STATE_READY;
    sandbox_set_state(sb, SANDBOX_STATE_NOTREADY, 0);
    if (was_ready)
        events_publish(daemon_events(d), EVENTS_CONTAINER_STOPPED, sb->id, sb->id);
    return true;
}

bool sandbox_on_infra_monitor_death(daemon_t *d, const char *id, const exit_watcher_death_t *dth)
{
    cleanup_sandbox sandbox_t *sb = NULL;
    cri_error_t ignore = CRI_ERROR_INIT;
    if (!daemon_sandboxes(d) || sandbox_store_get(daemon_sandboxes(d), id, &sb, &ignore) < 0 ||
        strcmp(sb->id, id) != 0)
        return false;
    if (!sb->infra)
        return true;
    pthread_mutex_lock(&sb->lock);
    sb->monitor_dead = true;
    pthread_mutex_unlock(&sb->lock);
    if (dth->running)
        log_warn("pod sandbox `%s`: its infra's monitor (cricket-conmon pid %d) died; the pod is "
                 "not ready",
                 id, (int)dth->monitor_pid);
    sandbox_set_state(sb, SANDBOX_STATE_NOTREADY, 0);
    return true;
}

void sandbox_watch_monitors(daemon_t *d)
{
    sandbox_t **list = NULL;
    size_t n = 0;
    sandbox_store_list(daemon_sandboxes(d), &list, &n);
    for (size_t i = 0; i < n; i++) {
        pid_t pid = 0;
        if (sandbox_get_state(list[i], &pid) != SANDBOX_STATE_READY || pid <= 0)
            continue;
        pid_t monitor = exit_watcher_monitor_of(pid, list[i]->id);
        pthread_mutex_lock(&list[i]->lock);
        list[i]->monitor_pid = monitor;
        pthread_mutex_unlock(&list[i]->lock);
        exit_watcher_watch(daemon_exits(d), list[i]->id, monitor, pid);
    }
    sandbox_list_free(list, n);
}
