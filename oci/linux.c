/* The "linux" section: namespaces, cgroups, resources, devices, sysctls,
 * masked and read-only paths, seccomp. */
#include <errno.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "oci/oci-internal.h"

#define DEFAULT_CGROUPFS_PARENT "/cricket"
#define DEFAULT_SYSTEMD_SLICE "system.slice"
#define DEFAULT_SCOPE_PREFIX "cricket"

/* The lists kubelet itself sends by default (pkg/securitycontext), which
 * containerd also uses when a caller gives none. */
static const char *const default_masked_paths[] = {"/proc/acpi",
                                                   "/proc/asound",
                                                   "/proc/kcore",
                                                   "/proc/keys",
                                                   "/proc/latency_stats",
                                                   "/proc/timer_list",
                                                   "/proc/timer_stats",
                                                   "/proc/sched_debug",
                                                   "/proc/scsi",
                                                   "/sys/firmware",
                                                   "/sys/devices/virtual/powercap",
                                                   NULL};
static const char *const default_readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL};

static int ns_add(json_t *list, const char *type, const oci_namespace_t *ns, cri_error_t *err)
{
    switch (ns->mode) {
    case OCI_NS_HOST:
        return 0;
    case OCI_NS_NEW:
        break;
    case OCI_NS_JOIN:
        if (!ns->path || ns->path[0] != '/')
            return cri_error_set(err, EINVAL, "%s namespace path `%s` is not absolute", type,
                                 ns->path ? ns->path : "");
        break;
    default:
        return cri_error_set(err, EINVAL, "%s namespace: unknown mode %d", type, (int)ns->mode);
    }
    json_t *o = json_object();
    oci_json_set(o, "type", json_string(type));
    if (ns->mode == OCI_NS_JOIN)
        oci_json_set(o, "path", json_string(ns->path));
    oci_json_push(list, o);
    return 0;
}

static int namespaces_json(const oci_desc_t *desc, json_t **ret, cri_error_t *err)
{
    static const oci_namespace_t fresh = {OCI_NS_NEW, NULL};
    cleanup_json json_t *list = json_array();
    /* only a joined user namespace is written (a zeroed desc means the
     * host's); listed first: the runtime joins it before the others */
    if (desc->ns_user.mode == OCI_NS_JOIN && ns_add(list, "user", &desc->ns_user, err) < 0)
        return -1;
    if (ns_add(list, "pid", &desc->ns_pid, err) < 0 ||
        ns_add(list, "network", &desc->ns_network, err) < 0 ||
        ns_add(list, "ipc", &desc->ns_ipc, err) < 0 ||
        ns_add(list, "uts", &desc->ns_uts, err) < 0 || ns_add(list, "mount", &fresh, err) < 0 ||
        ns_add(list, "cgroup", &desc->ns_cgroup, err) < 0)
        return -1;
    *ret = TAKE_PTR(list);
    return 0;
}

int oci_cgroups_path(const oci_desc_t *desc, char **ret_path, cri_error_t *err)
{
    const char *parent = desc->cgroup_parent && desc->cgroup_parent[0] ? desc->cgroup_parent : NULL;
    if (!desc->id || !desc->id[0])
        return cri_error_set(err, EINVAL, "cgroups path: container id is empty");
    if (desc->cgroup_systemd) {
        const char *slice = parent ? parent : DEFAULT_SYSTEMD_SLICE;
        size_t len = strlen(slice);
        while (len > 0 && slice[len - 1] == '/')
            len--;
        const char *start = slice;
        for (size_t i = 0; i < len; i++)
            if (slice[i] == '/')
                start = slice + i + 1;
        size_t n = len - (size_t)(start - slice);
        if (n <= 6 || strncmp(start + n - 6, ".slice", 6) != 0)
            return cri_error_set(err, EINVAL, "cgroup parent `%s` is not a systemd slice", slice);
        const char *prefix = desc->cgroup_scope_prefix && desc->cgroup_scope_prefix[0]
                                 ? desc->cgroup_scope_prefix
                                 : DEFAULT_SCOPE_PREFIX;
        *ret_path = xasprintf("%.*s:%s:%s", (int)n, start, prefix, desc->id);
        return 0;
    }
    const char *p = parent ? parent : DEFAULT_CGROUPFS_PARENT;
    size_t len = strlen(p);
    while (len > 0 && p[len - 1] == '/')
        len--;
    *ret_path = xasprintf("%s%.*s/%s", p[0] == '/' ? "" : "/", (int)len, p, desc->id);
    return 0;
}

