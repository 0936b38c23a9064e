/* Layer unpack with libarchive: gzip, zstd or plain tar into one directory.
 *
 * One pass: an outer reader ("raw" format, every filter) decompresses the
 * blob; its bytes are hashed (the diff id) and fed to an inner tar reader
 * whose entries go to archive_write_disk.
 *
 * Path safety. Every name is cleaned lexically inside the layer ("/a/../../b"
 * becomes "b"; a leading '/' is dropped), and before anything is written the
 * existing components of its parent are checked with lstat(): an entry whose
 * parent is a symlink is refused, so no write ever goes through a link, and
 * whatever is in the way of the final component is removed first. Hard link
 * targets get the same treatment. Only this code writes into the temporary
 * layer directory, so the checks cannot race.
 *
 * Xattrs: trusted.* ones in the tar are dropped (counted in the stats), so a
 * layer cannot hand overlayfs a redirect, metacopy or opaque marker of its
 * own; the only trusted.overlay.opaque on disk is the one this code sets for
 * an OCI `.wh..wh..opq`. Limits: the uncompressed stream size, the number of
 * entries and a deadline (checked per read) end the unpack early. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/image/store/store-internal.h"
#include "server/testhooks.h"

#define WH_PREFIX ".wh."
#define WH_META_PREFIX ".wh..wh."
#define WH_OPAQUE ".wh..wh..opq"
#define UNPACK_BUF ((size_t)128 * 1024)
#define UNPACK_BLOB_BUF ((size_t)256 * 1024)

typedef struct unpack_src {
    struct archive *outer;
    image_hasher_t *hasher;
    uint64_t size;
    char *buf;
    bool failed;
    const unpack_limits_t *limits;
    cri_error_t limit_err; /* a limit was hit: this error wins over libarchive's */
} unpack_src_t;

/* Sets src->limit_err when the stream outgrew its cap or the deadline passed. */
static bool src_over_limit(unpack_src_t *src)
{
    const unpack_limits_t *l = src->limits;
    if (l->max_bytes && src->size > l->max_bytes)
        cri_error_set(&src->limit_err, EINVAL,
                      "layer unpacks to more than %" PRIu64
                      " bytes (image.max_layer_unpacked_bytes)",
                      l->max_bytes);
    else if (l->deadline_ms && image_now_ms() >= l->deadline_ms)
        cri_error_set(&src->limit_err, ETIMEDOUT, "pull deadline exceeded while unpacking");
    return src->limit_err.status != 0;
}

static la_ssize_t src_read(struct archive *a, void *data, const void **ret_buf)
{
    unpack_src_t *src = data;
    la_ssize_t n = archive_read_data(src->outer, src->buf, UNPACK_BUF);
    if (n < 0) {
        src->failed = true;
        archive_set_error(a, EIO, "decompress: %s", archive_error_string(src->outer));
        return -1;
    }
    image_hasher_update(src->hasher, src->buf, (size_t)n);
    src->size += (uint64_t)n;
    if (src_over_limit(src)) {
        src->failed = true;
        archive_set_error(a, src->limit_err.status, "%s", src->limit_err.msg);
        return -1;
    }
    *ret_buf = src->buf;
    return n;
}

/* Drops the trusted.* xattrs of e: overlayfs reads trusted.overlay.* of lower
 * dirs (redirect, metacopy, opaque) and a layer must not forge them; the only
 * one a layer gets is the opaque marker set_opaque() writes for OCI opaque
 * whiteouts. user.* and security.* (file capabilities) are kept. Returns how
 * many were dropped. */
