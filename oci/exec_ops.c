/* The real ops table: `<runtime> --root R --log L --log-format json <verb>`. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/spawn.h"
#include "common/util.h"
#include "oci/oci-internal.h"

#define MAX_ARGS 32
#define LOG_MAX ((size_t)1024 * 1024)

/* One invocation: argv, captured output, the runtime's JSON log. */
typedef struct call {
    const char *argv[MAX_ARGS];
    size_t argc;
    char *log_path;
    spawn_result_t res;
    char *log;
    size_t log_len;
} call_t;

static void call_done(call_t *c)
{
    if (c->log_path)
        unlink(c->log_path);
    free(c->log_path);
    free(c->log);
    spawn_result_free(&c->res);
}

#define cleanup_call __attribute__((cleanup(call_done)))

static void call_arg(call_t *c, const char *a)
{
    if (c->argc < MAX_ARGS - 1)
        c->argv[c->argc++] = a;
}

/* A private temp file in the runtime's tmp dir (name returned, fd closed). */
static char *tmp_file(oci_runtime_t *rt, const char *kind, cri_error_t *err)
{
    /* the pid lets oci_runtime_sweep_tmp() find the files of a dead daemon */
    char *path = xasprintf("%s/%s-%d-XXXXXX", rt->tmp_dir, kind, (int)getpid());
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) {
        cri_error_make(err, errno, "create temp file in `%s`", rt->tmp_dir);
        free(path);
        return NULL;
    }
    close(fd);
    return path;
}

static int call_begin(call_t *c, oci_runtime_t *rt, const char *verb, cri_error_t *err)
{
    memset(c, 0, sizeof(*c));
    c->log_path = tmp_file(rt, "log", err);
    if (!c->log_path)
        return -1;
    call_arg(c, rt->path);
    call_arg(c, "--root");
    call_arg(c, rt->root);
    call_arg(c, "--log");
    call_arg(c, c->log_path);
    call_arg(c, "--log-format");
    call_arg(c, "json");
    call_arg(c, verb);
    return 0;
}

char *oci_runtime_error_message(const char *log, size_t log_len, const char *stderr_text)
{
    cleanup_free char *found = NULL;
    const char *p = log, *end = log ? log + log_len : NULL;
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        json_t *line = json_loadb(p, n, 0, NULL);
        const char *level = json_string_value(json_object_get(line, "level"));
        const char *msg = json_string_value(json_object_get(line, "msg"));
        if (level && msg && (strcmp(level, "error") == 0 || strcmp(level, "fatal") == 0)) {
            str_set(&found, msg);
        }
        json_decref(line);
        p = nl ? nl + 1 : end;
    }
    if (!found && stderr_text) {
        const char *last = NULL;
        size_t last_n = 0;
        for (const char *s = stderr_text; *s;) {
            size_t n = strcspn(s, "\n");
            if (n > 0) {
                last = s;
                last_n = n;
            }
            s += n + (s[n] ? 1 : 0);
        }
        if (last)
            found = xstrndup(last, last_n);
    }
    for (char *q = found; q && *q; q++)
        if (*q == '\n' || *q == '\r' || *q == '\t')
            *q = ' ';
    return TAKE_PTR(found);
}

static int errno_for(const char *msg)
{
    /* runc: "container does not exist"; crun names the state file it
     * could not open: "error opening file `<root>/<id>/status`: No such
     * file or directory" */
    if (strstr(msg, "does not exist") || strstr(msg, "not found") ||
        strstr(msg, "/status`: No such file or directory"))
        return ENOENT;
    if (strstr(msg, "exists"))
        return EEXIST;
    return EIO;
}

