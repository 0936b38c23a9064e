/* oci/ spec generation: whole specs against golden JSON (compared
 * structurally), cgroupsPath, namespaces, mounts, privileged, errors.
 *
 * Goldens live in test/unit/golden/oci/. OCI_GOLDEN_UPDATE=1 rewrites them
 * from the current output (review the diff before committing). */
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
#include "oci/oci.h"

#define GOLDEN_DIR_SUFFIX "/golden/oci/"

/* A fixed host so the output does not depend on this machine. */
static oci_host_t test_host(void)
{
    oci_host_t h = {
        .cap_bounding = (UINT64_C(1) << 41) - 1, /* caps 0..40 */
        .cap_last = 40,
        .cgroup2 = false,
        .hugetlb = true,
        .oom_score_adj_min = -1000,
        .rro_supported = true,
        .dev_root = "/nonexistent-dev-root",
    };
    return h;
}

static char *golden_path(const char *name)
{
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    size_t dir = slash ? (size_t)(slash - file) : 0;
    return xasprintf("%.*s%s%s.json", (int)dir, file, GOLDEN_DIR_SUFFIX, name);
}

static void assert_golden(json_t *actual, const char *name)
{
    cleanup_free char *path = golden_path(name);
    if (getenv("OCI_GOLDEN_UPDATE")) {
        assert_int_equal(json_dump_file(actual, path, JSON_INDENT(2) | JSON_SORT_KEYS), 0);
        return;
    }
    json_error_t jerr;
    json_t *expected = json_load_file(path, 0, &jerr);
    if (!expected)
        fail_msg("golden `%s`: %s", path, jerr.text);
    if (!json_equal(actual, expected)) {
        cleanup_free char *a = json_dumps(actual, JSON_INDENT(2) | JSON_SORT_KEYS);
        print_error("spec differs from golden %s; got:\n%s\n", path, a);
        json_decref(expected);
        fail();
    }
    json_decref(expected);
}

static json_t *build_ok(const oci_desc_t *desc, const oci_host_t *host)
{
    cri_error_t err = CRI_ERROR_INIT;
    json_t *spec = NULL;
    if (oci_spec_build(desc, host, &spec, &err) < 0)
        fail_msg("oci_spec_build: %s", err.msg);
    return spec;
}

static const char *const sh_args[] = {"/bin/sh", "-c", "echo hi", NULL};
static const char *const base_env[] = {"PATH=/usr/bin:/bin", "HOSTNAME=pod1", NULL};

static void base_desc(oci_desc_t *d)
{
    oci_desc_init(d, false);
    d->id = "c0ffee";
    d->process.args = sh_args;
    d->process.env = base_env;
    d->root_path = "rootfs";
    d->seccomp = OCI_SECCOMP_UNCONFINED; /* seccomp has its own tests */
}

static void test_golden_minimal(void **state)
{
    oci_desc_t d;
    base_desc(&d);
    oci_host_t h = test_host();
    json_t *spec = build_ok(&d, &h);
    assert_golden(spec, "minimal");
    json_decref(spec);
}

