/* PullImage: pulls image.image for the host platform and returns the image
 * id ("sha256:<config digest>"), which kubelet passes back as
 * CreateContainer's image and which equals Image.id (api.proto: image_ref
 * must equal Image.id since v1.36). sandbox_config is only for logs. The
 * pull ends with the client's deadline (or image.pull_timeout, if sooner):
 * DEADLINE_EXCEEDED, and nothing of it stays. */
#include <errno.h>
#include <stdlib.h>

#include "api/cri/v1/api.pb-c.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "server/daemon.h"
#include "server/handlers.h"
#include "server/image/image.h"
#include "server/metrics.h"

int image_validate_pull(const Runtime__V1__PullImageRequest *r, cri_error_t *err)
{
    if (!r->image || !r->image->image || !r->image->image[0])
        return cri_error_set(err, EINVAL, "image.image is empty");
    cleanup_image_ref image_ref_t *ref = NULL;
    if (image_ref_parse(r->image->image, &ref, err) < 0)
        return cri_error_wrap(err, "image.image");
    return 0;
}

/* A successful pull for the metrics, with the image's size. */
static void pull_observe_ok(daemon_t *d, const char *id, int64_t ns)
{
    cleanup_image image_t *img = NULL;
    cri_error_t ignore = CRI_ERROR_INIT;
    uint64_t bytes = image_store_resolve(d->images, id, &img, &ignore) == 0 ? img->size : 0;
    metrics_pull_observe(daemon_metrics(d), 0, bytes, ns);
}

RPC_HANDLER(handle_pull_image)
{
    const Runtime__V1__PullImageRequest *r = (const Runtime__V1__PullImageRequest *)req;
    if (image_validate_pull(r, err) < 0)
        return -1;
    image_auth_t auth = {0};
    if (r->auth) {
        auth.username = r->auth->username;
        auth.password = r->auth->password;
        auth.auth = r->auth->auth;
        auth.identity_token = r->auth->identity_token;
        auth.registry_token = r->auth->registry_token;
    }
    cleanup_free char *id = NULL;
    int64_t t0 = now_unix_ns();
    metrics_t *m = daemon_metrics(rpc_daemon(ctx));
    if (image_store_pull_remote(rpc_daemon(ctx)->images, r->image->image, r->auth ? &auth : NULL,
                                rpc_deadline_ms(ctx), &id, err) < 0) {
        metrics_pull_observe(m, err->status, 0, now_unix_ns() - t0);
        return -1;
    }
    pull_observe_ok(rpc_daemon(ctx), id, now_unix_ns() - t0);
    Runtime__V1__PullImageResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__pull_image_response__init(resp);
    resp->image_ref = rpc_strdup(ctx, id);
    *ret_resp = &resp->base;
    return 0;
}
