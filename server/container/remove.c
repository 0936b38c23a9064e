/* RemoveContainer: kill it when running (critest removes created, running
 * and exited containers), delete it from the runtime, unmount its rootfs,
 * (both skipped when done in the background at the exit, lifecycle.c),
 * delete upper/work, bundle, exit file, record and name reservation; then
 * it is gone from ListContainers and ContainerStatus says NOT_FOUND.
 * Idempotent (api.proto: "must not return an error if the container has
 * already been removed"): an unknown id is OK. */
#include <errno.h>

#include "common/cleanup.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/handlers.h"

RPC_HANDLER(handle_remove_container)
{
    const Runtime__V1__RemoveContainerRequest *r = (const Runtime__V1__RemoveContainerRequest *)req;
    daemon_t *d = rpc_daemon(ctx);
    if (!r->container_id[0])
        return cri_error_set(err, EINVAL, "container_id is empty");
    cleanup_container container_t *c = NULL;
    cri_error_t lerr = CRI_ERROR_INIT;
    if (container_store_get(daemon_containers(d), r->container_id, &c, &lerr) < 0) {
        if (lerr.status != ENOENT) {
            *err = lerr;
            return -1;
        }
    } else {
        pthread_mutex_lock(&c->op_lock);
        int rc = container_remove_locked(d, c, err);
        pthread_mutex_unlock(&c->op_lock);
        if (rc < 0)
            return cri_error_wrap(err, "remove container `%s`", c->id);
    }
    Runtime__V1__RemoveContainerResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__remove_container_response__init(resp);
    *ret_resp = &resp->base;
    return 0;
}