static void test_golden_full(void **state)
{
    static const uint32_t gids[] = {1234, 50000};
    static const oci_rlimit_t rlimits[] = {{"RLIMIT_NOFILE", 1024, 4096}};
    static const char *const opts[] = {"size=1m", NULL};
    static const oci_mount_t mounts[] = {
        {.destination = "/data/sub", .source = "/srv/sub", .readonly = true},
        {.destination = "/data",
         .source = "/srv/data",
         .propagation = OCI_PROPAGATION_HOST_TO_CONTAINER},
        {.destination = "/cache", .type = "tmpfs", .options = opts},
        {.destination = "/etc/hosts", .source = "/run/pod/hosts", .readonly = true},
        {.destination = "/ro", .source = "/srv/ro", .readonly = true, .recursive_readonly = true},
    };
    static const oci_hugepage_t hp[] = {{"2MB", 4194304}};
    static const oci_kv_t unified[] = {{"memory.high", "50000000"}};
    static const oci_kv_t sysctls[] = {{"net.ipv4.ip_forward", "1"}};
    static const oci_kv_t ann[] = {{"io.kubernetes.pod.name", "web"}};
    static const char *const add[] = {"NET_ADMIN", "sys_time", NULL};
    static const char *const drop[] = {"CAP_MKNOD", "net_raw", NULL};
    static const char *const masked[] = {"/proc/kcore", NULL};
    static const char *const ro[] = {NULL}; /* given and empty: none */

    oci_desc_t d;
    base_desc(&d);
    d.process.cwd = "/work";
    d.process.uid = 1000;
    d.process.gid = 1000;
    d.process.additional_gids = gids;
    d.process.n_additional_gids = 2;
    d.process.rlimits = rlimits;
    d.process.n_rlimits = 1;
    d.process.no_new_privileges = true;
    d.process.has_oom_score_adj = true;
    d.process.oom_score_adj = 500;
    d.root_readonly = true;
    d.hostname = "web-1";
    d.mounts = mounts;
    d.n_mounts = sizeof(mounts) / sizeof(mounts[0]);
    d.shm_path = "/run/cricket/shm/pod1";
    d.ns_network = (oci_namespace_t){OCI_NS_JOIN, "/run/cricket/netns/pod1"};
    d.ns_ipc = (oci_namespace_t){OCI_NS_JOIN, "/proc/42/ns/ipc"};
    d.ns_uts = (oci_namespace_t){OCI_NS_JOIN, "/proc/42/ns/uts"};
    d.ns_pid = (oci_namespace_t){OCI_NS_HOST, NULL};
    d.cgroup_parent = "/kubepods/burstable/pod1/";
    d.resources = (oci_resources_t){.cpu_shares = 512,
                                    .cpu_quota = 50000,
                                    .cpu_period = 100000,
                                    .cpuset_cpus = "0-1",
                                    .cpuset_mems = "0",
                                    .memory_limit = 64 << 20,
                                    .memory_swap = 64 << 20,
                                    .pids_limit = 100,
                                    .hugepages = hp,
                                    .n_hugepages = 1,
                                    .unified = unified,
                                    .n_unified = 1};
    d.sysctls = sysctls;
    d.n_sysctls = 1;
    d.annotations = ann;
    d.n_annotations = 1;
    d.cap_add = add;
    d.cap_drop = drop;
    d.masked_paths = masked;
    d.readonly_paths = ro;
    oci_host_t h = test_host();
    json_t *spec = build_ok(&d, &h);
    assert_golden(spec, "full");
    json_decref(spec);

    /* a host without a usable hugetlb controller (this hybrid one): kubelet
     * still sends the limits, runc would fail the create on them */
    h.hugetlb = false;
    spec = build_ok(&d, &h);
    json_t *res = json_object_get(json_object_get(spec, "linux"), "resources");
    assert_non_null(json_object_get(res, "pids"));
    assert_null(json_object_get(res, "hugepageLimits"));
    json_decref(spec);
}

static void test_golden_privileged(void **state)
{
    static const char *const drop[] = {"ALL", NULL};
    oci_desc_t d;
    base_desc(&d);
    d.privileged = true;
    d.cap_drop = drop;                       /* privileged wins */
    d.seccomp = OCI_SECCOMP_RUNTIME_DEFAULT; /* ignored when privileged */
    oci_host_t h = test_host();
    h.cap_bounding &= ~(UINT64_C(1) << 24);  /* a host without CAP_SYS_RESOURCE */
    char dir[] = "/tmp/oci-emptydev-XXXXXX"; /* no host devices */
    assert_non_null(mkdtemp(dir));
    h.dev_root = dir;
    json_t *spec = build_ok(&d, &h);
    rmdir(dir);
    assert_golden(spec, "privileged");
    json_decref(spec);
}

