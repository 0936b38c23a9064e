/* oci/ runtime invocation without a real runtime: the dispatchers over a
 * fake ops table, and the real ops table driving a fake runtime script (a
 * shell script that records its argv, writes runc-style JSON logs, prints
 * state, hangs): argv layout, error surfacing, state parsing, timeouts. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "oci/oci-internal.h"
#include "oci/oci.h"

/* --- fake ops table --- */

typedef struct fake {
    int calls;
    char last_id[64];
    int last_signo;
    bool last_flag;
} fake_t;

static int fake_start(oci_runtime_t *rt, const char *id, cri_error_t *err)
{
    fake_t *f = rt->userdata;
    f->calls++;
    snprintf(f->last_id, sizeof(f->last_id), "%s", id);
    if (strcmp(id, "missing") == 0)
        return cri_error_set(err, ENOENT, "fake start `%s`: container does not exist", id);
    return 0;
}

static int fake_kill(oci_runtime_t *rt, const char *id, int signo, bool all, cri_error_t *err)
{
    fake_t *f = rt->userdata;
    f->calls++;
    f->last_signo = signo;
    f->last_flag = all;
    return 0;
}

static int fake_state(oci_runtime_t *rt, const char *id, oci_state_t *ret, cri_error_t *err)
{
    oci_state_t st = {.status = OCI_STATUS_RUNNING, .pid = 42};
    snprintf(st.bundle, sizeof(st.bundle), "/b/%s", id);
    *ret = st;
    return 0;
}

static const struct oci_runtime_ops fake_ops = {
    .start = fake_start,
    .kill = fake_kill,
    .state = fake_state,
};

static void test_dispatch_to_fake(void **state)
{
    fake_t f = {0};
    cleanup_oci_runtime oci_runtime_t *rt = oci_runtime_new_with_ops(&fake_ops, "fake", "/r", &f);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(oci_runtime_start(rt, "abc", &err), 0);
    assert_string_equal(f.last_id, "abc");
    assert_int_equal(oci_runtime_kill(rt, "abc", 9, true, &err), 0);
    assert_int_equal(f.last_signo, 9);
    assert_true(f.last_flag);
    assert_int_equal(oci_runtime_start(rt, "missing", &err), -1);
    assert_int_equal(err.status, ENOENT);
    oci_state_t st;
    assert_int_equal(oci_runtime_state(rt, "x", &st, &err), 0);
    assert_int_equal(st.status, OCI_STATUS_RUNNING);
    assert_string_equal(st.bundle, "/b/x");
    /* ops the table leaves out are ENOSYS, naming the runtime */
    assert_int_equal(oci_runtime_pause(rt, "abc", &err), -1);
    assert_int_equal(err.status, ENOSYS);
    assert_string_equal(err.msg, "runtime `fake` has no pause");
    assert_int_equal(oci_runtime_delete(rt, "abc", true, &err), -1);
    assert_int_equal(err.status, ENOSYS);
    assert_int_equal(f.calls, 3);
}

static void test_status_names(void **state)
{
    for (int s = OCI_STATUS_CREATING; s <= OCI_STATUS_STOPPED; s++)
        assert_int_equal(oci_status_parse(oci_status_name((oci_status_t)s)), s);
    assert_int_equal(oci_status_parse("bogus"), OCI_STATUS_UNKNOWN);
    assert_int_equal(oci_status_parse(NULL), OCI_STATUS_UNKNOWN);
    assert_string_equal(oci_status_name((oci_status_t)99), "unknown");
}

static void test_error_message_extraction(void **state)
{
    static const char log[] = "{\"level\":\"warning\",\"msg\":\"w\",\"time\":\"t\"}\n"
                              "not json at all\n"
                              "{\"level\":\"error\",\"msg\":\"first\",\"time\":\"t\"}\n"
                              "{\"level\":\"error\",\"msg\":\"exec failed:\\nline two\"}\n";
    cleanup_free char *m1 = oci_runtime_error_message(log, strlen(log), "ignored");
    assert_string_equal(m1, "exec failed: line two");
    cleanup_free char *m2 = oci_runtime_error_message("", 0, "warn\nreal error\n\n");
    assert_string_equal(m2, "real error");
    cleanup_free char *m3 = oci_runtime_error_message(NULL, 0, "");
    assert_null(m3);
}

/* --- the real ops table against a fake runtime script --- */

typedef struct fixture {
    char dir[64];
    char *script;
    char *argv_file;
    oci_runtime_t *rt;
} fixture_t;

