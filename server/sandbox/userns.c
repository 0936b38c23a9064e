/* A pod's user namespace (userns_options mode POD), pinned by a bind mount
 * under <runroot>/userns/<id> like the netns pin, and the pod's network
 * namespace created inside it.
 *
 * Why a helper process: setns(2) into a user namespace and unshare(2) of
 * one are refused to a multi-threaded process, so a forked child makes the
 * namespace; the daemon writes its uid_map and gid_map (a parent with
 * CAP_SETUID/CAP_SETGID may map any range), pins /proc/<child>/ns/user and
 * then lets the child make the network namespace (and, for a pod without
 * an infra process, its ipc and uts namespaces, the hostname set), which
 * the new user namespace therefore owns. That ownership matters: runc joins the user
 * namespace first and the others after it, and the kernel lets a process
 * of a child user namespace join, and mount sysfs for, only a network
 * namespace owned by its own user namespace. The infra container and every
 * container of the pod then join both pins by path.
 *
 * The child runs only async-signal-safe calls (unshare, read, write,
 * socket, ioctl, sethostname, open, close, _exit): it was forked from a threaded daemon. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sched.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "oci/oci.h"
#include "server/sandbox/sandbox-internal.h"

/* What the child reports back: one byte per step, 'u' (userns made), 'n'
 * (netns made, lo up) or 'e' followed by the errno. */
static void child_fail(int fd, int e)
{
    char msg[1 + sizeof(int)];
    msg[0] = 'e';
    memcpy(msg + 1, &e, sizeof(int));
    (void)!write(fd, msg, sizeof(msg));
    _exit(1);
}

static int child_lo_up(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, "lo", 3);
    int r = ioctl(fd, SIOCGIFFLAGS, &ifr);
    if (r == 0) {
        ifr.ifr_flags |= IFF_UP;
        r = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

static void child_main(int report, int go, const host_ns_pins_t *pins)
{
    char c;
    if (unshare(CLONE_NEWUSER) < 0)
        child_fail(report, errno);
    (void)!write(report, "u", 1);
    if (read(go, &c, 1) != 1)
        _exit(1); /* the daemon gave up */
    int flags = (pins->net[0] ? CLONE_NEWNET : 0) | (pins->ipc[0] ? CLONE_NEWIPC : 0) |
                (pins->uts[0] ? CLONE_NEWUTS : 0);
    if (flags && unshare(flags) < 0)
        child_fail(report, errno);
    if (pins->net[0] && child_lo_up() < 0)
        child_fail(report, errno);
    if (pins->uts[0] && sethostname(pins->hostname, strlen(pins->hostname)) < 0)
        child_fail(report, errno);
    size_t bad = 0;
    if (sandbox_write_sysctls(pins->sysctls, &bad) < 0)
        child_fail(report, errno);
    (void)!write(report, "n", 1);
    (void)!read(go, &c, 1); /* stay alive until every pin is made */
    _exit(0);
}

/* Waits for the child's next step; EPROTO when it died without a word. */
static int wait_step(int fd, char want, const char *what, cri_error_t *err)
{
    char msg[1 + sizeof(int)];
    ssize_t n;
    do
        n = read(fd, msg, sizeof(msg));
    while (n < 0 && errno == EINTR);
    if (n >= 1 && msg[0] == want)
        return 0;
    if (n == (ssize_t)sizeof(msg) && msg[0] == 'e') {
        int e;
        memcpy(&e, msg + 1, sizeof(int));
        return cri_error_make(err, e, "%s", what);
    }
    return cri_error_set(err, EPROTO, "%s: the helper process died", what);
}

static int write_map(pid_t pid, const char *file, const uint32_t map[3], cri_error_t *err)
{
    char path[64], line[64];
    (void)snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    int len = snprintf(line, sizeof(line), "%u %u %u\n", map[0], map[1], map[2]);
    cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return cri_error_make(err, errno, "open `%s`", path);
    if (write(fd, line, (size_t)len) != len)
        return cri_error_make(err, errno, "write `%s` (%u %u %u)", path, map[0], map[1], map[2]);
    return 0;
}

static int pin_ns(pid_t pid, const char *type, const char *path, cri_error_t *err)
{
    if (!path[0])
        return 0;
    char src[64];
    (void)snprintf(src, sizeof(src), "/proc/%d/ns/%s", (int)pid, type);
    return sandbox_ns_bind(src, type, path, err);
}

/* The parent's half, with the child running; on failure the caller kills
 * it and removes the pins. */
struct pin_req {
    const char *userns_path;
    const host_ns_pins_t *pins;
    const uint32_t *uid_map, *gid_map;
};

static int pin_steps(pid_t pid, int report, int go, const struct pin_req *r, cri_error_t *err)
{
    if (wait_step(report, 'u', "unshare user namespace", err) < 0)
        return -1;
    if (write_map(pid, "uid_map", r->uid_map, err) < 0 ||
        write_map(pid, "gid_map", r->gid_map, err) < 0)
        return cri_error_wrap(err, "map pod user namespace");
    if (pin_ns(pid, "user", r->userns_path, err) < 0)
        return -1;
    if (write(go, "g", 1) != 1)
        return cri_error_make(err, errno, "signal the namespace helper");
    if (wait_step(report, 'n', "make pod namespaces (hostname, sysctls) in the pod user namespace",
                  err) < 0)
        return -1;
    if (pin_ns(pid, "net", r->pins->net, err) < 0 || pin_ns(pid, "ipc", r->pins->ipc, err) < 0 ||
        pin_ns(pid, "uts", r->pins->uts, err) < 0)
        return -1;
    return 0;
}

int sandbox_userns_pin(const char *userns_path, const host_ns_pins_t *pins,
                       const uint32_t uid_map[3], const uint32_t gid_map[3], cri_error_t *err)
{
    const struct pin_req req = {userns_path, pins, uid_map, gid_map};
    int report[2], go[2];
    if (pipe2(report, O_CLOEXEC) < 0)
        return cri_error_make(err, errno, "pipe");
    if (pipe2(go, O_CLOEXEC) < 0) {
        int e = errno;
        close(report[0]);
        close(report[1]);
        return cri_error_make(err, e, "pipe");
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(report[0]);
        close(go[1]);
        child_main(report[1], go[0], pins);
    }
    close(report[1]);
    close(go[0]);
    int rc = pid < 0 ? cri_error_make(err, errno, "fork namespace helper")
                     : pin_steps(pid, report[0], go[1], &req, err);
    close(report[0]);
    close(go[1]); /* the child reads EOF and exits */
    if (pid > 0) {
        if (rc < 0)
            kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (rc < 0) {
        cri_error_t ignore = CRI_ERROR_INIT;
        sandbox_netns_unpin(pins->net, &ignore);
        sandbox_netns_unpin(pins->ipc, &ignore);
        sandbox_netns_unpin(pins->uts, &ignore);
        sandbox_netns_unpin(userns_path, &ignore);
    }
    return rc;
}

void sandbox_oci_userns(const sandbox_t *sb, oci_desc_t *desc)
{
    if (!sb->userns_path[0])
        return;
    desc->ns_user = (oci_namespace_t){OCI_NS_JOIN, sb->userns_path};
    desc->uid_map = (oci_idmap_t){sb->uid_map[0], sb->uid_map[1], sb->uid_map[2]};
    desc->gid_map = (oci_idmap_t){sb->gid_map[0], sb->gid_map[1], sb->gid_map[2]};
}
