/* conmon/: the daemon-side client of cricket-conmon, and the wire formats
 * the monitor and the daemon share (sync-pipe messages, exit files).
 *
 * The full contract (CLI, sync messages, exit file, control and attach
 * sockets) is written down in conmon/PROTOCOL.md. Every function here is
 * safe to call from any thread of the daemon: no globals, every fd is
 * O_CLOEXEC, and the monitor is started with posix_spawn(). */
#ifndef CRICKET_CONMON_CONMON_H
#define CRICKET_CONMON_CONMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

/* ---- exit files: <exit-dir>/<id> ---------------------------------------- */

typedef struct conmon_exit {
    pid_t pid;           /* the container's init pid (host pid namespace) */
    int exit_code;       /* exit status, or 128 + signal when killed */
    int signal;          /* the killing signal, 0 when it exited */
    bool oom_killed;     /* the container's memory cgroup saw an OOM kill */
    int64_t finished_at; /* Unix nanoseconds */
} conmon_exit_t;

/* Formats `e` (for container `id`) as the exit-file JSON text, one line
 * ending in "\n". *ret_json is malloc'd; the caller frees it. */
int conmon_exit_format(const char *id, const conmon_exit_t *e, char **ret_json, cri_error_t *err);

/* Parses exit-file JSON text. EINVAL when malformed or a field is missing
 * or has the wrong type. */
int conmon_exit_parse(const char *data, size_t len, conmon_exit_t *ret, cri_error_t *err);

/* Reads and parses the exit file at `path`. ENOENT when it does not exist
 * (yet): the monitor renames it into place whole, so a file that exists is
 * complete. */
int conmon_exit_read(const char *path, conmon_exit_t *ret, cri_error_t *err);

/* ---- sync-pipe messages ------------------------------------------------- */

typedef enum conmon_sync_type {
    CONMON_SYNC_MONITOR = 1, /* the detached monitor's pid */
    CONMON_SYNC_CREATED,     /* `runtime create` succeeded: container pid */
    CONMON_SYNC_ERROR,       /* startup failed: message (+ errno) */
    CONMON_SYNC_EXEC,        /* exec finished: exit code, timed_out, lengths */
} conmon_sync_type_t;

typedef struct conmon_sync_msg {
    conmon_sync_type_t type;
    pid_t pid;         /* MONITOR, CREATED, EXEC (exec'd process, 0 if none) */
    int status;        /* ERROR: an errno value (EIO when the runtime failed) */
    char *message;     /* ERROR: one line; owned, see conmon_sync_msg_clear() */
    int exit_code;     /* EXEC: exit status or 128 + signal; -1 when timed out */
    int signal;        /* EXEC: killing signal or 0 */
    bool timed_out;    /* EXEC: the timeout expired and the process was killed */
    size_t stdout_len; /* EXEC: raw stdout bytes that follow the line */
    size_t stderr_len; /* EXEC: raw stderr bytes that follow stdout */
    bool stdout_trunc; /* EXEC: output beyond the cap was dropped */
    bool stderr_trunc;
} conmon_sync_msg_t;

/* Formats one message as a JSON line ending in "\n" (malloc'd). */
int conmon_sync_format(const conmon_sync_msg_t *msg, char **ret_line, cri_error_t *err);

/* Parses one JSON line (with or without its "\n"). On success *ret owns a
 * copy of the message text: release it with conmon_sync_msg_clear(). EINVAL
 * when malformed or of an unknown type. */
int conmon_sync_parse(const char *line, size_t len, conmon_sync_msg_t *ret, cri_error_t *err);

/* Frees what a parsed message owns and zeroes it. Accepts NULL. */
void conmon_sync_msg_clear(conmon_sync_msg_t *msg);

/* ---- starting monitors -------------------------------------------------- */

/* Settings shared by every monitor of one daemon (fixed at startup). */
typedef struct conmon_config {
    const char *monitor_path; /* absolute path of cricket-conmon */
    const char *runtime_path; /* absolute path of the OCI runtime (runc) */
    const char *const
        *runtime_args;       /* global runtime args (--root X), NULL-terminated; may be NULL */
    const char *exit_dir;    /* where exit files go */
    const char *socket_dir;  /* parent of the per-container socket dirs */
    const char *monitor_log; /* file for the monitor's own stderr; NULL = /dev/null */
} conmon_config_t;

