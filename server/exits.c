#include "exits.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

/* PIDFD_GET_INFO (Linux 6.13; PIDFD_INFO_EXIT since 6.15): Debian 12's
 * headers predate it. These are the first 64 bytes of struct pidfd_info
 * (PIDFD_INFO_SIZE_VER0); the kernel takes any size from that up. */
struct exits_pidfd_info {
    uint64_t mask;
    uint64_t cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    int32_t exit_code;
};
#define EXITS_PIDFD_GET_INFO _IOWR(0xFF, 11, struct exits_pidfd_info)
#define EXITS_PIDFD_INFO_EXIT (1ULL << 3)

/* epoll tags: the fixed fds, then one per watch (never reused) */
enum { TAG_INOTIFY = 1, TAG_STOP, TAG_KICK, TAG_FIRST_WATCH = 16 };

/* How long an ended process may stay unreaped (its exit status is only
 * stashed when it is reaped: by init once its monitor is gone). */
#define REAP_WAIT_MS 1000
#define CMDLINE_MAX ((size_t)64 * 1024)

typedef struct watch {
    struct watch *next;
    uint64_t tag;
    char *id;
    pid_t monitor_pid, pid;
    int monitor_fd; /* -1: the monitor was gone when watched (or is now) */
    int proc_fd;    /* -1: no process to watch */
    bool orphan;    /* monitor dead, process running: waiting on proc_fd */
} watch_t;

struct exit_watcher {
    char *dir;
    exit_watcher_fn fn;
    exit_watcher_death_fn death_fn;
    void *data;
    int inotify_fd;
    int stop_fd;  /* eventfd: written once to stop the thread */
    int kick_fd;  /* eventfd: a watch whose monitor was gone when added */
    int epoll_fd; /* the three above and every watch's pidfd */
    pthread_t thread;
    pthread_mutex_t lock; /* behind it: watches, next_tag */
    watch_t *watches;
    uint64_t next_tag;
};

static int pidfd_open_pid(pid_t pid)
{
    return pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
}

static void watch_free(watch_t *x)
{
    if (!x)
        return;
    if (x->monitor_fd >= 0)
        close(x->monitor_fd);
    if (x->proc_fd >= 0)
        close(x->proc_fd);
    free(x->id);
    free(x);
}

/* Unlinks the watch matching tag (tag != 0) or id; caller holds w->lock. */
static watch_t *watch_take_locked(exit_watcher_t *w, uint64_t tag, const char *id)
{
    for (watch_t **p = &w->watches; *p; p = &(*p)->next) {
        watch_t *x = *p;
        if (tag ? x->tag == tag : (id && strcmp(x->id, id) == 0)) {
            *p = x->next;
            x->next = NULL;
            return x;
        }
    }
    return NULL;
}

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

static bool fd_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

/* The wait status of a zombie from /proc/<pid>/stat (field 52, Linux 3.5+),
 * for an ended process nobody reaps (init of a container host that does not
 * reap, or one slow to): valid only while the pidfd's process is not
 * reaped, which pidfd_send_signal(0) proves after the read (a pid cannot be
 * reused while its zombie exists). */
