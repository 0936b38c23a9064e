/* The OCI runtime spec: top level, process, root; writing config.json. */
#include <errno.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "oci/oci-internal.h"

#define OCI_SPEC_VERSION "1.0.2"

void oci_json_push(json_t *array, json_t *value)
{
    json_array_append_new(array, value);
}

void oci_json_set(json_t *object, const char *key, json_t *value)
{
    json_object_set_new(object, key, value);
}

json_t *oci_json_strv(const char *const *v)
{
    json_t *a = json_array();
    for (; v && *v; v++)
        oci_json_push(a, json_string(*v));
    return a;
}

void oci_desc_init(oci_desc_t *desc, bool host_cgroup2)
{
    memset(desc, 0, sizeof(*desc));
    desc->ns_pid.mode = OCI_NS_NEW;
    desc->ns_network.mode = OCI_NS_NEW;
    desc->ns_ipc.mode = OCI_NS_NEW;
    desc->ns_uts.mode = OCI_NS_NEW;
    /* kubelet expects a private cgroup namespace only with cgroup v2 (as
     * containerd and CRI-O do); on v1 the container sees the host's paths */
    desc->ns_cgroup.mode = host_cgroup2 ? OCI_NS_NEW : OCI_NS_HOST;
    desc->ns_user.mode = OCI_NS_HOST;
    desc->seccomp = OCI_SECCOMP_RUNTIME_DEFAULT;
}

static int process_check(const oci_process_t *proc, cri_error_t *err)
{
    if (!proc->args || !proc->args[0] || !proc->args[0][0])
        return cri_error_set(err, EINVAL, "process args are empty");
    if (proc->cwd && proc->cwd[0] != '/')
        return cri_error_set(err, EINVAL, "working directory `%s` is not absolute", proc->cwd);
    for (const char *const *e = proc->env; e && *e; e++)
        if (!strchr(*e, '=') || (*e)[0] == '=')
            return cri_error_set(err, EINVAL, "environment entry `%s` is not KEY=VALUE", *e);
    for (size_t i = 0; i < proc->n_rlimits; i++) {
        const oci_rlimit_t *r = &proc->rlimits[i];
        if (!r->type || !str_has_prefix(r->type, "RLIMIT_"))
            return cri_error_set(err, EINVAL, "rlimit type `%s` is not RLIMIT_*",
                                 r->type ? r->type : "");
        if (r->soft > r->hard)
            return cri_error_set(err, EINVAL, "rlimit `%s`: soft limit above hard limit", r->type);
    }
    return 0;
}

static json_t *process_user(const oci_process_t *proc)
{
    json_t *u = json_object();
    oci_json_set(u, "uid", json_integer(proc->uid));
    oci_json_set(u, "gid", json_integer(proc->gid));
    if (proc->n_additional_gids > 0) {
        json_t *g = json_array();
        for (size_t i = 0; i < proc->n_additional_gids; i++)
            oci_json_push(g, json_integer(proc->additional_gids[i]));
        oci_json_set(u, "additionalGids", g);
    }
    return u;
}

int oci_process_to_json(const oci_process_t *proc, const oci_host_t *host, json_t **ret,
                        cri_error_t *err)
{
    if (process_check(proc, err) < 0)
        return -1;
    json_t *p = json_object();
    oci_json_set(p, "terminal", json_boolean(proc->terminal));
    oci_json_set(p, "user", process_user(proc));
    oci_json_set(p, "args", oci_json_strv(proc->args));
    oci_json_set(p, "env", oci_json_strv(proc->env));
    oci_json_set(p, "cwd", json_string(proc->cwd ? proc->cwd : "/"));
    if (proc->n_rlimits > 0) {
        json_t *rl = json_array();
        for (size_t i = 0; i < proc->n_rlimits; i++) {
            json_t *r = json_object();
            oci_json_set(r, "type", json_string(proc->rlimits[i].type));
            oci_json_set(r, "hard", json_integer((json_int_t)proc->rlimits[i].hard));
            oci_json_set(r, "soft", json_integer((json_int_t)proc->rlimits[i].soft));
            oci_json_push(rl, r);
        }
        oci_json_set(p, "rlimits", rl);
    }
    oci_json_set(p, "noNewPrivileges", json_boolean(proc->no_new_privileges));
    if (proc->has_oom_score_adj) {
        /* Lowering oom_score_adj needs CAP_SYS_RESOURCE; without it the
         * runtime fails the whole container. oci_host_detect() logged that
         * the host clamps. */
        int v = proc->oom_score_adj;
        if (v < host->oom_score_adj_min)
            v = host->oom_score_adj_min;
        if (v > 1000)
            v = 1000;
        oci_json_set(p, "oomScoreAdj", json_integer(v));
    }
    if (proc->apparmor_profile && proc->apparmor_profile[0])
        oci_json_set(p, "apparmorProfile", json_string(proc->apparmor_profile));
    if (proc->selinux_label && proc->selinux_label[0])
        oci_json_set(p, "selinuxLabel", json_string(proc->selinux_label));
    *ret = p;
    return 0;
}

