/* The OCI spec of a container: image config + ContainerConfig + the pod.
 * Everything is turned into an oci_desc_t (which borrows its strings from
 * the `parts` kept alive here) and written by oci/. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/process.h"
#include "server/image/image.h"
#include "server/sandbox/sandbox.h"
#include "server/seccomp.h"

/* Owned pieces the description points into. */
struct parts {
    char **argv, **env;
    container_user_t user;
    uint32_t *gids;
    oci_mount_t *mounts;
    char **mount_strs; /* sources and destinations we allocated */
    size_t n_strs;
    oci_device_t *devices;
    oci_kv_t *annotations;
    oci_hugepage_t *hugepages;
    oci_kv_t *unified;
    char *ns_paths[3]; /* ipc, uts, pid */
    char *shm;
    char *files_dir;
    char **cap_add, **cap_drop, **masked, **ro_paths;
    container_cdi_t cdi; /* what CDI_devices add */
};

static void parts_free(struct parts *p)
{
    strv_free(p->argv);
    strv_free(p->env);
    container_user_free(&p->user);
    free(p->gids);
    free(p->mounts);
    for (size_t i = 0; i < p->n_strs; i++)
        free(p->mount_strs[i]);
    free(p->mount_strs);
    free(p->devices);
    free(p->annotations);
    free(p->hugepages);
    free(p->unified);
    for (int i = 0; i < 3; i++)
        free(p->ns_paths[i]);
    free(p->shm);
    free(p->files_dir);
    strv_free(p->cap_add);
    strv_free(p->cap_drop);
    strv_free(p->masked);
    strv_free(p->ro_paths);
    container_cdi_free(&p->cdi);
}

static char **strv_of(char **v, size_t n);

static const char *keep(struct parts *p, char *s)
{
    p->mount_strs = xrealloc(p->mount_strs, (p->n_strs + 1) * sizeof(char *));
    p->mount_strs[p->n_strs++] = s;
    return s;
}

int container_validate_mounts(const Runtime__V1__ContainerConfig *cfg, cri_error_t *err)
{
    if (cfg->n_mounts > CONTAINER_MAX_MOUNTS)
        return cri_error_set(err, EINVAL, "mounts: more than %d", CONTAINER_MAX_MOUNTS);
    for (size_t i = 0; i < cfg->n_mounts; i++) {
        const Runtime__V1__Mount *m = cfg->mounts[i];
        if (m->container_path[0] != '/')
            return cri_error_set(err, EINVAL, "mounts[%zu].container_path `%s` is not absolute", i,
                                 m->container_path);
        if (m->image && m->image->image[0]) {
            if (container_validate_image_volume(m, i, err) < 0)
                return -1;
            continue;
        }
        if (m->image_sub_path[0])
            return cri_error_set(err, EINVAL, "mounts[%zu].image_sub_path: set without an image",
                                 i);
        if (m->host_path[0] != '/')
            return cri_error_set(err, EINVAL, "mounts[%zu].host_path `%s` is not absolute", i,
                                 m->host_path);
        if ((int)m->propagation < 0 || (int)m->propagation > 2)
            return cri_error_set(err, EINVAL, "mounts[%zu].propagation: invalid value %d", i,
                                 (int)m->propagation);
        /* a recursive read-only mount must be read-only, and private: a
         * mount propagated in later would not be read-only */
        if (m->recursive_read_only && !m->readonly)
            return cri_error_set(err, EINVAL, "mounts[%zu].recursive_read_only needs readonly", i);
        if (m->recursive_read_only &&
            m->propagation != RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE)
            return cri_error_set(err, EINVAL,
                                 "mounts[%zu].recursive_read_only needs propagation "
                                 "PROPAGATION_PRIVATE",
                                 i);
    }
    return 0;
}

/* The host path of a CRI mount: symlinks resolved; created as a directory
 * when missing (as kubelet expects from containerd and CRI-O). */
