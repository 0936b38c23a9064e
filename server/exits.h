/* The exit watcher: one thread that learns of container exits from the
 * monitors' exit files (<runroot>/exits/<id>, renamed into place whole).
 *
 * It watches the directory with inotify (IN_MOVED_TO, IN_CLOSE_WRITE) and,
 * at start, reports the files already there: exits that happened while the
 * daemon was down. An exit may be reported more than once (a file seen by
 * both the first scan and an event): handlers must be idempotent. The
 * callback runs on the watcher thread and must not block for long. */
#ifndef CRICKET_SERVER_EXITS_H
#define CRICKET_SERVER_EXITS_H

#include "common/error.h"
#include "conmon/conmon.h"

typedef struct exit_watcher exit_watcher_t;

/* Called with the container (or sandbox) id and its parsed exit file. */
typedef void (*exit_watcher_fn)(const char *id, const conmon_exit_t *exit, void *data);

/* Starts watching dir (created if missing). Files already in dir are
 * reported first on the watcher thread, before any new event. Free with
 * exit_watcher_stop(). */
int exit_watcher_start(const char *dir, exit_watcher_fn fn, void *data, exit_watcher_t **ret,
                       cri_error_t *err);

/* Stops the thread and frees the watcher. NULL is fine. */
void exit_watcher_stop(exit_watcher_t *w);

#endif
