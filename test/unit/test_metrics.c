/* server/metrics.c: the Prometheus text-format writer (escaping, number
 * formats, histograms) and the counters it renders. The e2e test
 * test_metrics_endpoint.py reads the whole endpoint back with a real
 * parser; these pin the exact text. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/metrics.h"

static void test_family_and_escaping(void **state)
{
    metrics_buf_t b = {0};
    metrics_family(&b, "x_total", "counter", "a \\ b\nc \"q\"");
    const char *labels[] = {"path", "C:\\dir\n\"x\"", "code", "OK", NULL};
    metrics_sample_u64(&b, "x_total", labels, 18446744073709551615ULL);
    metrics_sample_u64(&b, "x_total", NULL, 0);
    assert_string_equal(b.data, "# HELP x_total a \\\\ b\\nc \"q\"\n"
                                "# TYPE x_total counter\n"
                                "x_total{path=\"C:\\\\dir\\n\\\"x\\\"\",code=\"OK\"} "
                                "18446744073709551615\n"
                                "x_total 0\n");
    metrics_buf_free(&b);
    assert_null(b.data);
}

static void test_double_formats(void **state)
{
    metrics_buf_t b = {0};
    metrics_sample(&b, "g", NULL, 0.25);
    metrics_sample(&b, "g", NULL, INFINITY);
    metrics_sample(&b, "g", NULL, -INFINITY);
    metrics_sample(&b, "g", NULL, NAN);
    metrics_sample(&b, "g", NULL, 1e21);
    metrics_sample(&b, "g", NULL, 0.1);
    metrics_sample(&b, "g", NULL, 1.0 / 3);
    assert_string_equal(b.data,
                        "g 0.25\ng +Inf\ng -Inf\ng NaN\ng 1e+21\ng 0.1\ng 0.3333333333333333\n");
    metrics_buf_free(&b);
}

static void test_histogram_is_cumulative(void **state)
{
    metrics_hist_t h = {0};
    h.buckets[0] = 2;                 /* <= 0.0005 */
    h.buckets[3] = 1;                 /* <= 0.005 */
    h.buckets[METRICS_N_BUCKETS] = 4; /* +Inf only */
    h.count = 7;
    h.sum = 900.5;
    metrics_buf_t b = {0};
    const char *labels[] = {"method", "Version", NULL};
    metrics_histogram(&b, "d_seconds", labels, &h);
    assert_non_null(strstr(b.data, "d_seconds_bucket{method=\"Version\",le=\"0.0005\"} 2\n"));
    assert_non_null(strstr(b.data, "d_seconds_bucket{method=\"Version\",le=\"0.0025\"} 2\n"));
    assert_non_null(strstr(b.data, "d_seconds_bucket{method=\"Version\",le=\"0.005\"} 3\n"));
    assert_non_null(strstr(b.data, "d_seconds_bucket{method=\"Version\",le=\"120\"} 3\n"));
    assert_non_null(strstr(b.data, "d_seconds_bucket{method=\"Version\",le=\"+Inf\"} 7\n"));
    assert_non_null(strstr(b.data, "d_seconds_sum{method=\"Version\"} 900.5\n"));
    assert_non_null(strstr(b.data, "d_seconds_count{method=\"Version\"} 7\n"));
    /* one line per bucket, +Inf included, then sum and count */
    size_t lines = 0;
    for (const char *p = b.data; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, METRICS_N_BUCKETS + 1 + 2);
    metrics_buf_free(&b);
}

