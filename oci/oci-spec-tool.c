/* oci-spec-tool: test-only front end of the spec generator.
 *
 *   oci-spec-tool [--rro] [--print] BUNDLE < description.json
 *
 * Reads a JSON description of a container (field names follow oci_desc_t;
 * see test/e2e/test_oci_runtime.py for examples), detects the host like the
 * daemon does, and writes BUNDLE/config.json (or prints it with --print).
 * --rro declares recursive read-only mounts supported. Exit 0, or 1 with the
 * error on stderr. Not installed: the e2e tests drive it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "oci/oci.h"

/* Everything allocated for the description, freed at exit. */
static void **allocs;
static size_t n_allocs;

static void *tool_alloc(size_t n, size_t size)
{
    void *p = xcalloc(n + 1, size);
    allocs = xrealloc(allocs, (n_allocs + 1) * sizeof(*allocs));
    allocs[n_allocs++] = p;
    return p;
}

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static bool boolean(json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key));
}

static json_int_t integer(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* NULL when absent; a (possibly empty) vector when present. */
static const char *const *strv(json_t *o, const char *key)
{
    json_t *a = json_object_get(o, key);
    if (!json_is_array(a))
        return NULL;
    const char **v = tool_alloc(json_array_size(a), sizeof(*v));
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e) v[i] = json_string_value(e);
    return v;
}

static const oci_kv_t *kvs(json_t *o, const char *key, size_t *ret_n)
{
    json_t *m = json_object_get(o, key);
    *ret_n = json_object_size(m);
    oci_kv_t *v = tool_alloc(*ret_n, sizeof(*v));
    const char *k;
    json_t *val;
    size_t i = 0;
    json_object_foreach(m, k, val)
    {
        v[i].key = k;
        v[i++].value = json_string_value(val);
    }
    return v;
}

static void parse_process(json_t *p, oci_process_t *proc)
{
    proc->args = strv(p, "args");
    proc->env = strv(p, "env");
    proc->cwd = str(p, "cwd");
    proc->uid = (uint32_t)integer(p, "uid");
    proc->gid = (uint32_t)integer(p, "gid");
    json_t *g = json_object_get(p, "additional_gids");
    proc->n_additional_gids = json_array_size(g);
    uint32_t *gids = tool_alloc(proc->n_additional_gids, sizeof(*gids));
    for (size_t i = 0; i < proc->n_additional_gids; i++)
        gids[i] = (uint32_t)json_integer_value(json_array_get(g, i));
    proc->additional_gids = gids;
    json_t *rl = json_object_get(p, "rlimits");
    proc->n_rlimits = json_array_size(rl);
    oci_rlimit_t *r = tool_alloc(proc->n_rlimits, sizeof(*r));
    for (size_t i = 0; i < proc->n_rlimits; i++) {
        json_t *e = json_array_get(rl, i);
        r[i] = (oci_rlimit_t){str(e, "type"), (uint64_t)integer(e, "soft"),
                              (uint64_t)integer(e, "hard")};
    }
    proc->rlimits = r;
    proc->terminal = boolean(p, "terminal");
    proc->no_new_privileges = boolean(p, "no_new_privileges");
    if (json_object_get(p, "oom_score_adj")) {
        proc->has_oom_score_adj = true;
        proc->oom_score_adj = (int)integer(p, "oom_score_adj");
    }
}

static oci_propagation_t propagation(const char *s)
{
    if (s && strcmp(s, "host_to_container") == 0)
        return OCI_PROPAGATION_HOST_TO_CONTAINER;
    if (s && strcmp(s, "bidirectional") == 0)
        return OCI_PROPAGATION_BIDIRECTIONAL;
    return OCI_PROPAGATION_PRIVATE;
}

static void parse_mounts(json_t *d, oci_desc_t *desc)
{
    json_t *a = json_object_get(d, "mounts");
    desc->n_mounts = json_array_size(a);
    oci_mount_t *m = tool_alloc(desc->n_mounts, sizeof(*m));
    for (size_t i = 0; i < desc->n_mounts; i++) {
        json_t *e = json_array_get(a, i);
        m[i] = (oci_mount_t){.destination = str(e, "destination"),
                             .source = str(e, "source"),
                             .type = str(e, "type"),
                             .options = strv(e, "options"),
                             .readonly = boolean(e, "readonly"),
                             .recursive_readonly = boolean(e, "recursive_readonly"),
                             .propagation = propagation(str(e, "propagation"))};
    }
    desc->mounts = m;
    json_t *dv = json_object_get(d, "devices");
    desc->n_devices = json_array_size(dv);
    oci_device_t *devs = tool_alloc(desc->n_devices, sizeof(*devs));
    for (size_t i = 0; i < desc->n_devices; i++) {
        json_t *e = json_array_get(dv, i);
        devs[i] =
            (oci_device_t){str(e, "container_path"), str(e, "host_path"), str(e, "permissions")};
    }
    desc->devices = devs;
}

