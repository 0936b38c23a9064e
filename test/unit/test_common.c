/* common/: errors, files, usage walk. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/log.h"
#include "common/spawn.h"
#include "common/util.h"

static void test_error_make_appends_strerror(void **state)
{
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(cri_error_make(&err, ENOENT, "open `%s`", "/x"), -1);
    assert_int_equal(err.status, ENOENT);
    assert_string_equal(err.msg, "open `/x`: No such file or directory");
}

static void test_error_set_and_wrap(void **state)
{
    cri_error_t err = CRI_ERROR_INIT;
    cri_error_set(&err, EINVAL, "field `%s` is empty", "id");
    cri_error_wrap(&err, "create container `%s`", "abc");
    assert_int_equal(err.status, EINVAL);
    assert_string_equal(err.msg, "create container `abc`: field `id` is empty");
    cri_error_clear(&err);
    assert_int_equal(err.status, 0);
    assert_string_equal(err.msg, "");
}

/* err->msg is one line: control characters from quoted input (a name with
 * a newline, runc's multi-line stderr) never reach logs or gRPC details. */
static void test_error_message_is_one_line(void **state)
{
    (void)state;
    cri_error_t err = CRI_ERROR_INIT;
    cri_error_set(&err, EINVAL, "name `%s` is bad",
                  "a\nb\r\tc\x01"
                  "d\x7f");
    assert_string_equal(err.msg, "name `a b  c?d?` is bad");
    cri_error_make(&err, ENOENT, "open `%s`", "x\ny");
    assert_string_equal(err.msg, "open `x y`: No such file or directory");
    cri_error_wrap(&err, "ctx `%s`", "p\nq");
    assert_string_equal(err.msg, "ctx `p q`: open `x y`: No such file or directory");
}

static void test_error_status_zero_becomes_eio(void **state)
{
    cri_error_t err = CRI_ERROR_INIT;
    cri_error_set(&err, 0, "x");
    assert_int_equal(err.status, EIO);
}

