/* common/: tree removal through directory fds (rmtree.c), directory modes
 * (mkdir_private) and durable renames (fsync_parent); server/trash.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/util.h"
#include "server/rootfs.h"
#include "server/trash.h"

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/cricket-unit-fs-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return xstrdup(tmpl);
}

/* A pod's mapped root must walk to root: the first dir without o+x is
 * named. */
static void test_path_walkable(void **state)
{
    cleanup_free char *dir = make_tmpdir(); /* mkdtemp: 0700 */
    cleanup_free char *sub = xasprintf("%s/a/b", dir);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(mkdir_p(sub, 0711, &err), 0);
    char *blocker = NULL;
    assert_false(rootfs_path_walkable(sub, &blocker));
    assert_string_equal(blocker, dir);
    free(blocker);
    blocker = NULL;
    assert_int_equal(chmod(dir, 0711), 0);
    assert_true(rootfs_path_walkable(sub, &blocker));
    assert_null(blocker);
    cleanup_free char *a = xasprintf("%s/a", dir);
    assert_int_equal(chmod(a, 0700), 0);
    assert_false(rootfs_path_walkable(sub, &blocker));
    assert_string_equal(blocker, a);
    free(blocker);
    blocker = NULL;
    assert_false(rootfs_path_walkable("/nonexistent-cricket-dir", &blocker));
    free(blocker);
    assert_int_equal(rm_rf(dir, &err), 0);
}

static void touch_at(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
}

/* depth levels of a 100-char name below dir, with a file at each level:
 * the deepest path is far longer than PATH_MAX. */
static void make_deep_tree(const char *dir, int depth)
{
    char name[101];
    memset(name, 'd', 100);
    name[100] = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    for (int i = 0; i < depth; i++) {
        touch_at(fd, "f");
        assert_int_equal(mkdirat(fd, name, 0755), 0);
        int nfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(nfd >= 0);
        close(fd);
        fd = nfd;
    }
    touch_at(fd, "leaf");
    close(fd);
}

static void test_rm_rf_beyond_path_max_with_few_fds(void **state)
{
    cleanup_free char *dir = make_tmpdir();
    make_deep_tree(dir, 120); /* ~12 KB of path */
    /* with 16 fds a walk holding one fd per level would fail */
    struct rlimit old, low = {.rlim_cur = 16, .rlim_max = 0};
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low.rlim_max = old.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    cri_error_t err = CRI_ERROR_INIT;
    int rc = rm_rf(dir, &err);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(access(dir, F_OK), -1);
    assert_int_equal(errno, ENOENT);
}

static void test_rm_rf_never_follows_symlinks(void **state)
{
    cleanup_free char *dir = make_tmpdir();
    cleanup_free char *outside = make_tmpdir();
    cleanup_free char *victim = xasprintf("%s/victim", outside);
    cleanup_free char *tree = xasprintf("%s/tree", dir);
    cleanup_free char *sub = xasprintf("%s/tree/sub", dir);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(mkdir_p(sub, 0755, &err), 0);
    assert_int_equal(write_file_atomic(victim, "keep", 4, 0644, &err), 0);
    cleanup_free char *l1 = xasprintf("%s/to-dir", sub);
    cleanup_free char *l2 = xasprintf("%s/to-file", sub);
    assert_int_equal(symlink(outside, l1), 0);
    assert_int_equal(symlink(victim, l2), 0);
    cleanup_free char *locked = xasprintf("%s/locked", sub); /* mode 000, full */
    assert_int_equal(mkdir(locked, 0755), 0);
    cleanup_free char *inner = xasprintf("%s/locked/file", sub);
    assert_int_equal(write_file_atomic(inner, "x", 1, 0600, &err), 0);
    assert_int_equal(chmod(locked, 0), 0);

    assert_int_equal(rm_rf(tree, &err), 0);
    assert_int_equal(access(tree, F_OK), -1);
    cleanup_free char *data = NULL;
    assert_int_equal(read_file(victim, 100, &data, NULL, &err), 0);
    assert_string_equal(data, "keep");
    /* a symlink given as the top is removed, not followed */
    cleanup_free char *top_link = xasprintf("%s/top-link", dir);
    assert_int_equal(symlink(outside, top_link), 0);
    assert_int_equal(rm_rf(top_link, &err), 0);
    assert_int_equal(access(victim, F_OK), 0);
    assert_int_equal(rm_rf(outside, &err), 0);
    assert_int_equal(rm_rf(dir, &err), 0);
    assert_int_equal(rm_rf(dir, &err), 0); /* missing: fine */
}

