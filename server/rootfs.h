/* The overlay root filesystem of a container (server/container/) or of a
 * pod's pause image (server/sandbox/): image layers below, the object's own
 * upper and work dirs on top. Below both modules, so neither depends on the
 * other for it. */
#ifndef CRICKET_SERVER_ROOTFS_H
#define CRICKET_SERVER_ROOTFS_H

#include <stddef.h>

#include "common/error.h"

/* Mounts the container's root filesystem at target: an overlay of
 * layer_dirs (n_layers, LOWEST first; none = an empty lower dir under
 * empty_dir) with upper/work for its writes. Mount data is limited to one
 * page: when absolute paths would not fit, the lower dirs are passed as
 * /proc/self/fd/N of directories opened for the call, which keeps images
 * with a hundred and more layers mountable. E2BIG when even that does not
 * fit; the errno of mount(2) otherwise. */
int rootfs_mount(char *const *layer_dirs, size_t n_layers, const char *empty_dir, const char *upper,
                 const char *work, const char *target, cri_error_t *err);

/* Unmounts target (lazily when busy). Not mounted is fine. */
int rootfs_unmount(const char *target, cri_error_t *err);

#endif