static int mount_source(const char *host_path, char **ret, cri_error_t *err)
{
    struct stat st;
    if (stat(host_path, &st) < 0) {
        if (errno != ENOENT)
            return cri_error_make(err, errno, "stat mount source `%s`", host_path);
        if (mkdir_p(host_path, 0755, err) < 0)
            return cri_error_wrap(err, "create mount source");
    }
    char buf[PATH_MAX];
    if (!realpath(host_path, buf))
        return cri_error_make(err, errno, "resolve mount source `%s`", host_path);
    *ret = xstrdup(buf);
    return 0;
}

static bool has_destination(const Runtime__V1__ContainerConfig *cfg, const char *dest)
{
    for (size_t i = 0; i < cfg->n_mounts; i++)
        if (strcmp(cfg->mounts[i]->container_path, dest) == 0)
            return true;
    return false;
}

static int spec_mounts(daemon_t *d, container_t *c, sandbox_t *sb,
                       const Runtime__V1__ContainerConfig *cfg, struct parts *p, oci_desc_t *desc,
                       cri_error_t *err)
{
    static const char *const pod_files[][2] = {{"hostname", "/etc/hostname"},
                                               {"resolv.conf", "/etc/resolv.conf"},
                                               {"hosts", "/etc/hosts"}};
    bool ro_root =
        cfg->linux && cfg->linux->security_context && cfg->linux->security_context->readonly_rootfs;
    p->mounts = xcalloc(cfg->n_mounts + p->cdi.n_mounts + 4, sizeof(*p->mounts));
    c->mounts = xcalloc(cfg->n_mounts + 1, sizeof(*c->mounts));
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_mounts; i++) {
        const Runtime__V1__Mount *m = cfg->mounts[i];
        char *src = NULL;
        if (m->image && m->image->image[0]) {
            if (container_image_volume_mount(d, c, m, i, &src, err) < 0)
                return -1;
            /* the overlay is nosuid, nodev: the bind says so too, or the
             * runtime's read-only remount in a user namespace would try to
             * clear those locked flags (EPERM) */
            static const char *const ivol_opts[] = {"nosuid", "nodev", NULL};
            p->mounts[n++] = (oci_mount_t){.destination = m->container_path,
                                           .source = keep(p, src),
                                           .options = ivol_opts,
                                           .readonly = true};
            continue;
        }
        if (mount_source(m->host_path, &src, err) < 0)
            return cri_error_wrap(err, "mounts[%zu]", i);
        c->mounts[c->n_mounts++] = (container_mount_t){.container_path = xstrdup(m->container_path),
                                                       .host_path = xstrdup(src),
                                                       .readonly = m->readonly,
                                                       .selinux_relabel = m->selinux_relabel,
                                                       .propagation = (int)m->propagation};
        p->mounts[n++] = (oci_mount_t){.destination = m->container_path,
                                       .source = keep(p, src),
                                       .readonly = m->readonly,
                                       .recursive_readonly = m->recursive_read_only,
                                       .propagation = (oci_propagation_t)m->propagation};
    }
    for (size_t i = 0; i < p->cdi.n_mounts; i++)
        p->mounts[n++] = p->cdi.mounts[i];
    p->files_dir = sandbox_files_dir(d, sb->id);
    for (size_t i = 0; i < 3; i++) {
        char *src = xasprintf("%s/%s", p->files_dir, pod_files[i][0]);
        keep(p, src);
        struct stat st;
        if (has_destination(cfg, pod_files[i][1]) || stat(src, &st) < 0)
            continue;
        p->mounts[n++] =
            (oci_mount_t){.destination = pod_files[i][1], .source = src, .readonly = ro_root};
    }
    desc->mounts = p->mounts;
    desc->n_mounts = n;
    if (!has_destination(cfg, "/dev/shm")) {
        p->shm = sb->ns_ipc == SANDBOX_NS_NODE ? xstrdup("/dev/shm") : sandbox_shm_dir(d, sb->id);
        desc->shm_path = p->shm;
    }
    return 0;
}

