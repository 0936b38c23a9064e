/* Layers of a pull: download (when the blob is missing) and unpack in one
 * pass into layers/tmp/, rename to layers/<chain hex>/.
 *
 * Up to IMAGE_PULL_PARALLEL layers are fetched at once by helper threads.
 * A layer whose directory exists is skipped (neither downloaded nor
 * unpacked). s->inflight lists the layers being fetched by any pull: a second
 * pull that needs one waits for the first instead of fetching it again. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "conf/conf.h"
#include "server/image/store/store-internal.h"
#include "server/testhooks.h"

struct inflight {
    char *chain_id;
    bool done;
    int status; /* 0 ok, else errno */
    char msg[CRI_ERROR_MSG_MAX];
    int refs;
    inflight_t *next;
};

typedef struct fetch_run {
    image_store_t *s;
    registry_client_t *c;
    const fetch_layer_job_t *jobs;
    size_t n;
    pthread_mutex_t lock;
    size_t next;
    bool failed;
    cri_error_t err;
} fetch_run_t;

static bool dir_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Marks layers/tmp/ as the top of directory hierarchies (FS_TOPDIR_FL,
 * `chattr +T`), as each layer is: ext4's Orlov allocator then spreads the
 * staging dirs made in it over block groups with free inodes and few dirs,
 * instead of packing every layer into the groups of the store's parent dirs.
 * Besides locality, this matters on ext4 without a journal: an inode
 * allocation there skips the group's inodes freed in the last 30 s, one
 * buffer-cache lookup each, so 40,000 files created in groups where others
 * just deleted files cost ~5 times the CPU (bench/pull_bench.py). Best
 * effort: a filesystem without the flag just does not get it. */
static void staging_spread(const char *root)
{
    cleanup_free char *p = xasprintf("%s/layers/tmp", root);
    cleanup_close int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int flags = 0;
    if (fd < 0 || ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0 || (flags & FS_TOPDIR_FL))
        return;
    flags |= FS_TOPDIR_FL;
    (void)ioctl(fd, FS_IOC_SETFLAGS, &flags);
}

/* Unpacks layer j into a new staging dir under layers/tmp/ (*ret_tmp), from
 * rd (a download in progress) or, when rd is NULL, from its blob. */
static int unpack_staged(image_store_t *s, const fetch_layer_job_t *j, const unpack_reader_t *rd,
                         int64_t deadline_ms, char **ret_tmp, cri_error_t *err)
{
    staging_spread(s->root);
    cleanup_free char *tmp = xasprintf("%s/layers/tmp/%.12s-XXXXXX", s->root, j->chain_id + 7);
    if (!mkdtemp(tmp))
        return cri_error_make(err, errno, "create `%s`", tmp);
    unpack_limits_t limits = {.max_bytes = s->conf->image.max_layer_unpacked_bytes,
                              .max_entries = s->conf->image.max_layer_entries,
                              .deadline_ms = deadline_ms};
    unpack_stats_t stats = {0};
    int r;
    if (rd) {
        r = unpack_layer_from(rd, tmp, j->diff_id, &limits, &stats, err);
    } else {
        cleanup_free char *blob = content_blob_path(s->root, j->digest);
        r = unpack_layer(blob, tmp, j->diff_id, &limits, &stats, err);
    }
    if (r < 0) {
        cri_error_t ignored = CRI_ERROR_INIT;
        rm_rf(tmp, &ignored);
        return cri_error_wrap(err, "unpack layer `%s`", j->digest);
    }
    if (stats.dropped_xattrs)
        log_warn("layer %s: dropped %" PRIu64 " trusted.* xattrs (overlay metadata a layer "
                 "may not set), ignoring",
                 j->digest, stats.dropped_xattrs);
    *ret_tmp = TAKE_PTR(tmp);
    return 0;
}

/* Renames the staging dir tmp to final; removes it on failure. */
static int commit_staged(const fetch_layer_job_t *j, const char *tmp, const char *final,
                         cri_error_t *err)
{
    int r = 0;
    if (chmod(tmp, 0755) < 0)
        r = cri_error_make(err, errno, "chmod `%s`", tmp);
    if (r == 0)
        testhook_failpoint("pull.before_layer_rename");
    if (r == 0 && rename(tmp, final) < 0) /* flushed by the pull's syncfs() */
        r = cri_error_make(err, errno, "rename layer into `%s`", final);
    if (r == 0)
        testhook_failpoint("pull.after_layer_rename");
    if (r < 0) {
        cri_error_t ignored = CRI_ERROR_INIT;
        rm_rf(tmp, &ignored);
        return cri_error_wrap(err, "unpack layer `%s`", j->digest);
    }
    return 0;
}

/* One layer download that the unpack reads while it is written: a thread
 * runs the download into the ingest file (hashed there, renamed into
 * blobs/sha256/ when digest and size match); the unpack pread()s the file
 * behind it, still in the page cache, and sees its end only once the blob
 * is verified. A retry that throws written bytes away (restarted) makes the
 * unpack give up; it starts again from the blob once the download is over. */
