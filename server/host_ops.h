/* The host changes handlers make that need root (mounts, network
 * namespaces), as an ops table: server/daemon.h holds a pointer to one, the
 * daemon uses host_real_ops, and handler unit tests pass fakes that record
 * calls and fail on demand, so every rollback path runs without root. */
#ifndef CRICKET_SERVER_HOST_OPS_H
#define CRICKET_SERVER_HOST_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* The namespaces a pod pins: a path per kind ("" = not that kind) and the
 * hostname to set in the new uts namespace. */
typedef struct host_ns_pins {
    const char *net, *ipc, *uts;
    const char *hostname;
    /* the pod's sysctls to write in the new namespaces: /proc/sys path,
     * value, path, value, ..., NULL (NULL = none) */
    char *const *sysctls;
} host_ns_pins_t;

/* Each member has the contract of the real function named beside it. */
typedef struct host_ops {
    /* sandbox_ns_pin(): make the namespaces pins names (net with lo up,
     * uts with the hostname, the sysctls written) and pin each at its path */
    int (*ns_pin)(const host_ns_pins_t *pins, cri_error_t *err);
    /* sandbox_netns_unpin(): unmount and remove the pin; none is success */
    int (*netns_unpin)(const char *path, cri_error_t *err);
    /* sandbox_netns_alive(): path is a pinned netns */
    bool (*netns_alive)(const char *path);
    /* sandbox_userns_pin(): make a user namespace with these ranges, pin
     * it at userns_path, and the namespaces pins names inside it, each
     * pinned at its path; netns_unpin() undoes each pin */
    int (*userns_pin)(const char *userns_path, const host_ns_pins_t *pins,
                      const uint32_t uid_map[3], const uint32_t gid_map[3], cri_error_t *err);
    /* sandbox_shm_mount(): the pod's /dev/shm tmpfs on dir (created), its
     * root owned by uid:gid */
    int (*shm_mount)(const char *dir, uint32_t uid, uint32_t gid, cri_error_t *err);
    /* sandbox_shm_unmount(): not mounted is success */
    int (*shm_unmount)(const char *dir, cri_error_t *err);
    /* container_rootfs_mount(): overlay of layer_dirs (lowest first) */
    int (*rootfs_mount)(char *const *layer_dirs, size_t n_layers, const char *empty_dir,
                        const char *upper, const char *work, const char *target, cri_error_t *err);
    /* rootfs_mount_idmapped(): the same with id-mapped layers (pod userns) */
    int (*rootfs_mount_idmapped)(char *const *layer_dirs, size_t n_layers, const char *empty_dir,
                                 const char *upper, const char *work, const char *target,
                                 const char *userns_path, unsigned root_uid, unsigned root_gid,
                                 cri_error_t *err);
    /* container_rootfs_unmount(): not mounted is success */
    int (*rootfs_unmount)(const char *target, cri_error_t *err);
} host_ops_t;

/* The real table: mount(2), unshare(2) and friends. */
extern const host_ops_t host_real_ops;

#endif
