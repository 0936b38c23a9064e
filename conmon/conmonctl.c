/* conmonctl: the conmon client library on the command line, so the e2e
 * tests and benchmarks drive monitors exactly the way cricketd does.
 *
 *   conmonctl create --monitor M --runtime R [--runtime-arg A]... --exit-dir D
 *             --socket-dir S --id ID --bundle B [--log-path L] [--log-max-size N]
 *             [--terminal] [--stdin] [--stdin-once] [--timeout-ms N] [--hold]
 *   conmonctl exec --monitor M --runtime R [--runtime-arg A]... --id ID
 *             --process FILE [--timeout S] [--cap N] [--terminal]
 *   conmonctl reopen --socket-dir S --id ID
 *   conmonctl resize --socket-dir S --id ID --width W --height H
 *   conmonctl exit --path FILE
 *
 * Results are one JSON line on stdout; exec adds the raw stdout and stderr
 * bytes after it (lengths in the line). Failures print {"error", "errno"}
 * and exit 1. --hold keeps the process alive after a create (tests kill it). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "conmon/conmon.h"

typedef struct args {
    conmon_config_t cfg;
    conmon_create_opts_t create;
    conmon_exec_opts_t exec;
    const char *rt_args[32];
    size_t n_rt;
    const char *path;
    unsigned width, height;
    bool hold;
} args_t;

static const struct option opts[] = {
    {"monitor", required_argument, NULL, 'm'},
    {"runtime", required_argument, NULL, 'r'},
    {"runtime-arg", required_argument, NULL, 'a'},
    {"exit-dir", required_argument, NULL, 'e'},
    {"socket-dir", required_argument, NULL, 's'},
    {"id", required_argument, NULL, 'i'},
    {"bundle", required_argument, NULL, 'b'},
    {"log-path", required_argument, NULL, 'l'},
    {"log-max-size", required_argument, NULL, 'L'},
    {"terminal", no_argument, NULL, 't'},
    {"stdin", no_argument, NULL, 'I'},
    {"stdin-once", no_argument, NULL, 'O'},
    {"timeout-ms", required_argument, NULL, 'T'},
    {"hold", no_argument, NULL, 'H'},
    {"process", required_argument, NULL, 'p'},
    {"timeout", required_argument, NULL, 'x'},
    {"cap", required_argument, NULL, 'c'},
    {"path", required_argument, NULL, 'P'},
    {"width", required_argument, NULL, 'W'},
    {"height", required_argument, NULL, 'h'},
    {"monitor-log", required_argument, NULL, 'M'},
    {NULL, 0, NULL, 0},
};

static long long num(const char *s)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (!end || *end || end == s) {
        (void)fprintf(stderr, "conmonctl: bad number `%s`\n", s);
        exit(2);
    }
    return v;
}

static void parse(int argc, char **argv, args_t *a)
{
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            a->cfg.monitor_path = optarg;
            break;
        case 'r':
            a->cfg.runtime_path = optarg;
            break;
        case 'a':
            if (a->n_rt < 31)
                a->rt_args[a->n_rt++] = optarg;
            break;
        case 'e':
            a->cfg.exit_dir = optarg;
            break;
        case 's':
            a->cfg.socket_dir = optarg;
            break;
        case 'M':
            a->cfg.monitor_log = optarg;
            break;
        case 'i':
            a->create.id = a->exec.id = optarg;
            break;
        case 'b':
            a->create.bundle = optarg;
            break;
        case 'l':
            a->create.log_path = optarg;
            break;
        case 'L':
            a->create.log_max_size = num(optarg);
            break;
        case 't':
            a->create.terminal = a->exec.terminal = true;
            break;
        case 'I':
            a->create.stdin_open = true;
            break;
        case 'O':
            a->create.stdin_once = true;
            break;
        case 'T':
            a->create.timeout_ms = (int)num(optarg);
            break;
        case 'H':
            a->hold = true;
            break;
        case 'p':
            a->exec.process_path = optarg;
            break;
        case 'x':
            a->exec.timeout_s = (int)num(optarg);
            break;
        case 'c':
            a->exec.output_cap = (size_t)num(optarg);
            break;
        case 'P':
            a->path = optarg;
            break;
        case 'W':
            a->width = (unsigned)num(optarg);
            break;
        case 'h':
            a->height = (unsigned)num(optarg);
            break;
        default:
            exit(2);
        }
    }
    a->rt_args[a->n_rt] = NULL;
    a->cfg.runtime_args = a->rt_args;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (s) {
        printf("%s\n", s);
        free(s);
    }
    json_decref(j);
    (void)fflush(stdout);
}

static int fail(const cri_error_t *err)
{
    print_json(json_pack("{s:s, s:i}", "error", err->msg, "errno", err->status));
    return 1;
}

static int do_exec(args_t *a, cri_error_t *err)
{
    conmon_exec_result_t *r = NULL;
    if (conmon_exec_sync(&a->cfg, &a->exec, &r, err) < 0)
        return fail(err);
    print_json(json_pack("{s:i, s:b, s:I, s:I}", "exit_code", r->exit_code, "timed_out",
                         r->timed_out, "stdout_len", (json_int_t)r->out_len, "stderr_len",
                         (json_int_t)r->err_len));
    bool ok = fwrite(r->out, 1, r->out_len, stdout) == r->out_len &&
              fwrite(r->err, 1, r->err_len, stdout) == r->err_len && fflush(stdout) == 0;
    conmon_exec_result_free(r);
    if (!ok) {
        (void)fprintf(stderr, "conmonctl: cannot write the output: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

static int do_exit(args_t *a, cri_error_t *err)
{
    conmon_exit_t e;
    if (conmon_exit_read(a->path, &e, err) < 0)
        return fail(err);
    print_json(json_pack("{s:i, s:i, s:i, s:b, s:I}", "pid", (int)e.pid, "exit_code", e.exit_code,
                         "signal", e.signal, "oom_killed", e.oom_killed, "finished_at",
                         (json_int_t)e.finished_at));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        (void)fprintf(stderr, "usage: conmonctl create|exec|reopen|resize|exit [options]\n");
        return 2;
    }
    const char *cmd = argv[1];
    args_t a = {0};
    cri_error_t err = CRI_ERROR_INIT;
    parse(argc - 1, argv + 1, &a);
    if (strcmp(cmd, "create") == 0) {
        pid_t pid = 0, monitor = 0;
        if (conmon_create(&a.cfg, &a.create, &pid, &monitor, &err) < 0)
            return fail(&err);
        print_json(json_pack("{s:i, s:i}", "pid", (int)pid, "monitor_pid", (int)monitor));
        while (a.hold)
            pause();
        return 0;
    }
    if (strcmp(cmd, "exec") == 0)
        return do_exec(&a, &err);
    if (strcmp(cmd, "reopen") == 0) {
        if (conmon_reopen_log(a.cfg.socket_dir, a.create.id, 0, &err) < 0)
            return fail(&err);
        print_json(json_pack("{s:b}", "ok", 1));
        return 0;
    }
    if (strcmp(cmd, "resize") == 0) {
        if (conmon_resize(a.cfg.socket_dir, a.create.id, a.width, a.height, &err) < 0)
            return fail(&err);
        print_json(json_pack("{s:b}", "ok", 1));
        return 0;
    }
    if (strcmp(cmd, "exit") == 0)
        return do_exit(&a, &err);
    (void)fprintf(stderr, "conmonctl: unknown command `%s`\n", cmd);
    return 2;
}