/* Privileged containers get every device node of the host's /dev: use a
 * fake dev root holding a link to a real device and a regular file. */
static void test_privileged_host_devices(void **state)
{
    char dir[] = "/tmp/oci-devroot-XXXXXX";
    assert_non_null(mkdtemp(dir));
    cleanup_free char *sub = xasprintf("%s/sub", dir);
    cleanup_free char *pts = xasprintf("%s/pts", dir);
    cleanup_free char *link = xasprintf("%s/sub/null", dir);
    cleanup_free char *plain = xasprintf("%s/plain", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(mkdir(pts, 0755), 0);
    assert_int_equal(symlink("/dev/null", link), 0); /* symlinks are skipped */
    FILE *f = fopen(plain, "w");
    assert_non_null(f);
    fclose(f);

    static const oci_device_t devs[] = {{"/dev/mynull", "/dev/null", "rw"}};
    oci_desc_t d;
    base_desc(&d);
    d.privileged = true;
    d.devices = devs;
    d.n_devices = 1;
    oci_host_t h = test_host();
    h.dev_root = dir;
    json_t *spec = build_ok(&d, &h);
    json_t *lin = json_object_get(spec, "linux");
    json_t *devices = json_object_get(lin, "devices");
    assert_int_equal(json_array_size(devices), 1);
    json_t *dev = json_array_get(devices, 0);
    assert_string_equal(json_string_value(json_object_get(dev, "path")), "/dev/mynull");
    assert_string_equal(json_string_value(json_object_get(dev, "type")), "c");
    assert_int_equal(json_integer_value(json_object_get(dev, "major")), 1);
    assert_int_equal(json_integer_value(json_object_get(dev, "minor")), 3);
    json_t *rules = json_object_get(json_object_get(lin, "resources"), "devices");
    json_t *allow_all = json_array_get(rules, 1);
    assert_true(json_is_true(json_object_get(allow_all, "allow")));
    assert_null(json_object_get(allow_all, "type"));
    json_decref(spec);

    /* and the real /dev holds at least /dev/null */
    h.dev_root = "/dev";
    d.n_devices = 0;
    spec = build_ok(&d, &h);
    devices = json_object_get(json_object_get(spec, "linux"), "devices");
    bool has_null = false;
    size_t i;
    json_t *e;
    json_array_foreach(devices, i, e)
    {
        const char *p = json_string_value(json_object_get(e, "path"));
        has_null |= strcmp(p, "/dev/null") == 0;
        assert_false(str_has_prefix(p, "/dev/pts/"));
    }
    assert_true(has_null);
    json_decref(spec);

    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(rm_rf(dir, &err), 0);
}

static void test_device_errors(void **state)
{
    static const oci_device_t notdev[] = {{"/dev/x", "/etc/hostname", NULL}};
    static const oci_device_t missing[] = {{"/dev/x", "/dev/no-such-device", NULL}};
    static const oci_device_t badperm[] = {{"/dev/x", "/dev/null", "rwx"}};
    static const struct {
        const oci_device_t *dev;
        int status;
    } cases[] = {{notdev, EINVAL}, {missing, ENOENT}, {badperm, EINVAL}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        oci_desc_t d;
        base_desc(&d);
        d.devices = cases[i].dev;
        d.n_devices = 1;
        oci_host_t h = test_host();
        cri_error_t err = CRI_ERROR_INIT;
        json_t *spec = NULL;
        assert_int_equal(oci_spec_build(&d, &h, &spec, &err), -1);
        assert_int_equal(err.status, cases[i].status);
        assert_null(spec);
    }
}

static void test_cgroups_path(void **state)
{
    static const struct {
        const char *parent;
        bool systemd;
        const char *prefix;
        const char *want; /* NULL = EINVAL */
    } cases[] = {
        {"/kubepods/besteffort/pod1", false, NULL, "/kubepods/besteffort/pod1/abc"},
        {"/kubepods/", false, NULL, "/kubepods/abc"},
        {"kubepods", false, NULL, "/kubepods/abc"},
        {NULL, false, NULL, "/cricket/abc"},
        {"", false, NULL, "/cricket/abc"},
        {"kubepods-besteffort-pod1.slice", true, NULL,
         "kubepods-besteffort-pod1.slice:cricket:abc"},
        {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod2.slice", true, "crio",
         "kubepods-burstable-pod2.slice:crio:abc"},
        {NULL, true, NULL, "system.slice:cricket:abc"},
        {"/kubepods/pod1", true, NULL, NULL},
        {".slice", true, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        oci_desc_t d;
        base_desc(&d);
        d.id = "abc";
        d.cgroup_parent = cases[i].parent;
        d.cgroup_systemd = cases[i].systemd;
        d.cgroup_scope_prefix = cases[i].prefix;
        cri_error_t err = CRI_ERROR_INIT;
        cleanup_free char *path = NULL;
        int r = oci_cgroups_path(&d, &path, &err);
        if (cases[i].want) {
            if (r < 0)
                fail_msg("case %zu: %s", i, err.msg);
            assert_string_equal(path, cases[i].want);
        } else {
            assert_int_equal(r, -1);
            assert_int_equal(err.status, EINVAL);
            assert_null(path);
        }
    }
}

static const char *ns_path(json_t *spec, const char *type, bool *present)
{
    json_t *nss = json_object_get(json_object_get(spec, "linux"), "namespaces");
    size_t i;
    json_t *ns;
    *present = false;
    json_array_foreach(nss, i, ns)
    {
        if (strcmp(json_string_value(json_object_get(ns, "type")), type) == 0) {
            *present = true;
            return json_string_value(json_object_get(ns, "path"));
        }
    }
    return NULL;
}

static void test_namespaces(void **state)
{
    oci_desc_t d;
    base_desc(&d);
    d.ns_network = (oci_namespace_t){OCI_NS_JOIN, "/run/netns/x"};
    d.ns_pid = (oci_namespace_t){OCI_NS_HOST, NULL};
    oci_host_t h = test_host();
    json_t *spec = build_ok(&d, &h);
    bool present;
    assert_string_equal(ns_path(spec, "network", &present), "/run/netns/x");
    assert_true(present);
    ns_path(spec, "pid", &present);
    assert_false(present);
    assert_null(ns_path(spec, "ipc", &present));
    assert_true(present);
    ns_path(spec, "mount", &present);
    assert_true(present);
    ns_path(spec, "cgroup", &present);
    assert_false(present); /* cgroup v1 host: host cgroup namespace */
    json_decref(spec);

    oci_desc_init(&d, true);
    assert_int_equal(d.ns_cgroup.mode, OCI_NS_NEW);

    base_desc(&d);
    d.ns_ipc = (oci_namespace_t){OCI_NS_JOIN, "relative/path"};
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(oci_spec_build(&d, &h, &spec, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_non_null(strstr(err.msg, "ipc namespace"));
}

/* The options of the mount at dest, as one space-separated string. */
static char *mount_opts(json_t *spec, const char *dest)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(spec, "mounts"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "destination")), dest) != 0)
            continue;
        char *out = xstrdup("");
        size_t k;
        json_t *o;
        json_array_foreach(json_object_get(m, "options"), k, o)
        {
            char *next = xasprintf("%s%s%s", out, k ? " " : "", json_string_value(o));
            free(out);
            out = next;
        }
        return out;
    }
    return NULL;
}

