/* Unit tests for server/sandbox/: the record format, the in-memory store
 * (ids, prefixes, refcounts), persistence with name reservations on a
 * temporary LMDB store, request validation and resolv.conf text. No root,
 * no runc, no CNI: those are the e2e tests' job. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "conf/conf.h"
#include "oci/oci.h"
#include "server/daemon.h"
#include "server/host_ops.h"
#include "server/sandbox/sandbox-internal.h"
#include "server/store.h"

static char **strv(const char *first, ...)
{
    char **v = xcalloc(16, sizeof(char *));
    size_t n = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        v[n++] = xstrdup(s);
    va_end(ap);
    return v;
}

static sandbox_t *make(const char *id, const char *name)
{
    sandbox_t *sb = sandbox_new();
    str_set(&sb->id, id);
    str_set(&sb->name, name);
    str_set(&sb->meta_name, "web");
    str_set(&sb->meta_uid, "uid-1");
    str_set(&sb->meta_namespace, "default");
    sb->attempt = 3;
    strv_free(sb->labels);
    sb->labels = strv("app", "web", "tier", "front", NULL);
    strv_free(sb->annotations);
    sb->annotations = strv("note", "a \"quoted\" value\n", NULL);
    strv_free(sb->ips);
    sb->ips = strv("10.1.2.3", "fd00::3", NULL);
    str_set(&sb->runtime, "runc");
    str_set(&sb->netns_path, "/run/cricket/netns/x");
    str_set(&sb->cni_network, "net1");
    sb->created_at = 1700000000123456789LL;
    sb->ns_network = SANDBOX_NS_POD;
    sb->ns_pid = SANDBOX_NS_CONTAINER;
    sb->ns_ipc = SANDBOX_NS_NODE;
    sandbox_set_state(sb, SANDBOX_STATE_READY, 4242);
    return sb;
}

static void test_record_round_trip(void **state)
{
    cleanup_sandbox sandbox_t *sb = make("abc123", "k8s_POD_web_default_uid-1_3");
    cleanup_free char *json = sandbox_record_dump(sb, true);
    cleanup_sandbox sandbox_t *back = NULL;
    bool creating = false;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(sandbox_record_parse(json, strlen(json), &back, &creating, &err), 0);
    assert_true(creating);
    assert_string_equal(back->id, "abc123");
    assert_string_equal(back->name, "k8s_POD_web_default_uid-1_3");
    assert_string_equal(back->meta_namespace, "default");
    assert_int_equal(back->attempt, 3);
    assert_string_equal(sandbox_label(back, "tier"), "front");
    assert_null(sandbox_label(back, "nope"));
    assert_string_equal(back->annotations[1], "a \"quoted\" value\n");
    assert_string_equal(back->ips[1], "fd00::3");
    assert_null(back->ips[2]);
    assert_int_equal(back->created_at, 1700000000123456789LL);
    assert_int_equal(back->ns_pid, SANDBOX_NS_CONTAINER);
    assert_int_equal(back->ns_ipc, SANDBOX_NS_NODE);
    pid_t pid = 0;
    assert_int_equal(sandbox_get_state(back, &pid), SANDBOX_STATE_READY);
    assert_int_equal(pid, 4242);
    cleanup_free char *again = sandbox_record_dump(back, true);
    assert_string_equal(json, again);
}

/* privileged survives the record; a record written before the field
 * existed loads as not privileged. */
static void test_record_privileged_and_old_records(void **state)
{
    cleanup_sandbox sandbox_t *sb = make("p1", "n");
    sb->privileged = true;
    cleanup_free char *json = sandbox_record_dump(sb, false);
    cleanup_sandbox sandbox_t *back = NULL;
    bool creating = false;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(sandbox_record_parse(json, strlen(json), &back, &creating, &err), 0);
    assert_true(back->privileged);

    char *p = strstr(json, ",\"privileged\":true");
    assert_non_null(p);
    memmove(p, p + strlen(",\"privileged\":true"), strlen(p + strlen(",\"privileged\":true")) + 1);
    cleanup_sandbox sandbox_t *old = NULL;
    assert_int_equal(sandbox_record_parse(json, strlen(json), &old, &creating, &err), 0);
    assert_false(old->privileged);
    assert_string_equal(old->id, "p1");
}

/* UpdatePodSandboxResources' limits survive the record; records without
 * them load with resources_set false; a bad one is refused naming it. */
