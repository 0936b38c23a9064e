/* Version: who we are and which CRI we speak.
 *
 * kubelet refuses a runtime whose `version` is not exactly "0.1.0" (the
 * kubelet runtime API version), and every client checks that all four
 * fields are set. */
#include "api/cri/v1/api.pb-c.h"
#include "server/handlers.h"

#define KUBELET_API_VERSION "0.1.0"

RPC_HANDLER(handle_version)
{
    Runtime__V1__VersionResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__version_response__init(resp);
    resp->version = KUBELET_API_VERSION;
    resp->runtime_name = "cricket";
    resp->runtime_version = CRICKET_VERSION;
    resp->runtime_api_version = "v1";
    *ret_resp = &resp->base;
    return 0;
}