static void test_error_wrap_truncates_safely(void **state)
{
    cri_error_t err = CRI_ERROR_INIT;
    char big[CRI_ERROR_MSG_MAX * 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cri_error_set(&err, EIO, "%s", big);
    assert_int_equal(strlen(err.msg), CRI_ERROR_MSG_MAX - 1);
    cri_error_wrap(&err, "ctx");
    assert_int_equal(strlen(err.msg), CRI_ERROR_MSG_MAX - 1);
    assert_memory_equal(err.msg, "ctx: aaa", 8);
    cri_error_wrap(&err, "%s", big); /* context longer than the buffer */
    assert_int_equal(strlen(err.msg), CRI_ERROR_MSG_MAX - 1);
}

static void test_log_level_parse(void **state)
{
    static const struct {
        const char *in;
        int want;
    } cases[] = {{"error", LOG_LEVEL_ERROR},
                 {"warn", LOG_LEVEL_WARN},
                 {"info", LOG_LEVEL_INFO},
                 {"debug", LOG_LEVEL_DEBUG},
                 {"trace", LOG_LEVEL_TRACE},
                 {"loud", -1},
                 {"", -1},
                 {"INFO", -1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(log_level_parse(cases[i].in), cases[i].want);
}

static char captured[8192];

static void capture(log_level_t level, const char *line, void *data)
{
    snprintf(captured, sizeof(captured), "%s", line);
}

static void test_log_line_is_key_value_and_escaped(void **state)
{
    log_set_handler(capture, NULL);
    log_set_level(LOG_LEVEL_INFO);
    captured[0] = '\0';
    log_debug("hidden");
    assert_string_equal(captured, "");
    log_write(LOG_LEVEL_WARN, "rpc=Version", "say \"hi\"\nnext");
    assert_non_null(strstr(captured, " level=warn msg=\"say \\\"hi\\\"\\nnext\" rpc=Version"));
    assert_true(strncmp(captured, "time=", 5) == 0);
    assert_null(strchr(captured, '\n'));
    log_set_handler(NULL, NULL);
}

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/cricket-unit-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return xstrdup(tmpl);
}

static void test_mkdir_p_and_files(void **state)
{
    cleanup_free char *dir = make_tmpdir();
    cri_error_t err = CRI_ERROR_INIT;
    cleanup_free char *deep = xasprintf("%s/a/b/c/", dir);
    assert_int_equal(mkdir_p(deep, 0700, &err), 0);
    assert_int_equal(mkdir_p(deep, 0700, &err), 0); /* exists: fine */

    cleanup_free char *file = xasprintf("%s/a/b/c/f", dir);
    assert_int_equal(write_file_atomic(file, "hello", 5, 0640, &err), 0);
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);

    char *data = NULL;
    size_t len = 0;
    assert_int_equal(read_file(file, 100, &data, &len, &err), 0);
    assert_int_equal(len, 5);
    assert_string_equal(data, "hello");
    free(data);

    /* the volatile variant replaces whole too, mode included, leaving no temp file */
    cleanup_free char *vfile = xasprintf("%s/a/b/c/v", dir);
    assert_int_equal(write_file_volatile(vfile, "old", 3, 0644, &err), 0);
    assert_int_equal(write_file_volatile(vfile, "bye", 3, 0600, &err), 0);
    assert_int_equal(stat(vfile, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(read_file(vfile, 100, &data, &len, &err), 0);
    assert_string_equal(data, "bye");
    free(data);
    cleanup_free char *parent = xasprintf("%s/a/b/c", dir);
    DIR *dd = opendir(parent);
    assert_non_null(dd);
    int entries = 0;
    for (struct dirent *e = readdir(dd); e; e = readdir(dd))
        entries += e->d_name[0] != '.';
    closedir(dd);
    assert_int_equal(entries, 2); /* f and v */
    cleanup_free char *nodir = xasprintf("%s/none/f", dir);
    assert_int_equal(write_file_volatile(nodir, "x", 1, 0600, &err), -1);
    assert_int_equal(err.status, ENOENT);

    /* over the limit */
    data = NULL;
    assert_int_equal(read_file(file, 3, &data, &len, &err), -1);
    assert_int_equal(err.status, EFBIG);
    assert_null(data);

    /* a file where a directory should be */
    cleanup_free char *through = xasprintf("%s/x", file);
    assert_int_equal(mkdir_p(through, 0700, &err), -1);
    assert_int_equal(err.status, ENOTDIR);

    cleanup_free char *missing = xasprintf("%s/missing", dir);
    assert_int_equal(read_file(missing, 100, &data, &len, &err), -1);
    assert_int_equal(err.status, ENOENT);
    assert_non_null(strstr(err.msg, "missing"));

    assert_int_equal(rm_rf(dir, &err), 0);
    assert_int_equal(access(dir, F_OK), -1);
    assert_int_equal(rm_rf(dir, &err), 0); /* missing: fine */
}

static void test_dir_usage_counts_blocks_and_inodes_once(void **state)
{
    cleanup_free char *dir = make_tmpdir();
    cri_error_t err = CRI_ERROR_INIT;
    uint64_t bytes0, inodes0;
    assert_int_equal(dir_usage(dir, &bytes0, &inodes0, &err), 0);
    assert_int_equal(inodes0, 1);

    cleanup_free char *f = xasprintf("%s/f", dir);
    cleanup_free char *buf = xcalloc(1, 256 * 1024);
    memset(buf, 'x', 256 * 1024);
    assert_int_equal(write_file_atomic(f, buf, 256 * 1024, 0600, &err), 0);
    cleanup_free char *hard = xasprintf("%s/hardlink", dir);
    assert_int_equal(link(f, hard), 0);

    uint64_t bytes, inodes;
    assert_int_equal(dir_usage(dir, &bytes, &inodes, &err), 0);
    assert_int_equal(inodes, 2); /* the dir and one file: the hard link counts once */
    assert_true(bytes - bytes0 >= 256 * 1024);
    assert_true(bytes - bytes0 < 2 * 256 * 1024);

    cleanup_free char *missing = xasprintf("%s/none", dir);
    assert_int_equal(dir_usage(missing, &bytes, &inodes, &err), 0);
    assert_int_equal(bytes, 0);
    assert_int_equal(inodes, 0);
    assert_int_equal(rm_rf(dir, &err), 0);
}

/* Removes name under dirfd, fd-relative (test helper). */
static void rm_tree_at(int at, const char *name)
{
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        assert_int_equal(unlinkat(at, name, 0), 0);
        return;
    }
    DIR *d = fdopendir(fd);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            rm_tree_at(dirfd(d), e->d_name);
    closedir(d);
    assert_int_equal(unlinkat(at, name, AT_REMOVEDIR), 0);
}

/* Hard links across directories count once, symlinks are not followed, and
 * a tree deeper than PATH_MAX as a path is walked whole (fd-relative). */
static void test_dir_usage_links_and_deep_paths(void **state)
{
    cleanup_free char *dir = make_tmpdir();
    cri_error_t err = CRI_ERROR_INIT;
    cleanup_free char *a = xasprintf("%s/a", dir);
    cleanup_free char *b = xasprintf("%s/b", dir);
    assert_int_equal(mkdir(a, 0755), 0);
    assert_int_equal(mkdir(b, 0755), 0);
    cleanup_free char *buf = xcalloc(1, 64 * 1024);
    memset(buf, 'x', 64 * 1024);
    for (int i = 0; i < 100; i++) {
        cleanup_free char *f = xasprintf("%s/f%d", a, i);
        cleanup_free char *l1 = xasprintf("%s/l%d", b, i);
        cleanup_free char *l2 = xasprintf("%s/m%d", a, i);
        assert_int_equal(write_file_atomic(f, buf, 64 * 1024, 0600, &err), 0);
        assert_int_equal(link(f, l1), 0);
        assert_int_equal(link(f, l2), 0);
    }
    cleanup_free char *sym = xasprintf("%s/up", b);
    assert_int_equal(symlink("/usr", sym), 0); /* counted as itself, never walked */
    uint64_t bytes, inodes;
    assert_int_equal(dir_usage(dir, &bytes, &inodes, &err), 0);
    assert_int_equal(inodes, 1 + 2 + 100 + 1);
    assert_true(bytes >= 100 * 64 * 1024);
    assert_true(bytes < 2 * 100 * 64 * 1024);

    /* 40 levels of 200-byte names: over 8000 bytes of path */
    char name[201];
    memset(name, 'd', 200);
    name[200] = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(mkdirat(fd, name, 0755), 0);
        int sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(sub >= 0);
        close(fd);
        fd = sub;
    }
    int f = openat(fd, "deep", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    assert_true(f >= 0);
    assert_int_equal(write(f, buf, 64 * 1024), 64 * 1024);
    close(f);
    close(fd);
    uint64_t bytes2, inodes2;
    assert_int_equal(dir_usage(dir, &bytes2, &inodes2, &err), 0);
    assert_int_equal(inodes2, inodes + 40 + 1);
    assert_true(bytes2 >= bytes + 64 * 1024);

    /* a lone file as the root */
    cleanup_free char *f0 = xasprintf("%s/f0", a);
    assert_int_equal(dir_usage(f0, &bytes, &inodes, &err), 0);
    assert_int_equal(inodes, 1);
    assert_true(bytes >= 64 * 1024);
    rm_tree_at(AT_FDCWD, dir); /* rm_rf builds paths: too long here */
    assert_int_equal(access(dir, F_OK), -1);
}

static void test_take_ptr_and_fd(void **state)
{
    cleanup_free char *p = xstrdup("x");
    char *q = TAKE_PTR(p);
    assert_null(p);
    free(q);
    cleanup_close int fd = dup(0);
    int g = TAKE_FD(fd);
    assert_int_equal(fd, -1);
    close(g);
}

static void test_spawn_feeds_stdin_and_captures(void **state)
{
    const char *argv[] = {"/bin/sh", "-c", "cat; echo \"err $FOO\" >&2; exit 3", NULL};
    const char *envp[] = {"FOO=bar", NULL};
    spawn_opts_t o = SPAWN_OPTS_INIT;
    o.argv = argv;
    o.envp = envp;
    o.stdin_data = "hello";
    o.stdin_len = 5;
    spawn_result_t r = {0};
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(spawn_run(&o, &r, &err), 0);
    assert_true(WIFEXITED(r.wait_status));
    assert_int_equal(WEXITSTATUS(r.wait_status), 3);
    assert_string_equal(r.out, "hello");
    assert_string_equal(r.err, "err bar\n");
    char how[64];
    spawn_describe_status(r.wait_status, how, sizeof(how));
    assert_string_equal(how, "exit status 3");
    spawn_result_free(&r);
}

static void test_spawn_large_stdin_and_capture_cap(void **state)
{
    /* more than a pipe holds both ways, so feeding and reading interleave */
    size_t len = 1 << 20;
    cleanup_free char *big = xmalloc(len);
    memset(big, 'z', len);
    const char *argv[] = {"/bin/cat", NULL};
    spawn_opts_t o = SPAWN_OPTS_INIT;
    o.argv = argv;
    o.stdin_data = big;
    o.stdin_len = len;
    o.capture_max = 1000;
    spawn_result_t r = {0};
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(spawn_run(&o, &r, &err), 0);
    assert_int_equal(r.out_len, 1000);
    assert_int_equal(strlen(r.out), 1000);
    spawn_result_free(&r);
}

static void test_spawn_timeout_kills(void **state)
{
    const char *argv[] = {"/bin/sleep", "30", NULL};
    spawn_opts_t o = SPAWN_OPTS_INIT;
    o.argv = argv;
    o.timeout_ms = 200;
    spawn_result_t r = {0};
    cri_error_t err = CRI_ERROR_INIT;
    int64_t t0 = now_unix_ns();
    assert_int_equal(spawn_run(&o, &r, &err), -1);
    assert_int_equal(err.status, ETIMEDOUT);
    assert_true(now_unix_ns() - t0 < 10LL * 1000000000);
    assert_null(r.out);

    const char *missing[] = {"/nonexistent/bin", NULL};
    o.argv = missing;
    assert_int_equal(spawn_run(&o, &r, &err), -1);
    assert_int_equal(err.status, ENOENT);
}

static void test_str_set_replaces_and_allows_alias(void **state)
{
    char *s = NULL;
    str_set(&s, "first");
    assert_string_equal(s, "first");
    str_set(&s, NULL);
    assert_string_equal(s, "");
    str_set(&s, "abcdef");
    str_set(&s, s + 2); /* a value inside the old string */
    assert_string_equal(s, "cdef");
    free(s);
}

static void test_parse_ulong_prefix(void **state)
{
    unsigned long v = 7;
    const char *end = NULL;
    assert_true(parse_ulong_prefix(" 80 24", 0xffff, &v, &end));
    assert_int_equal(v, 80);
    assert_string_equal(end, " 24");
    assert_true(parse_ulong_prefix(end, 0xffff, &v, NULL));
    assert_int_equal(v, 24);
    /* no number, a sign, too large, overflow: false and nothing touched */
    v = 7;
    end = NULL;
    assert_false(parse_ulong_prefix("", 10, &v, &end));
    assert_false(parse_ulong_prefix("x1", 10, &v, &end));
    assert_false(parse_ulong_prefix("-1", ULONG_MAX, &v, &end));
    assert_false(parse_ulong_prefix("+1", ULONG_MAX, &v, &end));
    assert_false(parse_ulong_prefix("65536", 0xffff, &v, &end));
    assert_false(parse_ulong_prefix("99999999999999999999999", ULONG_MAX, &v, &end));
    assert_int_equal(v, 7);
    assert_null(end);
}

static void test_parse_major_minor(void **state)
{
    unsigned long ma = 9, mi = 9;
    assert_true(parse_major_minor("5.10.0-21-amd64", &ma, &mi));
    assert_int_equal(ma, 5);
    assert_int_equal(mi, 10);
    assert_true(parse_major_minor("6", &ma, &mi));
    assert_int_equal(ma, 6);
    assert_int_equal(mi, 0);
    assert_true(parse_major_minor("1.x", &ma, &mi));
    assert_int_equal(ma, 1);
    assert_int_equal(mi, 0);
    ma = mi = 9;
    assert_false(parse_major_minor("v1.0", &ma, &mi));
    assert_false(parse_major_minor("", &ma, &mi));
    assert_int_equal(ma, 9);
    assert_int_equal(mi, 9);
}

static void test_sockaddr_from_ip(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    memset(&ss, 0xaa, sizeof(ss));
    assert_int_equal(sockaddr_from_ip("127.0.0.1", 10250, &ss), AF_INET);
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)&ss;
    assert_int_equal(a4->sin_family, AF_INET);
    assert_int_equal(ntohs(a4->sin_port), 10250);
    assert_int_equal(ntohl(a4->sin_addr.s_addr), 0x7f000001);
    assert_int_equal(a4->sin_zero[0], 0); /* zeroed first */

    assert_int_equal(sockaddr_from_ip("::1", 443, &ss), AF_INET6);
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&ss;
    assert_int_equal(a6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(a6->sin6_port), 443);
    assert_true(IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr));

    /* names, ports in the string, empty: not IP literals */
    assert_int_equal(sockaddr_from_ip("localhost", 1, &ss), -1);
    assert_int_equal(sockaddr_from_ip("127.0.0.1:80", 1, &ss), -1);
    assert_int_equal(sockaddr_from_ip("", 1, &ss), -1);
    assert_int_equal(sockaddr_from_ip("[::1]", 1, &ss), -1);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_make_appends_strerror),
        cmocka_unit_test(test_error_set_and_wrap),
        cmocka_unit_test(test_error_status_zero_becomes_eio),
        cmocka_unit_test(test_error_message_is_one_line),
        cmocka_unit_test(test_error_wrap_truncates_safely),
        cmocka_unit_test(test_log_level_parse),
        cmocka_unit_test(test_log_line_is_key_value_and_escaped),
        cmocka_unit_test(test_mkdir_p_and_files),
        cmocka_unit_test(test_dir_usage_counts_blocks_and_inodes_once),
        cmocka_unit_test(test_dir_usage_links_and_deep_paths),
        cmocka_unit_test(test_take_ptr_and_fd),
        cmocka_unit_test(test_spawn_feeds_stdin_and_captures),
        cmocka_unit_test(test_spawn_large_stdin_and_capture_cap),
        cmocka_unit_test(test_spawn_timeout_kills),
        cmocka_unit_test(test_str_set_replaces_and_allows_alias),
        cmocka_unit_test(test_parse_ulong_prefix),
        cmocka_unit_test(test_parse_major_minor),
        cmocka_unit_test(test_sockaddr_from_ip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
