#include "exits.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

struct exit_watcher {
    char *dir;
    exit_watcher_fn fn;
    void *data;
    int inotify_fd;
    int stop_fd; /* eventfd: written once to stop the thread */
    pthread_t thread;
};

/* Reads dir/name and reports it; half-written temp files are skipped (the
 * monitor renames complete files into place). */
static void report(exit_watcher_t *w, const char *name)
{
    if (name[0] == '.' || strstr(name, ".tmp"))
        return;
    cleanup_free char *path = xasprintf("%s/%s", w->dir, name);
    conmon_exit_t e;
    cri_error_t err = CRI_ERROR_INIT;
    if (conmon_exit_read(path, &e, &err) < 0) {
        if (err.status != ENOENT)
            log_warn("exit file: %s, ignoring", err.msg);
        return;
    }
    w->fn(name, &e, w->data);
}

static void scan_existing(exit_watcher_t *w)
{
    cleanup_dir DIR *d = opendir(w->dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_type == DT_REG || de->d_type == DT_UNKNOWN)
            report(w, de->d_name);
}

static void drain_events(exit_watcher_t *w)
{
    _Alignas(struct inotify_event) char buf[16 * (sizeof(struct inotify_event) + NAME_MAX + 1)];
    for (;;) {
        ssize_t n = read(w->inotify_fd, buf, sizeof(buf));
        if (n <= 0)
            return;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            if (ev->len > 0 && !(ev->mask & IN_ISDIR))
                report(w, ev->name);
            if (ev->mask & IN_Q_OVERFLOW)
                scan_existing(w); /* events were lost: look again */
            p += sizeof(*ev) + ev->len;
        }
    }
}

static void *watch_main(void *data)
{
    exit_watcher_t *w = data;
    scan_existing(w);
    for (;;) {
        struct pollfd pfd[2] = {{.fd = w->inotify_fd, .events = POLLIN},
                                {.fd = w->stop_fd, .events = POLLIN}};
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("exit watcher: poll: %s", strerror(errno));
            return NULL;
        }
        if (pfd[1].revents)
            return NULL;
        if (pfd[0].revents)
            drain_events(w);
    }
}

static void watcher_free(exit_watcher_t *w)
{
    if (w->inotify_fd >= 0)
        close(w->inotify_fd);
    if (w->stop_fd >= 0)
        close(w->stop_fd);
    free(w->dir);
    free(w);
}

int exit_watcher_start(const char *dir, exit_watcher_fn fn, void *data, exit_watcher_t **ret,
                       cri_error_t *err)
{
    if (mkdir_p(dir, 0700, err) < 0)
        return -1;
    exit_watcher_t *w = xcalloc(1, sizeof(*w));
    w->dir = xstrdup(dir);
    w->fn = fn;
    w->data = data;
    w->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->inotify_fd < 0 || w->stop_fd < 0) {
        int e = errno;
        watcher_free(w);
        return cri_error_make(err, e, "start exit watcher");
    }
    if (inotify_add_watch(w->inotify_fd, dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
        int e = errno;
        watcher_free(w);
        return cri_error_make(err, e, "watch `%s`", dir);
    }
    int r = pthread_create(&w->thread, NULL, watch_main, w);
    if (r != 0) {
        watcher_free(w);
        return cri_error_make(err, r, "start exit watcher thread");
    }
    *ret = w;
    return 0;
}

void exit_watcher_stop(exit_watcher_t *w)
{
    if (!w)
        return;
    uint64_t one = 1;
    if (write(w->stop_fd, &one, sizeof(one)) != sizeof(one))
        log_warn("stop exit watcher: %s, ignoring", strerror(errno));
    pthread_join(w->thread, NULL);
    watcher_free(w);
}
