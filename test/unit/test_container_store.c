/* server/container/: records, the store (lookup, refcounts, persistence and
 * name reservation on a temporary LMDB), layers in use, signal names. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "server/container/container.h"
#include "server/store.h"

static container_t *sample(const char *id, const char *name)
{
    container_t *c = container_new();
    str_set(&c->id, id);
    str_set(&c->name, name);
    str_set(&c->sandbox_id, "pod1");
    str_set(&c->meta_name, "web");
    c->attempt = 2;
    strv_free(c->labels);
    c->labels = xcalloc(5, sizeof(char *));
    c->labels[0] = xstrdup("app");
    c->labels[1] = xstrdup("web");
    c->labels[2] = xstrdup("odd key");
    c->labels[3] = xstrdup("v\"al\n");
    str_set(&c->image_id, "sha256:abc");
    strv_free(c->chain_ids);
    c->chain_ids = xcalloc(3, sizeof(char *));
    c->chain_ids[0] = xstrdup("sha256:l1");
    c->chain_ids[1] = xstrdup("sha256:l2");
    str_set(&c->log_path, "/var/log/pods/x/web/0.log");
    c->created_at = 1700000000123456789LL;
    c->stop_signal = SIGQUIT;
    c->mounts = xcalloc(2, sizeof(*c->mounts));
    c->mounts[0] = (container_mount_t){.container_path = xstrdup("/data"),
                                       .host_path = xstrdup("/srv/data"),
                                       .readonly = true,
                                       .propagation = 1};
    c->mounts[1] = (container_mount_t){.container_path = xstrdup("/vol"),
                                       .host_path = xstrdup(""),
                                       .readonly = true,
                                       .image = xstrdup("busybox"),
                                       .image_ref = xstrdup("sha256:img"),
                                       .image_sub_path = xstrdup("etc")};
    c->n_mounts = 2;
    c->gids = xcalloc(2, sizeof(*c->gids));
    c->gids[0] = 50000;
    c->gids[1] = 1234;
    c->n_gids = 2;
    c->uid = 1000;
    c->state = CONTAINER_STATE_RUNNING;
    c->pid = 42;
    c->started_at = c->created_at + 1;
    c->resources.memory_limit = 1 << 24;
    str_set(&c->resources.cpuset_cpus, "0-1");
    return c;
}

static void test_record_round_trip(void **state)
{
    cleanup_container container_t *c = sample("aaaa", "k8s_web_p_ns_uid_2");
    cleanup_free char *json = container_record_dump(c, true);
    cleanup_container container_t *back = NULL;
    bool creating = false;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(container_record_parse(json, strlen(json), &back, &creating, &err), 0);
    assert_true(creating);
    assert_string_equal(back->id, "aaaa");
    assert_string_equal(back->name, "k8s_web_p_ns_uid_2");
    assert_int_equal(back->attempt, 2);
    assert_string_equal(container_label(back, "odd key"), "v\"al\n");
    assert_null(container_label(back, "missing"));
    assert_string_equal(back->chain_ids[1], "sha256:l2");
    assert_null(back->chain_ids[2]);
    assert_int_equal(back->created_at, 1700000000123456789LL);
    assert_int_equal(back->stop_signal, SIGQUIT);
    assert_int_equal(back->n_mounts, 2);
    assert_null(back->mounts[0].image_ref);
    assert_string_equal(back->mounts[1].image, "busybox");
    assert_string_equal(back->mounts[1].image_ref, "sha256:img");
    assert_string_equal(back->mounts[1].image_sub_path, "etc");
    assert_string_equal(back->mounts[0].host_path, "/srv/data");
    assert_true(back->mounts[0].readonly);
    assert_int_equal(back->mounts[0].propagation, 1);
    assert_int_equal(back->n_gids, 2);
    assert_int_equal(back->gids[0], 50000);
    assert_int_equal(back->state, CONTAINER_STATE_RUNNING);
    assert_int_equal(back->pid, 42);
    assert_int_equal(back->resources.memory_limit, 1 << 24);
    assert_string_equal(back->resources.cpuset_cpus, "0-1");
    /* the dump of what was parsed is the same text */
    cleanup_free char *again = container_record_dump(back, true);
    assert_string_equal(json, again);
}

