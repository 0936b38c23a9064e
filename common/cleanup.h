/* Scope-bound cleanup helpers (GCC/Clang cleanup attribute).
 *
 * Every owning local is declared with one of these and starts as NULL or -1;
 * ownership leaves the scope only through TAKE_PTR()/TAKE_FD(). */
#ifndef CRICKET_COMMON_CLEANUP_H
#define CRICKET_COMMON_CLEANUP_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void cleanup_free_fn(void *p)
{
    free(*(void **)p);
}

static inline void cleanup_close_fn(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}

static inline void cleanup_fclose_fn(FILE **f)
{
    if (*f)
        (void)fclose(*f);
}

static inline void cleanup_dir_fn(DIR **d)
{
    if (*d)
        closedir(*d);
}

/* Frees a NULL-terminated array of strings and the array itself. */
static inline void strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

static inline void cleanup_strv_fn(char ***v)
{
    strv_free(*v);
}

#define cleanup_free __attribute__((cleanup(cleanup_free_fn)))
#define cleanup_close __attribute__((cleanup(cleanup_close_fn)))
#define cleanup_fclose __attribute__((cleanup(cleanup_fclose_fn)))
#define cleanup_dir __attribute__((cleanup(cleanup_dir_fn)))
#define cleanup_strv __attribute__((cleanup(cleanup_strv_fn)))

/* Moves ownership out of a cleanup-managed variable. Analysers that cannot
 * parse statement expressions define these first (contrib/lint/cppcheck.cfg). */
#ifndef TAKE_PTR
#define TAKE_PTR(p)                       \
    ({                                    \
        __typeof__(p) take_ptr_tmp = (p); \
        (p) = NULL;                       \
        take_ptr_tmp;                     \
    })
#endif

#ifndef TAKE_FD
#define TAKE_FD(fd)             \
    ({                          \
        int take_fd_tmp = (fd); \
        (fd) = -1;              \
        take_fd_tmp;            \
    })
#endif

#endif
