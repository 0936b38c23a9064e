/* The CRI container log writer: `<RFC3339Nano> <stream> <P|F> <bytes>\n`.
 *
 * Stateless between chunks, like conmon: a chunk's trailing piece without a
 * newline is written at once as a P record, so a prompt without "\n" shows
 * up in `kubectl logs -f` immediately. kubelet's parser strips the record's
 * own "\n" from P records and keeps F records whole, so concatenating the
 * contents gives back the exact bytes the container wrote. A missing final
 * newline therefore stays a P record: writing it as F would make kubelet
 * add a newline the container never wrote. */
#include "conmon-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

#define LOG_IOV_MAX 64 /* records per writev() is LOG_IOV_MAX / 4 */

size_t conmon_log_timestamp(int64_t unix_ns, char *buf, size_t size)
{
    time_t sec = (time_t)(unix_ns / 1000000000LL);
    long nsec = (long)(unix_ns % 1000000000LL);
    if (nsec < 0) {
        nsec += 1000000000L;
        sec--;
    }
    struct tm tm;
    gmtime_r(&sec, &tm);
    /* strftime for the fields (their ranges are known to it, not to gcc's
     * -Wformat-truncation at -O3), then the nanoseconds */
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0)
        return 0;
    int m = snprintf(buf + n, size - n, ".%09ldZ", nsec);
    return m < 0 || (size_t)m >= size - n ? 0 : n + (size_t)m;
}

/* Opens (creates) the log for appending. Never follows a symlink planted at
 * path, and never blocks on a FIFO: anything but a regular file is EINVAL. */
static int open_log(const char *path, int64_t *ret_size, cri_error_t *err)
{
    cleanup_close int fd = open(
        path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK, 0640);
    if (fd < 0 && errno == ELOOP)
        return cri_error_set(err, EINVAL, "log `%s` is a symlink, refusing to follow it", path);
    if (fd < 0 && errno == ENXIO) /* a FIFO without a reader */
        return cri_error_set(err, EINVAL, "log `%s` is not a regular file", path);
    if (fd < 0)
        return cri_error_make(err, errno, "open log `%s`", path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return cri_error_make(err, errno, "stat log `%s`", path);
    if (!S_ISREG(st.st_mode))
        return cri_error_set(err, EINVAL, "log `%s` is not a regular file", path);
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
        return cri_error_make(err, errno, "set flags of log `%s`", path);
    *ret_size = (int64_t)st.st_size;
    return TAKE_FD(fd);
}

int conmon_log_open(conmon_log_t *log, const char *path, int64_t max_size, cri_error_t *err)
{
    log->fd = -1;
    log->path = NULL;
    log->max_size = max_size > 0 ? max_size : 0;
    log->size = 0;
    if (!path || !*path)
        return 0;
    int64_t size = 0;
    int fd = open_log(path, &size, err);
    if (fd < 0)
        return -1;
    log->fd = fd;
    log->size = size;
    log->path = xstrdup(path);
    return 0;
}

int conmon_log_reopen(conmon_log_t *log, cri_error_t *err)
{
    if (!log->path)
        return 0;
    int64_t size = 0;
    int fd = open_log(log->path, &size, err);
    if (fd < 0)
        return -1;
    if (log->fd >= 0)
        close(log->fd);
    log->fd = fd;
    log->size = size;
    return 0;
}

void conmon_log_close(conmon_log_t *log)
{
    if (log->fd >= 0)
        close(log->fd);
    log->fd = -1;
    free(log->path);
    log->path = NULL;
}

static int write_iov(conmon_log_t *log, struct iovec *iov, int cnt, cri_error_t *err)
{
    while (cnt > 0) {
        ssize_t n = writev(log->fd, iov, cnt);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return cri_error_make(err, errno, "write log `%s`", log->path);
        }
        log->size += n;
        while (cnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* With a size limit, start the file over before a record would cross it. */
static int enforce_max(conmon_log_t *log, size_t pending, size_t next, cri_error_t *err)
{
    if (log->max_size <= 0 || log->size + (int64_t)(pending + next) <= log->max_size)
        return 0;
    if (ftruncate(log->fd, 0) < 0)
        return cri_error_make(err, errno, "truncate log `%s`", log->path);
    log->size = 0;
    return 0;
}

int conmon_log_write(conmon_log_t *log, const char *stream, const char *buf, size_t len,
                     int64_t now_ns, cri_error_t *err)
{
    if (log->fd < 0 || len == 0)
        return 0;
    char head_f[CONMON_TS_LEN + 16], head_p[CONMON_TS_LEN + 16];
    char ts[CONMON_TS_LEN + 1];
    conmon_log_timestamp(now_ns, ts, sizeof(ts));
    int hl = snprintf(head_f, sizeof(head_f), "%s %s F ", ts, stream);
    (void)snprintf(head_p, sizeof(head_p), "%s %s P ", ts, stream);
    if (hl < 0 || (size_t)hl >= sizeof(head_f))
        return cri_error_set(err, EINVAL, "bad log stream name");

    static const char nl = '\n';
    struct iovec iov[LOG_IOV_MAX];
    int cnt = 0;
    size_t pending = 0;
    while (len > 0) {
        const char *eol = memchr(buf, '\n', len);
        bool partial = eol == NULL;
        size_t line = partial ? len : (size_t)(eol - buf) + 1;
        size_t rec = (size_t)hl + line + (partial ? 1 : 0);
        bool over = log->max_size > 0 && log->size + (int64_t)(pending + rec) > log->max_size;
        if (cnt + 3 > LOG_IOV_MAX || over) {
            if (write_iov(log, iov, cnt, err) < 0)
                return -1;
            cnt = 0;
            pending = 0;
            if (enforce_max(log, 0, rec, err) < 0)
                return -1;
        }
        iov[cnt++] = (struct iovec){partial ? head_p : head_f, (size_t)hl};
        iov[cnt++] = (struct iovec){(void *)buf, line};
        if (partial)
            iov[cnt++] = (struct iovec){(void *)&nl, 1};
        pending += rec;
        buf += line;
        len -= line;
    }
    return write_iov(log, iov, cnt, err);
}
