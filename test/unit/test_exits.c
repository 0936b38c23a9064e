/* server/exits.c: exit files reported from the first scan and from inotify. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
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
} seen_t;

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reports_existing_and_new_exits),
        cmocka_unit_test(test_stop_without_events_and_bad_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
