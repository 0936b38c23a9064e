/* Unit tests for request validation: RunPodSandbox (server/sandbox/
 * validate.c), CreateContainer (server/container/validate.c) and the shared
 * helpers (server/validate.c). Tables of good and bad names, paths and
 * sizes: every bad one must give EINVAL naming its field, every good one
 * (among them the values kubelet and critest v1.36 send) must pass. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "server/container/container-internal.h"
#include "server/sandbox/sandbox-internal.h"
#include "server/validate.h"

#define UUID "0f9c1d52-8a3b-4c55-9e0d-3b1f6a2c7e44"

typedef Runtime__V1__PodSandboxConfig__LabelsEntry kv_entry_t;

/* A map of n entries key<i> = value (all malloc'd; free with map_free). */
static kv_entry_t **map_new(size_t n, const char *key_prefix, size_t value_len)
{
    kv_entry_t **v = xcalloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i] = xcalloc(1, sizeof(kv_entry_t));
        runtime__v1__pod_sandbox_config__labels_entry__init(v[i]);
        v[i]->key = xasprintf("%s%zu", key_prefix, i);
        v[i]->value = xmalloc(value_len + 1);
        memset(v[i]->value, 'v', value_len);
        v[i]->value[value_len] = '\0';
    }
    return v;
}

static void map_free(kv_entry_t **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i]->key);
        free(v[i]->value);
        free(v[i]);
    }
    free(v);
}

