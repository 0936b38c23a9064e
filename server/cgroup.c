/* Reading and sizing cgroups (see cgroup.h). Every figure comes from one
 * small file; a file that is missing (a controller not enabled, an older
 * kernel, PSI off) reads as zero or as "not there", never as an error:
 * stats are best effort, limits are not. */
#include "server/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

#define CGROUP_FILE_MAX ((size_t)256 * 1024)
#define V1_UNLIMITED (UINT64_C(1) << 62) /* memory.limit_in_bytes of "no limit" */

/* root[/ctrl]/rel/file */
static char *cg_file(const char *root, const char *ctrl, const char *rel, const char *file)
{
    const char *sep = rel[0] == '/' ? "" : "/";
    if (ctrl)
        return xasprintf("%s/%s%s%s/%s", root, ctrl, sep, rel, file);
    return xasprintf("%s%s%s/%s", root, sep, rel, file);
}

static char *read_small(const char *path)
{
    char *data = NULL;
    cri_error_t ignored = CRI_ERROR_INIT;
    if (read_file(path, CGROUP_FILE_MAX, &data, NULL, &ignored) < 0)
        return NULL;
    return data;
}

/* A single number; *ret_found false (and 0) when unreadable. "max" is 0. */
static uint64_t read_u64(const char *path, bool *ret_found)
{
    cleanup_free char *data = read_small(path);
    if (ret_found)
        *ret_found = data != NULL;
    if (!data || strncmp(data, "max", 3) == 0)
        return 0;
    return strtoull(data, NULL, 10);
}

/* The value of `key` in a "key value" per line text. */
static uint64_t keyed(const char *data, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = data; p && *p;) {
        if (strncmp(p, key, klen) == 0 && p[klen] == ' ')
            return strtoull(p + klen + 1, NULL, 10);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return 0;
}

static bool psi_line(const char *line, cgroup_psi_line_t *ret)
{
    memset(ret, 0, sizeof(*ret));
    const char *a10 = strstr(line, "avg10="), *a60 = strstr(line, "avg60=");
    const char *a300 = strstr(line, "avg300="), *tot = strstr(line, "total=");
    if (!a10 || !a60 || !a300 || !tot)
        return false;
    ret->avg10 = strtod(a10 + 6, NULL);
    ret->avg60 = strtod(a60 + 6, NULL);
    ret->avg300 = strtod(a300 + 7, NULL);
    ret->total = strtoull(tot + 6, NULL, 10);
    ret->valid = true;
    return true;
}

bool cgroup_psi_parse(const char *text, cgroup_psi_t *ret)
{
    memset(ret, 0, sizeof(*ret));
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        cleanup_free char *line = xstrndup(p, len);
        if (str_has_prefix(line, "some "))
            psi_line(line, &ret->some);
        else if (str_has_prefix(line, "full "))
            psi_line(line, &ret->full);
        p = nl ? nl + 1 : NULL;
    }
    ret->valid = ret->some.valid || ret->full.valid;
    return ret->valid;
}

static void read_psi(const char *root, const char *rel, const char *file, cgroup_psi_t *ret)
{
    cleanup_free char *path = cg_file(root, NULL, rel, file);
    cleanup_free char *data = read_small(path);
    if (!data || !cgroup_psi_parse(data, ret))
        memset(ret, 0, sizeof(*ret));
}

/* memory.stat's names for inactive file, rss, cache, page faults and
 * major page faults (v1 counts the hierarchy under "total_*"). */
static const char *const V1_MEM_KEYS[5] = {"total_inactive_file", "total_rss", "total_cache",
                                           "total_pgfault", "total_pgmajfault"};
static const char *const V2_MEM_KEYS[5] = {"inactive_file", "anon", "file", "pgfault",
                                           "pgmajfault"};

/* rss, cache and page faults from memory.stat at path; the working set
 * is usage minus inactive file pages (ret->mem_usage already read). */
