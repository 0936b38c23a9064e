/* Shared helpers of the libFuzzer entries in test/fuzz/ (header only).
 *
 * Every fuzz_<name>.c defines LLVMFuzzerTestOneInput() and nothing else with
 * external linkage; it is linked either with libFuzzer (CRICKET_FUZZ=ON) or
 * with replay.c, which replays test/fuzz/corpus/<name>/ under ctest. An entry
 * reports a bug by crashing or calling fuzz_fail(). */
#ifndef CRICKET_TEST_FUZZ_FUZZ_H
#define CRICKET_TEST_FUZZ_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reports a broken invariant and aborts (libFuzzer saves the input). */
#define fuzz_fail(...)                                                           \
    do {                                                                         \
        fprintf(stderr, "fuzz invariant broken at %s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                                            \
        fputc('\n', stderr);                                                     \
        abort();                                                                 \
    } while (0)

/* The input as a NUL-terminated string (malloc'd; embedded NULs end it early,
 * as they would for a header or a file read as text). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = xmalloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* A failure must say why: an errno and a message. */
static inline void fuzz_check_error(const cri_error_t *err, const char *what)
{
    if (err->status <= 0 || !err->msg[0])
        fuzz_fail("%s failed without status or message (status %d)", what, err->status);
}

#endif
