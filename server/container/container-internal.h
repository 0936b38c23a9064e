/* Private helpers of server/container/: only its files (and unit tests)
 * include this. */
#ifndef CRICKET_SERVER_CONTAINER_CONTAINER_INTERNAL_H
#define CRICKET_SERVER_CONTAINER_CONTAINER_INTERNAL_H

#include <stdbool.h>

#include "api/cri/v1/api.pb-c.h"
#include "common/error.h"
#include "server/container/container.h"
#include "server/rpc.h"

struct daemon;
struct sandbox;
struct image;

/* How long Stop and Remove wait for the exit file after SIGKILL. */
#define CONTAINER_KILL_WAIT_MS 10000

/* Writes the OCI spec of c into bundle (config.json) and keeps its text in
 * c->spec_json; fills c's user, mounts, stop signal and resources from the
 * request. rootfs is the mounted root filesystem (for user lookup). EINVAL
 * naming the field for bad input. */
int container_spec_write(struct daemon *d, container_t *c, struct sandbox *sb,
                         const Runtime__V1__CreateContainerRequest *r, struct image *img,
                         const char *rootfs, const char *bundle, cri_error_t *err);

/* Checks a CreateContainer request (validate.c): names, sizes of every
 * repeated field, log_path, mounts, privileged. Pure: no daemon, no I/O.
 * EINVAL naming the field. */
int container_validate_create(const Runtime__V1__CreateContainerRequest *r, cri_error_t *err);

/* Checks of an ExecSync and an UpdateContainerResources request before any
 * lookup (exec_sync.c, update.c): pure, also run by test/fuzz/. EINVAL
 * naming the field. */
int container_validate_exec_sync(const Runtime__V1__ExecSyncRequest *r, cri_error_t *err);
int container_validate_update(const Runtime__V1__UpdateContainerResourcesRequest *r,
                              cri_error_t *err);

/* Mounts one container may have (each becomes a mount in its spec). */
#define CONTAINER_MAX_MOUNTS 256

/* Checks the CRI mounts of a request (paths absolute, propagation known). */
int container_validate_mounts(const Runtime__V1__ContainerConfig *cfg, cri_error_t *err);

/* Waits up to timeout_ms for c's exit file and records the exit. True when
 * c has exited. */
bool container_wait_exit(struct daemon *d, container_t *c, int timeout_ms);

/* Writes c's record (its current state) under c->record_lock, unless
 * Remove deleted it. Every write after create goes through here. */
int container_record_write(struct daemon *d, container_t *c, cri_error_t *err);

/* container_record_write() that logs a failure: for the exit watcher and
 * the readers of exit files, which record an exit as they see it. */
void container_persist_exit(struct daemon *d, container_t *c);

/* Reads c's exit file into its state when there is one. True when found. */
bool container_check_exit_file(struct daemon *d, container_t *c);

/* Removes what create may have left for c: runtime state, rootfs mount,
 * dirs, bundle, exit file, monitor dir. Best effort. */
void container_cleanup_host(struct daemon *d, container_t *c);

/* Removes c's dir (upper, work, rootfs mount point), bundle, monitor dir
 * and exit file: each is tried, and the first that cannot go (EBUSY when
 * a mount is left inside) is the error; the caller then keeps c's record.
 * container_cleanup_host() uses it best effort. */
int container_remove_dirs(struct daemon *d, container_t *c, cri_error_t *err);

/* Resources from CRI into c->resources (under c->lock) and into *ret for
 * the OCI runtime (borrowing strings from r). */
void container_resources_from_cri(const Runtime__V1__LinuxContainerResources *r,
                                  container_resources_t *ret);

/* Reply pieces shared by ListContainers and ContainerStatus (arena). */
Runtime__V1__ContainerMetadata *container_reply_metadata(rpc_ctx_t *ctx, const container_t *c);
Runtime__V1__ImageSpec *container_reply_image(rpc_ctx_t *ctx, const container_t *c);

/* cpu and memory of a running container's cgroup (cgroup_stats.c). */
typedef struct container_cgroup_stats {
    bool valid; /* the cgroup was found */
    uint64_t cpu_ns;
    uint64_t mem_usage, mem_working_set, mem_rss;
    uint64_t page_faults, major_page_faults;
} container_cgroup_stats_t;

/* Reads the cgroup of pid (0 or a gone pid: all zero, valid false). */
void container_cgroup_stats(pid_t pid, container_cgroup_stats_t *ret);

/* The CRI stats of c (stats.c): attributes, cgroup cpu/memory, writable layer. */
Runtime__V1__ContainerStats *container_reply_stats(rpc_ctx_t *ctx, container_t *c);

/* Whether c passes a ListContainers filter (NULL passes everything). */
bool container_filter_matches(container_t *c, const Runtime__V1__ContainerFilter *f);

#endif