static uint64_t drop_trusted_xattrs(struct archive_entry *e)
{
    int n = archive_entry_xattr_reset(e);
    if (n <= 0)
        return 0;
    struct {
        char *name;
        void *value;
        size_t size;
    } *keep = xcalloc((size_t)n, sizeof(*keep));
    size_t k = 0;
    uint64_t dropped = 0;
    const char *name;
    const void *value;
    size_t size;
    cleanup_strv char **gone = xcalloc(1, sizeof(char *));
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
        if (strncmp(name, "trusted.", 8) == 0) {
            /* pax headers may carry one twice (SCHILY. and LIBARCHIVE.) */
            dropped += image_strv_add(&gone, name) ? 1 : 0;
            continue;
        }
        keep[k].name = xstrdup(name);
        keep[k].value = xmalloc(size ? size : 1);
        memcpy(keep[k].value, value, size);
        keep[k++].size = size;
    }
    if (dropped)
        archive_entry_xattr_clear(e);
    for (size_t i = 0; i < k; i++) {
        if (dropped)
            archive_entry_xattr_add_entry(e, keep[i].name, keep[i].value, keep[i].size);
        free(keep[i].name);
        free(keep[i].value);
    }
    free(keep);
    return dropped;
}

/* Cleans name into a relative path inside the layer: no "", "." or ".."
 * components, no leading '/'. Returns "" for the layer root. Caller frees. */
static char *clean_path(const char *name)
{
    size_t n = strlen(name);
    char *out = xmalloc(n + 1);
    size_t len = 0;
    const char *p = name;
    while (*p) {
        size_t c = strcspn(p, "/");
        if (c == 0 || (c == 1 && p[0] == '.')) {
            /* skip */
        } else if (c == 2 && p[0] == '.' && p[1] == '.') {
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--; /* the '/' */
        } else {
            if (len > 0)
                out[len++] = '/';
            memcpy(out + len, p, c);
            len += c;
        }
        p += c;
        if (*p == '/')
            p++;
    }
    out[len] = '\0';
    return out;
}

/* Refuses rel when an existing component of its parent is not a directory
 * (a symlink, above all). */
static int check_parents(const char *dir, const char *rel, cri_error_t *err)
{
    cleanup_free char *path = xasprintf("%s/%s", dir, rel);
    size_t base = strlen(dir) + 1;
    for (char *p = path + base; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        struct stat st;
        int r = lstat(path, &st);
        *p = '/';
        if (r < 0 && errno == ENOENT)
            return 0; /* the rest is created as plain directories */
        if (r < 0)
            return cri_error_make(err, errno, "lstat in layer");
        if (!S_ISDIR(st.st_mode))
            return cri_error_set(err, EPERM,
                                 "refused tar entry `%s`: its parent is not a directory", rel);
    }
    return 0;
}

/* The last parent dir (relative to the layer) known to be a chain of real
 * directories: entries of one directory come one after the other in a tar,
 * so most skip the lstat() of each parent component. Only this code writes
 * into the layer dir, so the knowledge holds until an entry replaces or
 * removes that dir or one above it (parents_forget()). */
typedef struct parents_ok {
    char *rel; /* NULL: none known */
} parents_ok_t;

static void parents_ok_clear(parents_ok_t *ok)
{
    free(ok->rel);
    ok->rel = NULL;
}

/* rel is about to be replaced or removed. */
static void parents_forget(parents_ok_t *ok, const char *rel)
{
    size_t n = strlen(rel);
    if (ok->rel && strncmp(ok->rel, rel, n) == 0 && (ok->rel[n] == '\0' || ok->rel[n] == '/'))
        parents_ok_clear(ok);
}

/* rel was written: its parents (and rel itself when it is a directory) are
 * real directories now. */
static void parents_learn(parents_ok_t *ok, const char *rel, bool is_dir)
{
    const char *slash = strrchr(rel, '/');
    free(ok->rel);
    ok->rel = is_dir ? xstrdup(rel) : xstrndup(rel, slash ? (size_t)(slash - rel) : 0);
}

/* check_parents() unless rel's parent is the one known to be fine. */
static int check_parents_cached(const parents_ok_t *ok, const char *dir, const char *rel,
                                cri_error_t *err)
{
    const char *slash = strrchr(rel, '/');
    size_t plen = slash ? (size_t)(slash - rel) : 0;
    if (!slash || (ok->rel && strlen(ok->rel) == plen && strncmp(ok->rel, rel, plen) == 0))
        return 0;
    return check_parents(dir, rel, err);
}

