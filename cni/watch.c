/* Which network config is in use, kept current by inotify.
 *
 * No thread: the kernel queues an event as the file operation happens, so
 * the reader drains the (non-blocking) inotify fd first and rescans only
 * when something changed. A config written just before a Status call is
 * therefore always seen by it, and an unchanged directory costs one read. */
#include "cni.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

struct cni_watch {
    char *dir;
    char *want;
    int fd; /* inotify, -1 when the directory could not be watched */
    pthread_mutex_t lock;
    bool scanned;
    /* the last scan: a path (and name) or the reason there is none */
    char *path, *name;
    cri_error_t why;
};

/* Reads every queued event; true when there was any. Lock held. */
static bool drain(cni_watch_t *w)
{
    _Alignas(struct inotify_event) char buf[4096];
    bool changed = false;
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof(buf));
        if (n <= 0)
            return changed;
        changed = true;
    }
}

static void rescan(cni_watch_t *w)
{
    free(w->path);
    free(w->name);
    w->path = w->name = NULL;
    cri_error_clear(&w->why);
    cni_find_config(w->dir, w->want, &w->path, &w->name, &w->why);
    w->scanned = true;
}

int cni_watch_start(const char *conf_dir, const char *want_name, cni_watch_t **ret,
                    cri_error_t *err)
{
    /* a node runtime owns its config dir: make it, so it can be watched
     * before the first config arrives */
    if (mkdir_p(conf_dir, 0755, err) < 0)
        return cri_error_wrap(err, "network config dir");
    cni_watch_t *w = xcalloc(1, sizeof(*w));
    w->dir = xstrdup(conf_dir);
    w->want = xstrdup(want_name ? want_name : "");
    pthread_mutex_init(&w->lock, NULL);
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0 ||
        inotify_add_watch(w->fd, conf_dir,
                          IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE |
                              IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF) < 0) {
        int e = errno;
        cni_watch_stop(w);
        return cri_error_make(err, e, "watch network config dir `%s`", conf_dir);
    }
    *ret = w;
    return 0;
}

int cni_watch_current(cni_watch_t *w, char **ret_path, char **ret_name, cri_error_t *err)
{
    pthread_mutex_lock(&w->lock);
    if (drain(w) || !w->scanned)
        rescan(w);
    int r = 0;
    if (w->path) {
        *ret_path = xstrdup(w->path);
        if (ret_name)
            *ret_name = xstrdup(w->name);
    } else {
        *err = w->why;
        r = -1;
    }
    pthread_mutex_unlock(&w->lock);
    return r;
}

void cni_watch_set_network(cni_watch_t *w, const char *want_name)
{
    char *want = xstrdup(want_name ? want_name : "");
    pthread_mutex_lock(&w->lock);
    free(w->want);
    w->want = want;
    w->scanned = false; /* the next reader rescans for it */
    pthread_mutex_unlock(&w->lock);
}

void cni_watch_stop(cni_watch_t *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    pthread_mutex_destroy(&w->lock);
    free(w->dir);
    free(w->want);
    free(w->path);
    free(w->name);
    free(w);
}