static void test_record_parse_errors(void **state)
{
    static const struct {
        const char *json;
        const char *want;
    } cases[] = {
        {"", "line"},
        {"[]", "container record"},
        {"{\"version\": 1}", "container record"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        container_t *c = NULL;
        bool creating = false;
        cri_error_t err = CRI_ERROR_INIT;
        assert_int_equal(
            container_record_parse(cases[i].json, strlen(cases[i].json), &c, &creating, &err), -1);
        assert_int_equal(err.status, EINVAL);
        assert_non_null(strstr(err.msg, cases[i].want));
        assert_null(c);
    }
    /* a bad state number is refused */
    cleanup_container container_t *c = sample("bbbb", "n");
    c->state = (container_state_t)9;
    cleanup_free char *json = container_record_dump(c, false);
    container_t *back = NULL;
    bool creating = false;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(container_record_parse(json, strlen(json), &back, &creating, &err), -1);
    assert_non_null(strstr(err.msg, "state 9"));
}

static void test_store_lookup_and_refs(void **state)
{
    container_store_t *s = container_store_new(NULL);
    cleanup_container container_t *a = sample("abc111", "a");
    cleanup_container container_t *b = sample("abc222", "b");
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(container_store_add(s, a, &err), 0);
    assert_int_equal(container_store_add(s, b, &err), 0);
    assert_int_equal(container_store_add(s, a, &err), -1);
    assert_int_equal(err.status, EEXIST);
    container_t *got = NULL;
    assert_int_equal(container_store_get(s, "abc1", &got, &err), 0);
    assert_ptr_equal(got, a);
    container_unref(got);
    assert_int_equal(container_store_get(s, "abc", &got, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_int_equal(container_store_get(s, "zzz", &got, &err), -1);
    assert_int_equal(err.status, ENOENT);
    assert_int_equal(container_store_get(s, "", &got, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_true(container_layer_in_use("sha256:l1", s));
    assert_false(container_layer_in_use("sha256:other", s));
    container_t **list = NULL;
    size_t n = 0;
    container_store_list(s, "pod1", &list, &n);
    assert_int_equal(n, 2);
    container_list_free(list, n);
    container_store_list(s, "pod2", &list, &n);
    assert_int_equal(n, 0);
    container_list_free(list, n);
    container_store_remove(s, a);
    assert_int_equal(container_store_get(s, "abc1", &got, &err), -1);
    container_store_free(s);
}

static void test_persist_reserve_forget_load(void **state)
{
    char dir[] = "/tmp/cricket-ctr-store-XXXXXX";
    assert_non_null(mkdtemp(dir));
    store_t *db = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(store_open(dir, &db, &err), 0);
    container_store_t *s = container_store_new(db);
    cleanup_container container_t *a = sample("id-a", "k8s_same");
    cleanup_container container_t *b = sample("id-b", "k8s_same");
    assert_int_equal(container_store_persist(s, a, true, &err), 0);
    assert_int_equal(container_store_persist(s, b, true, &err), -1);
    assert_int_equal(err.status, EEXIST);
    assert_non_null(strstr(err.msg, "id-a"));
    assert_int_equal(container_store_persist(s, a, false, &err), 0);

    container_store_t *loaded = container_store_new(db);
    assert_int_equal(container_store_load(loaded, NULL, &err), 0);
    container_t *got = NULL;
    assert_int_equal(container_store_get(loaded, "id-a", &got, &err), 0);
    assert_false(got->creating);
    assert_string_equal(got->log_path, a->log_path);
    container_unref(got);
    assert_int_equal(container_store_get(loaded, "id-b", &got, &err), -1);
    container_store_free(loaded);

    assert_int_equal(container_store_forget(s, a, &err), 0);
    assert_int_equal(container_store_forget(s, a, &err), 0);        /* missing is fine */
    assert_int_equal(container_store_persist(s, b, true, &err), 0); /* name is free again */
    container_store_free(s);
    store_close(db);
    rm_rf(dir, &err);
}

struct warnings {
    char text[2048];
    int n;
};

static void capture_warn(log_level_t level, const char *line, void *data)
{
    struct warnings *w = data;
    if (level != LOG_LEVEL_WARN)
        return;
    w->n++;
    size_t used = strlen(w->text);
    snprintf(w->text + used, sizeof(w->text) - used, "%s\n", line);
}

/* A record as the daemon before the shared object store wrote it loads
 * unchanged; a record that does not parse is skipped with a warning naming
 * it (it used to vanish silently). */
static void test_load_old_and_corrupt_records(void **state)
{
    static const char old[] =
        "{\"version\":1,\"id\":\"old1\",\"name\":\"k8s_old\",\"sandbox_id\":\"pod1\","
        "\"meta_name\":\"web\",\"attempt\":0,\"labels\":{\"app\":\"web\"},\"annotations\":{},"
        "\"image\":{\"name\":\"busybox\",\"user_specified\":\"busybox\",\"ref\":\"sha256:r\","
        "\"id\":\"sha256:i\"},\"chain_ids\":[\"sha256:l1\"],\"runtime\":\"runc\",\"log_path\":\"\","
        "\"created_at\":1,\"stop_signal\":15,\"tty\":false,\"stdin\":false,\"stdin_once\":false,"
        "\"mounts\":[],\"uid\":0,\"gid\":0,\"gids\":[],\"run\":{\"state\":2,\"pid\":0,"
        "\"started_at\":2,\"finished_at\":3,\"exit_code\":1,\"reason\":\"Error\",\"message\":\"\","
        "\"resources\":{\"cpu_period\":0,\"cpu_quota\":0,\"cpu_shares\":0,\"memory_limit\":0,"
        "\"memory_swap\":0,\"oom_score_adj\":0,\"cpuset_cpus\":\"\",\"cpuset_mems\":\"\"}},"
        "\"creating\":false}";
    static const char corrupt[] = "{\"version\":1,\"id\":\"bad1\"";
    char dir[] = "/tmp/cricket-ctr-old-XXXXXX";
    assert_non_null(mkdtemp(dir));
    store_t *db = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(store_open(dir, &db, &err), 0);
    assert_int_equal(store_put1(db, STORE_CONTAINERS, "old1", old, strlen(old), &err), 0);
    assert_int_equal(store_put1(db, STORE_CONTAINERS, "bad1", corrupt, strlen(corrupt), &err), 0);

    struct warnings w = {0};
    log_set_handler(capture_warn, &w);
    container_store_t *s = container_store_new(db);
    size_t skipped = 0;
    int rc = container_store_load(s, &skipped, &err);
    log_set_handler(NULL, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(skipped, 1);
    assert_int_equal(w.n, 1);
    assert_non_null(strstr(w.text, "load container record `bad1`: container record: line"));

    container_t *got = NULL;
    assert_int_equal(container_store_get(s, "old", &got, &err), 0);
    assert_string_equal(got->image_name, "busybox");
    assert_string_equal(container_label(got, "app"), "web");
    assert_string_equal(got->chain_ids[0], "sha256:l1");
    assert_int_equal(got->state, CONTAINER_STATE_EXITED);
    assert_string_equal(got->reason, "Error");
    assert_false(got->creating);
    assert_true(container_layer_in_use("sha256:l1", s));
    assert_false(container_layer_in_use("sha256:l2", s));
    container_unref(got);
    container_store_free(s);
    store_close(db);
    rm_rf(dir, &err);
}

static void test_signals(void **state)
{
    static const struct {
        const char *in;
        int want;
    } ok[] = {{"SIGTERM", SIGTERM}, {"TERM", SIGTERM},    {"sigquit", SIGQUIT},
              {"9", SIGKILL},       {"SIGUSR1", SIGUSR1}, {"SIGWINCH", SIGWINCH}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int got = 0;
        cri_error_t err = CRI_ERROR_INIT;
        assert_int_equal(container_signal_parse(ok[i].in, &got, &err), 0);
        assert_int_equal(got, ok[i].want);
    }
    static const char *const bad[] = {"", "SIGNOPE", "0", "-1", "9x", "99999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int got = 0;
        cri_error_t err = CRI_ERROR_INIT;
        assert_int_equal(container_signal_parse(bad[i], &got, &err), -1);
        assert_int_equal(err.status, EINVAL);
    }
    /* CRI enum numbers (api.proto Signal): SIGKILL = 13, SIGTERM = 23 */
    assert_int_equal(container_signal_from_cri(13), SIGKILL);
    assert_int_equal(container_signal_from_cri(23), SIGTERM);
    assert_int_equal(container_signal_to_cri(SIGTERM), 23);
    assert_int_equal(container_signal_to_cri(SIGQUIT), 18);
    assert_int_equal(container_signal_from_cri(0), 0);
    assert_int_equal(container_signal_from_cri(999), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_round_trip),
        cmocka_unit_test(test_record_parse_errors),
        cmocka_unit_test(test_store_lookup_and_refs),
        cmocka_unit_test(test_persist_reserve_forget_load),
        cmocka_unit_test(test_load_old_and_corrupt_records),
        cmocka_unit_test(test_signals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
