/* cricket-conmon: one small detached monitor per container (or per exec).
 * Contract: conmon/PROTOCOL.md. */
#include "conmon-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define DEFAULT_EXEC_CAP (16u << 20) /* kubelet's per-stream ExecSync limit */

enum {
    OPT_ID = 256,
    OPT_BUNDLE,
    OPT_RUNTIME,
    OPT_RUNTIME_ARG,
    OPT_LOG_PATH,
    OPT_LOG_MAX,
    OPT_EXIT_DIR,
    OPT_SOCKET_DIR,
    OPT_SYNC_FD,
    OPT_TERMINAL,
    OPT_STDIN,
    OPT_STDIN_ONCE,
    OPT_PIDFILE,
    OPT_EXEC,
    OPT_EXEC_PROCESS,
    OPT_TIMEOUT,
    OPT_EXEC_CAP,
    OPT_OOM_ADJ,
    OPT_LOG_LEVEL,
    OPT_EXEC_ATTACH_FD,
    OPT_EXEC_CTL_FD,
};

static const struct option long_opts[] = {
    {"id", required_argument, NULL, OPT_ID},
    {"bundle", required_argument, NULL, OPT_BUNDLE},
    {"runtime", required_argument, NULL, OPT_RUNTIME},
    {"runtime-arg", required_argument, NULL, OPT_RUNTIME_ARG},
    {"log-path", required_argument, NULL, OPT_LOG_PATH},
    {"log-max-size", required_argument, NULL, OPT_LOG_MAX},
    {"exit-dir", required_argument, NULL, OPT_EXIT_DIR},
    {"socket-dir", required_argument, NULL, OPT_SOCKET_DIR},
    {"sync-fd", required_argument, NULL, OPT_SYNC_FD},
    {"terminal", no_argument, NULL, OPT_TERMINAL},
    {"stdin", no_argument, NULL, OPT_STDIN},
    {"stdin-once", no_argument, NULL, OPT_STDIN_ONCE},
    {"pidfile", required_argument, NULL, OPT_PIDFILE},
    {"exec", no_argument, NULL, OPT_EXEC},
    {"exec-process", required_argument, NULL, OPT_EXEC_PROCESS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"exec-output-cap", required_argument, NULL, OPT_EXEC_CAP},
    {"oom-score-adj", required_argument, NULL, OPT_OOM_ADJ},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"exec-attach-fd", required_argument, NULL, OPT_EXEC_ATTACH_FD},
    {"exec-ctl-fd", required_argument, NULL, OPT_EXEC_CTL_FD},
    {NULL, 0, NULL, 0},
};

static int parse_ll(const char *name, const char *s, long long lo, long long hi, long long *ret,
                    cri_error_t *err)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || !end || end == s || *end || v < lo || v > hi)
        return cri_error_set(err, EINVAL, "--%s: bad number `%s`", name, s);
    *ret = v;
    return 0;
}

static int check_path(const char *name, const char *p, cri_error_t *err)
{
    if (p && p[0] != '/')
        return cri_error_set(err, EINVAL, "--%s must be an absolute path, got `%s`", name, p);
    return 0;
}

/* Interactive exec: the sockets the daemon passed must be real, distinct
 * fds above stdio. */
static int check_exec_fds(const conmon_opts_t *o, cri_error_t *err)
{
    int a = o->exec_attach_fd, c = o->exec_ctl_fd;
    if ((a >= 0 || c >= 0) && !o->exec)
        return cri_error_set(err, EINVAL, "--exec-attach-fd and --exec-ctl-fd need --exec");
    if (c >= 0 && a < 0)
        return cri_error_set(err, EINVAL, "--exec-ctl-fd needs --exec-attach-fd");
    if ((a >= 0 && (a <= 2 || a == o->sync_fd)) ||
        (c >= 0 && (c <= 2 || c == o->sync_fd || c == a)))
        return cri_error_set(err, EINVAL, "--sync-fd and --exec-*-fd must be distinct fds above 2");
    return 0;
}

