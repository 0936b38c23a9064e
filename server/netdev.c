/* Interface counters of a network namespace (see netdev.h). */
#include "server/netdev.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

#define NETDEV_FILE_MAX ((size_t)1024 * 1024)

static int parse_line(const char *line, netdev_iface_t *ret, size_t lineno, cri_error_t *err)
{
    const char *colon = strchr(line, ':');
    if (!colon)
        return cri_error_set(err, EINVAL, "net/dev line %zu: no `:`", lineno);
    const char *start = line;
    while (*start == ' ')
        start++;
    size_t len = (size_t)(colon - start);
    if (len == 0 || len >= sizeof(ret->name))
        return cri_error_set(err, EINVAL, "net/dev line %zu: bad interface name", lineno);
    memset(ret, 0, sizeof(*ret));
    memcpy(ret->name, start, len);
    uint64_t v[16];
    const char *p = colon + 1;
    for (size_t i = 0; i < 16; i++) {
        char *end = NULL;
        errno = 0;
        v[i] = strtoull(p, &end, 10);
        if (end == p || errno)
            return cri_error_set(err, EINVAL, "net/dev line %zu (`%s`): %zu numbers, want 16",
                                 lineno, ret->name, i);
        p = end;
    }
    /* rx: bytes packets errs drop fifo frame compressed multicast; tx: same order */
    ret->rx_bytes = v[0];
    ret->rx_packets = v[1];
    ret->rx_errors = v[2];
    ret->rx_dropped = v[3];
    ret->tx_bytes = v[8];
    ret->tx_packets = v[9];
    ret->tx_errors = v[10];
    ret->tx_dropped = v[11];
    return 0;
}

int netdev_parse(const char *text, netdev_iface_t **ret, size_t *ret_n, cri_error_t *err)
{
    cleanup_free netdev_iface_t *out = NULL;
    size_t n = 0, lineno = 0;
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        cleanup_free char *line = xstrndup(p, len);
        p = nl ? nl + 1 : NULL;
        if (++lineno <= 2 || !line[0])
            continue; /* the two header lines */
        netdev_iface_t ifc;
        if (parse_line(line, &ifc, lineno, err) < 0)
            return -1;
        if (strcmp(ifc.name, "lo") == 0)
            continue;
        out = xrealloc(out, (n + 1) * sizeof(*out));
        out[n++] = ifc;
    }
    *ret = TAKE_PTR(out);
    *ret_n = n;
    return 0;
}

struct read_job {
    int fd;
    char *text;
    int status;
    const char *step;
};

static void *read_thread(void *data)
{
    struct read_job *job = data;
    if (setns(job->fd, CLONE_NEWNET) < 0) {
        job->status = errno;
        job->step = "enter network namespace";
        return NULL;
    }
    cri_error_t e = CRI_ERROR_INIT;
    if (read_file("/proc/thread-self/net/dev", NETDEV_FILE_MAX, &job->text, NULL, &e) < 0) {
        job->status = e.status ? e.status : EIO;
        job->step = "read /proc/thread-self/net/dev";
    }
    return NULL;
}

int netdev_read_netns(const char *netns_path, netdev_iface_t **ret, size_t *ret_n, cri_error_t *err)
{
    cleanup_close int fd = open(netns_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cri_error_make(err, errno, "open netns `%s`", netns_path);
    struct read_job job = {.fd = fd};
    pthread_t t;
    int r = pthread_create(&t, NULL, read_thread, &job);
    if (r != 0)
        return cri_error_make(err, r, "start netns thread");
    pthread_join(t, NULL);
    cleanup_free char *text = job.text;
    if (job.status)
        return cri_error_make(err, job.status, "%s of `%s`", job.step, netns_path);
    if (netdev_parse(text, ret, ret_n, err) < 0)
        return cri_error_wrap(err, "netns `%s`", netns_path);
    return 0;
}

int netdev_read_pid(pid_t pid, const char *netns_path, netdev_iface_t **ret, size_t *ret_n,
                    cri_error_t *err)
{
    char ns[64], dev[64];
    (void)snprintf(ns, sizeof(ns), "/proc/%d/ns/net", (int)pid);
    (void)snprintf(dev, sizeof(dev), "/proc/%d/net/dev", (int)pid);
    struct stat want, got;
    if (stat(netns_path, &want) < 0)
        return cri_error_make(err, errno, "netns `%s`", netns_path);
    cleanup_free char *text = NULL;
    if (stat(ns, &got) < 0 || read_file(dev, NETDEV_FILE_MAX, &text, NULL, err) < 0)
        return cri_error_set(err, ESRCH, "process %d is gone", (int)pid);
    /* checked after the read: the pid was in the pod's namespace throughout */
    struct stat after;
    if (stat(ns, &after) < 0 || after.st_ino != want.st_ino || after.st_dev != want.st_dev ||
        got.st_ino != want.st_ino || got.st_dev != want.st_dev)
        return cri_error_set(err, ESRCH, "process %d is not in netns `%s`", (int)pid, netns_path);
    if (netdev_parse(text, ret, ret_n, err) < 0)
        return cri_error_wrap(err, "netns `%s`", netns_path);
    return 0;
}

long netdev_default(const netdev_iface_t *ifs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ifs[i].name, "eth0") == 0)
            return (long)i;
    return n ? 0 : -1;
}
