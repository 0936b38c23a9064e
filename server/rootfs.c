/* The overlay root filesystem of a container or a pod's pause image. */
#include "server/rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

#define MOUNT_DATA_MAX 4095 /* one page, with its NUL */

/* "lowerdir=<top>:...:<bottom>,upperdir=..,workdir=.." with the given lower
 * names; NULL when it does not fit in a page. */
static char *overlay_data(char *const *lowers, size_t n, const char *upper, const char *work)
{
    size_t len = strlen("lowerdir=,upperdir=,workdir=,index=off") + strlen(upper) + strlen(work);
    for (size_t i = 0; i < n; i++)
        len += strlen(lowers[i]) + 1;
    if (len > MOUNT_DATA_MAX)
        return NULL;
    char *data = xcalloc(1, len + 1);
    size_t off = (size_t)snprintf(data, len + 1, "lowerdir=");
    /* overlay lists the top layer first */
    for (size_t i = n; i-- > 0;)
        off += (size_t)snprintf(data + off, len + 1 - off, "%s%s", lowers[i], i ? ":" : "");
    (void)snprintf(data + off, len + 1 - off, ",upperdir=%s,workdir=%s,index=off", upper, work);
    return data;
}

static int do_mount(const char *target, const char *data, cri_error_t *err)
{
    if (mount("overlay", target, "overlay", 0, data) < 0)
        return cri_error_make(err, errno, "mount overlay on `%s`", target);
    return 0;
}

/* Mounts with the lower dirs opened and named by /proc/self/fd/N. */
static int mount_by_fds(char *const *dirs, size_t n, const char *upper, const char *work,
                        const char *target, cri_error_t *err)
{
    int *fds = xcalloc(n, sizeof(int));
    char **names = xcalloc(n + 1, sizeof(char *));
    char *data = NULL;
    int rc = -1;
    size_t opened = 0;
    for (; opened < n; opened++) {
        fds[opened] = open(dirs[opened], O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fds[opened] < 0) {
            cri_error_make(err, errno, "open layer `%s`", dirs[opened]);
            goto out;
        }
        names[opened] = xasprintf("/proc/self/fd/%d", fds[opened]);
    }
    data = overlay_data(names, n, upper, work);
    if (!data) {
        cri_error_set(err, E2BIG, "mount overlay on `%s`: %zu layers do not fit in the mount data",
                      target, n);
        goto out;
    }
    rc = do_mount(target, data, err);
out:
    for (size_t i = 0; i < opened; i++)
        close(fds[i]);
    free(fds);
    free(data);
    strv_free(names);
    return rc;
}

int rootfs_mount(char *const *layer_dirs, size_t n_layers, const char *empty_dir, const char *upper,
                 const char *work, const char *target, cri_error_t *err)
{
    char *const empty[] = {(char *)empty_dir, NULL};
    if (n_layers == 0) {
        if (mkdir_p(empty_dir, 0700, err) < 0)
            return -1;
        layer_dirs = empty;
        n_layers = 1;
    }
    if (mkdir_p(upper, 0755, err) < 0 || mkdir_p(work, 0700, err) < 0 ||
        mkdir_p(target, 0755, err) < 0)
        return -1;
    cleanup_free char *data = overlay_data(layer_dirs, n_layers, upper, work);
    if (data)
        return do_mount(target, data, err);
    return mount_by_fds(layer_dirs, n_layers, upper, work, target, err);
}

int rootfs_unmount(const char *target, cri_error_t *err)
{
    if (umount2(target, UMOUNT_NOFOLLOW) == 0 || errno == EINVAL || errno == ENOENT)
        return 0;
    if (errno == EBUSY && umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
        return 0;
    return cri_error_make(err, errno, "unmount `%s`", target);
}
