/* RemovePodSandbox: stop the pod first when needed (kubelet expects a
 * running pod to be force-stopped), remove its containers, then everything
 * it owned: bundle and pod dirs, exit file, record and name reservation.
 * Then it is gone from ListPodSandbox and PodSandboxStatus says NOT_FOUND.
 * Idempotent: an unknown id is OK (api.proto: "must not return an error if
 * the sandbox has already been removed"). */
#include <errno.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/testhooks.h"
#include "server/daemon.h"
#include "server/events.h"
#include "server/exits.h"
#include "server/handlers.h"
#include "server/sandbox/sandbox-internal.h"
#include "server/trash.h"

int sandbox_remove_files(daemon_t *d, sandbox_t *sb, cri_error_t *err)
{
    cleanup_free char *bundle = sandbox_bundle_dir(d, sb->id);
    cleanup_free char *files = sandbox_files_dir(d, sb->id);
    if (sandbox_pause_image_release(d, sb->id, err) < 0 ||
        trash_put(daemon_trash(d), bundle, err) < 0 || trash_put(daemon_trash(d), files, err) < 0)
        return -1;
    cleanup_free char *exit_file = daemon_exit_file(d, sb->id);
    if (unlink(exit_file) < 0 && errno != ENOENT)
        return cri_error_make(err, errno, "remove exit file `%s`", exit_file);
    return 0;
}

int sandbox_remove_locked(daemon_t *d, sandbox_t *sb, cri_error_t *err)
{
    if (sb->removed)
        return 0;
    if (sandbox_remove_containers(daemon_sandboxes(d), sb, err) < 0)
        return cri_error_wrap(err, "remove containers of pod `%s`", sb->id);
    testhook_failpoint("remove_pod.after_containers");
    if (sandbox_remove_files(d, sb, err) < 0)
        return -1;
    testhook_failpoint("remove_pod.after_files");
    if (sandbox_store_forget(daemon_sandboxes(d), sb, err) < 0)
        return -1;
    exit_watcher_unwatch(daemon_exits(d), sb->id);
    sb->removed = true;
    /* published while the pod is still in memory, so the event carries its
     * last status (kubelet skips an event without one) */
    events_publish(daemon_events(d), EVENTS_CONTAINER_DELETED, sb->id, sb->id);
    sandbox_store_remove(daemon_sandboxes(d), sb);
    return 0;
}

RPC_HANDLER(handle_remove_pod_sandbox)
{
    const Runtime__V1__RemovePodSandboxRequest *r =
        (const Runtime__V1__RemovePodSandboxRequest *)req;
    daemon_t *d = rpc_daemon(ctx);
    if (!r->pod_sandbox_id[0])
        return cri_error_set(err, EINVAL, "pod_sandbox_id is empty");
    cleanup_sandbox sandbox_t *sb = NULL;
    cri_error_t lerr = CRI_ERROR_INIT;
    if (sandbox_store_get(daemon_sandboxes(d), r->pod_sandbox_id, &sb, &lerr) < 0) {
        if (lerr.status != ENOENT) {
            *err = lerr;
            return -1;
        }
    } else {
        pthread_mutex_lock(&sb->op_lock);
        int rc = sandbox_stop_locked(d, sb, err);
        if (rc == 0)
            rc = sandbox_remove_locked(d, sb, err);
        pthread_mutex_unlock(&sb->op_lock);
        if (rc < 0)
            return cri_error_wrap(err, "remove pod sandbox `%s`", sb->id);
    }
    Runtime__V1__RemovePodSandboxResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__remove_pod_sandbox_response__init(resp);
    *ret_resp = &resp->base;
    return 0;
}
