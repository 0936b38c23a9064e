/* ImageFsInfo: bytes and inodes used by images and by containers'
 * writable layers.
 *
 * Called on every client connect and by kubelet's stats and eviction;
 * kubelet reads image_filesystems[0].used_bytes unchecked, so it is always
 * set. Both entries name the same mountpoint (cricket's root) because they
 * live on one file system: a different string would make kubelet treat the
 * container layers as a separate disk with its own GC (KEP-4191). */
#include <errno.h>

#include "api/cri/v1/api.pb-c.h"
#include "common/util.h"
#include "server/daemon.h"
#include "server/handlers.h"

static Runtime__V1__FilesystemUsage *usage(rpc_ctx_t *ctx, const char *mountpoint,
                                           const char *const *dirs, size_t n_dirs, int64_t now,
                                           cri_error_t *err)
{
    uint64_t bytes = 0, inodes = 0;
    for (size_t i = 0; i < n_dirs; i++) {
        uint64_t b, in;
        if (dir_usage(dirs[i], &b, &in, err) < 0)
            return NULL;
        bytes += b;
        inodes += in;
    }
    Runtime__V1__FilesystemUsage *u = rpc_alloc(ctx, sizeof(*u));
    runtime__v1__filesystem_usage__init(u);
    u->timestamp = now;
    u->fs_id = rpc_alloc(ctx, sizeof(*u->fs_id));
    runtime__v1__filesystem_identifier__init(u->fs_id);
    u->fs_id->mountpoint = rpc_strdup(ctx, mountpoint);
    u->used_bytes = rpc_alloc(ctx, sizeof(*u->used_bytes));
    runtime__v1__uint64_value__init(u->used_bytes);
    u->used_bytes->value = bytes;
    u->inodes_used = rpc_alloc(ctx, sizeof(*u->inodes_used));
    runtime__v1__uint64_value__init(u->inodes_used);
    u->inodes_used->value = inodes;
    return u;
}

RPC_HANDLER(handle_image_fs_info)
{
    daemon_t *d = rpc_daemon(ctx);
    int64_t now = now_unix_ns();
    const char *image_dirs[] = {rpc_printf(ctx, "%s/blobs", d->root),
                                rpc_printf(ctx, "%s/layers", d->root)};
    const char *ctr_dirs[] = {rpc_printf(ctx, "%s/containers", d->root)};

    Runtime__V1__FilesystemUsage *img = usage(ctx, d->root, image_dirs, 2, now, err);
    if (!img)
        return cri_error_wrap(err, "image filesystem usage");
    Runtime__V1__FilesystemUsage *ctr = usage(ctx, d->root, ctr_dirs, 1, now, err);
    if (!ctr)
        return cri_error_wrap(err, "container filesystem usage");

    Runtime__V1__ImageFsInfoResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__image_fs_info_response__init(resp);
    resp->n_image_filesystems = 1;
    resp->image_filesystems = rpc_alloc_array(ctx, 1, Runtime__V1__FilesystemUsage *);
    resp->image_filesystems[0] = img;
    resp->n_container_filesystems = 1;
    resp->container_filesystems = rpc_alloc_array(ctx, 1, Runtime__V1__FilesystemUsage *);
    resp->container_filesystems[0] = ctr;
    *ret_resp = &resp->base;
    return 0;
}