/* Runs the call; a runtime that fails gives "<name> <verb> `<id>`: <msg>". */
static int call_run(call_t *c, oci_runtime_t *rt, const char *verb, const char *id,
                    const spawn_opts_t *tmpl, bool ok_nonzero, cri_error_t *err)
{
    c->argv[c->argc] = NULL;
    spawn_opts_t sp =
        tmpl ? *tmpl : (spawn_opts_t){.stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1};
    sp.argv = c->argv;
    if (sp.timeout_ms <= 0)
        sp.timeout_ms = rt->timeout_ms;
    if (spawn_run(&sp, &c->res, err) < 0)
        return cri_error_wrap(err, "%s %s `%s`", rt->name, verb, id ? id : "");
    cri_error_t ignored = CRI_ERROR_INIT;
    if (read_file(c->log_path, LOG_MAX, &c->log, &c->log_len, &ignored) < 0)
        c->log = NULL;
    int st = c->res.wait_status;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    cleanup_free char *msg = oci_runtime_error_message(c->log, c->log_len, c->res.err);
    if (ok_nonzero && !msg)
        return 0; /* exec: the process's own exit status */
    if (!msg)
        msg = WIFEXITED(st) ? xasprintf("exited with status %d", WEXITSTATUS(st))
                            : xasprintf("killed by signal %d", WTERMSIG(st));
    return cri_error_set(err, errno_for(msg), "%s %s `%s`: %s", rt->name, verb, id ? id : "", msg);
}

static int simple_verb(oci_runtime_t *rt, const char *verb, const char *flag, const char *id,
                       const char *last, cri_error_t *err)
{
    cleanup_call call_t c;
    if (call_begin(&c, rt, verb, err) < 0)
        return -1;
    if (flag)
        call_arg(&c, flag);
    call_arg(&c, id);
    if (last)
        call_arg(&c, last);
    return call_run(&c, rt, verb, id, NULL, false, err);
}

static int exec_create(oci_runtime_t *rt, const char *id, const char *bundle,
                       const oci_create_opts_t *opts, cri_error_t *err)
{
    static const oci_create_opts_t none = {.stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1};
    if (!opts)
        opts = &none;
    cleanup_call call_t c;
    if (call_begin(&c, rt, "create", err) < 0)
        return -1;
    call_arg(&c, "--bundle");
    call_arg(&c, bundle);
    if (opts->pid_file) {
        call_arg(&c, "--pid-file");
        call_arg(&c, opts->pid_file);
    }
    if (opts->console_socket) {
        call_arg(&c, "--console-socket");
        call_arg(&c, opts->console_socket);
    }
    if (opts->no_pivot)
        call_arg(&c, "--no-pivot");
    call_arg(&c, id);
    /* the container inherits the runtime's stdio: never our capture pipes
     * (they would stay open as long as the container lives) */
    cleanup_close int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0)
        return cri_error_make(err, errno, "open /dev/null");
    spawn_opts_t sp = {
        .stdin_fd = opts->stdin_fd >= 0 ? opts->stdin_fd : devnull,
        .stdout_fd = opts->stdout_fd >= 0 ? opts->stdout_fd : devnull,
        .stderr_fd = opts->stderr_fd >= 0 ? opts->stderr_fd : devnull,
    };
    return call_run(&c, rt, "create", id, &sp, false, err);
}

static int exec_start(oci_runtime_t *rt, const char *id, cri_error_t *err)
{
    int r = oci_fifo_start(rt, id, err);
    if (r <= 0)
        return r;
    return simple_verb(rt, "start", NULL, id, NULL, err);
}

static int exec_kill(oci_runtime_t *rt, const char *id, int signo, bool all, cri_error_t *err)
{
    char sig[16];
    (void)snprintf(sig, sizeof(sig), "%d", signo);
    return simple_verb(rt, "kill", all ? "--all" : NULL, id, sig, err);
}

static int exec_delete(oci_runtime_t *rt, const char *id, bool force, cri_error_t *err)
{
    return simple_verb(rt, "delete", force ? "--force" : NULL, id, NULL, err);
}

static int exec_pause(oci_runtime_t *rt, const char *id, cri_error_t *err)
{
    return simple_verb(rt, "pause", NULL, id, NULL, err);
}

static int exec_resume(oci_runtime_t *rt, const char *id, cri_error_t *err)
{
    return simple_verb(rt, "resume", NULL, id, NULL, err);
}