/* "new", "host", or an absolute path to join. */
static void parse_ns(json_t *nss, const char *key, oci_namespace_t *ns)
{
    const char *v = str(nss, key);
    if (!v)
        return;
    if (strcmp(v, "new") == 0)
        *ns = (oci_namespace_t){OCI_NS_NEW, NULL};
    else if (strcmp(v, "host") == 0)
        *ns = (oci_namespace_t){OCI_NS_HOST, NULL};
    else
        *ns = (oci_namespace_t){OCI_NS_JOIN, v};
}

static void parse_resources(json_t *r, oci_resources_t *res)
{
    res->cpu_shares = (uint64_t)integer(r, "cpu_shares");
    res->cpu_quota = integer(r, "cpu_quota");
    res->cpu_period = (uint64_t)integer(r, "cpu_period");
    res->cpuset_cpus = str(r, "cpuset_cpus");
    res->cpuset_mems = str(r, "cpuset_mems");
    res->memory_limit = integer(r, "memory_limit");
    res->memory_swap = integer(r, "memory_swap");
    res->pids_limit = integer(r, "pids_limit");
    json_t *hp = json_object_get(r, "hugepages");
    res->n_hugepages = json_array_size(hp);
    oci_hugepage_t *h = tool_alloc(res->n_hugepages, sizeof(*h));
    for (size_t i = 0; i < res->n_hugepages; i++) {
        json_t *e = json_array_get(hp, i);
        h[i] = (oci_hugepage_t){str(e, "page_size"), (uint64_t)integer(e, "limit")};
    }
    res->hugepages = h;
    res->unified = kvs(r, "unified", &res->n_unified);
}

static void parse_desc(json_t *d, const oci_host_t *host, oci_desc_t *desc)
{
    oci_desc_init(desc, host->cgroup2);
    desc->id = str(d, "id");
    parse_process(json_object_get(d, "process"), &desc->process);
    desc->root_path = str(d, "root_path");
    desc->root_readonly = boolean(d, "root_readonly");
    desc->hostname = str(d, "hostname");
    parse_mounts(d, desc);
    desc->shm_path = str(d, "shm_path");
    json_t *nss = json_object_get(d, "namespaces");
    parse_ns(nss, "pid", &desc->ns_pid);
    parse_ns(nss, "network", &desc->ns_network);
    parse_ns(nss, "ipc", &desc->ns_ipc);
    parse_ns(nss, "uts", &desc->ns_uts);
    parse_ns(nss, "cgroup", &desc->ns_cgroup);
    desc->cgroup_parent = str(d, "cgroup_parent");
    desc->cgroup_systemd = boolean(d, "cgroup_systemd");
    desc->cgroup_scope_prefix = str(d, "cgroup_scope_prefix");
    parse_resources(json_object_get(d, "resources"), &desc->resources);
    desc->sysctls = kvs(d, "sysctls", &desc->n_sysctls);
    desc->annotations = kvs(d, "annotations", &desc->n_annotations);
    desc->privileged = boolean(d, "privileged");
    desc->cap_add = strv(d, "cap_add");
    desc->cap_drop = strv(d, "cap_drop");
    desc->masked_paths = strv(d, "masked_paths");
    desc->readonly_paths = strv(d, "readonly_paths");
    const char *sc = str(d, "seccomp");
    if (sc && strcmp(sc, "unconfined") == 0)
        desc->seccomp = OCI_SECCOMP_UNCONFINED;
    else if (sc && strcmp(sc, "localhost") == 0)
        desc->seccomp = OCI_SECCOMP_LOCALHOST;
    desc->seccomp_profile_path = str(d, "seccomp_profile_path");
}

int main(int argc, char **argv)
{
    bool rro = false, print = false;
    const char *bundle = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rro") == 0)
            rro = true;
        else if (strcmp(argv[i], "--print") == 0)
            print = true;
        else
            bundle = argv[i];
    }
    if (!bundle && !print) {
        fprintf(stderr, "usage: oci-spec-tool [--rro] [--print] BUNDLE < description.json\n");
        return 2;
    }
    json_error_t jerr;
    json_t *d = json_loadf(stdin, 0, &jerr);
    if (!json_is_object(d)) {
        fprintf(stderr, "oci-spec-tool: stdin:%d:%d: %s\n", jerr.line, jerr.column, jerr.text);
        return 1;
    }
    oci_host_t host;
    oci_host_detect(&host);
    host.rro_supported = rro;
    oci_desc_t desc;
    parse_desc(d, &host, &desc);

    cri_error_t err = CRI_ERROR_INIT;
    int rc = 0;
    if (print) {
        json_t *spec = NULL;
        if (oci_spec_build(&desc, &host, &spec, &err) == 0) {
            json_dumpf(spec, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
            json_decref(spec);
        } else {
            rc = 1;
        }
    } else if (oci_spec_write(&desc, &host, bundle, &err) < 0) {
        rc = 1;
    }
    if (rc)
        fprintf(stderr, "oci-spec-tool: %s (errno %d)\n", err.msg, err.status);
    for (size_t i = 0; i < n_allocs; i++)
        free(allocs[i]);
    free(allocs);
    json_decref(d);
    return rc;
}
