/* Error values shared by every cricket module.
 *
 * A function that can fail takes `cri_error_t *err` as its last argument and
 * returns a negative int (or NULL) on failure, after filling err. Success
 * never touches err. Callers read err->status (an errno value) and err->msg
 * and may prepend their own context with cri_error_wrap(). */
#ifndef CRICKET_COMMON_ERROR_H
#define CRICKET_COMMON_ERROR_H

#include <stddef.h>

#define CRI_ERROR_MSG_MAX 2048

typedef struct cri_error {
    int status;                  /* errno-style cause; 0 while unset */
    char msg[CRI_ERROR_MSG_MAX]; /* one line, lower case, "verb `object`: cause" */
} cri_error_t;

#define CRI_ERROR_INIT \
    {                  \
        0,             \
        {              \
            0          \
        }              \
    }

/* Sets err to `status` (an errno; 0 becomes EIO) and the formatted message.
 * When status is a real errno and `with_strerror` style is wanted, use
 * cri_error_make(): it appends ": <strerror(status)>" for system errors.
 * Always returns -1 so callers can `return cri_error_make(...)`. */
int cri_error_make(cri_error_t *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like cri_error_make() but never appends strerror: the message says it all.
 * Use for validation errors (EINVAL "field `x` is empty"). Returns -1. */
int cri_error_set(cri_error_t *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "<context>: " to err->msg, keeping err->status. Returns -1. */
int cri_error_wrap(cri_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Resets err to the unset state. */
void cri_error_clear(cri_error_t *err);

#endif