static void read_mem_stat(const char *path, const char *const keys[5], cgroup_stats_t *ret)
{
    cleanup_free char *stat = read_small(path);
    uint64_t inactive = 0;
    if (stat) {
        inactive = keyed(stat, keys[0]);
        ret->mem_rss = keyed(stat, keys[1]);
        ret->mem_cache = keyed(stat, keys[2]);
        ret->page_faults = keyed(stat, keys[3]);
        ret->major_page_faults = keyed(stat, keys[4]);
    }
    ret->mem_working_set = ret->mem_usage > inactive ? ret->mem_usage - inactive : 0;
}

static void read_v1(const char *root, const char *rel, cgroup_stats_t *ret)
{
    bool cpu_found = false, mem_found = false;
    cleanup_free char *usage = cg_file(root, "cpuacct", rel, "cpuacct.usage");
    ret->cpu_ns = read_u64(usage, &cpu_found);
    cleanup_free char *cur = cg_file(root, "memory", rel, "memory.usage_in_bytes");
    ret->mem_usage = read_u64(cur, &mem_found);
    cleanup_free char *stat_path = cg_file(root, "memory", rel, "memory.stat");
    read_mem_stat(stat_path, V1_MEM_KEYS, ret);
    cleanup_free char *limit = cg_file(root, "memory", rel, "memory.limit_in_bytes");
    uint64_t lim = read_u64(limit, NULL);
    ret->mem_limit = lim >= V1_UNLIMITED ? 0 : lim;
    cleanup_free char *oom_path = cg_file(root, "memory", rel, "memory.oom_control");
    cleanup_free char *oom = read_small(oom_path);
    ret->oom_events = oom ? keyed(oom, "oom_kill") : 0;
    cleanup_free char *pids = cg_file(root, "pids", rel, "pids.current");
    ret->pids = read_u64(pids, NULL);
    ret->valid = cpu_found || mem_found;
}

static void read_v2(const char *root, const char *rel, cgroup_stats_t *ret)
{
    cleanup_free char *cpu_path = cg_file(root, NULL, rel, "cpu.stat");
    cleanup_free char *cpu = read_small(cpu_path);
    if (cpu)
        ret->cpu_ns = keyed(cpu, "usage_usec") * 1000;
    bool mem_found = false;
    cleanup_free char *cur = cg_file(root, NULL, rel, "memory.current");
    ret->mem_usage = read_u64(cur, &mem_found);
    cleanup_free char *stat_path = cg_file(root, NULL, rel, "memory.stat");
    read_mem_stat(stat_path, V2_MEM_KEYS, ret);
    cleanup_free char *max = cg_file(root, NULL, rel, "memory.max");
    ret->mem_limit = read_u64(max, NULL);
    cleanup_free char *ev_path = cg_file(root, NULL, rel, "memory.events");
    cleanup_free char *ev = read_small(ev_path);
    ret->oom_events = ev ? keyed(ev, "oom_kill") : 0;
    cleanup_free char *pids = cg_file(root, NULL, rel, "pids.current");
    ret->pids = read_u64(pids, NULL);
    read_psi(root, rel, "cpu.pressure", &ret->cpu_psi);
    read_psi(root, rel, "memory.pressure", &ret->mem_psi);
    read_psi(root, rel, "io.pressure", &ret->io_psi);
    ret->valid = cpu != NULL || mem_found;
}

void cgroup_read_stats(const char *root, const char *rel, bool v2, cgroup_stats_t *ret)
{
    memset(ret, 0, sizeof(*ret));
    if (!rel)
        return;
    if (v2)
        read_v2(root, rel, ret);
    else
        read_v1(root, rel, ret);
}

void cgroup_stats_add(cgroup_stats_t *a, const cgroup_stats_t *b)
{
    if (!b->valid)
        return;
    a->valid = true;
    a->cpu_ns += b->cpu_ns;
    a->mem_usage += b->mem_usage;
    a->mem_working_set += b->mem_working_set;
    a->mem_rss += b->mem_rss;
    a->mem_cache += b->mem_cache;
    a->page_faults += b->page_faults;
    a->major_page_faults += b->major_page_faults;
    a->oom_events += b->oom_events;
    a->pids += b->pids;
}

