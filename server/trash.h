/* The trash: removal of trees off the request path (issue 15).
 *
 * A handler that drops a tree (a container's dirs, an unpacked layer, a
 * blob) renames it into a trash dir on the same filesystem under a unique
 * name, which costs one rename() whatever the size, and answers; a
 * background thread (nice 19, lowest best-effort I/O priority) deletes what
 * the trash dirs hold. The thread starts with the daemon and first empties
 * what an earlier life left (a crash, a stop mid-delete), never delaying the
 * start. A tree it cannot delete (an immutable file, a mount inside) is
 * logged once and tried again every TRASH_RETRY_S seconds and at the next
 * start; it stays in the trash meanwhile, so no disk is forgotten.
 *
 * Crash safety: a rename is atomic, so a crash leaves a tree either at its
 * old path or whole in the trash, and every trash entry is garbage. */
#ifndef CRICKET_SERVER_TRASH_H
#define CRICKET_SERVER_TRASH_H

#include <stddef.h>

#include "common/error.h"

#define TRASH_RETRY_S 300

typedef struct trash trash_t;

/* Makes the trash dirs (0700, one per filesystem the daemon removes trees
 * on: `<root>/trash`, `<runroot>/trash`) and starts the deleter. Free with
 * trash_close(). err->status: errno of mkdir or pthread_create. */
int trash_open(const char *const *dirs, size_t n_dirs, trash_t **ret, cri_error_t *err);

/* Moves path (a tree or a file) into the trash dir on its filesystem and
 * wakes the deleter. A missing path is success. When no trash dir shares
 * its mount (EXDEV), or t is NULL, path is removed here with rm_rf().
 * err->status: errno of rename or of the removal (ENOENT never). */
int trash_put(trash_t *t, const char *path, cri_error_t *err);

/* Stops the deleter (in the middle of a tree, whose rest waits for the next
 * start) and frees t. NULL is fine. */
void trash_close(trash_t *t);

#endif
