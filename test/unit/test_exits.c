/* server/exits.c: exit files reported from the first scan and from inotify. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/exits.h"

typedef struct seen {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char ids[8][32];
    int codes[8];
    int n;
    /* monitor deaths, in order */
    char death_ids[8][32];
    exit_watcher_death_t deaths[8];
    int n_deaths;
} seen_t;

static void on_death(const char *id, const exit_watcher_death_t *dth, void *data)
{
    seen_t *s = data;
    pthread_mutex_lock(&s->lock);
    if (s->n_deaths < 8) {
        snprintf(s->death_ids[s->n_deaths], sizeof(s->death_ids[0]), "%s", id);
        s->deaths[s->n_deaths++] = *dth;
    }
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* Waits (10 s at most) for the want_n-th death report. */
static bool wait_deaths(seen_t *s, int want_n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&s->lock);
    while (s->n_deaths < want_n)
        if (pthread_cond_timedwait(&s->cond, &s->lock, &until) == ETIMEDOUT)
            break;
    bool ok = s->n_deaths >= want_n;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

/* pidfds are there (valgrind 3.19 does not know pidfd_open). */
static bool have_pidfd(void)
{
    int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

static pid_t spawn_sleeper(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* never outlives a failed test, never holds ctest's pipes */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        dup2(null, 2);
        for (;;)
            pause();
    }
    return pid;
}

static void kill_reap(pid_t pid, int sig)
{
    int st;
    kill(pid, sig);
    assert_int_equal(waitpid(pid, &st, 0), pid);
}

static void on_exit_file(const char *id, const conmon_exit_t *e, void *data)
{
    seen_t *s = data;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->ids[i], id) == 0)
            goto out; /* reported again: fine, count once */
    if (s->n < 8) {
        snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", id);
        s->codes[s->n++] = e->exit_code;
    }
    pthread_cond_broadcast(&s->cond);
out:
    pthread_mutex_unlock(&s->lock);
}

static int code_of(seen_t *s, const char *id, int want_n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&s->lock);
    while (s->n < want_n)
        if (pthread_cond_timedwait(&s->cond, &s->lock, &until) == ETIMEDOUT)
            break;
    int code = -1;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->ids[i], id) == 0)
            code = s->codes[i];
    pthread_mutex_unlock(&s->lock);
    return code;
}

