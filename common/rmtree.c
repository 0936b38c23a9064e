/* rm_rf: removes a tree through directory fds (openat/unlinkat), so depth
 * and path length are unbounded (a container can build paths far longer
 * than PATH_MAX in its upper dir) and it uses two fds whatever the depth:
 * it walks down one directory at a time and back up through "..", checking
 * each step against the inode it came from. It never follows a symlink and
 * never enters another mount (mount ids by statx, st_dev where the kernel
 * has none): a mount inside the tree makes the removal fail with EBUSY and
 * leaves what is mounted alone. */
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cleanup.h"

/* Where a directory lives: its mount (or device) and inode. */
typedef struct place {
    uint64_t mnt;
    dev_t dev;
    ino_t ino;
} place_t;

/* One step down: the name of the directory entered and where its parent is. */
typedef struct level {
    char *name;
    place_t parent;
} level_t;

static int place_at(int dirfd, const char *name, place_t *ret, bool *ret_is_dir)
{
    struct statx stx;
    int flags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | (name[0] ? 0 : AT_EMPTY_PATH);
    if (statx(dirfd, name, flags, STATX_TYPE | STATX_INO | STATX_MNT_ID, &stx) < 0)
        return -1;
    ret->mnt = stx.stx_mask & STATX_MNT_ID ? stx.stx_mnt_id : 0;
    ret->dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
    ret->ino = stx.stx_ino;
    if (ret_is_dir)
        *ret_is_dir = S_ISDIR(stx.stx_mode);
    return 0;
}

static bool same_mount(const place_t *a, const place_t *b)
{
    return a->mnt && b->mnt ? a->mnt == b->mnt : a->dev == b->dev;
}

/* Removes every file and empty directory in dirfd. Returns 1 with
 * *ret_child (malloc'd) naming a non-empty subdirectory to descend into, 0
 * when nothing is left but mounts, -1 with errno set. */
static int empty_dir(int dirfd, const place_t *top, const atomic_bool *stop, char **ret_child)
{
    int fd = dup(dirfd);
    if (fd < 0)
        return -1;
    DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return -1;
    }
    rewinddir(dir);
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (errno = 0, e = readdir(dir))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (stop && atomic_load(stop)) {
            errno = ECANCELED;
            rc = -1;
            break;
        }
        place_t p;
        bool is_dir = false;
        if (place_at(dirfd, e->d_name, &p, &is_dir) < 0) {
            rc = errno == ENOENT ? 0 : -1;
            continue;
        }
        if (!is_dir) {
            if (unlinkat(dirfd, e->d_name, 0) < 0 && errno != ENOENT)
                rc = -1;
        } else if (!same_mount(&p, top)) {
            continue; /* a mount point: left alone, the parent's rmdir fails */
        } else if (unlinkat(dirfd, e->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
            if (errno == ENOTEMPTY || errno == EEXIST) {
                *ret_child = xstrdup(e->d_name);
                rc = 1;
            } else {
                rc = -1;
            }
        }
    }
    if (rc == 0 && errno != 0)
        rc = -1;
    int saved = errno;
    closedir(dir);
    errno = saved;
    return rc;
}

/* Goes up from fd to its parent, which must be `expect`; then removes the
 * directory we left. Returns the parent's fd, or -1 with errno set. */
static int climb(int fd, const level_t *lv)
{
    int pfd = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0)
        return -1;
    place_t p;
    if (place_at(pfd, "", &p, NULL) < 0 || p.ino != lv->parent.ino || p.dev != lv->parent.dev) {
        int e = errno ? errno : ESTALE;
        close(pfd);
        errno = e == ENOENT ? ESTALE : e;
        return -1;
    }
    if (unlinkat(pfd, lv->name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
        int e = errno;
        close(pfd);
        errno = e == ENOTEMPTY ? EBUSY : e; /* what is left is a mount */
        return -1;
    }
    return pfd;
}

static void levels_free(level_t *levels, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(levels[i].name);
    free(levels);
}

/* Empties the directory open as *fd, depth first. *fd moves with the walk
 * and ends on the top directory again on success. */
static int remove_contents(int *fd, const place_t *top, const atomic_bool *stop)
{
    level_t *levels = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        char *child = NULL;
        int r = empty_dir(*fd, top, stop, &child);
        if (r < 0)
            break;
        if (r == 1) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                levels = xrealloc(levels, cap * sizeof(*levels));
            }
            levels[n].name = child;
            int nfd = -1;
            if (place_at(*fd, "", &levels[n].parent, NULL) < 0 ||
                (nfd = openat(*fd, child, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
                free(child);
                break;
            }
            n++;
            close(*fd);
            *fd = nfd;
            continue;
        }
        if (n == 0) {
            free(levels);
            return 0;
        }
        int pfd = climb(*fd, &levels[n - 1]);
        if (pfd < 0)
            break;
        close(*fd);
        *fd = pfd;
        free(levels[--n].name);
    }
    int e = errno;
    levels_free(levels, n);
    errno = e;
    return -1;
}

int rm_rf(const char *path, cri_error_t *err)
{
    return rm_rf_stoppable(path, NULL, err);
}

int rm_rf_stoppable(const char *path, const atomic_bool *stop, cri_error_t *err)
{
    struct stat st;
    if (lstat(path, &st) < 0) /* ENOTDIR: a parent is a file, so path is not there */
        return errno == ENOENT || errno == ENOTDIR
                   ? 0
                   : cri_error_make(err, errno, "remove `%s`", path);
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) < 0 && errno != ENOENT)
            return cri_error_make(err, errno, "remove `%s`", path);
        return 0;
    }
    cleanup_close int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : cri_error_make(err, errno, "remove `%s`", path);
    place_t top;
    if (place_at(fd, "", &top, NULL) < 0)
        return cri_error_make(err, errno, "remove `%s`", path);
    if (remove_contents(&fd, &top, stop) < 0)
        return cri_error_make(err, errno, "remove `%s`", path);
    if (rmdir(path) < 0 && errno != ENOENT)
        return cri_error_make(err, errno, "remove `%s`", path);
    return 0;
}