/* The fake runtime: records its argv, finds --log, acts on the verb and
 * on the container id. */
static const char script_text[] =
    "#!/bin/sh\n"
    "log=\n"
    "prev=\n"
    "for a in \"$@\"; do\n"
    "  [ \"$prev\" = --log ] && log=$a\n"
    "  [ \"$prev\" = --pid-file ] && pidf=$a\n"
    "  [ \"$prev\" = --process ] && cp \"$a\" \"$ARGV_FILE.proc\"\n"
    "  prev=$a\n"
    "done\n"
    "printf '%s\\n' \"$@\" > \"$ARGV_FILE\"\n"
    "eval id=\\${$#}\n"
    "case \"$id\" in\n"
    "  missing) echo '{\"level\":\"error\",\"msg\":\"container does not exist\"}' >> \"$log\";"
    " echo 'container does not exist' >&2; exit 1;;\n"
    "  crunmissing) echo '{\"msg\":\"error opening file `/r/crunmissing/status`: No such file "
    "or directory\",\"level\":\"error\"}' >> \"$log\"; exit 1;;\n"
    "  taken) echo '{\"level\":\"error\",\"msg\":\"container with id exists: taken\"}' >>"
    " \"$log\"; exit 1;;\n"
    "  stderronly) echo 'plain failure' >&2; exit 2;;\n"
    "  silent) exit 7;;\n"
    "  hang) exec sleep 30;;\n"
    "  exit3) exit 3;;\n"
    "  chatty) echo out; echo err >&2; exit 5;;\n"
    "  big) head -c 100000 /dev/zero; exit 0;;\n"
    "  exechang) sleep 30 & echo $! > \"$pidf\"; echo $! > \"$ARGV_FILE.pid\"; wait $!;"
    " st=$?; echo reaped > \"$ARGV_FILE.reaped\"; exit $st;;\n"
    "  exectree) sh -c 'sleep 31 & echo $! > \"$ARGV_FILE.gc\"; wait' & echo $! > \"$pidf\";"
    " wait $!; exit $?;;\n"
    "esac\n"
    "case \"$7\" in\n"
    "  state) echo '{\"ociVersion\":\"1.0.2\",\"id\":\"'$id'\",\"pid\":1234,"
    "\"status\":\"paused\",\"bundle\":\"/bundles/'$id'\"}';;\n"
    "  update) cp \"${9}\" \"$ARGV_FILE.res\";;\n"
    "  features) echo '{\"mountOptions\":[\"ro\",\"rro\"]}';;\n"
    "esac\n"
    "exit 0\n";

static int setup(void **state)
{
    fixture_t *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/oci-rt-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    fx->script = xasprintf("%s/fake-runc", fx->dir);
    fx->argv_file = xasprintf("%s/argv", fx->dir);
    FILE *f = fopen(fx->script, "w");
    assert_non_null(f);
    fputs(script_text, f);
    fclose(f);
    chmod(fx->script, 0755);
    setenv("ARGV_FILE", fx->argv_file, 1);
    cleanup_free char *root = xasprintf("%s/root", fx->dir);
    oci_host_t host = {.oom_score_adj_min = 0, .cap_bounding = 0};
    cri_error_t err = CRI_ERROR_INIT;
    if (oci_runtime_new(fx->script, root, 5000, &host, &fx->rt, &err) < 0)
        fail_msg("%s", err.msg);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    cri_error_t err = CRI_ERROR_INIT;
    oci_runtime_free(fx->rt);
    rm_rf(fx->dir, &err);
    free(fx->script);
    free(fx->argv_file);
    free(fx);
    return 0;
}

static char *recorded_argv(fixture_t *fx)
{
    cleanup_free char *data = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(read_file(fx->argv_file, 65536, &data, NULL, &err), 0);
    for (char *p = data; *p; p++)
        if (*p == '\n')
            *p = ' ';
    return TAKE_PTR(data);
}