static char *repeat(char c, size_t n)
{
    char *s = xmalloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

typedef int (*validate_fn)(const void *obj, cri_error_t *err);

/* validate(obj) passes when field is NULL, else fails with EINVAL and a
 * message naming field; `what` names the case in a failure. */
static void expect(validate_fn validate, const void *obj, const char *field, const char *what)
{
    cri_error_t err = CRI_ERROR_INIT;
    int rc = validate(obj, &err);
    if (!field) {
        if (rc != 0)
            fail_msg("%s: refused: %s", what, err.msg);
        return;
    }
    if (rc != -1)
        fail_msg("%s: accepted, expected an error naming %s", what, field);
    assert_int_equal(err.status, EINVAL);
    if (!strstr(err.msg, field))
        fail_msg("%s: message `%s` does not name %s", what, err.msg, field);
}

/* A repeated field's cap: *count = over is refused naming field, then
 * *count = under passes. */
static void expect_cap(validate_fn validate, const void *obj, size_t *count, size_t over,
                       size_t under, const char *field)
{
    char what[160];
    *count = over;
    snprintf(what, sizeof(what), "%zu elements of %s", over, field);
    expect(validate, obj, field, what);
    *count = under;
    snprintf(what, sizeof(what), "%zu elements of %s", under, field);
    expect(validate, obj, NULL, what);
}

/* An array of n pointers, all to item (free with free()). */
static void *ptrs_to(size_t n, const void *item)
{
    const void **v = xcalloc(n, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = item;
    return v;
}

/* ---- RunPodSandbox ---- */

struct pod {
    Runtime__V1__PodSandboxMetadata meta;
    Runtime__V1__PodSandboxConfig cfg;
};

static void pod_init(struct pod *p)
{
    runtime__v1__pod_sandbox_metadata__init(&p->meta);
    runtime__v1__pod_sandbox_config__init(&p->cfg);
    p->meta.name = "web";
    p->meta.namespace_ = "default";
    p->meta.uid = UUID;
    p->cfg.metadata = &p->meta;
}

static int pod_validate(const void *p, cri_error_t *err)
{
    return sandbox_validate_config(&((const struct pod *)p)->cfg, err);
}

static void pod_expect(const struct pod *p, const char *field, const char *what)
{
    expect(pod_validate, p, field, what);
}

struct name_case {
    const char *value;
    bool ok;
};

/* metadata.name of pods and containers (one rule, validate_object_name);
 * each test adds 253 and 254 characters and the names critest sends. */
static const struct name_case object_names[] = {
    {"web", true},
    {"kube-apiserver-node1.example.com", true},
    {"", false},
    {"a_b", false},
    {"a;b", false},
    {"a=b", false},
    {"a b", false},
    {"a/b", false},
    {"a\nb", false},
    {"a\n", false},
    {"a\x01", false},
    {"-a", false},
    {"a-", false},
    {".a", false},
    {"caf\xc3\xa9", false},
};

static void test_pod_names(void **state)
{
    (void)state;
    char *n253 = repeat('a', 253), *n254 = repeat('a', 254);
    char *n63 = repeat('a', 63), *n64 = repeat('a', 64);
    const struct name_case names[] = {
        {"PodSandbox-with-attributes-" UUID, true}, /* critest: mixed case */
        {"PodSandbox-for-creating-pod-and-container-performance-test-" UUID, true},
        {"create-PodSandbox-with-DNS-config" UUID, true},
        {n253, true},
        {n254, false},
    };
    const struct name_case namespaces[] = {
        {"default", true},
        {"kube-system", true},
        {"cri-test-namespace" UUID, true},
        {"d", true},
        {n63, true},
        {n64, false},
        {"", false},
        {"Default", false},
        {"a.b", false},
        {"a_b", false},
        {"a;K8S_POD_NAME=x", false},
        {"a=b", false},
        {"a b", false},
        {"-a", false},
        {"a\t", false},
    };
    const struct name_case uids[] = {
        {UUID, true},
        {"cri-test-uid" UUID, true},
        {"9e107d9d372bb6826bd81d3542a419d6", true}, /* a static pod's hash */
        {"uid-web", true},
        {"u", true},
        {"a_b", true},
        {n253, true},
        {n254, false},
        {"", false},
        {"u;K8S_POD_NAME=evil", false},
        {"u=1", false},
        {"u 1", false},
        {"u/1", false},
        {"u\n1", false},
        {"..", false},
        {"-u", false},
    };
    struct {
        const char *field;
        const struct name_case *cases;
        size_t n;
    } tables[] = {
        {"config.metadata.name", names, sizeof(names) / sizeof(names[0])},
        {"config.metadata.name", object_names, sizeof(object_names) / sizeof(object_names[0])},
        {"config.metadata.namespace", namespaces, sizeof(namespaces) / sizeof(namespaces[0])},
        {"config.metadata.uid", uids, sizeof(uids) / sizeof(uids[0])}};
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
        for (size_t i = 0; i < tables[t].n; i++) {
            struct pod p;
            pod_init(&p);
            const char *v = tables[t].cases[i].value;
            if (t <= 1)
                p.meta.name = (char *)v;
            else if (t == 2)
                p.meta.namespace_ = (char *)v;
            else
                p.meta.uid = (char *)v;
            pod_expect(&p, tables[t].cases[i].ok ? NULL : tables[t].field, v);
        }
    }
    free(n253);
    free(n254);
    free(n63);
    free(n64);
}

static const struct name_case label_keys[] = {
    {"app", true},
    {"io.kubernetes.pod.name", true},
    {"io.kubernetes.container.terminationMessagePath", true},
    {"io.kubernetes.container.hash", true},
    {"kubernetes.io/config.seen", true},
    {"container.apparmor.security.beta.kubernetes.io/web", true},
    {"a_b", true},
    {"A", true},
    {"", false},
    {"bad key", false},
    {"a=b", false},
    {"a;b", false},
    {"-a", false},
    {"a/b/c", false},
    {"/a", false},
    {"a/", false},
    {"Example.com/a", false},
    {"x\n", false},
    {"0123456789012345678901234567890123456789012345678901234567890123", false},
};

static void test_pod_label_keys(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(label_keys) / sizeof(label_keys[0]); i++) {
        for (int which = 0; which < 2; which++) {
            struct pod p;
            pod_init(&p);
            kv_entry_t e = RUNTIME__V1__POD_SANDBOX_CONFIG__LABELS_ENTRY__INIT;
            e.key = (char *)label_keys[i].value;
            e.value = "{\"any\": \"json value; with = and spaces\"}";
            kv_entry_t *v[] = {&e};
            if (which == 0) {
                p.cfg.labels = v;
                p.cfg.n_labels = 1;
            } else {
                p.cfg.annotations = (Runtime__V1__PodSandboxConfig__AnnotationsEntry **)v;
                p.cfg.n_annotations = 1;
            }
            pod_expect(&p,
                       label_keys[i].ok ? NULL
                       : which          ? "config.annotations"
                                        : "config.labels",
                       label_keys[i].value);
        }
    }
}

