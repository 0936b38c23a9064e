/* StreamImages: ListImages as a stream of chunks, for image lists that
 * would not fit in one message. Same filter, same entries. */
#include "api/cri/v1/api.pb-c.h"
#include "server/handlers.h"

RPC_STREAM_HANDLER(handle_stream_images)
{
    const Runtime__V1__StreamImagesRequest *in = (const Runtime__V1__StreamImagesRequest *)req;
    Runtime__V1__ListImagesRequest list = RUNTIME__V1__LIST_IMAGES_REQUEST__INIT;
    list.filter = in->filter;
    ProtobufCMessage *out = NULL;
    if (handle_list_images(ctx, &list.base, &out, err) < 0)
        return -1;
    const Runtime__V1__ListImagesResponse *all = (const Runtime__V1__ListImagesResponse *)out;
    rpc_stream_slices(ctx, &runtime__v1__stream_images_response__descriptor, (void **)all->images,
                      all->n_images, ret_msgs, ret_n);
    return 0;
}