static bool zombie_status(int pidfd, pid_t pid, int *ret_status)
{
    char path[64];
    (void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    cleanup_free char *text = NULL;
    cri_error_t ignore = CRI_ERROR_INIT;
    if (read_file(path, CMDLINE_MAX, &text, NULL, &ignore) < 0)
        return false;
    char *p = strrchr(text, ')');
    if (!p || syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
        return false;
    /* fields after the comm: 3 (state) ... 52 (exit_code) */
    char *save = NULL;
    char *f = strtok_r(p + 1, " ", &save);
    if (!f || strcmp(f, "Z") != 0)
        return false;
    for (int field = 3; f && field < 52; field++)
        f = strtok_r(NULL, " ", &save);
    if (!f)
        return false;
    *ret_status = (int)strtol(f, NULL, 10);
    return true;
}

/* The kernel's wait status of the ended process behind pidfd: the pidfd's
 * exit info once it is reaped, or its zombie's (waits up to REAP_WAIT_MS).
 * False when neither can be had (a kernel before 6.15 and the process was
 * reaped). */
static bool exit_status_of(int pidfd, pid_t pid, int *ret_status)
{
    const struct timespec tick = {0, 10L * 1000 * 1000};
    bool has_info = true;
    for (int waited = 0; waited <= REAP_WAIT_MS; waited += 10) {
        struct exits_pidfd_info info = {.mask = EXITS_PIDFD_INFO_EXIT};
        int r = has_info ? ioctl(pidfd, EXITS_PIDFD_GET_INFO, &info) : -1;
        if (r == 0 && (info.mask & EXITS_PIDFD_INFO_EXIT)) {
            *ret_status = info.exit_code;
            return true;
        }
        if (has_info && r < 0 && errno != ESRCH)
            has_info = false; /* ENOTTY/EINVAL: a kernel without it */
        if (zombie_status(pidfd, pid, ret_status))
            return true;
        nanosleep(&tick, NULL);
    }
    return false;
}

static void call_death(exit_watcher_t *w, const watch_t *x, bool running)
{
    exit_watcher_death_t dth = {.monitor_pid = x->monitor_pid, .pid = x->pid, .running = running};
    if (!running) {
        if (x->proc_fd >= 0)
            dth.status_known = exit_status_of(x->proc_fd, x->pid, &dth.wait_status);
        dth.finished_at = now_unix_ns();
    }
    if (w->death_fn)
        w->death_fn(x->id, &dth, w->data);
}

static bool exit_file_exists(exit_watcher_t *w, const char *id)
{
    cleanup_free char *path = xasprintf("%s/%s", w->dir, id);
    return access(path, F_OK) == 0;
}

/* x's monitor is gone (x is no longer listed): its exit file is the
 * report when there is one; else the process decides. */
static void settle(exit_watcher_t *w, watch_t *x)
{
    if (x->monitor_fd >= 0) {
        close(x->monitor_fd); /* leaves the epoll set */
        x->monitor_fd = -1;
    }
    if (exit_file_exists(w, x->id)) {
        report(w, x->id); /* the usual end (also seen through inotify) */
        watch_free(x);
        return;
    }
    if (x->proc_fd < 0 || fd_readable(x->proc_fd)) {
        call_death(w, x, false);
        watch_free(x);
        return;
    }
    /* keep waiting for the process itself (an epoll_ctl of an fd that is
     * already readable reports it at once: no race with its end); listed
     * before the callback, which may look (exit_watcher_count) */
    exit_watcher_death_t dth = {.monitor_pid = x->monitor_pid, .pid = x->pid, .running = true};
    cleanup_free char *id = xstrdup(x->id);
    pthread_mutex_lock(&w->lock);
    x->orphan = true;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = x->tag};
    if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, x->proc_fd, &ev) == 0) {
        x->next = w->watches;
        w->watches = x;
        x = NULL;
    }
    pthread_mutex_unlock(&w->lock);
    if (x) {
        log_warn("exit watcher: watch process %d of `%s`: %s, ignoring", (int)x->pid, x->id,
                 strerror(errno));
        watch_free(x);
    }
    if (w->death_fn)
        w->death_fn(id, &dth, w->data);
}

static void on_watch_event(exit_watcher_t *w, uint64_t tag)
{
    pthread_mutex_lock(&w->lock);
    watch_t *x = watch_take_locked(w, tag, NULL);
    pthread_mutex_unlock(&w->lock);
    if (!x)
        return; /* unwatched meanwhile */
    if (x->orphan) {
        call_death(w, x, false);
        watch_free(x);
        return;
    }
    settle(w, x);
}

