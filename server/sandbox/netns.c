/* Pod network namespaces, pinned by a bind mount under <runroot>/netns/ so
 * they outlive every process in them and can be handed to CNI and to the
 * runtime by path.
 *
 * The namespace is made by a short-lived thread: unshare(CLONE_NEWNET) moves
 * only the calling thread, which then bind-mounts its own namespace file onto
 * the pin and exits. The daemon's other threads never change namespace. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/sandbox/sandbox-internal.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

struct pin_job {
    const char *path;
    int status; /* errno; 0 on success */
    const char *step;
};

/* Brings up `lo` in the calling thread's network namespace (what the CNI
 * loopback plugin would do, without a plugin run). */
static int loopback_up(void)
{
    cleanup_close int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, "lo", 3);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
        return -1;
    ifr.ifr_flags |= IFF_UP;
    return ioctl(fd, SIOCSIFFLAGS, &ifr);
}

static void *pin_thread(void *data)
{
    struct pin_job *job = data;
    if (unshare(CLONE_NEWNET) < 0) {
        job->status = errno;
        job->step = "unshare network namespace";
        return NULL;
    }
    if (loopback_up() < 0) {
        job->status = errno;
        job->step = "bring up loopback in new network namespace";
        return NULL;
    }
    char self[64];
    (void)snprintf(self, sizeof(self), "/proc/self/task/%ld/ns/net", (long)syscall(SYS_gettid));
    if (mount(self, job->path, NULL, MS_BIND, NULL) < 0) {
        job->status = errno;
        job->step = "bind mount network namespace";
    }
    /* the thread ends here; the mount keeps the namespace */
    return NULL;
}

int sandbox_pin_file(const char *path, const char *what, cri_error_t *err)
{
    cleanup_free char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir)
        *slash = '\0';
    if (mkdir_p(dir, 0711, err) < 0)
        return -1;
    int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0)
        return cri_error_make(err, errno, "create %s pin `%s`", what, path);
    close(fd);
    return 0;
}

int sandbox_netns_pin(const char *path, cri_error_t *err)
{
    if (sandbox_pin_file(path, "netns", err) < 0)
        return -1;
    struct pin_job job = {.path = path};
    pthread_t t;
    int r = pthread_create(&t, NULL, pin_thread, &job);
    if (r != 0) {
        unlink(path);
        return cri_error_make(err, r, "start netns thread");
    }
    pthread_join(t, NULL);
    if (job.status) {
        unlink(path);
        return cri_error_make(err, job.status, "%s at `%s`", job.step, path);
    }
    return 0;
}

int sandbox_netns_unpin(const char *path, cri_error_t *err)
{
    if (!path || !path[0] || (access(path, F_OK) < 0 && errno == ENOENT))
        return 0;
    if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
        return cri_error_make(err, errno, "unmount netns `%s`", path);
    if (unlink(path) < 0 && errno != ENOENT)
        return cri_error_make(err, errno, "remove netns pin `%s`", path);
    return 0;
}

bool sandbox_netns_alive(const char *path)
{
    struct statfs st;
    if (!path || !path[0] || statfs(path, &st) < 0)
        return false;
    return (unsigned long)st.f_type == (unsigned long)NSFS_MAGIC;
}
