/* oci-spec-tool: test-only front end of oci/ (not installed; the e2e tests
 * in test/e2e/test_oci_runtime.py drive it).
 *
 *   oci-spec-tool [--rro] [--print] BUNDLE < description.json
 *
 * reads a JSON description of a container (field names follow oci_desc_t),
 * detects the host like the daemon does, and writes BUNDLE/config.json (or
 * prints it with --print). --rro declares recursive read-only mounts
 * supported.
 *
 *   oci-spec-tool runtime [--runtime BIN] --root DIR [--timeout MS] VERB ID [ARG]
 *
 * runs one verb of the real ops table: create ID BUNDLE [--stdout FILE]
 * [--pid-file FILE], start, kill ID SIGNO [--all], delete ID [--force],
 * state (prints JSON), update (resources JSON on stdin, keys as in the
 * description's "resources"), pause, resume, exec (process JSON on stdin;
 * prints `exit=<wait status>`), features (prints `rro=<0|1>`).
 *
 * Exit 0, or 1 with `oci-spec-tool: <message> (<ERRNO NAME>)` on stderr. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
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

static int fail(const cri_error_t *err)
{
    (void)fprintf(stderr, "oci-spec-tool: %s (%s)\n", err->msg, strerrorname_np(err->status));
    return 1;
}

static json_t *read_stdin_json(void)
{
    json_error_t jerr;
    json_t *j = json_loadf(stdin, 0, &jerr);
    if (!json_is_object(j))
        (void)fprintf(stderr, "oci-spec-tool: stdin:%d:%d: %s\n", jerr.line, jerr.column,
                      jerr.text);
    return j;
}

static int print_state(oci_runtime_t *rt, const char *id, cri_error_t *err)
{
    oci_state_t st;
    if (oci_runtime_state(rt, id, &st, err) < 0)
        return -1;
    json_t *j = json_pack("{s:s, s:i, s:s}", "status", oci_status_name(st.status), "pid",
                          (int)st.pid, "bundle", st.bundle);
    json_dumpf(j, stdout, JSON_COMPACT);
    json_decref(j);
    printf("\n");
    return 0;
}

/* VERB ID [ARG] [--all|--force|--stdout F|--pid-file F] after the options. */
static int run_verb(oci_runtime_t *rt, int argc, char **argv, cri_error_t *err)
{
    const char *verb = argv[0], *id = argc > 1 ? argv[1] : "";
    const char *arg = NULL, *out_file = NULL, *pid_file = NULL;
    bool flag = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--all") == 0 || strcmp(argv[i], "--force") == 0)
            flag = true;
        else if (strcmp(argv[i], "--stdout") == 0 && i + 1 < argc)
            out_file = argv[++i];
        else if (strcmp(argv[i], "--pid-file") == 0 && i + 1 < argc)
            pid_file = argv[++i];
        else
            arg = argv[i];
    }
    if (strcmp(verb, "create") == 0) {
        cleanup_close int out =
            out_file ? open(out_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
        oci_create_opts_t o = {
            .pid_file = pid_file, .stdin_fd = -1, .stdout_fd = out, .stderr_fd = out};
        return oci_runtime_create(rt, id, arg ? arg : ".", &o, err);
    }
    if (strcmp(verb, "start") == 0)
        return oci_runtime_start(rt, id, err);
    if (strcmp(verb, "kill") == 0)
        return oci_runtime_kill(rt, id, arg ? (int)strtol(arg, NULL, 10) : SIGTERM, flag, err);
    if (strcmp(verb, "delete") == 0)
        return oci_runtime_delete(rt, id, flag, err);
    if (strcmp(verb, "pause") == 0)
        return oci_runtime_pause(rt, id, err);
    if (strcmp(verb, "resume") == 0)
        return oci_runtime_resume(rt, id, err);
    if (strcmp(verb, "state") == 0)
        return print_state(rt, id, err);
    if (strcmp(verb, "features") == 0) {
        bool rro = false;
        if (oci_runtime_supports_rro(rt, &rro, err) < 0)
            return -1;
        printf("rro=%d\n", rro);
        return 0;
    }
    json_t *in = read_stdin_json();
    if (!in)
        return cri_error_set(err, EINVAL, "bad JSON on stdin");
    int r;
    if (strcmp(verb, "update") == 0) {
        oci_resources_t res = {0};
        parse_resources(in, &res);
        r = oci_runtime_update(rt, id, &res, err);
    } else if (strcmp(verb, "exec") == 0) {
        oci_process_t proc = {0};
        parse_process(in, &proc);
        oci_exec_opts_t o = {.stdin_fd = -1,
                             .stdout_fd = STDOUT_FILENO,
                             .stderr_fd = STDERR_FILENO,
                             .timeout_ms = (int)integer(in, "timeout_ms")};
        int status = 0;
        (void)fflush(stdout);
        r = oci_runtime_exec(rt, id, &proc, &o, &status, err);
        if (r == 0)
            printf("exit=%d\n", status);
    } else {
        r = cri_error_set(err, EINVAL, "unknown verb `%s`", verb);
    }
    json_decref(in);
    return r;
}

static int runtime_main(int argc, char **argv)
{
    const char *bin = "runc", *root = NULL;
    int timeout = 0, i = 0;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (i + 1 >= argc)
            break;
        if (strcmp(argv[i], "--runtime") == 0)
            bin = argv[++i];
        else if (strcmp(argv[i], "--root") == 0)
            root = argv[++i];
        else if (strcmp(argv[i], "--timeout") == 0)
            timeout = (int)strtol(argv[++i], NULL, 10);
    }
    if (!root || i >= argc) {
        (void)fprintf(stderr, "usage: oci-spec-tool runtime [--runtime BIN] --root DIR "
                              "[--timeout MS] VERB ID [ARG]\n");
        return 2;
    }
    cri_error_t err = CRI_ERROR_INIT;
    oci_host_t host;
    oci_host_detect(&host);
    cleanup_oci_runtime oci_runtime_t *rt = NULL;
    if (oci_runtime_new(bin, root, timeout, &host, &rt, &err) < 0)
        return fail(&err);
    if (run_verb(rt, argc - i, argv + i, &err) < 0)
        return fail(&err);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "runtime") == 0) {
        int r = runtime_main(argc - 2, argv + 2);
        for (size_t i = 0; i < n_allocs; i++)
            free(allocs[i]);
        free(allocs);
        return r;
    }
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
        (void)fprintf(stderr, "usage: oci-spec-tool [--rro] [--print] BUNDLE < description.json\n");
        return 2;
    }
    json_error_t jerr;
    json_t *d = json_loadf(stdin, 0, &jerr);
    if (!json_is_object(d)) {
        (void)fprintf(stderr, "oci-spec-tool: stdin:%d:%d: %s\n", jerr.line, jerr.column,
                      jerr.text);
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
        fail(&err);
    for (size_t i = 0; i < n_allocs; i++)
        free(allocs[i]);
    free(allocs);
    json_decref(d);
    return rc;
}