char *cgroup_of_pid(pid_t pid, const char *controller, bool *ret_v2)
{
    cleanup_free char *path = xasprintf("/proc/%d/cgroup", (int)pid);
    cleanup_free char *data = read_small(path);
    if (!data)
        return NULL;
    char *v2 = NULL;
    for (char *save = NULL, *line = strtok_r(data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *ctrls = strchr(line, ':');
        char *rel = ctrls ? strchr(ctrls + 1, ':') : NULL;
        if (!rel)
            continue;
        *rel++ = '\0';
        ctrls++;
        if (!*ctrls) {
            str_set(&v2, rel);
            continue;
        }
        for (char *s2 = NULL, *c = strtok_r(ctrls, ",", &s2); c; c = strtok_r(NULL, ",", &s2))
            if (strcmp(c, controller) == 0) {
                free(v2);
                *ret_v2 = false;
                return xstrdup(rel);
            }
    }
    *ret_v2 = true;
    return v2;
}

static int systemd_slice_path(const char *parent, char **ret, cri_error_t *err)
{
    size_t len = strlen(parent);
    if (len <= 6 || strcmp(parent + len - 6, ".slice") != 0 || strchr(parent, '/'))
        return cri_error_set(err, EINVAL, "cgroup parent `%s` is not a systemd slice", parent);
    if (strcmp(parent, "-.slice") == 0) {
        *ret = xstrdup("/");
        return 0;
    }
    /* "a-b-c.slice" lives in "/a.slice/a-b.slice/a-b-c.slice" */
    size_t stem = len - 6;
    char *out = xstrdup("");
    for (size_t i = 0; i <= stem; i++) {
        if (i < stem && parent[i] != '-')
            continue;
        if (i == 0 || parent[i - 1] == '-') {
            free(out);
            return cri_error_set(err, EINVAL, "cgroup parent `%s`: empty slice name part", parent);
        }
        char *next = xasprintf("%s/%.*s.slice", out, (int)i, parent);
        free(out);
        out = next;
    }
    *ret = out;
    return 0;
}

int cgroup_parent_path(const char *parent, bool systemd, char **ret, cri_error_t *err)
{
    if (!parent || !parent[0])
        return cri_error_set(err, EINVAL, "cgroup parent is empty");
    if (strstr(parent, "/../") || str_has_prefix(parent, "../") ||
        (strlen(parent) >= 3 && strcmp(parent + strlen(parent) - 3, "/..") == 0) ||
        strcmp(parent, "..") == 0)
        return cri_error_set(err, EINVAL, "cgroup parent `%s` has a `..` component", parent);
    if (systemd && !strchr(parent, '/'))
        return systemd_slice_path(parent, ret, err);
    size_t len = strlen(parent);
    while (len > 1 && parent[len - 1] == '/')
        len--;
    *ret = xasprintf("%s%.*s", parent[0] == '/' ? "" : "/", (int)len, parent);
    return 0;
}

uint64_t cgroup_shares_to_weight(uint64_t shares)
{
    if (shares == 0)
        return 0;
    if (shares < 2)
        shares = 2;
    if (shares > 262144)
        shares = 262144;
    return 1 + ((shares - 2) * 9999) / 262142;
}

static int write_value(const char *path, const char *value, cri_error_t *err)
{
    cleanup_close int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0)
        return cri_error_make(err, errno, "open `%s`", path);
    if (write_all(fd, value, strlen(value)) < 0)
        return cri_error_make(err, errno, "write `%s` to `%s`", value, path);
    return 0;
}

static int check_dir(const char *root, const char *ctrl, const char *rel, cri_error_t *err)
{
    cleanup_free char *dir = cg_file(root, ctrl, rel, ".");
    if (access(dir, F_OK) < 0)
        return cri_error_make(err, errno, "cgroup `%s`", dir);
    return 0;
}