/* Watches added with their monitor already gone. */
static void on_kick(exit_watcher_t *w)
{
    uint64_t v;
    if (read(w->kick_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        log_warn("exit watcher: read kick: %s, ignoring", strerror(errno));
    for (;;) {
        watch_t *x = NULL;
        pthread_mutex_lock(&w->lock);
        for (watch_t **p = &w->watches; *p; p = &(*p)->next) {
            if ((*p)->monitor_fd < 0 && !(*p)->orphan) {
                x = *p;
                *p = x->next;
                x->next = NULL;
                break;
            }
        }
        pthread_mutex_unlock(&w->lock);
        if (!x)
            return;
        settle(w, x);
    }
}

static void *watch_main(void *data)
{
    exit_watcher_t *w = data;
    scan_existing(w);
    for (;;) {
        struct epoll_event evs[16];
        int n = epoll_wait(w->epoll_fd, evs, 16, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_error("exit watcher: epoll_wait: %s", strerror(errno));
            return NULL;
        }
        /* exit files first: a monitor's end usually comes with one */
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == TAG_STOP)
                return NULL;
            if (evs[i].data.u64 == TAG_INOTIFY)
                drain_events(w);
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == TAG_KICK)
                on_kick(w);
            else if (evs[i].data.u64 >= TAG_FIRST_WATCH)
                on_watch_event(w, evs[i].data.u64);
        }
    }
}

static void watcher_free(exit_watcher_t *w)
{
    const int fds[] = {w->inotify_fd, w->stop_fd, w->kick_fd, w->epoll_fd};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    while (w->watches) {
        watch_t *x = w->watches;
        w->watches = x->next;
        watch_free(x);
    }
    pthread_mutex_destroy(&w->lock);
    free(w->dir);
    free(w);
}

