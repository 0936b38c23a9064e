/* conmon/: the CRI log writer, exit files and sync messages (no processes). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "conmon/conmon-internal.h"
#include "conmon/conmon.h"

#define TS_NS 1700000000123456789LL
#define TS "2023-11-14T22:13:20.123456789Z"

typedef struct tmpdir {
    char path[64];
} tmpdir_t;

static int setup_dir(void **state)
{
    tmpdir_t *t = malloc(sizeof(*t));
    snprintf(t->path, sizeof(t->path), "/tmp/test_conmon.XXXXXX");
    if (!mkdtemp(t->path)) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static int teardown_dir(void **state)
{
    tmpdir_t *t = *state;
    cri_error_t err = CRI_ERROR_INIT;
    rm_rf(t->path, &err);
    free(t);
    return 0;
}

static char *slurp(const char *path, size_t *ret_len)
{
    char *data = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(read_file(path, 1 << 24, &data, ret_len, &err), 0);
    return data;
}

/* ---- log writer: table of chunk sequences and the exact file they give */

typedef struct chunk {
    const char *stream;
    const char *data;
} chunk_t;

typedef struct log_case {
    const char *name;
    chunk_t chunks[4];
    const char *expect;
} log_case_t;

#define L(stream, tag, text) TS " " stream " " tag " " text

static const log_case_t log_cases[] = {
    {"one line", {{"stdout", "hello\n"}}, L("stdout", "F", "hello\n")},
    {"two lines", {{"stdout", "a\nb\n"}}, L("stdout", "F", "a\n") L("stdout", "F", "b\n")},
    {"empty chunk", {{"stdout", ""}}, ""},
    {"empty line", {{"stdout", "\n"}}, L("stdout", "F", "\n")},
    {"two empty lines", {{"stdout", "\n\n"}}, L("stdout", "F", "\n") L("stdout", "F", "\n")},
    {"missing final newline", {{"stdout", "nonl"}}, L("stdout", "P", "nonl\n")},
    {"line then partial",
     {{"stdout", "abc\ndef"}},
     L("stdout", "F", "abc\n") L("stdout", "P", "def\n")},
    {"partial then rest",
     {{"stdout", "par"}, {"stdout", "tial\n"}},
     L("stdout", "P", "par\n") L("stdout", "F", "tial\n")},
    {"carriage return kept", {{"stdout", "a\r\n"}}, L("stdout", "F", "a\r\n")},
    {"stderr", {{"stderr", "oops\n"}}, L("stderr", "F", "oops\n")},
    {"interleaved streams",
     {{"stdout", "o1\n"}, {"stderr", "e1\n"}, {"stdout", "o2"}},
     L("stdout", "F", "o1\n") L("stderr", "F", "e1\n") L("stdout", "P", "o2\n")},
};

static void test_log_table(void **state)
{
    tmpdir_t *t = *state;
    for (size_t i = 0; i < sizeof(log_cases) / sizeof(log_cases[0]); i++) {
        const log_case_t *c = &log_cases[i];
        cleanup_free char *path = xasprintf("%s/case%zu.log", t->path, i);
        conmon_log_t log = CONMON_LOG_INIT;
        cri_error_t err = CRI_ERROR_INIT;
        assert_int_equal(conmon_log_open(&log, path, 0, &err), 0);
        for (size_t k = 0; k < 4 && c->chunks[k].stream; k++)
            assert_int_equal(conmon_log_write(&log, c->chunks[k].stream, c->chunks[k].data,
                                              strlen(c->chunks[k].data), TS_NS, &err),
                             0);
        conmon_log_close(&log);
        size_t len = 0;
        cleanup_free char *got = slurp(path, &len);
        if (strcmp(got, c->expect) != 0)
            fail_msg("case `%s`: got\n%s\nwant\n%s", c->name, got, c->expect);
    }
}

/* Writes `total` bytes of 'x' (plus "\n" when nl) in chunks of `step`,
 * as the monitor would read them, and returns the file. */
static char *write_long_line(const char *dir, size_t total, size_t step, bool nl)
{
    cleanup_free char *path = xasprintf("%s/long.log", dir);
    unlink(path);
    cleanup_free char *data = xmalloc(total + 1);
    memset(data, 'x', total);
    if (nl)
        data[total - 1] = '\n';
    conmon_log_t log = CONMON_LOG_INIT;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(conmon_log_open(&log, path, 0, &err), 0);
    for (size_t off = 0; off < total; off += step) {
        size_t n = total - off < step ? total - off : step;
        assert_int_equal(conmon_log_write(&log, "stdout", data + off, n, TS_NS, &err), 0);
    }
    conmon_log_close(&log);
    return slurp(path, NULL);
}