json_t *oci_resources_to_json(const oci_resources_t *res)
{
    json_t *r = json_object();
    json_t *mem = json_object();
    if (res->memory_limit)
        oci_json_set(mem, "limit", json_integer(res->memory_limit));
    if (res->memory_swap)
        oci_json_set(mem, "swap", json_integer(res->memory_swap));
    json_t *cpu = json_object();
    if (res->cpu_shares)
        oci_json_set(cpu, "shares", json_integer((json_int_t)res->cpu_shares));
    if (res->cpu_quota)
        oci_json_set(cpu, "quota", json_integer(res->cpu_quota));
    if (res->cpu_period)
        oci_json_set(cpu, "period", json_integer((json_int_t)res->cpu_period));
    if (res->cpuset_cpus && res->cpuset_cpus[0])
        oci_json_set(cpu, "cpus", json_string(res->cpuset_cpus));
    if (res->cpuset_mems && res->cpuset_mems[0])
        oci_json_set(cpu, "mems", json_string(res->cpuset_mems));
    if (json_object_size(mem))
        oci_json_set(r, "memory", mem);
    else
        json_decref(mem);
    if (json_object_size(cpu))
        oci_json_set(r, "cpu", cpu);
    else
        json_decref(cpu);
    if (res->pids_limit) {
        json_t *pids = json_object();
        oci_json_set(pids, "limit", json_integer(res->pids_limit));
        oci_json_set(r, "pids", pids);
    }
    if (res->n_hugepages) {
        json_t *hp = json_array();
        for (size_t i = 0; i < res->n_hugepages; i++) {
            json_t *h = json_object();
            oci_json_set(h, "pageSize", json_string(res->hugepages[i].page_size));
            oci_json_set(h, "limit", json_integer((json_int_t)res->hugepages[i].limit));
            oci_json_push(hp, h);
        }
        oci_json_set(r, "hugepageLimits", hp);
    }
    if (res->n_unified) {
        json_t *u = json_object();
        for (size_t i = 0; i < res->n_unified; i++)
            oci_json_set(u, res->unified[i].key, json_string(res->unified[i].value));
        oci_json_set(r, "unified", u);
    }
    return r;
}

static int resources_check(const oci_resources_t *res, cri_error_t *err)
{
    for (size_t i = 0; i < res->n_hugepages; i++)
        if (!res->hugepages[i].page_size || !res->hugepages[i].page_size[0])
            return cri_error_set(err, EINVAL, "hugepage limit %zu has no page size", i);
    for (size_t i = 0; i < res->n_unified; i++)
        if (!res->unified[i].key || !res->unified[i].key[0] || !res->unified[i].value ||
            strchr(res->unified[i].key, '/'))
            return cri_error_set(err, EINVAL, "unified resource %zu: bad key or value", i);
    if (res->memory_limit < 0 || res->memory_swap < -1 || res->pids_limit < -1)
        return cri_error_set(err, EINVAL, "negative memory, swap or pids limit");
    return 0;
}

static bool devices_has_path(json_t *devices, const char *path)
{
    size_t i;
    json_t *d;
    json_array_foreach(devices, i, d)
    {
        const char *p = json_string_value(json_object_get(d, "path"));
        if (p && strcmp(p, path) == 0)
            return true;
    }
    return false;
}

static int devices_json(const oci_desc_t *desc, const oci_host_t *host, json_t *rules, json_t **ret,
                        cri_error_t *err)
{
    cleanup_json json_t *devices = json_array();
    json_t *deny = json_object();
    oci_json_set(deny, "allow", json_false());
    oci_json_set(deny, "access", json_string("rwm"));
    oci_json_push(rules, deny);
    if (desc->privileged) {
        json_t *all = json_object();
        oci_json_set(all, "allow", json_true());
        oci_json_set(all, "access", json_string("rwm"));
        oci_json_push(rules, all);
        if (oci_devices_add_host(host->dev_root ? host->dev_root : "/dev", devices, err) < 0)
            return -1;
    }
    for (size_t i = 0; i < desc->n_devices; i++) {
        const oci_device_t *d = &desc->devices[i];
        if (d->container_path && devices_has_path(devices, d->container_path))
            continue;
        if (oci_device_add(d, devices, rules, err) < 0)
            return -1;
    }
    *ret = TAKE_PTR(devices);
    return 0;
}

