/* PortForward's real backend: connect to localhost:<port> inside a pod's
 * network namespace. setns(CLONE_NEWNET) changes only the calling thread,
 * so a short-lived thread enters the namespace, connects and exits; the
 * socket keeps the namespace it was created in, and no daemon thread ever
 * runs in a pod's namespace afterwards. tcp4 first, then tcp6, as
 * containerd's sandbox port-forward does. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/streaming/streaming-internal.h"

#define CONNECT_TIMEOUT_S 10

typedef struct dial {
    const char *netns_path;
    uint16_t port;
    int fd;
    cri_error_t err;
} dial_t;

static int connect_one(int family, uint16_t port, int *ret_fd, cri_error_t *err)
{
    cleanup_close int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return cri_error_make(err, errno, "socket");
    struct timeval tv = {.tv_sec = CONNECT_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    }
    if (connect(fd, (struct sockaddr *)&ss, len) < 0)
        return cri_error_make(err, errno, "connect to %s port %u",
                              family == AF_INET ? "127.0.0.1" : "[::1]", port);
    struct timeval zero = {0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof(zero));
    *ret_fd = TAKE_FD(fd);
    return 0;
}

static void *dial_main(void *arg)
{
    dial_t *d = arg;
    if (d->netns_path[0]) {
        cleanup_close int ns = open(d->netns_path, O_RDONLY | O_CLOEXEC);
        if (ns < 0) {
            cri_error_make(&d->err, errno, "open netns `%s`", d->netns_path);
            return NULL;
        }
        if (setns(ns, CLONE_NEWNET) < 0) {
            cri_error_make(&d->err, errno, "setns `%s`", d->netns_path);
            return NULL;
        }
    }
    cri_error_t err4 = CRI_ERROR_INIT;
    if (connect_one(AF_INET, d->port, &d->fd, &err4) == 0)
        return NULL;
    if (connect_one(AF_INET6, d->port, &d->fd, &d->err) == 0)
        return NULL;
    if (d->err.status == EAFNOSUPPORT || d->err.status == EADDRNOTAVAIL)
        d->err = err4; /* no IPv6 in the pod: the tcp4 error says more */
    return NULL;
}

int streaming_netns_connect(const char *netns_path, uint16_t port, int *ret_fd, cri_error_t *err)
{
    dial_t d = {.netns_path = netns_path ? netns_path : "", .port = port, .fd = -1};
    pthread_t t;
    int rc = pthread_create(&t, NULL, dial_main, &d);
    if (rc != 0)
        return cri_error_make(err, rc, "start port-forward thread");
    pthread_join(t, NULL);
    if (d.fd < 0) {
        *err = d.err;
        return -1;
    }
    *ret_fd = d.fd;
    return 0;
}
