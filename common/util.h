/* Small helpers every binary shares: allocation that aborts on OOM, files,
 * paths and time. Functions that can fail follow the cri_error_t rules. */
#ifndef CRICKET_COMMON_UTIL_H
#define CRICKET_COMMON_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* Allocators: never return NULL; abort with a message on OOM. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Creates `path` and its missing parents with `mode`. EEXIST is success. */
int mkdir_p(const char *path, mode_t mode, cri_error_t *err);

/* Like mkdir_p, then makes sure `path` grants nothing beyond max_mode: an
 * existing directory with more permissive bits is chmod'ed down to
 * (its mode & max_mode). *ret_old_mode (may be NULL) gets the mode it had,
 * so callers can say what they tightened. ENOTDIR when path is not a
 * directory (a symlink is not followed for the chmod). */
int mkdir_private(const char *path, mode_t max_mode, mode_t *ret_old_mode, cri_error_t *err);

/* Writes all of data to fd, retrying short writes and EINTR. 0, or -1 with
 * errno set. */
int write_all(int fd, const void *data, size_t len);

/* fsyncs the directory holding `path`, so a rename or unlink in it
 * survives a crash. */
int fsync_parent(const char *path, cri_error_t *err);

/* Writes data to `path` atomically: a temp file beside it, fsync, rename,
 * fsync of the directory. The file gets `mode`. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                      cri_error_t *err);

/* write_file_atomic() without the fsyncs (readers still see the old or the
 * new file whole), for the runroot: a reboot empties it, and the page cache
 * outlives a crash of the process. */
int write_file_volatile(const char *path, const void *data, size_t len, mode_t mode,
                        cri_error_t *err);

/* Reads a whole file (at most max bytes, else EFBIG) into a NUL-terminated
 * buffer the caller frees; *ret_len (may be NULL) gets its length. */
int read_file(const char *path, size_t max, char **ret_data, size_t *ret_len, cri_error_t *err);

/* Disk usage of a tree (st_blocks * 512 summed once per inode: hard links
 * are found with a hash set of (dev, inode)) and its inode count, without
 * crossing into other file systems or following symlinks. The walk is
 * fd-relative (no PATH_MAX limit) and holds one fd per level; directories
 * more than 256 levels deep are not entered. A missing root counts 0. */
int dir_usage(const char *path, uint64_t *ret_bytes, uint64_t *ret_inodes, cri_error_t *err);

/* Removes a tree (like rm -rf) without following symlinks or entering
 * mounts (EBUSY when one is inside); any depth or path length, through
 * directory fds (common/rmtree.c). Missing is OK. */
int rm_rf(const char *path, cri_error_t *err);

/* rm_rf that gives up (ECANCELED, the tree partly removed) once *stop
 * turns true; stop may be NULL. */
int rm_rf_stoppable(const char *path, const atomic_bool *stop, cri_error_t *err);

/* NULL-terminated string vectors (freed with strv_free, cleanup_strv):
 * the length (NULL counts 0), and appending s, whose ownership moves into
 * *v (a NULL *v is the empty vector). */
size_t strv_len(char *const *v);
void strv_push(char ***v, char *s);

/* Wall clock in Unix nanoseconds. */
int64_t now_unix_ns(void);

/* True when s starts with prefix. */
bool str_has_prefix(const char *s, const char *prefix);

struct sockaddr_storage;
/* Fills *ss (zeroed first) with the IPv4 or IPv6 literal `address` and
 * `port`; its family (AF_INET or AF_INET6), or -1 when address is neither. */
int sockaddr_from_ip(const char *address, int port, struct sockaddr_storage *ss);

/* Replaces the malloc'd string *field with a copy of value ("" for NULL);
 * value may point into *field. */
void str_set(char **field, const char *value);

/* Parses the decimal number at the start of s (leading blanks allowed, no
 * sign) into *ret when it is at most max; *ret_end (may be NULL) gets the
 * first character after it. False, touching nothing, when s does not start
 * with such a number. */
bool parse_ulong_prefix(const char *s, unsigned long max, unsigned long *ret, const char **ret_end);

/* Parses the "MAJOR[.MINOR]" start of a version string ("5.10.0-21-amd64",
 * "1.0.0"); the minor is 0 when absent. False when s does not start with a
 * number. */
bool parse_major_minor(const char *s, unsigned long *ret_major, unsigned long *ret_minor);

#endif
