/* Internals of cricket-conmon shared by its source files and the unit
 * tests. Not part of the module's contract (that is conmon.h and
 * PROTOCOL.md). */
#ifndef CRICKET_CONMON_INTERNAL_H
#define CRICKET_CONMON_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "conmon.h"

/* The monitor reads container output in chunks of this size: a line longer
 * than this (or split across two reads) becomes P pieces ending in F. */
#define CONMON_STDIO_BUF 8192

/* ---- CRI log writer (logwriter.c) ---------------------------------------- */

typedef struct conmon_log {
    int fd;           /* -1 when logging is off */
    char *path;       /* owned */
    int64_t max_size; /* 0 = unlimited */
    int64_t size;     /* bytes in the current file */
} conmon_log_t;

#define CONMON_LOG_INIT \
    {                   \
        -1, NULL, 0, 0  \
    }

/* Length of "2006-01-02T15:04:05.000000000Z". */
#define CONMON_TS_LEN 30

/* Formats Unix nanoseconds as RFC 3339 UTC with 9 fraction digits into buf
 * (at least CONMON_TS_LEN + 1 bytes). Returns the length written. */
size_t conmon_log_timestamp(int64_t unix_ns, char *buf, size_t size);

/* Opens (O_APPEND|O_CREAT, 0640) the log file at path; path NULL or "" keeps
 * logging off and succeeds. */
int conmon_log_open(conmon_log_t *log, const char *path, int64_t max_size, cri_error_t *err);

/* Closes the current fd and opens the path again (kubelet renamed the old
 * file away). On failure the old fd stays in use. */
int conmon_log_reopen(conmon_log_t *log, cri_error_t *err);

/* Writes one chunk read from a stream ("stdout" or "stderr") as CRI log
 * lines stamped with now_ns: every "\n"-terminated line is an F record
 * holding the line with its "\n"; a trailing piece without "\n" is a P
 * record (its content plus the record's "\n"). Nothing is buffered between
 * calls. With max_size set, the file is truncated before a write would take
 * it past max_size. */
int conmon_log_write(conmon_log_t *log, const char *stream, const char *buf, size_t len,
                     int64_t now_ns, cri_error_t *err);

/* Closes the fd and frees the path. */
void conmon_log_close(conmon_log_t *log);

/* ---- monitor (monitor_*.c) ------------------------------------------------ */

typedef struct conmon_opts {
    const char *id;
    const char *bundle;
    const char *runtime;
    const char **runtime_args; /* NULL-terminated, owned array of borrowed strings */
    size_t n_runtime_args;
    const char *log_path;
    int64_t log_max_size;
    const char *exit_dir;
    const char *socket_dir;
    int sync_fd;
    bool terminal;
    bool stdin_open;
    bool stdin_once;
    const char *pidfile;
    bool exec;
    const char *exec_process;
    int timeout_s;
    size_t exec_output_cap;
    int exec_attach_fd; /* exec: inherited SOCK_SEQPACKET for live stdio, or -1 */
    int exec_ctl_fd;    /* exec: inherited SOCK_SEQPACKET for ctl requests, or -1 */
    int oom_score_adj;  /* value the runtime child (and so the container) starts with */
    bool have_oom_score_adj;
} conmon_opts_t;

/* Parses the monitor's command line. EINVAL with a message on bad usage. */
int conmon_opts_parse(int argc, char **argv, conmon_opts_t *ret, cri_error_t *err);

/* What the runtime-start phase leaves for the supervision loop. */
typedef struct conmon_child {
    pid_t pid;         /* container init (create) or exec'd process */
    int out_fd;        /* stdout pipe read end, or the pty master; -1 if none */
    int err_fd;        /* stderr pipe read end; -1 with a pty */
    int in_fd;         /* stdin pipe write end, or a dup of the pty master; -1 */
    int oom_fd;        /* memory.oom_control / memory.events, or -1 */
    bool oom_v2;       /* oom_fd is a cgroup v2 memory.events */
    uint64_t oom_base; /* oom_kill count when the container was created */
    char *early_err;   /* stderr bytes read while the runtime ran (exec -d: the process's) */
    size_t early_err_len;
} conmon_child_t;

/* Runs `<runtime> create` (or `exec -d` in exec mode) with pipes or a pty,
 * and fills *ret. On failure err->msg is the runtime's own message. */
int conmon_runtime_start(const conmon_opts_t *o, int orig_oom_adj, conmon_child_t *ret,
                         cri_error_t *err);

/* Reads the oom_kill counter from an open memory.oom_control or
 * memory.events fd. */
int conmon_oom_count(int fd, uint64_t *ret, cri_error_t *err);

/* Opens the memory cgroup event file of `pid` (v1 memory.oom_control or v2
 * memory.events) found through /proc/<pid>/cgroup and /proc/self/mountinfo.
 * ENOENT when the process has no memory cgroup we can read. */
int conmon_oom_open(pid_t pid, int *ret_fd, bool *ret_v2, cri_error_t *err);

/* Result of supervision. */
typedef struct conmon_result {
    int wait_status; /* raw waitpid() status of the child */
    bool timed_out;
    char *out; /* exec mode: collected output (owned) */
    size_t out_len;
    bool out_trunc;
    char *err;
    size_t err_len;
    bool err_trunc;
} conmon_result_t;

/* The epoll loop: copies output to the log and attach clients, feeds stdin,
 * serves the control socket, reaps children, enforces the exec timeout, and
 * returns when the child has exited and its output is drained. The sockets
 * are listening fds (-1 when absent). */
int conmon_supervise(const conmon_opts_t *o, conmon_child_t *child, conmon_log_t *log,
                     int attach_fd, int ctl_fd, conmon_result_t *ret, cri_error_t *err);

/* Binds and listens on a SOCK_SEQPACKET unix socket `name` inside dir_fd
 * (through /proc/self/fd so long paths work). */
int conmon_listen_at(int dir_fd, const char *name, int *ret_fd, cri_error_t *err);

/* Sends one sync message on fd; errors are ignored (the daemon may be gone)
 * but reported through the return value. */
int conmon_sync_send(int fd, const conmon_sync_msg_t *msg);

/* ---- client side (client*.c) --------------------------------------------- */

/* Sends one ctl request (PROTOCOL.md "Control socket") on a connected
 * SOCK_SEQPACKET fd and waits up to timeout_ms (0 = 10 s) for the answer:
 * 0 on "ok"; "error E msg" comes back as err->status E. ETIMEDOUT without
 * an answer, ESRCH when the monitor closed the socket. `id` names the
 * container in messages. */
int conmon_ctl_exchange(int fd, const char *req, int timeout_ms, const char *id, cri_error_t *err);

#endif
