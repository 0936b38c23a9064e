/* server/image: references, content store, layer unpack (hostile tarballs
 * written with libarchive), manifests, configs, auth helpers. No network. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/image/registry/registry-internal.h"
#include "server/image/store/store-internal.h"
#include "server/image/store/image_store.h"

/* ---- references ---------------------------------------------------------- */

static const struct {
    const char *in;
    const char *full; /* NULL = invalid */
} refs[] = {
    {"busybox", "docker.io/library/busybox:latest"},
    {"busybox:1.36", "docker.io/library/busybox:1.36"},
    {"library/busybox", "docker.io/library/busybox:latest"},
    {"docker.io/busybox", "docker.io/library/busybox:latest"},
    {"index.docker.io/library/busybox:x", "docker.io/library/busybox:x"},
    {"user/app", "docker.io/user/app:latest"},
    {"quay.io/coreos/etcd:v3.5", "quay.io/coreos/etcd:v3.5"},
    {"localhost/app", "localhost/app:latest"},
    {"localhost:5000/a/b/c:t", "localhost:5000/a/b/c:t"},
    {"127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"},
    {"registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"},
    {"a.b-c_d__e---f", "docker.io/library/a.b-c_d__e---f:latest"},
    {"busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
     "docker.io/library/busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
     "abcdef"},
    {"busybox:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
     "docker.io/library/busybox:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef012345"
     "6789abcdef"},
    {"", NULL},
    {"Busybox", NULL},
    {"busybox:", NULL},
    {"busybox:a:b", NULL},
    {":tag", NULL},
    {"a//b", NULL},
    {"a/", NULL},
    {"quay.io/", NULL},          /* empty path (fuzz_image_ref) */
    {"localhost:5000/:t", NULL}, /* empty path with a tag */
    {"-a", NULL},
    {"a..b", NULL},
    {"a_-b", NULL},
    {"busybox@sha256:abc", NULL},
    {"busybox@md5:0123456789abcdef0123456789abcdef", NULL},
    {"busybox:.tag", NULL},
    {"host:99999999/app", NULL},
    {"-host.com/app", NULL},
    {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", NULL},
};

static void test_reference_table(void **state)
{
    for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
        image_ref_t *r = NULL;
        cri_error_t err = CRI_ERROR_INIT;
        int rc = image_ref_parse(refs[i].in, &r, &err);
        if (!refs[i].full) {
            if (rc == 0)
                fail_msg("`%s` should be invalid", refs[i].in);
            assert_int_equal(err.status, EINVAL);
            assert_non_null(strstr(err.msg, refs[i].in));
            assert_null(r);
            continue;
        }
        if (rc < 0)
            fail_msg("`%s`: %s", refs[i].in, err.msg);
        char *s = image_ref_string(r);
        assert_string_equal(s, refs[i].full);
        assert_int_equal(err.status, 0);
        free(s);
        image_ref_free(r);
    }
}

static void test_reference_parts(void **state)
{
    cleanup_image_ref image_ref_t *r = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(image_ref_parse("localhost:5000/a/b:t", &r, &err), 0);
    assert_string_equal(r->domain, "localhost:5000");
    assert_string_equal(r->path, "a/b");
    assert_string_equal(r->tag, "t");
    assert_null(r->digest);
    cleanup_free char *name = image_ref_name(r);
    assert_string_equal(name, "localhost:5000/a/b");
    assert_true(image_digest_valid("sha256:"
                                   "0123456789abcdef0123456789abcdef"
                                   "0123456789abcdef0123456789abcdef"));
    assert_false(image_digest_valid("sha256:0123"));
    assert_false(image_digest_valid("sha256:"
                                    "0123456789ABCDEF0123456789abcdef"
                                    "0123456789abcdef0123456789abcdef"));
}

/* ---- digests ---------------------------------------------------------------- */

