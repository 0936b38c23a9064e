/* Capabilities: names, the default set, add/drop with "ALL". */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include <sys/capability.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "oci/oci-internal.h"

#define CAP_BIT(c) (UINT64_C(1) << (c))

/* The default set is containerd's (the Docker set): it is what the largest
 * share of Kubernetes nodes run, so images that work elsewhere work here
 * (ping needs NET_RAW, package managers need SETFCAP and MKNOD, chroot tools
 * need SYS_CHROOT). CRI-O's narrower set (no MKNOD, NET_RAW, SYS_CHROOT,
 * AUDIT_WRITE, SETFCAP) breaks those images unless a pod adds them back.
 * NET_ADMIN is not in it: critest's `brctl addbr` must fail by default. */
uint64_t oci_caps_default(void)
{
    return CAP_BIT(CAP_CHOWN) | CAP_BIT(CAP_DAC_OVERRIDE) | CAP_BIT(CAP_FSETID) |
           CAP_BIT(CAP_FOWNER) | CAP_BIT(CAP_MKNOD) | CAP_BIT(CAP_NET_RAW) | CAP_BIT(CAP_SETGID) |
           CAP_BIT(CAP_SETUID) | CAP_BIT(CAP_SETFCAP) | CAP_BIT(CAP_SETPCAP) |
           CAP_BIT(CAP_NET_BIND_SERVICE) | CAP_BIT(CAP_SYS_CHROOT) | CAP_BIT(CAP_KILL) |
           CAP_BIT(CAP_AUDIT_WRITE);
}

int oci_cap_parse(const char *name, int *ret_cap, cri_error_t *err)
{
    if (!name || !*name)
        return cri_error_set(err, EINVAL, "empty capability name");
    size_t len = strlen(name);
    if (len > 64)
        return cri_error_set(err, EINVAL, "unknown capability `%.64s...`", name);

    /* lower case, with the cap_ prefix libcap's names carry */
    char buf[80] = "cap_";
    size_t off = strncasecmp(name, "cap_", 4) == 0 ? 4 : 0;
    size_t n = 4;
    for (size_t i = off; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalpha(c) && c != '_') /* libcap also takes numbers: we don't */
            return cri_error_set(err, EINVAL, "unknown capability `%s`", name);
        buf[n++] = (char)tolower(c);
    }
    buf[n] = '\0';

    cap_value_t v;
    if (cap_from_name(buf, &v) < 0 || v < 0 || v > 63)
        return cri_error_set(err, EINVAL, "unknown capability `%s`", name);
    *ret_cap = (int)v;
    return 0;
}

static bool caps_list_has_all(const char *const *v)
{
    for (; v && *v; v++)
        if (strcasecmp(*v, "ALL") == 0 || strcasecmp(*v, "CAP_ALL") == 0)
            return true;
    return false;
}

/* ORs (or clears, with set=false) every named capability except ALL. */
static int caps_apply(const char *const *v, bool set, uint64_t *caps, cri_error_t *err)
{
    for (; v && *v; v++) {
        if (strcasecmp(*v, "ALL") == 0 || strcasecmp(*v, "CAP_ALL") == 0)
            continue;
        int c;
        if (oci_cap_parse(*v, &c, err) < 0)
            return -1;
        if (set)
            *caps |= CAP_BIT(c);
        else
            *caps &= ~CAP_BIT(c);
    }
    return 0;
}

int oci_caps_compute(const oci_desc_t *desc, const oci_host_t *host, uint64_t *ret_caps,
                     cri_error_t *err)
{
    uint64_t caps = oci_caps_default();

    /* Validate every name first so a bad one is reported even when ALL or
     * privileged would make it moot. */
    uint64_t scratch = 0;
    if (caps_apply(desc->cap_add, true, &scratch, err) < 0 ||
        caps_apply(desc->cap_drop, false, &scratch, err) < 0)
        return -1;

    if (desc->privileged) {
        *ret_caps = host->cap_bounding;
        return 0;
    }
    /* containerd's order: "ALL" first, so that add ALL + drop X is everything
     * but X, and drop ALL + add X is exactly X. */
    if (caps_list_has_all(desc->cap_add))
        caps = host->cap_bounding;
    if (caps_list_has_all(desc->cap_drop))
        caps = 0;
    caps_apply(desc->cap_add, true, &caps, err);
    caps_apply(desc->cap_drop, false, &caps, err);

    /* A capability this process does not hold cannot be handed out: the
     * runtime's capset() would fail and take the container with it. */
    *ret_caps = caps & host->cap_bounding;
    return 0;
}

json_t *oci_caps_to_json(uint64_t caps)
{
    json_t *a = json_array();
    for (int c = 0; c < 64; c++) {
        if (!(caps & CAP_BIT(c)))
            continue;
        cleanup_free char *upper = NULL;
        char *name = cap_to_name(c);
        if (name && str_has_prefix(name, "cap_"))
            upper = xstrdup(name);
        else
            upper = xasprintf("cap_%d", c);
        if (name)
            cap_free(name);
        for (char *p = upper; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        oci_json_push(a, json_string(upper));
    }
    return a;
}

/* Bounding, effective and permitted carry the set. Inheritable stays empty
 * (containerd and CRI-O dropped it after CVE-2022-24769: a non-empty
 * inheritable set lets file capabilities of an executed binary be raised
 * without the bounding set's consent); ambient is not set, so a non-root
 * process keeps no effective capabilities after execve, as in Docker. */
json_t *oci_caps_spec(uint64_t caps)
{
    json_t *o = json_object();
    oci_json_set(o, "bounding", oci_caps_to_json(caps));
    oci_json_set(o, "effective", oci_caps_to_json(caps));
    oci_json_set(o, "permitted", oci_caps_to_json(caps));
    return o;
}