/* Removes what is at path unless both it and the new entry are directories. */
static int clear_target(const char *path, bool entry_is_dir, cri_error_t *err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : cri_error_make(err, errno, "lstat `%s`", path);
    if (S_ISDIR(st.st_mode) && entry_is_dir)
        return 0;
    if (S_ISDIR(st.st_mode))
        return rm_rf(path, err);
    if (unlink(path) < 0 && errno != ENOENT)
        return cri_error_make(err, errno, "unlink `%s`", path);
    return 0;
}

static int make_parents(const char *dir, const char *rel, cri_error_t *err)
{
    cleanup_free char *parent = xasprintf("%s/%s", dir, rel);
    char *slash = strrchr(parent, '/');
    *slash = '\0';
    return mkdir_p(parent, 0755, err);
}

/* `.wh.<name>` -> a 0/0 char device named <name>; `.wh..wh..opq` -> remember
 * the directory for trusted.overlay.opaque. Other `.wh..wh.` names (aufs
 * bookkeeping) are dropped. Returns 1 when the entry was a whiteout. */
static int handle_whiteout(const char *dir, const char *rel, char ***opaque, parents_ok_t *ok,
                           cri_error_t *err)
{
    const char *slash = strrchr(rel, '/');
    const char *base = slash ? slash + 1 : rel;
    if (!str_has_prefix(base, WH_PREFIX))
        return 0;
    size_t plen = slash ? (size_t)(slash - rel) : 0;
    cleanup_free char *parent = xstrndup(rel, plen);
    if (strcmp(base, WH_OPAQUE) == 0) {
        cleanup_free char *probe = xasprintf("%s/x", parent);
        if (check_parents(dir, plen ? probe : "x", err) < 0)
            return -1;
        cleanup_free char *pdir = xasprintf("%s/%s", dir, parent);
        if (mkdir_p(pdir, 0755, err) < 0)
            return -1;
        image_strv_add(opaque, parent);
        return 1;
    }
    if (str_has_prefix(base, WH_META_PREFIX))
        return 1;
    const char *name = base + strlen(WH_PREFIX);
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return cri_error_set(err, EPERM, "refused whiteout `%s`", rel);
    cleanup_free char *target = plen ? xasprintf("%s/%s", parent, name) : xstrdup(name);
    cleanup_free char *path = xasprintf("%s/%s", dir, target);
    parents_forget(ok, target);
    if (check_parents(dir, target, err) < 0 || clear_target(path, false, err) < 0 ||
        make_parents(dir, target, err) < 0)
        return -1;
    if (mknod(path, S_IFCHR | 0000, makedev(0, 0)) < 0)
        return cri_error_make(err, errno, "mknod whiteout `%s`", target);
    return 1;
}

