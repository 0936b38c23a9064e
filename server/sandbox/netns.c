/* Pod namespaces, pinned by a bind mount under <runroot>/netns/ (and, for a
 * pod without an infra process, <runroot>/ipcns/ and <runroot>/utsns/) so
 * they outlive every process in them and can be handed to CNI and to the
 * runtime by path.
 *
 * The namespaces are made by a short-lived thread: unshare(CLONE_NEWNET |
 * CLONE_NEWIPC | CLONE_NEWUTS) moves only the calling thread, which then
 * sets the pod's hostname, bind-mounts its own namespace files onto the
 * pins and exits. The daemon's other threads never change namespace. */
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
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/daemon.h"
#include "server/sandbox/sandbox-internal.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

struct pin_job {
    const host_ns_pins_t *pins;
    int status; /* errno; 0 on success */
    const char *step;
    const char *sysctl; /* the one that failed */
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

static int pin_fail(struct pin_job *job, const char *step)
{
    job->status = errno;
    job->step = step;
    return -1;
}

int sandbox_write_sysctls(char *const *sysctls, size_t *ret_failed)
{
    for (size_t i = 0; sysctls && sysctls[i]; i += 2) {
        int fd = open(sysctls[i], O_WRONLY | O_CLOEXEC);
        size_t len = strlen(sysctls[i + 1]);
        if (fd < 0 || write(fd, sysctls[i + 1], len) != (ssize_t)len) {
            int e = errno ? errno : EIO;
            if (fd >= 0)
                close(fd);
            *ret_failed = i;
            errno = e;
            return -1;
        }
        close(fd);
    }
    return 0;
}

/* Binds the calling thread's namespace of `type` onto path (made). */
static int pin_self(struct pin_job *job, const char *type, const char *path)
{
    if (!path[0])
        return 0;
    char self[64];
    (void)snprintf(self, sizeof(self), "/proc/self/task/%ld/ns/%s", (long)syscall(SYS_gettid),
                   type);
    if (mount(self, path, NULL, MS_BIND, NULL) < 0)
        return pin_fail(job, type[0] == 'n'   ? "bind mount network namespace"
                             : type[0] == 'i' ? "bind mount ipc namespace"
                                              : "bind mount uts namespace");
    return 0;
}

/* unshare(2) of net, ipc and uts moves only the calling thread (none needs
 * a single-threaded process, unlike a user or mount namespace) */
static void *pin_thread(void *data)
{
    struct pin_job *job = data;
    const host_ns_pins_t *p = job->pins;
    int flags = (p->net[0] ? CLONE_NEWNET : 0) | (p->ipc[0] ? CLONE_NEWIPC : 0) |
                (p->uts[0] ? CLONE_NEWUTS : 0);
    if (unshare(flags) < 0) {
        pin_fail(job, "unshare pod namespaces");
        return NULL;
    }
    if (p->net[0] && loopback_up() < 0) {
        pin_fail(job, "bring up loopback in new network namespace");
        return NULL;
    }
    if (p->uts[0] && sethostname(p->hostname, strlen(p->hostname)) < 0) {
        pin_fail(job, "set hostname in new uts namespace");
        return NULL;
    }
    size_t bad = 0;
    if (sandbox_write_sysctls(p->sysctls, &bad) < 0) {
        pin_fail(job, "write sysctl");
        job->sysctl = p->sysctls[bad];
        return NULL;
    }
    if (pin_self(job, "net", p->net) == 0 && pin_self(job, "ipc", p->ipc) == 0)
        pin_self(job, "uts", p->uts);
    /* the thread ends here; the mounts keep the namespaces */
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

static void unpin_each(const host_ns_pins_t *pins)
{
    cri_error_t ignore = CRI_ERROR_INIT;
    sandbox_netns_unpin(pins->net, &ignore);
    sandbox_netns_unpin(pins->ipc, &ignore);
    sandbox_netns_unpin(pins->uts, &ignore);
}

int sandbox_ns_pin(const host_ns_pins_t *pins, cri_error_t *err)
{
    if (!pins->net[0] && !pins->ipc[0] && !pins->uts[0])
        return 0;
    const char *paths[] = {pins->net, pins->ipc, pins->uts};
    const char *what[] = {"netns", "ipc namespace", "uts namespace"};
    for (size_t i = 0; i < 3; i++)
        if (paths[i][0] && sandbox_pin_file(paths[i], what[i], err) < 0) {
            unpin_each(pins);
            return -1;
        }
    struct pin_job job = {.pins = pins};
    pthread_t t;
    int r = pthread_create(&t, NULL, pin_thread, &job);
    if (r != 0) {
        unpin_each(pins);
        return cri_error_make(err, r, "start namespace thread");
    }
    pthread_join(t, NULL);
    if (job.status) {
        unpin_each(pins);
        if (job.sysctl)
            return cri_error_make(err, job.status, "write sysctl `%s` in the pod's namespaces",
                                  job.sysctl);
        return cri_error_make(err, job.status, "%s for pod pins `%s`", job.step,
                              pins->net[0]   ? pins->net
                              : pins->ipc[0] ? pins->ipc
                                             : pins->uts);
    }
    return 0;
}

int sandbox_ns_bind(const char *src, const char *type, const char *path, cri_error_t *err)
{
    if (sandbox_pin_file(path, "namespace", err) < 0)
        return -1;
    if (mount(src, path, NULL, MS_BIND, NULL) < 0) {
        int e = errno;
        unlink(path);
        return cri_error_make(err, e, "bind mount %s namespace on `%s`", type, path);
    }
    return 0;
}

int sandbox_unpin_all(daemon_t *d, sandbox_t *sb, cri_error_t *err)
{
    const char *paths[] = {sb->netns_path, sb->ipcns_path, sb->utsns_path, sb->userns_path};
    int rc = 0;
    cri_error_t ignore = CRI_ERROR_INIT;
    for (size_t i = 0; i < 4; i++)
        if (daemon_host_ops(d)->netns_unpin(paths[i], rc < 0 ? &ignore : err) < 0)
            rc = -1;
    return rc;
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

bool sandbox_pins_alive(daemon_t *d, sandbox_t *sb)
{
    cleanup_free char *bundle = sandbox_bundle_dir(d, sb->id);
    struct stat st;
    if (stat(bundle, &st) < 0)
        return false; /* runroot went (a reboot) */
    const char *paths[] = {sb->netns_path, sb->ipcns_path, sb->utsns_path, sb->userns_path};
    for (size_t i = 0; i < 4; i++)
        if (paths[i][0] && !daemon_host_ops(d)->netns_alive(paths[i]))
            return false;
    return true;
}

char **sandbox_sysctl_paths(const Runtime__V1__PodSandboxConfig *cfg)
{
    size_t n = cfg->linux ? cfg->linux->n_sysctls : 0;
    if (n == 0)
        return NULL;
    char **v = xcalloc(2 * n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        char *path = xasprintf("/proc/sys/%s", cfg->linux->sysctls[i]->key);
        for (char *c = path + strlen("/proc/sys/"); *c; c++)
            if (*c == '.')
                *c = '/';
        v[2 * i] = path;
        v[2 * i + 1] = xstrdup(cfg->linux->sysctls[i]->value);
    }
    return v;
}