static void spec_namespaces(container_t *c, sandbox_t *sb, const Runtime__V1__ContainerConfig *cfg,
                            struct parts *p, oci_desc_t *desc)
{
    pid_t infra = 0;
    sandbox_get_state(sb, &infra);
    const Runtime__V1__NamespaceOption *ns = cfg->linux && cfg->linux->security_context
                                                 ? cfg->linux->security_context->namespace_options
                                                 : NULL;
    desc->ns_network.mode = sb->ns_network == SANDBOX_NS_NODE ? OCI_NS_HOST : OCI_NS_JOIN;
    desc->ns_network.path = sb->netns_path;
    /* a pod without an infra has its ipc and uts namespaces pinned (and
     * shares no PID namespace); else the infra holds them */
    p->ns_paths[0] = sb->infra ? xasprintf("/proc/%d/ns/ipc", (int)infra) : xstrdup(sb->ipcns_path);
    p->ns_paths[1] = sb->infra ? xasprintf("/proc/%d/ns/uts", (int)infra) : xstrdup(sb->utsns_path);
    p->ns_paths[2] = xasprintf("/proc/%d/ns/pid", (int)infra);
    desc->ns_ipc.mode = sb->ns_ipc == SANDBOX_NS_NODE ? OCI_NS_HOST : OCI_NS_JOIN;
    desc->ns_ipc.path = p->ns_paths[0];
    desc->ns_uts.mode = sb->ns_network == SANDBOX_NS_NODE ? OCI_NS_HOST : OCI_NS_JOIN;
    desc->ns_uts.path = p->ns_paths[1];
    int pid_mode = ns ? (int)ns->pid : SANDBOX_NS_CONTAINER;
    if (sb->ns_pid == SANDBOX_NS_NODE || pid_mode == SANDBOX_NS_NODE) {
        desc->ns_pid.mode = OCI_NS_HOST;
    } else if (sb->infra && (pid_mode == SANDBOX_NS_POD || sb->ns_pid == SANDBOX_NS_POD)) {
        /* the pod shares one PID namespace: the infra's */
        bool shared = pid_mode == SANDBOX_NS_POD;
        desc->ns_pid.mode = shared ? OCI_NS_JOIN : OCI_NS_NEW;
        desc->ns_pid.path = p->ns_paths[2];
    } else {
        desc->ns_pid.mode = OCI_NS_NEW;
    }
    desc->hostname = sb->hostname;
    desc->cgroup_parent = sb->cgroup_parent;
    /* the pod as stored decides (kubelet repeats the pod's userns_options) */
    sandbox_oci_userns(sb, desc);
}

void container_resources_from_cri(const Runtime__V1__LinuxContainerResources *r,
                                  container_resources_t *ret)
{
    ret->cpu_period = r->cpu_period;
    ret->cpu_quota = r->cpu_quota;
    ret->cpu_shares = r->cpu_shares;
    ret->memory_limit = r->memory_limit_in_bytes;
    ret->memory_swap = r->memory_swap_limit_in_bytes;
    ret->oom_score_adj = r->oom_score_adj;
    free(ret->cpuset_cpus);
    free(ret->cpuset_mems);
    ret->cpuset_cpus = xstrdup(r->cpuset_cpus);
    ret->cpuset_mems = xstrdup(r->cpuset_mems);
}