static void write_exit(const char *dir, const char *id, int code, bool atomic)
{
    conmon_exit_t e = {.pid = 42, .exit_code = code, .finished_at = now_unix_ns()};
    cleanup_free char *json = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(conmon_exit_format(id, &e, &json, &err), 0);
    cleanup_free char *path = xasprintf("%s/%s", dir, id);
    if (atomic) {
        assert_int_equal(write_file_atomic(path, json, strlen(json), 0600, &err), 0);
        return;
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(json, f);
    fclose(f);
}

static void test_reports_existing_and_new_exits(void **state)
{
    char tmpl[] = "/tmp/cricket-exits-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    seen_t s = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    write_exit(tmpl, "before", 3, true); /* exited while the daemon was down */
    cleanup_free char *junk = xasprintf("%s/junk", tmpl);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(write_file_atomic(junk, "{not json", 9, 0600, &err), 0);

    exit_watcher_t *w = NULL;
    assert_int_equal(exit_watcher_start(tmpl, on_exit_file, &s, &w, &err), 0);
    assert_int_equal(code_of(&s, "before", 1), 3);
    write_exit(tmpl, "renamed", 137, true);
    assert_int_equal(code_of(&s, "renamed", 2), 137);
    write_exit(tmpl, "inplace", 0, false);
    assert_int_equal(code_of(&s, "inplace", 3), 0);
    exit_watcher_stop(w);
    assert_int_equal(s.n, 3); /* the junk file was not reported */
    assert_int_equal(rm_rf(tmpl, &err), 0);
}

static void test_stop_without_events_and_bad_dir(void **state)
{
    seen_t s = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    exit_watcher_t *w = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(exit_watcher_start("/proc/version/x", on_exit_file, &s, &w, &err), -1);
    assert_null(w);
    exit_watcher_stop(NULL);
}

/* A monitor that dies while its process runs: reported running, then the
 * process's end with its real status (pidfd exit info or the zombie's). */
static void test_monitor_death_then_process_end(void **state)
{
    if (!have_pidfd())
        skip();
    char tmpl[] = "/tmp/cricket-exits-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    seen_t s = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    cri_error_t err = CRI_ERROR_INIT;
    exit_watcher_t *w = NULL;
    assert_int_equal(exit_watcher_start(tmpl, on_exit_file, &s, &w, &err), 0);
    exit_watcher_on_monitor_death(w, on_death);
    pid_t mon = spawn_sleeper(), proc = spawn_sleeper();
    exit_watcher_watch(w, "ctr", mon, proc);
    assert_int_equal(exit_watcher_count(w), 1);
    kill_reap(mon, SIGKILL);
    assert_true(wait_deaths(&s, 1));
    assert_string_equal(s.death_ids[0], "ctr");
    assert_true(s.deaths[0].running);
    assert_int_equal(s.deaths[0].monitor_pid, mon);
    assert_int_equal(s.deaths[0].pid, proc);
    assert_int_equal(exit_watcher_count(w), 1); /* now the process is watched */
    kill(proc, SIGKILL);                        /* left unreaped a moment: a zombie */
    assert_true(wait_deaths(&s, 2));
    assert_false(s.deaths[1].running);
    assert_true(s.deaths[1].status_known);
    assert_true(WIFSIGNALED(s.deaths[1].wait_status));
    assert_int_equal(WTERMSIG(s.deaths[1].wait_status), SIGKILL);
    int st;
    assert_int_equal(waitpid(proc, &st, 0), proc);
    assert_int_equal(exit_watcher_count(w), 0);
    assert_int_equal(s.n, 0);
    exit_watcher_stop(w);
    assert_int_equal(rm_rf(tmpl, &err), 0);
}

/* The usual end: the exit file is there when the monitor goes, so it is the
 * report and no death is; a monitor already gone when watched, with its
 * process gone too, is reported ended at once; unwatch silences a watch. */
static void test_monitor_end_with_exit_file_and_gone_pids(void **state)
{
    if (!have_pidfd())
        skip();
    char tmpl[] = "/tmp/cricket-exits-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    seen_t s = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    cri_error_t err = CRI_ERROR_INIT;
    exit_watcher_t *w = NULL;
    assert_int_equal(exit_watcher_start(tmpl, on_exit_file, &s, &w, &err), 0);
    exit_watcher_on_monitor_death(w, on_death);

    pid_t mon = spawn_sleeper(), proc = spawn_sleeper();
    exit_watcher_watch(w, "clean", mon, proc);
    kill_reap(proc, SIGKILL);
    write_exit(tmpl, "clean", 137, true);
    kill_reap(mon, SIGKILL);
    assert_int_equal(code_of(&s, "clean", 1), 137);

    pid_t other = spawn_sleeper(), quiet = spawn_sleeper();
    exit_watcher_watch(w, "quiet", quiet, other);
    exit_watcher_unwatch(w, "quiet");
    kill_reap(quiet, SIGKILL);

    exit_watcher_watch(w, "gone", 0, 0);
    assert_true(wait_deaths(&s, 1));
    assert_string_equal(s.death_ids[0], "gone");
    assert_false(s.deaths[0].running);
    assert_false(s.deaths[0].status_known);
    kill_reap(other, SIGKILL);
    exit_watcher_stop(w);
    assert_int_equal(s.n_deaths, 1); /* neither "clean" nor "quiet" */
    assert_int_equal(rm_rf(tmpl, &err), 0);
}

/* A fake monitor: `sh -c <script> <args...>` whose child (a sleep) stands
 * for the container's process; returns the sh pid, *ret_child the sleep's. */
static pid_t fake_monitor(const char *dir, const char *const *args, pid_t *ret_child)
{
    cleanup_free char *pidf = xasprintf("%s/child.pid", dir);
    unlink(pidf);
    cleanup_free char *script = xasprintf("sleep 30 & echo $! > %s; wait", pidf);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *argv[12] = {"/bin/sh", "-c", script};
        for (size_t i = 0; args[i] && i < 8; i++)
            argv[3 + i] = args[i];
        execv("/bin/sh", (char *const *)argv);
        _exit(127);
    }
    char *text = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    for (int i = 0; i < 500 && (read_file(pidf, 64, &text, NULL, &err) < 0 || !*text); i++) {
        free(text);
        text = NULL;
        usleep(10000);
    }
    assert_non_null(text);
    *ret_child = (pid_t)strtol(text, NULL, 10);
    free(text);
    return pid;
}

static void kill_monitor(pid_t monitor, pid_t child)
{
    kill(child, SIGKILL);
    kill(monitor, SIGKILL);
    waitpid(monitor, NULL, 0);
}

static void test_live_monitor_of_recorded_pid(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/exits-live-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    pid_t child = 0;
    const char *const ours[] = {"--id", "c1", "--exit-dir", "/run/x/exits", NULL};
    pid_t mon = fake_monitor(tmpl, ours, &child);
    assert_int_equal(exit_watcher_live_monitor(child, "c1", "/run/x/exits"), mon);
    assert_int_equal(exit_watcher_monitor_of(child, "c1"), mon);
    /* another container's monitor, or another daemon's (exit dir) */
    assert_int_equal(exit_watcher_live_monitor(child, "c2", "/run/x/exits"), 0);
    assert_int_equal(exit_watcher_live_monitor(child, "c1", "/run/y/exits"), 0);
    /* the monitor itself is no container process under a monitor */
    assert_int_equal(exit_watcher_live_monitor(mon, "c1", "/run/x/exits"), 0);
    kill_monitor(mon, child);
    /* gone: silent */
    assert_int_equal(exit_watcher_live_monitor(child, "c1", "/run/x/exits"), 0);
    assert_int_equal(exit_watcher_live_monitor(0, "c1", "/run/x/exits"), 0);

    /* an exec monitor never vouches for a container */
    const char *const exec[] = {"--exec", "--id", "c1", "--exit-dir", "/run/x/exits", NULL};
    mon = fake_monitor(tmpl, exec, &child);
    assert_int_equal(exit_watcher_live_monitor(child, "c1", "/run/x/exits"), 0);
    kill_monitor(mon, child);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(rm_rf(tmpl, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monitor_death_then_process_end),
        cmocka_unit_test(test_monitor_end_with_exit_file_and_gone_pids),
        cmocka_unit_test(test_reports_existing_and_new_exits),
        cmocka_unit_test(test_stop_without_events_and_bad_dir),
        cmocka_unit_test(test_live_monitor_of_recorded_pid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