static int write_entry(struct archive *in, struct archive *out, struct archive_entry *e,
                       const char *dir, char ***opaque, parents_ok_t *ok, unpack_stats_t *stats,
                       cri_error_t *err)
{
    cleanup_free char *rel = clean_path(archive_entry_pathname(e));
    if (!rel[0])
        return 0; /* the layer root itself */
    int wh = handle_whiteout(dir, rel, opaque, ok, err);
    if (wh != 0)
        return wh < 0 ? -1 : 0;
    parents_forget(ok, rel);
    if (check_parents_cached(ok, dir, rel, err) < 0)
        return -1;
    cleanup_free char *path = xasprintf("%s/%s", dir, rel);
    bool is_dir = archive_entry_filetype(e) == AE_IFDIR;
    if (clear_target(path, is_dir, err) < 0)
        return -1;
    archive_entry_copy_pathname(e, path);
    const char *link = archive_entry_hardlink(e);
    if (link) {
        cleanup_free char *lrel = clean_path(link);
        if (!lrel[0] || check_parents(dir, lrel, err) < 0)
            return err->status ? -1 : cri_error_set(err, EPERM, "refused hard link to `%s`", link);
        cleanup_free char *lpath = xasprintf("%s/%s", dir, lrel);
        archive_entry_copy_hardlink(e, lpath);
    }
    stats->dropped_xattrs += drop_trusted_xattrs(e);
    if (archive_write_header(out, e) < ARCHIVE_WARN)
        return cri_error_set(err, archive_errno(out) > 0 ? archive_errno(out) : EIO,
                             "extract `%s`: %s", rel, archive_error_string(out));
    const void *buf;
    size_t size;
    la_int64_t off;
    int r;
    while ((r = archive_read_data_block(in, &buf, &size, &off)) == ARCHIVE_OK)
        if (archive_write_data_block(out, buf, size, off) < ARCHIVE_WARN)
            return cri_error_set(err, archive_errno(out) > 0 ? archive_errno(out) : EIO,
                                 "write `%s`: %s", rel, archive_error_string(out));
    if (r != ARCHIVE_EOF)
        return cri_error_set(err, EBADMSG, "read `%s`: %s", rel, archive_error_string(in));
    if (archive_write_finish_entry(out) < ARCHIVE_WARN)
        return cri_error_set(err, archive_errno(out) > 0 ? archive_errno(out) : EIO,
                             "finish `%s`: %s", rel, archive_error_string(out));
    parents_learn(ok, rel, is_dir && !link);
    return 0;
}

static int set_opaque(const char *dir, char **opaque, cri_error_t *err)
{
    for (char **p = opaque; p && *p; p++) {
        cleanup_free char *path = **p ? xasprintf("%s/%s", dir, *p) : xstrdup(dir);
        if (lsetxattr(path, "trusted.overlay.opaque", "y", 1, 0) < 0)
            return cri_error_make(err, errno, "set opaque on `%s`", *p);
    }
    return 0;
}

