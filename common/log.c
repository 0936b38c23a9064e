#include "log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

static atomic_int current_level = LOG_LEVEL_INFO;
static log_handler_t handler;
static void *handler_data;

int log_level_parse(const char *s)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(s, level_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *log_level_name(log_level_t level)
{
    if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
        return "unknown";
    return level_names[level];
}

void log_set_level(log_level_t level)
{
    atomic_store(&current_level, (int)level);
}

log_level_t log_get_level(void)
{
    return (log_level_t)atomic_load(&current_level);
}

void log_set_handler(log_handler_t h, void *data)
{
    handler = h;
    handler_data = data;
}

/* Appends s to buf as a double-quoted value, escaping quotes, backslashes
 * and control characters so one record stays one line. */
static size_t quote_into(char *buf, size_t off, size_t cap, const char *s)
{
    if (off + 1 < cap)
        buf[off++] = '"';
    for (; *s && off + 6 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[off++] = '\\';
            buf[off++] = (char)c;
        } else if (c == '\n') {
            buf[off++] = '\\';
            buf[off++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            off += (size_t)snprintf(buf + off, cap - off, "\\x%02x", c);
        } else {
            buf[off++] = (char)c;
        }
    }
    if (off + 1 < cap)
        buf[off++] = '"';
    buf[off] = '\0';
    return off;
}

void log_write(log_level_t level, const char *kv, const char *fmt, ...)
{
    if ((int)level > atomic_load(&current_level))
        return;

    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);

    char line[4096 + 256];
    size_t off = strftime(line, sizeof(line), "time=%Y-%m-%dT%H:%M:%S", &tm);
    off += (size_t)snprintf(line + off, sizeof(line) - off,
                            ".%06ldZ level=%s msg=", ts.tv_nsec / 1000, log_level_name(level));
    off = quote_into(line, off, sizeof(line) - 2, msg);
    if (kv && *kv && off < sizeof(line) - 2)
        off += (size_t)snprintf(line + off, sizeof(line) - 2 - off, " %s", kv);
    if (off > sizeof(line) - 2)
        off = sizeof(line) - 2;

    if (handler) {
        handler(level, line, handler_data);
        return;
    }
    line[off++] = '\n';
    /* one write(2) per record so lines from different threads never interleave */
    ssize_t r = write(STDERR_FILENO, line, off);
    (void)r;
}
