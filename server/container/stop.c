/* StopContainer(timeout): the stop signal (config, else the image's
 * StopSignal, else SIGTERM), wait up to timeout seconds for the exit, then
 * SIGKILL; 0 kills at once. Returns once the process has exited.
 *
 * Idempotent (api.proto: "must not return an error if the container has
 * already been stopped"): unknown ids, exited and never-started containers
 * are OK, as in containerd and CRI-O. Concurrent stops of one container are
 * serialised by its op_lock: the second finds it exited. */
#include <errno.h>

#include "common/cleanup.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/handlers.h"

RPC_HANDLER(handle_stop_container)
{
    const Runtime__V1__StopContainerRequest *r = (const Runtime__V1__StopContainerRequest *)req;
    daemon_t *d = rpc_daemon(ctx);
    if (!r->container_id[0])
        return cri_error_set(err, EINVAL, "container_id is empty");
    if (r->timeout < 0)
        return cri_error_set(err, EINVAL, "timeout %lld is negative", (long long)r->timeout);
    cleanup_container container_t *c = NULL;
    cri_error_t lerr = CRI_ERROR_INIT;
    if (container_store_get(daemon_containers(d), r->container_id, &c, &lerr) < 0) {
        if (lerr.status != ENOENT) {
            *err = lerr;
            return -1;
        }
    } else {
        pthread_mutex_lock(&c->op_lock);
        int rc = container_stop_locked(d, c, r->timeout, err);
        if (rc == 0)
            container_release_stopped_locked(d, c);
        pthread_mutex_unlock(&c->op_lock);
        if (rc < 0)
            return cri_error_wrap(err, "stop container `%s`", c->id);
    }
    Runtime__V1__StopContainerResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__stop_container_response__init(resp);
    *ret_resp = &resp->base;
    return 0;
}