static void spec_resources(container_t *c, const Runtime__V1__LinuxContainerResources *r,
                           struct parts *p, oci_desc_t *desc)
{
    if (!r)
        return;
    oci_resources_t *o = &desc->resources;
    o->cpu_shares = (uint64_t)r->cpu_shares;
    o->cpu_quota = r->cpu_quota;
    o->cpu_period = (uint64_t)r->cpu_period;
    o->cpuset_cpus = r->cpuset_cpus;
    o->cpuset_mems = r->cpuset_mems;
    o->memory_limit = r->memory_limit_in_bytes;
    o->memory_swap = r->memory_swap_limit_in_bytes;
    p->hugepages = xcalloc(r->n_hugepage_limits + 1, sizeof(*p->hugepages));
    for (size_t i = 0; i < r->n_hugepage_limits; i++)
        p->hugepages[i] =
            (oci_hugepage_t){r->hugepage_limits[i]->page_size, r->hugepage_limits[i]->limit};
    o->hugepages = p->hugepages;
    o->n_hugepages = r->n_hugepage_limits;
    p->unified = xcalloc(r->n_unified + 1, sizeof(*p->unified));
    for (size_t i = 0; i < r->n_unified; i++)
        p->unified[i] = (oci_kv_t){r->unified[i]->key, r->unified[i]->value};
    o->unified = p->unified;
    o->n_unified = r->n_unified;
    if (r->oom_score_adj) {
        desc->process.has_oom_score_adj = true;
        desc->process.oom_score_adj = (int)r->oom_score_adj;
    }
    container_resources_from_cri(r, &c->resources);
}

static int spec_security(const Runtime__V1__LinuxContainerSecurityContext *sc, struct parts *p,
                         oci_desc_t *desc, cri_error_t *err)
{
    if (!sc)
        return 0;
    desc->privileged = sc->privileged;
    desc->process.no_new_privileges = sc->no_new_privs;
    desc->root_readonly = sc->readonly_rootfs;
    if (container_apparmor(sc, container_apparmor_enabled(), &desc->process.apparmor_profile, err) <
        0)
        return -1;
    if (sc->capabilities) {
        const Runtime__V1__Capability *caps = sc->capabilities;
        p->cap_add = strv_of(caps->add_capabilities, caps->n_add_capabilities);
        p->cap_drop = strv_of(caps->drop_capabilities, caps->n_drop_capabilities);
        desc->cap_add = (const char *const *)p->cap_add;
        desc->cap_drop = (const char *const *)p->cap_drop;
    }
    if (sc->n_masked_paths) {
        p->masked = strv_of(sc->masked_paths, sc->n_masked_paths);
        desc->masked_paths = (const char *const *)p->masked;
    }
    if (sc->n_readonly_paths) {
        p->ro_paths = strv_of(sc->readonly_paths, sc->n_readonly_paths);
        desc->readonly_paths = (const char *const *)p->ro_paths;
    }
    return seccomp_from_cri(sc->seccomp, sc->seccomp_profile_path, sc->privileged,
                            OCI_SECCOMP_UNCONFINED, "security_context", &desc->seccomp,
                            &desc->seccomp_profile_path, err);
}

/* NULL-terminated copies of a protobuf string array (protobuf-c arrays are
 * not NULL-terminated). */
static char **strv_of(char **v, size_t n)
{
    char **out = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        out[i] = xstrdup(v[i]);
    return out;
}

static int spec_user(container_t *c, const Runtime__V1__ContainerConfig *cfg, image_t *img,
                     const char *rootfs, struct parts *p, oci_desc_t *desc, cri_error_t *err)
{
    const Runtime__V1__LinuxContainerSecurityContext *sc =
        cfg->linux ? cfg->linux->security_context : NULL;
    container_user_req_t req = {
        .run_as_user = -1, .run_as_group = -1, .image_user = img->config.user};
    if (sc) {
        req.run_as_user = sc->run_as_user ? sc->run_as_user->value : -1;
        req.run_as_username = sc->run_as_username;
        req.run_as_group = sc->run_as_group ? sc->run_as_group->value : -1;
        req.supplemental = sc->supplemental_groups;
        req.n_supplemental = sc->n_supplemental_groups;
        req.strict_groups =
            sc->supplemental_groups_policy == RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
    }
    if (container_user_resolve(rootfs, &req, &p->user, err) < 0)
        return cri_error_wrap(err, "resolve user");
    p->gids = xcalloc(p->user.n_additional + 1, sizeof(*p->gids));
    c->gids = xcalloc(p->user.n_additional + 1, sizeof(*c->gids));
    for (size_t i = 0; i < p->user.n_additional; i++) {
        p->gids[i] = p->user.additional[i];
        c->gids[i] = p->user.additional[i];
    }
    c->n_gids = p->user.n_additional;
    c->uid = p->user.uid;
    c->gid = p->user.gid;
    desc->process.uid = p->user.uid;
    desc->process.gid = p->user.gid;
    desc->process.additional_gids = p->gids;
    desc->process.n_additional_gids = p->user.n_additional;
    return 0;
}

