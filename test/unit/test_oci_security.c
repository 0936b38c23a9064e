/* oci/ security defaults: capability names and add/drop (table driven),
 * the RuntimeDefault seccomp profile for this architecture, Localhost
 * profiles. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <seccomp.h>
#include <sys/capability.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "oci/oci.h"

#define BIT(c) (UINT64_C(1) << (c))
#define ALL_CAPS ((UINT64_C(1) << 41) - 1)

static oci_host_t test_host(void)
{
    oci_host_t h = {.cap_bounding = ALL_CAPS, .cap_last = 40, .oom_score_adj_min = -1000};
    return h;
}

static void test_cap_parse(void **state)
{
    static const struct {
        const char *name;
        int want; /* -1 = EINVAL */
    } cases[] = {
        {"NET_ADMIN", CAP_NET_ADMIN},
        {"net_admin", CAP_NET_ADMIN},
        {"CAP_NET_ADMIN", CAP_NET_ADMIN},
        {"cap_sys_admin", CAP_SYS_ADMIN},
        {"Chown", CAP_CHOWN},
        {"CHECKPOINT_RESTORE", 40},
        {"NET_ADMINS", -1},
        {"CAP_", -1},
        {"", -1},
        {"12", -1},
        {"NET ADMIN", -1},
        {"ALL", -1},
        {"CAP_CAP_CHOWN", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cri_error_t err = CRI_ERROR_INIT;
        int cap = -7;
        int r = oci_cap_parse(cases[i].name, &cap, &err);
        if (cases[i].want >= 0) {
            if (r < 0)
                fail_msg("`%s`: %s", cases[i].name, err.msg);
            assert_int_equal(cap, cases[i].want);
        } else {
            assert_int_equal(r, -1);
            assert_int_equal(err.status, EINVAL);
            assert_int_equal(cap, -7); /* untouched on failure */
        }
    }
}

static void test_default_caps(void **state)
{
    uint64_t d = oci_caps_default();
    assert_int_equal(__builtin_popcountll(d), 14);
    assert_false(d & BIT(CAP_NET_ADMIN));
    assert_false(d & BIT(CAP_SYS_ADMIN));
    assert_false(d & BIT(CAP_SYS_PTRACE));
    assert_true(d & BIT(CAP_NET_RAW));
    assert_true(d & BIT(CAP_CHOWN));
    assert_true(d & BIT(CAP_AUDIT_WRITE));
}

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_caps_add_drop(void **state)
{
    const uint64_t def = oci_caps_default();
    const struct {
        const char *const *add;
        const char *const *drop;
        bool privileged;
        uint64_t host;
        uint64_t want;
    } cases[] = {
        {NULL, NULL, false, ALL_CAPS, def},
        {L("NET_ADMIN"), NULL, false, ALL_CAPS, def | BIT(CAP_NET_ADMIN)},
        {NULL, L("CHOWN", "cap_kill"), false, ALL_CAPS, def & ~BIT(CAP_CHOWN) & ~BIT(CAP_KILL)},
        {L("ALL"), NULL, false, ALL_CAPS, ALL_CAPS},
        {NULL, L("ALL"), false, ALL_CAPS, 0},
        {L("ALL"), L("CHOWN"), false, ALL_CAPS, ALL_CAPS & ~BIT(CAP_CHOWN)},
        {L("NET_RAW"), L("ALL"), false, ALL_CAPS, BIT(CAP_NET_RAW)},
        {L("all"), L("all"), false, ALL_CAPS, 0},
        {L("SYS_ADMIN"), L("SYS_ADMIN"), false, ALL_CAPS, def}, /* drop wins */
        /* privileged: everything the host has, drops ignored */
        {NULL, L("ALL"), true, ALL_CAPS & ~BIT(CAP_SYS_RESOURCE),
         ALL_CAPS & ~BIT(CAP_SYS_RESOURCE)},
        /* the host cannot grant what it lacks */
        {L("SYS_RESOURCE", "NET_ADMIN"), NULL, false, ALL_CAPS & ~BIT(CAP_SYS_RESOURCE),
         def | BIT(CAP_NET_ADMIN)},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        oci_desc_t d;
        oci_desc_init(&d, false);
        d.cap_add = cases[i].add;
        d.cap_drop = cases[i].drop;
        d.privileged = cases[i].privileged;
        oci_host_t h = test_host();
        h.cap_bounding = cases[i].host;
        cri_error_t err = CRI_ERROR_INIT;
        uint64_t caps = 0;
        if (oci_caps_compute(&d, &h, &caps, &err) < 0)
            fail_msg("case %zu: %s", i, err.msg);
        if (caps != cases[i].want)
            fail_msg("case %zu: got %#llx want %#llx", i, (unsigned long long)caps,
                     (unsigned long long)cases[i].want);
    }
}