typedef struct layer_stream {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    registry_client_t *c;
    const fetch_layer_job_t *j;
    content_writer_t *w;
    int fd;         /* the ingest file */
    uint64_t avail; /* bytes written */
    uint64_t off;   /* bytes read (the unpack's thread only) */
    bool restarted;
    bool ended; /* the download is over: dl_r, dl_err */
    int dl_r;
    cri_error_t dl_err;
} layer_stream_t;

static void stream_observe(void *data, uint64_t written, bool restarted)
{
    layer_stream_t *ls = data;
    pthread_mutex_lock(&ls->lock);
    if (restarted)
        ls->restarted = true;
    else
        ls->avail = written;
    pthread_cond_broadcast(&ls->cond);
    pthread_mutex_unlock(&ls->lock);
}

static ssize_t stream_read(void *data, void *buf, size_t len, cri_error_t *err)
{
    layer_stream_t *ls = data;
    pthread_mutex_lock(&ls->lock);
    while (!ls->restarted && !ls->ended && ls->off == ls->avail)
        pthread_cond_wait(&ls->cond, &ls->lock);
    bool restarted = ls->restarted, failed = ls->ended && ls->dl_r < 0;
    uint64_t avail = ls->avail;
    pthread_mutex_unlock(&ls->lock);
    if (restarted)
        return cri_error_set(err, ECANCELED, "the download restarted");
    if (failed)
        return cri_error_set(err, ECANCELED, "the download failed");
    if (ls->off == avail)
        return 0; /* ended, verified */
    size_t n = avail - ls->off < len ? (size_t)(avail - ls->off) : len;
    ssize_t got;
    do
        got = pread(ls->fd, buf, n, (off_t)ls->off);
    while (got < 0 && errno == EINTR);
    if (got <= 0)
        return cri_error_make(err, got < 0 ? errno : EIO, "read ingest file");
    ls->off += (uint64_t)got;
    return got;
}

static void *stream_download(void *arg)
{
    layer_stream_t *ls = arg;
    cri_error_t e = CRI_ERROR_INIT;
    registry_sink_t sink = content_writer_sink(ls->w);
    int r = registry_get_blob(ls->c, ls->j->digest, &sink, &e);
    if (r == 0)
        r = content_writer_commit(ls->w, &e);
    if (r < 0)
        cri_error_wrap(&e, "layer `%s` from `%s`", ls->j->digest, registry_client_host(ls->c));
    pthread_mutex_lock(&ls->lock);
    ls->ended = true;
    ls->dl_r = r;
    ls->dl_err = e;
    pthread_cond_broadcast(&ls->cond);
    pthread_mutex_unlock(&ls->lock);
    return NULL;
}

/* Downloads layer j and unpacks it while it arrives (*ret_tmp: the staging
 * dir). The download's error wins (a corrupt blob is reported as a digest
 * mismatch, not as the broken gzip the unpack saw first). */
static int stream_layer(image_store_t *s, registry_client_t *c, const fetch_layer_job_t *j,
                        int64_t deadline_ms, char **ret_tmp, cri_error_t *err)
{
    layer_stream_t ls = {.c = c, .j = j, .dl_err = CRI_ERROR_INIT};
    if (content_writer_open(s->root, j->digest, j->size, &ls.w, err) < 0)
        return cri_error_wrap(err, "layer `%s` from `%s`", j->digest, registry_client_host(c));
    ls.fd = content_writer_fd(ls.w);
    pthread_mutex_init(&ls.lock, NULL);
    pthread_cond_init(&ls.cond, NULL);
    content_writer_observe(ls.w, stream_observe, &ls);
    pthread_t tid;
    bool threaded = pthread_create(&tid, NULL, stream_download, &ls) == 0;
    if (!threaded)
        stream_download(&ls); /* the unpack then reads a finished download */
    unpack_reader_t rd = {.read = stream_read, .data = &ls};
    cri_error_t uerr = CRI_ERROR_INIT;
    cleanup_free char *tmp = NULL;
    int r = unpack_staged(s, j, &rd, deadline_ms, &tmp, &uerr);
    if (threaded)
        pthread_join(tid, NULL);
    content_writer_free(ls.w);
    pthread_cond_destroy(&ls.cond);
    pthread_mutex_destroy(&ls.lock);
    if (ls.dl_r < 0) {
        cri_error_t ignored = CRI_ERROR_INIT;
        if (r == 0) /* cannot happen: the unpack ends after the download */
            rm_rf(tmp, &ignored);
        cri_error_clear(&uerr);
        *err = ls.dl_err;
        return -1;
    }
    if (r < 0 && ls.restarted) {
        log_info("layer %s: the download restarted, unpacking it again from the blob", j->digest);
        cri_error_clear(&uerr);
        return unpack_staged(s, j, NULL, deadline_ms, ret_tmp, err);
    }
    if (r < 0) {
        *err = uerr;
        return -1;
    }
    *ret_tmp = TAKE_PTR(tmp);
    return 0;
}

/* Layer j unpacked into final: streamed from the registry, or from the blob
 * when it is already in the store. */