static int spec_process(container_t *c, sandbox_t *sb, const Runtime__V1__ContainerConfig *cfg,
                        image_t *img, struct parts *p, oci_desc_t *desc, cri_error_t *err)
{
    cleanup_strv char **command = strv_of(cfg->command, cfg->n_command);
    cleanup_strv char **args = strv_of(cfg->args, cfg->n_args);
    if (process_argv(command, cfg->n_command, args, cfg->n_args,
                     img->config.entrypoint_set ? img->config.entrypoint : NULL,
                     img->config.cmd_set ? img->config.cmd : NULL, &p->argv, err) < 0)
        return cri_error_wrap(err, "command");
    /* KeyValue.value is bytes: give it its NUL */
    container_env_kv_t *kv = xcalloc(cfg->n_envs + p->cdi.n_env + 1, sizeof(*kv));
    cleanup_strv char **values = xcalloc(cfg->n_envs + 1, sizeof(char *));
    for (size_t i = 0; i < cfg->n_envs; i++) {
        const ProtobufCBinaryData *v = &cfg->envs[i]->value;
        values[i] = xstrndup(v->data ? (const char *)v->data : "", v->len);
        kv[i] = (container_env_kv_t){cfg->envs[i]->key, values[i]};
    }
    for (size_t i = 0; i < p->cdi.n_env; i++)
        kv[cfg->n_envs + i] = p->cdi.env[i];
    int rc =
        container_env(img->config.env, kv, cfg->n_envs + p->cdi.n_env, sb->hostname, &p->env, err);
    free(kv);
    if (rc < 0)
        return cri_error_wrap(err, "envs");
    desc->process.args = (const char *const *)p->argv;
    desc->process.env = (const char *const *)p->env;
    desc->process.cwd = cfg->working_dir[0]          ? cfg->working_dir
                        : img->config.working_dir[0] ? img->config.working_dir
                                                     : "/";
    if (desc->process.cwd[0] != '/')
        return cri_error_set(err, EINVAL, "working_dir `%s` is not absolute", desc->process.cwd);
    desc->process.terminal = cfg->tty;
    return 0;
}

static int spec_stop_signal(container_t *c, const Runtime__V1__ContainerConfig *cfg, image_t *img,
                            cri_error_t *err)
{
    if (cfg->stop_signal) {
        int s = container_signal_from_cri((int)cfg->stop_signal);
        if (s <= 0)
            return cri_error_set(err, EINVAL, "stop_signal: unsupported value %d",
                                 (int)cfg->stop_signal);
        c->stop_signal = s;
        return 0;
    }
    c->stop_signal = SIGTERM;
    if (img->config.stop_signal[0] &&
        container_signal_parse(img->config.stop_signal, &c->stop_signal, err) < 0)
        return cri_error_wrap(err, "image StopSignal");
    return 0;
}

static int spec_devices(const Runtime__V1__ContainerConfig *cfg, struct parts *p, oci_desc_t *desc)
{
    p->devices = xcalloc(cfg->n_devices + p->cdi.n_devices + 1, sizeof(*p->devices));
    for (size_t i = 0; i < cfg->n_devices; i++)
        p->devices[i] = (oci_device_t){cfg->devices[i]->container_path, cfg->devices[i]->host_path,
                                       cfg->devices[i]->permissions};
    for (size_t i = 0; i < p->cdi.n_devices; i++)
        p->devices[cfg->n_devices + i] = p->cdi.devices[i];
    desc->devices = p->devices;
    desc->n_devices = cfg->n_devices + p->cdi.n_devices;
    return 0;
}