static void test_pod_map_sizes(void **state)
{
    (void)state;
    /* 100,000 annotations of 1 byte each: ~690 KB, over the 256 KiB total */
    size_t n = 100000;
    kv_entry_t **big = map_new(n, "k", 1);
    struct pod p;
    pod_init(&p);
    p.cfg.annotations = (Runtime__V1__PodSandboxConfig__AnnotationsEntry **)big;
    p.cfg.n_annotations = n;
    pod_expect(&p, "config.annotations", "100000 annotations");
    pod_init(&p);
    p.cfg.labels = big;
    p.cfg.n_labels = n;
    pod_expect(&p, "config.labels", "100000 labels");
    map_free(big, n);

    /* one value just over, and just at, the cap (key "k0" is 2 bytes) */
    kv_entry_t **one = map_new(1, "k", VALIDATE_MAX_MAP_BYTES - 1);
    pod_init(&p);
    p.cfg.annotations = (Runtime__V1__PodSandboxConfig__AnnotationsEntry **)one;
    p.cfg.n_annotations = 1;
    pod_expect(&p, "config.annotations", "257 KiB annotation");
    one[0]->value[VALIDATE_MAX_MAP_BYTES - 2] = '\0';
    pod_expect(&p, NULL, "256 KiB annotation");
    map_free(one, 1);

    /* a realistic pod: 40 labels and 40 annotations */
    kv_entry_t **labels = map_new(40, "app.kubernetes.io/part-", 20);
    kv_entry_t **ann = map_new(40, "example.com/note-", 2000);
    pod_init(&p);
    p.cfg.labels = labels;
    p.cfg.n_labels = 40;
    p.cfg.annotations = (Runtime__V1__PodSandboxConfig__AnnotationsEntry **)ann;
    p.cfg.n_annotations = 40;
    pod_expect(&p, NULL, "40 labels and annotations");
    map_free(labels, 40);
    map_free(ann, 40);
}

static void test_pod_log_directory(void **state)
{
    (void)state;
    const struct name_case dirs[] = {
        {"", true},
        {"/var/log/pods/default_web_" UUID, true},
        {"/tmp/podLogTest123/PodSandbox-with-log-directory-" UUID, true},
        {"/", true},
        {"/a/.b/..c/c..", true},
        {"relative/dir", false},
        {"logs", false},
        {"/var/log/../../etc", false},
        {"/var/log/..", false},
        {"/var/./log", false},
        {"/var//log", false},
        {"//var/log", false},
        {"/var/log/", false},
        {"/var/log\n", false},
        {"/var/log\x7f", false},
    };
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        struct pod p;
        pod_init(&p);
        p.cfg.log_directory = (char *)dirs[i].value;
        pod_expect(&p, dirs[i].ok ? NULL : "config.log_directory", dirs[i].value);
    }
    char *longdir = repeat('a', VALIDATE_MAX_PATH + 1);
    longdir[0] = '/';
    struct pod p;
    pod_init(&p);
    p.cfg.log_directory = longdir;
    pod_expect(&p, "config.log_directory", "a 4 KiB path");
    free(longdir);
}