static void test_argv_layout(void **state)
{
    fixture_t *fx = *state;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(oci_runtime_kill(fx->rt, "c1", 15, true, &err), 0);
    cleanup_free char *argv = recorded_argv(fx);
    /* --root R --log <tmp>/log-XXXXXX --log-format json kill --all c1 15 */
    cleanup_free char *prefix =
        xasprintf("--root %s --log %s.tmp/log-", fx->rt->root, fx->rt->root);
    assert_true(str_has_prefix(argv, prefix));
    assert_non_null(strstr(argv, " --log-format json kill --all c1 15 "));

    oci_create_opts_t o = {.pid_file = "/p/pid",
                           .console_socket = "/p/sock",
                           .stdin_fd = -1,
                           .stdout_fd = -1,
                           .stderr_fd = -1};
    assert_int_equal(oci_runtime_create(fx->rt, "c2", "/bundle", &o, &err), 0);
    cleanup_free char *argv2 = recorded_argv(fx);
    assert_non_null(
        strstr(argv2, " create --bundle /bundle --pid-file /p/pid --console-socket /p/sock c2 "));

    assert_int_equal(oci_runtime_delete(fx->rt, "c3", true, &err), 0);
    cleanup_free char *argv3 = recorded_argv(fx);
    assert_non_null(strstr(argv3, " delete --force c3 "));

    /* per-call log files are removed */
    cleanup_free char *tmp = xasprintf("%s.tmp", fx->rt->root);
    cleanup_dir DIR *d = opendir(tmp);
    assert_non_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    assert_int_equal(n, 0);
}

static void test_errors_surface(void **state)
{
    fixture_t *fx = *state;
    static const struct {
        const char *id;
        int status;
        const char *msg;
    } cases[] = {
        {"missing", ENOENT, "fake-runc start `missing`: container does not exist"},
        /* crun's words for a container it does not know */
        {"crunmissing", ENOENT,
         "fake-runc start `crunmissing`: error opening file `/r/crunmissing/status`: No such "
         "file or directory"},
        {"taken", EEXIST, "fake-runc start `taken`: container with id exists: taken"},
        {"stderronly", EIO, "fake-runc start `stderronly`: plain failure"},
        {"silent", EIO, "fake-runc start `silent`: exited with status 7"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cri_error_t err = CRI_ERROR_INIT;
        assert_int_equal(oci_runtime_start(fx->rt, cases[i].id, &err), -1);
        assert_int_equal(err.status, cases[i].status);
        assert_string_equal(err.msg, cases[i].msg);
    }
}

static void test_state_and_update(void **state)
{
    fixture_t *fx = *state;
    cri_error_t err = CRI_ERROR_INIT;
    oci_state_t st;
    assert_int_equal(oci_runtime_state(fx->rt, "s1", &st, &err), 0);
    assert_int_equal(st.status, OCI_STATUS_PAUSED);
    assert_int_equal(st.pid, 1234);
    assert_string_equal(st.bundle, "/bundles/s1");
    memset(&st, 0x5a, sizeof(st));
    assert_int_equal(oci_runtime_state(fx->rt, "missing", &st, &err), -1);
    assert_int_equal(err.status, ENOENT);
    assert_int_equal(st.pid, 0x5a5a5a5a); /* untouched on failure */

    oci_resources_t res = {.memory_limit = 1 << 20, .cpu_shares = 2};
    assert_int_equal(oci_runtime_update(fx->rt, "u1", &res, &err), 0);
    cleanup_free char *resfile = xasprintf("%s.res", fx->argv_file);
    json_t *got = json_load_file(resfile, 0, NULL);
    json_t *want = json_pack("{s:{s:i}, s:{s:i}}", "memory", "limit", 1 << 20, "cpu", "shares", 2);
    assert_true(json_equal(got, want));
    json_decref(got);
    json_decref(want);

    bool rro = false;
    assert_int_equal(oci_runtime_supports_rro(fx->rt, &rro, &err), 0);
    /* true only where the kernel also has mount_setattr; just no crash */
    (void)rro;
}

static void test_timeout_kills(void **state)
{
    fixture_t *fx = *state;
    fx->rt->timeout_ms = 300;
    cri_error_t err = CRI_ERROR_INIT;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(oci_runtime_start(fx->rt, "hang", &err), -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(err.status, ETIMEDOUT);
    assert_non_null(strstr(err.msg, "timed out"));
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 250 && ms < 5000);
}

static void test_exec_status(void **state)
{
    fixture_t *fx = *state;
    static const char *const args[] = {"/bin/true", NULL};
    oci_process_t proc = {.args = args};
    oci_exec_opts_t o = {.stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1};
    cri_error_t err = CRI_ERROR_INIT;
    int ws = -1;
    /* a non-zero exit with no runtime error logged is the process's own */
    assert_int_equal(oci_runtime_exec(fx->rt, "exit3", &proc, &o, &ws, &err), 0);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 3);
    assert_int_equal(oci_runtime_exec(fx->rt, "missing", &proc, &o, &ws, &err), -1);
    assert_int_equal(err.status, ENOENT);
    cleanup_free char *argv = recorded_argv(fx);
    assert_non_null(strstr(argv, " exec --process "));
    assert_non_null(strstr(argv, " --pid-file "));
    proc.terminal = true;
    assert_int_equal(oci_runtime_exec(fx->rt, "x", &proc, &o, &ws, &err), -1);
    assert_int_equal(err.status, EINVAL);
}

