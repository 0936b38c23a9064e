/* The overlay root filesystem of a container or a pod's pause image. */
#include "server/rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/mount.h>

#include "common/cleanup.h"
#include "common/util.h"

#define MOUNT_DATA_MAX 4095 /* one page, with its NUL */

/* "lowerdir=<top>:...:<bottom>,upperdir=..,workdir=.." with the given lower
 * names (no upper and work dirs when upper is NULL: a read-only overlay);
 * NULL when it does not fit in a page. */
static char *overlay_data(char *const *lowers, size_t n, const char *upper, const char *work)
{
    size_t len = strlen("lowerdir=,upperdir=,workdir=,index=off") +
                 (upper ? strlen(upper) + strlen(work) : 0);
    for (size_t i = 0; i < n; i++)
        len += strlen(lowers[i]) + 1;
    if (len > MOUNT_DATA_MAX)
        return NULL;
    char *data = xcalloc(1, len + 1);
    size_t off = (size_t)snprintf(data, len + 1, "lowerdir=");
    /* overlay lists the top layer first */
    for (size_t i = n; i-- > 0;)
        off += (size_t)snprintf(data + off, len + 1 - off, "%s%s", lowers[i], i ? ":" : "");
    if (upper)
        (void)snprintf(data + off, len + 1 - off, ",upperdir=%s,workdir=%s,index=off", upper, work);
    return data;
}

/* With no upper dir (upper NULL) the overlay is read-only, and neither
 * setuid files nor devices work in it. */
static int do_mount(const char *target, const char *upper, const char *data, cri_error_t *err)
{
    unsigned long flags = upper ? 0 : MS_RDONLY | MS_NOSUID | MS_NODEV;
    if (mount("overlay", target, "overlay", flags, data) < 0)
        return cri_error_make(err, errno, "mount overlay on `%s`", target);
    return 0;
}

/* A detached id-mapped clone of dir (userns_fd gives the mapping). */
static int idmap_clone(const char *dir, int userns_fd, cri_error_t *err)
{
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (fd < 0)
        return cri_error_make(err, errno, "open_tree `%s`", dir);
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)userns_fd};
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
        int e = errno;
        close(fd);
        return cri_error_make(err, e, "id-map `%s`", dir);
    }
    return fd;
}

/* Mounts with the lower dirs opened and named by /proc/self/fd/N: plain
 * O_PATH opens, or id-mapped clones when userns_fd is not -1. */