typedef struct conmon_create_opts {
    const char *id;       /* container id */
    const char *bundle;   /* absolute bundle dir holding config.json */
    const char *log_path; /* CRI log file; NULL or "" = no log file */
    int64_t log_max_size; /* 0 = unlimited */
    bool terminal;        /* process.terminal: pty through --console-socket */
    bool stdin_open;      /* keep a stdin the attach socket feeds */
    bool stdin_once;      /* close stdin when the first attach client leaves */
    int timeout_ms;       /* how long to wait for `runtime create`; 0 = 60 s */
} conmon_create_opts_t;

/* Starts a detached monitor that runs `<runtime> create` for opts->id and
 * waits for its report. On success *ret_container_pid is the container's
 * init pid and *ret_monitor_pid (may be NULL) the monitor's pid. On failure
 * err->msg carries the runtime's own message; status is EIO when the
 * runtime failed, ETIMEDOUT when no report came in time (the monitor is
 * then killed: the caller must `runtime delete --force` the id), EINVAL for
 * bad options, or the errno of a local failure. */
int conmon_create(const conmon_config_t *cfg, const conmon_create_opts_t *opts,
                  pid_t *ret_container_pid, pid_t *ret_monitor_pid, cri_error_t *err);

typedef struct conmon_exec_opts {
    const char *id;           /* container id */
    const char *process_path; /* absolute path of an OCI process JSON file */
    int timeout_s;            /* kill the process after this long; 0 = none */
    size_t output_cap;        /* bytes kept per stream; 0 = 16 MiB */
    bool terminal;            /* the process JSON has terminal: true */
} conmon_exec_opts_t;

typedef struct conmon_exec_result {
    int exit_code; /* exit status or 128 + signal; -1 when timed out */
    bool timed_out;
    char *out; /* stdout bytes (NUL-terminated for convenience) */
    size_t out_len;
    char *err; /* stderr bytes (NUL-terminated) */
    size_t err_len;
} conmon_exec_result_t;

/* Runs a process in a running container through a monitor in exec mode
 * (`<runtime> exec -d --process FILE ID`) and collects its exit code and its
 * output (each stream capped at output_cap, the rest dropped). A timeout is
 * not an error: the result says timed_out. Errors: EIO with the runtime's
 * message when exec could not start, ETIMEDOUT when the monitor itself hung.
 * Free the result with conmon_exec_result_free(). */
int conmon_exec_sync(const conmon_config_t *cfg, const conmon_exec_opts_t *opts,
                     conmon_exec_result_t **ret, cri_error_t *err);

void conmon_exec_result_free(conmon_exec_result_t *r);

static inline void cleanup_conmon_exec_result_fn(conmon_exec_result_t **r)
{
    conmon_exec_result_free(*r);
}
#define cleanup_conmon_exec_result __attribute__((cleanup(cleanup_conmon_exec_result_fn)))

/* ---- interactive exec (streaming Exec) ---------------------------------- */

typedef struct conmon_exec_live_opts {
    const char *id;           /* container id */
    const char *process_path; /* absolute path of an OCI process JSON file */
    bool terminal;            /* the process JSON has terminal: true (pty) */
    bool stdin_open;          /* the process gets a stdin fed from the socket */
} conmon_exec_live_opts_t;

/* One interactive exec: a monitor in exec mode that serves the process's
 * stdio live on a socket pair (PROTOCOL.md "Interactive exec"). Opaque. */
typedef struct conmon_exec_live conmon_exec_live_t;

/* Starts a monitor that runs `<runtime> exec -d --process FILE ID` with its
 * stdio (pipes, or a pty with `terminal`) served on a SOCK_SEQPACKET socket
 * pair; returns at once (the runtime runs in the background: a failure to
 * start comes from conmon_exec_live_wait()). Free with
 * conmon_exec_live_free(). EINVAL for bad options, else the errno of a
 * local failure (socketpair, spawn). */
int conmon_exec_live_start(const conmon_config_t *cfg, const conmon_exec_live_opts_t *opts,
                           conmon_exec_live_t **ret, cri_error_t *err);

