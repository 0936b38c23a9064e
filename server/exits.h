/* The exit watcher: one thread that learns of container exits from the
 * monitors' exit files (<runroot>/exits/<id>, renamed into place whole),
 * and of monitors that die without writing one.
 *
 * It watches the directory with inotify (IN_MOVED_TO, IN_CLOSE_WRITE) and,
 * at start, reports the files already there: exits that happened while the
 * daemon was down. An exit may be reported more than once (a file seen by
 * both the first scan and an event): handlers must be idempotent. The
 * callback runs on the watcher thread and must not block for long.
 *
 * Monitors: every container's (and pod infra's) cricket-conmon is a
 * grandchild the daemon cannot wait for, so the watcher holds a pidfd on it
 * (exit_watcher_watch) and one on the container's process. When the monitor
 * ends and its exit file is there, that file is the report (as above). When
 * it ends without one (SIGKILLed, crashed), the death callback hears it:
 * once with `running` when the container's process still runs (then the
 * watcher waits on the process's pidfd and calls again when it ends), or
 * once with the process's end. The exit status of a process that is not our
 * child comes from the kernel (PIDFD_GET_INFO with PIDFD_INFO_EXIT, Linux
 * 6.15+), as long as our pidfd was open before it was reaped; older kernels
 * give none (status_known false). */
#ifndef CRICKET_SERVER_EXITS_H
#define CRICKET_SERVER_EXITS_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"
#include "conmon/conmon.h"

typedef struct exit_watcher exit_watcher_t;

/* Called with the container (or sandbox) id and its parsed exit file. */
typedef void (*exit_watcher_fn)(const char *id, const conmon_exit_t *exit, void *data);

/* What the watcher knows when a monitor died without an exit file. */
typedef struct exit_watcher_death {
    pid_t monitor_pid;   /* 0 when it was already gone when watched */
    pid_t pid;           /* the container's process (0 = unknown) */
    bool running;        /* pid still runs: a second call reports its end */
    bool status_known;   /* wait_status is the kernel's */
    int wait_status;     /* waitpid(2) form, when status_known */
    int64_t finished_at; /* Unix ns when the end was seen (0 while running) */
} exit_watcher_death_t;

typedef void (*exit_watcher_death_fn)(const char *id, const exit_watcher_death_t *death,
                                      void *data);

/* Starts watching dir (created if missing). Files already in dir are
 * reported first on the watcher thread, before any new event. Free with
 * exit_watcher_stop(). */
int exit_watcher_start(const char *dir, exit_watcher_fn fn, void *data, exit_watcher_t **ret,
                       cri_error_t *err);

/* Sets the monitor death callback (same data as fn). Call once, before the
 * first exit_watcher_watch(). */
void exit_watcher_on_monitor_death(exit_watcher_t *w, exit_watcher_death_fn fn);

/* Watches the monitor of `id` (monitor_pid) and its container's process
 * (pid; 0 = none to watch). A monitor_pid that is 0 or already gone is
 * reported as dead on the watcher thread (unless the exit file is there).
 * Watching an id again replaces the old watch. w NULL: nothing (unit tests
 * without a watcher). Never fails: a pidfd that cannot be opened (ESRCH) is
 * a monitor (or process) already gone; without pidfds at all (ENOSYS) the
 * monitor is not watched (logged). */
void exit_watcher_watch(exit_watcher_t *w, const char *id, pid_t monitor_pid, pid_t pid);

/* Stops watching id (no callback for it any more). Missing or NULL w: fine. */
void exit_watcher_unwatch(exit_watcher_t *w, const char *id);

/* How many monitors (or orphaned processes) are watched (bench, SIGUSR1). */
size_t exit_watcher_count(exit_watcher_t *w);

/* The create-mode monitor of id that pid (a container's process) hangs
 * under: its parent (the monitor is a subreaper) when that parent's command
 * line has `--id <id>` and no `--exec`; 0 when the parent is anything else
 * (the monitor died and init adopted the process). For monitors adopted at
 * startup, whose pids were never recorded. */
pid_t exit_watcher_monitor_of(pid_t pid, const char *id);

/* Startup recovery without asking the runtime: pid (a container's process
 * as recorded) still runs, is no zombie, and hangs under the live
 * create-mode monitor of id whose exit files go to exit_dir. Returns that
 * monitor's pid; 0 when the monitors cannot tell (pid gone, ending, or not
 * under our monitor): then the runtime has to be asked. A reused pid cannot
 * pass: a monitor lives only as long as its container's process. */
pid_t exit_watcher_live_monitor(pid_t pid, const char *id, const char *exit_dir);

/* Stops the thread and frees the watcher. NULL is fine. */
void exit_watcher_stop(exit_watcher_t *w);

#endif
