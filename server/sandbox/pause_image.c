/* The infra rootfs from image.pause_image: the image (pulled when absent)
 * as an overlay of its layers under <root>/pause/pods/<id>, running the
 * image's Entrypoint + Cmd. The overlay has an upper dir only so the runtime
 * can create its mount points (/proc, /dev, ...): the infra itself sees a
 * read-only root (the spec says so). The mount lives as long as the pod:
 * RemovePodSandbox (or a rollback) releases it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "conf/conf.h"
#include "server/process.h"
#include "server/rootfs.h"
#include "server/daemon.h"
#include "server/host_ops.h"
#include "server/image/image.h"
#include "server/sandbox/sandbox-internal.h"

static char *pause_pod_dir(const daemon_t *d, const char *id)
{
    return xasprintf("%s/pause/pods/%s", daemon_root(d), id);
}

/* The pause image, pulled first when the store does not have it. */
static int resolve_or_pull(daemon_t *d, const char *ref, image_t **ret, cri_error_t *err)
{
    cri_error_t rerr = CRI_ERROR_INIT;
    if (image_store_resolve(daemon_images(d), ref, ret, &rerr) == 0)
        return 0;
    if (rerr.status != ENOENT) {
        *err = rerr;
        return -1;
    }
    cleanup_free char *id = NULL;
    if (image_store_pull(daemon_images(d), ref, NULL, -1, &id, err) < 0)
        return cri_error_wrap(err, "pull image.pause_image `%s`", ref);
    return image_store_resolve(daemon_images(d), id, ret, err);
}

int sandbox_pause_image_prepare(daemon_t *d, sandbox_t *sb, char **ret_rootfs, char ***ret_argv,
                                cri_error_t *err)
{
    const char *ref = daemon_conf(d)->image.pause_image;
    cleanup_image image_t *img = NULL;
    if (resolve_or_pull(d, ref, &img, err) < 0)
        return -1;
    cleanup_strv char **argv = NULL;
    if (process_argv(NULL, 0, NULL, 0, img->config.entrypoint, img->config.cmd, &argv, err) < 0)
        return cri_error_wrap(err, "image.pause_image `%s`", ref);
    cleanup_free char *dir = pause_pod_dir(d, sb->id);
    cleanup_free char *empty = xasprintf("%s/empty", dir);
    cleanup_free char *upper = xasprintf("%s/upper", dir);
    cleanup_free char *work = xasprintf("%s/work", dir);
    if (mkdir_private(dir, 0700, NULL, err) < 0)
        return -1;
    char *rootfs = xasprintf("%s/rootfs", dir);
    if (daemon_host_ops(d)->rootfs_mount(img->layer_dirs, img->n_layers, empty, upper, work, rootfs,
                                         err) < 0) {
        free(rootfs);
        cri_error_t ignored = CRI_ERROR_INIT;
        rm_rf(dir, &ignored);
        return cri_error_wrap(err, "mount image.pause_image `%s`", ref);
    }
    *ret_rootfs = rootfs;
    *ret_argv = TAKE_PTR(argv);
    return 0;
}

int sandbox_pause_image_release(daemon_t *d, const char *id, cri_error_t *err)
{
    cleanup_free char *dir = pause_pod_dir(d, id);
    cleanup_free char *rootfs = xasprintf("%s/rootfs", dir);
    if (access(dir, F_OK) < 0)
        return 0;
    if (daemon_host_ops(d)->rootfs_unmount(rootfs, err) < 0)
        return -1;
    return rm_rf(dir, err);
}
