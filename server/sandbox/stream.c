/* StreamPodSandboxes: ListPodSandbox as a stream of chunks. Same filter,
 * same entries. */
#include "api/cri/v1/api.pb-c.h"
#include "server/handlers.h"

RPC_STREAM_HANDLER(handle_stream_pod_sandboxes)
{
    const Runtime__V1__StreamPodSandboxesRequest *in =
        (const Runtime__V1__StreamPodSandboxesRequest *)req;
    Runtime__V1__ListPodSandboxRequest list = RUNTIME__V1__LIST_POD_SANDBOX_REQUEST__INIT;
    list.filter = in->filter;
    ProtobufCMessage *out = NULL;
    if (handle_list_pod_sandbox(ctx, &list.base, &out, err) < 0)
        return -1;
    const Runtime__V1__ListPodSandboxResponse *all =
        (const Runtime__V1__ListPodSandboxResponse *)out;
    rpc_stream_slices(ctx, &runtime__v1__stream_pod_sandboxes_response__descriptor,
                      (void **)all->items, all->n_items, ret_msgs, ret_n);
    return 0;
}