static bool tmp_dir_empty(fixture_t *fx)
{
    cleanup_dir DIR *d = opendir(fx->rt->tmp_dir);
    assert_non_null(d);
    for (struct dirent *e = readdir(d); e; e = readdir(d))
        if (e->d_name[0] != '.')
            return false;
    return true;
}

/* Neither gone nor a zombie, within 5 s (kills are asynchronous). */
static bool runs(pid_t pid)
{
    for (int i = 0; i < 500; i++) {
        cleanup_free char *path = xasprintf("/proc/%d/stat", (int)pid);
        cleanup_free char *stat = NULL;
        cri_error_t err = CRI_ERROR_INIT;
        if (read_file(path, 4096, &stat, NULL, &err) < 0)
            return false;
        const char *paren = strrchr(stat, ')');
        if (paren && (paren[2] == 'Z' || paren[2] == 'X'))
            return false;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return true;
}

/* ExecSync's runner: the process JSON goes in a file, runc runs in the
 * foreground with our pipes, the streams come back apart and capped, the
 * exit code is the process's; its stderr is not taken for a runtime error,
 * the runtime's logged error is; and no per-call file is left. */
static void test_exec_sync_capture(void **state)
{
    fixture_t *fx = *state;
    oci_exec_sync_opts_t o = {.process_json = "{\"args\":[\"x\"]}", .output_cap = 1000};
    oci_exec_sync_result_t r = {0};
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(oci_runtime_exec_sync(fx->rt, "chatty", &o, &r, &err), 0);
    assert_int_equal(r.exit_code, 5);
    assert_string_equal(r.out, "out\n");
    assert_string_equal(r.err, "err\n");
    oci_exec_sync_result_clear(&r);
    cleanup_free char *argv = recorded_argv(fx);
    assert_non_null(strstr(argv, " exec --process "));
    assert_non_null(strstr(argv, " --pid-file "));
    cleanup_free char *proc_path = xasprintf("%s.proc", fx->argv_file);
    cleanup_free char *proc = NULL;
    assert_int_equal(read_file(proc_path, 4096, &proc, NULL, &err), 0);
    assert_string_equal(proc, o.process_json);

    assert_int_equal(oci_runtime_exec_sync(fx->rt, "big", &o, &r, &err), 0);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.out_len, 1000); /* the rest read and dropped */
    assert_int_equal(r.err_len, 0);
    oci_exec_sync_result_clear(&r);

    assert_int_equal(oci_runtime_exec_sync(fx->rt, "missing", &o, &r, &err), -1);
    assert_int_equal(err.status, ENOENT);
    assert_non_null(strstr(err.msg, "container does not exist"));
    assert_null(r.out);
    assert_true(tmp_dir_empty(fx));
}

/* On timeout the exec'd process (the pid file's) is killed first and the
 * runtime, left to reap it, exits by itself: ETIMEDOUT, nothing left. A
 * runtime that never wrote a pid file is killed after the grace. */
static void test_exec_sync_timeout(void **state)
{
    fixture_t *fx = *state;
    oci_exec_sync_opts_t o = {.process_json = "{}", .output_cap = 1000, .timeout_ms = 300};
    oci_exec_sync_result_t r = {0};
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(oci_runtime_exec_sync(fx->rt, "exechang", &o, &r, &err), -1);
    assert_int_equal(err.status, ETIMEDOUT);
    cleanup_free char *reaped = xasprintf("%s.reaped", fx->argv_file);
    assert_int_equal(access(reaped, F_OK), 0); /* the runtime saw its process die */
    cleanup_free char *pid_path = xasprintf("%s.pid", fx->argv_file);
    cleanup_free char *pid = NULL;
    assert_int_equal(read_file(pid_path, 64, &pid, NULL, &err), 0);
    assert_int_equal(kill((pid_t)strtol(pid, NULL, 10), 0), -1);
    assert_true(tmp_dir_empty(fx));

    /* its descendants too (a shell's children) */
    cleanup_free char *gc_path = xasprintf("%s.gc", fx->argv_file);
    assert_int_equal(oci_runtime_exec_sync(fx->rt, "exectree", &o, &r, &err), -1);
    assert_int_equal(err.status, ETIMEDOUT);
    cleanup_free char *gc = NULL;
    assert_int_equal(read_file(gc_path, 64, &gc, NULL, &err), 0);
    assert_false(runs((pid_t)strtol(gc, NULL, 10)));

    cri_error_t e2 = CRI_ERROR_INIT;
    assert_int_equal(oci_runtime_exec_sync(fx->rt, "hang", &o, &r, &e2), -1);
    assert_int_equal(e2.status, ETIMEDOUT);
    assert_true(tmp_dir_empty(fx));
}

