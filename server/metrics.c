/* Prometheus counters and the text-format writer (metrics.h). */
#include "server/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

/* ---- the text format ---- */

static void buf_put(metrics_buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_str(metrics_buf_t *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

/* s with backslash and newline escaped, and the double quote too when
 * `quote` (label values). */
static void buf_escaped(metrics_buf_t *b, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_str(b, "\\\\");
        else if (*s == '\n')
            buf_str(b, "\\n");
        else if (*s == '"' && quote)
            buf_str(b, "\\\"");
        else
            buf_put(b, s, 1);
    }
}

void metrics_buf_free(metrics_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void metrics_family(metrics_buf_t *b, const char *name, const char *type, const char *help)
{
    buf_str(b, "# HELP ");
    buf_str(b, name);
    buf_str(b, " ");
    buf_escaped(b, help, false);
    buf_str(b, "\n# TYPE ");
    buf_str(b, name);
    buf_str(b, " ");
    buf_str(b, type);
    buf_str(b, "\n");
}

/* name{labels[,extra_k="extra_v"]} */
static void sample_head(metrics_buf_t *b, const char *name, const char *const *labels,
                        const char *extra_k, const char *extra_v)
{
    buf_str(b, name);
    bool any = (labels && labels[0]) || (extra_k && extra_v);
    if (!any)
        return;
    buf_str(b, "{");
    size_t n = 0;
    for (; labels && labels[n]; n += 2) {
        buf_str(b, n ? "," : "");
        buf_str(b, labels[n]);
        buf_str(b, "=\"");
        buf_escaped(b, labels[n + 1], true);
        buf_str(b, "\"");
    }
    if (extra_k && extra_v) {
        buf_str(b, n ? "," : "");
        buf_str(b, extra_k);
        buf_str(b, "=\"");
        buf_escaped(b, extra_v, true);
        buf_str(b, "\"");
    }
    buf_str(b, "}");
}

static void format_double(double v, char *out, size_t size)
{
    if (isnan(v))
        (void)snprintf(out, size, "NaN");
    else if (isinf(v))
        (void)snprintf(out, size, "%s", v > 0 ? "+Inf" : "-Inf");
    else /* the shortest text that reads back as v: le="0.0005", not 0.00050000000000000001 */
        for (int digits = 15; digits <= 17; digits++) {
            (void)snprintf(out, size, "%.*g", digits, v);
            if (strtod(out, NULL) == v)
                break;
        }
}

void metrics_sample(metrics_buf_t *b, const char *name, const char *const *labels, double value)
{
    char num[64];
    format_double(value, num, sizeof(num));
    sample_head(b, name, labels, NULL, NULL);
    buf_str(b, " ");
    buf_str(b, num);
    buf_str(b, "\n");
}

void metrics_sample_u64(metrics_buf_t *b, const char *name, const char *const *labels,
                        uint64_t value)
{
    char num[32];
    (void)snprintf(num, sizeof(num), "%" PRIu64, value);
    sample_head(b, name, labels, NULL, NULL);
    buf_str(b, " ");
    buf_str(b, num);
    buf_str(b, "\n");
}

const double metrics_bucket_bounds[METRICS_N_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120};

void metrics_histogram(metrics_buf_t *b, const char *name, const char *const *labels,
                       const metrics_hist_t *h)
{
    cleanup_free char *bucket = xasprintf("%s_bucket", name);
    uint64_t cum = 0;
    char le[64], num[32];
    for (size_t i = 0; i <= METRICS_N_BUCKETS; i++) {
        cum += h->buckets[i];
        format_double(i < METRICS_N_BUCKETS ? metrics_bucket_bounds[i] : INFINITY, le, sizeof(le));
        sample_head(b, bucket, labels, "le", le);
        (void)snprintf(num, sizeof(num), " %" PRIu64 "\n", cum);
        buf_str(b, num);
    }
    cleanup_free char *sum = xasprintf("%s_sum", name);
    cleanup_free char *count = xasprintf("%s_count", name);
    metrics_sample(b, sum, labels, h->sum);
    metrics_sample_u64(b, count, labels, h->count);
}

/* ---- what the daemon counts ---- */

/* A histogram observed from many threads: atomics only. */
typedef struct hist_atomic {
    _Atomic uint64_t buckets[METRICS_N_BUCKETS + 1];
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;
} hist_atomic_t;

static void hist_observe(hist_atomic_t *h, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    double s = (double)ns / 1e9;
    size_t i = 0;
    while (i < METRICS_N_BUCKETS && s > metrics_bucket_bounds[i])
        i++;
    atomic_fetch_add(&h->buckets[i], 1);
    atomic_fetch_add(&h->sum_ns, (uint64_t)ns);
    atomic_fetch_add(&h->count, 1);
}

static void hist_load(hist_atomic_t *h, metrics_hist_t *ret)
{
    for (size_t i = 0; i <= METRICS_N_BUCKETS; i++)
        ret->buckets[i] = atomic_load(&h->buckets[i]);
    ret->count = atomic_load(&h->count);
    ret->sum = (double)atomic_load(&h->sum_ns) / 1e9;
}

#define N_CODES 17 /* gRPC status codes 0..16 */
static const char *const code_names[N_CODES] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

typedef struct rpc_counts {
    _Atomic uint64_t codes[N_CODES];
    hist_atomic_t latency;
} rpc_counts_t;

/* Failure reasons of pulls (image_store_pull's documented errnos). */
static const char *const pull_reasons[] = {
    "invalid", "not_found", "unauthorized", "unsupported", "bad_content",
    "timeout", "network",   "no_space",     "cancelled",   "other"};
#define N_PULL_REASONS (sizeof(pull_reasons) / sizeof(pull_reasons[0]))

static size_t pull_reason_index(int status)
{
    switch (status) {
    case EINVAL:
        return 0;
    case ENOENT:
        return 1;
    case EACCES:
    case EPERM:
        return 2;
    case ENOTSUP:
        return 3;
    case EBADMSG:
        return 4;
    case ETIMEDOUT:
        return 5;
    case EIO:
    case ECONNREFUSED:
    case ECONNRESET:
    case EHOSTUNREACH:
    case ENETUNREACH:
        return 6;
    case ENOSPC:
        return 7;
    case ECANCELED:
        return 8;
    default:
        return N_PULL_REASONS - 1;
    }
}

struct metrics {
    const char **method_names; /* the strings are the method table's */
    size_t n_methods;
    rpc_counts_t *rpc;

    _Atomic uint64_t pulls_ok;
    _Atomic uint64_t pulls_failed[N_PULL_REASONS];
    _Atomic uint64_t pull_bytes;
    hist_atomic_t pull_latency;
    _Atomic uint64_t oom_kills;
};

metrics_t *metrics_new(void)
{
    return xcalloc(1, sizeof(metrics_t));
}

void metrics_free(metrics_t *m)
{
    if (!m)
        return;
    free(m->rpc);
    free(m->method_names);
    free(m);
}

void metrics_rpc_methods(metrics_t *m, const char *const *names, size_t n)
{
    free(m->rpc);
    free(m->method_names);
    m->rpc = xcalloc(n ? n : 1, sizeof(*m->rpc));
    m->method_names = xcalloc(n ? n : 1, sizeof(*m->method_names));
    for (size_t i = 0; i < n; i++)
        m->method_names[i] = names[i];
    m->n_methods = n;
}

void metrics_rpc_observe(metrics_t *m, size_t i, int code, int64_t ns)
{
    if (!m || i >= m->n_methods)
        return;
    if (code < 0 || code >= N_CODES)
        code = 2; /* UNKNOWN */
    atomic_fetch_add(&m->rpc[i].codes[code], 1);
    hist_observe(&m->rpc[i].latency, ns);
}

const char *metrics_pull_reason(int status)
{
    return pull_reasons[pull_reason_index(status)];
}

void metrics_pull_observe(metrics_t *m, int status, uint64_t bytes, int64_t ns)
{
    if (!m)
        return;
    if (status == 0) {
        atomic_fetch_add(&m->pulls_ok, 1);
        atomic_fetch_add(&m->pull_bytes, bytes);
    } else {
        atomic_fetch_add(&m->pulls_failed[pull_reason_index(status)], 1);
    }
    hist_observe(&m->pull_latency, ns);
}

void metrics_oom_kill(metrics_t *m)
{
    if (m)
        atomic_fetch_add(&m->oom_kills, 1);
}

static void write_rpc(metrics_t *m, metrics_buf_t *b)
{
    metrics_family(b, "cricket_rpc_requests_total", "counter",
                   "CRI calls finished, by method and gRPC status code.");
    for (size_t i = 0; i < m->n_methods; i++)
        for (size_t c = 0; c < N_CODES; c++) {
            uint64_t v = atomic_load(&m->rpc[i].codes[c]);
            const char *labels[] = {"method", m->method_names[i], "code", code_names[c], NULL};
            if (v)
                metrics_sample_u64(b, "cricket_rpc_requests_total", labels, v);
        }
    metrics_family(b, "cricket_rpc_errors_total", "counter",
                   "CRI calls that ended with a status other than OK, by method.");
    for (size_t i = 0; i < m->n_methods; i++) {
        uint64_t v = 0;
        for (size_t c = 1; c < N_CODES; c++)
            v += atomic_load(&m->rpc[i].codes[c]);
        const char *labels[] = {"method", m->method_names[i], NULL};
        metrics_sample_u64(b, "cricket_rpc_errors_total", labels, v);
    }
    metrics_family(b, "cricket_rpc_duration_seconds", "histogram",
                   "Time from a CRI call's arrival to its status, by method (a feed such as "
                   "GetContainerEvents counts its whole life).");
    for (size_t i = 0; i < m->n_methods; i++) {
        metrics_hist_t h;
        hist_load(&m->rpc[i].latency, &h);
        const char *labels[] = {"method", m->method_names[i], NULL};
        if (h.count)
            metrics_histogram(b, "cricket_rpc_duration_seconds", labels, &h);
    }
}

static void write_pulls(metrics_t *m, metrics_buf_t *b)
{
    metrics_family(b, "cricket_image_pulls_total", "counter",
                   "PullImage calls finished, by result and failure reason.");
    const char *ok[] = {"result", "success", "reason", "", NULL};
    metrics_sample_u64(b, "cricket_image_pulls_total", ok, atomic_load(&m->pulls_ok));
    for (size_t i = 0; i < N_PULL_REASONS; i++) {
        const char *labels[] = {"result", "failure", "reason", pull_reasons[i], NULL};
        metrics_sample_u64(b, "cricket_image_pulls_total", labels,
                           atomic_load(&m->pulls_failed[i]));
    }
    metrics_family(b, "cricket_image_pull_bytes_total", "counter",
                   "Size of the images pulled successfully (config and compressed layers, "
                   "whether downloaded or already present).");
    metrics_sample_u64(b, "cricket_image_pull_bytes_total", NULL, atomic_load(&m->pull_bytes));
    metrics_family(b, "cricket_image_pull_duration_seconds", "histogram",
                   "Time PullImage took, successful or not.");
    metrics_hist_t h;
    hist_load(&m->pull_latency, &h);
    metrics_histogram(b, "cricket_image_pull_duration_seconds", NULL, &h);
}

void metrics_write(metrics_t *m, metrics_buf_t *b)
{
    write_rpc(m, b);
    write_pulls(m, b);
    metrics_family(b, "cricket_container_oom_kills_total", "counter",
                   "Containers whose exit the OOM killer caused.");
    metrics_sample_u64(b, "cricket_container_oom_kills_total", NULL, atomic_load(&m->oom_kills));
}

/* ---- the process ---- */

/* Boot time (Unix seconds) from /proc/stat's btime; 0 when unknown. */
static long long boot_time(void)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return 0;
    char line[256];
    long long bt = 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "btime ", 6) == 0) {
            bt = strtoll(line + 6, NULL, 10);
            break;
        }
    (void)fclose(f);
    return bt;
}