static void test_digest_and_chain_id(void **state)
{
    char d[IMAGE_DIGEST_LEN + 1];
    image_digest_of("", 0, d);
    assert_string_equal(d,
                        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    char c[IMAGE_DIGEST_LEN + 1];
    image_chain_id("", d, c);
    assert_string_equal(c, d); /* the first chain id is the diff id */
    image_chain_id(d, d, c);
    char expect[IMAGE_DIGEST_LEN + 1];
    char buf[2 * IMAGE_DIGEST_LEN + 2];
    snprintf(buf, sizeof(buf), "%s %s", d, d);
    image_digest_of(buf, strlen(buf), expect);
    assert_string_equal(c, expect);
}

/* ---- temp dirs ------------------------------------------------------------- */

static char *tmpdir(void)
{
    char *t = xstrdup("/tmp/cricket-unit-image-XXXXXX");
    assert_non_null(mkdtemp(t));
    return t;
}

static void rmtree(const char *p)
{
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(rm_rf(p, &err), 0);
}

/* ---- content store ------------------------------------------------------------ */

static void make_store_dirs(const char *root)
{
    cri_error_t err = CRI_ERROR_INIT;
    cleanup_free char *a = xasprintf("%s/blobs/sha256", root);
    cleanup_free char *b = xasprintf("%s/blobs/ingest", root);
    assert_int_equal(mkdir_p(a, 0700, &err), 0);
    assert_int_equal(mkdir_p(b, 0700, &err), 0);
}

static size_t count_entries(const char *dir)
{
    cleanup_dir DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    return n;
}

static void test_content_verified_ingest(void **state)
{
    cleanup_free char *root = tmpdir();
    make_store_dirs(root);
    cleanup_free char *ingest = xasprintf("%s/blobs/ingest", root);
    cleanup_free char *blobs = xasprintf("%s/blobs/sha256", root);
    const char data[] = "hello layer";
    char d[IMAGE_DIGEST_LEN + 1];
    image_digest_of(data, strlen(data), d);
    cri_error_t err = CRI_ERROR_INIT;

    /* wrong content: refused, nothing visible, ingest cleaned */
    content_writer_t *w = NULL;
    assert_int_equal(content_writer_open(root, d, (int64_t)strlen(data), &w, &err), 0);
    assert_int_equal(content_writer_write(w, "hello LAYER", 11, &err), 0);
    assert_int_equal(content_writer_commit(w, &err), -1);
    assert_int_equal(err.status, EBADMSG);
    assert_non_null(strstr(err.msg, "digest mismatch"));
    content_writer_free(w);
    assert_false(content_has(root, d));
    assert_int_equal(count_entries(ingest), 0);

    /* too much data: refused while streaming */
    cri_error_clear(&err);
    assert_int_equal(content_writer_open(root, d, 3, &w, &err), 0);
    assert_int_equal(content_writer_write(w, data, strlen(data), &err), -1);
    assert_int_equal(err.status, EBADMSG);
    content_writer_free(w);

    /* short data: size mismatch */
    cri_error_clear(&err);
    assert_int_equal(content_writer_open(root, d, 100, &w, &err), 0);
    assert_int_equal(content_writer_write(w, data, strlen(data), &err), 0);
    assert_int_equal(content_writer_commit(w, &err), -1);
    assert_non_null(strstr(err.msg, "size mismatch"));
    content_writer_free(w);
    assert_int_equal(count_entries(blobs), 0);

    /* the right bytes */
    cri_error_clear(&err);
    assert_int_equal(content_put(root, d, data, strlen(data), &err), 0);
    assert_true(content_has(root, d));
    char *back = NULL;
    size_t len = 0;
    assert_int_equal(content_get(root, d, 1024, &back, &len, &err), 0);
    assert_int_equal(len, strlen(data));
    assert_memory_equal(back, data, len);
    free(back);
    assert_int_equal(count_entries(ingest), 0);
    rmtree(root);
}

/* ---- hostile and normal tarballs --------------------------------------------- */

typedef struct tar_entry {
    const char *name;
    mode_t type; /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR; 0 = hardlink */
    const char *data_or_link;
    mode_t perm;
} tar_entry_t;

typedef struct tar_xattr {
    const char *name;
    const void *value;
    size_t size;
} tar_xattr_t;

/* Writes a tar (gzip, zstd or none) of the entries to path with libarchive;
 * xattrs (may be NULL) has n lists of xattrs (each ends with a NULL name, or
 * is NULL). */
static void write_tar_x(const char *path, const tar_entry_t *ents, const tar_xattr_t *const *xattrs,
                        size_t n, int filter)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (filter == ARCHIVE_FILTER_GZIP)
        archive_write_add_filter_gzip(a);
    else if (filter == ARCHIVE_FILTER_ZSTD)
        assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, ents[i].name);
        archive_entry_set_mtime(e, 1600000000, 0);
        if (ents[i].type == 0) {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, ents[i].data_or_link);
        } else {
            archive_entry_set_filetype(e, ents[i].type);
        }
        archive_entry_set_perm(e, ents[i].perm ? ents[i].perm : 0644);
        for (const tar_xattr_t *x = xattrs ? xattrs[i] : NULL; x && x->name; x++)
            archive_entry_xattr_add_entry(e, x->name, x->value, x->size);
        if (ents[i].type == AE_IFLNK)
            archive_entry_set_symlink(e, ents[i].data_or_link);
        size_t len =
            ents[i].type == AE_IFREG && ents[i].data_or_link ? strlen(ents[i].data_or_link) : 0;
        archive_entry_set_size(e, (la_int64_t)len);
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (len)
            assert_int_equal(archive_write_data(a, ents[i].data_or_link, len), (la_ssize_t)len);
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

