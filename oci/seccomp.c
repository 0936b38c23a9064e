/* Seccomp: the RuntimeDefault profile built from seccomp_table.c for this
 * machine, and Localhost profiles loaded from files. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <seccomp.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "oci/oci-internal.h"

#define SECCOMP_PROFILE_MAX (4 * 1024 * 1024)

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

int oci_seccomp_load_profile(const char *path, json_t **ret_profile, cri_error_t *err)
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
    *ret_profile = p;
    return 0;
}
