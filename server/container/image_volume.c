/* Image volumes (CRI Mount.image, KEP-4639): an image already in the store,
 * mounted read-only into a container.
 *
 * Each volume is a read-only overlay of the image's layers (no upper dir,
 * nosuid, nodev) at <runroot>/containers/<id>/ivol/<i>, made at
 * CreateContainer and bound into the container read-only. image_sub_path
 * is resolved inside that overlay with openat2(RESOLVE_IN_ROOT): `..` and
 * symlinks, absolute or relative, stay inside the image, and a path the
 * image does not have is ENOENT naming the field. The overlay cannot change
 * after it is mounted (no upper dir), so the resolved path stays what was
 * checked.
 *
 * The image's layers join the container's chain_ids, which the image store
 * asks about before it frees a layer (container_layer_in_use): RemoveImage
 * still removes the image's name and record, but its layers stay while the
 * container exists, as they do for the image of a container's rootfs. The
 * record carries them, so a daemon restart keeps the hold; the mounts sit
 * in runroot and survive a daemon restart (not a reboot, like the
 * container). RemoveContainer and every rollback unmount them. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/host_ops.h"
#include "server/image/image.h"
#include "server/rootfs.h"
#include "server/validate.h"

int container_validate_image_volume(const Runtime__V1__Mount *m, size_t i, cri_error_t *err)
{
    if (!m->readonly)
        return cri_error_set(err, EINVAL,
                             "mounts[%zu].readonly: false, but an image volume is read-only", i);
    if (m->host_path[0])
        return cri_error_set(err, EINVAL, "mounts[%zu].host_path: set for an image volume", i);
    if (!m->image_sub_path[0])
        return 0;
    char field[64];
    (void)snprintf(field, sizeof(field), "mounts[%zu].image_sub_path", i);
    return validate_rel_clean_path(field, m->image_sub_path, err);
}

static char *volumes_dir(const daemon_t *d, const char *id)
{
    cleanup_free char *bundle = container_bundle_dir(d, id);
    return xasprintf("%s/ivol", bundle);
}

/* The host path of sub inside the mounted image at root, never outside it. */
static int resolve_sub_path(const char *root, const char *sub, size_t i, const char *image,
                            char **ret, cri_error_t *err)
{
    cleanup_close int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0)
        return cri_error_make(err, errno, "open image volume `%s`", root);
    struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV};
    cleanup_close int fd = (int)syscall(SYS_openat2, rfd, sub, &how, sizeof(how));
    if (fd < 0)
        return cri_error_make(err, errno, "mounts[%zu].image_sub_path `%s` in image `%s`", i, sub,
                              image);
    char self[64], path[PATH_MAX];
    (void)snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(self, path, sizeof(path) - 1);
    if (n < 0)
        return cri_error_make(err, errno, "resolve image_sub_path `%s`", sub);
    path[n] = '\0';
    size_t rl = strlen(root);
    if (strncmp(path, root, rl) != 0 || (path[rl] != '/' && path[rl] != '\0'))
        return cri_error_set(err, EINVAL, "mounts[%zu].image_sub_path `%s` leaves the image", i,
                             sub);
    *ret = xstrdup(path);
    return 0;
}

static void record_mount(container_t *c, const Runtime__V1__Mount *m, const image_t *img)
{
    c->mounts[c->n_mounts++] = (container_mount_t){.container_path = xstrdup(m->container_path),
                                                   .host_path = xstrdup(""),
                                                   .readonly = true,
                                                   .image = xstrdup(m->image->image),
                                                   .image_ref = xstrdup(img->id),
                                                   .image_sub_path = xstrdup(m->image_sub_path)};
    size_t have = image_strv_len(c->chain_ids);
    c->chain_ids = xrealloc(c->chain_ids, (have + img->n_layers + 1) * sizeof(char *));
    for (size_t l = 0; l < img->n_layers; l++)
        c->chain_ids[have + l] = xstrdup(img->chain_ids[l]);
    c->chain_ids[have + img->n_layers] = NULL;
}

int container_image_volume_mount(daemon_t *d, container_t *c, const Runtime__V1__Mount *m, size_t i,
                                 char **ret_source, cri_error_t *err)
{
    cleanup_image image_t *img = NULL;
    /* the live reference holds the layers until the record names them */
    if (image_store_resolve(daemon_images(d), m->image->image, &img, err) < 0)
        return cri_error_wrap(err, "mounts[%zu].image.image", i);
    cleanup_free char *dir = volumes_dir(d, c->id);
    cleanup_free char *empty = xasprintf("%s/empty", dir);
    cleanup_free char *target = xasprintf("%s/%zu", dir, i);
    if (mkdir_p(dir, 0700, err) < 0)
        return -1;
    if (rootfs_mount_readonly(img->layer_dirs, img->n_layers, empty, target, err) < 0)
        return cri_error_wrap(err, "mount image volume mounts[%zu] (`%s`)", i, m->image->image);
    cleanup_free char *src = NULL;
    if (m->image_sub_path[0]) {
        if (resolve_sub_path(target, m->image_sub_path, i, m->image->image, &src, err) < 0)
            return -1; /* the caller's rollback unmounts */
    } else {
        src = xstrdup(target);
    }
    record_mount(c, m, img);
    *ret_source = TAKE_PTR(src);
    return 0;
}

int container_image_volumes_unmount(daemon_t *d, const char *id, cri_error_t *err)
{
    cleanup_free char *dir = volumes_dir(d, id);
    DIR *dp = opendir(dir);
    if (!dp)
        return errno == ENOENT || errno == ENOTDIR ? 0
                                                   : cri_error_make(err, errno, "open `%s`", dir);
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(dp))) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "empty") == 0)
            continue;
        cleanup_free char *target = xasprintf("%s/%s", dir, e->d_name);
        rc = daemon_host_ops(d)->rootfs_unmount(target, err);
    }
    closedir(dp);
    if (rc < 0)
        return -1;
    /* nothing is mounted any more: removing cannot reach into an image */
    return rm_rf(dir, err);
}
