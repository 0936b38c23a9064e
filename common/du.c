/* Disk usage of a tree (writable layers, the image store): one pass with
 * openat()/fstatat() relative to the parent directory's fd, so no path is
 * ever built (no PATH_MAX limit), and a hash set of (dev, inode) for files
 * with more than one link so each is counted once in O(1). The old walk
 * kept hard links in a list: 200k doubly linked files took quadratic time. */
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"

/* Open directories held at once (one fd each); deeper ones are skipped. */
#define DU_MAX_DEPTH 256

typedef struct inode_key {
    dev_t dev;
    ino_t ino;
} inode_key_t;

/* Open addressing, linear probing, kept at most half full. */
typedef struct inode_set {
    inode_key_t *slots;
    bool *used;
    size_t cap, len;
} inode_set_t;

static size_t inode_hash(dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ULL ^ (uint64_t)dev * 0xc2b2ae3d27d4eb4fULL;
    return (size_t)(h ^ (h >> 29));
}

static void inode_set_grow(inode_set_t *s);

/* True when (dev, ino) was already there; adds it otherwise. */
static bool inode_set_seen(inode_set_t *s, dev_t dev, ino_t ino)
{
    if (2 * (s->len + 1) > s->cap)
        inode_set_grow(s);
    size_t i = inode_hash(dev, ino) & (s->cap - 1);
    while (s->used[i]) {
        if (s->slots[i].dev == dev && s->slots[i].ino == ino)
            return true;
        i = (i + 1) & (s->cap - 1);
    }
    s->used[i] = true;
    s->slots[i] = (inode_key_t){dev, ino};
    s->len++;
    return false;
}

static void inode_set_grow(inode_set_t *s)
{
    inode_set_t n = {.cap = s->cap ? s->cap * 2 : 1024};
    n.slots = xcalloc(n.cap, sizeof(*n.slots));
    n.used = xcalloc(n.cap, sizeof(*n.used));
    for (size_t i = 0; i < s->cap; i++)
        if (s->used[i])
            inode_set_seen(&n, s->slots[i].dev, s->slots[i].ino);
    free(s->slots);
    free(s->used);
    *s = n;
}

typedef struct du {
    dev_t root_dev;
    uint64_t bytes, inodes;
    inode_set_t links;
} du_t;

static void du_count(du_t *du, const struct stat *st)
{
    if (st->st_nlink > 1 && !S_ISDIR(st->st_mode) &&
        inode_set_seen(&du->links, st->st_dev, st->st_ino))
        return;
    du->bytes += (uint64_t)st->st_blocks * 512;
    du->inodes++;
}

/* Counts the entries of the directory open as fd (which it takes), and
 * below. Entries that vanish meanwhile are skipped. */
static void du_dir(du_t *du, int fd, int depth)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (st.st_dev != du->root_dev)
            continue; /* another file system mounted here */
        du_count(du, &st);
        if (!S_ISDIR(st.st_mode) || depth + 1 >= DU_MAX_DEPTH)
            continue;
        int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0)
            du_dir(du, sub, depth + 1);
    }
    closedir(d);
}

int dir_usage(const char *path, uint64_t *ret_bytes, uint64_t *ret_inodes, cri_error_t *err)
{
    du_t du = {0};
    struct stat st;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && (errno == ENOTDIR || errno == ELOOP)) {
        if (lstat(path, &st) < 0)
            return cri_error_make(err, errno, "walk `%s`", path);
        du_count(&du, &st); /* a lone file (or link) */
    } else if (fd < 0 && errno != ENOENT) {
        return cri_error_make(err, errno, "walk `%s`", path);
    } else if (fd >= 0) {
        if (fstat(fd, &st) < 0) {
            int e = errno;
            close(fd);
            return cri_error_make(err, e, "walk `%s`", path);
        }
        du.root_dev = st.st_dev;
        du_count(&du, &st);
        du_dir(&du, fd, 0);
    }
    free(du.links.slots);
    free(du.links.used);
    *ret_bytes = du.bytes;
    *ret_inodes = du.inodes;
    return 0;
}
