/* Containers: the pieces CreateContainer assembles a container from.
 *
 * This header grows with the container RPCs; today it holds the pure parts
 * that turn a CRI ContainerConfig plus an image config into a process:
 * argv (Kubernetes/Docker merge rules), environment, working directory, and
 * the user and groups resolved in the container's own /etc/passwd and
 * /etc/group. Nothing here touches the daemon's stores. */
#ifndef CRICKET_SERVER_CONTAINER_H
#define CRICKET_SERVER_CONTAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

/* The container's argv, as kubelet expects (Docker's rules):
 * - command set: command + args; the image's Entrypoint and Cmd are ignored;
 * - else the image Entrypoint (unless it is [""]) followed by args, or by
 *   the image Cmd when there are no args.
 * An empty result is EINVAL ("no command specified"). *ret_argv is a
 * malloc'd NULL-terminated vector (strv_free). */
int container_argv(char *const *command, size_t n_command, char *const *args, size_t n_args,
                   char *const *image_entrypoint, char *const *image_cmd, char ***ret_argv,
                   cri_error_t *err);

/* One KEY=value pair from the CRI request. */
typedef struct container_env_kv {
    const char *key;
    const char *value;
} container_env_kv_t;

/* The environment: the image's Env, then the config's envs replacing equal
 * keys (in order, a later duplicate wins), then HOSTNAME=<hostname> and a
 * default PATH when missing. An empty key is EINVAL. *ret_env is a
 * NULL-terminated "K=V" vector (strv_free). */
int container_env(char *const *image_env, const container_env_kv_t *envs, size_t n_envs,
                  const char *hostname, char ***ret_env, cri_error_t *err);

/* How the request names the user. Fields unset by the request are -1/NULL. */
typedef struct container_user_req {
    int64_t run_as_user;         /* -1 = unset */
    const char *run_as_username; /* NULL or "" = unset */
    int64_t run_as_group;        /* -1 = unset */
    const int64_t *supplemental; /* supplemental_groups */
    size_t n_supplemental;
    const char *image_user; /* image config User: "", "1000", "name", "1000:100", "name:grp" */
} container_user_req_t;

typedef struct container_user {
    uid_t uid;
    gid_t gid;
    gid_t *additional; /* groups naming the user in /etc/group, then supplemental; no dups */
    size_t n_additional;
    char *username; /* from /etc/passwd when found, else NULL */
} container_user_t;

void container_user_free(container_user_t *u);

/* Resolves the user the way containerd and CRI-O do: run_as_username (must
 * exist in the rootfs's /etc/passwd) over run_as_user over the image User;
 * run_as_group applies only with one of the first two (alone it is EINVAL);
 * a numeric uid missing from /etc/passwd gets gid 0 (or the image's group).
 * Names are looked up in rootfs/etc/passwd and rootfs/etc/group, read
 * without following symlinks out of rootfs. ENOENT naming the user or group
 * when a name does not exist; EINVAL for malformed input. */
int container_user_resolve(const char *rootfs, const container_user_req_t *req,
                           container_user_t *ret, cri_error_t *err);

/* Opens path inside root as if root were "/": symlinks and ".." cannot
 * leave it. Returns an O_CLOEXEC fd for reading, or -1 with err (ENOENT
 * when missing). */
int container_open_in_root(const char *root, const char *path, cri_error_t *err);

/* Mounts the container's root filesystem at target: an overlay of
 * layer_dirs (n_layers, LOWEST first; none = an empty lower dir under
 * empty_dir) with upper/work for its writes. Mount data is limited to one
 * page: when absolute paths would not fit, the lower dirs are passed as
 * /proc/self/fd/N of directories opened for the call, which keeps images
 * with a hundred and more layers mountable. E2BIG when even that does not
 * fit; the errno of mount(2) otherwise. */
int container_rootfs_mount(char *const *layer_dirs, size_t n_layers, const char *empty_dir,
                           const char *upper, const char *work, const char *target,
                           cri_error_t *err);

/* Unmounts target (lazily when busy). Not mounted is fine. */
int container_rootfs_unmount(const char *target, cri_error_t *err);

#endif
