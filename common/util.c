#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

static void oom(void)
{
    static const char msg[] = "cricket: out of memory\n";
    ssize_t r = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)r;
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom();
    return q;
}

char *xstrdup(const char *s)
{
    char *p = strdup(s ? s : "");
    if (!p)
        oom();
    return p;
}

char *xstrndup(const char *s, size_t n)
{
    char *p = strndup(s, n);
    if (!p)
        oom();
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *p = NULL;
    va_start(ap, fmt);
    int r = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (r < 0)
        oom();
    return p;
}

int mkdir_p(const char *path, mode_t mode, cri_error_t *err)
{
    if (!path || !*path)
        return cri_error_set(err, EINVAL, "mkdir: empty path");
    cleanup_free char *p = xstrdup(path);
    size_t len = strlen(p);
    while (len > 1 && p[len - 1] == '/')
        p[--len] = '\0';
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return cri_error_make(err, errno, "mkdir `%s`", p);
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return cri_error_make(err, errno, "mkdir `%s`", p);
    struct stat st;
    if (stat(p, &st) < 0)
        return cri_error_make(err, errno, "stat `%s`", p);
    if (!S_ISDIR(st.st_mode))
        return cri_error_set(err, ENOTDIR, "mkdir `%s`: exists and is not a directory", p);
    return 0;
}

int mkdir_private(const char *path, mode_t max_mode, mode_t *ret_old_mode, cri_error_t *err)
{
    if (mkdir_p(path, max_mode, err) < 0)
        return -1;
    cleanup_close int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return cri_error_make(err, errno, "open directory `%s`", path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return cri_error_make(err, errno, "stat `%s`", path);
    mode_t old = st.st_mode & 07777;
    if ((old & ~max_mode) != 0 && fchmod(fd, old & max_mode) < 0)
        return cri_error_make(err, errno, "chmod `%s`", path);
    if (ret_old_mode)
        *ret_old_mode = old;
    return 0;
}

int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fsync_parent(const char *path, cri_error_t *err)
{
    const char *slash = strrchr(path, '/');
    cleanup_free char *dir = !slash          ? xstrdup(".")
                             : slash == path ? xstrdup("/")
                                             : xstrndup(path, (size_t)(slash - path));
    cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cri_error_make(err, errno, "open directory `%s`", dir);
    if (fsync(fd) < 0)
        return cri_error_make(err, errno, "fsync directory `%s`", dir);
    return 0;
}

static int write_file_replace(const char *path, const void *data, size_t len, mode_t mode,
                              bool durable, cri_error_t *err)
{
    cleanup_free char *tmp = xasprintf("%s.tmp.XXXXXX", path);
    cleanup_close int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return cri_error_make(err, errno, "create temp file for `%s`", path);
    if (fchmod(fd, mode) < 0 || write_all(fd, data, len) < 0 || (durable && fsync(fd) < 0)) {
        int e = errno;
        unlink(tmp);
        return cri_error_make(err, e, "write `%s`", tmp);
    }
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return cri_error_make(err, e, "rename `%s` to `%s`", tmp, path);
    }
    /* the rename itself is durable only once the directory is */
    return durable ? fsync_parent(path, err) : 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, cri_error_t *err)
{
    return write_file_replace(path, data, len, mode, true, err);
}

int write_file_volatile(const char *path, const void *data, size_t len, mode_t mode,
                        cri_error_t *err)
{
    return write_file_replace(path, data, len, mode, false, err);
}

int read_file(const char *path, size_t max, char **ret_data, size_t *ret_len, cri_error_t *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cri_error_make(err, errno, "open `%s`", path);
    /* read up to max + 1 bytes: one byte over the limit proves the file is too big */
    size_t cap = max < 4096 ? max + 1 : 4096, len = 0;
    cleanup_free char *buf = xmalloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap > max)
                return cri_error_set(err, EFBIG, "read `%s`: larger than %zu bytes", path, max);
            cap = cap * 2 > max ? max + 1 : cap * 2;
            buf = xrealloc(buf, cap + 1);
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return cri_error_make(err, errno, "read `%s`", path);
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    if (ret_len)
        *ret_len = len;
    *ret_data = TAKE_PTR(buf);
    return 0;
}

size_t strv_len(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

void strv_push(char ***v, char *s)
{
    size_t n = strv_len(*v);
    *v = xrealloc(*v, (n + 2) * sizeof(char *));
    (*v)[n] = s;
    (*v)[n + 1] = NULL;
}

int64_t now_unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

bool str_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

void str_set(char **field, const char *value)
{
    char *copy = xstrdup(value);
    free(*field);
    *field = copy;
}

bool parse_ulong_prefix(const char *s, unsigned long max, unsigned long *ret, const char **ret_end)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s < '0' || *s > '9')
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || v > max)
        return false;
    *ret = v;
    if (ret_end)
        *ret_end = end;
    return true;
}

bool parse_major_minor(const char *s, unsigned long *ret_major, unsigned long *ret_minor)
{
    unsigned long major = 0, minor = 0;
    const char *p = s;
    if (!parse_ulong_prefix(p, ULONG_MAX, &major, &p))
        return false;
    if (*p == '.' && !parse_ulong_prefix(p + 1, ULONG_MAX, &minor, NULL))
        minor = 0;
    *ret_major = major;
    *ret_minor = minor;
    return true;
}

int sockaddr_from_ip(const char *address, int port, struct sockaddr_storage *ss)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, address, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        return AF_INET;
    }
    if (inet_pton(AF_INET6, address, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        return AF_INET6;
    }
    return -1;
}
