/* The one logging module: levels error..trace, key=value lines.
 *
 * A line looks like `time=... level=info msg="..." rpc=Version`. The handler
 * defaults to stderr; log_set_handler() swaps it (tests, journald). Only the
 * RPC wrapper and top-level loops log; helpers return errors instead. */
#ifndef CRICKET_COMMON_LOG_H
#define CRICKET_COMMON_LOG_H

#include <stdarg.h>

typedef enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN,
    LOG_LEVEL_INFO,
    LOG_LEVEL_DEBUG,
    LOG_LEVEL_TRACE,
} log_level_t;

typedef void (*log_handler_t)(log_level_t level, const char *line, void *data);

/* Parses "error", "warn", "info", "debug" or "trace"; -1 when unknown. */
int log_level_parse(const char *s);
/* Name of a level ("info"). */
const char *log_level_name(log_level_t level);

/* Sets the highest level that is written. Safe to call at any time. */
void log_set_level(log_level_t level);
log_level_t log_get_level(void);
/* Replaces the line sink; NULL restores stderr. Set at startup only. */
void log_set_handler(log_handler_t handler, void *data);

/* Writes one line: msg is quoted, `kv` (may be NULL) is appended verbatim,
 * so pass pre-built `key=value` pairs there. */
void log_write(log_level_t level, const char *kv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(...) log_write(LOG_LEVEL_ERROR, NULL, __VA_ARGS__)
#define log_warn(...) log_write(LOG_LEVEL_WARN, NULL, __VA_ARGS__)
#define log_info(...) log_write(LOG_LEVEL_INFO, NULL, __VA_ARGS__)
#define log_debug(...) log_write(LOG_LEVEL_DEBUG, NULL, __VA_ARGS__)
#define log_trace(...) log_write(LOG_LEVEL_TRACE, NULL, __VA_ARGS__)

#endif
