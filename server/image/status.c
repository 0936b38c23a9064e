/* ImageStatus: a missing image is OK with `image` unset (api.proto: "If the
 * image isn't present, the returned image field must be unset"); kubelet
 * then pulls, critest expects nil after removal. Any reference form, the id
 * or a unique id prefix resolves. verbose adds info["info"], a JSON with the
 * image config. FAST: LMDB reads only. */
#include <errno.h>

#include "api/cri/v1/api.pb-c.h"
#include "server/daemon.h"
#include "server/handlers.h"
#include "server/image/image-internal.h"

RPC_HANDLER(handle_image_status)
{
    const Runtime__V1__ImageStatusRequest *r = (const Runtime__V1__ImageStatusRequest *)req;
    if (!r->image || !r->image->image || !r->image->image[0])
        return cri_error_set(err, EINVAL, "image.image is empty");
    Runtime__V1__ImageStatusResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__image_status_response__init(resp);
    image_t *img = NULL;
    cri_error_t lerr = CRI_ERROR_INIT;
    if (image_store_resolve(rpc_daemon(ctx)->images, r->image->image, &img, &lerr) < 0) {
        if (lerr.status != ENOENT) {
            *err = lerr;
            return -1;
        }
        *ret_resp = &resp->base;
        return 0;
    }
    resp->image = image_to_cri(ctx, img);
    if (r->verbose) {
        resp->n_info = 1;
        resp->info = rpc_alloc_array(ctx, 1, Runtime__V1__ImageStatusResponse__InfoEntry *);
        resp->info[0] = rpc_alloc(ctx, sizeof(*resp->info[0]));
        runtime__v1__image_status_response__info_entry__init(resp->info[0]);
        resp->info[0]->key = rpc_strdup(ctx, "info");
        resp->info[0]->value = image_verbose_info(ctx, img);
    }
    image_unref(img);
    *ret_resp = &resp->base;
    return 0;
}
