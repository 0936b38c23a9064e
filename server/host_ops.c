/* The real host_ops_t: the sandbox and container helpers that need root. */
#include "server/host_ops.h"

#include "server/rootfs.h"
#include "server/sandbox/sandbox-internal.h"

const host_ops_t host_real_ops = {
    .ns_pin = sandbox_ns_pin,
    .netns_unpin = sandbox_netns_unpin,
    .netns_alive = sandbox_netns_alive,
    .userns_pin = sandbox_userns_pin,
    .shm_mount = sandbox_shm_mount,
    .shm_unmount = sandbox_shm_unmount,
    .rootfs_mount = rootfs_mount,
    .rootfs_mount_idmapped = rootfs_mount_idmapped,
    .rootfs_unmount = rootfs_unmount,
};