/* The daemon's end of the stdio socket (SOCK_SEQPACKET, owned by x, O_CLOEXEC,
 * blocking), in the attach socket's packet format: received packets are a
 * stream byte (1 stdout, 2 stderr) plus data; sent packets are stdin;
 * shutdown(SHUT_WR) closes the process's stdin (pipes). EOF: the process
 * exited and its output is drained. -1 after conmon_exec_live_cancel(). */
int conmon_exec_live_fd(const conmon_exec_live_t *x);

/* Asks the monitor to set the pty size of the exec'd process, without
 * waiting for its answer (the monitor may be blocked handing over output
 * the caller has yet to read; answers are read and dropped by the next
 * call). ESRCH when the exec has ended or was cancelled, EAGAIN when the
 * monitor has not taken earlier requests yet. */
int conmon_exec_live_resize(conmon_exec_live_t *x, unsigned width, unsigned height,
                            cri_error_t *err);

/* Waits up to timeout_ms (0 = no limit) for the end of the exec:
 * *ret_exit_code = exit status, or 128 + signal. EIO with the runtime's
 * message when the exec could not start (or the monitor died), ETIMEDOUT
 * when nothing came in time. May be called again after ETIMEDOUT. */
int conmon_exec_live_wait(conmon_exec_live_t *x, int timeout_ms, int *ret_exit_code,
                          cri_error_t *err);

/* Closes the daemon's sockets: the monitor then SIGKILLs the process (and
 * its process group) and reports the exit, which conmon_exec_live_wait()
 * still returns. Idempotent. */
void conmon_exec_live_cancel(conmon_exec_live_t *x);

/* Cancels when still running, closes everything and frees x. Accepts NULL. */
void conmon_exec_live_free(conmon_exec_live_t *x);

static inline void cleanup_conmon_exec_live_fn(conmon_exec_live_t **x)
{
    conmon_exec_live_free(*x);
}
#define cleanup_conmon_exec_live __attribute__((cleanup(cleanup_conmon_exec_live_fn)))

/* ---- talking to a running monitor --------------------------------------- */

/* Asks the monitor of `id` to reopen its log file and waits (up to
 * timeout_ms; 0 = 10 s) for its answer: on success the file at the log path
 * exists. ESRCH when no monitor runs for `id` (container not running). */
int conmon_reopen_log(const char *socket_dir, const char *id, int timeout_ms, cri_error_t *err);

/* Sets the terminal size of `id`'s pty. ESRCH as above; ENOTTY when the
 * container has no terminal. */
int conmon_resize(const char *socket_dir, const char *id, unsigned width, unsigned height,
                  cri_error_t *err);

/* Connects to `id`'s attach socket (SOCK_SEQPACKET, see PROTOCOL.md) and
 * returns the connected fd (O_CLOEXEC) in *ret_fd. ESRCH when not running. */
int conmon_attach_connect(const char *socket_dir, const char *id, int *ret_fd, cri_error_t *err);

/* ---- the client as an ops table ----------------------------------------- */

/* What the daemon asks of monitors, as a table tests replace with fakes
 * (server/daemon.h holds a pointer to one). Each member has the contract of
 * the function of the same name above; conmon_monitor_ops is the real table
 * (cricket-conmon through conmon_create() and friends). */
typedef struct conmon_ops {
    int (*create)(const conmon_config_t *cfg, const conmon_create_opts_t *opts,
                  pid_t *ret_container_pid, pid_t *ret_monitor_pid, cri_error_t *err);
    int (*exec_live_start)(const conmon_config_t *cfg, const conmon_exec_live_opts_t *opts,
                           conmon_exec_live_t **ret, cri_error_t *err);
    int (*reopen_log)(const char *socket_dir, const char *id, int timeout_ms, cri_error_t *err);
    int (*resize)(const char *socket_dir, const char *id, unsigned width, unsigned height,
                  cri_error_t *err);
    int (*attach_connect)(const char *socket_dir, const char *id, int *ret_fd, cri_error_t *err);
} conmon_ops_t;

extern const conmon_ops_t conmon_monitor_ops;

#endif
