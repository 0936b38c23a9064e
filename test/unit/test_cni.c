/* cni/: config loading, result parsing, and plugin invocation against fake
 * plugins (shell scripts that record what they were given). Real plugins
 * run in test/e2e/test_cni.py. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cni/cni.h"
#include "common/cleanup.h"
#include "common/util.h"

/* ---- loading ---- */

static void test_network_parse_table(void **state)
{
    static const struct {
        const char *json;
        int status;
        const char *name;
        const char *want_msg;
    } cases[] = {
        {"{\"cniVersion\":\"1.0.0\",\"name\":\"n1\",\"plugins\":[{\"type\":\"bridge\"}]}", 0, "n1",
         NULL},
        {"{\"cniVersion\":\"0.4.0\",\"name\":\"single\",\"type\":\"ptp\"}", 0, "single", NULL},
        {"{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[]}", EINVAL, NULL, "empty"},
        {"{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"x\":1}]}", EINVAL, NULL,
         "plugin 0"},
        {"{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"../evil\"}]}", EINVAL,
         NULL, "plugin 0"},
        {"{\"cniVersion\":\"1.0.0\",\"plugins\":[{\"type\":\"bridge\"}]}", EINVAL, NULL, "name"},
        {"{\"cniVersion\":\"1.0.0\",\"name\":\"a/b\",\"type\":\"bridge\"}", EINVAL, NULL, "name"},
        {"{\"name\":\"n\",\"type\":\"bridge\"}", EINVAL, NULL, "cniVersion"},
        {"[1,2]", EINVAL, NULL, "not a JSON object"},
        {"{\"name\": ", EINVAL, NULL, "line 1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cri_error_t err = CRI_ERROR_INIT;
        cni_network_t *net = NULL;
        int r = cni_network_parse(cases[i].json, "t.conflist", &net, &err);
        if (cases[i].status == 0) {
            assert_int_equal(r, 0);
            assert_string_equal(cni_network_name(net), cases[i].name);
            cni_network_free(net);
        } else {
            if (r != -1)
                fail_msg("case %zu parsed", i);
            assert_int_equal(err.status, cases[i].status);
            if (!strstr(err.msg, cases[i].want_msg))
                fail_msg("case %zu: %s", i, err.msg);
            assert_non_null(strstr(err.msg, "t.conflist"));
            assert_non_null(strstr(err.msg, cases[i].want_msg));
            assert_null(net);
        }
    }
}

static void test_result_parse_versions(void **state)
{
    static const struct {
        const char *json;
        const char *ips[3];
    } cases[] = {
        {"{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"fd00::5/64\"},"
         "{\"address\":\"10.1.0.5/24\",\"gateway\":\"10.1.0.1\"}]}",
         {"10.1.0.5", "fd00::5", NULL}},
        {"{\"cniVersion\":\"0.4.0\",\"ips\":[{\"version\":\"4\",\"address\":\"10.2.0.9/16\"}]}",
         {"10.2.0.9", NULL, NULL}},
        {"{\"cniVersion\":\"0.3.1\",\"interfaces\":[],\"ips\":[]}", {NULL, NULL, NULL}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cri_error_t err = CRI_ERROR_INIT;
        cni_result_t *res = NULL;
        assert_int_equal(cni_result_parse(cases[i].json, &res, &err), 0);
        size_t k = 0;
        for (; cases[i].ips[k]; k++)
            assert_string_equal(res->ips[k], cases[i].ips[k]);
        assert_null(res->ips[k]);
        cni_result_free(res);
    }
    static const char *const bad[] = {"nope", "{\"ips\":[{\"address\":\"10.0.0.1\"}]}",
                                      "{\"ips\":[{\"address\":\"x/24\"}]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cri_error_t err = CRI_ERROR_INIT;
        cni_result_t *res = NULL;
        assert_int_equal(cni_result_parse(bad[i], &res, &err), -1);
        assert_int_equal(err.status, EINVAL);
    }
}

/* ---- invocation with fake plugins ---- */

typedef struct fixture {
    char *dir, *plugins, *cache, *log;
    char *dirs[2];
    cni_opts_t opts;
    cni_network_t *net;
    cni_attachment_t att;
    cni_port_mapping_t port;
    cni_bandwidth_t bw;
} fixture_t;

/* A plugin that logs "<type> <CNI_COMMAND>" and its env/stdin, then
 * answers as the script body says. */
static void write_plugin(fixture_t *f, const char *type, const char *body)
{
    cleanup_free char *path = xasprintf("%s/%s", f->plugins, type);
    cleanup_free char *text = xasprintf("#!/bin/sh\n"
                                        "in=$(cat)\n"
                                        "echo \"%s $CNI_COMMAND\" >> %s\n"
                                        "printf '%%s\\n' \"$in\" > %s/%s.$CNI_COMMAND.stdin\n"
                                        "env | grep ^CNI_ | sort > %s/%s.$CNI_COMMAND.env\n"
                                        "%s\n",
                                        type, f->log, f->dir, type, f->dir, type, body);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(write_file_atomic(path, text, strlen(text), 0755, &err), 0);
}

#define RESULT_A "echo '{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.9.0.7/24\"}]}'"

static const char *const conflist =
    "{\"cniVersion\":\"1.0.0\",\"name\":\"fake\",\"plugins\":["
    "{\"type\":\"alpha\",\"opt\":1},"
    "{\"type\":\"beta\",\"capabilities\":{\"portMappings\":true,\"bandwidth\":false}}]}";

static void attach_init(cni_attachment_t *att, cni_port_mapping_t *port, cni_bandwidth_t *bw)
{
    static const char *const args[] = {"K8S_POD_NAME=web", "K8S_POD_NAMESPACE=default", NULL};
    *port = (cni_port_mapping_t){.host_port = 8080, .container_port = 80, .protocol = "tcp"};
    *bw = (cni_bandwidth_t){.ingress_rate = 1000};
    *att = (cni_attachment_t){.container_id = "abc123",
                              .netns = "/run/netns/x",
                              .args = args,
                              .ports = port,
                              .n_ports = 1,
                              .bandwidth = bw};
}

static int setup(void **state)
{
    fixture_t *f = xcalloc(1, sizeof(*f));
    char tmpl[] = "/tmp/cricket-cni-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    f->dir = xstrdup(tmpl);
    f->plugins = xasprintf("%s/bin", f->dir);
    f->cache = xasprintf("%s/cache", f->dir);
    f->log = xasprintf("%s/calls", f->dir);
    assert_int_equal(mkdir(f->plugins, 0755), 0);
    signal(SIGPIPE, SIG_IGN);
    f->dirs[0] = f->plugins;
    f->opts = (cni_opts_t){.plugin_dirs = f->dirs, .cache_dir = f->cache, .timeout_ms = 10000};
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(cni_network_parse(conflist, "fake", &f->net, &err), 0);
    attach_init(&f->att, &f->port, &f->bw);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;
    rm_rf(f->dir, &err);
    cni_network_free(f->net);
    free(f->dir);
    free(f->plugins);
    free(f->cache);
    free(f->log);
    free(f);
    return 0;
}

static char *slurp(const char *dir, const char *name)
{
    cleanup_free char *path = xasprintf("%s/%s", dir, name);
    char *data = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    if (read_file(path, 1 << 20, &data, NULL, &err) < 0)
        return xstrdup("");
    return data;
}

static void test_add_chains_and_del_reverses_with_cache(void **state)
{
    fixture_t *f = *state;
    write_plugin(f, "alpha", RESULT_A);
    write_plugin(f, "beta", RESULT_A);
    cri_error_t err = CRI_ERROR_INIT;
    cni_opts_t opts = f->opts;
    cni_network_t *net = f->net;
    cni_attachment_t att = f->att;

    cni_result_t *res = NULL;
    assert_int_equal(cni_add(&opts, net, &att, &res, &err), 0);
    assert_string_equal(res->ips[0], "10.9.0.7");
    cni_result_free(res);

    cleanup_free char *calls = slurp(f->dir, "calls");
    assert_string_equal(calls, "alpha ADD\nbeta ADD\n");
    cleanup_free char *env = slurp(f->dir, "alpha.ADD.env");
    assert_non_null(strstr(env, "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=web;"
                                "K8S_POD_NAMESPACE=default\n"));
    assert_non_null(strstr(env, "CNI_CONTAINERID=abc123\n"));
    assert_non_null(strstr(env, "CNI_IFNAME=eth0\n"));
    assert_non_null(strstr(env, "CNI_NETNS=/run/netns/x\n"));
    cleanup_free char *cni_path = xasprintf("CNI_PATH=%s\n", f->plugins);
    assert_non_null(strstr(env, cni_path));

    /* alpha declares no capabilities: no runtimeConfig, no prevResult */
    cleanup_free char *atext = slurp(f->dir, "alpha.ADD.stdin");
    json_t *a = json_loads(atext, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(a);
    assert_null(json_object_get(a, "runtimeConfig"));
    assert_null(json_object_get(a, "prevResult"));
    assert_string_equal(json_string_value(json_object_get(a, "name")), "fake");
    assert_int_equal(json_integer_value(json_object_get(a, "opt")), 1);
    json_decref(a);
    /* beta gets alpha's result and only the capability it declares true */
    cleanup_free char *btext = slurp(f->dir, "beta.ADD.stdin");
    json_t *b = json_loads(btext, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(json_object_get(b, "prevResult"));
    json_t *rc = json_object_get(b, "runtimeConfig");
    assert_int_equal(json_object_size(rc), 1);
    json_t *pm = json_array_get(json_object_get(rc, "portMappings"), 0);
    assert_int_equal(json_integer_value(json_object_get(pm, "hostPort")), 8080);
    json_decref(b);

    /* DEL from the cache even with no config at hand: reverse order,
     * prevResult = the cached result */
    assert_int_equal(cni_del(&opts, "fake", NULL, &att, &err), 0);
    cleanup_free char *calls2 = slurp(f->dir, "calls");
    assert_string_equal(calls2, "alpha ADD\nbeta ADD\nbeta DEL\nalpha DEL\n");
    cleanup_free char *adel = slurp(f->dir, "alpha.DEL.stdin");
    assert_non_null(strstr(adel, "10.9.0.7/24"));
    /* the cache entry is gone: a second DEL has nothing to do */
    assert_int_equal(cni_del(&opts, "fake", NULL, &att, &err), 0);
    cleanup_free char *calls3 = slurp(f->dir, "calls");
    assert_string_equal(calls3, calls2);
}

static void test_failed_add_reports_plugin_error_and_cleans_up(void **state)
{
    fixture_t *f = *state;
    write_plugin(f, "alpha", RESULT_A);
    write_plugin(f, "beta",
                 "[ \"$CNI_COMMAND\" = DEL ] && exit 0; "
                 "echo '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"no more "
                 "addresses\",\"details\":\"range full\"}'; exit 1");
    cri_error_t err = CRI_ERROR_INIT;
    cni_opts_t opts = f->opts;
    cni_network_t *net = f->net;
    cni_attachment_t att = f->att;
    cni_result_t *res = NULL;
    assert_int_equal(cni_add(&opts, net, &att, &res, &err), -1);
    assert_null(res);
    assert_non_null(strstr(err.msg, "plugin `beta` ADD: no more addresses: range full (code 11)"));
    assert_non_null(strstr(err.msg, "network `fake` ADD"));
    cleanup_free char *calls = slurp(f->dir, "calls");
    assert_string_equal(calls, "alpha ADD\nbeta ADD\nbeta DEL\nalpha DEL\n");
    /* nothing cached */
    cleanup_free char *cache = xasprintf("%s/fake-abc123-eth0.json", f->cache);
    assert_int_equal(access(cache, F_OK), -1);
}

/* The cache entry exists before the first plugin runs (a daemon killed
 * during ADD still owes a DEL with that exact config), and a failed ADD
 * whose undo fails too keeps it: the later DEL, with no config at hand,
 * still reaches every plugin. The plugins carry the daemon's marker.
 * Leftover temp files of a half-written entry are swept. (issue 11) */
static void test_add_caches_config_before_plugins_run(void **state)
{
    fixture_t *f = *state;
    cleanup_free char *cache = xasprintf("%s/fake-abc123-eth0.json", f->cache);
    cleanup_free char *body =
        xasprintf("[ \"$CNI_COMMAND\" = DEL ] && exit 1; "
                  "[ -s %s ] || exit 1; echo \"$CRICKET_CNI_OWNER\" > %s/owner; "
                  "exit 2",
                  cache, f->dir);
    write_plugin(f, "alpha", body);
    write_plugin(f, "beta", "exit 1");
    cri_error_t err = CRI_ERROR_INIT;
    cni_opts_t opts = f->opts;
    opts.marker_env = "CRICKET_CNI_OWNER=/some/root";
    cni_attachment_t att = f->att;
    cni_result_t *res = NULL;
    assert_int_equal(cni_add(&opts, f->net, &att, &res, &err), -1);
    assert_non_null(strstr(err.msg, "plugin `alpha` ADD failed (exit status 2)"));
    cleanup_free char *owner = slurp(f->dir, "owner");
    assert_string_equal(owner, "/some/root\n");
    assert_int_equal(access(cache, F_OK), 0);
    /* a DEL that fails with a cache entry names the network (valgrind:
     * the name was read from the freed cached config) and keeps the entry */
    cri_error_t derr = CRI_ERROR_INIT;
    assert_int_equal(cni_del(&opts, "fake", NULL, &att, &derr), -1);
    assert_non_null(strstr(derr.msg, "network `fake` DEL"));
    assert_int_equal(access(cache, F_OK), 0);
    write_plugin(f, "alpha", "exit 0");
    write_plugin(f, "beta", "exit 0");
    cleanup_free char *log = xasprintf("%s/calls", f->dir);
    unlink(log);
    assert_int_equal(cni_del(&opts, "fake", NULL, &att, &err), 0);
    cleanup_free char *calls = slurp(f->dir, "calls");
    assert_string_equal(calls, "beta DEL\nalpha DEL\n");
    assert_int_equal(access(cache, F_OK), -1);

    cleanup_free char *tmp = xasprintf("%s/fake-x-eth0.json.tmp.AbCdEf", f->cache);
    assert_int_equal(write_file_atomic(tmp, "{", 1, 0600, &err), 0);
    assert_int_equal(cni_cache_sweep(&opts, &err), 0);
    assert_int_equal(access(tmp, F_OK), -1);
}

static void test_hung_plugin_times_out_and_missing_plugin(void **state)
{
    fixture_t *f = *state;
    write_plugin(f, "alpha", "[ \"$CNI_COMMAND\" = DEL ] && exit 0; exec sleep 30");
    cri_error_t err = CRI_ERROR_INIT;
    cni_opts_t opts = f->opts;
    cni_network_t *net = f->net;
    cni_attachment_t att = f->att;
    opts.timeout_ms = 300;
    cni_result_t *res = NULL;
    assert_int_equal(cni_add(&opts, net, &att, &res, &err), -1);
    assert_int_equal(err.status, ETIMEDOUT);
    assert_non_null(strstr(err.msg, "timed out"));

    /* beta does not exist at all */
    write_plugin(f, "alpha", RESULT_A);
    cri_error_clear(&err);
    assert_int_equal(cni_add(&opts, net, &att, &res, &err), -1);
    assert_int_equal(err.status, ENOENT);
    assert_non_null(strstr(err.msg, "plugin `beta` not found"));
}

static void test_check_uses_cached_result(void **state)
{
    fixture_t *f = *state;
    write_plugin(f, "alpha", "[ \"$CNI_COMMAND\" = ADD ] && " RESULT_A "; exit 0");
    write_plugin(f, "beta", "[ \"$CNI_COMMAND\" = ADD ] && " RESULT_A "; exit 0");
    cri_error_t err = CRI_ERROR_INIT;
    cni_opts_t opts = f->opts;
    cni_network_t *net = f->net;
    cni_attachment_t att = f->att;
    assert_int_equal(cni_check(&opts, net, &att, &err), -1);
    assert_int_equal(err.status, ENOENT); /* no ADD yet */
    cni_result_t *res = NULL;
    assert_int_equal(cni_add(&opts, net, &att, &res, &err), 0);
    cni_result_free(res);
    assert_int_equal(cni_check(&opts, net, &att, &err), 0);
    cleanup_free char *chk = slurp(f->dir, "beta.CHECK.stdin");
    assert_non_null(strstr(chk, "\"prevResult\""));
    assert_int_equal(cni_del(&opts, NULL, net, &att, &err), 0);
}

static void test_find_config_order_and_name(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;
    static const struct {
        const char *file, *text;
    } files[] = {
        {"00-broken.conflist", "{"},
        {"10-b.conf", "{\"cniVersion\":\"0.4.0\",\"name\":\"bnet\",\"type\":\"bridge\"}"},
        {"20-a.conflist", "{\"cniVersion\":\"1.0.0\",\"name\":\"anet\",\"plugins\":[{\"type\":"
                          "\"ptp\"}]}"},
        {"05-skip.txt", "{\"cniVersion\":\"1.0.0\",\"name\":\"txt\",\"type\":\"ptp\"}"},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        cleanup_free char *p = xasprintf("%s/%s", f->dir, files[i].file);
        assert_int_equal(write_file_atomic(p, files[i].text, strlen(files[i].text), 0644, &err), 0);
    }
    cleanup_free char *path = NULL, *name = NULL;
    assert_int_equal(cni_find_config(f->dir, "", &path, &name, &err), 0);
    assert_string_equal(name, "bnet");
    cleanup_free char *path2 = NULL, *name2 = NULL;
    assert_int_equal(cni_find_config(f->dir, "anet", &path2, &name2, &err), 0);
    assert_non_null(strstr(path2, "20-a.conflist"));
    cleanup_free char *path3 = NULL;
    assert_int_equal(cni_find_config(f->dir, "none", &path3, NULL, &err), -1);
    assert_int_equal(err.status, ENOENT);
}

static void test_watch_sees_changes_at_once(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;
    cleanup_free char *dir = xasprintf("%s/net.d", f->dir); /* made by the watch */
    cni_watch_t *w = NULL;
    assert_int_equal(cni_watch_start(dir, "", &w, &err), 0);
    char *path = NULL;
    assert_int_equal(cni_watch_current(w, &path, NULL, &err), -1);
    assert_int_equal(err.status, ENOENT);

    /* no sleep: the event is queued before write_file_atomic returns */
    static const char *const b = "{\"cniVersion\":\"1.0.0\",\"name\":\"b\",\"type\":\"ptp\"}";
    static const char *const a = "{\"cniVersion\":\"1.0.0\",\"name\":\"a\",\"type\":\"ptp\"}";
    cleanup_free char *pb = xasprintf("%s/20-b.conf", dir);
    cleanup_free char *pa = xasprintf("%s/10-a.conf", dir);
    assert_int_equal(write_file_atomic(pb, b, strlen(b), 0644, &err), 0);
    char *name = NULL;
    assert_int_equal(cni_watch_current(w, &path, &name, &err), 0);
    assert_string_equal(path, pb);
    assert_string_equal(name, "b");
    free(path);
    free(name);
    assert_int_equal(write_file_atomic(pa, a, strlen(a), 0644, &err), 0);
    assert_int_equal(cni_watch_current(w, &path, NULL, &err), 0);
    assert_string_equal(path, pa); /* lexical order picks the new one */
    free(path);
    /* a config broken in place, then removed */
    assert_int_equal(write_file_atomic(pa, "{", 1, 0644, &err), 0);
    assert_int_equal(cni_watch_current(w, &path, NULL, &err), 0);
    assert_string_equal(path, pb);
    free(path);
    assert_int_equal(unlink(pa), 0);
    assert_int_equal(unlink(pb), 0);
    assert_int_equal(cni_watch_current(w, &path, NULL, &err), -1);
    assert_int_equal(err.status, ENOENT);
    cni_watch_stop(w);
    cni_watch_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_network_parse_table),
        cmocka_unit_test(test_result_parse_versions),
        cmocka_unit_test_setup_teardown(test_add_chains_and_del_reverses_with_cache, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_add_reports_plugin_error_and_cleans_up, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_add_caches_config_before_plugins_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hung_plugin_times_out_and_missing_plugin, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_check_uses_cached_result, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_config_order_and_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_sees_changes_at_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
