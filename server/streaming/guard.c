/* Connection limits libmicrohttpd does not have: a deadline for the
 * handshake. MHD's own connection timeout restarts with every byte, so a
 * client sending its request head a byte at a time (slowloris) would hold
 * its connection forever. Every accepted connection is listed here (MHD's
 * connection notifications) with the time it was accepted; a thread
 * shuts down the socket of each one that has not been upgraded within the
 * timeout, and MHD, seeing the end of its input, closes it.
 *
 * MHD reports a connection closed before it closes the socket, and the
 * thread shuts sockets down only under the lock that report takes, so it
 * never touches a descriptor number that was closed and reused. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "common/util.h"
#include "server/streaming/streaming-internal.h"

#define GUARD_TICK_MS 250

typedef struct guard_conn {
    int fd;
    int64_t accepted_ms;
    bool upgraded, cut;
    struct guard_conn *prev, *next;
} guard_conn_t;

struct streaming_guard {
    int64_t timeout_ms;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping, thread_started;
    pthread_t thread;
    guard_conn_t *head;
    size_t n;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void cut_overdue(streaming_guard_t *g)
{
    int64_t now = now_ms();
    for (guard_conn_t *c = g->head; c; c = c->next) {
        if (c->upgraded || c->cut || now - c->accepted_ms < g->timeout_ms)
            continue;
        shutdown(c->fd, SHUT_RDWR); /* MHD reads EOF and closes it */
        c->cut = true;
    }
}

static void *guard_main(void *arg)
{
    streaming_guard_t *g = arg;
    pthread_mutex_lock(&g->lock);
    while (!g->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += GUARD_TICK_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&g->wake, &g->lock, &ts);
        if (!g->stopping)
            cut_overdue(g);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

streaming_guard_t *streaming_guard_new(int64_t timeout_ms)
{
    streaming_guard_t *g = xcalloc(1, sizeof(*g));
    g->timeout_ms = timeout_ms;
    pthread_mutex_init(&g->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&g->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (timeout_ms > 0 && pthread_create(&g->thread, NULL, guard_main, g) == 0)
        g->thread_started = true;
    return g;
}

void streaming_guard_stop(streaming_guard_t *g)
{
    if (!g || !g->thread_started)
        return;
    pthread_mutex_lock(&g->lock);
    g->stopping = true;
    pthread_cond_broadcast(&g->wake);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->thread, NULL);
    g->thread_started = false;
}

void streaming_guard_free(streaming_guard_t *g)
{
    if (!g)
        return;
    streaming_guard_stop(g);
    while (g->head) {
        guard_conn_t *c = g->head;
        g->head = c->next;
        free(c);
    }
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

static void guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                         enum MHD_ConnectionNotificationCode code)
{
    streaming_guard_t *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        guard_conn_t *c = xcalloc(1, sizeof(*c));
        c->fd = info ? info->connect_fd : -1;
        c->accepted_ms = now_ms();
        c->upgraded = c->fd < 0; /* nothing to cut */
        pthread_mutex_lock(&g->lock);
        c->next = g->head;
        if (g->head)
            g->head->prev = c;
        g->head = c;
        g->n++;
        pthread_mutex_unlock(&g->lock);
        *socket_context = c;
        return;
    }
    guard_conn_t *c = *socket_context;
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        g->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    g->n--;
    pthread_mutex_unlock(&g->lock);
    free(c);
    *socket_context = NULL;
}

void streaming_guard_option(streaming_guard_t *g, struct MHD_OptionItem *opt)
{
    *opt = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)guard_notify, g};
}

void streaming_guard_upgraded(streaming_guard_t *g, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    guard_conn_t *c = info ? info->socket_context : NULL;
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    c->upgraded = true;
    pthread_mutex_unlock(&g->lock);
}

size_t streaming_guard_count(streaming_guard_t *g)
{
    pthread_mutex_lock(&g->lock);
    size_t n = g->n;
    pthread_mutex_unlock(&g->lock);
    return n;
}
