/* StreamContainerStats: ListContainerStats as a stream of chunks. Same
 * filter, same entries. */
#include "api/cri/v1/api.pb-c.h"
#include "server/handlers.h"

RPC_STREAM_HANDLER(handle_stream_container_stats)
{
    const Runtime__V1__StreamContainerStatsRequest *in =
        (const Runtime__V1__StreamContainerStatsRequest *)req;
    Runtime__V1__ListContainerStatsRequest list = RUNTIME__V1__LIST_CONTAINER_STATS_REQUEST__INIT;
    list.filter = in->filter;
    ProtobufCMessage *out = NULL;
    if (handle_list_container_stats(ctx, &list.base, &out, err) < 0)
        return -1;
    const Runtime__V1__ListContainerStatsResponse *all =
        (const Runtime__V1__ListContainerStatsResponse *)out;
    rpc_stream_slices(ctx, &runtime__v1__stream_container_stats_response__descriptor,
                      (void **)all->stats, all->n_stats, ret_msgs, ret_n);
    return 0;
}
