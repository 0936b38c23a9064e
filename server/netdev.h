/* Interface counters of a network namespace, as /proc/net/dev shows them
 * inside it: PodSandboxStats' network figures and the pod's
 * container_network_* metrics. */
#ifndef CRICKET_SERVER_NETDEV_H
#define CRICKET_SERVER_NETDEV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

typedef struct netdev_iface {
    char name[32];
    uint64_t rx_bytes, rx_packets, rx_errors, rx_dropped;
    uint64_t tx_bytes, tx_packets, tx_errors, tx_dropped;
} netdev_iface_t;

/* Parses /proc/net/dev text (two header lines, then "name: 16 numbers"),
 * leaving out `lo`. *ret (malloc'd, free()) gets the interfaces in file
 * order. EINVAL naming the line when a line has fewer than 16 numbers. */
int netdev_parse(const char *text, netdev_iface_t **ret, size_t *ret_n, cri_error_t *err);

/* The interfaces of the network namespace pinned or held at netns_path
 * (/run/.../netns/<id> or /proc/<pid>/ns/net): a short-lived thread
 * setns()es into it and reads /proc/thread-self/net/dev; the daemon's other
 * threads never change namespace. ENOENT when the path is gone; the
 * setns() errno (EINVAL: not a netns) otherwise. */
int netdev_read_netns(const char *netns_path, netdev_iface_t **ret, size_t *ret_n,
                      cri_error_t *err);

/* The same, read from /proc/<pid>/net/dev without a thread: pid must be a
 * process in the namespace at netns_path, which is checked (same nsfs
 * inode), so a recycled pid cannot hand out another namespace's figures.
 * ESRCH when pid is gone or sits in another namespace. */
int netdev_read_pid(pid_t pid, const char *netns_path, netdev_iface_t **ret, size_t *ret_n,
                    cri_error_t *err);

/* The index in ifs of "eth0", else of the first interface; -1 when n is 0. */
long netdev_default(const netdev_iface_t *ifs, size_t n);

#endif
