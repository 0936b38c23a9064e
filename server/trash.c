/* The trash (see trash.h): rename into a trash dir, delete in a background
 * thread. */
#include "trash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "server/testhooks.h"

/* ioprio_set(2): glibc has no wrapper and no header for it */
#define TRASH_IOPRIO_WHO_PROCESS 1
#define TRASH_IOPRIO_CLASS_BE 2
#define TRASH_IOPRIO_CLASS_SHIFT 13
#define TRASH_IOPRIO_LOWEST 7
#define TRASH_NICE 19
#define TRASH_NAME_TRIES 8

struct trash {
    char **dirs;
    size_t n_dirs;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC */
    bool work;           /* a put since the last scan (under lock) */
    atomic_bool stop;
    atomic_uint_fast64_t seq;
    char **failed; /* deleter thread only: entries that failed this round */
};

/* The deleter yields to everything else: nice 19 and the lowest best-effort
 * I/O priority (not the idle class, which a busy disk can starve). */
static void lower_priority(void)
{
    pid_t tid = (pid_t)syscall(SYS_gettid);
    if (setpriority(PRIO_PROCESS, (id_t)tid, TRASH_NICE) < 0)
        log_debug("trash: setpriority: %s, ignoring", strerror(errno));
    int prio = TRASH_IOPRIO_CLASS_BE << TRASH_IOPRIO_CLASS_SHIFT | TRASH_IOPRIO_LOWEST;
    if (syscall(SYS_ioprio_set, TRASH_IOPRIO_WHO_PROCESS, tid, prio) < 0)
        log_debug("trash: ioprio_set: %s, ignoring", strerror(errno));
}

static bool failed_before(char *const *failed, const char *path)
{
    for (char *const *f = failed; f && *f; f++)
        if (strcmp(*f, path) == 0)
            return true;
    return false;
}

/* The names in dir (a missing dir holds nothing). */
static char **list_dir(const char *dir)
{
    char **names = NULL;
    cleanup_dir DIR *d = opendir(dir);
    if (!d) {
        if (errno != ENOENT)
            log_warn("trash: open `%s`: %s, retrying in %d s", dir, strerror(errno), TRASH_RETRY_S);
        return names;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            strv_push(&names, xstrdup(e->d_name));
    return names;
}

static void empty_one(trash_t *t, const char *dir)
{
    cleanup_strv char **names = list_dir(dir);
    for (char **n = names; n && *n && !atomic_load(&t->stop); n++) {
        cleanup_free char *path = xasprintf("%s/%s", dir, *n);
        if (failed_before(t->failed, path))
            continue;
        testhook_slow_wait("trash", &t->stop); /* tests hold the deleter here */
        cri_error_t err = CRI_ERROR_INIT;
        if (rm_rf_stoppable(path, &t->stop, &err) == 0)
            continue;
        if (err.status != ECANCELED) {
            log_warn("trash: %s, leaving it there and retrying in %d s and at the next start",
                     err.msg, TRASH_RETRY_S);
            strv_push(&t->failed, TAKE_PTR(path));
        }
        cri_error_clear(&err);
    }
}

static void deadline_in(struct timespec *ts, int seconds)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += seconds;
}

static void *deleter(void *arg)
{
    trash_t *t = arg;
    pthread_setname_np(pthread_self(), "cricket-trash");
    lower_priority();
    struct timespec retry_at;
    deadline_in(&retry_at, TRASH_RETRY_S);
    pthread_mutex_lock(&t->lock);
    while (!atomic_load(&t->stop)) {
        if (!t->work) {
            if (pthread_cond_timedwait(&t->cond, &t->lock, &retry_at) == ETIMEDOUT) {
                /* a new round: what failed is tried again (once per round) */
                strv_free(t->failed);
                t->failed = NULL;
                deadline_in(&retry_at, TRASH_RETRY_S);
                t->work = true;
            }
            continue;
        }
        t->work = false;
        pthread_mutex_unlock(&t->lock);
        for (size_t i = 0; i < t->n_dirs && !atomic_load(&t->stop); i++)
            empty_one(t, t->dirs[i]);
        pthread_mutex_lock(&t->lock);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

int trash_open(const char *const *dirs, size_t n_dirs, trash_t **ret, cri_error_t *err)
{
    for (size_t i = 0; i < n_dirs; i++)
        if (mkdir_private(dirs[i], 0700, NULL, err) < 0)
            return cri_error_wrap(err, "open the trash");
    trash_t *t = xcalloc(1, sizeof(*t));
    t->dirs = xcalloc(n_dirs + 1, sizeof(char *));
    for (size_t i = 0; i < n_dirs; i++)
        t->dirs[i] = xstrdup(dirs[i]);
    t->n_dirs = n_dirs;
    pthread_mutex_init(&t->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cond, &attr);
    pthread_condattr_destroy(&attr);
    atomic_init(&t->stop, false);
    atomic_init(&t->seq, 0);
    t->work = true; /* what an earlier life left */
    int r = pthread_create(&t->thread, NULL, deleter, t);
    if (r != 0) {
        trash_close(t);
        return cri_error_make(err, r, "start the trash deleter");
    }
    t->started = true;
    *ret = t;
    return 0;
}

void trash_close(trash_t *t)
{
    if (!t)
        return;
    if (t->started) {
        pthread_mutex_lock(&t->lock);
        atomic_store(&t->stop, true);
        pthread_cond_broadcast(&t->cond);
        pthread_mutex_unlock(&t->lock);
        pthread_join(t->thread, NULL);
    }
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
    strv_free(t->failed);
    strv_free(t->dirs);
    free(t);
}

static void wake(trash_t *t)
{
    pthread_mutex_lock(&t->lock);
    t->work = true;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

/* 0 when path went into dir, 1 when dir is on another mount (or the
 * rename cannot be done without replacing: the caller removes it itself),
 * -1 with errno set otherwise (ENOENT: path is not there). */
static int move_into(trash_t *t, const char *dir, const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    for (int i = 0; i < TRASH_NAME_TRIES; i++) {
        uint64_t seq = atomic_fetch_add(&t->seq, 1);
        cleanup_free char *dst =
            xasprintf("%s/%" PRIx64 "-%" PRIu64 "-%s", dir, (uint64_t)now_unix_ns(), seq, base);
        if (renameat2(AT_FDCWD, path, AT_FDCWD, dst, RENAME_NOREPLACE) == 0)
            return 0;
        if (errno == EXDEV || errno == EINVAL) /* EINVAL: no RENAME_NOREPLACE here */
            return 1;
        if (errno == ENOENT || errno == ENOTDIR) { /* ENOTDIR: a parent is a file */
            int e = errno;
            struct stat st;
            if (lstat(path, &st) == 0)
                return 1; /* the trash dir went away */
            errno = e;
            return -1;
        }
        if (errno != EEXIST)
            return -1;
    }
    return 1;
}

int trash_put(trash_t *t, const char *path, cri_error_t *err)
{
    for (size_t i = 0; t && i < t->n_dirs; i++) {
        int r = move_into(t, t->dirs[i], path);
        if (r == 0) {
            wake(t);
            return 0;
        }
        if (r < 0 && (errno == ENOENT || errno == ENOTDIR))
            return 0;
        if (r < 0)
            return cri_error_make(err, errno, "move `%s` to the trash", path);
    }
    return rm_rf(path, err);
}