static void test_log_exact_buffer_line(void **state)
{
    tmpdir_t *t = *state;
    /* 8191 bytes + "\n" in one read: one F record */
    cleanup_free char *a = write_long_line(t->path, CONMON_STDIO_BUF, CONMON_STDIO_BUF, true);
    size_t head = strlen(TS " stdout F ");
    assert_int_equal(strlen(a), head + CONMON_STDIO_BUF);
    assert_memory_equal(a, TS " stdout F ", head);
    assert_int_equal(a[strlen(a) - 1], '\n');
    /* a full buffer without "\n": a P record of the whole buffer */
    cleanup_free char *b = write_long_line(t->path, CONMON_STDIO_BUF, CONMON_STDIO_BUF, false);
    assert_int_equal(strlen(b), head + CONMON_STDIO_BUF + 1);
    assert_memory_equal(b, TS " stdout P ", head);
}

static void test_log_100k_line(void **state)
{
    tmpdir_t *t = *state;
    size_t total = 100 * 1024 + 1;
    cleanup_free char *got = write_long_line(t->path, total, CONMON_STDIO_BUF, true);
    size_t pieces = (total + CONMON_STDIO_BUF - 1) / CONMON_STDIO_BUF, n = 0, content = 0;
    size_t head = strlen(TS " stdout F ");
    for (char *line = got; *line; n++) {
        char *end = strchr(line, '\n');
        assert_non_null(end);
        bool last = n == pieces - 1;
        assert_memory_equal(line, last ? TS " stdout F " : TS " stdout P ", head);
        size_t body = (size_t)(end - line) - head + (last ? 1 : 0);
        content += body;
        line = end + 1;
    }
    assert_int_equal(n, pieces);
    assert_int_equal(content, total);
}

static void test_log_max_size(void **state)
{
    tmpdir_t *t = *state;
    cleanup_free char *path = xasprintf("%s/max.log", t->path);
    conmon_log_t log = CONMON_LOG_INIT;
    cri_error_t err = CRI_ERROR_INIT;
    size_t rec = strlen(L("stdout", "F", "line-0\n"));
    assert_int_equal(conmon_log_open(&log, path, (int64_t)(rec * 3), &err), 0);
    char line[16];
    for (int i = 0; i < 7; i++) {
        int n = snprintf(line, sizeof(line), "line-%d\n", i);
        assert_int_equal(conmon_log_write(&log, "stdout", line, (size_t)n, TS_NS, &err), 0);
    }
    conmon_log_close(&log);
    size_t len = 0;
    cleanup_free char *got = slurp(path, &len);
    assert_true(len <= rec * 3);
    assert_string_equal(got, L("stdout", "F", "line-6\n"));
}

static void test_log_reopen_after_rename(void **state)
{
    tmpdir_t *t = *state;
    cleanup_free char *path = xasprintf("%s/r.log", t->path);
    cleanup_free char *old = xasprintf("%s/r.log.1", t->path);
    conmon_log_t log = CONMON_LOG_INIT;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(conmon_log_open(&log, path, 0, &err), 0);
    assert_int_equal(conmon_log_write(&log, "stdout", "before\n", 7, TS_NS, &err), 0);
    assert_int_equal(rename(path, old), 0);
    assert_int_equal(conmon_log_reopen(&log, &err), 0);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(conmon_log_write(&log, "stdout", "after\n", 6, TS_NS, &err), 0);
    conmon_log_close(&log);
    cleanup_free char *a = slurp(old, NULL);
    cleanup_free char *b = slurp(path, NULL);
    assert_string_equal(a, L("stdout", "F", "before\n"));
    assert_string_equal(b, L("stdout", "F", "after\n"));
}

/* A symlink (or a FIFO) at the log path is refused, at open and at reopen,
 * and the file it points at never gets a byte. */