static void test_pod_repeated_fields(void **state)
{
    (void)state;
    struct pod p;
    size_t n = 100000;
    Runtime__V1__PortMapping pm = RUNTIME__V1__PORT_MAPPING__INIT;
    pm.container_port = 80;
    Runtime__V1__PortMapping **pms = ptrs_to(n, &pm);
    pod_init(&p);
    p.cfg.port_mappings = pms;
    /* 20000: an RTP range */
    expect_cap(pod_validate, &p, &p.cfg.n_port_mappings, n, 20000, "config.port_mappings");
    free(pms);

    char **strs = ptrs_to(n, "10.0.0.1");
    Runtime__V1__DNSConfig dns = RUNTIME__V1__DNSCONFIG__INIT;
    pod_init(&p);
    p.cfg.dns_config = &dns;
    const char *fields[] = {"config.dns_config.servers", "config.dns_config.searches",
                            "config.dns_config.options"};
    for (int f = 0; f < 3; f++) {
        dns.n_servers = dns.n_searches = dns.n_options = 0;
        size_t *np = f == 0 ? &dns.n_servers : f == 1 ? &dns.n_searches : &dns.n_options;
        char ***vp = f == 0 ? &dns.servers : f == 1 ? &dns.searches : &dns.options;
        *vp = strs;
        expect_cap(pod_validate, &p, np, n, 32 /* what Kubernetes allows for searches */,
                   fields[f]);
    }
    free(strs);

    kv_entry_t **sysctls = map_new(n, "net.ipv4.conf.x", 1);
    Runtime__V1__LinuxPodSandboxConfig lx = RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
    lx.sysctls = (Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry **)sysctls;
    pod_init(&p);
    p.cfg.linux = &lx;
    expect_cap(pod_validate, &p, &lx.n_sysctls, n, 100, "config.linux.sysctls");
    map_free(sysctls, n);
}

/* ---- CreateContainer ---- */

struct ctr {
    Runtime__V1__ContainerMetadata meta;
    Runtime__V1__ImageSpec image;
    Runtime__V1__ContainerConfig cfg;
    Runtime__V1__CreateContainerRequest req;
};

static void ctr_init(struct ctr *c)
{
    runtime__v1__container_metadata__init(&c->meta);
    runtime__v1__image_spec__init(&c->image);
    runtime__v1__container_config__init(&c->cfg);
    runtime__v1__create_container_request__init(&c->req);
    c->meta.name = "web";
    c->image.image = "busybox";
    c->cfg.metadata = &c->meta;
    c->cfg.image = &c->image;
    c->req.pod_sandbox_id = "abcdef";
    c->req.config = &c->cfg;
}

static int ctr_validate(const void *c, cri_error_t *err)
{
    return container_validate_create(&((const struct ctr *)c)->req, err);
}

static void ctr_expect(const struct ctr *c, const char *field, const char *what)
{
    expect(ctr_validate, c, field, what);
}

static void test_container_names(void **state)
{
    (void)state;
    char *n253 = repeat('a', 253), *n254 = repeat('a', 254);
    const struct name_case names[] = {
        {"container-with-RunAsGroup-without-RunAsUser-test-" UUID, true}, /* critest: 85 */
        {"container-with-SupplementalGroupsPolicyMerge-" UUID, true},
        {"container-for-exec-test", true},
        {n253, true},
        {n254, false},
    };
    const struct name_case *tables[] = {names, object_names};
    const size_t sizes[] = {sizeof(names) / sizeof(names[0]),
                            sizeof(object_names) / sizeof(object_names[0])};
    for (size_t t = 0; t < 2; t++) {
        for (size_t i = 0; i < sizes[t]; i++) {
            struct ctr c;
            ctr_init(&c);
            c.meta.name = (char *)tables[t][i].value;
            ctr_expect(&c, tables[t][i].ok ? NULL : "config.metadata.name", tables[t][i].value);
        }
    }
    free(n253);
    free(n254);
}

/* Image volumes (Mount.image): read-only only, no host path, a clean
 * relative sub path; a sub path without an image is refused too. */
