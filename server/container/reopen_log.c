/* ReopenContainerLog: ask the container's monitor to reopen its log file
 * (kubelet renamed it for rotation). On success the file at log_path exists
 * before the reply (conmon answers after reopening). A container that is
 * not running is an error and no file is created (api.proto). */
#include <errno.h>

#include "common/cleanup.h"
#include "conmon/conmon.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/handlers.h"

RPC_HANDLER(handle_reopen_container_log)
{
    const Runtime__V1__ReopenContainerLogRequest *r =
        (const Runtime__V1__ReopenContainerLogRequest *)req;
    daemon_t *d = rpc_daemon(ctx);
    cleanup_container container_t *c = NULL;
    if (container_get_running(d, r->container_id, &c, err) < 0)
        return -1;
    if (!c->log_path[0])
        return cri_error_set(err, EINVAL, "container `%s` has no log path", c->id);
    if (daemon_conmon_ops(d)->reopen_log(daemon_conmon_dir(d), c->id, 0, err) < 0)
        return cri_error_wrap(err, "reopen log of `%s`", c->id);
    Runtime__V1__ReopenContainerLogResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__reopen_container_log_response__init(resp);
    *ret_resp = &resp->base;
    return 0;
}
