/* Seccomp: the RuntimeDefault profile built from seccomp_table.c for this
 * machine, and Localhost profiles loaded from files. */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include <seccomp.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "oci/oci-internal.h"

#define SECCOMP_PROFILE_MAX ((size_t)4 * 1024 * 1024)

/* The native arch as a table bit, and the arch names runc should load the
 * filter for (a 64-bit kernel also runs the 32-bit ABIs listed). */
static uint32_t seccomp_native(json_t **ret_arches)
{
    json_t *a = json_array();
    uint32_t bit = 0;
    switch (seccomp_arch_native()) {
    case SCMP_ARCH_X86_64:
        bit = OCI_ARCH_X86_64;
        oci_json_push(a, json_string("SCMP_ARCH_X86_64"));
        oci_json_push(a, json_string("SCMP_ARCH_X86"));
        oci_json_push(a, json_string("SCMP_ARCH_X32"));
        break;
    case SCMP_ARCH_AARCH64:
        bit = OCI_ARCH_AARCH64;
        oci_json_push(a, json_string("SCMP_ARCH_AARCH64"));
        oci_json_push(a, json_string("SCMP_ARCH_ARM"));
        break;
    case SCMP_ARCH_PPC64LE:
        bit = OCI_ARCH_PPC64LE;
        oci_json_push(a, json_string("SCMP_ARCH_PPC64LE"));
        break;
    case SCMP_ARCH_S390X:
        bit = OCI_ARCH_S390X;
        oci_json_push(a, json_string("SCMP_ARCH_S390X"));
        oci_json_push(a, json_string("SCMP_ARCH_S390"));
        break;
    case SCMP_ARCH_RISCV64:
        bit = OCI_ARCH_RISCV64;
        oci_json_push(a, json_string("SCMP_ARCH_RISCV64"));
        break;
    case SCMP_ARCH_X86:
        bit = OCI_ARCH_X86;
        oci_json_push(a, json_string("SCMP_ARCH_X86"));
        break;
    case SCMP_ARCH_ARM:
        bit = OCI_ARCH_ARM;
        oci_json_push(a, json_string("SCMP_ARCH_ARM"));
        break;
    default:
        break; /* unknown: no "architectures", the runtime uses the native one */
    }
    *ret_arches = a;
    return bit;
}

static bool group_applies(const oci_sc_group_t *g, uint32_t arch, uint64_t caps)
{
    if (g->arches && !(g->arches & arch))
        return false;
    if (g->cap_if >= 0 && !(caps & (UINT64_C(1) << g->cap_if)))
        return false;
    if (g->cap_unless >= 0 && (caps & (UINT64_C(1) << g->cap_unless)))
        return false;
    return true;
}

/* Syscalls the host's libseccomp cannot resolve would make the profile
 * fail to load: leave them out. */
