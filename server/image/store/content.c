/* The content store: blobs by digest under <root>/blobs/sha256/.
 *
 * Nothing unverified is ever visible there: a download is written into
 * <root>/blobs/ingest/, hashed and counted on the way, and renamed into place
 * only when its digest and size match. A crash leaves at most a file in
 * ingest/, which image_gc_sweep_tmp() removes on the next start.
 *
 * Durability: a blob is not fsynced on its own; the pull that wrote it calls
 * syncfs() before its record names it (puller.c). A blob renamed into place
 * but not yet flushed when the machine crashed is named by no record, and the
 * GC at start removes it like any unreferenced blob. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/image/store/store-internal.h"
#include "server/testhooks.h"

struct content_writer {
    int fd;
    char *tmp_path;
    char *final_path;
    char *digest;
    int64_t expected;
    uint64_t written;
    image_hasher_t *hasher;
    content_observer_fn observe;
    void *observe_data;
};

char *content_blob_path(const char *root, const char *digest)
{
    const char *hex = strchr(digest, ':');
    return xasprintf("%s/blobs/sha256/%s", root, hex ? hex + 1 : digest);
}

bool content_has(const char *root, const char *digest)
{
    cleanup_free char *p = content_blob_path(root, digest);
    return access(p, F_OK) == 0;
}

int content_writer_open(const char *root, const char *digest, int64_t expected_size,
                        content_writer_t **ret, cri_error_t *err)
{
    if (!image_digest_valid(digest))
        return cri_error_set(err, EINVAL, "unsupported digest `%s`", digest);
    cleanup_free char *tmp = xasprintf("%s/blobs/ingest/%.19s-XXXXXX", root, digest + 7);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return cri_error_make(err, errno, "create ingest file `%s`", tmp);
    content_writer_t *w = xcalloc(1, sizeof(*w));
    w->fd = fd;
    w->tmp_path = TAKE_PTR(tmp);
    w->final_path = content_blob_path(root, digest);
    w->digest = xstrdup(digest);
    w->expected = expected_size;
    w->hasher = image_hasher_new();
    *ret = w;
    return 0;
}

int content_writer_write(content_writer_t *w, const void *data, size_t len, cri_error_t *err)
{
    if (w->expected >= 0 && w->written + len > (uint64_t)w->expected)
        return cri_error_set(err, EBADMSG, "blob `%s`: more data than the %lld bytes announced",
                             w->digest, (long long)w->expected);
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(w->fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cri_error_make(err, errno, "write blob `%s`", w->digest);
        p += n;
        left -= (size_t)n;
    }
    image_hasher_update(w->hasher, data, len);
    if (w->written == 0 && len > 0)
        testhook_failpoint("pull.mid_fetch");
    w->written += len;
    if (w->observe)
        w->observe(w->observe_data, w->written, false);
    return 0;
}

void content_writer_observe(content_writer_t *w, content_observer_fn fn, void *data)
{
    w->observe = fn;
    w->observe_data = data;
}

int content_writer_fd(const content_writer_t *w)
{
    return w->fd;
}

uint64_t content_writer_written(const content_writer_t *w)
{
    return w->written;
}

int content_writer_reset(content_writer_t *w, cri_error_t *err)
{
    if (ftruncate(w->fd, 0) < 0 || lseek(w->fd, 0, SEEK_SET) < 0)
        return cri_error_make(err, errno, "reset ingest file `%s`", w->tmp_path);
    image_hasher_free(w->hasher);
    w->hasher = image_hasher_new();
    bool had = w->written > 0;
    w->written = 0;
    if (w->observe && had)
        w->observe(w->observe_data, 0, true);
    return 0;
}

static int sink_write(void *data, const void *buf, size_t len, cri_error_t *err)
{
    return content_writer_write(data, buf, len, err);
}

static int sink_reset(void *data, cri_error_t *err)
{
    return content_writer_reset(data, err);
}

registry_sink_t content_writer_sink(content_writer_t *w)
{
    return (registry_sink_t){.write = sink_write, .reset = sink_reset, .data = w};
}

int content_writer_commit(content_writer_t *w, cri_error_t *err)
{
    char got[IMAGE_DIGEST_LEN + 1];
    image_hasher_final(w->hasher, got);
    if (w->expected >= 0 && w->written != (uint64_t)w->expected)
        return cri_error_set(err, EBADMSG, "blob `%s`: size mismatch: got %llu bytes, want %lld",
                             w->digest, (unsigned long long)w->written, (long long)w->expected);
    if (strcmp(got, w->digest) != 0)
        return cri_error_set(err, EBADMSG, "blob `%s`: digest mismatch: got %s", w->digest, got);
    /* no fsync: the pull's syncfs() before its record flushes the blob (a
     * blob no record names after a crash is collected by the GC at start);
     * writeback starts now so that syncfs() finds less to write */
    (void)sync_file_range(w->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    if (fchmod(w->fd, 0644) < 0)
        return cri_error_make(err, errno, "chmod blob `%s`", w->digest);
    testhook_failpoint("pull.before_blob_rename");
    if (rename(w->tmp_path, w->final_path) < 0)
        return cri_error_make(err, errno, "rename blob into `%s`", w->final_path);
    testhook_failpoint("pull.after_blob_rename");
    free(w->tmp_path);
    w->tmp_path = NULL;
    return 0;
}

void content_writer_free(content_writer_t *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp_path)
        unlink(w->tmp_path);
    free(w->tmp_path);
    free(w->final_path);
    free(w->digest);
    image_hasher_free(w->hasher);
    free(w);
}

int content_put(const char *root, const char *digest, const void *data, size_t len,
                cri_error_t *err)
{
    content_writer_t *w = NULL;
    if (content_writer_open(root, digest, (int64_t)len, &w, err) < 0)
        return -1;
    int r = content_writer_write(w, data, len, err);
    if (r == 0)
        r = content_writer_commit(w, err);
    content_writer_free(w);
    return r;
}

int content_get(const char *root, const char *digest, size_t max, char **ret, size_t *ret_len,
                cri_error_t *err)
{
    cleanup_free char *path = content_blob_path(root, digest);
    cleanup_free char *data = NULL;
    size_t len = 0;
    if (read_file(path, max, &data, &len, err) < 0)
        return -1;
    char got[IMAGE_DIGEST_LEN + 1];
    image_digest_of(data, len, got);
    if (strcmp(got, digest) != 0)
        return cri_error_set(err, EBADMSG, "blob `%s` is corrupt: it hashes to %s", digest, got);
    *ret = TAKE_PTR(data);
    if (ret_len)
        *ret_len = len;
    return 0;
}
