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

/* A pod with its own user namespace: its mapped root must walk to the
 * rootfs (runc mounts it from inside), so it lives under the 0711
 * <root>/rootfs-userns, with id-mapped layers (see server/rootfs.h). */
static char *pause_userns_dir(const daemon_t *d, const char *id)
{
    return xasprintf("%s/rootfs-userns/pause-pods/%s", daemon_root(d), id);
}

static int pause_mount(daemon_t *d, const sandbox_t *sb, const image_t *img, const char *dir,
                       const char *rootfs, cri_error_t *err)
{
    cleanup_free char *empty = xasprintf("%s/empty", dir);
    cleanup_free char *upper = xasprintf("%s/upper", dir);
    cleanup_free char *work = xasprintf("%s/work", dir);
    if (!sb->userns_path[0])
        return daemon_host_ops(d)->rootfs_mount(img->layer_dirs, img->n_layers, empty, upper, work,
                                                rootfs, err);
    return daemon_host_ops(d)->rootfs_mount_idmapped(img->layer_dirs, img->n_layers, empty, upper,
                                                     work, rootfs, sb->userns_path, sb->uid_map[1],
                                                     sb->gid_map[1], err);
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
    if (image_store_pull_remote(daemon_images(d), ref, NULL, -1, &id, err) < 0)
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
    cleanup_free char *dir =
        sb->userns_path[0] ? pause_userns_dir(d, sb->id) : pause_pod_dir(d, sb->id);
    cleanup_free char *base = xstrdup(dir);
    *strrchr(base, '/') = '\0';
    if (sb->userns_path[0] && mkdir_p(base, 0711, err) < 0)
        return -1;
    if (mkdir_private(dir, sb->userns_path[0] ? 0711 : 0700, NULL, err) < 0)
        return -1;
    char *rootfs = xasprintf("%s/rootfs", dir);
    if (pause_mount(d, sb, img, dir, rootfs, err) < 0) {
        free(rootfs);
        cri_error_t ignored = CRI_ERROR_INIT;
        rm_rf(dir, &ignored);
        return cri_error_wrap(err, "mount image.pause_image `%s`", ref);
    }
    *ret_rootfs = rootfs;
    *ret_argv = TAKE_PTR(argv);
    return 0;
}

static int release_dir(daemon_t *d, const char *dir, cri_error_t *err)
{
    cleanup_free char *rootfs = xasprintf("%s/rootfs", dir);
    if (access(dir, F_OK) < 0)
        return 0;
    if (daemon_host_ops(d)->rootfs_unmount(rootfs, err) < 0)
        return -1;
    return rm_rf(dir, err);
}

int sandbox_pause_image_release(daemon_t *d, const char *id, cri_error_t *err)
{
    cleanup_free char *dir = pause_pod_dir(d, id);
    cleanup_free char *userns_dir = pause_userns_dir(d, id);
    if (release_dir(d, dir, err) < 0)
        return -1;
    return release_dir(d, userns_dir, err);
}
