/* server/cgroup.c and server/netdev.c on fixture trees: the v1 and v2
 * layouts of a pod cgroup, pressure files, cgroup_parent paths (cgroupfs
 * and systemd slices), limits written into fixture files, /proc/net/dev
 * text. No root, no real cgroup. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/cgroup.h"
#include "server/netdev.h"

static char *fixture_root(void)
{
    char tmpl[] = "/tmp/cricket-cgroup-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return xstrdup(tmpl);
}

static void put(const char *root, const char *rel, const char *text)
{
    cleanup_free char *path = xasprintf("%s/%s", root, rel);
    cleanup_free char *dir = xstrdup(path);
    *strrchr(dir, '/') = '\0';
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(mkdir_p(dir, 0755, &err), 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *get(const char *root, const char *rel)
{
    cleanup_free char *path = xasprintf("%s/%s", root, rel);
    char *data = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(read_file(path, 4096, &data, NULL, &err), 0);
    return data;
}

static void drop(char *root)
{
    cri_error_t err = CRI_ERROR_INIT;
    rm_rf(root, &err);
    free(root);
}

static void test_read_v1(void **state)
{
    char *root = fixture_root();
    put(root, "cpuacct/kubepods/pod1/cpuacct.usage", "123456789\n");
    put(root, "memory/kubepods/pod1/memory.usage_in_bytes", "10485760\n");
    put(root, "memory/kubepods/pod1/memory.stat",
        "cache 1\nrss 2\ntotal_cache 2097152\ntotal_rss 4194304\ntotal_inactive_file 1048576\n"
        "total_pgfault 100\ntotal_pgmajfault 2\n");
    put(root, "memory/kubepods/pod1/memory.limit_in_bytes", "9223372036854771712\n");
    put(root, "memory/kubepods/pod1/memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
    put(root, "pids/kubepods/pod1/pids.current", "5\n");
    cgroup_stats_t s;
    cgroup_read_stats(root, "/kubepods/pod1", false, &s);
    assert_true(s.valid);
    assert_int_equal(s.cpu_ns, 123456789);
    assert_int_equal(s.mem_usage, 10485760);
    assert_int_equal(s.mem_working_set, 10485760 - 1048576);
    assert_int_equal(s.mem_rss, 4194304); /* total_, not the cgroup's own */
    assert_int_equal(s.mem_cache, 2097152);
    assert_int_equal(s.page_faults, 100);
    assert_int_equal(s.major_page_faults, 2);
    assert_int_equal(s.mem_limit, 0); /* the "unlimited" value */
    assert_int_equal(s.oom_events, 3);
    assert_int_equal(s.pids, 5);
    assert_false(s.cpu_psi.valid || s.mem_psi.valid || s.io_psi.valid);

    put(root, "memory/kubepods/pod1/memory.limit_in_bytes", "67108864\n");
    cgroup_read_stats(root, "/kubepods/pod1", false, &s);
    assert_int_equal(s.mem_limit, 67108864);
    /* a cgroup that is not there: not valid, all zero */
    cgroup_read_stats(root, "/kubepods/gone", false, &s);
    assert_false(s.valid);
    assert_int_equal(s.cpu_ns + s.mem_usage + s.pids, 0);
    drop(root);
}