static void write_tar(const char *path, const tar_entry_t *ents, size_t n, int filter)
{
    write_tar_x(path, ents, NULL, n, filter);
}

typedef struct sandbox {
    char *base;   /* tmp dir */
    char *layer;  /* base/layer: the unpack target */
    char *victim; /* base/victim: must stay empty */
    char *tar;
} sandbox_t;

static void sandbox_init(sandbox_t *s)
{
    s->base = tmpdir();
    s->layer = xasprintf("%s/layer", s->base);
    s->victim = xasprintf("%s/victim", s->base);
    s->tar = xasprintf("%s/layer.tar", s->base);
    assert_int_equal(mkdir(s->layer, 0755), 0);
    assert_int_equal(mkdir(s->victim, 0755), 0);
}

static void sandbox_fini(sandbox_t *s)
{
    /* nothing may have landed beside the layer */
    assert_int_equal(count_entries(s->victim), 0);
    assert_int_equal(count_entries(s->base), 3); /* layer, victim, layer.tar */
    rmtree(s->base);
    free(s->base);
    free(s->layer);
    free(s->victim);
    free(s->tar);
}

static int unpack(sandbox_t *s, cri_error_t *err)
{
    return unpack_layer(s->tar, s->layer, NULL, NULL, NULL, err);
}

static void test_unpack_dotdot_is_confined(void **state)
{
    sandbox_t s;
    sandbox_init(&s);
    tar_entry_t ents[] = {
        {"../victim/evil", AE_IFREG, "x", 0},
        {"a/../../victim/evil2", AE_IFREG, "x", 0},
        {"/victim/abs", AE_IFREG, "abs", 0},
    };
    write_tar(s.tar, ents, 3, ARCHIVE_FILTER_NONE);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(unpack(&s, &err), 0);
    /* confined inside the layer: ../victim/evil -> victim/evil */
    cleanup_free char *in1 = xasprintf("%s/victim/evil", s.layer);
    cleanup_free char *in2 = xasprintf("%s/victim/abs", s.layer);
    assert_int_equal(access(in1, F_OK), 0);
    assert_int_equal(access(in2, F_OK), 0);
    sandbox_fini(&s);
}

static void test_unpack_symlink_escape_refused(void **state)
{
    sandbox_t s;
    sandbox_init(&s);
    cleanup_free char *target = xstrdup(s.victim);
    tar_entry_t ents[] = {
        {"link", AE_IFLNK, target, 0777},
        {"link/evil", AE_IFREG, "x", 0},
    };
    write_tar(s.tar, ents, 2, ARCHIVE_FILTER_GZIP);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(unpack(&s, &err), -1);
    assert_int_equal(err.status, EPERM);
    sandbox_fini(&s);
}