static void spec_annotations(container_t *c, sandbox_t *sb, const Runtime__V1__ContainerConfig *cfg,
                             struct parts *p, oci_desc_t *desc)
{
    size_t n = 0;
    p->annotations = xcalloc(cfg->n_annotations + 8, sizeof(*p->annotations));
    p->annotations[n++] = (oci_kv_t){"io.kubernetes.cri.container-type", "container"};
    p->annotations[n++] = (oci_kv_t){"io.kubernetes.cri.container-name", c->meta_name};
    p->annotations[n++] = (oci_kv_t){"io.kubernetes.cri.sandbox-id", sb->id};
    p->annotations[n++] = (oci_kv_t){"io.kubernetes.cri.sandbox-name", sb->meta_name};
    p->annotations[n++] = (oci_kv_t){"io.kubernetes.cri.sandbox-namespace", sb->meta_namespace};
    p->annotations[n++] = (oci_kv_t){"io.kubernetes.cri.image-name", c->image_name};
    for (size_t i = 0; i < cfg->n_annotations; i++)
        p->annotations[n++] = (oci_kv_t){cfg->annotations[i]->key, cfg->annotations[i]->value};
    desc->annotations = p->annotations;
    desc->n_annotations = n;
}

static int spec_fill(daemon_t *d, container_t *c, sandbox_t *sb,
                     const Runtime__V1__ContainerConfig *cfg, image_t *img, const char *rootfs,
                     struct parts *p, oci_desc_t *desc, cri_error_t *err)
{
    const Runtime__V1__LinuxContainerSecurityContext *sc =
        cfg->linux ? cfg->linux->security_context : NULL;
    desc->id = c->id;
    desc->root_path = rootfs;
    desc->cgroup_systemd = daemon_cgroup_systemd(d);
    if (cfg->n_cdi_devices > 0 && container_cdi_resolve(daemon_cdi_spec_dirs(d), cfg->cdi_devices,
                                                        cfg->n_cdi_devices, &p->cdi, err) < 0)
        return -1;
    if (spec_process(c, sb, cfg, img, p, desc, err) < 0 ||
        spec_user(c, cfg, img, rootfs, p, desc, err) < 0)
        return -1;
    if (spec_stop_signal(c, cfg, img, err) < 0 || spec_mounts(d, c, sb, cfg, p, desc, err) < 0)
        return -1;
    spec_namespaces(c, sb, cfg, p, desc);
    spec_resources(c, cfg->linux ? cfg->linux->resources : NULL, p, desc);
    spec_devices(cfg, p, desc);
    spec_annotations(c, sb, cfg, p, desc);
    return spec_security(sc, p, desc, err);
}

int container_spec_write(daemon_t *d, container_t *c, sandbox_t *sb,
                         const Runtime__V1__CreateContainerRequest *r, image_t *img,
                         const char *rootfs, const char *bundle, cri_error_t *err)
{
    struct parts p;
    memset(&p, 0, sizeof(p));
    oci_desc_t desc;
    oci_desc_init(&desc, daemon_host(d)->cgroup2);
    json_t *spec = NULL;
    int rc = spec_fill(d, c, sb, r->config, img, rootfs, &p, &desc, err);
    if (rc == 0 && oci_spec_build(&desc, daemon_host(d), &spec, err) < 0)
        rc = cri_error_wrap(err, "container spec");
    parts_free(&p);
    if (rc < 0)
        return -1;
    char *text = json_dumps(spec, JSON_COMPACT);
    json_decref(spec);
    if (!text)
        abort(); /* OOM only */
    free(c->spec_json);
    c->spec_json = text;
    if (mkdir_p(bundle, 0700, err) < 0)
        return -1;
    cleanup_free char *path = xasprintf("%s/config.json", bundle);
    return write_file_volatile(path, text, strlen(text), 0600, err); /* runroot */
}