static uint64_t open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    uint64_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n ? n - 1 : 0; /* minus the one opendir holds */
}

void metrics_write_process(metrics_buf_t *b)
{
    char text[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
    if (f)
        (void)fclose(f);
    text[n] = '\0';
    const char *p = strrchr(text, ')'); /* the command name may hold spaces */
    if (!p)
        return;
    /* the fields after the name, from field 3 (state) on: utime is field
     * 14, stime 15, num_threads 20, starttime 22, vsize 23, rss 24 */
    unsigned long long v[22] = {0};
    size_t k = 0;
    for (char *q = (char *)p + 1; *q && k < 22;) {
        while (*q == ' ')
            q++;
        if (!*q)
            break;
        char *end = q;
        unsigned long long x = k == 0 ? 0 : strtoull(q, &end, 10); /* field 3 is a letter */
        v[k++] = x;
        while (*end && *end != ' ')
            end++;
        q = end;
    }
    if (k < 22)
        return;
    unsigned long long utime = v[11], stime = v[12], start = v[19], vsize = v[20];
    long long threads = (long long)v[17], rss = (long long)v[21];
    double tick = (double)sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    metrics_family(b, "process_cpu_seconds_total", "counter",
                   "Total user and system CPU time spent in seconds.");
    metrics_sample(b, "process_cpu_seconds_total", NULL, (double)(utime + stime) / tick);
    metrics_family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    metrics_sample_u64(b, "process_resident_memory_bytes", NULL, (uint64_t)rss * (uint64_t)page);
    metrics_family(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    metrics_sample_u64(b, "process_virtual_memory_bytes", NULL, vsize);
    metrics_family(b, "process_threads", "gauge", "Number of OS threads in the process.");
    metrics_sample_u64(b, "process_threads", NULL, (uint64_t)threads);
    long long bt = boot_time();
    if (bt > 0) {
        metrics_family(b, "process_start_time_seconds", "gauge",
                       "Start time of the process since unix epoch in seconds.");
        metrics_sample(b, "process_start_time_seconds", NULL, (double)bt + (double)start / tick);
    }
    metrics_family(b, "process_open_fds", "gauge", "Number of open file descriptors.");
    metrics_sample_u64(b, "process_open_fds", NULL, open_fds());
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        metrics_family(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        metrics_sample_u64(b, "process_max_fds", NULL, (uint64_t)rl.rlim_cur);
    }
}