static void test_bind_propagation(void **state)
{
    static const struct {
        oci_propagation_t p;
        bool ro;
        const char *opts;
        const char *rootfs;
    } cases[] = {
        {OCI_PROPAGATION_PRIVATE, false, "rbind rprivate rw", NULL},
        {OCI_PROPAGATION_PRIVATE, true, "rbind rprivate ro", NULL},
        {OCI_PROPAGATION_HOST_TO_CONTAINER, false, "rbind rslave rw", "rslave"},
        {OCI_PROPAGATION_BIDIRECTIONAL, true, "rbind rshared ro", "rshared"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        oci_mount_t m = {.destination = "/vol",
                         .source = "/host/vol",
                         .propagation = cases[i].p,
                         .readonly = cases[i].ro};
        oci_desc_t d;
        base_desc(&d);
        d.mounts = &m;
        d.n_mounts = 1;
        oci_host_t h = test_host();
        json_t *spec = build_ok(&d, &h);
        cleanup_free char *opts = mount_opts(spec, "/vol");
        assert_non_null(opts);
        assert_string_equal(opts, cases[i].opts);
        const char *rp =
            json_string_value(json_object_get(json_object_get(spec, "linux"), "rootfsPropagation"));
        if (cases[i].rootfs)
            assert_string_equal(rp, cases[i].rootfs);
        else
            assert_null(rp);
        json_decref(spec);
    }
}

static void test_mount_errors(void **state)
{
    static const struct {
        oci_mount_t m;
        bool rro_host;
        int status;
    } cases[] = {
        {{.destination = "rel", .source = "/x"}, true, EINVAL},
        {{.destination = "/x", .source = "rel"}, true, EINVAL},
        {{.destination = "/x", .source = "/x", .recursive_readonly = true}, true, EINVAL},
        {{.destination = "/x",
          .source = "/x",
          .readonly = true,
          .recursive_readonly = true,
          .propagation = OCI_PROPAGATION_HOST_TO_CONTAINER},
         true,
         EINVAL},
        {{.destination = "/x", .source = "/x", .readonly = true, .recursive_readonly = true},
         false,
         ENOTSUP},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        oci_desc_t d;
        base_desc(&d);
        d.mounts = &cases[i].m;
        d.n_mounts = 1;
        oci_host_t h = test_host();
        h.rro_supported = cases[i].rro_host;
        cri_error_t err = CRI_ERROR_INIT;
        json_t *spec = NULL;
        assert_int_equal(oci_spec_build(&d, &h, &spec, &err), -1);
        assert_int_equal(err.status, cases[i].status);
    }
}

/* A runtime without "rro" (runc 1.1): cricket-rro does it as a
 * createContainer hook naming the rootfs and each such destination; the
 * mount options carry no "rro" the runtime would not know. */
static void test_rro_through_hook(void **state)
{
    oci_mount_t m[] = {
        {.destination = "/a", .source = "/x", .readonly = true, .recursive_readonly = true},
        {.destination = "/b", .source = "/y", .readonly = true},
        {.destination = "/c/d", .source = "/z", .readonly = true, .recursive_readonly = true},
    };
    oci_desc_t d;
    base_desc(&d);
    d.mounts = m;
    d.n_mounts = 3;
    oci_host_t h = test_host();
    h.rro_supported = false;
    h.rro_hook = "/usr/libexec/cricket/cricket-rro";
    json_t *spec = build_ok(&d, &h);
    json_t *hooks = json_object_get(json_object_get(spec, "hooks"), "createContainer");
    assert_int_equal(json_array_size(hooks), 1);
    json_t *hook = json_array_get(hooks, 0);
    assert_string_equal(json_string_value(json_object_get(hook, "path")), h.rro_hook);
    cleanup_free char *args = json_dumps(json_object_get(hook, "args"), JSON_COMPACT);
    cleanup_free char *want = xasprintf("[\"cricket-rro\",\"%s\",\"/a\",\"/c/d\"]", d.root_path);
    assert_string_equal(args, want);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(spec, "mounts"), i, e)
    {
        cleanup_free char *opts = json_dumps(json_object_get(e, "options"), JSON_COMPACT);
        assert_null(strstr(opts, "\"rro\""));
    }
    json_decref(spec);
    /* no recursive read-only mount: no hooks at all */
    m[0].recursive_readonly = m[2].recursive_readonly = false;
    spec = build_ok(&d, &h);
    assert_null(json_object_get(spec, "hooks"));
    json_decref(spec);
    /* the runtime knows "rro": the option, no hook */
    m[0].recursive_readonly = true;
    h.rro_supported = true;
    spec = build_ok(&d, &h);
    assert_null(json_object_get(spec, "hooks"));
    json_decref(spec);
}

