/* Running helper binaries (OCI runtimes, CNI plugins) from a threaded daemon.
 *
 * posix_spawn (vfork-style: nothing allocated between fork and exec), a
 * cleared signal mask and default dispositions in the child, stdin fed from
 * memory, stdout/stderr captured up to a cap, and a deadline enforced with
 * SIGKILL. Every fd the caller owns must be O_CLOEXEC. */
#ifndef CRICKET_COMMON_SPAWN_H
#define CRICKET_COMMON_SPAWN_H

#include <stddef.h>

#include "common/error.h"

#define SPAWN_CAPTURE_MAX_DEFAULT ((size_t)1024 * 1024)

typedef struct spawn_opts {
    const char *const *argv; /* argv[0] is an absolute path */
    const char *const *envp; /* NULL: inherit the daemon's environment */
    const void *stdin_data;  /* fed to stdin when stdin_fd < 0 (NULL: /dev/null) */
    size_t stdin_len;
    int stdin_fd;               /* >= 0: used as stdin */
    int stdout_fd;              /* >= 0: used as stdout; -1: captured into result.out */
    int stderr_fd;              /* >= 0: used as stderr; -1: captured into result.err */
    int timeout_ms;             /* > 0 */
    const char *kill_pid_file;  /* on timeout, SIGKILL the pid written there and its
                                   descendants, then the child after a 2 s grace if it
                                   is still there */
    size_t capture_max;         /* per stream; 0 = SPAWN_CAPTURE_MAX_DEFAULT; the rest is dropped */
    void (*started)(void *arg); /* called once the child runs (its stdin fed as far as the
                                   pipe takes it); NULL = none. Test builds' failpoints */
    void *started_arg;
} spawn_opts_t;

/* Options with every fd unset (-1) and nothing else set. */
#define SPAWN_OPTS_INIT                                                       \
    {                                                                         \
        .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1, .timeout_ms = 60000 \
    }

typedef struct spawn_result {
    int wait_status; /* as from waitpid() */
    char *out;       /* NUL-terminated capture; caller frees with spawn_result_free() */
    size_t out_len;
    char *err;
    size_t err_len;
} spawn_result_t;

/* Frees the captures (the struct itself is the caller's). */
void spawn_result_free(spawn_result_t *r);

/* Runs opts->argv until it exits. A non-zero exit is success here: read
 * ret->wait_status. ETIMEDOUT after killing it past the deadline; the
 * errno of spawn/pipe/poll otherwise. */
int spawn_run(const spawn_opts_t *opts, spawn_result_t *ret, cri_error_t *err);

/* "exit status 3", "killed by signal 9 (Killed)": for messages. */
void spawn_describe_status(int wait_status, char *buf, size_t len);

#endif