static int opts_validate(const conmon_opts_t *o, cri_error_t *err)
{
    if (!o->id || !*o->id || strchr(o->id, '/') || !strcmp(o->id, ".") || !strcmp(o->id, ".."))
        return cri_error_set(err, EINVAL, "--id is missing or not a plain name");
    if (!o->runtime)
        return cri_error_set(err, EINVAL, "--runtime is required");
    if (o->exec && !o->exec_process)
        return cri_error_set(err, EINVAL, "--exec needs --exec-process");
    if (!o->exec && (!o->bundle || !o->exit_dir || !o->socket_dir))
        return cri_error_set(err, EINVAL, "--bundle, --exit-dir and --socket-dir are required");
    if (o->sync_fd < 0)
        return cri_error_set(err, EINVAL, "--sync-fd is required");
    if (check_exec_fds(o, err) < 0)
        return -1;
    if (check_path("bundle", o->bundle, err) < 0 || check_path("runtime", o->runtime, err) < 0 ||
        check_path("log-path", o->log_path, err) < 0 ||
        check_path("exit-dir", o->exit_dir, err) < 0 ||
        check_path("socket-dir", o->socket_dir, err) < 0 ||
        check_path("pidfile", o->pidfile, err) < 0 ||
        check_path("exec-process", o->exec_process, err) < 0)
        return -1;
    return 0;
}

static int opt_number(int c, const char *arg, conmon_opts_t *o, cri_error_t *err)
{
    long long v = 0;
    switch (c) {
    case OPT_LOG_MAX:
        if (parse_ll("log-max-size", arg, 0, LLONG_MAX, &v, err) < 0)
            return -1;
        o->log_max_size = v;
        return 0;
    case OPT_SYNC_FD:
        if (parse_ll("sync-fd", arg, 0, INT_MAX, &v, err) < 0)
            return -1;
        o->sync_fd = (int)v;
        return 0;
    case OPT_TIMEOUT:
        if (parse_ll("timeout", arg, 0, INT_MAX / 1000, &v, err) < 0)
            return -1;
        o->timeout_s = (int)v;
        return 0;
    case OPT_EXEC_CAP:
        if (parse_ll("exec-output-cap", arg, 0, 1LL << 30, &v, err) < 0)
            return -1;
        o->exec_output_cap = v ? (size_t)v : DEFAULT_EXEC_CAP;
        return 0;
    case OPT_EXEC_ATTACH_FD:
    case OPT_EXEC_CTL_FD:
        if (parse_ll(c == OPT_EXEC_CTL_FD ? "exec-ctl-fd" : "exec-attach-fd", arg, 0, INT_MAX, &v,
                     err) < 0)
            return -1;
        *(c == OPT_EXEC_CTL_FD ? &o->exec_ctl_fd : &o->exec_attach_fd) = (int)v;
        return 0;
    case OPT_OOM_ADJ:
        if (parse_ll("oom-score-adj", arg, -1000, 1000, &v, err) < 0)
            return -1;
        o->oom_score_adj = (int)v;
        o->have_oom_score_adj = true;
        return 0;
    default:
        return cri_error_set(err, EINVAL, "unexpected option");
    }
}

static int opt_one(int c, const char *arg, conmon_opts_t *o, cri_error_t *err)
{
    switch (c) {
    case OPT_ID:
        o->id = arg;
        return 0;
    case OPT_BUNDLE:
        o->bundle = arg;
        return 0;
    case OPT_RUNTIME:
        o->runtime = arg;
        return 0;
    case OPT_RUNTIME_ARG:
        o->runtime_args = xrealloc(o->runtime_args, (o->n_runtime_args + 2) * sizeof(char *));
        o->runtime_args[o->n_runtime_args++] = arg;
        o->runtime_args[o->n_runtime_args] = NULL;
        return 0;
    case OPT_LOG_PATH:
        o->log_path = *arg ? arg : NULL;
        return 0;
    case OPT_EXIT_DIR:
        o->exit_dir = arg;
        return 0;
    case OPT_SOCKET_DIR:
        o->socket_dir = arg;
        return 0;
    case OPT_TERMINAL:
        o->terminal = true;
        return 0;
    case OPT_STDIN:
        o->stdin_open = true;
        return 0;
    case OPT_STDIN_ONCE:
        o->stdin_once = true;
        return 0;
    case OPT_PIDFILE:
        o->pidfile = arg;
        return 0;
    case OPT_EXEC:
        o->exec = true;
        return 0;
    case OPT_EXEC_PROCESS:
        o->exec_process = arg;
        return 0;
    case OPT_LOG_LEVEL: {
        int l = log_level_parse(arg);
        if (l < 0)
            return cri_error_set(err, EINVAL, "--log-level: unknown level `%s`", arg);
        log_set_level((log_level_t)l);
        return 0;
    }
    default:
        return opt_number(c, arg, o, err);
    }
}