static void test_default_mount_replaced(void **state)
{
    oci_mount_t m = {.destination = "/dev/shm/", .source = "/pod/shm"};
    oci_desc_t d;
    base_desc(&d);
    d.mounts = &m;
    d.n_mounts = 1;
    d.shm_path = "/ignored";
    oci_host_t h = test_host();
    json_t *spec = build_ok(&d, &h);
    size_t i, n = 0;
    json_t *e;
    json_array_foreach(json_object_get(spec, "mounts"), i, e)
    {
        const char *dest = json_string_value(json_object_get(e, "destination"));
        if (strncmp(dest, "/dev/shm", 8) == 0) {
            n++;
            assert_string_equal(json_string_value(json_object_get(e, "source")), "/pod/shm");
        }
    }
    assert_int_equal(n, 1);
    json_decref(spec);
}

static void test_oom_score_adj_clamped(void **state)
{
    oci_desc_t d;
    base_desc(&d);
    d.process.has_oom_score_adj = true;
    d.process.oom_score_adj = -998;
    oci_host_t h = test_host();
    h.oom_score_adj_min = 0;
    json_t *spec = build_ok(&d, &h);
    json_t *p = json_object_get(spec, "process");
    assert_int_equal(json_integer_value(json_object_get(p, "oomScoreAdj")), 0);
    json_decref(spec);
    d.process.oom_score_adj = 999;
    spec = build_ok(&d, &h);
    p = json_object_get(spec, "process");
    assert_int_equal(json_integer_value(json_object_get(p, "oomScoreAdj")), 999);
    json_decref(spec);
}

