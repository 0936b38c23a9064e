/* Facts about the host that shape every spec, read once at startup. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "oci/oci.h"

/* The hex mask after `key` in /proc/self/status ("CapBnd:\t000001ffffffffff"). */
static bool status_mask(const char *status, const char *key, uint64_t *ret)
{
    const char *p = strstr(status, key);
    if (!p)
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(p + strlen(key), &end, 16);
    if (errno || end == p + strlen(key))
        return false;
    *ret = (uint64_t)v;
    return true;
}

static bool read_long(const char *path, long *ret)
{
    cleanup_free char *data = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    if (read_file(path, 64, &data, NULL, &err) < 0)
        return false;
    char *end = NULL;
    errno = 0;
    long v = strtol(data, &end, 10);
    if (errno || end == data)
        return false;
    *ret = v;
    return true;
}

/* kubelet asks for hugepage limits on every container; the runtime can set
 * them only where the hugetlb controller is there: mounted as a v1
 * hierarchy, or enabled in the root of a pure v2 host. (A hybrid host may
 * have it compiled in but mounted nowhere runc uses.) */
static bool hugetlb_usable(bool cgroup2)
{
    if (!cgroup2) {
        struct statfs sfs;
        return statfs("/sys/fs/cgroup/hugetlb", &sfs) == 0 && sfs.f_type == CGROUP_SUPER_MAGIC;
    }
    cleanup_free char *ctrls = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    if (read_file("/sys/fs/cgroup/cgroup.controllers", 4096, &ctrls, NULL, &err) < 0)
        return false;
    for (char *save = NULL, *t = strtok_r(ctrls, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
        if (strcmp(t, "hugetlb") == 0)
            return true;
    return false;
}

bool oci_mount_setattr_supported(void)
{
    /* an invalid call: EBADF/EINVAL when the syscall exists, ENOSYS if not */
    long r = syscall(SYS_mount_setattr, -1, "", 0, NULL, 0);
    return !(r < 0 && errno == ENOSYS);
}

void oci_host_detect(oci_host_t *ret_host)
{
    oci_host_t h = {.cap_last = CAP_LAST_CAP, .oom_score_adj_min = 0, .dev_root = "/dev"};

    long last;
    if (read_long("/proc/sys/kernel/cap_last_cap", &last) && last > 0 && last < 64)
        h.cap_last = (int)last;
    uint64_t all = h.cap_last >= 63 ? UINT64_MAX : (UINT64_C(1) << (h.cap_last + 1)) - 1;

    cleanup_free char *status = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    uint64_t bnd = 0, eff = 0;
    if (read_file("/proc/self/status", 1 << 16, &status, NULL, &err) == 0 &&
        status_mask(status, "CapBnd:", &bnd) && status_mask(status, "CapEff:", &eff)) {
        h.cap_bounding = bnd & all;
    } else {
        h.cap_bounding = oci_caps_default();
    }

    struct statfs sfs;
    h.cgroup2 = statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC;
    h.hugetlb = hugetlb_usable(h.cgroup2);

    if (eff & (UINT64_C(1) << CAP_SYS_RESOURCE)) {
        h.oom_score_adj_min = -1000;
    } else {
        long cur = 0;
        if (read_long("/proc/self/oom_score_adj", &cur) && cur >= -1000 && cur <= 1000)
            h.oom_score_adj_min = (int)cur;
        log_warn("no CAP_SYS_RESOURCE: container oom_score_adj below %d will be raised to %d",
                 h.oom_score_adj_min, h.oom_score_adj_min);
    }
    *ret_host = h;
}
