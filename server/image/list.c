/* ListImages: every image, or the one filter.image.image names (cri-o reads
 * the filter as one lookup; no match is an empty list, not an error). FAST:
 * LMDB reads only. One image under three tags is one entry. */
#include <errno.h>

#include "api/cri/v1/api.pb-c.h"
#include "server/daemon.h"
#include "server/handlers.h"
#include "server/image/image-internal.h"

static void set_images(rpc_ctx_t *ctx, Runtime__V1__ListImagesResponse *resp, image_t **list,
                       size_t n)
{
    resp->images = rpc_alloc_array(ctx, n ? n : 1, Runtime__V1__Image *);
    for (size_t i = 0; i < n; i++)
        resp->images[i] = image_to_cri(ctx, list[i]);
    resp->n_images = n;
}

RPC_HANDLER(handle_list_images)
{
    const Runtime__V1__ListImagesRequest *r = (const Runtime__V1__ListImagesRequest *)req;
    image_store_t *s = rpc_daemon(ctx)->images;
    Runtime__V1__ListImagesResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__list_images_response__init(resp);
    const char *want = r->filter && r->filter->image ? r->filter->image->image : NULL;
    if (want && want[0]) {
        image_t *img = NULL;
        cri_error_t lerr = CRI_ERROR_INIT;
        if (image_store_resolve(s, want, &img, &lerr) == 0) {
            set_images(ctx, resp, &img, 1);
            image_unref(img);
        } else if (lerr.status != ENOENT && lerr.status != EINVAL) {
            *err = lerr;
            return -1;
        }
    } else {
        image_t **list = NULL;
        size_t n = 0;
        if (image_store_list(s, &list, &n, err) < 0)
            return -1;
        set_images(ctx, resp, list, n);
        image_list_free(list, n);
    }
    *ret_resp = &resp->base;
    return 0;
}