static int extract_all(struct archive *in, struct archive *out, const char *dir, char ***opaque,
                       unpack_src_t *src, unpack_stats_t *stats, cri_error_t *err)
{
    struct archive_entry *e;
    int r;
    uint64_t max_entries = src->limits->max_entries;
    __attribute__((cleanup(parents_ok_clear))) parents_ok_t ok = {NULL};
    while ((r = archive_read_next_header(in, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        if (max_entries && ++stats->entries > max_entries)
            return cri_error_set(
                err, EINVAL, "layer has more than %" PRIu64 " entries (image.max_layer_entries)",
                max_entries);
        if (write_entry(in, out, e, dir, opaque, &ok, stats, err) < 0)
            return -1;
        testhook_failpoint("pull.mid_unpack");
    }
    if (r != ARCHIVE_EOF)
        return cri_error_set(err, EBADMSG, "read layer: %s", archive_error_string(in));
    if (archive_write_close(out) != ARCHIVE_OK)
        return cri_error_set(err, archive_errno(out) > 0 ? archive_errno(out) : EIO,
                             "finish layer: %s", archive_error_string(out));
    /* drain the stream (tar padding) so the diff id covers every byte */
    const void *buf;
    while (src_read(in, src, &buf) > 0)
        ;
    return src->failed ? cri_error_set(err, EBADMSG, "decompress layer: %s",
                                       archive_error_string(src->outer))
                       : 0;
}

static void archive_freep(struct archive **a)
{
    if (*a)
        archive_read_free(*a);
}

static void archive_write_freep(struct archive **a)
{
    if (*a)
        archive_write_free(*a);
}

/* No ARCHIVE_EXTRACT_UNLINK: clear_target() already removed whatever was in
 * the way, so libarchive's unlink() before each create would only fail. */
static struct archive *disk_writer(void)
{
    struct archive *out = archive_write_disk_new();
    archive_write_disk_set_options(out, ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM |
                                            ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR |
                                            ARCHIVE_EXTRACT_SECURE_NODOTDOT);
    return out;
}

/* The compressed blob, as the outer reader's callback wants it. */
typedef struct blob_in {
    const unpack_reader_t *rd;
    char *buf;
    cri_error_t err; /* the reader failed: this error wins over libarchive's */
} blob_in_t;

static la_ssize_t blob_read(struct archive *a, void *data, const void **ret_buf)
{
    blob_in_t *b = data;
    ssize_t n = b->rd->read(b->rd->data, b->buf, UNPACK_BLOB_BUF, &b->err);
    if (n < 0) {
        if (!b->err.status)
            cri_error_set(&b->err, EIO, "read layer blob");
        archive_set_error(a, b->err.status, "%s", b->err.msg);
        return -1;
    }
    *ret_buf = b->buf;
    return n;
}

static ssize_t file_read(void *data, void *buf, size_t len, cri_error_t *err)
{
    for (;;) {
        ssize_t n = read(*(int *)data, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? cri_error_make(err, errno, "read layer blob") : n;
    }
}

int unpack_layer(const char *blob_path, const char *dir, const char *diff_id,
                 const unpack_limits_t *limits, unpack_stats_t *ret_stats, cri_error_t *err)
{
    cleanup_close int fd = open(blob_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cri_error_make(err, errno, "open layer `%s`", blob_path);
    unpack_reader_t rd = {.read = file_read, .data = &fd};
    return unpack_layer_from(&rd, dir, diff_id, limits, ret_stats, err);
}

int unpack_layer_from(const unpack_reader_t *rd, const char *dir, const char *diff_id,
                      const unpack_limits_t *limits, unpack_stats_t *ret_stats, cri_error_t *err)
{
    static const unpack_limits_t no_limits = {0};
    unpack_stats_t stats = {0};
    __attribute__((cleanup(archive_freep))) struct archive *outer = archive_read_new();
    __attribute__((cleanup(archive_freep))) struct archive *in = archive_read_new();
    __attribute__((cleanup(archive_write_freep))) struct archive *out = disk_writer();
    cleanup_free char *buf = xmalloc(UNPACK_BUF);
    cleanup_free char *blob_buf = xmalloc(UNPACK_BLOB_BUF);
    blob_in_t bin = {.rd = rd, .buf = blob_buf, .err = CRI_ERROR_INIT};
    cleanup_strv char **opaque = xcalloc(1, sizeof(char *));
    unpack_src_t src = {.outer = outer,
                        .hasher = image_hasher_new(),
                        .buf = buf,
                        .limits = limits ? limits : &no_limits,
                        .limit_err = CRI_ERROR_INIT};

    /* only the layer compressions OCI defines, all in-process: filter_all
     * would let a blob's magic bytes make libarchive run external programs
     * (lrzip, lzop, grzip) */
    archive_read_support_filter_gzip(outer);
    archive_read_support_filter_zstd(outer);
    archive_read_support_format_raw(outer);
    archive_read_support_format_tar(in);
    struct archive_entry *raw;
    int r = -1;
    if (archive_read_open(outer, &bin, NULL, blob_read, NULL) != ARCHIVE_OK ||
        archive_read_next_header(outer, &raw) != ARCHIVE_OK)
        cri_error_set(err, EBADMSG, "open layer: %s", archive_error_string(outer));
    else if (archive_read_open(in, &src, NULL, src_read, NULL) != ARCHIVE_OK)
        cri_error_set(err, EBADMSG, "open layer tar: %s", archive_error_string(in));
    else
        r = extract_all(in, out, dir, &opaque, &src, &stats, err);
    if (r < 0 && (bin.err.status || src.limit_err.status)) { /* libarchive saw a failed read */
        cri_error_clear(err);
        *err = bin.err.status ? bin.err : src.limit_err;
    }
    if (r == 0)
        r = set_opaque(dir, opaque, err);
    char got[IMAGE_DIGEST_LEN + 1];
    image_hasher_final(src.hasher, got);
    image_hasher_free(src.hasher);
    if (r < 0)
        return -1;
    if (diff_id && strcmp(got, diff_id) != 0)
        return cri_error_set(err, EBADMSG, "layer diff id mismatch: got %s, want %s", got, diff_id);
    stats.size = src.size;
    if (ret_stats)
        *ret_stats = stats;
    return 0;
}