static json_t *annotations_json(const oci_desc_t *desc)
{
    json_t *a = json_object();
    for (size_t i = 0; i < desc->n_annotations; i++)
        oci_json_set(a, desc->annotations[i].key, json_string(desc->annotations[i].value));
    return a;
}

static int desc_check(const oci_desc_t *desc, cri_error_t *err)
{
    if (!desc->id || !desc->id[0] || strchr(desc->id, '/'))
        return cri_error_set(err, EINVAL, "container id `%s` is empty or has a slash",
                             desc->id ? desc->id : "");
    if (!desc->root_path || !desc->root_path[0])
        return cri_error_set(err, EINVAL, "root path is empty");
    for (size_t i = 0; i < desc->n_annotations; i++)
        if (!desc->annotations[i].key || !desc->annotations[i].value)
            return cri_error_set(err, EINVAL, "annotation %zu has no key or value", i);
    return 0;
}

int oci_spec_build(const oci_desc_t *desc, const oci_host_t *host, json_t **ret_spec,
                   cri_error_t *err)
{
    if (desc_check(desc, err) < 0)
        return -1;
    uint64_t caps;
    if (oci_caps_compute(desc, host, &caps, err) < 0)
        return -1;

    cleanup_json json_t *process = NULL;
    if (oci_process_to_json(&desc->process, host, &process, err) < 0)
        return -1;
    oci_json_set(process, "capabilities", oci_caps_spec(caps));

    cleanup_json json_t *mounts = NULL;
    if (oci_mounts_build(desc, host, &mounts, err) < 0)
        return -1;
    cleanup_json json_t *linux_obj = NULL;
    if (oci_linux_build(desc, host, caps, &linux_obj, err) < 0)
        return -1;

    json_t *root = json_object();
    oci_json_set(root, "path", json_string(desc->root_path));
    oci_json_set(root, "readonly", json_boolean(desc->root_readonly));

    json_t *spec = json_object();
    oci_json_set(spec, "ociVersion", json_string(OCI_SPEC_VERSION));
    oci_json_set(spec, "process", TAKE_PTR(process));
    oci_json_set(spec, "root", root);
    /* with the host's UTS namespace the runtime refuses to set a hostname */
    if (desc->hostname && desc->hostname[0] && desc->ns_uts.mode != OCI_NS_HOST)
        oci_json_set(spec, "hostname", json_string(desc->hostname));
    oci_json_set(spec, "mounts", TAKE_PTR(mounts));
    oci_json_set(spec, "annotations", annotations_json(desc));
    oci_json_set(spec, "linux", TAKE_PTR(linux_obj));
    json_t *hooks = oci_rro_hooks(desc, host);
    if (hooks)
        oci_json_set(spec, "hooks", hooks);
    *ret_spec = spec;
    return 0;
}

int oci_spec_write(const oci_desc_t *desc, const oci_host_t *host, const char *bundle,
                   cri_error_t *err)
{
    cleanup_json json_t *spec = NULL;
    if (oci_spec_build(desc, host, &spec, err) < 0)
        return cri_error_wrap(err, "build spec of `%s`", desc->id ? desc->id : "");
    cleanup_free char *text = json_dumps(spec, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!text)
        return cri_error_set(err, ENOMEM, "serialize spec of `%s`", desc->id);
    cleanup_free char *path = xasprintf("%s/config.json", bundle);
    if (write_file_atomic(path, text, strlen(text), 0600, err) < 0)
        return cri_error_wrap(err, "write spec");
    return 0;
}