static int seccomp_json(const oci_desc_t *desc, uint64_t caps, json_t **ret, cri_error_t *err)
{
    *ret = NULL;
    if (desc->privileged)
        return 0;
    switch (desc->seccomp) {
    case OCI_SECCOMP_UNCONFINED:
        return 0;
    case OCI_SECCOMP_RUNTIME_DEFAULT:
        *ret = oci_seccomp_default_profile(caps);
        return 0;
    case OCI_SECCOMP_LOCALHOST:
        return oci_seccomp_load_profile(desc->seccomp_profile_path, caps, ret, err);
    }
    return cri_error_set(err, EINVAL, "unknown seccomp kind %d", (int)desc->seccomp);
}

/* rshared when any bind is bidirectional, rslave when any receives host
 * mounts: the propagation of a bind cannot exceed the root's. */
static const char *rootfs_propagation(const oci_desc_t *desc)
{
    const char *p = NULL;
    for (size_t i = 0; i < desc->n_mounts; i++) {
        if (desc->mounts[i].propagation == OCI_PROPAGATION_BIDIRECTIONAL)
            return "rshared";
        if (desc->mounts[i].propagation == OCI_PROPAGATION_HOST_TO_CONTAINER)
            p = "rslave";
    }
    return p;
}

static void paths_json(const oci_desc_t *desc, json_t *lin)
{
    if (desc->privileged)
        return; /* privileged: nothing masked, nothing read-only */
    const char *const *masked = desc->masked_paths ? desc->masked_paths : default_masked_paths;
    const char *const *ro = desc->readonly_paths ? desc->readonly_paths : default_readonly_paths;
    if (masked[0])
        oci_json_set(lin, "maskedPaths", oci_json_strv(masked));
    if (ro[0])
        oci_json_set(lin, "readonlyPaths", oci_json_strv(ro));
}

static json_t *idmap_json(const oci_idmap_t *m)
{
    json_t *a = json_array();
    oci_json_push(a, json_pack("{s:I,s:I,s:I}", "containerID", (json_int_t)m->container_id,
                               "hostID", (json_int_t)m->host_id, "size", (json_int_t)m->length));
    return a;
}

static int idmaps_json(const oci_desc_t *desc, json_t *lin, cri_error_t *err)
{
    if (desc->ns_user.mode != OCI_NS_JOIN)
        return 0;
    if (desc->uid_map.length == 0 || desc->gid_map.length == 0)
        return cri_error_set(err, EINVAL, "user namespace: uid and gid mappings are required");
    oci_json_set(lin, "uidMappings", idmap_json(&desc->uid_map));
    oci_json_set(lin, "gidMappings", idmap_json(&desc->gid_map));
    return 0;
}

int oci_linux_build(const oci_desc_t *desc, const oci_host_t *host, uint64_t caps, json_t **ret,
                    cri_error_t *err)
{
    cleanup_json json_t *lin = json_object();
    json_t *ns = NULL;
    if (namespaces_json(desc, &ns, err) < 0)
        return -1;
    oci_json_set(lin, "namespaces", ns);
    if (idmaps_json(desc, lin, err) < 0)
        return -1;

    cleanup_free char *cgpath = NULL;
    if (oci_cgroups_path(desc, &cgpath, err) < 0)
        return -1;
    oci_json_set(lin, "cgroupsPath", json_string(cgpath));

    if (resources_check(&desc->resources, err) < 0)
        return -1;
    json_t *res = oci_resources_to_json(&desc->resources);
    if (!host->hugetlb) /* runc fails the create rather than skip them */
        json_object_del(res, "hugepageLimits");
    json_t *rules = json_array();
    oci_json_set(res, "devices", rules);
    oci_json_set(lin, "resources", res);
    json_t *devices = NULL;
    if (devices_json(desc, host, rules, &devices, err) < 0)
        return -1;
    oci_json_set(lin, "devices", devices);

    json_t *sysctl = json_object();
    oci_json_set(lin, "sysctl", sysctl);
    for (size_t i = 0; i < desc->n_sysctls; i++) {
        const oci_kv_t *kv = &desc->sysctls[i];
        if (!kv->key || !kv->key[0] || !kv->value)
            return cri_error_set(err, EINVAL, "sysctl %zu has no name or value", i);
        oci_json_set(sysctl, kv->key, json_string(kv->value));
    }

    paths_json(desc, lin);
    json_t *sc = NULL;
    if (seccomp_json(desc, caps, &sc, err) < 0)
        return -1;
    if (sc)
        oci_json_set(lin, "seccomp", sc);
    const char *prop = rootfs_propagation(desc);
    if (prop)
        oci_json_set(lin, "rootfsPropagation", json_string(prop));
    *ret = TAKE_PTR(lin);
    return 0;
}