static void test_rm_rf_leaves_mounts_alone(void **state)
{
    cleanup_free char *dir = make_tmpdir();
    cleanup_free char *src = make_tmpdir();
    cleanup_free char *keep = xasprintf("%s/keep", src);
    cleanup_free char *mnt = xasprintf("%s/a/mnt", dir);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(write_file_atomic(keep, "k", 1, 0644, &err), 0);
    assert_int_equal(mkdir_p(mnt, 0755, &err), 0);
    if (mount(src, mnt, "none", MS_BIND, NULL) < 0) { /* same file system: st_dev alike */
        rm_rf(dir, &err);
        rm_rf(src, &err);
        skip();
    }
    int rc = rm_rf(dir, &err);
    assert_int_equal(access(keep, F_OK), 0); /* nothing removed through the mount */
    assert_int_equal(umount2(mnt, MNT_DETACH), 0);
    assert_int_equal(rc, -1);
    assert_int_equal(err.status, EBUSY);
    cri_error_t err2 = CRI_ERROR_INIT;
    assert_int_equal(rm_rf(dir, &err2), 0);
    assert_int_equal(rm_rf(src, &err2), 0);
}

static void test_mkdir_private_tightens(void **state)
{
    cleanup_free char *dir = make_tmpdir();
    cleanup_free char *sub = xasprintf("%s/sub", dir);
    cri_error_t err = CRI_ERROR_INIT;
    mode_t old = 0;
    assert_int_equal(mkdir_private(sub, 0700, &old, &err), 0); /* new */
    struct stat st;
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(chmod(sub, 0755), 0);
    assert_int_equal(mkdir_private(sub, 0711, &old, &err), 0); /* existing, loose */
    assert_int_equal(old, 0755);
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0711);
    assert_int_equal(chmod(sub, 0700), 0);
    assert_int_equal(mkdir_private(sub, 0711, &old, &err), 0); /* tighter stays */
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    cleanup_free char *file = xasprintf("%s/file", dir);
    assert_int_equal(write_file_atomic(file, "", 0, 0644, &err), 0);
    assert_int_equal(mkdir_private(file, 0700, NULL, &err), -1);
    assert_int_equal(err.status, ENOTDIR);
    cleanup_free char *link = xasprintf("%s/link", dir);
    assert_int_equal(symlink(sub, link), 0);
    cri_error_t err2 = CRI_ERROR_INIT;
    assert_int_equal(mkdir_private(link, 0700, NULL, &err2), -1); /* never chmods through it */
    assert_int_equal(rm_rf(dir, &err2), 0);
}

static void test_fsync_parent(void **state)
{
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(fsync_parent("/tmp/anything", &err), 0);
    assert_int_equal(fsync_parent("relative-name", &err), 0);
    assert_int_equal(fsync_parent("/", &err), 0);
    assert_int_equal(fsync_parent("/nonexistent-cricket-dir/x", &err), -1);
    assert_int_equal(err.status, ENOENT);
}