static int set_v1(const char *root, const char *rel, const cgroup_limits_t *l, cri_error_t *err)
{
    char num[32];
    if (l->cpu_period || l->cpu_quota || l->cpu_shares) {
        if (check_dir(root, "cpu", rel, err) < 0)
            return -1;
        cleanup_free char *period = cg_file(root, "cpu", rel, "cpu.cfs_period_us");
        cleanup_free char *quota = cg_file(root, "cpu", rel, "cpu.cfs_quota_us");
        cleanup_free char *shares = cg_file(root, "cpu", rel, "cpu.shares");
        (void)snprintf(num, sizeof(num), "%" PRId64, l->cpu_period);
        if (l->cpu_period && write_value(period, num, err) < 0)
            return -1;
        (void)snprintf(num, sizeof(num), "%" PRId64, l->cpu_quota);
        if (l->cpu_quota && write_value(quota, num, err) < 0)
            return -1;
        (void)snprintf(num, sizeof(num), "%" PRId64, l->cpu_shares);
        if (l->cpu_shares && write_value(shares, num, err) < 0)
            return -1;
    }
    if (l->memory_limit) {
        if (check_dir(root, "memory", rel, err) < 0)
            return -1;
        cleanup_free char *mem = cg_file(root, "memory", rel, "memory.limit_in_bytes");
        (void)snprintf(num, sizeof(num), "%" PRId64, l->memory_limit);
        if (write_value(mem, num, err) < 0)
            return -1;
    }
    return 0;
}

static int set_v2(const char *root, const char *rel, const cgroup_limits_t *l, cri_error_t *err)
{
    if (check_dir(root, NULL, rel, err) < 0)
        return -1;
    char val[64];
    if (l->cpu_quota || l->cpu_period) {
        cleanup_free char *max = cg_file(root, NULL, rel, "cpu.max");
        int64_t period = l->cpu_period ? l->cpu_period : 100000;
        if (l->cpu_quota > 0)
            (void)snprintf(val, sizeof(val), "%" PRId64 " %" PRId64, l->cpu_quota, period);
        else
            (void)snprintf(val, sizeof(val), "max %" PRId64, period);
        if (write_value(max, val, err) < 0)
            return -1;
    }
    if (l->cpu_shares) {
        cleanup_free char *weight = cg_file(root, NULL, rel, "cpu.weight");
        (void)snprintf(val, sizeof(val), "%" PRIu64,
                       cgroup_shares_to_weight((uint64_t)l->cpu_shares));
        if (write_value(weight, val, err) < 0)
            return -1;
    }
    if (l->memory_limit) {
        cleanup_free char *mem = cg_file(root, NULL, rel, "memory.max");
        (void)snprintf(val, sizeof(val), "%" PRId64, l->memory_limit);
        if (write_value(mem, val, err) < 0)
            return -1;
    }
    return 0;
}

int cgroup_set_limits(const char *root, const char *rel, bool v2, const cgroup_limits_t *l,
                      cri_error_t *err)
{
    return v2 ? set_v2(root, rel, l, err) : set_v1(root, rel, l, err);
}

/* ---- the extra figures of the CRI metrics ---- */

static cgroup_blkio_dev_t *blkio_dev(cgroup_extra_t *ret, uint32_t major, uint32_t minor)
{
    for (size_t i = 0; i < ret->n_devs; i++)
        if (ret->devs[i].major == major && ret->devs[i].minor == minor)
            return &ret->devs[i];
    if (ret->n_devs == CGROUP_BLKIO_MAX)
        return NULL;
    cgroup_blkio_dev_t *d = &ret->devs[ret->n_devs++];
    memset(d, 0, sizeof(*d));
    d->major = major;
    d->minor = minor;
    return d;
}

/* "M:m" at p; the end of it in *ret_end. False when p holds no device. */
static bool parse_dev(const char *p, uint32_t *major, uint32_t *minor, char **ret_end)
{
    char *end = NULL;
    unsigned long ma = strtoul(p, &end, 10);
    if (end == p || *end != ':')
        return false;
    const char *q = end + 1;
    unsigned long mi = strtoul(q, &end, 10);
    if (end == q)
        return false;
    *major = (uint32_t)ma;
    *minor = (uint32_t)mi;
    *ret_end = end;
    return true;
}