static int mount_by_fds(char *const *dirs, size_t n, int userns_fd, const char *upper,
                        const char *work, const char *target, cri_error_t *err)
{
    int *fds = xcalloc(n, sizeof(int));
    char **names = xcalloc(n + 1, sizeof(char *));
    char *data = NULL;
    int rc = -1;
    size_t opened = 0;
    for (; opened < n; opened++) {
        if (userns_fd >= 0) {
            fds[opened] = idmap_clone(dirs[opened], userns_fd, err);
            if (fds[opened] < 0)
                goto out;
        } else {
            fds[opened] = open(dirs[opened], O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (fds[opened] < 0) {
                cri_error_make(err, errno, "open layer `%s`", dirs[opened]);
                goto out;
            }
        }
        names[opened] = xasprintf("/proc/self/fd/%d", fds[opened]);
    }
    data = overlay_data(names, n, upper, work);
    if (!data) {
        cri_error_set(err, E2BIG, "mount overlay on `%s`: %zu layers do not fit in the mount data",
                      target, n);
        goto out;
    }
    rc = do_mount(target, upper, data, err);
out:
    for (size_t i = 0; i < opened; i++)
        close(fds[i]); /* overlay keeps its own clones */
    free(fds);
    free(data);
    strv_free(names);
    return rc;
}

/* Makes the dirs a writable overlay needs; the empty lower dir (made with
 * empty_mode) only when there are no layers. */
static int make_dirs(size_t n_layers, const char *empty_dir, mode_t empty_mode, const char *upper,
                     const char *work, const char *target, cri_error_t *err)
{
    if (n_layers == 0 && mkdir_p(empty_dir, empty_mode, err) < 0)
        return -1;
    if (mkdir_p(upper, 0755, err) < 0 || mkdir_p(work, 0700, err) < 0 ||
        mkdir_p(target, 0755, err) < 0)
        return -1;
    return 0;
}

int rootfs_mount(char *const *layer_dirs, size_t n_layers, const char *empty_dir, const char *upper,
                 const char *work, const char *target, cri_error_t *err)
{
    char *const empty[] = {(char *)empty_dir, NULL};
    if (make_dirs(n_layers, empty_dir, 0700, upper, work, target, err) < 0)
        return -1;
    if (n_layers == 0) {
        layer_dirs = empty;
        n_layers = 1;
    }
    cleanup_free char *data = overlay_data(layer_dirs, n_layers, upper, work);
    if (data)
        return do_mount(target, upper, data, err);
    return mount_by_fds(layer_dirs, n_layers, -1, upper, work, target, err);
}

int rootfs_unmount(const char *target, cri_error_t *err)
{
    if (umount2(target, UMOUNT_NOFOLLOW) == 0 || errno == EINVAL || errno == ENOENT)
        return 0;
    if (errno == EBUSY && umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
        return 0;
    return cri_error_make(err, errno, "unmount `%s`", target);
}

int rootfs_mount_idmapped(char *const *layer_dirs, size_t n_layers, const char *empty_dir,
                          const char *upper, const char *work, const char *target,
                          const char *userns_path, unsigned root_uid, unsigned root_gid,
                          cri_error_t *err)
{
    char *const empty[] = {(char *)empty_dir, NULL};
    if (make_dirs(n_layers, empty_dir, 0755, upper, work, target, err) < 0)
        return -1;
    if (n_layers == 0) {
        layer_dirs = empty;
        n_layers = 1;
    }
    if (chown(upper, root_uid, root_gid) < 0)
        return cri_error_make(err, errno, "chown `%s` to the pod's root", upper);
    cleanup_close int userns_fd = open(userns_path, O_RDONLY | O_CLOEXEC);
    if (userns_fd < 0)
        return cri_error_make(err, errno, "open pod user namespace `%s`", userns_path);
    return mount_by_fds(layer_dirs, n_layers, userns_fd, upper, work, target, err);
}

bool rootfs_idmap_supported(const char *dir)
{
    int go[2];
    if (pipe2(go, O_CLOEXEC) < 0)
        return false;
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(go[1]);
        if (unshare(CLONE_NEWUSER) == 0)
            (void)!read(go[0], &c, 1);
        _exit(0);
    }
    close(go[0]);
    bool ok = false;
    char path[64];
    for (int tries = 0; pid > 0 && tries < 1000 && !ok; tries++) {
        /* the child's unshare is done once its ns/user differs from ours */
        struct stat mine, its;
        (void)snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
        ok = stat("/proc/self/ns/user", &mine) == 0 && stat(path, &its) == 0 &&
             mine.st_ino != its.st_ino;
        if (!ok)
            usleep(1000);
    }
    if (ok) {
        cri_error_t ignore = CRI_ERROR_INIT;
        /* an id-mapped mount needs both maps */
        static const char *const maps[] = {"uid_map", "gid_map"};
        for (int i = 0; i < 2 && ok; i++) {
            (void)snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, maps[i]);
            cleanup_close int mfd = open(path, O_WRONLY | O_CLOEXEC);
            ok = mfd >= 0 && write_all(mfd, "0 65534 1\n", 10) == 0;
        }
        (void)snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
        cleanup_close int ufd = ok ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        int fd = ufd >= 0 ? idmap_clone(dir, ufd, &ignore) : -1;
        ok = fd >= 0;
        if (fd >= 0)
            close(fd);
    }
    close(go[1]);
    if (pid > 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    return ok;
}

int rootfs_mount_readonly(char *const *layer_dirs, size_t n_layers, const char *empty_dir,
                          const char *target, cri_error_t *err)
{
    if (mkdir_p(empty_dir, 0755, err) < 0 || mkdir_p(target, 0755, err) < 0)
        return -1;
    /* overlay without an upper dir wants two lower dirs at least */
    char **lowers = xcalloc(n_layers + 2, sizeof(char *));
    lowers[0] = (char *)empty_dir;
    for (size_t i = 0; i < n_layers; i++)
        lowers[i + 1] = layer_dirs[i];
    char *data = overlay_data(lowers, n_layers + 1, NULL, NULL);
    int rc = data ? do_mount(target, NULL, data, err)
                  : mount_by_fds(lowers, n_layers + 1, -1, NULL, NULL, target, err);
    free(data);
    free(lowers);
    return rc;
}

bool rootfs_path_walkable(const char *path, char **ret_blocker)
{
    cleanup_free char *p = xstrdup(path);
    for (char *slash = p;; slash++) {
        slash = strchr(slash, '/');
        if (slash)
            *slash = '\0';
        struct stat st;
        const char *dir = p[0] ? p : "/";
        if (stat(dir, &st) < 0 || !(st.st_mode & S_IXOTH)) {
            *ret_blocker = xstrdup(dir);
            return false;
        }
        if (!slash)
            return true;
        *slash = '/';
    }
}
