/* RemoveImage by id, id prefix, tag or digest. Idempotent (api.proto: "must
 * not return an error if the image has already been removed"). Any of these
 * names removes the image with all its tags (critest v1.36); then its blobs
 * and layers no other image uses are freed (after running pulls end, when
 * there are any). */
#include <errno.h>

#include "api/cri/v1/api.pb-c.h"
#include "server/daemon.h"
#include "server/handlers.h"
#include "server/image/image.h"

RPC_HANDLER(handle_remove_image)
{
    const Runtime__V1__RemoveImageRequest *r = (const Runtime__V1__RemoveImageRequest *)req;
    if (!r->image || !r->image->image || !r->image->image[0])
        return cri_error_set(err, EINVAL, "image.image is empty");
    if (image_store_remove(rpc_daemon(ctx)->images, r->image->image, err) < 0)
        return -1;
    Runtime__V1__RemoveImageResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__remove_image_response__init(resp);
    *ret_resp = &resp->base;
    return 0;
}