static bool syscall_known(const char *name)
{
    return seccomp_syscall_resolve_name(name) != __NR_SCMP_ERROR;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool name_in(const char *const *sorted, size_t n, const char *name)
{
    return bsearch(&name, sorted, n, sizeof(*sorted), cmp_str) != NULL;
}

static const char *cmp_name(oci_sc_cmp_t cmp)
{
    switch (cmp) {
    case OCI_SC_EQ:
        return "SCMP_CMP_EQ";
    case OCI_SC_NE:
        return "SCMP_CMP_NE";
    case OCI_SC_MASKED_EQ:
        return "SCMP_CMP_MASKED_EQ";
    case OCI_SC_NONE:
        break;
    }
    return "SCMP_CMP_EQ";
}

/* One OCI syscall rule for the group's names (minus those already allowed
 * unconditionally), optionally with one argument condition. NULL when no
 * name is left. */
static json_t *group_rule(const oci_sc_group_t *g, const char *const *allowed, size_t n_allowed,
                          const uint64_t *value)
{
    json_t *names = json_array();
    for (const char *const *p = g->names; *p; p++)
        if (syscall_known(*p) && !name_in(allowed, n_allowed, *p))
            oci_json_push(names, json_string(*p));
    if (json_array_size(names) == 0) {
        json_decref(names);
        return NULL;
    }
    json_t *rule = json_object();
    oci_json_set(rule, "names", names);
    if (g->errno_ret) {
        oci_json_set(rule, "action", json_string("SCMP_ACT_ERRNO"));
        oci_json_set(rule, "errnoRet", json_integer(g->errno_ret));
    } else {
        oci_json_set(rule, "action", json_string("SCMP_ACT_ALLOW"));
    }
    if (value) {
        json_t *arg = json_object();
        oci_json_set(arg, "index", json_integer(g->arg_index));
        /* json_int_t is signed 64-bit; 0xffffffff and the masks fit */
        oci_json_set(arg, "value", json_integer((json_int_t)*value));
        if (g->cmp == OCI_SC_MASKED_EQ)
            oci_json_set(arg, "valueTwo", json_integer((json_int_t)g->value_two));
        oci_json_set(arg, "op", json_string(cmp_name(g->cmp)));
        json_t *args = json_array();
        oci_json_push(args, arg);
        oci_json_set(rule, "args", args);
    }
    return rule;
}

/* Every name of the unconditional ALLOW groups that apply: sorted, unique,
 * known to libseccomp. Caller frees the array (not the strings). */
static const char **collect_allowed(uint32_t arch, uint64_t caps, size_t *ret_n)
{
    size_t n = 0, cap = 512;
    const char **v = xmalloc(cap * sizeof(*v));
    for (size_t i = 0; i < oci_sc_n_groups; i++) {
        const oci_sc_group_t *g = &oci_sc_groups[i];
        if (g->cmp != OCI_SC_NONE || g->errno_ret || !group_applies(g, arch, caps))
            continue;
        for (const char *const *p = g->names; *p; p++) {
            if (!syscall_known(*p))
                continue;
            if (n == cap) {
                cap *= 2;
                v = xrealloc(v, cap * sizeof(*v));
            }
            v[n++] = *p;
        }
    }
    qsort(v, n, sizeof(*v), cmp_str);
    size_t out = 0;
    for (size_t i = 0; i < n; i++)
        if (out == 0 || strcmp(v[out - 1], v[i]) != 0)
            v[out++] = v[i];
    *ret_n = out;
    return v;
}

json_t *oci_seccomp_default_profile(uint64_t caps)
{
    json_t *arches = NULL;
    uint32_t arch = seccomp_native(&arches);
    size_t n_allowed = 0;
    cleanup_free const char **allowed = collect_allowed(arch, caps, &n_allowed);

    json_t *rules = json_array();
    json_t *all = json_array();
    for (size_t i = 0; i < n_allowed; i++)
        oci_json_push(all, json_string(allowed[i]));
    json_t *first = json_object();
    oci_json_set(first, "names", all);
    oci_json_set(first, "action", json_string("SCMP_ACT_ALLOW"));
    oci_json_push(rules, first);

    for (size_t i = 0; i < oci_sc_n_groups; i++) {
        const oci_sc_group_t *g = &oci_sc_groups[i];
        if ((g->cmp == OCI_SC_NONE && !g->errno_ret) || !group_applies(g, arch, caps))
            continue;
        size_t n = g->cmp == OCI_SC_NONE ? 1 : g->n_values;
        for (size_t k = 0; k < n; k++) {
            json_t *r =
                group_rule(g, allowed, n_allowed, g->cmp == OCI_SC_NONE ? NULL : &g->values[k]);
            if (r)
                oci_json_push(rules, r);
        }
    }

    json_t *p = json_object();
    oci_json_set(p, "defaultAction", json_string("SCMP_ACT_ERRNO"));
    oci_json_set(p, "defaultErrnoRet", json_integer(EPERM));
    if (json_array_size(arches) > 0)
        oci_json_set(p, "architectures", arches);
    else
        json_decref(arches);
    oci_json_set(p, "syscalls", rules);
    return p;
}

/* The Go name of the native arch, as Docker-format profiles say it. */
static const char *native_go_arch(void)
{
    switch (seccomp_arch_native()) {
    case SCMP_ARCH_X86_64:
        return "amd64";
    case SCMP_ARCH_X86:
        return "386";
    case SCMP_ARCH_AARCH64:
        return "arm64";
    case SCMP_ARCH_ARM:
        return "arm";
    case SCMP_ARCH_PPC64LE:
        return "ppc64le";
    case SCMP_ARCH_S390X:
        return "s390x";
    case SCMP_ARCH_RISCV64:
        return "riscv64";
    }
    return "";
}

static bool str_in(json_t *array, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(array, i, v) if (json_is_string(v) &&
                                        strcmp(json_string_value(v), s) == 0) return true;
    return false;
}

/* want_all: caps holds every named capability; else: it holds at least one.
 * Names libcap does not know count as not held. */
static bool caps_match(json_t *names, uint64_t caps, bool want_all)
{
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v)
    {
        int c;
        cri_error_t ignored = CRI_ERROR_INIT;
        bool held = json_is_string(v) && oci_cap_parse(json_string_value(v), &c, &ignored) == 0 &&
                    (caps & (UINT64_C(1) << c));
        if (want_all && !held)
            return false;
        if (!want_all && held)
            return true;
    }
    return want_all;
}