static void test_log_never_follows_symlinks(void **state)
{
    tmpdir_t *t = *state;
    cleanup_free char *path = xasprintf("%s/s.log", t->path);
    cleanup_free char *victim = xasprintf("%s/victim", t->path);
    cleanup_free char *fifo = xasprintf("%s/fifo.log", t->path);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(write_file_atomic(victim, "", 0, 0600, &err), 0);
    assert_int_equal(symlink(victim, path), 0);
    conmon_log_t log = CONMON_LOG_INIT;
    assert_int_equal(conmon_log_open(&log, path, 0, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "symlink"));
    conmon_log_close(&log);

    assert_int_equal(mkfifo(fifo, 0600), 0); /* no reader: must not block */
    err = (cri_error_t)CRI_ERROR_INIT;
    assert_int_equal(conmon_log_open(&log, fifo, 0, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_non_null(strstr(err.msg, "not a regular file"));
    conmon_log_close(&log);

    /* reopen: a link planted after a rename is refused, the old fd kept */
    assert_int_equal(unlink(path), 0);
    err = (cri_error_t)CRI_ERROR_INIT;
    assert_int_equal(conmon_log_open(&log, path, 0, &err), 0);
    cleanup_free char *old = xasprintf("%s/s.log.1", t->path);
    assert_int_equal(rename(path, old), 0);
    assert_int_equal(symlink(victim, path), 0);
    assert_int_equal(conmon_log_reopen(&log, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_non_null(strstr(err.msg, "symlink"));
    err = (cri_error_t)CRI_ERROR_INIT;
    assert_int_equal(conmon_log_write(&log, "stdout", "kept\n", 5, TS_NS, &err), 0);
    conmon_log_close(&log);
    size_t len = 1;
    cleanup_free char *v = slurp(victim, &len);
    assert_int_equal(len, 0);
    cleanup_free char *a = slurp(old, NULL);
    assert_string_equal(a, L("stdout", "F", "kept\n"));
}

static void test_log_off_and_timestamp(void **state)
{
    conmon_log_t log = CONMON_LOG_INIT;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(conmon_log_open(&log, NULL, 0, &err), 0);
    assert_int_equal(conmon_log_write(&log, "stdout", "x\n", 2, TS_NS, &err), 0);
    assert_int_equal(conmon_log_reopen(&log, &err), 0);
    conmon_log_close(&log);
    char ts[CONMON_TS_LEN + 1];
    assert_int_equal(conmon_log_timestamp(0, ts, sizeof(ts)), CONMON_TS_LEN);
    assert_string_equal(ts, "1970-01-01T00:00:00.000000000Z");
    conmon_log_timestamp(TS_NS, ts, sizeof(ts));
    assert_string_equal(ts, TS);
}

/* ---- exit files ---------------------------------------------------------- */

static void test_exit_roundtrip(void **state)
{
    conmon_exit_t in = {.pid = 4242,
                        .exit_code = 137,
                        .signal = 9,
                        .oom_killed = true,
                        .finished_at = 1700000000123456789LL};
    cleanup_free char *json = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(conmon_exit_format("abc", &in, &json, &err), 0);
    assert_string_equal(json, "{\"id\":\"abc\",\"pid\":4242,\"exit_code\":137,\"signal\":9,"
                              "\"oom_killed\":true,\"finished_at\":1700000000123456789}\n");
    conmon_exit_t out;
    assert_int_equal(conmon_exit_parse(json, strlen(json), &out, &err), 0);
    assert_int_equal(out.pid, 4242);
    assert_int_equal(out.exit_code, 137);
    assert_int_equal(out.signal, 9);
    assert_true(out.oom_killed);
    assert_true(out.finished_at == in.finished_at);
}

static void test_exit_parse_errors(void **state)
{
    static const char *const bad[] = {
        "",
        "not json",
        "[]",
        "{\"pid\":1,\"exit_code\":0,\"signal\":0,\"oom_killed\":false}", /* no finished_at */
        "{\"pid\":1,\"exit_code\":\"0\",\"signal\":0,\"oom_killed\":false,\"finished_at\":1}",
        "{\"pid\":1,\"exit_code\":0,\"signal\":0,\"oom_killed\":0,\"finished_at\":1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cri_error_t err = CRI_ERROR_INIT;
        conmon_exit_t out = {.pid = -7};
        assert_int_equal(conmon_exit_parse(bad[i], strlen(bad[i]), &out, &err), -1);
        assert_int_equal(err.status, EINVAL);
        assert_int_equal(out.pid, -7); /* untouched on failure */
    }
    /* extra keys are fine (forward compatible) */
    const char *ok = "{\"pid\":1,\"exit_code\":2,\"signal\":0,\"oom_killed\":false,"
                     "\"finished_at\":5,\"new\":1}";
    conmon_exit_t out;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(conmon_exit_parse(ok, strlen(ok), &out, &err), 0);
    assert_int_equal(out.exit_code, 2);
}

static void test_exit_read_missing(void **state)
{
    tmpdir_t *t = *state;
    cleanup_free char *path = xasprintf("%s/none", t->path);
    conmon_exit_t out;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(conmon_exit_read(path, &out, &err), -1);
    assert_int_equal(err.status, ENOENT);
}

/* ---- sync messages ------------------------------------------------------- */

static void roundtrip(const conmon_sync_msg_t *in, const char *want, conmon_sync_msg_t *out)
{
    cleanup_free char *line = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(conmon_sync_format(in, &line, &err), 0);
    assert_string_equal(line, want);
    assert_int_equal(conmon_sync_parse(line, strlen(line), out, &err), 0);
    assert_int_equal(out->type, in->type);
}

static void test_sync_roundtrip(void **state)
{
    conmon_sync_msg_t out;
    conmon_sync_msg_t mon = {.type = CONMON_SYNC_MONITOR, .pid = 10};
    roundtrip(&mon, "{\"type\":\"monitor\",\"pid\":10}\n", &out);
    assert_int_equal(out.pid, 10);
    conmon_sync_msg_clear(&out);

    conmon_sync_msg_t created = {.type = CONMON_SYNC_CREATED, .pid = 11};
    roundtrip(&created, "{\"type\":\"created\",\"pid\":11}\n", &out);
    assert_int_equal(out.pid, 11);
    conmon_sync_msg_clear(&out);

    conmon_sync_msg_t e = {.type = CONMON_SYNC_ERROR, .status = ENOENT, .message = "no \"x\""};
    roundtrip(&e, "{\"type\":\"error\",\"errno\":2,\"message\":\"no \\\"x\\\"\"}\n", &out);
    assert_int_equal(out.status, ENOENT);
    assert_string_equal(out.message, "no \"x\"");
    conmon_sync_msg_clear(&out);
    assert_null(out.message);

    conmon_sync_msg_t ex = {.type = CONMON_SYNC_EXEC,
                            .pid = 5,
                            .exit_code = -1,
                            .timed_out = true,
                            .stdout_len = 3,
                            .stderr_len = 0,
                            .stdout_trunc = true};
    roundtrip(&ex,
              "{\"type\":\"exec\",\"pid\":5,\"exit_code\":-1,\"signal\":0,\"timed_out\":true,"
              "\"stdout_len\":3,\"stderr_len\":0,\"stdout_truncated\":true,"
              "\"stderr_truncated\":false}\n",
              &out);
    assert_true(out.timed_out);
    assert_int_equal(out.exit_code, -1);
    assert_int_equal(out.stdout_len, 3);
    assert_true(out.stdout_trunc);
    assert_false(out.stderr_trunc);
    conmon_sync_msg_clear(&out);
}

static void test_sync_invalid_utf8_message(void **state)
{
    conmon_sync_msg_t e = {.type = CONMON_SYNC_ERROR, .status = EIO, .message = "bad \xff byte"};
    cleanup_free char *line = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(conmon_sync_format(&e, &line, &err), 0);
    conmon_sync_msg_t out;
    assert_int_equal(conmon_sync_parse(line, strlen(line), &out, &err), 0);
    assert_string_equal(out.message, "bad ? byte");
    conmon_sync_msg_clear(&out);
}

static void test_sync_parse_errors(void **state)
{
    static const char *const bad[] = {
        "",
        "{",
        "{\"pid\":1}",
        "{\"type\":\"nope\"}",
        "{\"type\":\"created\"}",
        "{\"type\":\"created\",\"pid\":0}",
        "{\"type\":\"error\"}",
        "{\"type\":\"exec\",\"pid\":1,\"exit_code\":0,\"signal\":0,\"timed_out\":false,"
        "\"stdout_len\":-1,\"stderr_len\":0}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        conmon_sync_msg_t out = {.pid = -3};
        cri_error_t err = CRI_ERROR_INIT;
        assert_int_equal(conmon_sync_parse(bad[i], strlen(bad[i]), &out, &err), -1);
        assert_int_equal(err.status, EINVAL);
        assert_int_equal(out.pid, -3);
    }
}

/* ---- client without a monitor ------------------------------------------- */

static void test_client_no_monitor(void **state)
{
    tmpdir_t *t = *state;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(conmon_reopen_log(t->path, "nope", 100, &err), -1);
    assert_int_equal(err.status, ESRCH);
    cri_error_clear(&err);
    assert_int_equal(conmon_resize(t->path, "nope", 80, 24, &err), -1);
    assert_int_equal(err.status, ESRCH);
    cri_error_clear(&err);
    assert_int_equal(conmon_reopen_log(t->path, "../x", 100, &err), -1);
    assert_int_equal(err.status, EINVAL);

    conmon_config_t cfg = {0};
    conmon_create_opts_t opts = {.id = "x"};
    pid_t pid = -1;
    cri_error_clear(&err);
    assert_int_equal(conmon_create(&cfg, &opts, &pid, NULL, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_int_equal(pid, -1);
}

static void test_client_monitor_missing_binary(void **state)
{
    tmpdir_t *t = *state;
    conmon_config_t cfg = {.monitor_path = "/nonexistent/cricket-conmon",
                           .runtime_path = "/bin/true",
                           .exit_dir = t->path,
                           .socket_dir = t->path};
    conmon_create_opts_t opts = {.id = "x", .bundle = "/nonexistent", .timeout_ms = 2000};
    pid_t pid = -1;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(conmon_create(&cfg, &opts, &pid, NULL, &err), -1);
    assert_int_equal(err.status, ENOENT);
    assert_non_null(strstr(err.msg, "create container `x`"));
}

/* A stand-in monitor (shell) for the interactive exec client: it checks it
 * got its two sockets as fds 4 and 5 with the matching options, sends one
 * stdout packet on fd 4, closes it, and reports exit code 7. */
static const char fake_exec_monitor[] =
    "#!/bin/sh\n"
    "case \"$*\" in *'--exec-attach-fd 4 --exec-ctl-fd 5'*) ;; *) exit 9;; esac\n"
    "ls -l /proc/$$/fd/4 /proc/$$/fd/5 | grep -c socket: | grep -qx 2 || exit 9\n"
    "printf '{\"type\":\"monitor\",\"pid\":%d}\\n' $$ >&3\n"
    "printf '\\001hi' >&4\n"
    "exec 4>&- 5>&-\n"
    "printf '{\"type\":\"exec\",\"pid\":1,\"exit_code\":7,\"signal\":0,\"timed_out\":false,"
    "\"stdout_len\":0,\"stderr_len\":0}\\n' >&3\n";

static void test_client_exec_live(void **state)
{
    tmpdir_t *t = *state;
    cleanup_free char *mon = xasprintf("%s/fake-monitor", t->path);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(
        write_file_atomic(mon, fake_exec_monitor, strlen(fake_exec_monitor), 0700, &err), 0);
    conmon_config_t cfg = {.monitor_path = mon, .runtime_path = "/bin/true"};
    conmon_exec_live_opts_t opts = {.id = "x", .process_path = "/nonexistent.json"};
    conmon_exec_live_t *x = NULL;
    assert_int_equal(conmon_exec_live_start(&cfg, &opts, &x, &err), 0);
    char buf[16];
    ssize_t n = recv(conmon_exec_live_fd(x), buf, sizeof(buf), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "\001hi", 3);
    assert_int_equal(recv(conmon_exec_live_fd(x), buf, sizeof(buf), 0), 0);
    int code = -1;
    assert_int_equal(conmon_exec_live_wait(x, 5000, &code, &err), 0);
    assert_int_equal(code, 7);
    /* after the end: resize says so, cancel and free are fine */
    conmon_exec_live_cancel(x);
    assert_int_equal(conmon_exec_live_fd(x), -1);
    assert_int_equal(conmon_exec_live_resize(x, 80, 24, &err), -1);
    assert_int_equal(err.status, ESRCH);
    conmon_exec_live_free(x);

    opts.id = "";
    cri_error_clear(&err);
    assert_int_equal(conmon_exec_live_start(&cfg, &opts, &x, &err), -1);
    assert_int_equal(err.status, EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_table, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_log_exact_buffer_line, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_log_100k_line, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_log_max_size, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_log_reopen_after_rename, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_log_never_follows_symlinks, setup_dir, teardown_dir),
        cmocka_unit_test(test_log_off_and_timestamp),
        cmocka_unit_test(test_exit_roundtrip),
        cmocka_unit_test(test_exit_parse_errors),
        cmocka_unit_test_setup_teardown(test_exit_read_missing, setup_dir, teardown_dir),
        cmocka_unit_test(test_sync_roundtrip),
        cmocka_unit_test(test_sync_invalid_utf8_message),
        cmocka_unit_test(test_sync_parse_errors),
        cmocka_unit_test_setup_teardown(test_client_no_monitor, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_client_monitor_missing_binary, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_client_exec_live, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