static void test_caps_bad_names(void **state)
{
    const struct {
        const char *const *add;
        const char *const *drop;
        bool privileged;
        const char *msg;
    } cases[] = {
        {L("NET_ADMIN", "BOGUS"), NULL, false, "unknown capability `BOGUS`"},
        {NULL, L("ALL", "CAP_NOPE"), false, "unknown capability `CAP_NOPE`"},
        {L("ALL", "FOO"), NULL, false, "unknown capability `FOO`"},
        {L("42"), NULL, true, "unknown capability `42`"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        oci_desc_t d;
        oci_desc_init(&d, false);
        d.id = "x";
        d.root_path = "rootfs";
        d.process.args = L("/bin/true");
        d.cap_add = cases[i].add;
        d.cap_drop = cases[i].drop;
        d.privileged = cases[i].privileged;
        oci_host_t h = test_host();
        cri_error_t err = CRI_ERROR_INIT;
        json_t *spec = NULL;
        assert_int_equal(oci_spec_build(&d, &h, &spec, &err), -1);
        assert_int_equal(err.status, EINVAL);
        assert_string_equal(err.msg, cases[i].msg);
        assert_null(spec);
    }
}

static void test_caps_json_names(void **state)
{
    oci_desc_t d;
    oci_desc_init(&d, false);
    d.id = "x";
    d.root_path = "rootfs";
    d.process.args = L("/bin/true");
    d.cap_drop = L("ALL");
    d.cap_add = L("net_bind_service", "CAP_SYS_NICE");
    d.seccomp = OCI_SECCOMP_UNCONFINED;
    oci_host_t h = test_host();
    cri_error_t err = CRI_ERROR_INIT;
    json_t *spec = NULL;
    assert_int_equal(oci_spec_build(&d, &h, &spec, &err), 0);
    json_t *caps = json_object_get(json_object_get(spec, "process"), "capabilities");
    json_t *want = json_pack("[s,s]", "CAP_NET_BIND_SERVICE", "CAP_SYS_NICE");
    assert_true(json_equal(json_object_get(caps, "bounding"), want));
    assert_true(json_equal(json_object_get(caps, "effective"), want));
    assert_true(json_equal(json_object_get(caps, "permitted"), want));
    assert_null(json_object_get(caps, "inheritable"));
    assert_null(json_object_get(caps, "ambient"));
    json_decref(want);
    json_decref(spec);
}

/* --- seccomp --- */

/* How `name` is treated: 'A' allowed without condition, 'C' by a rule with
 * argument conditions, 'E' an errno rule, 0 absent (default EPERM). */
static char profile_rule(json_t *profile, const char *name)
{
    size_t i;
    json_t *rule;
    json_array_foreach(json_object_get(profile, "syscalls"), i, rule)
    {
        size_t k;
        json_t *n;
        json_array_foreach(json_object_get(rule, "names"), k, n)
        {
            if (strcmp(json_string_value(n), name) != 0)
                continue;
            if (strcmp(json_string_value(json_object_get(rule, "action")), "SCMP_ACT_ERRNO") == 0)
                return 'E';
            return json_object_get(rule, "args") ? 'C' : 'A';
        }
    }
    return 0;
}

static void test_seccomp_default_profile(void **state)
{
    json_t *p = oci_seccomp_default_profile(oci_caps_default());
    assert_string_equal(json_string_value(json_object_get(p, "defaultAction")), "SCMP_ACT_ERRNO");
    assert_int_equal(json_integer_value(json_object_get(p, "defaultErrnoRet")), EPERM);

    static const char *const allowed[] = {"read",
                                          "write",
                                          "openat",
                                          "execve",
                                          "exit_group",
                                          "futex",
                                          "mmap",
                                          "rt_sigreturn",
                                          "epoll_wait",
                                          "getrandom",
                                          "chroot" /* CAP_SYS_CHROOT is default */,
                                          NULL};
    static const char *const blocked[] = {"mount",
                                          "umount2",
                                          "unshare",
                                          "setns",
                                          "keyctl",
                                          "add_key",
                                          "request_key",
                                          "kexec_load",
                                          "init_module",
                                          "finit_module",
                                          "reboot",
                                          "swapon",
                                          "pivot_root",
                                          "bpf",
                                          "perf_event_open",
                                          "open_by_handle_at",
                                          "userfaultfd",
                                          "clock_settime",
                                          "iopl",
                                          "acct",
                                          "sethostname",
                                          "kcmp",
                                          NULL};
    for (const char *const *n = allowed; *n; n++)
        if (profile_rule(p, *n) != 'A')
            fail_msg("`%s` should be allowed", *n);
    for (const char *const *n = blocked; *n; n++)
        if (profile_rule(p, *n) != 0)
            fail_msg("`%s` should be blocked", *n);
    assert_int_equal(profile_rule(p, "socket"), 'C');
    assert_int_equal(profile_rule(p, "personality"), 'C');
    assert_int_equal(profile_rule(p, "clone"), 'C');
    assert_int_equal(profile_rule(p, "clone3"), 'E');

    uint32_t native = seccomp_arch_native();
    json_t *arches = json_object_get(p, "architectures");
    if (native == SCMP_ARCH_X86_64) {
        assert_int_equal(profile_rule(p, "arch_prctl"), 'A');
        assert_int_equal(profile_rule(p, "modify_ldt"), 'A');
        assert_string_equal(json_string_value(json_array_get(arches, 0)), "SCMP_ARCH_X86_64");
        assert_int_equal(json_array_size(arches), 3);
    } else if (native == SCMP_ARCH_AARCH64) {
        assert_int_equal(profile_rule(p, "arch_prctl"), 0);
        assert_string_equal(json_string_value(json_array_get(arches, 0)), "SCMP_ARCH_AARCH64");
    }

    /* every name is one this host's libseccomp resolves */
    size_t i, k;
    json_t *rule, *n;
    json_array_foreach(json_object_get(p, "syscalls"), i,
                       rule) json_array_foreach(json_object_get(rule, "names"), k, n)
        assert_int_not_equal(seccomp_syscall_resolve_name(json_string_value(n)), __NR_SCMP_ERROR);

    /* the socket rule keeps AF_VSOCK (40) out */
    json_array_foreach(json_object_get(p, "syscalls"), i, rule)
    {
        if (strcmp(json_string_value(json_array_get(json_object_get(rule, "names"), 0)),
                   "socket") != 0)
            continue;
        json_t *arg = json_array_get(json_object_get(rule, "args"), 0);
        assert_int_equal(json_integer_value(json_object_get(arg, "value")), 40);
        assert_string_equal(json_string_value(json_object_get(arg, "op")), "SCMP_CMP_NE");
    }
    json_decref(p);
}

static void test_seccomp_follows_caps(void **state)
{
    json_t *p = oci_seccomp_default_profile(oci_caps_default() | BIT(CAP_SYS_ADMIN) |
                                            BIT(CAP_SYS_PTRACE) | BIT(CAP_SYS_TIME));
    static const char *const allowed[] = {"mount",         "unshare",     "setns",
                                          "clone",         "clone3",      "kcmp",
                                          "clock_settime", "sethostname", NULL};
    for (const char *const *n = allowed; *n; n++)
        if (profile_rule(p, *n) != 'A')
            fail_msg("`%s` should be allowed with its capability", *n);
    assert_int_equal(profile_rule(p, "keyctl"), 0);
    json_decref(p);

    p = oci_seccomp_default_profile(oci_caps_default() & ~BIT(CAP_SYS_CHROOT));
    assert_int_equal(profile_rule(p, "chroot"), 0);
    json_decref(p);
}

static char *write_tmp(const char *content)
{
    char *path = xstrdup("/tmp/oci-seccomp-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

static void test_seccomp_localhost(void **state)
{
    static const char good[] =
        "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"keyctl\"],"
        "\"action\":\"SCMP_ACT_ERRNO\"}]}";
    cleanup_free char *ok = write_tmp(good);
    cleanup_free char *broken = write_tmp("{\"defaultAction\": ");
    cleanup_free char *noaction = write_tmp("{\"syscalls\": []}");
    cri_error_t err = CRI_ERROR_INIT;
    json_t *p = NULL;

    assert_int_equal(oci_seccomp_load_profile(ok, 0, &p, &err), 0);
    json_t *want = json_loads(good, 0, NULL);
    assert_true(json_equal(p, want)); /* passed through as is */
    json_decref(want);
    json_decref(p);
    p = NULL;

    assert_int_equal(oci_seccomp_load_profile(broken, 0, &p, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_non_null(strstr(err.msg, broken));
    assert_int_equal(oci_seccomp_load_profile(noaction, 0, &p, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_int_equal(oci_seccomp_load_profile("/nonexistent/profile.json", 0, &p, &err), -1);
    assert_int_equal(err.status, ENOENT);
    assert_int_equal(oci_seccomp_load_profile("relative.json", 0, &p, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_null(p);

    /* through the spec: Localhost embeds it, Unconfined and privileged have none */
    oci_desc_t d;
    oci_desc_init(&d, false);
    d.id = "x";
    d.root_path = "rootfs";
    d.process.args = L("/bin/true");
    d.seccomp = OCI_SECCOMP_LOCALHOST;
    d.seccomp_profile_path = ok;
    oci_host_t h = test_host();
    json_t *spec = NULL;
    assert_int_equal(oci_spec_build(&d, &h, &spec, &err), 0);
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(spec, "linux"), "seccomp"), "defaultAction")),
        "SCMP_ACT_ALLOW");
    json_decref(spec);
    d.seccomp_profile_path = "/nonexistent/profile.json";
    assert_int_equal(oci_spec_build(&d, &h, &spec, &err), -1);
    assert_int_equal(err.status, ENOENT);
    d.seccomp = OCI_SECCOMP_UNCONFINED;
    assert_int_equal(oci_spec_build(&d, &h, &spec, &err), 0);
    assert_null(json_object_get(json_object_get(spec, "linux"), "seccomp"));
    json_decref(spec);
    d.seccomp = OCI_SECCOMP_RUNTIME_DEFAULT;
    d.privileged = true;
    h.dev_root = "/dev";
    assert_int_equal(oci_spec_build(&d, &h, &spec, &err), 0);
    assert_null(json_object_get(json_object_get(spec, "linux"), "seccomp"));
    json_decref(spec);

    unlink(ok);
    unlink(broken);
    unlink(noaction);
}

/* A Docker-format profile: archMap and conditional rules are resolved for
 * this container and machine, and the Docker-only keys disappear. */
static void test_seccomp_localhost_docker_format(void **state)
{
    static const char docker[] =
        "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":1,"
        "\"archMap\":[{\"architecture\":\"SCMP_ARCH_X86_64\","
        "\"subArchitectures\":[\"SCMP_ARCH_X86\"]},"
        "{\"architecture\":\"SCMP_ARCH_AARCH64\",\"subArchitectures\":[\"SCMP_ARCH_ARM\"]}],"
        "\"syscalls\":["
        "{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\"},"
        "{\"names\":[\"mount\"],\"action\":\"SCMP_ACT_ALLOW\","
        "\"includes\":{\"caps\":[\"CAP_SYS_ADMIN\"]}},"
        "{\"names\":[\"clone\"],\"action\":\"SCMP_ACT_ALLOW\",\"comment\":\"c\","
        "\"excludes\":{\"caps\":[\"CAP_SYS_ADMIN\"]}},"
        "{\"names\":[\"arch_prctl\"],\"action\":\"SCMP_ACT_ALLOW\","
        "\"includes\":{\"arches\":[\"amd64\"]}},"
        "{\"names\":[\"ptrace\"],\"action\":\"SCMP_ACT_ALLOW\","
        "\"includes\":{\"minKernel\":\"4.8\"}},"
        "{\"names\":[\"future\"],\"action\":\"SCMP_ACT_ALLOW\","
        "\"includes\":{\"minKernel\":\"999.0\"}}]}";
    cleanup_free char *path = write_tmp(docker);
    cri_error_t err = CRI_ERROR_INIT;
    json_t *p = NULL;

    assert_int_equal(oci_seccomp_load_profile(path, oci_caps_default(), &p, &err), 0);
    assert_null(json_object_get(p, "archMap"));
    assert_int_equal(profile_rule(p, "read"), 'A');
    assert_int_equal(profile_rule(p, "mount"), 0);
    assert_int_equal(profile_rule(p, "clone"), 'A');
    assert_int_equal(profile_rule(p, "ptrace"), 'A');
    assert_int_equal(profile_rule(p, "future"), 0);
    size_t i;
    json_t *rule;
    json_array_foreach(json_object_get(p, "syscalls"), i, rule)
    {
        assert_null(json_object_get(rule, "includes"));
        assert_null(json_object_get(rule, "excludes"));
        assert_null(json_object_get(rule, "comment"));
    }
    json_t *arches = json_object_get(p, "architectures");
    if (seccomp_arch_native() == SCMP_ARCH_X86_64) {
        json_t *want = json_pack("[s,s]", "SCMP_ARCH_X86_64", "SCMP_ARCH_X86");
        assert_true(json_equal(arches, want));
        json_decref(want);
        assert_int_equal(profile_rule(p, "arch_prctl"), 'A');
    } else {
        assert_int_equal(profile_rule(p, "arch_prctl"), 0);
    }
    json_decref(p);

    assert_int_equal(
        oci_seccomp_load_profile(path, oci_caps_default() | BIT(CAP_SYS_ADMIN), &p, &err), 0);
    assert_int_equal(profile_rule(p, "mount"), 'A');
    assert_int_equal(profile_rule(p, "clone"), 0);
    json_decref(p);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap_parse),
        cmocka_unit_test(test_default_caps),
        cmocka_unit_test(test_caps_add_drop),
        cmocka_unit_test(test_caps_bad_names),
        cmocka_unit_test(test_caps_json_names),
        cmocka_unit_test(test_seccomp_default_profile),
        cmocka_unit_test(test_seccomp_follows_caps),
        cmocka_unit_test(test_seccomp_localhost),
        cmocka_unit_test(test_seccomp_localhost_docker_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