static bool kernel_at_least(const char *want)
{
    struct utsname u;
    unsigned long wmaj = 0, wmin = 0, maj = 0, min = 0;
    if (!parse_major_minor(want, &wmaj, &wmin) || uname(&u) < 0 ||
        !parse_major_minor(u.release, &maj, &min))
        return true;
    return maj > wmaj || (maj == wmaj && min >= wmin);
}

/* Does a Docker-format rule apply to this container on this machine? */
static bool rule_applies(json_t *rule, uint64_t caps, const char *arch)
{
    json_t *inc = json_object_get(rule, "includes");
    json_t *exc = json_object_get(rule, "excludes");
    json_t *v;
    if ((v = json_object_get(inc, "caps")) && !caps_match(v, caps, true))
        return false;
    if ((v = json_object_get(inc, "arches")) && json_array_size(v) && !str_in(v, arch))
        return false;
    if ((v = json_object_get(inc, "minKernel")) && json_is_string(v) &&
        !kernel_at_least(json_string_value(v)))
        return false;
    if ((v = json_object_get(exc, "caps")) && caps_match(v, caps, false))
        return false;
    if ((v = json_object_get(exc, "arches")) && str_in(v, arch))
        return false;
    return true;
}

/* Docker-format profiles (archMap, includes/excludes on rules) become plain
 * OCI: runtimes ignore those keys, which would apply every conditional rule
 * (e.g. mount for CAP_SYS_ADMIN holders) to everyone. */
static void profile_normalize(json_t *p, uint64_t caps)
{
    json_t *arch_map = json_object_get(p, "archMap");
    if (arch_map && !json_object_get(p, "architectures")) {
        json_t *native = NULL;
        seccomp_native(&native);
        const char *first = json_string_value(json_array_get(native, 0));
        size_t i;
        json_t *m;
        json_array_foreach(arch_map, i, m)
        {
            const char *a = json_string_value(json_object_get(m, "architecture"));
            if (!first || !a || strcmp(a, first) != 0)
                continue;
            json_t *arches = json_array();
            oci_json_push(arches, json_string(a));
            json_t *subs = json_object_get(m, "subArchitectures");
            if (json_is_array(subs))
                json_array_extend(arches, subs);
            oci_json_set(p, "architectures", arches);
        }
        json_decref(native);
    }
    json_object_del(p, "archMap");

    json_t *rules = json_object_get(p, "syscalls");
    if (!json_is_array(rules))
        return;
    const char *arch = native_go_arch();
    json_t *kept = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r)
    {
        if (!json_is_object(r) || !rule_applies(r, caps, arch))
            continue;
        json_t *copy = json_copy(r);
        json_object_del(copy, "includes");
        json_object_del(copy, "excludes");
        json_object_del(copy, "comment");
        oci_json_push(kept, copy);
    }
    oci_json_set(p, "syscalls", kept);
}

int oci_seccomp_load_profile(const char *path, uint64_t caps, json_t **ret_profile,
                             cri_error_t *err)
{
    if (!path || path[0] != '/')
        return cri_error_set(err, EINVAL, "seccomp profile path `%s` is not absolute",
                             path ? path : "");
    cleanup_free char *data = NULL;
    size_t len = 0;
    if (read_file(path, SECCOMP_PROFILE_MAX, &data, &len, err) < 0)
        return cri_error_wrap(err, "load seccomp profile");

    json_error_t jerr;
    json_t *p = json_loadb(data, len, 0, &jerr);
    if (!p)
        return cri_error_set(err, EINVAL, "seccomp profile `%s`:%d:%d: %s", path, jerr.line,
                             jerr.column, jerr.text);
    if (!json_is_object(p) || !json_is_string(json_object_get(p, "defaultAction"))) {
        json_decref(p);
        return cri_error_set(
            err, EINVAL, "seccomp profile `%s`: not an object with a string defaultAction", path);
    }
    profile_normalize(p, caps);
    *ret_profile = p;
    return 0;
}