int conmon_opts_parse(int argc, char **argv, conmon_opts_t *ret, cri_error_t *err)
{
    conmon_opts_t o = {.sync_fd = -1,
                       .exec_output_cap = DEFAULT_EXEC_CAP,
                       .exec_attach_fd = -1,
                       .exec_ctl_fd = -1};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        if (c == '?' || c == ':' || opt_one(c, optarg, &o, err) < 0) {
            free(o.runtime_args);
            if (c == '?' || c == ':')
                return cri_error_set(err, EINVAL, "bad option or missing value: `%s`",
                                     argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc || opts_validate(&o, err) < 0) {
        free(o.runtime_args);
        if (optind < argc)
            return cri_error_set(err, EINVAL, "unexpected argument `%s`", argv[optind]);
        return -1;
    }
    *ret = o;
    return 0;
}

int conmon_sync_send(int fd, const conmon_sync_msg_t *msg)
{
    cri_error_t err = CRI_ERROR_INIT;
    cleanup_free char *line = NULL;
    if (fd < 0 || conmon_sync_format(msg, &line, &err) < 0)
        return -1;
    size_t len = strlen(line), off = 0;
    while (off < len) {
        ssize_t n = write(fd, line + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

static int send_error(int fd, const cri_error_t *err)
{
    conmon_sync_msg_t m = {.type = CONMON_SYNC_ERROR, .status = err->status};
    m.message = (char *)err->msg;
    return conmon_sync_send(fd, &m);
}

/* Closes every fd above 2 but the sync fd and the exec sockets, and marks
 * those close-on-exec. */
static int close_other_fds(const conmon_opts_t *o)
{
    int keep[3] = {o->sync_fd, o->exec_attach_fd, o->exec_ctl_fd};
    /* sort the (at most three) fds; -1 entries sort first and are skipped */
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (keep[j] < keep[i]) {
                int t = keep[i];
                keep[i] = keep[j];
                keep[j] = t;
            }
    unsigned next = 3;
    for (int i = 0; i < 3; i++) {
        if (keep[i] < 0)
            continue;
        if ((unsigned)keep[i] > next)
            close_range(next, (unsigned)keep[i] - 1, 0);
        if (fcntl(keep[i], F_SETFD, FD_CLOEXEC) < 0)
            return -1;
        next = (unsigned)keep[i] + 1;
    }
    close_range(next, ~0U, 0);
    return 0;
}

/* Finds --sync-fd early so even a usage error reaches the daemon. */
static int scan_sync_fd(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--sync-fd") == 0) {
            long long v = -1;
            cri_error_t e = CRI_ERROR_INIT;
            return parse_ll("sync-fd", argv[i + 1], 0, INT_MAX, &v, &e) < 0 ? -1 : (int)v;
        }
    }
    return -1;
}

/* Double fork with setsid in between: the daemon's child exits at once, and
 * the grandchild (the monitor) belongs to no session of the daemon's. */
static int detach(cri_error_t *err)
{
    pid_t p = fork();
    if (p < 0)
        return cri_error_make(err, errno, "fork");
    if (p > 0)
        _exit(0);
    if (setsid() < 0)
        return cri_error_make(err, errno, "setsid");
    p = fork();
    if (p < 0)
        return cri_error_make(err, errno, "fork");
    if (p > 0)
        _exit(0);
    return 0;
}

static int read_oom_adj(void)
{
    char buf[32] = {0};
    cleanup_close int fd = open("/proc/self/oom_score_adj", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0)
        return 0;
    return (int)strtol(buf, NULL, 10);
}

/* -1000 for the monitor itself. Without CAP_SYS_RESOURCE the kernel refuses
 * to go below the current value (EACCES): keep the current value then. */
static void protect_from_oom(void)
{
    cleanup_close int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "-1000", 5) != 5)
        log_debug("cannot lower own oom_score_adj to -1000 (%s), keeping %d", strerror(errno),
                  read_oom_adj());
}

