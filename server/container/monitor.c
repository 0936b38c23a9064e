/* Containers whose monitor died. cricket-conmon writes the exit file, keeps
 * the log and serves attach; when it is SIGKILLed or crashes, nothing of
 * that happens any more. The exit watcher (server/exits.c) holds a pidfd on
 * every monitor and on its container's process and calls
 * container_on_monitor_death(): the container keeps RUNNING while its
 * process runs (Stop works: runc kills it and the watcher sees the end),
 * and everything that needs the monitor fails with EOWNERDEAD
 * (FAILED_PRECONDITION) naming it; once the process has ended the container
 * is EXITED with reason ContainerMonitorDied and the kernel's exit status
 * (pidfd exit info) or 255, written to the record. The "runs without a
 * monitor" mark is not persisted: a restart finds it again (the process's
 * parent is no monitor). */
#include <errno.h>
#include <string.h>
#include <sys/wait.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/exits.h"

static int exit_code_of(const exit_watcher_death_t *dth)
{
    if (!dth->status_known)
        return 255;
    if (WIFEXITED(dth->wait_status))
        return WEXITSTATUS(dth->wait_status);
    if (WIFSIGNALED(dth->wait_status))
        return 128 + WTERMSIG(dth->wait_status);
    return 255;
}

bool container_on_monitor_death(daemon_t *d, const char *id, const exit_watcher_death_t *dth)
{
    cleanup_container container_t *c = NULL;
    cri_error_t ignore = CRI_ERROR_INIT;
    if (!daemon_containers(d) || container_store_get(daemon_containers(d), id, &c, &ignore) < 0 ||
        strcmp(c->id, id) != 0)
        return false;
    pthread_mutex_lock(&c->lock);
    c->monitor_dead = true;
    bool exited = c->state == CONTAINER_STATE_EXITED;
    pthread_mutex_unlock(&c->lock);
    if (dth->running) {
        log_warn("container `%s`: its monitor (cricket-conmon pid %d) died; the process (pid %d) "
                 "runs on without log, attach or exec",
                 id, (int)dth->monitor_pid, (int)dth->pid);
        return true;
    }
    if (exited)
        return true;
    cleanup_free char *msg =
        dth->status_known
            ? xasprintf("the container's monitor (cricket-conmon) died before the container; "
                        "exit status from the kernel")
            : xasprintf("the container's monitor (cricket-conmon) died before the container; "
                        "its exit status is lost");
    container_mark_exited(d, c, dth->finished_at, exit_code_of(dth), CONTAINER_REASON_MONITOR_DIED,
                          msg);
    log_warn("container `%s`: monitor died, process %d ended: exit code %d", id, (int)dth->pid,
             exit_code_of(dth));
    container_persist_exit(d, c);
    return true;
}

void container_watch_monitors(daemon_t *d)
{
    container_t **list = NULL;
    size_t n = 0;
    container_store_list(daemon_containers(d), NULL, &list, &n);
    for (size_t i = 0; i < n; i++) {
        container_t *c = list[i];
        pthread_mutex_lock(&c->lock);
        bool live = c->state == CONTAINER_STATE_CREATED || c->state == CONTAINER_STATE_RUNNING;
        pid_t pid = c->pid;
        pid_t monitor = c->monitor_pid; /* recovery found it live, or 0 */
        pthread_mutex_unlock(&c->lock);
        if (!live || pid <= 0)
            continue;
        if (monitor <= 0)
            monitor = exit_watcher_monitor_of(pid, c->id);
        pthread_mutex_lock(&c->lock);
        c->monitor_pid = monitor;
        pthread_mutex_unlock(&c->lock);
        exit_watcher_watch(daemon_exits(d), c->id, monitor, pid);
    }
    container_list_free(list, n);
}

int container_check_monitor(container_t *c, cri_error_t *err)
{
    pthread_mutex_lock(&c->lock);
    bool dead = c->monitor_dead;
    pthread_mutex_unlock(&c->lock);
    if (!dead)
        return 0;
    return cri_error_set(err, EOWNERDEAD,
                         "container `%s` lost its monitor (cricket-conmon died): no log, attach "
                         "or exec; stop it and create it again",
                         c->id);
}
