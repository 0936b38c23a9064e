/* The overlay root filesystem of a container (server/container/) or of a
 * pod's pause image (server/sandbox/): image layers below, the object's own
 * upper and work dirs on top. Below both modules, so neither depends on the
 * other for it. */
#ifndef CRICKET_SERVER_ROOTFS_H
#define CRICKET_SERVER_ROOTFS_H

#include <stdbool.h>
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

/* The same overlay for a container of a pod with its own user namespace
 * (the pin at userns_path): each lower dir is an id-mapped clone of the
 * layer (open_tree + mount_setattr MOUNT_ATTR_IDMAP), passed to overlay as
 * /proc/self/fd/N and dropped once overlay holds it, so files owned by host
 * id N show as owned by container id N; upper (created, empty) belongs to
 * the pod's root (host ids root_uid, root_gid), so its writes land on the
 * host as the mapped ids. No copy, no chown of the image. The errno of
 * open_tree, mount_setattr (EINVAL: the layer's filesystem cannot be
 * id-mapped) or mount. */
int rootfs_mount_idmapped(char *const *layer_dirs, size_t n_layers, const char *empty_dir,
                          const char *upper, const char *work, const char *target,
                          const char *userns_path, unsigned root_uid, unsigned root_gid,
                          cri_error_t *err);

/* Whether dir's filesystem can be id-mapped (probed once with a throwaway
 * user namespace): what pod user namespaces need here, with runc 1.1,
 * which has no id-mapped mounts of its own. */
bool rootfs_idmap_supported(const char *dir);

/* A read-only overlay of layer_dirs (LOWEST first) at target, with no upper
 * dir (an image volume): empty_dir (created) goes below them, as overlay
 * wants two lower dirs at least. Mounted nosuid, nodev. Errors as
 * rootfs_mount(). */
int rootfs_mount_readonly(char *const *layer_dirs, size_t n_layers, const char *empty_dir,
                          const char *target, cri_error_t *err);

/* Whether every directory from / down to path (included) lets others
 * through (mode o+x): a pod's mapped root must walk to its rootfs. When
 * not, *ret_blocker (malloc'd) is the first one that does not. */
bool rootfs_path_walkable(const char *path, char **ret_blocker);

/* Unmounts target (lazily when busy). Not mounted is fine. */
int rootfs_unmount(const char *target, cri_error_t *err);

#endif