int conmon_listen_at(int dir_fd, const char *name, int *ret_fd, cri_error_t *err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int n = snprintf(addr.sun_path, sizeof(addr.sun_path), "/proc/self/fd/%d/%s", dir_fd, name);
    if (n < 0 || (size_t)n >= sizeof(addr.sun_path))
        return cri_error_set(err, ENAMETOOLONG, "socket name `%s` is too long", name);
    unlinkat(dir_fd, name, 0);
    cleanup_close int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return cri_error_make(err, errno, "socket");
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        return cri_error_make(err, errno, "bind `%s`", name);
    if (listen(fd, 16) < 0)
        return cri_error_make(err, errno, "listen `%s`", name);
    *ret_fd = TAKE_FD(fd);
    return 0;
}

typedef struct monitor_env {
    char *sock_dir; /* <socket-dir>/<id> (create mode) */
    int dir_fd;
    int attach_fd;
    int ctl_fd;
} monitor_env_t;

static void env_cleanup(monitor_env_t *env)
{
    if (env->dir_fd >= 0) {
        unlinkat(env->dir_fd, "attach", 0);
        unlinkat(env->dir_fd, "ctl", 0);
        close(env->dir_fd);
    }
    if (env->attach_fd >= 0)
        close(env->attach_fd);
    if (env->ctl_fd >= 0)
        close(env->ctl_fd);
    if (env->sock_dir)
        rmdir(env->sock_dir);
    free(env->sock_dir);
}

