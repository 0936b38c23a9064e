/* CreateContainer: validate; find the pod (READY) and the image (local
 * store only: no implicit pull); reserve the name with a "creating" record
 * (one LMDB transaction); mount the overlay rootfs under
 * <root>/containers/<id>/{upper,work,rootfs}; write the spec into
 * <runroot>/containers/<id>; start a monitor that runs `runc create`;
 * persist CREATED; reply.
 *
 * Any failure rolls back every earlier step (runtime state, mount, dirs,
 * bundle, record, reservation) and returns the cause. A crash half way
 * leaves the "creating" record, which container_recover() rolls back. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "server/testhooks.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/events.h"
#include "server/exits.h"
#include "server/host_ops.h"
#include "server/rootfs.h"
#include "server/handlers.h"
#include "server/image/image.h"
#include "server/sandbox/sandbox.h"

static char *new_id(void)
{
    unsigned char raw[32];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n > 0)
            got += (size_t)n;
        else if (errno != EINTR)
            abort(); /* getrandom cannot fail on a working kernel */
    }
    char *id = xmalloc(65);
    for (size_t i = 0; i < sizeof(raw); i++) {
        id[2 * i] = "0123456789abcdef"[raw[i] >> 4];
        id[2 * i + 1] = "0123456789abcdef"[raw[i] & 15];
    }
    id[64] = '\0';
    return id;
}

static char **pairs_from(void **entries, size_t n)
{
    char **v = xcalloc(n * 2 + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        /* every map entry message has key then value after its base */
        const Runtime__V1__ContainerConfig__LabelsEntry *e = entries[i];
        v[2 * i] = xstrdup(e->key);
        v[2 * i + 1] = xstrdup(e->value);
    }
    return v;
}

/* Identity of the new container from the request, the pod and the image. */
static void create_describe(daemon_t *d, container_t *c, sandbox_t *sb,
                            const Runtime__V1__ContainerConfig *cfg, image_t *img)
{
    free(c->id);
    c->id = new_id();
    free(c->name);
    c->name = xasprintf("k8s_%s_%s_%s_%s_%u", cfg->metadata->name, sb->meta_name,
                        sb->meta_namespace, sb->meta_uid, cfg->metadata->attempt);
    str_set(&c->sandbox_id, sb->id);
    str_set(&c->meta_name, cfg->metadata->name);
    c->attempt = cfg->metadata->attempt;
    strv_free(c->labels);
    c->labels = pairs_from((void **)cfg->labels, cfg->n_labels);
    strv_free(c->annotations);
    c->annotations = pairs_from((void **)cfg->annotations, cfg->n_annotations);
    str_set(&c->image_name, img->repo_tags[0] ? img->repo_tags[0] : cfg->image->image);
    str_set(&c->image_user, cfg->image->user_specified_image[0] ? cfg->image->user_specified_image
                                                                : cfg->image->image);
    str_set(&c->image_ref, img->repo_digests[0] ? img->repo_digests[0] : img->id);
    str_set(&c->image_id, img->id);
    strv_free(c->chain_ids);
    c->chain_ids = xcalloc(img->n_layers + 1, sizeof(char *));
    for (size_t i = 0; i < img->n_layers; i++)
        c->chain_ids[i] = xstrdup(img->chain_ids[i]);
    str_set(&c->runtime, sb->runtime);
    free(c->log_path);
    c->log_path = sb->log_directory[0] && cfg->log_path[0]
                      ? xasprintf("%s/%s", sb->log_directory, cfg->log_path)
                      : xstrdup("");
    c->created_at = now_unix_ns();
    c->tty = cfg->tty;
    c->stdin_open = cfg->stdin;
    c->stdin_once = cfg->stdin_once;
}

/* Mounts c's rootfs; *ret_rootfs (malloc'd) is where. A pod with its own
 * user namespace gets id-mapped layers at container_userns_rootfs(). */
