/* cricket-rro: makes bind mounts recursively read-only (CRI Mount
 * recursive_read_only) for OCI runtimes that lack the "rro" mount option
 * (runc < 1.2). Run by the runtime as a createContainer hook: in the
 * container's mount namespace, after its mounts are made and before
 * pivot_root, so `rootfs` is the container's root as the runtime sees it.
 *
 *   cricket-rro ROOTFS DEST...
 *
 * Each DEST (absolute, in the container) is resolved inside ROOTFS without
 * leaving it (openat2 RESOLVE_IN_ROOT, as the runtime resolved it to mount
 * there), must be a mount point, and gets MOUNT_ATTR_RDONLY on itself and
 * every mount below it (mount_setattr with AT_RECURSIVE, Linux >= 5.12).
 * The hook's state on stdin is read and ignored. Exits non-zero with a
 * message on stderr on the first failure: the runtime then fails the
 * create, so no container runs with a writable submount it was promised
 * read-only. */
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x00002000
#endif

static void drain_stdin(void)
{
    char buf[4096];
    while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
        ;
}

static int make_rro(int rootfd, const char *rootfs, const char *dest)
{
    struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, rootfd, dest, &how, sizeof(how));
    if (fd < 0) {
        (void)fprintf(stderr, "cricket-rro: open `%s` in `%s`: %s\n", dest, rootfs,
                      strerror(errno));
        return -1;
    }
    struct statx stx;
    if (statx(fd, "", AT_EMPTY_PATH, 0, &stx) < 0 ||
        !(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) ||
        !(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
        (void)fprintf(stderr, "cricket-rro: `%s` is not a mount point\n", dest);
        close(fd);
        return -1;
    }
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
        (void)fprintf(stderr, "cricket-rro: make `%s` recursively read-only: %s\n", dest,
                      strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argv[1][0] != '/') {
        (void)fprintf(stderr, "usage: cricket-rro ROOTFS DEST...\n");
        return 2;
    }
    drain_stdin();
    int rootfd = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
        (void)fprintf(stderr, "cricket-rro: open `%s`: %s\n", argv[1], strerror(errno));
        return 1;
    }
    for (int i = 2; i < argc; i++)
        if (make_rro(rootfd, argv[1], argv[i]) < 0)
            return 1;
    close(rootfd);
    return 0;
}