static int exec_state(oci_runtime_t *rt, const char *id, oci_state_t *ret_state, cri_error_t *err)
{
    cleanup_call call_t c;
    if (call_begin(&c, rt, "state", err) < 0)
        return -1;
    call_arg(&c, id);
    if (call_run(&c, rt, "state", id, NULL, false, err) < 0)
        return -1;
    json_error_t jerr;
    cleanup_json json_t *j = json_loadb(c.res.out, c.res.out_len, 0, &jerr);
    const char *status = NULL, *bundle = "";
    json_int_t pid = 0;
    if (!j || json_unpack_ex(j, &jerr, 0, "{s:s, s?I, s?s}", "status", &status, "pid", &pid,
                             "bundle", &bundle) < 0)
        return cri_error_set(err, EIO, "%s state `%s`: bad output: %s", rt->name, id, jerr.text);
    oci_state_t st = {.status = oci_status_parse(status), .pid = (pid_t)pid};
    int n = snprintf(st.bundle, sizeof(st.bundle), "%s", bundle);
    if (n < 0 || (size_t)n >= sizeof(st.bundle))
        return cri_error_set(err, EIO, "%s state `%s`: bundle path too long", rt->name, id);
    *ret_state = st;
    return 0;
}

/* Writes json to a new temp file; returns its path (caller unlinks, frees). */
static char *json_tmp_file(oci_runtime_t *rt, const char *kind, json_t *j, cri_error_t *err)
{
    cleanup_free char *path = tmp_file(rt, kind, err);
    if (!path)
        return NULL;
    if (json_dump_file(j, path, JSON_COMPACT) < 0) {
        cri_error_set(err, EIO, "write `%s`", path);
        unlink(path);
        return NULL;
    }
    return TAKE_PTR(path);
}

static int exec_update(oci_runtime_t *rt, const char *id, const oci_resources_t *res,
                       cri_error_t *err)
{
    cleanup_json json_t *j = oci_resources_to_json(res);
    if (!rt->host.hugetlb)
        json_object_del(j, "hugepageLimits");
    cleanup_free char *file = json_tmp_file(rt, "resources", j, err);
    if (!file)
        return -1;
    cleanup_call call_t c;
    int r = call_begin(&c, rt, "update", err);
    if (r == 0) {
        call_arg(&c, "--resources");
        call_arg(&c, file);
        call_arg(&c, id);
        r = call_run(&c, rt, "update", id, NULL, false, err);
    }
    unlink(file);
    return r;
}

/* `exec --process FILE --pid-file PID_FILE ID`: the arguments both exec
 * paths (streamed and sync) give the runtime after the verb. */
static void exec_args(call_t *c, const char *file, const char *pid_file, const char *id)
{
    call_arg(c, "--process");
    call_arg(c, file);
    call_arg(c, "--pid-file");
    call_arg(c, pid_file);
    call_arg(c, id);
}

static int exec_exec(oci_runtime_t *rt, const char *id, const oci_process_t *proc,
                     const oci_exec_opts_t *opts, int *ret_wait_status, cri_error_t *err)
{
    if (proc->terminal)
        return cri_error_set(err, EINVAL, "exec in `%s`: a terminal needs the monitor", id);
    cleanup_json json_t *pj = NULL;
    if (oci_process_to_json(proc, &rt->host, &pj, err) < 0)
        return cri_error_wrap(err, "exec in `%s`", id);
    cleanup_free char *file = json_tmp_file(rt, "process", pj, err);
    if (!file)
        return -1;
    cleanup_free char *pid_file = xasprintf("%s.pid", file);
    cleanup_close int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) {
        unlink(file);
        return cri_error_make(err, errno, "open /dev/null");
    }
    /* -1 is /dev/null here: never our capture pipes, which a process the
     * exec leaves behind would hold open */
    spawn_opts_t sp = {.stdin_fd = opts && opts->stdin_fd >= 0 ? opts->stdin_fd : devnull,
                       .stdout_fd = opts && opts->stdout_fd >= 0 ? opts->stdout_fd : devnull,
                       .stderr_fd = opts && opts->stderr_fd >= 0 ? opts->stderr_fd : devnull,
                       .timeout_ms = opts ? opts->timeout_ms : 0,
                       .kill_pid_file = pid_file};
    cleanup_call call_t c;
    int r = call_begin(&c, rt, "exec", err);
    if (r == 0) {
        exec_args(&c, file, pid_file, id);
        r = call_run(&c, rt, "exec", id, &sp, true, err);
    }
    unlink(file);
    unlink(pid_file);
    if (r == 0)
        *ret_wait_status = c.res.wait_status;
    return r;
}