/* Start time (field 22 of /proc/<pid>/stat) of pid. */
static unsigned long long start_time(pid_t pid)
{
    cleanup_free char *path = xasprintf("/proc/%d/stat", (int)pid);
    cleanup_free char *stat = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(read_file(path, 4096, &stat, NULL, &err), 0);
    char *p = strrchr(stat, ')');
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    assert_non_null(p);
    return strtoull(p + 1, NULL, 10);
}

/* A runc-like state dir for id: state.json naming init (pid, start time)
 * and an exec fifo. Returns the fifo's path. */
static char *fake_runc_state(fixture_t *fx, const char *id, pid_t init, unsigned long long start)
{
    cleanup_free char *dir = xasprintf("%s/%s", fx->rt->root, id);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(mkdir_p(dir, 0700, &err), 0);
    cleanup_free char *state = xasprintf("%s/state.json", dir);
    cleanup_free char *json =
        xasprintf("{\"id\":\"%s\",\"init_process_pid\":%d,\"init_process_start\":%llu}", id,
                  (int)init, start);
    assert_int_equal(write_file_atomic(state, json, strlen(json), 0600, &err), 0);
    char *fifo = xasprintf("%s/exec.fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    return fifo;
}

/* start reads the exec fifo the way `runc start` does, without running the
 * runtime: the init's byte is read, the fifo removed (runc's "running"). */
static void test_start_through_exec_fifo(void **state)
{
    fixture_t *fx = *state;
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t init = fork();
    assert_true(init >= 0);
    if (init == 0) { /* the init: blocks opening the fifo for writing, writes, "execs" */
        char path[256] = "";
        ssize_t n = read(go[0], path, sizeof(path) - 1);
        int fd = n > 0 ? open(path, O_WRONLY) : -1;
        _exit(fd >= 0 && write(fd, "0", 1) == 1 ? 0 : 1);
    }
    cleanup_free char *fifo = fake_runc_state(fx, "viafifo", init, start_time(init));
    assert_int_equal(write(go[1], fifo, strlen(fifo)), (ssize_t)strlen(fifo));
    /* without pidfd_open (valgrind 3.19 does not know the syscall) the
     * init cannot be watched: start must fall back to the runtime then */
    int probe = (int)syscall(SYS_pidfd_open, getpid(), 0);
    bool have_pidfd = probe >= 0 || errno != ENOSYS;
    if (probe >= 0)
        close(probe);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(oci_runtime_start(fx->rt, "viafifo", &err), 0);
    bool ran_runtime = access(fx->argv_file, F_OK) == 0;
    if (ran_runtime)
        kill(init, SIGKILL); /* nobody read its fifo */
    int st = 0;
    assert_int_equal(waitpid(init, &st, 0), init);
    close(go[0]);
    close(go[1]);
    if (!have_pidfd) {
        assert_true(ran_runtime);
        return;
    }
    assert_false(ran_runtime);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(access(fifo, F_OK), -1); /* removed: running */
}

/* An init that is gone, or a pid that is not the init any more (its start
 * time differs): `runtime start` runs and judges. */
static void test_start_falls_back_to_the_runtime(void **state)
{
    fixture_t *fx = *state;
    pid_t dead = fork();
    assert_true(dead >= 0);
    if (dead == 0)
        _exit(0);
    assert_int_equal(waitpid(dead, NULL, 0), dead);
    cleanup_free char *f1 = fake_runc_state(fx, "deadinit", dead, 1);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(oci_runtime_start(fx->rt, "deadinit", &err), 0);
    cleanup_free char *argv = recorded_argv(fx);
    assert_non_null(strstr(argv, " start deadinit"));
    unlink(fx->argv_file);

    cleanup_free char *f2 = fake_runc_state(fx, "recycled", getpid(), start_time(getpid()) + 1);
    assert_int_equal(oci_runtime_start(fx->rt, "recycled", &err), 0);
    cleanup_free char *argv2 = recorded_argv(fx);
    assert_non_null(strstr(argv2, " start recycled"));
    assert_int_equal(access(f2, F_OK), 0); /* the fifo is the runtime's business then */
    unlink(fx->argv_file);

    /* a live init, but poststart hooks: only `runtime start` runs them */
    cleanup_free char *f3 = fake_runc_state(fx, "hooked", getpid(), start_time(getpid()));
    cleanup_free char *st = xasprintf("%s/hooked/state.json", fx->rt->root);
    cleanup_free char *json =
        xasprintf("{\"id\":\"hooked\",\"init_process_pid\":%d,\"init_process_start\":%llu,"
                  "\"config\":{\"Hooks\":{\"poststart\":[{\"path\":\"/bin/true\"}]}}}",
                  (int)getpid(), (unsigned long long)start_time(getpid()));
    assert_int_equal(write_file_atomic(st, json, strlen(json), 0600, &err), 0);
    assert_int_equal(oci_runtime_start(fx->rt, "hooked", &err), 0);
    cleanup_free char *argv3 = recorded_argv(fx);
    assert_non_null(strstr(argv3, " start hooked"));
    assert_int_equal(access(f3, F_OK), 0);
}

/* With SIGCHLD ignored the kernel reaps children itself: the call must fail
 * at once with ECHILD, not wait for its timeout. */
static void test_child_reaped_elsewhere(void **state)
{
    fixture_t *fx = *state;
    fx->rt->timeout_ms = 20000;
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGCHLD, &ign, &old);
    cri_error_t err = CRI_ERROR_INIT;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int r = oci_runtime_start(fx->rt, "c1", &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    sigaction(SIGCHLD, &old, NULL);
    assert_int_equal(r, -1);
    assert_int_equal(err.status, ECHILD);
    assert_true(t1.tv_sec - t0.tv_sec < 10);
}

/* The per-call temp files carry the daemon's pid; a dead pid's files are
 * swept (a daemon killed mid-call left them), a live one's stay. */
static void test_sweep_tmp_of_dead_daemons(void **state)
{
    fixture_t *fx = *state;
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        _exit(0);
    assert_int_equal(waitpid(child, NULL, 0), child);
    cleanup_free char *tmp = xasprintf("%s/root.tmp", fx->dir);
    const char *names[] = {"dead", "self", "init", "plain"};
    char *paths[4];
    paths[0] = xasprintf("%s/log-%d-AbCdEf", tmp, (int)child);
    paths[1] = xasprintf("%s/log-%d-AbCdEf", tmp, (int)getpid());
    paths[2] = xasprintf("%s/resources-1-AbCdEf", tmp);
    paths[3] = xasprintf("%s/log-AbCdEf", tmp);
    cri_error_t err = CRI_ERROR_INIT;
    for (int i = 0; i < 4; i++)
        assert_int_equal(write_file_atomic(paths[i], names[i], 1, 0600, &err), 0);
    assert_int_equal(oci_runtime_sweep_tmp(fx->rt, &err), 0);
    assert_int_equal(access(paths[0], F_OK), -1);
    for (int i = 1; i < 4; i++)
        assert_int_equal(access(paths[i], F_OK), 0);
    for (int i = 0; i < 4; i++)
        free(paths[i]);
}

static void test_new_missing_binary(void **state)
{
    cri_error_t err = CRI_ERROR_INIT;
    oci_runtime_t *rt = NULL;
    assert_int_equal(oci_runtime_new("no-such-runtime-binary", "/tmp/x", 0, NULL, &rt, &err), -1);
    assert_int_equal(err.status, ENOENT);
    assert_null(rt);
    assert_int_equal(oci_runtime_new("/bin/sh", "relative", 0, NULL, &rt, &err), -1);
    assert_int_equal(err.status, EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dispatch_to_fake),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_error_message_extraction),
        cmocka_unit_test_setup_teardown(test_argv_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_surface, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_and_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_kills, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_sync_capture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_sync_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_through_exec_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_falls_back_to_the_runtime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_child_reaped_elsewhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_tmp_of_dead_daemons, setup, teardown),
        cmocka_unit_test(test_new_missing_binary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
