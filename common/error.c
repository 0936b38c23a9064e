#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Keeps a message on one line: newline, CR and tab become spaces, other
 * control characters `?` (quoted input may hold anything). */
static void one_line(char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n' || c == '\r' || c == '\t')
            *s = ' ';
        else if (c < 0x20 || c == 0x7f)
            *s = '?';
    }
}

__attribute__((format(printf, 4, 0))) static int
error_vset(cri_error_t *err, int status, int with_errno, const char *fmt, va_list ap)
{
    if (status == 0)
        status = EIO;
    err->status = status;
    int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    if (with_errno && n >= 0 && (size_t)n < sizeof(err->msg))
        (void)snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s", strerror(status));
    one_line(err->msg);
    return -1;
}

int cri_error_make(cri_error_t *err, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(err, status, 1, fmt, ap);
    va_end(ap);
    return -1;
}

int cri_error_set(cri_error_t *err, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(err, status, 0, fmt, ap);
    va_end(ap);
    return -1;
}

int cri_error_wrap(cri_error_t *err, const char *fmt, ...)
{
    char ctx[CRI_ERROR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(ctx, sizeof(ctx) - 2, fmt, ap);
    va_end(ap);
    size_t clen = n < 0 ? 0 : strnlen(ctx, sizeof(ctx) - 3);
    ctx[clen] = '\0';
    one_line(ctx);
    memcpy(ctx + clen, ": ", 3);
    clen += 2;

    /* shift the old message right, keeping it NUL-terminated if cut */
    size_t cap = sizeof(err->msg);
    size_t olen = strnlen(err->msg, cap - 1);
    if (clen >= cap)
        clen = cap - 1;
    if (clen + olen >= cap)
        olen = cap - 1 - clen;
    memmove(err->msg + clen, err->msg, olen);
    memcpy(err->msg, ctx, clen);
    err->msg[clen + olen] = '\0';
    if (err->status == 0)
        err->status = EIO;
    return -1;
}

void cri_error_clear(cri_error_t *err)
{
    err->status = 0;
    err->msg[0] = '\0';
}