static void test_container_image_volumes(void **state)
{
    (void)state;
    static const struct {
        bool image, readonly;
        const char *host_path, *sub, *field; /* field NULL: accepted */
    } cases[] = {
        {true, true, "", "", NULL},
        {true, true, "", "etc", NULL},
        {true, true, "", "usr/share/doc", NULL},
        {true, false, "", "", "mounts[0].readonly"},
        {true, true, "/srv", "", "mounts[0].host_path"},
        {true, true, "", "../etc", "mounts[0].image_sub_path"},
        {true, true, "", "a/../../etc", "mounts[0].image_sub_path"},
        {true, true, "", "/etc", "mounts[0].image_sub_path"},
        {true, true, "", "a//b", "mounts[0].image_sub_path"},
        {false, true, "/srv", "etc", "mounts[0].image_sub_path"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ctr c;
        ctr_init(&c);
        Runtime__V1__ImageSpec img;
        runtime__v1__image_spec__init(&img);
        img.image = "sha256:0123";
        Runtime__V1__Mount m, *mounts[1] = {&m};
        runtime__v1__mount__init(&m);
        m.container_path = "/vol";
        m.host_path = (char *)cases[i].host_path;
        m.readonly = cases[i].readonly;
        m.image = cases[i].image ? &img : NULL;
        m.image_sub_path = (char *)cases[i].sub;
        c.cfg.mounts = mounts;
        c.cfg.n_mounts = 1;
        char what[64];
        (void)snprintf(what, sizeof(what), "image volume case %zu", i);
        ctr_expect(&c, cases[i].field, what);
    }
}

static void test_container_log_path(void **state)
{
    (void)state;
    const struct name_case paths[] = {
        {"", true},          {"web.log", true},
        {"web/0.log", true}, {"container-with-attributes-" UUID ".log", true},
        {"a..b.log", true},  {"/etc/passwd", false},
        {"../x.log", false}, {"a/../../x.log", false},
        {"..", false},       {"./x.log", false},
        {"a//x.log", false}, {"a/", false},
        {"x.log\n", false},
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct ctr c;
        ctr_init(&c);
        c.cfg.log_path = (char *)paths[i].value;
        ctr_expect(&c, paths[i].ok ? NULL : "config.log_path", paths[i].value);
    }
}

static void test_container_maps(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(label_keys) / sizeof(label_keys[0]); i++) {
        struct ctr c;
        ctr_init(&c);
        kv_entry_t e = RUNTIME__V1__POD_SANDBOX_CONFIG__LABELS_ENTRY__INIT;
        e.key = (char *)label_keys[i].value;
        e.value = "v";
        kv_entry_t *v[] = {&e};
        c.cfg.labels = (Runtime__V1__ContainerConfig__LabelsEntry **)v;
        c.cfg.n_labels = 1;
        ctr_expect(&c, label_keys[i].ok ? NULL : "config.labels", label_keys[i].value);
    }
    size_t n = 100000;
    kv_entry_t **big = map_new(n, "k", 1);
    struct ctr c;
    ctr_init(&c);
    c.cfg.annotations = (Runtime__V1__ContainerConfig__AnnotationsEntry **)big;
    c.cfg.n_annotations = n;
    ctr_expect(&c, "config.annotations", "100000 annotations");
    map_free(big, n);
}