static void test_read_v2_with_psi(void **state)
{
    char *root = fixture_root();
    put(root, "kubepods.slice/pod1.slice/cpu.stat",
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n");
    put(root, "kubepods.slice/pod1.slice/memory.current", "8388608\n");
    put(root, "kubepods.slice/pod1.slice/memory.stat",
        "anon 3145728\nfile 4194304\ninactive_anon 0\nactive_file 0\ninactive_file 2097152\n"
        "pgfault 42\npgmajfault 7\n");
    put(root, "kubepods.slice/pod1.slice/memory.max", "max\n");
    put(root, "kubepods.slice/pod1.slice/memory.events",
        "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n");
    put(root, "kubepods.slice/pod1.slice/pids.current", "3\n");
    put(root, "kubepods.slice/pod1.slice/cpu.pressure",
        "some avg10=1.50 avg60=0.25 avg300=0.00 total=12345\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=678\n");
    put(root, "kubepods.slice/pod1.slice/io.pressure",
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=9\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=8\n");
    cgroup_stats_t s;
    cgroup_read_stats(root, "/kubepods.slice/pod1.slice", true, &s);
    assert_true(s.valid);
    assert_int_equal(s.cpu_ns, 1500000);
    assert_int_equal(s.mem_usage, 8388608);
    assert_int_equal(s.mem_working_set, 8388608 - 2097152);
    assert_int_equal(s.mem_rss, 3145728);
    assert_int_equal(s.mem_cache, 4194304);
    assert_int_equal(s.page_faults, 42);
    assert_int_equal(s.major_page_faults, 7);
    assert_int_equal(s.mem_limit, 0); /* "max" */
    assert_int_equal(s.oom_events, 1);
    assert_int_equal(s.pids, 3);
    assert_true(s.cpu_psi.valid && s.cpu_psi.some.valid && s.cpu_psi.full.valid);
    assert_int_equal(s.cpu_psi.some.total, 12345);
    assert_true(s.cpu_psi.some.avg10 > 1.49 && s.cpu_psi.some.avg10 < 1.51);
    assert_true(s.cpu_psi.some.avg60 > 0.24 && s.cpu_psi.some.avg60 < 0.26);
    assert_int_equal(s.cpu_psi.full.total, 678);
    assert_true(s.io_psi.valid);
    assert_int_equal(s.io_psi.full.total, 8);
    assert_false(s.mem_psi.valid); /* no memory.pressure in the fixture */

    put(root, "kubepods.slice/pod1.slice/memory.max", "104857600\n");
    cgroup_read_stats(root, "/kubepods.slice/pod1.slice", true, &s);
    assert_int_equal(s.mem_limit, 104857600);
    drop(root);
}

static void test_read_extra_v1(void **state)
{
    char *root = fixture_root();
    const char *c = "kubepods/pod1/c1";
    char path[256];
#define PUT(ctrl, file, text)                                    \
    do {                                                         \
        snprintf(path, sizeof(path), "%s/%s/%s", ctrl, c, file); \
        put(root, path, text);                                   \
    } while (0)
    PUT("cpu", "cpu.stat", "nr_periods 40\nnr_throttled 7\nthrottled_time 2500000000\n");
    PUT("cpuacct", "cpuacct.stat", "user 250\nsystem 130\n");
    PUT("memory", "memory.failcnt", "4\n");
    PUT("memory", "memory.stat",
        "mapped_file 1\nswap 2\npgfault 30\npgmajfault 1\ntotal_mapped_file 8192\n"
        "total_swap 4096\ntotal_pgfault 300\ntotal_pgmajfault 9\n");
    PUT("memory", "memory.kmem.usage_in_bytes", "65536\n");
    PUT("memory", "memory.max_usage_in_bytes", "1048576\n");
    PUT("memory", "memory.memsw.limit_in_bytes", "67108864\n");
    PUT("pids", "pids.current", "3\n");
    PUT("pids", "pids.max", "max\n");
    PUT("cpu", "cpu.cfs_period_us", "100000\n");
    PUT("cpu", "cpu.shares", "1024\n");
    PUT("blkio", "blkio.throttle.io_service_bytes",
        "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 1\n8:0 Async 2\n8:0 Total 12288\n"
        "253:1 Read 0\n253:1 Write 512\nTotal 12800\n");
    PUT("blkio", "blkio.throttle.io_serviced", "8:0 Read 1\n8:0 Write 2\n8:0 Total 3\nTotal 3\n");
#undef PUT
    cgroup_extra_t x;
    cgroup_read_extra(root, "/kubepods/pod1/c1", false, &x);
    assert_int_equal(x.cfs_periods, 40);
    assert_int_equal(x.cfs_throttled_periods, 7);
    assert_int_equal(x.cfs_throttled_ns, 2500000000u);
    assert_int_equal(x.cpu_user_ns, 2500000000u); /* 250 ticks of 1/100 s */
    assert_int_equal(x.cpu_system_ns, 1300000000u);
    assert_int_equal(x.mem_failcnt, 4);
    assert_int_equal(x.mem_mapped_file, 8192); /* total_, as the rss */
    assert_int_equal(x.mem_swap, 4096);
    assert_int_equal(x.pgfault, 30);
    assert_int_equal(x.pgmajfault, 1);
    assert_int_equal(x.pgfault_hier, 300);
    assert_int_equal(x.pgmajfault_hier, 9);
    assert_int_equal(x.mem_kernel, 65536);
    assert_int_equal(x.mem_max_usage, 1048576);
    assert_int_equal(x.swap_limit, 67108864);
    assert_int_equal(x.threads, 3);
    assert_int_equal(x.threads_max, 0); /* "max" */
    assert_int_equal(x.cpu_period, 100000);
    assert_int_equal(x.cpu_shares, 1024);
    assert_int_equal(x.n_devs, 2);
    assert_int_equal(x.devs[0].major, 8);
    assert_int_equal(x.devs[0].minor, 0);
    assert_int_equal(x.devs[0].read_bytes, 4096);
    assert_int_equal(x.devs[0].write_bytes, 8192);
    assert_int_equal(x.devs[0].reads, 1);
    assert_int_equal(x.devs[0].writes, 2);
    assert_int_equal(x.devs[1].major, 253);
    assert_int_equal(x.devs[1].minor, 1);
    assert_int_equal(x.devs[1].write_bytes, 512);

    /* memsw "unlimited" reads as no limit; a missing cgroup as zeros */
    put(root, "memory/kubepods/pod1/c1/memory.memsw.limit_in_bytes", "9223372036854771712\n");
    cgroup_read_extra(root, "/kubepods/pod1/c1", false, &x);
    assert_int_equal(x.swap_limit, 0);
    cgroup_read_extra(root, "/kubepods/gone", false, &x);
    assert_int_equal(x.cfs_periods + x.cpu_user_ns + x.threads + x.cpu_shares + x.n_devs, 0);
    drop(root);
}

static void test_read_extra_v2(void **state)
{
    char *root = fixture_root();
    put(root, "k.slice/c1/cpu.stat",
        "usage_usec 1500\nuser_usec 1000000\nsystem_usec 500000\nnr_periods 12\n"
        "nr_throttled 3\nthrottled_usec 250000\n");
    put(root, "k.slice/c1/memory.events", "low 0\nhigh 0\nmax 6\noom 1\noom_kill 1\n");
    put(root, "k.slice/c1/memory.stat",
        "anon 1\nfile 2\nkernel 40960\nfile_mapped 12288\npgfault 77\npgmajfault 5\n");
    put(root, "k.slice/c1/memory.swap.current", "2048\n");
    put(root, "k.slice/c1/memory.peak", "999424\n");
    put(root, "k.slice/c1/memory.swap.max", "max\n");
    put(root, "k.slice/c1/pids.current", "2\n");
    put(root, "k.slice/c1/pids.max", "100\n");
    put(root, "k.slice/c1/cpu.max", "20000 100000\n");
    put(root, "k.slice/c1/cpu.weight", "100\n");
    put(root, "k.slice/c1/io.stat",
        "8:16 rbytes=1024 wbytes=2048 rios=3 wios=4 dbytes=0 dios=0\n"
        "bogus line\n");
    cgroup_extra_t x;
    cgroup_read_extra(root, "/k.slice/c1", true, &x);
    assert_int_equal(x.cfs_periods, 12);
    assert_int_equal(x.cfs_throttled_periods, 3);
    assert_int_equal(x.cfs_throttled_ns, 250000000u);
    assert_int_equal(x.cpu_user_ns, 1000000000u);
    assert_int_equal(x.cpu_system_ns, 500000000u);
    assert_int_equal(x.mem_failcnt, 6);
    assert_int_equal(x.mem_kernel, 40960);
    assert_int_equal(x.mem_mapped_file, 12288);
    assert_int_equal(x.pgfault, 77);
    assert_int_equal(x.pgfault_hier, 77);
    assert_int_equal(x.pgmajfault_hier, 5);
    assert_int_equal(x.mem_swap, 2048);
    assert_int_equal(x.mem_max_usage, 999424);
    assert_int_equal(x.swap_limit, 0);
    assert_int_equal(x.threads, 2);
    assert_int_equal(x.threads_max, 100);
    assert_int_equal(x.cpu_period, 100000);
    assert_int_equal(x.cpu_shares, 2597); /* 2 + (100 - 1) * 262142 / 9999 */
    assert_int_equal(x.n_devs, 1);
    assert_int_equal(x.devs[0].major, 8);
    assert_int_equal(x.devs[0].minor, 16);
    assert_int_equal(x.devs[0].read_bytes, 1024);
    assert_int_equal(x.devs[0].write_bytes, 2048);
    assert_int_equal(x.devs[0].reads, 3);
    assert_int_equal(x.devs[0].writes, 4);
    drop(root);
}

static void test_psi_parse(void **state)
{
    cgroup_psi_t p;
    /* cpu.pressure on older kernels has no "full" line */
    assert_true(cgroup_psi_parse("some avg10=0.10 avg60=0.20 avg300=0.30 total=5\n", &p));
    assert_true(p.some.valid);
    assert_false(p.full.valid);
    assert_false(cgroup_psi_parse("", &p));
    assert_false(cgroup_psi_parse("some avg10=0.10 total=5\n", &p)); /* fields missing */
    assert_false(cgroup_psi_parse("garbage\n", &p));
}

static void test_stats_add(void **state)
{
    cgroup_stats_t sum = {0}, a = {.valid = true, .cpu_ns = 10, .mem_usage = 100, .pids = 1},
                   gone = {.valid = false, .cpu_ns = 999};
    cgroup_stats_add(&sum, &a);
    cgroup_stats_add(&sum, &a);
    cgroup_stats_add(&sum, &gone);
    assert_true(sum.valid);
    assert_int_equal(sum.cpu_ns, 20);
    assert_int_equal(sum.mem_usage, 200);
    assert_int_equal(sum.pids, 2);
}

static void test_parent_path(void **state)
{
    static const struct {
        const char *parent;
        bool systemd;
        const char *want; /* NULL: EINVAL */
    } cases[] = {
        {"/kubepods/burstable/pod1", false, "/kubepods/burstable/pod1"},
        {"/kubepods/pod1///", false, "/kubepods/pod1"},
        {"kubepods/pod1", false, "/kubepods/pod1"},
        {"kubepods-burstable-pod1.slice", true,
         "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice"},
        {"kubepods.slice", true, "/kubepods.slice"},
        {"-.slice", true, "/"},
        {"/kubepods/pod1", true, "/kubepods/pod1"}, /* a path stays a path */
        {"", false, NULL},
        {"/a/../b", false, NULL},
        {"/a/..", false, NULL},
        {"../a", false, NULL},
        {"kubepods", true, NULL},
        {"a--b.slice", true, NULL},
        {"-a.slice", true, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cleanup_free char *got = NULL;
        cri_error_t err = CRI_ERROR_INIT;
        int rc = cgroup_parent_path(cases[i].parent, cases[i].systemd, &got, &err);
        if (cases[i].want) {
            assert_int_equal(rc, 0);
            assert_string_equal(got, cases[i].want);
        } else {
            assert_int_equal(rc, -1);
            assert_int_equal(err.status, EINVAL);
            assert_null(got);
        }
    }
}

static void test_shares_to_weight(void **state)
{
    assert_int_equal(cgroup_shares_to_weight(0), 0);
    assert_int_equal(cgroup_shares_to_weight(2), 1);
    assert_int_equal(cgroup_shares_to_weight(1024), 39);
    assert_int_equal(cgroup_shares_to_weight(262144), 10000);
    assert_int_equal(cgroup_shares_to_weight(1u << 30), 10000);
}

static void test_set_limits_v1(void **state)
{
    char *root = fixture_root();
    const char *files[] = {"cpu/p/cpu.cfs_period_us", "cpu/p/cpu.cfs_quota_us", "cpu/p/cpu.shares",
                           "memory/p/memory.limit_in_bytes"};
    for (size_t i = 0; i < 4; i++)
        put(root, files[i], "unchanged");
    cgroup_limits_t l = {
        .cpu_period = 100000, .cpu_quota = 60000, .cpu_shares = 522, .memory_limit = 150994944};
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(cgroup_set_limits(root, "/p", false, &l, &err), 0);
    const char *want[] = {"100000", "60000", "522", "150994944"};
    for (size_t i = 0; i < 4; i++) {
        cleanup_free char *got = get(root, files[i]);
        assert_string_equal(got, want[i]);
    }
    /* 0 leaves a limit as it is */
    put(root, "memory/p/memory.limit_in_bytes", "unchanged");
    cgroup_limits_t cpu_only = {.cpu_shares = 2};
    assert_int_equal(cgroup_set_limits(root, "/p", false, &cpu_only, &err), 0);
    cleanup_free char *mem = get(root, "memory/p/memory.limit_in_bytes");
    assert_string_equal(mem, "unchanged");
    /* a missing cgroup: ENOENT naming it, nothing written */
    assert_int_equal(cgroup_set_limits(root, "/gone", false, &l, &err), -1);
    assert_int_equal(err.status, ENOENT);
    assert_non_null(strstr(err.msg, "gone"));
    drop(root);
}

static void test_set_limits_v2(void **state)
{
    char *root = fixture_root();
    put(root, "p.slice/cpu.max", "max 100000");
    put(root, "p.slice/cpu.weight", "100");
    put(root, "p.slice/memory.max", "max");
    cgroup_limits_t l = {.cpu_quota = 60000, .cpu_shares = 1024, .memory_limit = 67108864};
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(cgroup_set_limits(root, "/p.slice", true, &l, &err), 0);
    cleanup_free char *max = get(root, "p.slice/cpu.max");
    cleanup_free char *weight = get(root, "p.slice/cpu.weight");
    cleanup_free char *mem = get(root, "p.slice/memory.max");
    assert_string_equal(max, "60000 100000"); /* the default period */
    assert_string_equal(weight, "39");
    assert_string_equal(mem, "67108864");
    cgroup_limits_t unlimited = {.cpu_quota = -1, .cpu_period = 50000};
    assert_int_equal(cgroup_set_limits(root, "/p.slice", true, &unlimited, &err), 0);
    cleanup_free char *max2 = get(root, "p.slice/cpu.max");
    assert_string_equal(max2, "max 50000");
    assert_int_equal(cgroup_set_limits(root, "/gone.slice", true, &l, &err), -1);
    assert_int_equal(err.status, ENOENT);
    drop(root);
}

static const char NET_DEV[] =
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
    "drop fifo colls carrier compressed\n"
    "    lo:     100       1    0    0    0     0          0         0      100       1    0    "
    "0    0     0       0          0\n"
    "  eth0:    5000      40    1    2    0     0          0         0     3000      30    3    "
    "4    0     0       0          0\n"
    "  net1: 18446744073709551615 7 0 0 0 0 0 0 9 8 0 0 0 0 0 0\n";

static void test_netdev_parse(void **state)
{
    cleanup_free netdev_iface_t *ifs = NULL;
    size_t n = 0;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(netdev_parse(NET_DEV, &ifs, &n, &err), 0);
    assert_int_equal(n, 2); /* lo left out */
    assert_string_equal(ifs[0].name, "eth0");
    assert_int_equal(ifs[0].rx_bytes, 5000);
    assert_int_equal(ifs[0].rx_packets, 40);
    assert_int_equal(ifs[0].rx_errors, 1);
    assert_int_equal(ifs[0].rx_dropped, 2);
    assert_int_equal(ifs[0].tx_bytes, 3000);
    assert_int_equal(ifs[0].tx_packets, 30);
    assert_int_equal(ifs[0].tx_errors, 3);
    assert_int_equal(ifs[0].tx_dropped, 4);
    assert_string_equal(ifs[1].name, "net1");
    assert_true(ifs[1].rx_bytes == UINT64_MAX);
    assert_int_equal(ifs[1].tx_bytes, 9);
    assert_int_equal(netdev_default(ifs, n), 0);
    assert_int_equal(netdev_default(ifs + 1, 1), 0); /* no eth0: the first */
    assert_int_equal(netdev_default(ifs, 0), -1);
}

static void test_netdev_parse_errors(void **state)
{
    static const char *const bad[] = {
        "h1\nh2\n  eth0: 1 2 3\n",      /* too few numbers */
        "h1\nh2\n  eth0 1 2 3 4 5 6\n", /* no colon */
        "h1\nh2\n  : 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
        "h1\nh2\n  averyveryveryverylonginterfacename: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
        "h1\nh2\n  eth0: 1 2 x 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        netdev_iface_t *ifs = NULL;
        size_t n = 0;
        cri_error_t err = CRI_ERROR_INIT;
        assert_int_equal(netdev_parse(bad[i], &ifs, &n, &err), -1);
        assert_int_equal(err.status, EINVAL);
        assert_non_null(strstr(err.msg, "line 3"));
        assert_null(ifs);
    }
    /* headers only: no interface, no error */
    cleanup_free netdev_iface_t *ifs = NULL;
    size_t n = 9;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(netdev_parse("h1\nh2\n", &ifs, &n, &err), 0);
    assert_int_equal(n, 0);
}

static void test_netdev_read_netns_errors(void **state)
{
    netdev_iface_t *ifs = NULL;
    size_t n = 0;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(netdev_read_netns("/nonexistent/netns", &ifs, &n, &err), -1);
    assert_int_equal(err.status, ENOENT);
    /* not a network namespace: setns refuses, the daemon's thread stays put */
    assert_int_equal(netdev_read_netns("/proc/self/stat", &ifs, &n, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_non_null(strstr(err.msg, "enter network namespace"));
    assert_null(ifs);
    if (geteuid() != 0)
        return; /* setns needs CAP_SYS_ADMIN */
    /* the thread path on this process's own netns: the same interfaces as
     * /proc/<pid>/net/dev */
    cleanup_free netdev_iface_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    assert_int_equal(netdev_read_netns("/proc/self/ns/net", &a, &na, &err), 0);
    assert_int_equal(netdev_read_pid(getpid(), "/proc/self/ns/net", &b, &nb, &err), 0);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++)
        assert_string_equal(a[i].name, b[i].name);
}

static void test_netdev_read_pid(void **state)
{
    cleanup_free netdev_iface_t *ifs = NULL;
    size_t n = 0;
    cri_error_t err = CRI_ERROR_INIT;
    /* this process is in its own netns: the host's /proc/net/dev parses */
    assert_int_equal(netdev_read_pid(getpid(), "/proc/self/ns/net", &ifs, &n, &err), 0);
    /* another namespace's file (here: the mount namespace): refused */
    netdev_iface_t *none = NULL;
    assert_int_equal(netdev_read_pid(getpid(), "/proc/self/ns/mnt", &none, &n, &err), -1);
    assert_int_equal(err.status, ESRCH);
    assert_null(none);
    /* a pid that is not there */
    assert_int_equal(netdev_read_pid(0x3ffffff0, "/proc/self/ns/net", &none, &n, &err), -1);
    assert_int_equal(err.status, ESRCH);
    assert_int_equal(netdev_read_pid(getpid(), "/nonexistent/netns", &none, &n, &err), -1);
    assert_int_equal(err.status, ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_v1),
        cmocka_unit_test(test_read_v2_with_psi),
        cmocka_unit_test(test_read_extra_v1),
        cmocka_unit_test(test_read_extra_v2),
        cmocka_unit_test(test_psi_parse),
        cmocka_unit_test(test_stats_add),
        cmocka_unit_test(test_parent_path),
        cmocka_unit_test(test_shares_to_weight),
        cmocka_unit_test(test_set_limits_v1),
        cmocka_unit_test(test_set_limits_v2),
        cmocka_unit_test(test_netdev_parse),
        cmocka_unit_test(test_netdev_parse_errors),
        cmocka_unit_test(test_netdev_read_netns_errors),
        cmocka_unit_test(test_netdev_read_pid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