static int fetch_layer(image_store_t *s, registry_client_t *c, const fetch_layer_job_t *j,
                       const char *final, cri_error_t *err)
{
    int64_t deadline_ms = registry_client_deadline(c);
    cleanup_free char *tmp = NULL;
    int r = content_has(s->root, j->digest) ? unpack_staged(s, j, NULL, deadline_ms, &tmp, err)
                                            : stream_layer(s, c, j, deadline_ms, &tmp, err);
    if (r == 0)
        r = commit_staged(j, tmp, final, err);
    if (r < 0 && err->status == EBADMSG) { /* a corrupt blob must not be reused */
        cleanup_free char *p = content_blob_path(s->root, j->digest);
        unlink(p);
    }
    return r;
}

/* Registers interest in chain_id; *ret_owner tells whether we fetch it. */
static inflight_t *inflight_join(image_store_t *s, const char *chain_id, bool *ret_owner)
{
    for (inflight_t *f = s->inflight; f; f = f->next)
        if (strcmp(f->chain_id, chain_id) == 0) {
            f->refs++;
            *ret_owner = false;
            return f;
        }
    inflight_t *f = xcalloc(1, sizeof(*f));
    f->chain_id = xstrdup(chain_id);
    f->refs = 1;
    f->next = s->inflight;
    s->inflight = f;
    *ret_owner = true;
    return f;
}

/* s->lock held. */
static void inflight_leave(image_store_t *s, inflight_t *f)
{
    if (--f->refs > 0)
        return;
    for (inflight_t **p = &s->inflight; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            break;
        }
    free(f->chain_id);
    free(f);
}

/* Waits (s->lock held) until f is done or the deadline (image_now_ms(); 0 =
 * none) passes: f's status, or ETIMEDOUT. */
static int wait_inflight(image_store_t *s, inflight_t *f, int64_t deadline_ms)
{
    while (!f->done) {
        if (!deadline_ms) {
            pthread_cond_wait(&s->cond, &s->lock);
            continue;
        }
        int64_t left = deadline_ms - image_now_ms();
        if (left <= 0)
            return ETIMEDOUT;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts); /* s->cond uses the default clock */
        ts.tv_sec += (time_t)(left / 1000);
        ts.tv_nsec += (long)(left % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
    }
    return f->status;
}

static int fetch_one(image_store_t *s, registry_client_t *c, const fetch_layer_job_t *j,
                     cri_error_t *err)
{
    cleanup_free char *final = image_layer_dir(s->root, j->chain_id);
    pthread_mutex_lock(&s->lock);
    if (dir_exists(final)) {
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    bool owner;
    inflight_t *f = inflight_join(s, j->chain_id, &owner);
    if (!owner) {
        int status = wait_inflight(s, f, registry_client_deadline(c));
        if (status == ETIMEDOUT && !f->done)
            cri_error_set(err, status,
                          "layer `%s`: pull deadline exceeded while another pull "
                          "fetches it",
                          j->digest);
        else if (status)
            cri_error_set(err, status, "%s", f->msg);
        inflight_leave(s, f);
        pthread_mutex_unlock(&s->lock);
        return status ? -1 : 0;
    }
    pthread_mutex_unlock(&s->lock);

    int r = fetch_layer(s, c, j, final, err);

    pthread_mutex_lock(&s->lock);
    f->done = true;
    f->status = r < 0 ? err->status : 0;
    if (r < 0)
        (void)snprintf(f->msg, sizeof(f->msg), "%s", err->msg);
    pthread_cond_broadcast(&s->cond);
    inflight_leave(s, f);
    pthread_mutex_unlock(&s->lock);
    return r;
}

static void *fetch_worker(void *arg)
{
    fetch_run_t *run = arg;
    for (;;) {
        pthread_mutex_lock(&run->lock);
        if (run->failed || run->next >= run->n) {
            pthread_mutex_unlock(&run->lock);
            return NULL;
        }
        const fetch_layer_job_t *j = &run->jobs[run->next++];
        pthread_mutex_unlock(&run->lock);
        cri_error_t err = CRI_ERROR_INIT;
        if (fetch_one(run->s, run->c, j, &err) < 0) {
            pthread_mutex_lock(&run->lock);
            if (!run->failed)
                run->err = err;
            run->failed = true;
            pthread_mutex_unlock(&run->lock);
        }
    }
}

int fetch_layers(image_store_t *s, registry_client_t *c, const fetch_layer_job_t *jobs, size_t n,
                 cri_error_t *err)
{
    fetch_run_t run = {.s = s, .c = c, .jobs = jobs, .n = n};
    pthread_mutex_init(&run.lock, NULL);
    size_t nthreads = n < IMAGE_PULL_PARALLEL ? n : IMAGE_PULL_PARALLEL;
    pthread_t tids[IMAGE_PULL_PARALLEL];
    size_t started = 0;
    for (size_t i = 1; i < nthreads; i++) /* this thread is worker 0 */
        if (pthread_create(&tids[started], NULL, fetch_worker, &run) == 0)
            started++;
    fetch_worker(&run);
    for (size_t i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    pthread_mutex_destroy(&run.lock);
    if (run.failed) {
        *err = run.err;
        return -1;
    }
    return 0;
}