static void test_bad_descriptions(void **state)
{
    static const char *const empty_args[] = {NULL};
    static const char *const bad_env[] = {"NOEQUALS", NULL};
    static const oci_rlimit_t bad_rl[] = {{"NOFILE", 1, 2}};
    oci_host_t h = test_host();
    for (int i = 0; i < 6; i++) {
        oci_desc_t d;
        base_desc(&d);
        switch (i) {
        case 0:
            d.id = "";
            break;
        case 1:
            d.id = "a/b";
            break;
        case 2:
            d.process.args = empty_args;
            break;
        case 3:
            d.process.env = bad_env;
            break;
        case 4:
            d.process.cwd = "relative";
            break;
        case 5:
            d.process.rlimits = bad_rl;
            d.process.n_rlimits = 1;
            break;
        }
        cri_error_t err = CRI_ERROR_INIT;
        json_t *spec = NULL;
        assert_int_equal(oci_spec_build(&d, &h, &spec, &err), -1);
        assert_int_equal(err.status, EINVAL);
        assert_null(spec);
    }
}

static void test_spec_write(void **state)
{
    char dir[] = "/tmp/oci-bundle-XXXXXX";
    assert_non_null(mkdtemp(dir));
    oci_desc_t d;
    base_desc(&d);
    oci_host_t h = test_host();
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(oci_spec_write(&d, &h, dir, &err), 0);
    cleanup_free char *path = xasprintf("%s/config.json", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    json_t *written = json_load_file(path, 0, NULL);
    json_t *spec = build_ok(&d, &h);
    assert_true(json_equal(written, spec));
    json_decref(written);
    json_decref(spec);

    d.id = "";
    assert_int_equal(oci_spec_write(&d, &h, dir, &err), -1);
    assert_non_null(strstr(err.msg, "build spec"));
    assert_int_equal(rm_rf(dir, &err), 0);
}

/* A joined pod user namespace comes first, with its one uid and gid range;
 * without mappings the description is refused. */
static void test_user_namespace(void **state)
{
    oci_desc_t d;
    base_desc(&d);
    oci_host_t h = test_host();
    json_t *spec = build_ok(&d, &h);
    bool present;
    ns_path(spec, "user", &present);
    assert_false(present);
    assert_null(json_object_get(json_object_get(spec, "linux"), "uidMappings"));
    json_decref(spec);
    d.ns_user = (oci_namespace_t){OCI_NS_JOIN, "/run/cricket/userns/x"};
    d.uid_map = (oci_idmap_t){0, 1000, 65536};
    d.gid_map = (oci_idmap_t){0, 2000, 65536};
    spec = build_ok(&d, &h);
    json_t *nss = json_object_get(json_object_get(spec, "linux"), "namespaces");
    assert_string_equal(json_string_value(json_object_get(json_array_get(nss, 0), "type")), "user");
    assert_string_equal(ns_path(spec, "user", &present), "/run/cricket/userns/x");
    json_t *gm = json_array_get(json_object_get(json_object_get(spec, "linux"), "gidMappings"), 0);
    assert_int_equal(json_integer_value(json_object_get(gm, "hostID")), 2000);
    assert_int_equal(json_integer_value(json_object_get(gm, "size")), 65536);
    json_t *um = json_array_get(json_object_get(json_object_get(spec, "linux"), "uidMappings"), 0);
    assert_int_equal(json_integer_value(json_object_get(um, "hostID")), 1000);
    assert_int_equal(json_integer_value(json_object_get(um, "containerID")), 0);
    json_decref(spec);
    d.gid_map.length = 0;
    json_t *bad = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(oci_spec_build(&d, &h, &bad, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_null(bad);
}

static void test_hostname_needs_own_uts(void **state)
{
    oci_desc_t d;
    base_desc(&d);
    d.hostname = "h";
    oci_host_t h = test_host();
    json_t *spec = build_ok(&d, &h);
    assert_string_equal(json_string_value(json_object_get(spec, "hostname")), "h");
    json_decref(spec);
    d.ns_uts = (oci_namespace_t){OCI_NS_JOIN, "/proc/1/ns/uts"};
    spec = build_ok(&d, &h);
    assert_string_equal(json_string_value(json_object_get(spec, "hostname")), "h");
    json_decref(spec);
    d.ns_uts = (oci_namespace_t){OCI_NS_HOST, NULL};
    spec = build_ok(&d, &h);
    assert_null(json_object_get(spec, "hostname"));
    json_decref(spec);
}

static void test_host_detect(void **state)
{
    oci_host_t h;
    memset(&h, 0x5a, sizeof(h));
    oci_host_detect(&h);
    assert_true(h.cap_last >= 30 && h.cap_last < 64);
    assert_true(h.oom_score_adj_min >= -1000 && h.oom_score_adj_min <= 1000);
    assert_false(h.rro_supported);
    assert_string_equal(h.dev_root, "/dev");
    /* nothing beyond the kernel's last capability */
    if (h.cap_last < 63)
        assert_int_equal(h.cap_bounding >> (h.cap_last + 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_minimal),
        cmocka_unit_test(test_golden_full),
        cmocka_unit_test(test_golden_privileged),
        cmocka_unit_test(test_privileged_host_devices),
        cmocka_unit_test(test_device_errors),
        cmocka_unit_test(test_cgroups_path),
        cmocka_unit_test(test_namespaces),
        cmocka_unit_test(test_user_namespace),
        cmocka_unit_test(test_bind_propagation),
        cmocka_unit_test(test_mount_errors),
        cmocka_unit_test(test_rro_through_hook),
        cmocka_unit_test(test_default_mount_replaced),
        cmocka_unit_test(test_oom_score_adj_clamped),
        cmocka_unit_test(test_bad_descriptions),
        cmocka_unit_test(test_spec_write),
        cmocka_unit_test(test_hostname_needs_own_uts),
        cmocka_unit_test(test_host_detect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