/* v1 "M:m Read N" lines into the read/write fields chosen by `bytes`. */
static void read_v1_blkio(const char *root, const char *rel, const char *file, bool bytes,
                          cgroup_extra_t *ret)
{
    cleanup_free char *path = cg_file(root, "blkio", rel, file);
    cleanup_free char *data = read_small(path);
    for (char *p = data; p && *p;) {
        uint32_t ma = 0, mi = 0;
        char *end = NULL;
        if (parse_dev(p, &ma, &mi, &end) && *end == ' ') {
            bool rd = str_has_prefix(end + 1, "Read "), wr = str_has_prefix(end + 1, "Write ");
            cgroup_blkio_dev_t *d = (rd || wr) ? blkio_dev(ret, ma, mi) : NULL;
            if (d) {
                uint64_t v = strtoull(end + (rd ? 6 : 7), NULL, 10);
                if (bytes)
                    *(rd ? &d->read_bytes : &d->write_bytes) = v;
                else
                    *(rd ? &d->reads : &d->writes) = v;
            }
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
}

/* The value of "key=N" in a line of io.stat. */
static uint64_t eq_value(const char *line, const char *key)
{
    const char *k = strstr(line, key);
    return k ? strtoull(k + strlen(key), NULL, 10) : 0;
}

static void read_v2_io(const char *root, const char *rel, cgroup_extra_t *ret)
{
    cleanup_free char *path = cg_file(root, NULL, rel, "io.stat");
    cleanup_free char *data = read_small(path);
    for (char *save = NULL, *line = data ? strtok_r(data, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        uint32_t ma = 0, mi = 0;
        char *end = NULL;
        cgroup_blkio_dev_t *d = parse_dev(line, &ma, &mi, &end) ? blkio_dev(ret, ma, mi) : NULL;
        if (!d)
            continue;
        d->read_bytes = eq_value(end, " rbytes=");
        d->write_bytes = eq_value(end, " wbytes=");
        d->reads = eq_value(end, " rios=");
        d->writes = eq_value(end, " wios=");
    }
}

#define USER_HZ_NS UINT64_C(10000000) /* cpuacct.stat counts 1/100 s ticks */

static void read_v1_extra(const char *root, const char *rel, cgroup_extra_t *ret)
{
    cleanup_free char *cs_path = cg_file(root, "cpu", rel, "cpu.stat");
    cleanup_free char *cs = read_small(cs_path);
    ret->cfs_periods = keyed(cs, "nr_periods");
    ret->cfs_throttled_periods = keyed(cs, "nr_throttled");
    ret->cfs_throttled_ns = keyed(cs, "throttled_time");
    cleanup_free char *ca_path = cg_file(root, "cpuacct", rel, "cpuacct.stat");
    cleanup_free char *ca = read_small(ca_path);
    ret->cpu_user_ns = keyed(ca, "user") * USER_HZ_NS;
    ret->cpu_system_ns = keyed(ca, "system") * USER_HZ_NS;
    cleanup_free char *fc = cg_file(root, "memory", rel, "memory.failcnt");
    ret->mem_failcnt = read_u64(fc, NULL);
    cleanup_free char *st_path = cg_file(root, "memory", rel, "memory.stat");
    cleanup_free char *st = read_small(st_path);
    ret->mem_mapped_file = keyed(st, "total_mapped_file");
    ret->mem_swap = keyed(st, "total_swap");
    ret->pgfault = keyed(st, "pgfault");
    ret->pgmajfault = keyed(st, "pgmajfault");
    ret->pgfault_hier = keyed(st, "total_pgfault");
    ret->pgmajfault_hier = keyed(st, "total_pgmajfault");
    cleanup_free char *km = cg_file(root, "memory", rel, "memory.kmem.usage_in_bytes");
    ret->mem_kernel = read_u64(km, NULL);
    cleanup_free char *mx = cg_file(root, "memory", rel, "memory.max_usage_in_bytes");
    ret->mem_max_usage = read_u64(mx, NULL);
    cleanup_free char *sw = cg_file(root, "memory", rel, "memory.memsw.limit_in_bytes");
    uint64_t swl = read_u64(sw, NULL);
    ret->swap_limit = swl >= V1_UNLIMITED ? 0 : swl;
    cleanup_free char *pc = cg_file(root, "pids", rel, "pids.current");
    ret->threads = read_u64(pc, NULL);
    cleanup_free char *pm = cg_file(root, "pids", rel, "pids.max");
    ret->threads_max = read_u64(pm, NULL);
    cleanup_free char *per = cg_file(root, "cpu", rel, "cpu.cfs_period_us");
    ret->cpu_period = read_u64(per, NULL);
    cleanup_free char *sh = cg_file(root, "cpu", rel, "cpu.shares");
    ret->cpu_shares = read_u64(sh, NULL);
    read_v1_blkio(root, rel, "blkio.throttle.io_service_bytes", true, ret);
    read_v1_blkio(root, rel, "blkio.throttle.io_serviced", false, ret);
}

/* cpu.weight back to shares, the inverse of cgroup_shares_to_weight. */
static uint64_t weight_to_shares(uint64_t weight)
{
    return weight ? 2 + ((weight - 1) * 262142) / 9999 : 0;
}

static void read_v2_extra(const char *root, const char *rel, cgroup_extra_t *ret)
{
    cleanup_free char *cs_path = cg_file(root, NULL, rel, "cpu.stat");
    cleanup_free char *cs = read_small(cs_path);
    ret->cfs_periods = keyed(cs, "nr_periods");
    ret->cfs_throttled_periods = keyed(cs, "nr_throttled");
    ret->cfs_throttled_ns = keyed(cs, "throttled_usec") * 1000;
    ret->cpu_user_ns = keyed(cs, "user_usec") * 1000;
    ret->cpu_system_ns = keyed(cs, "system_usec") * 1000;
    cleanup_free char *ev_path = cg_file(root, NULL, rel, "memory.events");
    cleanup_free char *ev = read_small(ev_path);
    ret->mem_failcnt = keyed(ev, "max");
    cleanup_free char *st_path = cg_file(root, NULL, rel, "memory.stat");
    cleanup_free char *st = read_small(st_path);
    ret->mem_mapped_file = keyed(st, "file_mapped");
    ret->mem_kernel = keyed(st, "kernel");
    ret->pgfault = ret->pgfault_hier = keyed(st, "pgfault");
    ret->pgmajfault = ret->pgmajfault_hier = keyed(st, "pgmajfault");
    cleanup_free char *sw = cg_file(root, NULL, rel, "memory.swap.current");
    ret->mem_swap = read_u64(sw, NULL);
    cleanup_free char *pk = cg_file(root, NULL, rel, "memory.peak");
    ret->mem_max_usage = read_u64(pk, NULL);
    cleanup_free char *swm = cg_file(root, NULL, rel, "memory.swap.max");
    ret->swap_limit = read_u64(swm, NULL);
    cleanup_free char *pc = cg_file(root, NULL, rel, "pids.current");
    ret->threads = read_u64(pc, NULL);
    cleanup_free char *pm = cg_file(root, NULL, rel, "pids.max");
    ret->threads_max = read_u64(pm, NULL);
    cleanup_free char *cm_path = cg_file(root, NULL, rel, "cpu.max");
    cleanup_free char *cm = read_small(cm_path);
    const char *sp = cm ? strchr(cm, ' ') : NULL;
    ret->cpu_period = sp ? strtoull(sp + 1, NULL, 10) : 0;
    cleanup_free char *w = cg_file(root, NULL, rel, "cpu.weight");
    ret->cpu_shares = weight_to_shares(read_u64(w, NULL));
    read_v2_io(root, rel, ret);
}

void cgroup_read_extra(const char *root, const char *rel, bool v2, cgroup_extra_t *ret)
{
    memset(ret, 0, sizeof(*ret));
    if (!rel)
        return;
    if (v2)
        read_v2_extra(root, rel, ret);
    else
        read_v1_extra(root, rel, ret);
}