static void test_container_repeated_fields(void **state)
{
    (void)state;
    size_t n = 100000;
    struct ctr c;

    Runtime__V1__KeyValue kv = RUNTIME__V1__KEY_VALUE__INIT;
    kv.key = "K";
    kv.value = (ProtobufCBinaryData){1, (uint8_t *)"v"};
    Runtime__V1__KeyValue **envs = ptrs_to(n, &kv);
    ctr_init(&c);
    c.cfg.envs = envs;
    expect_cap(ctr_validate, &c, &c.cfg.n_envs, n, 5000, "config.envs");
    /* 3 MiB of environment in a few entries */
    Runtime__V1__KeyValue bigkv = RUNTIME__V1__KEY_VALUE__INIT;
    char *mib = repeat('x', 1u << 20);
    bigkv.key = "BIG";
    bigkv.value = (ProtobufCBinaryData){1u << 20, (uint8_t *)mib};
    Runtime__V1__KeyValue *bigv[] = {&bigkv, &bigkv, &bigkv};
    c.cfg.envs = bigv;
    expect_cap(ctr_validate, &c, &c.cfg.n_envs, 3, 1, "config.envs"); /* 3 MiB, 1 MiB */
    free(envs);

    char **args = ptrs_to(n, "x");
    ctr_init(&c);
    c.cfg.args = args;
    expect_cap(ctr_validate, &c, &c.cfg.n_args, n, 0, "config.args");
    c.cfg.command = args;
    expect_cap(ctr_validate, &c, &c.cfg.n_command, n, 3, "config.command");
    char *bigargs[] = {mib, mib, mib};
    c.cfg.args = bigargs;
    expect_cap(ctr_validate, &c, &c.cfg.n_args, 3, 1, "config.args"); /* 3 MiB, 1 MiB */
    free(mib);
    free(args);

    Runtime__V1__Device dev = RUNTIME__V1__DEVICE__INIT;
    dev.container_path = "/dev/null";
    dev.host_path = "/dev/null";
    dev.permissions = "rwm";
    Runtime__V1__Device **devs = ptrs_to(n, &dev);
    ctr_init(&c);
    c.cfg.devices = devs;
    expect_cap(ctr_validate, &c, &c.cfg.n_devices, n, 10, "config.devices");
    free(devs);

    Runtime__V1__Mount m = RUNTIME__V1__MOUNT__INIT;
    m.container_path = "/data";
    m.host_path = "/tmp";
    Runtime__V1__Mount **mounts = ptrs_to(n, &m);
    ctr_init(&c);
    c.cfg.mounts = mounts;
    expect_cap(ctr_validate, &c, &c.cfg.n_mounts, n, 20, "config.mounts");
    free(mounts);

    char **paths = ptrs_to(n, "/proc/kcore");
    int64_t *groups = xcalloc(n, sizeof(int64_t));
    Runtime__V1__LinuxContainerSecurityContext sc =
        RUNTIME__V1__LINUX_CONTAINER_SECURITY_CONTEXT__INIT;
    Runtime__V1__LinuxContainerConfig lx = RUNTIME__V1__LINUX_CONTAINER_CONFIG__INIT;
    lx.security_context = &sc;
    ctr_init(&c);
    c.cfg.linux = &lx;
    sc.masked_paths = paths;
    expect_cap(ctr_validate, &c, &sc.n_masked_paths, n, 30,
               "config.linux.security_context.masked_paths");
    sc.readonly_paths = paths;
    expect_cap(ctr_validate, &c, &sc.n_readonly_paths, n, 30,
               "config.linux.security_context.readonly_paths");
    sc.supplemental_groups = groups;
    expect_cap(ctr_validate, &c, &sc.n_supplemental_groups, n, 3,
               "config.linux.security_context.supplemental_groups");
    free(paths);
    free(groups);
}

/* ---- shared helpers ---- */

static void test_paths(void **state)
{
    (void)state;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(validate_abs_clean_path("f", "/a/b", &err), 0);
    assert_int_equal(validate_abs_clean_path("f", "/a/b/", &err), -1);
    assert_non_null(strstr(err.msg, "f `/a/b/`"));
    assert_int_equal(validate_rel_clean_path("f", "a/b", &err), 0);
    assert_int_equal(validate_rel_clean_path("f", "a/b/..", &err), -1);
    assert_int_equal(validate_rel_clean_path("f", "", &err), -1);
    assert_non_null(strstr(err.msg, "f is empty"));
}

/* userns_options: the table of what kubelet and critest v1.36 send, and
 * each refusal naming its field. */