/* Writes text to path (a fresh temp file of ours: no rename, no fsync, it
 * lives as long as one call). */
static int write_tmp_text(const char *path, const char *text, cri_error_t *err)
{
    cleanup_close int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0 || write_all(fd, text, strlen(text)) < 0)
        return cri_error_make(err, errno, "write `%s`", path);
    return 0;
}

/* The outcome of a foreground exec: runc exits with the process's status
 * (128 + signal when it was killed) and logs an error only when the exec
 * itself failed. The process's own stderr is never taken for the
 * runtime's message. */
static int exec_sync_outcome(oci_runtime_t *rt, const char *id, call_t *c, int *ret_code,
                             cri_error_t *err)
{
    cri_error_t ignored = CRI_ERROR_INIT;
    if (read_file(c->log_path, LOG_MAX, &c->log, &c->log_len, &ignored) < 0)
        c->log = NULL;
    cleanup_free char *msg = oci_runtime_error_message(c->log, c->log_len, NULL);
    int st = c->res.wait_status;
    if (msg)
        return cri_error_set(err, errno_for(msg), "%s exec `%s`: %s", rt->name, id, msg);
    if (!WIFEXITED(st))
        return cri_error_set(err, EIO, "%s exec `%s`: killed by signal %d", rt->name, id,
                             WTERMSIG(st));
    *ret_code = WEXITSTATUS(st);
    return 0;
}

/* ExecSync: `exec --process FILE --pid-file P ID` in the foreground, straight
 * from the calling thread: runc hands its stdio to the process, so our
 * pipes get its output, and waits for it. On timeout the process (from the
 * pid file) is SIGKILLed first, then runc, if it has not exited by itself. */
static int exec_exec_sync(oci_runtime_t *rt, const char *id, const oci_exec_sync_opts_t *opts,
                          oci_exec_sync_result_t *ret, cri_error_t *err)
{
    cleanup_free char *file = tmp_file(rt, "process", err);
    if (!file)
        return -1;
    if (write_tmp_text(file, opts->process_json, err) < 0) {
        unlink(file);
        return cri_error_wrap(err, "exec in `%s`", id);
    }
    cleanup_free char *pid_file = xasprintf("%s.pid", file);
    cleanup_call call_t c;
    int r = call_begin(&c, rt, "exec", err);
    if (r == 0) {
        exec_args(&c, file, pid_file, id);
        c.argv[c.argc] = NULL;
        spawn_opts_t sp = {.argv = c.argv,
                           .stdin_fd = -1,
                           .stdout_fd = -1,
                           .stderr_fd = -1,
                           .timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : INT_MAX,
                           .kill_pid_file = pid_file,
                           .capture_max = opts->output_cap};
        r = spawn_run(&sp, &c.res, err);
        if (r < 0)
            cri_error_wrap(err, "%s exec `%s`", rt->name, id);
    }
    int code = 0;
    if (r == 0)
        r = exec_sync_outcome(rt, id, &c, &code, err);
    unlink(file);
    unlink(pid_file);
    if (r < 0)
        return -1;
    *ret = (oci_exec_sync_result_t){.exit_code = code,
                                    .out = TAKE_PTR(c.res.out),
                                    .out_len = c.res.out_len,
                                    .err = TAKE_PTR(c.res.err),
                                    .err_len = c.res.err_len};
    return 0;
}

int oci_runtime_features(oci_runtime_t *rt, json_t **ret, cri_error_t *err)
{
    cleanup_call call_t c;
    if (call_begin(&c, rt, "features", err) < 0)
        return -1;
    if (call_run(&c, rt, "features", NULL, NULL, false, err) < 0)
        return -1;
    json_error_t jerr;
    json_t *j = json_loadb(c.res.out, c.res.out_len, 0, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        return cri_error_set(err, EIO, "%s features: bad output", rt->name);
    }
    *ret = j;
    return 0;
}

const struct oci_runtime_ops oci_runtime_exec_ops = {
    .create = exec_create,
    .start = exec_start,
    .kill = exec_kill,
    .delete = exec_delete,
    .state = exec_state,
    .update = exec_update,
    .pause = exec_pause,
    .resume = exec_resume,
    .exec = exec_exec,
    .exec_sync = exec_exec_sync,
};
