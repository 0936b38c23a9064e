/* StreamContainers: ListContainers as a stream of chunks. Same filter,
 * same entries. */
#include "api/cri/v1/api.pb-c.h"
#include "server/handlers.h"

RPC_STREAM_HANDLER(handle_stream_containers)
{
    const Runtime__V1__StreamContainersRequest *in =
        (const Runtime__V1__StreamContainersRequest *)req;
    Runtime__V1__ListContainersRequest list = RUNTIME__V1__LIST_CONTAINERS_REQUEST__INIT;
    list.filter = in->filter;
    ProtobufCMessage *out = NULL;
    if (handle_list_containers(ctx, &list.base, &out, err) < 0)
        return -1;
    const Runtime__V1__ListContainersResponse *all =
        (const Runtime__V1__ListContainersResponse *)out;
    rpc_stream_slices(ctx, &runtime__v1__stream_containers_response__descriptor,
                      (void **)all->containers, all->n_containers, ret_msgs, ret_n);
    return 0;
}
