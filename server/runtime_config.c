/* RuntimeConfig: the cgroup driver kubelet must match.
 *
 * CgroupDriver SYSTEMD is 0, so an unset field means systemd: always fill
 * `linux` and set the driver explicitly (a nil `linux` makes kubelet keep
 * its own setting). */
#include "api/cri/v1/api.pb-c.h"
#include "server/daemon.h"
#include "server/handlers.h"

RPC_HANDLER(handle_runtime_config)
{
    daemon_t *d = rpc_daemon(ctx);
    Runtime__V1__LinuxRuntimeConfiguration *lin = rpc_alloc(ctx, sizeof(*lin));
    runtime__v1__linux_runtime_configuration__init(lin);
    lin->cgroup_driver = d->cgroup_systemd ? RUNTIME__V1__CGROUP_DRIVER__SYSTEMD
                                           : RUNTIME__V1__CGROUP_DRIVER__CGROUPFS;

    Runtime__V1__RuntimeConfigResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__runtime_config_response__init(resp);
    resp->linux = lin;
    *ret_resp = &resp->base;
    return 0;
}
