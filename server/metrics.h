/* Prometheus metrics of cricketd: the counters the daemon keeps as it
 * serves (RPCs, image pulls, OOM kills) and a writer of the Prometheus text
 * exposition format (version 0.0.4) that the HTTP endpoint
 * (metrics_server.c, the `metrics` config section) renders them with,
 * together with what it reads at scrape time (pods and containers by
 * state, monitors, event subscribers, the process).
 *
 * Debian bookworm ships no C Prometheus client library, so this is a small
 * writer of the text format. Counters are atomics: observing never takes a
 * lock and never allocates. No gRPC or protobuf type here. */
#ifndef CRICKET_SERVER_METRICS_H
#define CRICKET_SERVER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the text format ---- */

/* A growing text buffer (NUL-terminated). */
typedef struct metrics_buf {
    char *data;
    size_t len, cap;
} metrics_buf_t;

void metrics_buf_free(metrics_buf_t *b);

/* "# HELP name help" and "# TYPE name type" (type: counter, gauge,
 * histogram); help is escaped (backslash, newline). */
void metrics_family(metrics_buf_t *b, const char *name, const char *type, const char *help);

/* One sample: name{k="v",...} value. labels is "k, v, k, v, ..., NULL" (or
 * NULL for none); values are escaped (backslash, quote, newline). */
void metrics_sample(metrics_buf_t *b, const char *name, const char *const *labels, double value);
void metrics_sample_u64(metrics_buf_t *b, const char *name, const char *const *labels,
                        uint64_t value);

/* Histogram buckets shared by every latency histogram: upper bounds in
 * seconds, +Inf implied. */
#define METRICS_N_BUCKETS 16
extern const double metrics_bucket_bounds[METRICS_N_BUCKETS];

/* Counts of one histogram (bucket i counts observations <= bound i, not
 * cumulative; the last slot is +Inf). */
typedef struct metrics_hist {
    uint64_t buckets[METRICS_N_BUCKETS + 1];
    uint64_t count;
    double sum; /* seconds */
} metrics_hist_t;

/* The samples of one histogram: name_bucket{labels...,le="..."}
 * (cumulative), name_sum and name_count. */
void metrics_histogram(metrics_buf_t *b, const char *name, const char *const *labels,
                       const metrics_hist_t *h);

/* ---- what the daemon counts ---- */

typedef struct metrics metrics_t;

metrics_t *metrics_new(void);
/* NULL is fine. */
void metrics_free(metrics_t *m);

/* The RPC methods observed by index (rpc.c's method table). Call once,
 * before serving: not synchronised. The array is copied; the strings must
 * outlive m (the method table's are static). */
void metrics_rpc_methods(metrics_t *m, const char *const *names, size_t n);
/* One finished call of method i with gRPC status code `code` after ns
 * nanoseconds. m NULL or i out of range does nothing. */
void metrics_rpc_observe(metrics_t *m, size_t i, int code, int64_t ns);

/* One finished image pull: status 0 = success, else the errno of the
 * failure (counted by reason: metrics_pull_reason()); bytes = the image's
 * size (config + compressed layers) on success. */
void metrics_pull_observe(metrics_t *m, int status, uint64_t bytes, int64_t ns);
/* The reason label of a pull failing with errno status ("not_found",
 * "unauthorized", "timeout", ...; "other" for the rest). */
const char *metrics_pull_reason(int status);

/* A container was killed by the OOM killer (its exit said so). */
void metrics_oom_kill(metrics_t *m);

/* Writes every family m keeps. */
void metrics_write(metrics_t *m, metrics_buf_t *b);

/* The process's own metrics (process_cpu_seconds_total,
 * process_resident_memory_bytes, process_open_fds, ...) from /proc/self;
 * families that cannot be read are left out. */
void metrics_write_process(metrics_buf_t *b);

#endif