/* rm_rf_stoppable gives up once stop is set, leaving the rest. */
static void test_rm_rf_stoppable_gives_up(void **state)
{
    cleanup_free char *dir = make_tmpdir();
    make_deep_tree(dir, 5);
    atomic_bool stop;
    atomic_init(&stop, true);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(rm_rf_stoppable(dir, &stop, &err), -1);
    assert_int_equal(err.status, ECANCELED);
    assert_int_equal(access(dir, F_OK), 0);
    cri_error_clear(&err);
    atomic_store(&stop, false);
    assert_int_equal(rm_rf_stoppable(dir, &stop, &err), 0);
    assert_int_equal(access(dir, F_OK), -1);
}

static bool empty_within(const char *dir, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        cleanup_dir DIR *d = opendir(dir);
        assert_non_null(d);
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            n += e->d_name[0] != '.';
        if (n == 0)
            return true;
        usleep(10000);
    }
    return false;
}

/* A put renames at once; the deleter empties the trash; a missing path is
 * fine; without a trash the tree is removed at once. */
static void test_trash_put_and_background_delete(void **state)
{
    cleanup_free char *dir = make_tmpdir();
    cleanup_free char *bin = xasprintf("%s/trash", dir);
    cleanup_free char *tree = xasprintf("%s/tree", dir);
    cleanup_free char *file = xasprintf("%s/file", dir);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(mkdir(tree, 0700), 0);
    make_deep_tree(tree, 40);
    assert_int_equal(write_file_atomic(file, "x", 1, 0600, &err), 0);
    const char *dirs[] = {bin};
    trash_t *t = NULL;
    assert_int_equal(trash_open(dirs, 1, &t, &err), 0);
    assert_int_equal(trash_put(t, tree, &err), 0);
    assert_int_equal(access(tree, F_OK), -1);
    assert_int_equal(trash_put(t, file, &err), 0);
    assert_int_equal(access(file, F_OK), -1);
    assert_int_equal(trash_put(t, tree, &err), 0); /* missing: fine */
    cleanup_free char *under_file = xasprintf("%s/trash/x", file);
    assert_int_equal(trash_put(t, under_file, &err), 0);
    assert_true(empty_within(bin, 60000));
    trash_close(t);
    assert_int_equal(mkdir(tree, 0700), 0);
    make_deep_tree(tree, 3);
    assert_int_equal(trash_put(NULL, tree, &err), 0);
    assert_int_equal(access(tree, F_OK), -1);
    assert_int_equal(rm_rf(dir, &err), 0);
}

/* What an earlier life left is deleted after trash_open; a close in the
 * middle of a tree stops. */
static void test_trash_resumes_and_stops(void **state)
{
    cleanup_free char *dir = make_tmpdir();
    cleanup_free char *bin = xasprintf("%s/trash", dir);
    cleanup_free char *left = xasprintf("%s/trash/left", dir);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(mkdir_p(left, 0700, &err), 0);
    make_deep_tree(left, 20);
    const char *dirs[] = {bin};
    trash_t *t = NULL;
    assert_int_equal(trash_open(dirs, 1, &t, &err), 0);
    assert_true(empty_within(bin, 60000));
    for (int i = 0; i < 5; i++) {
        cleanup_free char *tree = xasprintf("%s/t%d", dir, i);
        assert_int_equal(mkdir(tree, 0700), 0);
        make_deep_tree(tree, 50);
        assert_int_equal(trash_put(t, tree, &err), 0);
    }
    trash_close(t); /* returns though the trash may not be empty */
    assert_int_equal(rm_rf(dir, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rm_rf_beyond_path_max_with_few_fds),
        cmocka_unit_test(test_rm_rf_never_follows_symlinks),
        cmocka_unit_test(test_rm_rf_leaves_mounts_alone),
        cmocka_unit_test(test_mkdir_private_tightens),
        cmocka_unit_test(test_fsync_parent),
        cmocka_unit_test(test_path_walkable),
        cmocka_unit_test(test_rm_rf_stoppable_gives_up),
        cmocka_unit_test(test_trash_put_and_background_delete),
        cmocka_unit_test(test_trash_resumes_and_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