static int env_setup(const conmon_opts_t *o, monitor_env_t *env, cri_error_t *err)
{
    if (o->exec)
        return 0;
    env->sock_dir = xasprintf("%s/%s", o->socket_dir, o->id);
    if (mkdir_p(env->sock_dir, 0700, err) < 0)
        return -1;
    env->dir_fd = open(env->sock_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (env->dir_fd < 0)
        return cri_error_make(err, errno, "open `%s`", env->sock_dir);
    if (conmon_listen_at(env->dir_fd, "attach", &env->attach_fd, err) < 0 ||
        conmon_listen_at(env->dir_fd, "ctl", &env->ctl_fd, err) < 0)
        return cri_error_wrap(err, "socket dir `%s`", env->sock_dir);
    return 0;
}

static void exit_from_status(int status, int *ret_code, int *ret_sig)
{
    if (WIFSIGNALED(status)) {
        *ret_sig = WTERMSIG(status);
        *ret_code = 128 + *ret_sig;
    } else {
        *ret_sig = 0;
        *ret_code = WIFEXITED(status) ? WEXITSTATUS(status) : 255;
    }
}

static int write_exit_file(const conmon_opts_t *o, const conmon_child_t *c,
                           const conmon_result_t *res, cri_error_t *err)
{
    conmon_exit_t e = {.pid = c->pid, .finished_at = now_unix_ns()};
    exit_from_status(res->wait_status, &e.exit_code, &e.signal);
    uint64_t count = 0;
    cri_error_t oerr = CRI_ERROR_INIT;
    if (c->oom_fd >= 0 && conmon_oom_count(c->oom_fd, &count, &oerr) == 0)
        e.oom_killed = count > c->oom_base;
    cleanup_free char *json = NULL;
    if (conmon_exit_format(o->id, &e, &json, err) < 0 || mkdir_p(o->exit_dir, 0700, err) < 0)
        return -1;
    cleanup_free char *path = xasprintf("%s/%s", o->exit_dir, o->id);
    return write_file_atomic(path, json, strlen(json), 0600, err);
}

static int send_exec_result(const conmon_opts_t *o, const conmon_child_t *c,
                            const conmon_result_t *res)
{
    conmon_sync_msg_t m = {
        .type = CONMON_SYNC_EXEC,
        .pid = c->pid,
        .timed_out = res->timed_out,
        .stdout_len = res->out_len,
        .stderr_len = res->err_len,
        .stdout_trunc = res->out_trunc,
        .stderr_trunc = res->err_trunc,
    };
    exit_from_status(res->wait_status, &m.exit_code, &m.signal);
    if (res->timed_out)
        m.exit_code = -1;
    if (conmon_sync_send(o->sync_fd, &m) < 0)
        return -1;
    const char *parts[2] = {res->out, res->err};
    size_t lens[2] = {res->out_len, res->err_len};
    for (int i = 0; i < 2; i++) {
        size_t off = 0;
        while (off < lens[i]) {
            ssize_t n = write(o->sync_fd, parts[i] + off, lens[i] - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return -1;
            off += (size_t)n;
        }
    }
    return 0;
}

static void child_close(conmon_child_t *c)
{
    int *fds[] = {&c->out_fd, &c->err_fd, &c->in_fd, &c->oom_fd};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
    free(c->early_err);
    c->early_err = NULL;
}

/* Everything after the detach. Returns the monitor's exit status. */
static int run_monitor(const conmon_opts_t *o, int orig_oom_adj)
{
    cri_error_t err = CRI_ERROR_INIT;
    monitor_env_t env = {.dir_fd = -1, .attach_fd = -1, .ctl_fd = -1};
    conmon_log_t log = CONMON_LOG_INIT;
    conmon_child_t child = {.pid = -1, .out_fd = -1, .err_fd = -1, .in_fd = -1, .oom_fd = -1};
    conmon_result_t res = {0};
    int rc = 1;

    if (env_setup(o, &env, &err) < 0 ||
        conmon_log_open(&log, o->exec ? NULL : o->log_path, o->log_max_size, &err) < 0 ||
        conmon_runtime_start(o, orig_oom_adj, &child, &err) < 0) {
        send_error(o->sync_fd, &err);
        goto out;
    }
    if (!o->exec) {
        conmon_sync_msg_t m = {.type = CONMON_SYNC_CREATED, .pid = child.pid};
        conmon_sync_send(o->sync_fd, &m);
        close(o->sync_fd);
    }
    if (conmon_supervise(o, &child, &log, env.attach_fd, env.ctl_fd, &res, &err) < 0) {
        log_error("supervise `%s`: %s", o->id, err.msg);
        if (o->exec)
            send_error(o->sync_fd, &err);
        goto out;
    }
    if (o->exec) {
        rc = send_exec_result(o, &child, &res) < 0 ? 1 : 0;
    } else if (write_exit_file(o, &child, &res, &err) < 0) {
        log_error("exit file of `%s`: %s", o->id, err.msg);
    } else {
        rc = 0;
    }
out:
    free(res.out);
    free(res.err);
    child_close(&child);
    conmon_log_close(&log);
    env_cleanup(&env);
    return rc;
}

int main(int argc, char **argv)
{
    cri_error_t err = CRI_ERROR_INIT;
    conmon_opts_t o;
    int early_sync = scan_sync_fd(argc, argv);

    (void)signal(SIGPIPE, SIG_IGN);
    if (conmon_opts_parse(argc, argv, &o, &err) < 0) {
        (void)fprintf(stderr, "cricket-conmon: %s\n", err.msg);
        send_error(early_sync, &err);
        return 2;
    }
    /* nothing but stdio, the sync pipe (and the exec sockets) may stay
     * open, and none of them leaks into the runtime */
    if (close_other_fds(&o) < 0) {
        (void)fprintf(stderr, "cricket-conmon: bad --sync-fd or --exec-*-fd\n");
        return 2;
    }
    if (detach(&err) < 0) {
        send_error(o.sync_fd, &err);
        return 1;
    }
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        cri_error_make(&err, errno, "set child subreaper");
        send_error(o.sync_fd, &err);
        return 1;
    }
    int orig_adj = o.have_oom_score_adj ? o.oom_score_adj : read_oom_adj();
    protect_from_oom();
    if (chdir("/") < 0)
        log_debug("chdir /: %s", strerror(errno));
    conmon_sync_msg_t hello = {.type = CONMON_SYNC_MONITOR, .pid = getpid()};
    conmon_sync_send(o.sync_fd, &hello);
    int rc = run_monitor(&o, orig_adj);
    free(o.runtime_args);
    return rc;
}