static int create_rootfs(daemon_t *d, container_t *c, sandbox_t *sb, image_t *img,
                         char **ret_rootfs, cri_error_t *err)
{
    cleanup_free char *dir = container_dir(d, c->id);
    cleanup_free char *upper = xasprintf("%s/upper", dir);
    cleanup_free char *work = xasprintf("%s/work", dir);
    cleanup_free char *rootfs =
        sb->userns_path[0] ? container_userns_rootfs(d, c->id) : xasprintf("%s/rootfs", dir);
    cleanup_free char *empty = xasprintf("%s/empty", dir);
    cleanup_free char *userns_base = xasprintf("%s/rootfs-userns", daemon_root(d));
    if (sb->userns_path[0] && mkdir_private(userns_base, 0711, NULL, err) < 0)
        return -1;
    /* root-only: the rootfs may hold setuid files and devices (see daemon.c) */
    if (mkdir_private(dir, 0700, NULL, err) < 0 || mkdir_p(upper, 0755, err) < 0 ||
        mkdir_p(work, 0700, err) < 0 || mkdir_p(rootfs, 0755, err) < 0)
        return -1;
    if (img->n_layers == 0 && mkdir_p(empty, 0755, err) < 0)
        return -1;
    int rc;
    if (sb->userns_path[0])
        rc = daemon_host_ops(d)->rootfs_mount_idmapped(img->layer_dirs, img->n_layers, empty, upper,
                                                       work, rootfs, sb->userns_path,
                                                       sb->uid_map[1], sb->gid_map[1], err);
    else
        rc = daemon_host_ops(d)->rootfs_mount(img->layer_dirs, img->n_layers, empty, upper, work,
                                              rootfs, err);
    if (rc < 0)
        return -1;
    *ret_rootfs = TAKE_PTR(rootfs);
    return 0;
}

/* One component of log_path under dirfd: a missing directory is made; a
 * symlink is refused (never followed) as is a non-directory. */
static int log_dir_step(int dirfd, const char *name, const char *log_path, int *ret_fd,
                        cri_error_t *err)
{
    if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
        return cri_error_make(err, errno, "create log directory `%s` of `%s`", name, log_path);
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return cri_error_make(err, errno, "stat `%s` of `%s`", name, log_path);
    if (S_ISLNK(st.st_mode))
        return cri_error_set(err, EINVAL,
                             "config.log_path `%s`: `%s` is a symlink, refusing to follow it",
                             log_path, name);
    int fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return cri_error_set(err, EINVAL, "config.log_path `%s`: `%s` is not a directory", log_path,
                             name);
    *ret_fd = fd;
    return 0;
}

/* Makes log_path's directories under the pod's log directory without
 * following a symlink planted in log_path, and refuses a final component
 * that exists as anything but a regular file (the monitor opens it with
 * O_NOFOLLOW as well). The log directory itself comes from the pod. */