static void test_userns(void **state)
{
    static const struct {
        int mode;
        uint32_t uids[2][3], gids[2][3];
        size_t n_uids, n_gids;
        const char *field; /* NULL: accepted */
    } cases[] = {
        {RUNTIME__V1__NAMESPACE_MODE__NODE, {{0}}, {{0}}, 0, 0, NULL},
        {RUNTIME__V1__NAMESPACE_MODE__POD, {{0, 65536, 65536}}, {{0, 65536, 65536}}, 1, 1, NULL},
        {RUNTIME__V1__NAMESPACE_MODE__POD, {{0, 1000, 100000}}, {{0, 1000, 100000}}, 1, 1, NULL},
        {RUNTIME__V1__NAMESPACE_MODE__CONTAINER, {{0}}, {{0}}, 0, 0, "u.mode:"},
        {RUNTIME__V1__NAMESPACE_MODE__TARGET, {{0}}, {{0}}, 0, 0, "u.mode:"},
        {7, {{0}}, {{0}}, 0, 0, "u.mode: invalid"},
        {RUNTIME__V1__NAMESPACE_MODE__NODE, {{0, 1, 1}}, {{0}}, 1, 0, "u: mode NODE"},
        {RUNTIME__V1__NAMESPACE_MODE__POD,
         {{0, 1000, 100000}, {0, 2000, 100000}},
         {{0, 1000, 100000}},
         2,
         1,
         "u.uids: 2 ranges"},
        {RUNTIME__V1__NAMESPACE_MODE__POD, {{0, 1000, 10}}, {{0}}, 1, 0, "u.gids: 0 ranges"},
        {RUNTIME__V1__NAMESPACE_MODE__POD,
         {{1, 1000, 10}},
         {{0, 1000, 10}},
         1,
         1,
         "u.uids[0].container_id"},
        {RUNTIME__V1__NAMESPACE_MODE__POD,
         {{0, 1000, 10}},
         {{0, 1000, 0}},
         1,
         1,
         "u.gids[0].length"},
        {RUNTIME__V1__NAMESPACE_MODE__POD, {{0, 0, 10}}, {{0, 1, 10}}, 1, 1, "u.uids[0].host_id"},
        {RUNTIME__V1__NAMESPACE_MODE__POD,
         {{0, 4294967295u, 1}},
         {{0, 1, 10}},
         1,
         1,
         "u.uids[0]: host ids"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Runtime__V1__IDMapping m[4], *uids[2] = {&m[0], &m[1]}, *gids[2] = {&m[2], &m[3]};
        for (int j = 0; j < 2; j++) {
            runtime__v1__idmapping__init(&m[j]);
            m[j].container_id = cases[i].uids[j][0];
            m[j].host_id = cases[i].uids[j][1];
            m[j].length = cases[i].uids[j][2];
            runtime__v1__idmapping__init(&m[2 + j]);
            m[2 + j].container_id = cases[i].gids[j][0];
            m[2 + j].host_id = cases[i].gids[j][1];
            m[2 + j].length = cases[i].gids[j][2];
        }
        Runtime__V1__UserNamespace u;
        runtime__v1__user_namespace__init(&u);
        u.mode = (Runtime__V1__NamespaceMode)cases[i].mode;
        u.uids = uids;
        u.n_uids = cases[i].n_uids;
        u.gids = gids;
        u.n_gids = cases[i].n_gids;
        cri_error_t err = CRI_ERROR_INIT;
        int rc = validate_userns("u", &u, &err);
        if (!cases[i].field) {
            assert_int_equal(rc, 0);
            continue;
        }
        assert_int_equal(rc, -1);
        assert_int_equal(err.status, EINVAL);
        if (strncmp(err.msg, cases[i].field, strlen(cases[i].field)) != 0)
            fail_msg("case %zu: `%s` does not start with `%s`", i, err.msg, cases[i].field);
    }
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(validate_userns("u", NULL, &err), 0);
}

static void test_message_quotes_safely(void **state)
{
    (void)state;
    cri_error_t err = CRI_ERROR_INIT;
    char *big = repeat('a', 10000);
    big[5] = '\n';
    assert_int_equal(validate_object_name("config.metadata.name", big, &err), -1);
    /* unprintables as `?`, long values cut */
    assert_null(strchr(err.msg, '\n'));
    assert_non_null(strstr(err.msg, "`aaaaa?aaa"));
    assert_true(strlen(err.msg) < 400);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pod_names),
        cmocka_unit_test(test_pod_label_keys),
        cmocka_unit_test(test_pod_map_sizes),
        cmocka_unit_test(test_pod_log_directory),
        cmocka_unit_test(test_pod_repeated_fields),
        cmocka_unit_test(test_container_names),
        cmocka_unit_test(test_container_log_path),
        cmocka_unit_test(test_container_image_volumes),
        cmocka_unit_test(test_container_maps),
        cmocka_unit_test(test_container_repeated_fields),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_userns),
        cmocka_unit_test(test_message_quotes_safely),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