static void test_unpack_relative_symlink_escape_refused(void **state)
{
    sandbox_t s;
    sandbox_init(&s);
    tar_entry_t ents[] = {
        {"d", AE_IFDIR, NULL, 0755},
        {"d/up", AE_IFLNK, "../../victim", 0777},
        {"d/up/evil", AE_IFREG, "x", 0},
    };
    write_tar(s.tar, ents, 3, ARCHIVE_FILTER_NONE);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(unpack(&s, &err), -1);
    assert_int_equal(err.status, EPERM);
    sandbox_fini(&s);
}

static void test_unpack_symlink_replaced_not_followed(void **state)
{
    sandbox_t s;
    sandbox_init(&s);
    cleanup_free char *target = xasprintf("%s/owned", s.victim);
    tar_entry_t ents[] = {
        {"f", AE_IFLNK, target, 0777},
        {"f", AE_IFREG, "replaced", 0}, /* must replace the link, not write through it */
        {"h", 0, "../victim/owned", 0}, /* hard link to outside: confined, target missing */
    };
    write_tar(s.tar, ents, 2, ARCHIVE_FILTER_NONE);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(unpack(&s, &err), 0);
    cleanup_free char *f = xasprintf("%s/f", s.layer);
    struct stat st;
    assert_int_equal(lstat(f, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    write_tar(s.tar, ents + 2, 1, ARCHIVE_FILTER_NONE);
    cri_error_clear(&err);
    assert_int_equal(unpack(&s, &err), -1); /* link target `victim/owned` not in the layer */
    sandbox_fini(&s);
}

/* The unpack remembers the last parent dir it checked: a later entry that
 * turns that dir (or one above it) into a symlink, or a whiteout that removes
 * it, must make the next entry below it be checked again. */
static void test_unpack_checked_parent_replaced(void **state)
{
    cleanup_free char *target = NULL;
    const char *tails[][2] = {{"a/b", "a/b/evil"}, {"a", "a/b/evil"}};
    for (size_t i = 0; i < 2; i++) {
        sandbox_t s;
        sandbox_init(&s);
        free(target);
        target = xstrdup(s.victim);
        tar_entry_t ents[] = {
            {"a", AE_IFDIR, NULL, 0755},           {"a/b", AE_IFDIR, NULL, 0755},
            {"a/b/f1", AE_IFREG, "1", 0},          {"a/b/f2", AE_IFREG, "2", 0},
            {tails[i][0], AE_IFLNK, target, 0777}, /* the dir becomes a link out */
            {tails[i][1], AE_IFREG, "x", 0},
        };
        write_tar(s.tar, ents, 6, ARCHIVE_FILTER_NONE);
        cri_error_t err = CRI_ERROR_INIT;
        assert_int_equal(unpack(&s, &err), -1);
        assert_int_equal(err.status, EPERM);
        sandbox_fini(&s);
    }
    /* a whiteout turns the checked dir into a 0/0 device: what follows below
     * it is refused like any entry under a non-directory */
    sandbox_t s;
    sandbox_init(&s);
    tar_entry_t ents[] = {
        {"a", AE_IFDIR, NULL, 0755},  {"a/b", AE_IFDIR, NULL, 0755}, {"a/b/f1", AE_IFREG, "1", 0},
        {"a/.wh.b", AE_IFREG, "", 0}, {"a/b/f2", AE_IFREG, "2", 0},
    };
    write_tar(s.tar, ents, 5, ARCHIVE_FILTER_NONE);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(unpack(&s, &err), -1);
    assert_int_equal(err.status, EPERM);
    assert_non_null(strstr(err.msg, "`a/b/f2`: its parent is not a directory"));
    sandbox_fini(&s);
}

static void test_unpack_whiteouts_and_metadata(void **state)
{
    sandbox_t s;
    sandbox_init(&s);
    tar_entry_t ents[] = {
        {"etc", AE_IFDIR, NULL, 0755},  {"etc/.wh.passwd", AE_IFREG, "", 0},
        {"opq", AE_IFDIR, NULL, 0700},  {"opq/.wh..wh..opq", AE_IFREG, "", 0},
        {"opq/kept", AE_IFREG, "k", 0}, {"suid", AE_IFREG, "s", 04755},
        {"hard", 0, "suid", 0},         {".wh..wh.plnk", AE_IFDIR, NULL, 0700},
    };
    write_tar(s.tar, ents, sizeof(ents) / sizeof(ents[0]), ARCHIVE_FILTER_ZSTD);
    cri_error_t err = CRI_ERROR_INIT;
    unpack_stats_t stats = {0};
    assert_int_equal(unpack_layer(s.tar, s.layer, NULL, NULL, &stats, &err), 0);
    assert_true(stats.size > 0);
    assert_int_equal(stats.dropped_xattrs, 0);
    struct stat st;
    cleanup_free char *wh = xasprintf("%s/etc/passwd", s.layer);
    assert_int_equal(lstat(wh, &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    assert_int_equal(st.st_rdev, makedev(0, 0));
    cleanup_free char *opq = xasprintf("%s/opq", s.layer);
    char v[4] = "";
    assert_int_equal(lgetxattr(opq, "trusted.overlay.opaque", v, sizeof(v)), 1);
    assert_int_equal(v[0], 'y');
    assert_int_equal(lstat(opq, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    cleanup_free char *opqm = xasprintf("%s/opq/.wh..wh..opq", s.layer);
    assert_int_equal(access(opqm, F_OK), -1);
    cleanup_free char *plnk = xasprintf("%s/.wh..wh.plnk", s.layer);
    assert_int_equal(access(plnk, F_OK), -1);
    cleanup_free char *suid = xasprintf("%s/suid", s.layer);
    cleanup_free char *hard = xasprintf("%s/hard", s.layer);
    struct stat st2;
    assert_int_equal(stat(suid, &st), 0);
    assert_int_equal(stat(hard, &st2), 0);
    assert_int_equal(st.st_mode & 07777, 04755);
    assert_int_equal(st.st_ino, st2.st_ino);
    assert_int_equal(st.st_mtime, 1600000000);
    sandbox_fini(&s);
}

/* A layer may not set trusted.* xattrs (overlay reads trusted.overlay.* from
 * lower dirs: redirect, metacopy, a forged opaque); user.* and file
 * capabilities are kept. */
static void test_unpack_xattrs_filtered(void **state)
{
    sandbox_t s;
    sandbox_init(&s);
    /* vfs_cap_data v2, effective, permitted = CAP_NET_BIND_SERVICE (10) */
    static const unsigned char cap[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x04};
    const tar_xattr_t file_x[] = {
        {"trusted.overlay.redirect", "/etc", 4},   {"trusted.foo", "bar", 3}, {"user.keep", "1", 1},
        {"security.capability", cap, sizeof(cap)}, {NULL, NULL, 0},
    };
    const tar_xattr_t dir_x[] = {{"trusted.overlay.opaque", "y", 1}, {NULL, NULL, 0}};
    tar_entry_t ents[] = {
        {"f", AE_IFREG, "data", 0755},
        {"forged", AE_IFDIR, NULL, 0755},
        {"opq", AE_IFDIR, NULL, 0755},
        {"opq/.wh..wh..opq", AE_IFREG, "", 0},
    };
    const tar_xattr_t *const xattrs[] = {file_x, dir_x, NULL, NULL};
    write_tar_x(s.tar, ents, xattrs, sizeof(ents) / sizeof(ents[0]), ARCHIVE_FILTER_NONE);
    cri_error_t err = CRI_ERROR_INIT;
    unpack_stats_t stats = {0};
    assert_int_equal(unpack_layer(s.tar, s.layer, NULL, NULL, &stats, &err), 0);
    assert_int_equal(stats.dropped_xattrs, 3); /* redirect, foo, the forged opaque */
    cleanup_free char *f = xasprintf("%s/f", s.layer);
    cleanup_free char *forged = xasprintf("%s/forged", s.layer);
    cleanup_free char *opq = xasprintf("%s/opq", s.layer);
    char v[64];
    assert_int_equal(lgetxattr(f, "trusted.overlay.redirect", v, sizeof(v)), -1);
    assert_int_equal(lgetxattr(f, "trusted.foo", v, sizeof(v)), -1);
    assert_int_equal(lgetxattr(forged, "trusted.overlay.opaque", v, sizeof(v)), -1);
    assert_int_equal(lgetxattr(f, "user.keep", v, sizeof(v)), 1);
    assert_int_equal(v[0], '1');
    assert_int_equal(lgetxattr(f, "security.capability", v, sizeof(v)), (ssize_t)sizeof(cap));
    assert_int_equal(lgetxattr(opq, "trusted.overlay.opaque", v, sizeof(v)), 1);
    sandbox_fini(&s);
}

/* Caps on entries and uncompressed bytes, and the pull deadline: a clear
 * error naming the limit (the caller removes the half-written dir). */
static void test_unpack_limits(void **state)
{
    sandbox_t s;
    sandbox_init(&s);
    static char big[64 * 1024];
    memset(big, 'b', sizeof(big) - 1);
    tar_entry_t ents[] = {
        {"a", AE_IFREG, "1", 0},
        {"b", AE_IFREG, "2", 0},
        {"c", AE_IFREG, big, 0},
    };
    write_tar(s.tar, ents, 3, ARCHIVE_FILTER_GZIP);
    cri_error_t err = CRI_ERROR_INIT;
    unpack_limits_t lim = {.max_entries = 3, .max_bytes = 1 << 20};
    assert_int_equal(unpack_layer(s.tar, s.layer, NULL, &lim, NULL, &err), 0);

    lim = (unpack_limits_t){.max_entries = 2};
    rmtree(s.layer);
    assert_int_equal(mkdir(s.layer, 0755), 0);
    assert_int_equal(unpack_layer(s.tar, s.layer, NULL, &lim, NULL, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_non_null(strstr(err.msg, "more than 2 entries (image.max_layer_entries)"));

    lim = (unpack_limits_t){.max_bytes = 16 * 1024};
    cri_error_clear(&err);
    rmtree(s.layer);
    assert_int_equal(mkdir(s.layer, 0755), 0);
    assert_int_equal(unpack_layer(s.tar, s.layer, NULL, &lim, NULL, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_non_null(strstr(err.msg, "more than 16384 bytes (image.max_layer_unpacked_bytes)"));

    lim = (unpack_limits_t){.deadline_ms = 1}; /* long gone */
    cri_error_clear(&err);
    rmtree(s.layer);
    assert_int_equal(mkdir(s.layer, 0755), 0);
    assert_int_equal(unpack_layer(s.tar, s.layer, NULL, &lim, NULL, &err), -1);
    assert_int_equal(err.status, ETIMEDOUT);
    rmtree(s.layer);
    assert_int_equal(mkdir(s.layer, 0755), 0);
    sandbox_fini(&s);
}

static void test_unpack_diff_id_checked(void **state)
{
    sandbox_t s;
    sandbox_init(&s);
    tar_entry_t ents[] = {{"f", AE_IFREG, "data", 0}};
    write_tar(s.tar, ents, 1, ARCHIVE_FILTER_NONE);
    cleanup_free char *raw = NULL;
    size_t len = 0;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(read_file(s.tar, 1 << 20, &raw, &len, &err), 0);
    char diff[IMAGE_DIGEST_LEN + 1];
    image_digest_of(raw, len, diff);
    /* gzip the same tar: the diff id is over the uncompressed stream */
    write_tar(s.tar, ents, 1, ARCHIVE_FILTER_GZIP);
    assert_int_equal(unpack_layer(s.tar, s.layer, diff, NULL, NULL, &err), 0);
    char wrong[] = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    assert_int_equal(unpack_layer(s.tar, s.layer, wrong, NULL, NULL, &err), -1);
    assert_int_equal(err.status, EBADMSG);
    sandbox_fini(&s);
}

static void test_unpack_garbage_refused(void **state)
{
    sandbox_t s;
    sandbox_init(&s);
    FILE *f = fopen(s.tar, "w");
    /* a gzip magic followed by junk */
    fputs("\x1f\x8b\x08\x00junkjunkjunkjunkjunkjunk", f);
    fclose(f);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(unpack(&s, &err), -1);
    assert_int_equal(err.status, EBADMSG);
    sandbox_fini(&s);
}

/* ---- manifests and configs --------------------------------------------------- */

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static void test_manifest_parse(void **state)
{
    const char *m = "{\"schemaVersion\":2,\"mediaType\":"
                    "\"application/vnd.docker.distribution.manifest.v2+json\","
                    "\"config\":{\"mediaType\":\"x\",\"digest\":\"" D1 "\",\"size\":7},"
                    "\"layers\":[{\"mediaType\":\"y\",\"digest\":\"" D2 "\",\"size\":9}]}";
    manifest_t *man = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(manifest_parse(m, strlen(m), NULL, &man, &err), 0);
    assert_false(man->is_index);
    assert_string_equal(man->config.digest, D1);
    assert_int_equal(man->n_layers, 1);
    assert_int_equal(man->layers[0].size, 9);
    manifest_free(man);

    const char *s1 = "{\"schemaVersion\":1,\"fsLayers\":[]}";
    assert_int_equal(manifest_parse(s1, strlen(s1), NULL, &man, &err), -1);
    assert_int_equal(err.status, ENOTSUP);
    assert_non_null(strstr(err.msg, "schema1"));

    const char *bad = "{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:12\",\"size\":1},"
                      "\"layers\":[]}";
    assert_int_equal(
        manifest_parse(bad, strlen(bad), "application/vnd.oci.image.manifest.v1+json", &man, &err),
        -1);
    assert_int_equal(err.status, EBADMSG);
}

static void test_index_pick_platform(void **state)
{
    const char *idx = "{\"schemaVersion\":2,\"manifests\":["
                      "{\"digest\":\"" D1 "\",\"platform\":{\"os\":\"linux\",\"architecture\":"
                      "\"arm64\",\"variant\":\"v8\"}},"
                      "{\"digest\":\"" D2 "\",\"platform\":{\"os\":\"linux\",\"architecture\":"
                      "\"amd64\"}}]}";
    manifest_t *man = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(manifest_parse(idx, strlen(idx), NULL, &man, &err), 0);
    assert_true(man->is_index);
    manifest_free(man);
    char *d = NULL;
    assert_int_equal(manifest_pick_platform(idx, strlen(idx), "linux", "amd64", "", &d, &err), 0);
    assert_string_equal(d, D2);
    free(d);
    assert_int_equal(manifest_pick_platform(idx, strlen(idx), "linux", "arm64", "v8", &d, &err), 0);
    assert_string_equal(d, D1);
    free(d);
    assert_int_equal(manifest_pick_platform(idx, strlen(idx), "linux", "s390x", "", &d, &err), -1);
    assert_int_equal(err.status, ENOTSUP);
}

static void test_config_parse(void **state)
{
    const char *c = "{\"config\":{\"Env\":[\"A=1\"],\"Entrypoint\":[\"/e\"],\"Cmd\":null,"
                    "\"User\":\"1000:1000\",\"WorkingDir\":\"/w\",\"StopSignal\":\"SIGQUIT\","
                    "\"ExposedPorts\":{\"80/tcp\":{}},\"Labels\":{\"k\":\"v\"}},"
                    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"" D2 "\"]}}";
    image_config_t cfg;
    char **diffs = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(image_config_parse(c, strlen(c), &cfg, &diffs, &err), 0);
    assert_string_equal(cfg.env[0], "A=1");
    assert_true(cfg.entrypoint_set);
    assert_string_equal(cfg.entrypoint[0], "/e");
    assert_false(cfg.cmd_set);
    assert_null(cfg.cmd[0]);
    assert_string_equal(cfg.user, "1000:1000");
    assert_string_equal(cfg.working_dir, "/w");
    assert_string_equal(cfg.stop_signal, "SIGQUIT");
    assert_string_equal(cfg.exposed_ports[0], "80/tcp");
    assert_int_equal(cfg.n_labels, 1);
    assert_string_equal(cfg.label_values[0], "v");
    assert_string_equal(diffs[1], D2);
    strv_free(diffs);
    image_config_clear(&cfg);
    const char *bad = "{\"rootfs\":{\"diff_ids\":[\"nope\"]}}";
    assert_int_equal(image_config_parse(bad, strlen(bad), &cfg, NULL, &err), -1);
    assert_int_equal(err.status, EBADMSG);
}

/* ---- auth helpers ------------------------------------------------------------ */

static void test_challenge_parse(void **state)
{
    char *scheme = NULL;
    json_t *p = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(registry_parse_challenge("Bearer realm=\"https://auth.example/token\",service="
                                              "\"reg.example\",scope=\"repository:a/b:pull,push\"",
                                              &scheme, &p, &err),
                     0);
    assert_string_equal(scheme, "bearer");
    assert_string_equal(json_string_value(json_object_get(p, "realm")),
                        "https://auth.example/token");
    assert_string_equal(json_string_value(json_object_get(p, "scope")), "repository:a/b:pull,push");
    free(scheme);
    json_decref(p);
    assert_int_equal(registry_parse_challenge("Basic realm=x", &scheme, &p, &err), 0);
    assert_string_equal(scheme, "basic");
    assert_string_equal(json_string_value(json_object_get(p, "realm")), "x");
    free(scheme);
    json_decref(p);
}

static void test_decode_auth_and_file(void **state)
{
    char *u = NULL, *p = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(registry_decode_auth("dXNlcjpwYTpzcw==", &u, &p, &err), 0); /* user:pa:ss */
    assert_string_equal(u, "user");
    assert_string_equal(p, "pa:ss");
    free(u);
    free(p);
    assert_int_equal(registry_decode_auth("bm9jb2xvbg==", &u, &p, &err), -1); /* nocolon */
    assert_int_equal(err.status, EINVAL);

    cleanup_free char *dir = tmpdir();
    cleanup_free char *file = xasprintf("%s/auth.json", dir);
    const char *json = "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"YTpi\"},"
                       "\"quay.io\":{\"username\":\"q\",\"password\":\"w\"}}}";
    assert_int_equal(write_file_atomic(file, json, strlen(json), 0600, &err), 0);
    assert_int_equal(registry_auth_file_lookup(file, "docker.io", &u, &p, &err), 0);
    assert_string_equal(u, "a");
    assert_string_equal(p, "b");
    free(u);
    free(p);
    assert_int_equal(registry_auth_file_lookup(file, "quay.io", &u, &p, &err), 0);
    assert_string_equal(u, "q");
    free(u);
    free(p);
    assert_int_equal(registry_auth_file_lookup(file, "other.io", &u, &p, &err), 0);
    assert_null(u);
    rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_table),
        cmocka_unit_test(test_reference_parts),
        cmocka_unit_test(test_digest_and_chain_id),
        cmocka_unit_test(test_content_verified_ingest),
        cmocka_unit_test(test_unpack_dotdot_is_confined),
        cmocka_unit_test(test_unpack_symlink_escape_refused),
        cmocka_unit_test(test_unpack_relative_symlink_escape_refused),
        cmocka_unit_test(test_unpack_symlink_replaced_not_followed),
        cmocka_unit_test(test_unpack_checked_parent_replaced),
        cmocka_unit_test(test_unpack_whiteouts_and_metadata),
        cmocka_unit_test(test_unpack_xattrs_filtered),
        cmocka_unit_test(test_unpack_limits),
        cmocka_unit_test(test_unpack_diff_id_checked),
        cmocka_unit_test(test_unpack_garbage_refused),
        cmocka_unit_test(test_manifest_parse),
        cmocka_unit_test(test_index_pick_platform),
        cmocka_unit_test(test_config_parse),
        cmocka_unit_test(test_challenge_parse),
        cmocka_unit_test(test_decode_auth_and_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