static int create_log_dir(const char *log_dir, const char *log_path, cri_error_t *err)
{
    if (!log_dir[0] || !log_path[0])
        return 0;
    if (mkdir_p(log_dir, 0755, err) < 0)
        return cri_error_wrap(err, "create log directory");
    cleanup_close int dirfd = open(log_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return cri_error_make(err, errno, "open log directory `%s`", log_dir);
    cleanup_free char *copy = xstrdup(log_path);
    char *save = NULL, *name = strtok_r(copy, "/", &save);
    while (name) {
        char *next = strtok_r(NULL, "/", &save);
        if (!next)
            break;
        int fd = -1;
        if (strcmp(name, ".") != 0 && log_dir_step(dirfd, name, log_path, &fd, err) < 0)
            return -1;
        if (fd >= 0) {
            close(dirfd);
            dirfd = fd;
        }
        name = next;
    }
    struct stat st;
    if (!name || fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return 0; /* missing: the monitor creates it */
    if (S_ISLNK(st.st_mode))
        return cri_error_set(err, EINVAL,
                             "config.log_path `%s` is a symlink, refusing to follow it", log_path);
    if (!S_ISREG(st.st_mode))
        return cri_error_set(err, EINVAL, "config.log_path `%s` is not a regular file", log_path);
    return 0;
}

static int create_monitor(daemon_t *d, container_t *c, cri_error_t *err)
{
    daemon_runtime_t *rt = daemon_runtime(d, c->runtime);
    if (!rt)
        return cri_error_set(err, EINVAL, "runtime handler `%s` is not configured", c->runtime);
    cleanup_free char *bundle = container_bundle_dir(d, c->id);
    conmon_create_opts_t opts = {.id = c->id,
                                 .bundle = bundle,
                                 .log_path = c->log_path,
                                 .terminal = c->tty,
                                 .stdin_open = c->stdin_open,
                                 .stdin_once = c->stdin_once};
    pid_t pid = 0, monitor = 0;
    if (daemon_conmon_ops(d)->create(&rt->conmon, &opts, &pid, &monitor, err) < 0)
        return cri_error_wrap(err, "create container");
    pthread_mutex_lock(&c->lock);
    c->state = CONTAINER_STATE_CREATED;
    c->pid = pid;
    c->monitor_pid = monitor;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

/* Everything after the reservation; on failure the caller rolls back. */
static int create_build(daemon_t *d, container_t *c, sandbox_t *sb,
                        const Runtime__V1__CreateContainerRequest *r, image_t *img,
                        cri_error_t *err)
{
    cleanup_free char *rootfs = NULL;
    if (create_rootfs(d, c, sb, img, &rootfs, err) < 0)
        return cri_error_wrap(err, "mount rootfs");
    testhook_failpoint("create.after_rootfs_mount");
    cleanup_free char *bundle = container_bundle_dir(d, c->id);
    if (container_spec_write(d, c, sb, r, img, rootfs, bundle, err) < 0)
        return -1;
    if (c->log_path[0] && create_log_dir(sb->log_directory, r->config->log_path, err) < 0)
        return -1;
    testhook_failpoint("create.after_spec");
    if (create_monitor(d, c, err) < 0)
        return -1;
    testhook_failpoint("create.after_runc_create");
    return 0;
}

/* Undoes create_build. The record goes only when everything did: else c
 * stays, exited, so RemoveContainer (or the next start) retries. */
static void create_rollback(daemon_t *d, container_t *c)
{
    cri_error_t e = CRI_ERROR_INIT;
    if (container_cleanup_host(d, c, &e) == 0 &&
        container_store_forget(daemon_containers(d), c, &e) == 0)
        return;
    log_warn("create container `%s`: rollback: %s; keeping it as exited", c->id, e.msg);
    container_set_exited(c, now_unix_ns(), 255, "CreateError", e.msg);
    cri_error_t ignore = CRI_ERROR_INIT;
    if (container_store_persist(daemon_containers(d), c, false, &ignore) == 0)
        container_store_add(daemon_containers(d), c, &ignore);
}

static int create_lookup(daemon_t *d, const Runtime__V1__CreateContainerRequest *r,
                         sandbox_t **ret_sb, image_t **ret_img, cri_error_t *err)
{
    cleanup_sandbox sandbox_t *sb = NULL;
    if (sandbox_store_get(daemon_sandboxes(d), r->pod_sandbox_id, &sb, err) < 0)
        return cri_error_wrap(err, "pod_sandbox_id");
    if (sandbox_get_state(sb, NULL) != SANDBOX_STATE_READY)
        return cri_error_set(err, EINVAL, "pod sandbox `%s` is not ready", sb->id);
    /* the pod as stored decides, never the request's copy of its config */
    const Runtime__V1__ContainerConfig *cfg = r->config;
    if (cfg->linux && cfg->linux->security_context && cfg->linux->security_context->privileged &&
        !sb->privileged)
        return cri_error_set(err, EINVAL,
                             "config.linux.security_context.privileged: pod sandbox `%s` was not "
                             "created privileged",
                             sb->id);
    if (image_store_resolve(daemon_images(d), r->config->image->image, ret_img, err) < 0)
        return cri_error_wrap(err, "config.image.image");
    *ret_sb = TAKE_PTR(sb);
    return 0;
}

RPC_HANDLER(handle_create_container)
{
    const Runtime__V1__CreateContainerRequest *r = (const Runtime__V1__CreateContainerRequest *)req;
    daemon_t *d = rpc_daemon(ctx);
    if (container_validate_create(r, err) < 0)
        return -1;
    cleanup_sandbox sandbox_t *sb = NULL;
    cleanup_image image_t *img = NULL;
    if (create_lookup(d, r, &sb, &img, err) < 0)
        return -1;
    cleanup_container container_t *c = container_new();
    create_describe(d, c, sb, r->config, img);
    if (container_store_persist(daemon_containers(d), c, true, err) < 0)
        return cri_error_wrap(err, "create container `%s`", r->config->metadata->name);
    testhook_failpoint("create.after_reserve");
    int rc = create_build(d, c, sb, r, img, err);
    if (rc == 0)
        rc = container_store_persist(daemon_containers(d), c, false, err);
    if (rc == 0)
        testhook_failpoint("create.after_record");
    if (rc < 0 || container_store_add(daemon_containers(d), c, err) < 0) {
        create_rollback(d, c);
        return cri_error_wrap(err, "create container `%s`", c->name);
    }
    /* in the store first: a death reported at once must find it */
    exit_watcher_watch(daemon_exits(d), c->id, c->monitor_pid, c->pid);
    events_publish(daemon_events(d), EVENTS_CONTAINER_CREATED, c->id, c->sandbox_id);
    Runtime__V1__CreateContainerResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__create_container_response__init(resp);
    resp->container_id = rpc_strdup(ctx, c->id);
    *ret_resp = &resp->base;
    return 0;
}