static void test_counters_render(void **state)
{
    metrics_t *m = metrics_new();
    const char *names[] = {"Version", "PullImage"};
    metrics_rpc_methods(m, names, 2);
    metrics_rpc_observe(m, 0, 0, 1000000);      /* 1 ms OK */
    metrics_rpc_observe(m, 1, 5, 3000000000LL); /* 3 s NOT_FOUND */
    metrics_rpc_observe(m, 1, 99, 0);           /* a code out of range counts as UNKNOWN */
    metrics_rpc_observe(m, 7, 0, 0);            /* no such method: ignored */
    metrics_rpc_observe(NULL, 0, 0, 0);
    metrics_pull_observe(m, 0, 1234, 2000000000LL);
    metrics_pull_observe(m, ENOENT, 0, 1000);
    metrics_pull_observe(m, E2BIG, 0, 1000);
    metrics_oom_kill(m);
    metrics_oom_kill(NULL);
    metrics_buf_t b = {0};
    metrics_write(m, &b);
    const char *want[] = {
        "cricket_rpc_requests_total{method=\"Version\",code=\"OK\"} 1\n",
        "cricket_rpc_requests_total{method=\"PullImage\",code=\"NOT_FOUND\"} 1\n",
        "cricket_rpc_requests_total{method=\"PullImage\",code=\"UNKNOWN\"} 1\n",
        "cricket_rpc_errors_total{method=\"Version\"} 0\n",
        "cricket_rpc_errors_total{method=\"PullImage\"} 2\n",
        "cricket_rpc_duration_seconds_bucket{method=\"Version\",le=\"0.001\"} 1\n",
        "cricket_rpc_duration_seconds_bucket{method=\"PullImage\",le=\"2.5\"} 1\n",
        "cricket_rpc_duration_seconds_bucket{method=\"PullImage\",le=\"5\"} 2\n",
        "cricket_rpc_duration_seconds_sum{method=\"PullImage\"} 3\n",
        "cricket_image_pulls_total{result=\"success\",reason=\"\"} 1\n",
        "cricket_image_pulls_total{result=\"failure\",reason=\"not_found\"} 1\n",
        "cricket_image_pulls_total{result=\"failure\",reason=\"other\"} 1\n",
        "cricket_image_pulls_total{result=\"failure\",reason=\"timeout\"} 0\n",
        "cricket_image_pull_bytes_total 1234\n",
        "cricket_image_pull_duration_seconds_count 3\n",
        "cricket_container_oom_kills_total 1\n",
        "# TYPE cricket_rpc_duration_seconds histogram\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(b.data, want[i]))
            fail_msg("missing %s in:\n%s", want[i], b.data);
    /* never-observed codes and methods stay out of the requests family */
    assert_null(
        strstr(b.data, "cricket_rpc_requests_total{method=\"Version\",code=\"NOT_FOUND\"}"));
    metrics_buf_free(&b);
    metrics_free(m);
    metrics_free(NULL);
}

static void test_pull_reasons(void **state)
{
    static const struct {
        int status;
        const char *reason;
    } cases[] = {
        {EINVAL, "invalid"},       {ENOENT, "not_found"},    {EACCES, "unauthorized"},
        {ENOTSUP, "unsupported"},  {EBADMSG, "bad_content"}, {ETIMEDOUT, "timeout"},
        {ECONNREFUSED, "network"}, {EIO, "network"},         {ENOSPC, "no_space"},
        {ECANCELED, "cancelled"},  {E2BIG, "other"},         {0, "other"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(metrics_pull_reason(cases[i].status), cases[i].reason);
}

static void test_process(void **state)
{
    metrics_buf_t b = {0};
    metrics_write_process(&b);
    assert_non_null(b.data);
    assert_non_null(strstr(b.data, "# TYPE process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(b.data, "\nprocess_resident_memory_bytes "));
    assert_non_null(strstr(b.data, "\nprocess_open_fds "));
    assert_non_null(strstr(b.data, "\nprocess_max_fds "));
    assert_non_null(strstr(b.data, "\nprocess_start_time_seconds "));
    metrics_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_family_and_escaping),
        cmocka_unit_test(test_double_formats),
        cmocka_unit_test(test_histogram_is_cumulative),
        cmocka_unit_test(test_counters_render),
        cmocka_unit_test(test_pull_reasons),
        cmocka_unit_test(test_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