static int epoll_add(int epfd, int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int watcher_open_fds(exit_watcher_t *w, cri_error_t *err)
{
    w->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    w->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (w->inotify_fd < 0 || w->stop_fd < 0 || w->kick_fd < 0 || w->epoll_fd < 0)
        return cri_error_make(err, errno, "start exit watcher");
    if (inotify_add_watch(w->inotify_fd, w->dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
        return cri_error_make(err, errno, "watch `%s`", w->dir);
    if (epoll_add(w->epoll_fd, w->inotify_fd, TAG_INOTIFY) < 0 ||
        epoll_add(w->epoll_fd, w->stop_fd, TAG_STOP) < 0 ||
        epoll_add(w->epoll_fd, w->kick_fd, TAG_KICK) < 0)
        return cri_error_make(err, errno, "start exit watcher: epoll");
    return 0;
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
    w->next_tag = TAG_FIRST_WATCH;
    pthread_mutex_init(&w->lock, NULL);
    if (watcher_open_fds(w, err) < 0) {
        watcher_free(w);
        return -1;
    }
    int r = pthread_create(&w->thread, NULL, watch_main, w);
    if (r != 0) {
        watcher_free(w);
        return cri_error_make(err, r, "start exit watcher thread");
    }
    *ret = w;
    return 0;
}

void exit_watcher_on_monitor_death(exit_watcher_t *w, exit_watcher_death_fn fn)
{
    pthread_mutex_lock(&w->lock);
    w->death_fn = fn;
    pthread_mutex_unlock(&w->lock);
}

void exit_watcher_watch(exit_watcher_t *w, const char *id, pid_t monitor_pid, pid_t pid)
{
    if (!w)
        return;
    exit_watcher_unwatch(w, id);
    watch_t *x = xcalloc(1, sizeof(*x));
    x->id = xstrdup(id);
    x->monitor_pid = monitor_pid;
    x->pid = pid;
    /* the process first: while the monitor lives it cannot be reaped
     * without an exit file, so this pidfd is the container's */
    x->proc_fd = pidfd_open_pid(pid);
    x->monitor_fd = pidfd_open_pid(monitor_pid);
    if (monitor_pid > 0 && x->monitor_fd < 0 && errno != ESRCH) {
        /* no pidfds (ENOSYS: a kernel before 5.3, valgrind): unwatched,
         * never taken for dead */
        log_warn("exit watcher: pidfd of monitor %d of `%s`: %s; its death would go unnoticed",
                 (int)monitor_pid, id, strerror(errno));
        watch_free(x);
        return;
    }
    pthread_mutex_lock(&w->lock);
    x->tag = w->next_tag++;
    if (x->monitor_fd >= 0 && epoll_add(w->epoll_fd, x->monitor_fd, x->tag) < 0) {
        log_warn("exit watcher: watch monitor %d of `%s`: %s, ignoring", (int)monitor_pid, id,
                 strerror(errno));
        close(x->monitor_fd);
        x->monitor_fd = -1;
    }
    bool gone = x->monitor_fd < 0;
    x->next = w->watches;
    w->watches = x;
    pthread_mutex_unlock(&w->lock);
    uint64_t one = 1;
    if (gone && write(w->kick_fd, &one, sizeof(one)) != sizeof(one))
        log_warn("exit watcher: kick: %s, ignoring", strerror(errno));
}

void exit_watcher_unwatch(exit_watcher_t *w, const char *id)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    watch_t *x = watch_take_locked(w, 0, id);
    pthread_mutex_unlock(&w->lock);
    watch_free(x);
}

size_t exit_watcher_count(exit_watcher_t *w)
{
    if (!w)
        return 0;
    size_t n = 0;
    pthread_mutex_lock(&w->lock);
    for (watch_t *x = w->watches; x; x = x->next)
        n++;
    pthread_mutex_unlock(&w->lock);
    return n;
}

/* Whether pid is the create-mode monitor of id (`--id <id>`, no `--exec`)
 * and, when exit_dir is not NULL, writes its exit file into exit_dir. */
static bool is_monitor(pid_t pid, const char *id, const char *exit_dir)
{
    if (pid <= 1)
        return false;
    char path[64];
    (void)snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    cleanup_free char *text = NULL;
    size_t len = 0;
    cri_error_t ignore = CRI_ERROR_INIT;
    if (read_file(path, CMDLINE_MAX, &text, &len, &ignore) < 0)
        return false;
    bool id_found = false, dir_found = exit_dir == NULL;
    const char *prev = "";
    for (size_t off = 0; off < len;) {
        const char *arg = text + off;
        if (strcmp(arg, "--exec") == 0)
            return false;
        if (strcmp(prev, "--id") == 0 && strcmp(arg, id) == 0)
            id_found = true;
        if (exit_dir && strcmp(prev, "--exit-dir") == 0 && strcmp(arg, exit_dir) == 0)
            dir_found = true;
        prev = arg;
        off += strlen(arg) + 1;
    }
    return id_found && dir_found;
}

/* pid's parent from /proc/<pid>/status; 0 when pid is gone or, with
 * live_only, a zombie (its end is being reported). */
static pid_t parent_of(pid_t pid, bool live_only)
{
    if (pid <= 0)
        return 0;
    char path[64];
    (void)snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    cleanup_free char *text = NULL;
    cri_error_t ignore = CRI_ERROR_INIT;
    if (read_file(path, CMDLINE_MAX, &text, NULL, &ignore) < 0)
        return 0;
    const char *state = strstr(text, "\nState:");
    if (live_only) {
        if (!state)
            return 0;
        state += strlen("\nState:");
        state += strspn(state, " \t");
        if (*state == 'Z' || *state == 'X' || *state == '\0')
            return 0;
    }
    const char *p = strstr(text, "\nPPid:");
    return p ? (pid_t)strtol(p + 6, NULL, 10) : 0;
}

pid_t exit_watcher_monitor_of(pid_t pid, const char *id)
{
    pid_t ppid = parent_of(pid, false);
    return is_monitor(ppid, id, NULL) ? ppid : 0;
}

pid_t exit_watcher_live_monitor(pid_t pid, const char *id, const char *exit_dir)
{
    pid_t ppid = parent_of(pid, true);
    return is_monitor(ppid, id, exit_dir) ? ppid : 0;
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
