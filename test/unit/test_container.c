/* server/container/: argv merge, environment, users and groups. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/container/container-internal.h"
#include "server/container/container.h"
#include "server/process.h"
#include "server/rootfs.h"

#define V(...) ((char *const[]){__VA_ARGS__, NULL})

static void check_strv(char **got, const char *want)
{
    /* want: space-separated words */
    cleanup_free char *joined = xstrdup("");
    for (size_t i = 0; got[i]; i++) {
        char *next = xasprintf("%s%s%s", joined, i ? " " : "", got[i]);
        free(joined);
        joined = next;
    }
    assert_string_equal(joined, want);
}

static void test_argv_rules(void **state)
{
    const struct {
        char *const *command, *const *args, *const *ep, *const *cmd;
        size_t n_command, n_args;
        const char *want;
    } cases[] = {
        /* command replaces Entrypoint and Cmd */
        {V("/bin/sh", "-c"), V("echo hi"), V("/ep"), V("x"), 2, 1, "/bin/sh -c echo hi"},
        {V("/bin/true"), NULL, V("/ep"), V("x"), 1, 0, "/bin/true"},
        /* no command: Entrypoint + args, else Entrypoint + Cmd */
        {NULL, V("a", "b"), V("/ep", "-v"), V("x"), 0, 2, "/ep -v a b"},
        {NULL, NULL, V("/ep"), V("x", "y"), 0, 0, "/ep x y"},
        {NULL, NULL, NULL, V("httpd", "-f"), 0, 0, "httpd -f"},
        {NULL, V("sleep", "1"), NULL, V("x"), 0, 2, "sleep 1"},
        /* Entrypoint [""] is no entrypoint */
        {NULL, NULL, V(""), V("top"), 0, 0, "top"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char **argv = NULL;
        cri_error_t err = CRI_ERROR_INIT;
        assert_int_equal(process_argv(cases[i].command, cases[i].n_command, cases[i].args,
                                      cases[i].n_args, cases[i].ep, cases[i].cmd, &argv, &err),
                         0);
        check_strv(argv, cases[i].want);
        strv_free(argv);
    }
    char **argv = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(process_argv(NULL, 0, NULL, 0, V(""), NULL, &argv, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_non_null(strstr(err.msg, "no command"));
    assert_null(argv);
}

static void test_env_merge(void **state)
{
    const container_env_kv_t envs[] = {{"B", "config"}, {"C", "3"}, {"C", "4"}, {"EMPTY", ""}};
    char **env = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(container_env(V("A=1", "B=image", "BARE"), envs, 4, "pod-host", &env, &err),
                     0);
    check_strv(env, "A=1 B=config C=4 EMPTY= HOSTNAME=pod-host "
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    strv_free(env);

    /* the image's PATH and a HOSTNAME from config are kept */
    const container_env_kv_t h[] = {{"HOSTNAME", "mine"}};
    assert_int_equal(container_env(V("PATH=/x"), h, 1, "pod-host", &env, &err), 0);
    check_strv(env, "PATH=/x HOSTNAME=mine");
    strv_free(env);

    const container_env_kv_t bad[] = {{"A=B", "x"}};
    assert_int_equal(container_env(NULL, bad, 1, NULL, &env, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_non_null(strstr(err.msg, "config.envs[0].key"));
}

static char *rootfs;

static int make_rootfs(void **state)
{
    char tmpl[] = "/tmp/cricket-rootfs-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    rootfs = xstrdup(tmpl);
    cleanup_free char *etc = xasprintf("%s/etc", rootfs);
    assert_int_equal(mkdir(etc, 0755), 0);
    static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
                                 "www-data:x:33:33:www:/var/www:/bin/false\n"
                                 "# comment line\n"
                                 "broken line\n"
                                 "alice:x:1000:1000::/home/alice:/bin/sh\n";
    static const char group[] = "root:x:0:\n"
                                "www-data:x:33:\n"
                                "alice:x:1000:\n"
                                "video:x:44:alice,bob\n"
                                "grp:x:3000:\n"
                                "audio:x:29:bob\n"
                                "staff:x:50:alice\n";
    cri_error_t err = CRI_ERROR_INIT;
    cleanup_free char *p = xasprintf("%s/etc/passwd", rootfs);
    cleanup_free char *g = xasprintf("%s/etc/group", rootfs);
    assert_int_equal(write_file_atomic(p, passwd, strlen(passwd), 0644, &err), 0);
    assert_int_equal(write_file_atomic(g, group, strlen(group), 0644, &err), 0);
    return 0;
}

static int remove_rootfs(void **state)
{
    cri_error_t err = CRI_ERROR_INIT;
    rm_rf(rootfs, &err);
    free(rootfs);
    return 0;
}

static void test_user_resolution_table(void **state)
{
    static const int64_t supp[] = {1234, 50000, 44};
    /* groups: the primary gid first, then (Merge) the groups naming the
     * user in /etc/group, then supplemental_groups; Strict skips the
     * middle part (SupplementalGroupsPolicy) */
    static const struct {
        const char *image_user, *username;
        int64_t uid, gid;
        size_t n_supp;
        int status;
        uid_t want_uid;
        gid_t want_gid;
        const char *want_groups; /* space-separated */
        const char *want_msg;
        bool strict;
    } cases[] = {
        {"", NULL, -1, -1, 0, 0, 0, 0, "0", NULL, false},
        {"1000", NULL, -1, -1, 0, 0, 1000, 1000, "1000 44 50", NULL, false},
        {"www-data", NULL, -1, -1, 0, 0, 33, 33, "33", NULL, false},
        {"1003:grp", NULL, -1, -1, 0, 0, 1003, 3000, "3000", NULL, false},
        {"alice:29", NULL, -1, -1, 0, 0, 1000, 29, "29 44 50", NULL, false},
        {"nosuch", NULL, -1, -1, 0, ENOENT, 0, 0, NULL, "image user `nosuch`", false},
        {"alice:nogrp", NULL, -1, -1, 0, ENOENT, 0, 0, NULL, "group `nogrp`", false},
        /* the request wins over the image */
        {"www-data", "alice", -1, -1, 0, 0, 1000, 1000, "1000 44 50", NULL, false},
        {"www-data", NULL, 2000, -1, 0, 0, 2000, 0, "0", NULL, false},
        {"www-data", NULL, 1000, 3000, 3, 0, 1000, 3000, "3000 44 50 1234 50000", NULL, false},
        {"", "bob", -1, -1, 0, ENOENT, 0, 0, NULL, "run_as_username `bob`", false},
        {"", "4242", -1, -1, 0, ENOENT, 0, 0, NULL, "run_as_username `4242`", false},
        {"", NULL, -1, 3000, 0, EINVAL, 0, 0, NULL, "run_as_group", false},
        {"", NULL, 5000000000LL, -1, 0, EINVAL, 0, 0, NULL, "out of range", false},
        /* Strict: only the primary group and supplemental_groups */
        {"1000", NULL, -1, -1, 1, 0, 1000, 1000, "1000 1234", NULL, true},
        {"www-data", NULL, 1000, -1, 3, 0, 1000, 1000, "1000 1234 50000 44", NULL, true},
        {"alice", NULL, -1, -1, 0, 0, 1000, 1000, "1000", NULL, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        container_user_req_t req = {.run_as_user = cases[i].uid,
                                    .run_as_username = cases[i].username,
                                    .run_as_group = cases[i].gid,
                                    .supplemental = supp,
                                    .n_supplemental = cases[i].n_supp,
                                    .strict_groups = cases[i].strict,
                                    .image_user = cases[i].image_user};
        container_user_t u = {0};
        cri_error_t err = CRI_ERROR_INIT;
        int r = container_user_resolve(rootfs, &req, &u, &err);
        if (cases[i].status) {
            if (r != -1 || err.status != cases[i].status || !strstr(err.msg, cases[i].want_msg))
                fail_msg("case %zu: r=%d status=%d msg=%s", i, r, err.status, err.msg);
            continue;
        }
        if (r != 0)
            fail_msg("case %zu: %s", i, err.msg);
        assert_int_equal(u.uid, cases[i].want_uid);
        assert_int_equal(u.gid, cases[i].want_gid);
        cleanup_free char *groups = xstrdup("");
        for (size_t k = 0; k < u.n_additional; k++) {
            char *next = xasprintf("%s%s%u", groups, k ? " " : "", (unsigned)u.additional[k]);
            free(groups);
            groups = next;
        }
        if (strcmp(groups, cases[i].want_groups) != 0)
            fail_msg("case %zu: groups `%s`, want `%s`", i, groups, cases[i].want_groups);
        container_user_free(&u);
    }
}

static void test_passwd_symlink_cannot_escape(void **state)
{
    /* a passwd that points at the host's stays inside the rootfs */
    cleanup_free char *p = xasprintf("%s/etc/passwd", rootfs);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(symlink("../../../../../../etc/passwd", p), 0);
    container_user_req_t req = {.run_as_user = -1, .run_as_group = -1, .image_user = "root"};
    container_user_t u = {0};
    cri_error_t err = CRI_ERROR_INIT;
    /* it resolves to rootfs/etc/passwd itself: a loop, not the host file */
    assert_int_equal(container_user_resolve(rootfs, &req, &u, &err), -1);
    assert_true(err.status == ELOOP || err.status == ENOENT);

    assert_int_equal(unlink(p), 0);
    assert_int_equal(symlink("/../../host-secret", p), 0);
    assert_int_equal(container_user_resolve(rootfs, &req, &u, &err), -1);
    assert_int_equal(err.status, ENOENT); /* an empty passwd: `root` is unknown */
    assert_non_null(strstr(err.msg, "`root`"));
}

/* /etc/passwd or /etc/group that is no regular file, or too big, is refused
 * at once with EINVAL naming the file (a FIFO must never block the call). */
static void check_refused(const char *file, const char *want)
{
    container_user_req_t req = {.run_as_user = -1, .run_as_group = -1, .image_user = "root"};
    container_user_t u = {0};
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(container_user_resolve(rootfs, &req, &u, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_non_null(strstr(err.msg, file));
    assert_non_null(strstr(err.msg, want));
}

static void replace(const char *rel, char **ret_path)
{
    char *p = xasprintf("%s/%s", rootfs, rel);
    assert_int_equal(unlink(p), 0);
    *ret_path = p;
}

static void test_id_files_must_be_small_regular_files(void **state)
{
    cleanup_free char *p = NULL, *g = NULL;
    replace("etc/passwd", &p);
    assert_int_equal(mkfifo(p, 0644), 0); /* no writer: a blocking open hangs */
    check_refused("`/etc/passwd`", "not a regular file");

    assert_int_equal(unlink(p), 0);
    assert_int_equal(mkdir(p, 0755), 0);
    check_refused("`/etc/passwd`", "not a regular file");
    assert_int_equal(rmdir(p), 0);

    /* a link to the image's own /dev/null: a device, never opened */
    cleanup_free char *dev = xasprintf("%s/dev", rootfs);
    cleanup_free char *null = xasprintf("%s/dev/null", rootfs);
    assert_int_equal(mkdir(dev, 0755), 0);
    if (mknod(null, S_IFCHR | 0666, makedev(1, 3)) == 0) {
        assert_int_equal(symlink("/dev/null", p), 0);
        check_refused("`/etc/passwd`", "not a regular file");
        assert_int_equal(unlink(p), 0);
    }
    cri_error_t err = CRI_ERROR_INIT;
    static const char line[] = "root:x:0:0:root:/root:/bin/sh\n";
    assert_int_equal(write_file_atomic(p, line, strlen(line), 0644, &err), 0);

    /* a sparse /etc/group past the bound: refused without reading it */
    replace("etc/group", &g);
    int fd = open(g, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 64 << 20), 0);
    close(fd);
    check_refused("`/etc/group`", "larger than");
    assert_int_equal(truncate(g, 0), 0); /* empty is fine */
    container_user_req_t req = {.run_as_user = -1, .run_as_group = -1, .image_user = "root"};
    container_user_t u = {0};
    assert_int_equal(container_user_resolve(rootfs, &req, &u, &err), 0);
    assert_int_equal(u.uid, 0);
    container_user_free(&u);
}

/* ExecSync: stdout + stderr always fit the reply budget, each keeping its
 * start; a small stream is never cut for a big one. */
static void test_exec_fit_reply_table(void **state)
{
    static const struct {
        size_t out, err, want_out, want_err;
    } cases[] = {
        {0, 0, 0, 0},       {10, 20, 10, 20}, {50, 50, 50, 50}, /* exactly the budget */
        {120, 120, 50, 50},                                     /* both big: half each */
        {80, 30, 70, 30},                                       /* stderr small: kept whole */
        {10, 200, 10, 90},                                      /* stdout small: kept whole */
        {100, 0, 100, 0},                                       /* a lone stream may use it all */
        {0, 101, 0, 100},   {51, 50, 50, 50},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t out = cases[i].out, err = cases[i].err;
        container_exec_fit_reply(100, &out, &err);
        assert_int_equal(out, cases[i].want_out);
        assert_int_equal(err, cases[i].want_err);
        assert_true(out + err <= 100);
    }
}

static bool mounted(const char *target)
{
    cleanup_free char *info = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    if (read_file("/proc/self/mountinfo", 1 << 22, &info, NULL, &err) < 0)
        return false;
    cleanup_free char *needle = xasprintf(" %s ", target);
    return strstr(info, needle) != NULL;
}

static void check_overlay(size_t n_layers)
{
    if (geteuid() != 0)
        skip();
    char tmpl[] = "/tmp/cricket-overlay-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    cri_error_t err = CRI_ERROR_INIT;
    char **dirs = xcalloc(n_layers + 1, sizeof(char *));
    for (size_t i = 0; i < n_layers; i++) {
        /* chain-id-long names, so 150 of them overflow one page */
        dirs[i] = xasprintf("%s/layers/%064zx", tmpl, i);
        assert_int_equal(mkdir_p(dirs[i], 0755, &err), 0);
        cleanup_free char *own = xasprintf("%s/layer-%zu", dirs[i], i);
        cleanup_free char *who = xasprintf("%s/who", dirs[i]);
        cleanup_free char *text = xasprintf("%zu", i);
        assert_int_equal(write_file_atomic(own, "x", 1, 0644, &err), 0);
        assert_int_equal(write_file_atomic(who, text, strlen(text), 0644, &err), 0);
    }
    cleanup_free char *upper = xasprintf("%s/c/upper", tmpl);
    cleanup_free char *work = xasprintf("%s/c/work", tmpl);
    cleanup_free char *target = xasprintf("%s/c/rootfs", tmpl);
    cleanup_free char *empty = xasprintf("%s/empty", tmpl);
    int r = rootfs_mount(dirs, n_layers, empty, upper, work, target, &err);
    if (r < 0)
        fail_msg("mount: %s", err.msg);
    assert_true(mounted(target));
    if (n_layers > 0) {
        /* the lowest and the top layer are both there; the top one wins */
        cleanup_free char *first = xasprintf("%s/layer-0", target);
        cleanup_free char *last = xasprintf("%s/layer-%zu", target, n_layers - 1);
        assert_int_equal(access(first, F_OK), 0);
        assert_int_equal(access(last, F_OK), 0);
        cleanup_free char *who = xasprintf("%s/who", target);
        cleanup_free char *got = NULL;
        assert_int_equal(read_file(who, 64, &got, NULL, &err), 0);
        cleanup_free char *want = xasprintf("%zu", n_layers - 1);
        assert_string_equal(got, want);
    }
    /* writes land in the upper dir only */
    cleanup_free char *fresh = xasprintf("%s/fresh", target);
    cleanup_free char *in_upper = xasprintf("%s/fresh", upper);
    assert_int_equal(write_file_atomic(fresh, "y", 1, 0644, &err), 0);
    assert_int_equal(access(in_upper, F_OK), 0);
    assert_int_equal(rootfs_unmount(target, &err), 0);
    assert_false(mounted(target));
    assert_int_equal(rootfs_unmount(target, &err), 0); /* again: fine */
    strv_free(dirs);
    assert_int_equal(rm_rf(tmpl, &err), 0);
}

static void test_overlay_few_layers(void **state)
{
    check_overlay(3);
}

static void test_overlay_150_layers_past_the_page_limit(void **state)
{
    check_overlay(150);
}

static void test_overlay_no_layers(void **state)
{
    check_overlay(0);
}

/* A stop signal is dropped only for a pid namespace's init that has the
 * signal at SIG_DFL; a handler, SIG_IGN or a non-init pid delivers it. */
static void test_sig_fate_parse(void **state)
{
    (void)state;
    const char *init_dfl = "Name:\ttop\nNSpid:\t4242\t1\nSigIgn:\t0000000000000000\n"
                           "SigCgt:\t0000000000000000\n";
    const char *init_cgt = "NSpid:\t4242 1\nSigIgn:\t0000000000000000\nSigCgt:\t0000000000004000\n";
    const char *init_ign =
        "NSpid:\t4242\t1\nSigIgn:\t0000000000004000\nSigCgt:\t0000000000000000\n";
    const char *not_init =
        "NSpid:\t4242\t7\nSigIgn:\t0000000000000000\nSigCgt:\t0000000000000000\n";
    const char *init_11 = "NSpid:\t4242\t11\nSigIgn:\t0\nSigCgt:\t0\n";
    const char *host_init = "NSpid:\t1\nSigIgn:\t0\nSigCgt:\t0\n";
    assert_int_equal(container_sig_fate_parse(init_dfl, SIGTERM), CONTAINER_SIG_DROPPED);
    assert_int_equal(container_sig_fate_parse(init_cgt, SIGTERM), CONTAINER_SIG_DELIVERED);
    /* bit 14 is SIGTERM (15); SIGINT (2) is still at SIG_DFL */
    assert_int_equal(container_sig_fate_parse(init_cgt, SIGINT), CONTAINER_SIG_DROPPED);
    assert_int_equal(container_sig_fate_parse(init_ign, SIGTERM), CONTAINER_SIG_DELIVERED);
    assert_int_equal(container_sig_fate_parse(not_init, SIGTERM), CONTAINER_SIG_DELIVERED);
    assert_int_equal(container_sig_fate_parse(init_11, SIGTERM), CONTAINER_SIG_DELIVERED);
    assert_int_equal(container_sig_fate_parse(host_init, SIGTERM), CONTAINER_SIG_DROPPED);
    assert_int_equal(container_sig_fate_parse("Name:\tx\n", SIGTERM), CONTAINER_SIG_UNKNOWN);
    /* a live process of this test: not a namespace init here */
    assert_int_equal(container_sig_fate(getpid(), SIGTERM), CONTAINER_SIG_DELIVERED);
    assert_int_equal(container_sig_fate(0, SIGTERM), CONTAINER_SIG_UNKNOWN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sig_fate_parse),
        cmocka_unit_test(test_argv_rules),
        cmocka_unit_test(test_env_merge),
        cmocka_unit_test(test_exec_fit_reply_table),
        cmocka_unit_test(test_overlay_few_layers),
        cmocka_unit_test(test_overlay_150_layers_past_the_page_limit),
        cmocka_unit_test(test_overlay_no_layers),
        cmocka_unit_test_setup_teardown(test_user_resolution_table, make_rootfs, remove_rootfs),
        cmocka_unit_test_setup_teardown(test_passwd_symlink_cannot_escape, make_rootfs,
                                        remove_rootfs),
        cmocka_unit_test_setup_teardown(test_id_files_must_be_small_regular_files, make_rootfs,
                                        remove_rootfs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