static void test_record_pod_resources(void **state)
{
    cleanup_sandbox sandbox_t *sb = make("r1", "n");
    cleanup_free char *plain = sandbox_record_dump(sb, false);
    assert_null(strstr(plain, "\"resources\""));
    sb->resources_set = true;
    sb->resources = (cgroup_limits_t){
        .cpu_period = 100000, .cpu_quota = 50000, .cpu_shares = 512, .memory_limit = 134217728};
    sb->overhead = (cgroup_limits_t){.memory_limit = 16777216};
    cleanup_free char *json = sandbox_record_dump(sb, false);
    cleanup_sandbox sandbox_t *back = NULL;
    bool creating = false;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(sandbox_record_parse(json, strlen(json), &back, &creating, &err), 0);
    assert_true(back->resources_set);
    assert_int_equal(back->resources.cpu_quota, 50000);
    assert_int_equal(back->resources.cpu_shares, 512);
    assert_int_equal(back->resources.memory_limit, 134217728);
    assert_int_equal(back->overhead.memory_limit, 16777216);
    assert_int_equal(back->overhead.cpu_quota, 0);
    cleanup_sandbox sandbox_t *old = NULL;
    assert_int_equal(sandbox_record_parse(plain, strlen(plain), &old, &creating, &err), 0);
    assert_false(old->resources_set);

    char *p = strstr(json, "\"cpu_quota\":50000");
    assert_non_null(p);
    memcpy(p + strlen("\"cpu_quota\":"), "true ", 5); /* a bool where a number goes */
    sandbox_t *bad = NULL;
    assert_int_equal(sandbox_record_parse(json, strlen(json), &bad, &creating, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_non_null(strstr(err.msg, "resources"));
    assert_null(bad);
}

/* A pod user namespace survives the record; a record without one (older,
 * or a host-userns pod) has none; a bad one is refused. */
static void test_record_userns(void **state)
{
    cleanup_sandbox sandbox_t *sb = make("u1", "n");
    str_set(&sb->userns_path, "/run/cricket/userns/u1");
    const uint32_t uid[3] = {0, 300000, 65536}, gid[3] = {0, 400000, 65536};
    memcpy(sb->uid_map, uid, sizeof(uid));
    memcpy(sb->gid_map, gid, sizeof(gid));
    cleanup_free char *json = sandbox_record_dump(sb, false);
    cleanup_sandbox sandbox_t *back = NULL;
    bool creating = false;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(sandbox_record_parse(json, strlen(json), &back, &creating, &err), 0);
    assert_string_equal(back->userns_path, "/run/cricket/userns/u1");
    assert_memory_equal(back->uid_map, uid, sizeof(uid));
    assert_memory_equal(back->gid_map, gid, sizeof(gid));

    cleanup_sandbox sandbox_t *host = make("u2", "n");
    cleanup_free char *plain = sandbox_record_dump(host, false);
    assert_null(strstr(plain, "userns"));
    cleanup_sandbox sandbox_t *back2 = NULL;
    assert_int_equal(sandbox_record_parse(plain, strlen(plain), &back2, &creating, &err), 0);
    assert_string_equal(back2->userns_path, "");

    char *p = strstr(json, "[0,400000,65536]");
    assert_non_null(p);
    memcpy(p, "[0,400000,-6553]", 16);
    cleanup_sandbox sandbox_t *bad = NULL;
    assert_int_equal(sandbox_record_parse(json, strlen(json), &bad, &creating, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_non_null(strstr(err.msg, "userns"));
}

/* A pod without an infra keeps that and its ipc/uts pins in the record
 * (so Stop and recovery undo them); an older record without the keys has
 * an infra and no pins; a wrong type is refused naming the key. */
static void test_record_infra_and_pins(void **state)
{
    cleanup_sandbox sandbox_t *sb = make("i1", "n");
    sb->infra = false;
    str_set(&sb->ipcns_path, "/run/cricket/ipcns/i1");
    str_set(&sb->utsns_path, "/run/cricket/utsns/i1");
    cleanup_free char *json = sandbox_record_dump(sb, true);
    cleanup_sandbox sandbox_t *back = NULL;
    bool creating = false;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(sandbox_record_parse(json, strlen(json), &back, &creating, &err), 0);
    assert_true(creating);
    assert_false(back->infra);
    assert_string_equal(back->ipcns_path, "/run/cricket/ipcns/i1");
    assert_string_equal(back->utsns_path, "/run/cricket/utsns/i1");

    char *p = strstr(json, ",\"infra\":false");
    assert_non_null(p);
    memmove(p, p + strlen(",\"infra\":false"), strlen(p + strlen(",\"infra\":false")) + 1);
    cleanup_sandbox sandbox_t *old = NULL;
    assert_int_equal(sandbox_record_parse(json, strlen(json), &old, &creating, &err), 0);
    assert_true(old->infra);

    cleanup_sandbox sandbox_t *plain = make("i2", "n");
    cleanup_free char *pj = sandbox_record_dump(plain, false);
    assert_null(strstr(pj, "ipcns"));
    cleanup_sandbox sandbox_t *back2 = NULL;
    assert_int_equal(sandbox_record_parse(pj, strlen(pj), &back2, &creating, &err), 0);
    assert_true(back2->infra);
    assert_string_equal(back2->ipcns_path, "");
    assert_string_equal(back2->utsns_path, "");

    p = strstr(json, "\"/run/cricket/utsns/i1\"");
    assert_non_null(p);
    memcpy(p, "12345                  ", 23); /* a number where a path goes */
    sandbox_t *bad = NULL;
    assert_int_equal(sandbox_record_parse(json, strlen(json), &bad, &creating, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_non_null(strstr(err.msg, "utsns"));
    assert_null(bad);
}

static void test_record_parse_errors(void **state)
{
    static const char *const bad[] = {
        "",
        "{",
        "[]",
        "{\"version\":1}",
        "{\"version\":2,\"id\":\"x\"}",
        /* labels must hold strings */
        NULL,
    };
    for (size_t i = 0; bad[i]; i++) {
        sandbox_t *sb = NULL;
        bool creating = false;
        cri_error_t err = CRI_ERROR_INIT;
        assert_int_equal(sandbox_record_parse(bad[i], strlen(bad[i]), &sb, &creating, &err), -1);
        assert_int_equal(err.status, EINVAL);
        assert_non_null(strstr(err.msg, "pod record"));
        assert_null(sb);
    }
    /* a valid record with a non-string label value */
    cleanup_sandbox sandbox_t *ok = make("a", "n");
    cleanup_free char *json = sandbox_record_dump(ok, false);
    char *p = strstr(json, "\"web\",\"tier\"");
    assert_non_null(p);
    memcpy(p, "12345", 5); /* "app":12345,"tier"... */
    sandbox_t *sb = NULL;
    bool creating = false;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(sandbox_record_parse(json, strlen(json), &sb, &creating, &err), -1);
    assert_non_null(strstr(err.msg, "labels"));
}

static void test_store_lookup(void **state)
{
    sandbox_store_t *s = sandbox_store_new(NULL);
    cleanup_sandbox sandbox_t *a = make("aaaa1111", "n1");
    cleanup_sandbox sandbox_t *b = make("aaaa2222", "n2");
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(sandbox_store_add(s, a, &err), 0);
    assert_int_equal(sandbox_store_add(s, b, &err), 0);
    assert_int_equal(sandbox_store_add(s, a, &err), -1);
    assert_int_equal(err.status, EEXIST);

    sandbox_t *got = NULL;
    assert_int_equal(sandbox_store_get(s, "aaaa2", &got, &err), 0);
    assert_ptr_equal(got, b);
    sandbox_unref(got);
    assert_int_equal(sandbox_store_get(s, "aaaa1111", &got, &err), 0);
    assert_ptr_equal(got, a);
    sandbox_unref(got);

    cri_error_t e1 = CRI_ERROR_INIT, e2 = CRI_ERROR_INIT, e3 = CRI_ERROR_INIT;
    assert_int_equal(sandbox_store_get(s, "aaaa", &got, &e1), -1);
    assert_int_equal(e1.status, EINVAL);
    assert_non_null(strstr(e1.msg, "ambiguous"));
    assert_int_equal(sandbox_store_get(s, "b", &got, &e2), -1);
    assert_int_equal(e2.status, ENOENT);
    assert_int_equal(sandbox_store_get(s, "", &got, &e3), -1);
    assert_int_equal(e3.status, EINVAL);

    sandbox_t **list = NULL;
    size_t n = 0;
    sandbox_store_list(s, &list, &n);
    assert_int_equal(n, 2);
    sandbox_store_remove(s, a);
    sandbox_store_remove(s, a); /* absent: no-op */
    assert_int_equal(sandbox_store_get(s, "aaaa", &got, &err), 0);
    assert_ptr_equal(got, b);
    sandbox_unref(got);
    /* the snapshot still holds its references */
    assert_string_equal(list[0]->id, "aaaa1111");
    sandbox_list_free(list, n);
    sandbox_store_free(s);
}

static void test_store_persist_and_reserve(void **state)
{
    char dir[] = "/tmp/test-sandbox-XXXXXX";
    assert_non_null(mkdtemp(dir));
    store_t *db = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(store_open(dir, &db, &err), 0);
    sandbox_store_t *s = sandbox_store_new(db);
    cleanup_sandbox sandbox_t *a = make("id-a", "k8s_POD_x");
    cleanup_sandbox sandbox_t *b = make("id-b", "k8s_POD_x");
    assert_int_equal(sandbox_store_persist(s, a, true, &err), 0);

    cri_error_t dup = CRI_ERROR_INIT;
    assert_int_equal(sandbox_store_persist(s, b, true, &dup), -1);
    assert_int_equal(dup.status, EEXIST);
    assert_non_null(strstr(dup.msg, "id-a"));
    void *val = NULL;
    cri_error_t gerr = CRI_ERROR_INIT;
    assert_int_equal(store_get1(db, STORE_PODS, "id-b", &val, NULL, &gerr), -1);
    assert_int_equal(gerr.status, ENOENT);

    /* the reservation record is marked creating until a plain persist */
    size_t len = 0;
    assert_int_equal(store_get1(db, STORE_PODS, "id-a", &val, &len, &err), 0);
    cleanup_sandbox sandbox_t *back = NULL;
    bool creating = false;
    assert_int_equal(sandbox_record_parse(val, len, &back, &creating, &err), 0);
    assert_true(creating);
    free(val);
    assert_int_equal(sandbox_store_persist(s, a, false, &err), 0);
    assert_int_equal(store_get1(db, STORE_PODS, "id-a", &val, &len, &err), 0);
    sandbox_unref(back);
    back = NULL;
    assert_int_equal(sandbox_record_parse(val, len, &back, &creating, &err), 0);
    assert_false(creating);
    free(val);

    /* forget releases the name: b may take it now; forgetting twice is fine */
    assert_int_equal(sandbox_store_forget(s, a, &err), 0);
    assert_int_equal(sandbox_store_forget(s, a, &err), 0);
    assert_int_equal(sandbox_store_persist(s, b, true, &err), 0);
    /* forgetting a pod never releases a name someone else holds */
    assert_int_equal(sandbox_store_forget(s, a, &err), 0);
    cleanup_sandbox sandbox_t *c = make("id-c", "k8s_POD_x");
    cri_error_t dup2 = CRI_ERROR_INIT;
    assert_int_equal(sandbox_store_persist(s, c, true, &dup2), -1);
    assert_non_null(strstr(dup2.msg, "id-b"));

    sandbox_store_free(s);
    store_close(db);
    rm_rf(dir, &err);
}

static void count_warn(log_level_t level, const char *line, void *data)
{
    if (level == LOG_LEVEL_WARN && strstr(line, "load pod sandbox record `bad`: parse pod record"))
        ++*(int *)data;
}

/* A record written before the shared object store (and before the
 * privileged field) loads unchanged; one that does not parse is skipped
 * with a warning naming it. */
static void test_store_load_old_and_corrupt(void **state)
{
    static const char old[] =
        "{\"version\":1,\"id\":\"oldpod\",\"name\":\"k8s_POD_x\",\"metadata\":{\"name\":\"x\","
        "\"uid\":\"u\",\"namespace\":\"ns\",\"attempt\":0},\"labels\":{\"app\":\"web\"},"
        "\"annotations\":{},\"runtime_handler\":\"\",\"runtime\":\"runc\",\"created_at\":1,"
        "\"namespaces\":{\"network\":2,\"pid\":0,\"ipc\":0},\"hostname\":\"h\","
        "\"log_directory\":\"\",\"cgroup_parent\":\"\",\"netns\":\"\",\"cni_network\":\"\","
        "\"ips\":[\"10.0.0.2\"],\"state\":0,\"pid\":7,\"creating\":true}";
    static const char corrupt[] = "{\"version\":1,\"id\":";
    char dir[] = "/tmp/test-sandbox-old-XXXXXX";
    assert_non_null(mkdtemp(dir));
    store_t *db = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(store_open(dir, &db, &err), 0);
    assert_int_equal(store_put1(db, STORE_PODS, "oldpod", old, strlen(old), &err), 0);
    assert_int_equal(store_put1(db, STORE_PODS, "bad", corrupt, strlen(corrupt), &err), 0);
    int warned = 0;
    log_set_handler(count_warn, &warned);
    sandbox_store_t *s = sandbox_store_new(db);
    size_t skipped = 0;
    int rc = sandbox_store_load(s, &skipped, &err);
    log_set_handler(NULL, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(skipped, 1);
    assert_int_equal(warned, 1);
    sandbox_t *sb = NULL;
    assert_int_equal(sandbox_store_get(s, "old", &sb, &err), 0);
    assert_string_equal(sb->meta_namespace, "ns");
    assert_string_equal(sandbox_label(sb, "app"), "web");
    assert_string_equal(sb->ips[0], "10.0.0.2");
    assert_int_equal(sb->ns_network, SANDBOX_NS_NODE);
    assert_false(sb->privileged);
    assert_true(sb->creating);
    pid_t pid = 0;
    assert_int_equal(sandbox_get_state(sb, &pid), SANDBOX_STATE_READY);
    assert_int_equal(pid, 7);
    sandbox_unref(sb);
    sandbox_store_free(s);
    store_close(db);
    rm_rf(dir, &err);
}

/* Stop and Remove reach the pod's containers only through the hooks
 * registered at startup; without hooks there is nothing to do. */
static int hook_calls;
static char hook_pod[80];

static int fake_stop_hook(void *data, const char *sandbox_id, cri_error_t *err)
{
    hook_calls += *(int *)data;
    snprintf(hook_pod, sizeof(hook_pod), "%s", sandbox_id);
    return 0;
}

static int fake_remove_hook(void *data, const char *sandbox_id, cri_error_t *err)
{
    return cri_error_set(err, EBUSY, "container of `%s` is busy", sandbox_id);
}

static void test_container_hooks(void **state)
{
    sandbox_store_t *s = sandbox_store_new(NULL);
    cleanup_sandbox sandbox_t *sb = make("podid", "n");
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(sandbox_stop_containers(s, sb, &err), 0);
    assert_int_equal(sandbox_remove_containers(s, sb, &err), 0);
    static const sandbox_container_hooks_t hooks = {.stop = fake_stop_hook,
                                                    .remove = fake_remove_hook};
    int step = 3;
    sandbox_store_set_container_hooks(s, &hooks, &step);
    hook_calls = 0;
    assert_int_equal(sandbox_stop_containers(s, sb, &err), 0);
    assert_int_equal(hook_calls, 3);
    assert_string_equal(hook_pod, "podid");
    cri_error_t rerr = CRI_ERROR_INIT;
    assert_int_equal(sandbox_remove_containers(s, sb, &rerr), -1);
    assert_int_equal(rerr.status, EBUSY);
    sandbox_store_free(s);
}

static void test_sysctls(void **state)
{
    static const struct {
        const char *name;
        int net, ipc;
        bool ok;
    } cases[] = {
        {"kernel.shm_rmid_forced", SANDBOX_NS_POD, SANDBOX_NS_POD, true},
        {"kernel.shmmax", SANDBOX_NS_POD, SANDBOX_NS_POD, true},
        {"kernel.msgmax", SANDBOX_NS_POD, SANDBOX_NS_POD, true},
        {"kernel.sem", SANDBOX_NS_POD, SANDBOX_NS_POD, true},
        {"fs.mqueue.msg_max", SANDBOX_NS_NODE, SANDBOX_NS_POD, true},
        {"net.ipv4.ip_forward", SANDBOX_NS_POD, SANDBOX_NS_NODE, true},
        {"net.ipv4.conf.all/rp_filter", SANDBOX_NS_POD, SANDBOX_NS_POD, true},
        {"kernel.shmmax", SANDBOX_NS_POD, SANDBOX_NS_NODE, false},
        {"net.core.somaxconn", SANDBOX_NS_NODE, SANDBOX_NS_POD, false},
        {"kernel.hostname", SANDBOX_NS_POD, SANDBOX_NS_POD, false},
        {"kernel.semx", SANDBOX_NS_POD, SANDBOX_NS_POD, false},
        {"vm.swappiness", SANDBOX_NS_POD, SANDBOX_NS_POD, false},
        {"", SANDBOX_NS_POD, SANDBOX_NS_POD, false},
        {"net.ipv4.x;rm -rf", SANDBOX_NS_POD, SANDBOX_NS_POD, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cri_error_t err = CRI_ERROR_INIT;
        int r = sandbox_validate_sysctl(cases[i].name, cases[i].net, cases[i].ipc, &err);
        if (cases[i].ok) {
            assert_int_equal(r, 0);
            assert_int_equal(err.status, 0);
        } else {
            assert_int_equal(r, -1);
            assert_int_equal(err.status, EINVAL);
            assert_non_null(strstr(err.msg, "config.linux.sysctls"));
        }
    }
}

static void expect_invalid(const Runtime__V1__PodSandboxConfig *cfg, const char *field)
{
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(sandbox_validate_config(cfg, &err), -1);
    assert_int_equal(err.status, EINVAL);
    if (!strstr(err.msg, field))
        fail_msg("`%s` does not name `%s`", err.msg, field);
}

static void test_validate_config(void **state)
{
    expect_invalid(NULL, "config is required");
    Runtime__V1__PodSandboxConfig cfg = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
    expect_invalid(&cfg, "config.metadata");
    Runtime__V1__PodSandboxMetadata meta = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
    cfg.metadata = &meta;
    meta.name = "web";
    meta.namespace_ = "default";
    expect_invalid(&cfg, "config.metadata.uid");
    meta.uid = "u/1";
    expect_invalid(&cfg, "config.metadata.uid");
    meta.uid = "u1";
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(sandbox_validate_config(&cfg, &err), 0);

    Runtime__V1__PortMapping pm = RUNTIME__V1__PORT_MAPPING__INIT;
    Runtime__V1__PortMapping *pms[] = {&pm};
    cfg.port_mappings = pms;
    cfg.n_port_mappings = 1;
    pm.container_port = 80;
    pm.protocol = (Runtime__V1__Protocol)5;
    expect_invalid(&cfg, "port_mappings[0].protocol");
    pm.protocol = RUNTIME__V1__PROTOCOL__UDP;
    pm.host_port = 70000;
    expect_invalid(&cfg, "port_mappings[0].host_port");
    pm.host_port = 8080;
    assert_int_equal(sandbox_validate_config(&cfg, &err), 0);

    Runtime__V1__NamespaceOption ns = RUNTIME__V1__NAMESPACE_OPTION__INIT;
    Runtime__V1__LinuxSandboxSecurityContext sc = RUNTIME__V1__LINUX_SANDBOX_SECURITY_CONTEXT__INIT;
    Runtime__V1__LinuxPodSandboxConfig lx = RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
    sc.namespace_options = &ns;
    lx.security_context = &sc;
    cfg.linux = &lx;
    ns.network = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
    expect_invalid(&cfg, "namespace_options.network");
    ns.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
    ns.pid = (Runtime__V1__NamespaceMode)-1;
    expect_invalid(&cfg, "namespace_options.pid");
    ns.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
    ns.ipc = RUNTIME__V1__NAMESPACE_MODE__TARGET;
    expect_invalid(&cfg, "namespace_options.ipc");
    ns.ipc = RUNTIME__V1__NAMESPACE_MODE__POD;
    assert_int_equal(sandbox_validate_config(&cfg, &err), 0);
    Runtime__V1__UserNamespace userns = RUNTIME__V1__USER_NAMESPACE__INIT;
    ns.userns_options = &userns;
    userns.mode = RUNTIME__V1__NAMESPACE_MODE__POD;
    expect_invalid(&cfg, "userns_options");
    userns.mode = RUNTIME__V1__NAMESPACE_MODE__NODE;
    assert_int_equal(sandbox_validate_config(&cfg, &err), 0);

    Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry sy =
        RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__SYSCTLS_ENTRY__INIT;
    Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry *sys[] = {&sy};
    lx.sysctls = sys;
    lx.n_sysctls = 1;
    sy.key = "net.ipv4.ip_forward"; /* host network: refused */
    sy.value = "1";
    expect_invalid(&cfg, "net.ipv4.ip_forward");
    sy.key = "kernel.msgmax";
    assert_int_equal(sandbox_validate_config(&cfg, &err), 0);
    Runtime__V1__SecurityProfile prof = RUNTIME__V1__SECURITY_PROFILE__INIT;
    sc.seccomp = &prof;
    prof.profile_type = (Runtime__V1__SecurityProfile__ProfileType)3;
    expect_invalid(&cfg, "seccomp.profile_type");
    prof.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
    prof.localhost_ref = "profiles/x.json";
    expect_invalid(&cfg, "seccomp.localhost_ref");
    prof.localhost_ref = "/etc/x.json";
    assert_int_equal(sandbox_validate_config(&cfg, &err), 0);
    sc.seccomp = NULL;
    sc.seccomp_profile_path = "docker/evil";
    expect_invalid(&cfg, "seccomp_profile_path");
    sc.seccomp_profile_path = "runtime/default";
    Runtime__V1__Int64Value uid = RUNTIME__V1__INT64_VALUE__INIT;
    uid.value = -1;
    sc.run_as_user = &uid;
    expect_invalid(&cfg, "run_as_user");
    uid.value = 1000;
    assert_int_equal(sandbox_validate_config(&cfg, &err), 0);

    lx.cgroup_parent = "kubepods";
    expect_invalid(&cfg, "config.linux.cgroup_parent");
    lx.cgroup_parent = "kubepods-besteffort.slice";
    assert_int_equal(sandbox_validate_config(&cfg, &err), 0);
}

static void test_resolv_conf(void **state)
{
    Runtime__V1__DNSConfig dns = RUNTIME__V1__DNSCONFIG__INIT;
    assert_null(sandbox_resolv_conf(NULL));
    assert_null(sandbox_resolv_conf(&dns));
    char *servers[] = {"10.10.10.10", "1.1.1.1"};
    char *searches[] = {"google.com", "svc.cluster.local"};
    char *options[] = {"ndots:8"};
    dns.servers = servers;
    dns.n_servers = 2;
    cleanup_free char *only = sandbox_resolv_conf(&dns);
    assert_string_equal(only, "nameserver 10.10.10.10\nnameserver 1.1.1.1\n");
    dns.searches = searches;
    dns.n_searches = 2;
    dns.options = options;
    dns.n_options = 1;
    cleanup_free char *all = sandbox_resolv_conf(&dns);
    assert_string_equal(all, "search google.com svc.cluster.local\nnameserver 10.10.10.10\n"
                             "nameserver 1.1.1.1\noptions ndots:8\n");
}

static void test_new_id(void **state)
{
    cleanup_free char *a = sandbox_new_id();
    cleanup_free char *b = sandbox_new_id();
    assert_int_equal(strlen(a), 64);
    assert_int_equal(strspn(a, "0123456789abcdef"), 64);
    assert_string_not_equal(a, b);
}

/* ---- stop, remove and recovery against a fake runtime ---- */

/* The fake runtime knows at most 4 containers: id -> status. */
typedef struct fake_rt {
    char ids[4][80];
    oci_status_t status[4];
    int kills, deletes;
    int fail_deletes;     /* the next n deletes fail with EBUSY */
    const char *exit_dir; /* kill writes <exit_dir>/<id> as the monitor would */
} fake_rt_t;

static int fake_find(fake_rt_t *f, const char *id)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(f->ids[i], id) == 0)
            return i;
    return -1;
}

static int fake_state(oci_runtime_t *rt, const char *id, oci_state_t *ret, cri_error_t *err)
{
    fake_rt_t *f = rt->userdata;
    int i = fake_find(f, id);
    if (i < 0)
        return cri_error_set(err, ENOENT, "fake state `%s`: container does not exist", id);
    memset(ret, 0, sizeof(*ret));
    ret->status = f->status[i];
    ret->pid = f->status[i] == OCI_STATUS_RUNNING ? 4321 : 0;
    return 0;
}

static int fake_kill(oci_runtime_t *rt, const char *id, int signo, bool all, cri_error_t *err)
{
    fake_rt_t *f = rt->userdata;
    int i = fake_find(f, id);
    f->kills++;
    if (i < 0)
        return cri_error_set(err, ENOENT, "fake kill `%s`: container does not exist", id);
    f->status[i] = OCI_STATUS_STOPPED;
    cleanup_free char *path = xasprintf("%s/%s", f->exit_dir, id);
    static const char exit_json[] = "{\"pid\":4321,\"exit_code\":137}\n";
    return write_file_atomic(path, exit_json, sizeof(exit_json) - 1, 0600, err);
}

static int fake_delete(oci_runtime_t *rt, const char *id, bool force, cri_error_t *err)
{
    fake_rt_t *f = rt->userdata;
    int i = fake_find(f, id);
    f->deletes++;
    if (f->fail_deletes > 0 && f->fail_deletes--)
        return cri_error_set(err, EBUSY, "fake delete `%s`: failed as told", id);
    if (i < 0)
        return cri_error_set(err, ENOENT, "fake delete `%s`: container does not exist", id);
    f->ids[i][0] = '\0';
    return 0;
}

static const struct oci_runtime_ops fake_ops = {
    .state = fake_state,
    .kill = fake_kill,
    .delete = fake_delete,
};

typedef struct fixture {
    char dir[64];
    daemon_t d;
    fake_rt_t rt;
    char *root, *runroot;
} fixture_t;

static int fixture_setup(void **state)
{
    fixture_t *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test-sandbox-ops-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    cri_error_t err = CRI_ERROR_INIT;
    daemon_t *d = &fx->d;
    d->conf = conf_new_defaults(NULL);
    fx->root = xasprintf("%s/root", fx->dir);
    fx->runroot = xasprintf("%s/run", fx->dir);
    d->root = fx->root;
    d->runroot = fx->runroot;
    d->exit_dir = xasprintf("%s/exits", fx->dir);
    assert_int_equal(mkdir_p(d->exit_dir, 0700, &err), 0);
    fx->rt.exit_dir = d->exit_dir;
    cleanup_free char *meta = xasprintf("%s/meta", fx->root);
    assert_int_equal(store_open(meta, &d->store, &err), 0);
    d->sandboxes = sandbox_store_new(d->store);
    d->runtimes = xcalloc(1, sizeof(*d->runtimes));
    d->runtimes[0].name = "runc";
    d->runtimes[0].oci = oci_runtime_new_with_ops(&fake_ops, "fake", fx->dir, &fx->rt);
    d->n_runtimes = 1;
    d->cni_ops = &cni_plugin_ops;
    d->conmon_ops = &conmon_monitor_ops;
    d->host_ops = &host_real_ops; /* nothing is mounted: unmounts find nothing */
    *state = fx;
    return 0;
}

static int fixture_teardown(void **state)
{
    fixture_t *fx = *state;
    daemon_t *d = &fx->d;
    sandbox_store_free(d->sandboxes);
    store_close(d->store);
    oci_runtime_free(d->runtimes[0].oci);
    free(d->runtimes);
    free(d->exit_dir);
    conf_free(d->conf);
    cri_error_t err = CRI_ERROR_INIT;
    rm_rf(fx->dir, &err);
    free(fx->root);
    free(fx->runroot);
    free(fx);
    return 0;
}

/* A pod record as RunPodSandbox leaves it: host network, so no CNI. */
static sandbox_t *stored_pod(fixture_t *fx, const char *id, bool creating, oci_status_t st)
{
    sandbox_t *sb = make(id, id);
    str_set(&sb->netns_path, "");
    str_set(&sb->cni_network, "");
    sb->ns_network = SANDBOX_NS_NODE;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(sandbox_store_persist(fx->d.sandboxes, sb, true, &err), 0);
    if (!creating)
        assert_int_equal(sandbox_store_persist(fx->d.sandboxes, sb, false, &err), 0);
    if (st != OCI_STATUS_UNKNOWN) {
        int i = fake_find(&fx->rt, "");
        assert_true(i >= 0);
        snprintf(fx->rt.ids[i], sizeof(fx->rt.ids[i]), "%s", id);
        fx->rt.status[i] = st;
    }
    return sb;
}

static void test_recover(void **state)
{
    fixture_t *fx = *state;
    cleanup_sandbox sandbox_t *alive = stored_pod(fx, "alive", false, OCI_STATUS_RUNNING);
    cleanup_sandbox sandbox_t *dead = stored_pod(fx, "dead", false, OCI_STATUS_STOPPED);
    cleanup_sandbox sandbox_t *half = stored_pod(fx, "half", true, OCI_STATUS_RUNNING);
    cleanup_sandbox sandbox_t *gone = stored_pod(fx, "gone", false, OCI_STATUS_UNKNOWN);
    size_t loaded = 0;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(sandbox_recover(&fx->d, &loaded, &err), 0);
    assert_int_equal(loaded, 3);

    sandbox_t *sb = NULL;
    pid_t pid = 0;
    assert_int_equal(sandbox_store_get(fx->d.sandboxes, "alive", &sb, &err), 0);
    assert_int_equal(sandbox_get_state(sb, &pid), SANDBOX_STATE_READY);
    assert_int_equal(pid, 4321);
    sandbox_unref(sb);
    assert_int_equal(sandbox_store_get(fx->d.sandboxes, "dead", &sb, &err), 0);
    assert_int_equal(sandbox_get_state(sb, &pid), SANDBOX_STATE_NOTREADY);
    assert_int_equal(pid, 0);
    sandbox_unref(sb);
    assert_int_equal(sandbox_store_get(fx->d.sandboxes, "gone", &sb, &err), 0);
    assert_int_equal(sandbox_get_state(sb, NULL), SANDBOX_STATE_NOTREADY);
    sandbox_unref(sb);

    /* the unfinished pod: infra killed and deleted, record and name gone */
    cri_error_t nf = CRI_ERROR_INIT;
    assert_int_equal(sandbox_store_get(fx->d.sandboxes, "half", &sb, &nf), -1);
    assert_int_equal(nf.status, ENOENT);
    assert_int_equal(fake_find(&fx->rt, "half"), -1);
    void *val = NULL;
    cri_error_t gerr = CRI_ERROR_INIT;
    assert_int_equal(store_get1(fx->d.store, STORE_PODS, "half", &val, NULL, &gerr), -1);
    assert_int_equal(gerr.status, ENOENT);
    /* NOTREADY was persisted: a second recovery agrees */
    assert_int_equal(store_get1(fx->d.store, STORE_PODS, "dead", &val, NULL, &err), 0);
    assert_non_null(strstr(val, "\"state\":1"));
    free(val);

    /* the exit watcher's hook: only full ids of known pods */
    assert_false(sandbox_on_infra_exit(&fx->d, "ali"));
    assert_false(sandbox_on_infra_exit(&fx->d, "nope"));
    assert_true(sandbox_on_infra_exit(&fx->d, "alive"));
    assert_int_equal(sandbox_store_get(fx->d.sandboxes, "alive", &sb, &err), 0);
    assert_int_equal(sandbox_get_state(sb, NULL), SANDBOX_STATE_NOTREADY);
    sandbox_unref(sb);
}

/* Pods without an infra: READY after a restart while their bundle dir
 * (runroot) is there and every pin they record is a live nsfs mount;
 * NOTREADY when a pin is no longer one or runroot went; never asks the
 * runtime; the exit watcher's hook leaves them READY. */
static void test_recover_no_infra(void **state)
{
    fixture_t *fx = *state;
    const char *ids[] = {"lean", "lost", "rebooted"};
    for (size_t i = 0; i < 3; i++) {
        cleanup_sandbox sandbox_t *sb = make(ids[i], ids[i]);
        sb->infra = false;
        str_set(&sb->netns_path, "");
        str_set(&sb->cni_network, "");
        sb->ns_network = SANDBOX_NS_NODE;
        if (i == 1) { /* a pin that is a plain file now (unmounted by hand) */
            cleanup_free char *pin = xasprintf("%s/ipcns-lost", fx->runroot);
            cri_error_t werr = CRI_ERROR_INIT;
            assert_int_equal(write_file_atomic(pin, "", 0, 0444, &werr), 0);
            str_set(&sb->ipcns_path, pin);
        }
        cri_error_t err = CRI_ERROR_INIT;
        assert_int_equal(sandbox_store_persist(fx->d.sandboxes, sb, true, &err), 0);
        assert_int_equal(sandbox_store_persist(fx->d.sandboxes, sb, false, &err), 0);
        if (i < 2) {
            cleanup_free char *bundle = xasprintf("%s/sandboxes/%s", fx->runroot, ids[i]);
            assert_int_equal(mkdir_p(bundle, 0700, &err), 0);
        }
    }
    size_t loaded = 0;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(sandbox_recover(&fx->d, &loaded, &err), 0);
    assert_int_equal(loaded, 3);
    const sandbox_state_t want[] = {SANDBOX_STATE_READY, SANDBOX_STATE_NOTREADY,
                                    SANDBOX_STATE_NOTREADY};
    for (size_t i = 0; i < 3; i++) {
        cleanup_sandbox sandbox_t *sb = NULL;
        assert_int_equal(sandbox_store_get(fx->d.sandboxes, ids[i], &sb, &err), 0);
        pid_t pid = -1;
        assert_int_equal(sandbox_get_state(sb, &pid), want[i]);
        assert_int_equal(pid, 0);
        assert_false(sb->infra);
    }
    assert_true(sandbox_on_infra_exit(&fx->d, "lean"));
    cleanup_sandbox sandbox_t *lean = NULL;
    assert_int_equal(sandbox_store_get(fx->d.sandboxes, "lean", &lean, &err), 0);
    assert_int_equal(sandbox_get_state(lean, NULL), SANDBOX_STATE_READY);
}

/* An unfinished pod whose teardown fails at startup stays, NOTREADY and
 * no longer marked creating, so Stop/Remove (or the next start) retry it;
 * before, it left memory and nothing retried until the next restart. */
static void test_recover_unfinished_teardown_fails(void **state)
{
    fixture_t *fx = *state;
    cleanup_sandbox sandbox_t *half = stored_pod(fx, "half", true, OCI_STATUS_RUNNING);
    fx->rt.fail_deletes = 1;
    size_t loaded = 0;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(sandbox_recover(&fx->d, &loaded, &err), 0);
    assert_int_equal(loaded, 1);
    sandbox_t *sb = NULL;
    assert_int_equal(sandbox_store_get(fx->d.sandboxes, "half", &sb, &err), 0);
    assert_int_equal(sandbox_get_state(sb, NULL), SANDBOX_STATE_NOTREADY);
    void *val = NULL;
    assert_int_equal(store_get1(fx->d.store, STORE_PODS, "half", &val, NULL, &err), 0);
    assert_non_null(strstr(val, "\"creating\":false"));
    free(val);
    pthread_mutex_lock(&sb->op_lock);
    assert_int_equal(sandbox_stop_locked(&fx->d, sb, &err), 0);
    assert_int_equal(sandbox_remove_locked(&fx->d, sb, &err), 0);
    pthread_mutex_unlock(&sb->op_lock);
    sandbox_unref(sb);
    assert_int_equal(fake_find(&fx->rt, "half"), -1);
    cri_error_t gerr = CRI_ERROR_INIT;
    assert_int_equal(store_get1(fx->d.store, STORE_PODS, "half", &val, NULL, &gerr), -1);
    assert_int_equal(gerr.status, ENOENT);
}

static void test_stop_remove_idempotent(void **state)
{
    fixture_t *fx = *state;
    cleanup_sandbox sandbox_t *sb = stored_pod(fx, "pod1", false, OCI_STATUS_RUNNING);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(sandbox_store_add(fx->d.sandboxes, sb, &err), 0);
    assert_int_equal(sandbox_stop_locked(&fx->d, sb, &err), 0);
    assert_int_equal(fx->rt.kills, 1);
    assert_int_equal(fx->rt.deletes, 1);
    assert_int_equal(sandbox_get_state(sb, NULL), SANDBOX_STATE_NOTREADY);
    /* again: the runtime no longer knows it, which is fine */
    assert_int_equal(sandbox_stop_locked(&fx->d, sb, &err), 0);
    assert_int_equal(fx->rt.kills, 1);
    cleanup_free char *exit_file = xasprintf("%s/pod1", fx->d.exit_dir);
    assert_int_equal(access(exit_file, F_OK), 0);
    assert_int_equal(sandbox_remove_locked(&fx->d, sb, &err), 0);
    assert_true(sb->removed);
    assert_int_equal(access(exit_file, F_OK), -1); /* Remove takes the exit file */
    cri_error_t nf = CRI_ERROR_INIT;
    sandbox_t *got = NULL;
    assert_int_equal(sandbox_store_get(fx->d.sandboxes, "pod1", &got, &nf), -1);
    assert_int_equal(nf.status, ENOENT);
    /* the name is free again */
    cleanup_sandbox sandbox_t *again = make("pod2", "pod1");
    assert_int_equal(sandbox_store_persist(fx->d.sandboxes, again, true, &err), 0);
    /* after Remove, Stop and Remove are no-ops */
    assert_int_equal(sandbox_stop_locked(&fx->d, sb, &err), 0);
    assert_int_equal(sandbox_remove_locked(&fx->d, sb, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_round_trip),
        cmocka_unit_test(test_record_privileged_and_old_records),
        cmocka_unit_test(test_record_pod_resources),
        cmocka_unit_test(test_record_userns),
        cmocka_unit_test(test_record_infra_and_pins),
        cmocka_unit_test(test_record_parse_errors),
        cmocka_unit_test(test_store_lookup),
        cmocka_unit_test(test_store_persist_and_reserve),
        cmocka_unit_test(test_store_load_old_and_corrupt),
        cmocka_unit_test(test_container_hooks),
        cmocka_unit_test(test_sysctls),
        cmocka_unit_test(test_validate_config),
        cmocka_unit_test(test_resolv_conf),
        cmocka_unit_test(test_new_id),
        cmocka_unit_test_setup_teardown(test_recover, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_recover_no_infra, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_recover_unfinished_teardown_fails, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_stop_remove_idempotent, fixture_setup,
                                        fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
