/* RunPodSandbox: validate; reserve the pod's name (with a "creating" record,
 * in one LMDB transaction); pin the netns; then write the pod files and run
 * the CNI ADD on a second thread while this one mounts the pod's shm, writes
 * the infra spec and starts the infra container (they do not depend on each
 * other; runc is the longer path); persist READY; reply.
 *
 * A pod that does not share its PID namespace gets no infra process with
 * runtime.drop_infra (the default): its ipc and uts namespaces are pinned
 * with the netns, and RunPodSandbox is pins + shm + pod files + CNI ADD.
 *
 * A failure at any step rolls back every earlier one (CNI DEL, infra
 * delete, shm mount, netns pin, dirs, record and reservation) and returns
 * the cause. A crash half way leaves the "creating" record, which the
 * startup recovery tears down the same way. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "cni/cni.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "conf/conf.h"
#include "server/testhooks.h"
#include "server/daemon.h"
#include "server/events.h"
#include "server/exits.h"
#include "server/host_ops.h"
#include "server/handlers.h"
#include "server/sandbox/sandbox-internal.h"

static char **pairs_from(void **entries, size_t n)
{
    char **v = xcalloc(n * 2 + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        /* every map entry message has key then value after its base */
        const Runtime__V1__PodSandboxConfig__LabelsEntry *e = entries[i];
        v[2 * i] = xstrdup(e->key);
        v[2 * i + 1] = xstrdup(e->value);
    }
    return v;
}

/* A pod user namespace (validated: one range each, from container id 0). */
static int run_describe_userns(daemon_t *d, sandbox_t *sb, const Runtime__V1__UserNamespace *u,
                               cri_error_t *err)
{
    if (!u || u->mode != RUNTIME__V1__NAMESPACE_MODE__POD)
        return 0;
    if (!daemon_host(d)->userns_supported)
        return cri_error_set(err, EINVAL,
                             "config.linux.security_context.namespace_options.userns_options: "
                             "user namespaces are not available on this node (no id-mapped "
                             "mounts of the layer store)");
    free(sb->userns_path);
    sb->userns_path = sandbox_userns_path(d, sb->id);
    const Runtime__V1__IDMapping *m[2] = {u->uids[0], u->gids[0]};
    uint32_t *dst[2] = {sb->uid_map, sb->gid_map};
    for (int i = 0; i < 2; i++) {
        dst[i][0] = m[i]->container_id;
        dst[i][1] = m[i]->host_id;
        dst[i][2] = m[i]->length;
    }
    return 0;
}

/* Fills sb's identity from the request (nothing touched on the host yet). */
static int run_describe(daemon_t *d, sandbox_t *sb, const Runtime__V1__RunPodSandboxRequest *r,
                        cri_error_t *err)
{
    const Runtime__V1__PodSandboxConfig *cfg = r->config;
    const Runtime__V1__PodSandboxMetadata *m = cfg->metadata;
    daemon_runtime_t *rt = daemon_runtime(d, r->runtime_handler);
    if (!rt)
        return cri_error_set(err, EINVAL, "runtime_handler `%s` is not configured",
                             r->runtime_handler);
    free(sb->id);
    sb->id = sandbox_new_id();
    free(sb->name);
    sb->name = xasprintf("k8s_POD_%s_%s_%s_%u", m->name, m->namespace_, m->uid, m->attempt);
    str_set(&sb->meta_name, m->name);
    str_set(&sb->meta_uid, m->uid);
    str_set(&sb->meta_namespace, m->namespace_);
    sb->attempt = m->attempt;
    strv_free(sb->labels);
    sb->labels = pairs_from((void **)cfg->labels, cfg->n_labels);
    strv_free(sb->annotations);
    sb->annotations = pairs_from((void **)cfg->annotations, cfg->n_annotations);
    str_set(&sb->runtime_handler, r->runtime_handler);
    str_set(&sb->runtime, rt->name);
    sb->created_at = now_unix_ns();
    const Runtime__V1__LinuxPodSandboxConfig *lx = cfg->linux;
    const Runtime__V1__NamespaceOption *ns =
        lx && lx->security_context ? lx->security_context->namespace_options : NULL;
    sb->ns_network = ns ? (int)ns->network : SANDBOX_NS_POD;
    sb->ns_pid = ns ? (int)ns->pid : SANDBOX_NS_POD;
    sb->ns_ipc = ns ? (int)ns->ipc : SANDBOX_NS_POD;
    sb->privileged = lx && lx->security_context && lx->security_context->privileged;
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) < 0)
        host[0] = '\0';
    str_set(&sb->hostname,
            cfg->hostname[0] && sb->ns_network != SANDBOX_NS_NODE ? cfg->hostname : host);
    str_set(&sb->log_directory, cfg->log_directory);
    str_set(&sb->cgroup_parent, lx ? lx->cgroup_parent : "");
    if (sb->ns_network != SANDBOX_NS_NODE) {
        free(sb->netns_path);
        sb->netns_path = sandbox_netns_path(d, sb->id);
    }
    /* a pause process is needed only as PID 1 of a shared PID namespace;
     * otherwise the pod's ipc and uts namespaces are pinned like its netns */
    sb->infra = !daemon_conf(d)->runtime.drop_infra || sb->ns_pid == SANDBOX_NS_POD;
    if (!sb->infra && sb->ns_ipc != SANDBOX_NS_NODE) {
        free(sb->ipcns_path);
        sb->ipcns_path = sandbox_ipcns_path(d, sb->id);
    }
    if (!sb->infra && sb->ns_network != SANDBOX_NS_NODE) {
        free(sb->utsns_path);
        sb->utsns_path = sandbox_utsns_path(d, sb->id);
    }
    return run_describe_userns(d, sb, ns ? ns->userns_options : NULL, err);
}

/* Undoes everything RunPodSandbox may have done for sb, in reverse order.
 * The cause of the failure is what the caller returns; a failed step here
 * is logged. The record (and name) go only when every step worked: a pod
 * whose teardown failed (a CNI DEL that failed would leak its IP lease)
 * stays, listed as NOTREADY, so StopPodSandbox, RemovePodSandbox or the
 * next startup retry the teardown. */
static void run_rollback(daemon_t *d, sandbox_t *sb)
{
    cri_error_t first = CRI_ERROR_INIT, e = CRI_ERROR_INIT;
    cleanup_free char *shm = sandbox_shm_dir(d, sb->id);
    /* every step runs (each copes with what the others left); the first
     * failure is the one reported */
    int failed = sandbox_network_teardown(d, sb, &first) < 0;
    if (sb->infra && sandbox_infra_stop(d, sb, failed ? &e : &first) < 0)
        failed = 1;
    if (daemon_host_ops(d)->shm_unmount(shm, failed ? &e : &first) < 0)
        failed = 1;
    if (sandbox_unpin_all(d, sb, failed ? &e : &first) < 0)
        failed = 1;
    if (sandbox_remove_files(d, sb, failed ? &e : &first) < 0)
        failed = 1;
    if (!failed && sandbox_store_forget(daemon_sandboxes(d), sb, &first) == 0)
        return;
    log_warn("run pod sandbox `%s`: rollback: %s; keeping it as not ready", sb->id, first.msg);
    sandbox_set_state(sb, SANDBOX_STATE_NOTREADY, 0);
    cri_error_t ignore = CRI_ERROR_INIT;
    if (sandbox_store_persist(daemon_sandboxes(d), sb, false, &ignore) == 0)
        sandbox_store_add(daemon_sandboxes(d), sb, &ignore);
}

struct cni_job {
    daemon_t *d;
    sandbox_t *sb;
    const cni_network_t *net;
    const Runtime__V1__PodSandboxConfig *cfg;
    cri_error_t err;
    int rc;
    int64_t took_ns;
};

/* The pod files first (the infra does not need them), then CNI ADD. */
static void *cni_thread(void *data)
{
    struct cni_job *job = data;
    cleanup_free char *files = sandbox_files_dir(job->d, job->sb->id);
    job->rc = sandbox_podfiles_write(job->sb, job->cfg->dns_config, files, &job->err);
    if (job->rc < 0 || job->sb->ns_network == SANDBOX_NS_NODE)
        return NULL;
    int64_t t0 = now_unix_ns();
    job->rc = sandbox_network_setup(job->d, job->sb, job->net, job->cfg, &job->err);
    job->took_ns = now_unix_ns() - t0;
    if (job->rc == 0)
        testhook_failpoint("run.after_cni_add");
    return NULL;
}

/* The bundle dir (also what tells recovery that runroot survived) and the
 * pod's /dev/shm tmpfs, owned by the pod's (mapped) root. */
static int run_shm(daemon_t *d, sandbox_t *sb, cri_error_t *err)
{
    cleanup_free char *bundle = sandbox_bundle_dir(d, sb->id);
    cleanup_free char *shm = sandbox_shm_dir(d, sb->id);
    if (mkdir_p(bundle, 0700, err) < 0)
        return -1;
    uint32_t uid = sb->userns_path[0] ? sb->uid_map[1] : 0;
    uint32_t gid = sb->userns_path[0] ? sb->gid_map[1] : 0;
    if (sb->ns_ipc != SANDBOX_NS_NODE && daemon_host_ops(d)->shm_mount(shm, uid, gid, err) < 0)
        return -1;
    return 0;
}

/* Pod shm, infra spec, infra start: the part that runs beside CNI. */
static int run_infra(daemon_t *d, sandbox_t *sb, const Runtime__V1__PodSandboxConfig *cfg,
                     const char *rootfs, char *const *args, pid_t *ret_pid, cri_error_t *err)
{
    int64_t t0 = now_unix_ns();
    cleanup_free char *bundle = sandbox_bundle_dir(d, sb->id);
    cleanup_free char *shm = sandbox_shm_dir(d, sb->id);
    if (run_shm(d, sb, err) < 0)
        return -1;
    const char *shm_path = sb->ns_ipc == SANDBOX_NS_NODE ? "/dev/shm" : shm;
    if (sandbox_infra_spec(d, sb, cfg, rootfs, args, bundle, shm_path, err) < 0)
        return -1;
    sb->timings.files_ns = now_unix_ns() - t0;
    return sandbox_infra_start(d, sb, bundle, ret_pid, err);
}

/* The pod's namespaces that outlive processes: the netns pin (and the ipc
 * and uts pins of a pod without an infra), or the user namespace with them
 * inside it (before the pause image's rootfs, which a pod user namespace
 * id-maps). */
static int run_pin(daemon_t *d, sandbox_t *sb, const Runtime__V1__PodSandboxConfig *cfg,
                   cri_error_t *err)
{
    int64_t t0 = now_unix_ns();
    const host_ops_t *ops = daemon_host_ops(d);
    /* the pod's sysctls: runc writes them for an infra, the pin thread for
     * a pod without one (validated: only those of the pinned namespaces) */
    cleanup_strv char **sysctls = sb->infra ? NULL : sandbox_sysctl_paths(cfg);
    const host_ns_pins_t pins = {sb->netns_path, sb->ipcns_path, sb->utsns_path, sb->hostname,
                                 sysctls};
    if (sb->userns_path[0]
            ? ops->userns_pin(sb->userns_path, &pins, sb->uid_map, sb->gid_map, err) < 0
            : ops->ns_pin(&pins, err) < 0)
        return -1;
    sb->timings.netns_ns = now_unix_ns() - t0;
    testhook_failpoint("run.after_netns_pin");
    return 0;
}

/* A pod without an infra process: shm, pod files, CNI ADD, in turn. */
static int run_build_noinfra(daemon_t *d, sandbox_t *sb, const cni_network_t *net,
                             const Runtime__V1__PodSandboxConfig *cfg, cri_error_t *err)
{
    int64_t t0 = now_unix_ns();
    if (run_shm(d, sb, err) < 0)
        return -1;
    sb->timings.files_ns = sb->timings.infra_ns = now_unix_ns() - t0;
    struct cni_job job = {.d = d, .sb = sb, .net = net, .cfg = cfg, .err = CRI_ERROR_INIT};
    cni_thread(&job);
    sb->timings.cni_ns = job.took_ns;
    if (job.rc < 0) {
        *err = job.err;
        return -1;
    }
    sandbox_set_state(sb, SANDBOX_STATE_READY, 0);
    return 0;
}

/* Everything after the pins; on failure the caller rolls back. */
static int run_build(daemon_t *d, sandbox_t *sb, const cni_network_t *net,
                     const Runtime__V1__PodSandboxConfig *cfg, const char *rootfs,
                     char *const *args, cri_error_t *err)
{
    if (!sb->infra)
        return run_build_noinfra(d, sb, net, cfg, err);
    struct cni_job job = {.d = d, .sb = sb, .net = net, .cfg = cfg, .err = CRI_ERROR_INIT};
    pthread_t t;
    int e = pthread_create(&t, NULL, cni_thread, &job);
    if (e != 0)
        return cri_error_make(err, e, "start CNI thread");
    int64_t t1 = now_unix_ns();
    pid_t pid = 0;
    int rc = run_infra(d, sb, cfg, rootfs, args, &pid, err);
    sb->timings.infra_ns = now_unix_ns() - t1;
    pthread_join(t, NULL);
    sb->timings.cni_ns = job.took_ns;
    if (rc < 0)
        return -1;
    if (job.rc < 0) {
        *err = job.err;
        return -1;
    }
    sandbox_set_state(sb, SANDBOX_STATE_READY, pid);
    return 0;
}

RPC_HANDLER(handle_run_pod_sandbox)
{
    const Runtime__V1__RunPodSandboxRequest *r = (const Runtime__V1__RunPodSandboxRequest *)req;
    daemon_t *d = rpc_daemon(ctx);
    int64_t start = now_unix_ns();
    if (sandbox_validate_config(r->config, err) < 0)
        return -1;
    bool pause_image = daemon_conf(d)->image.pause_image[0] != '\0';
    cleanup_sandbox sandbox_t *sb = sandbox_new();
    if (run_describe(d, sb, r, err) < 0)
        return -1;
    cleanup_free char *rootfs = NULL;
    cleanup_strv char **args = NULL;
    /* a pod's mapped root must walk to the infra rootfs: for a pod user
     * namespace a copy under the 0711 <root>/rootfs-userns (root-owned,
     * nothing setuid) stands in for the one in the 0700 <root>/pause */
    cleanup_free char *infra_base = sb->userns_path[0]
                                        ? xasprintf("%s/rootfs-userns", daemon_root(d))
                                        : xstrdup(daemon_root(d));
    if (sb->infra && !pause_image &&
        sandbox_infra_rootfs(infra_base, daemon_conf(d)->runtime.pause_path, &rootfs, err) < 0)
        return -1;
    cleanup_cni_network cni_network_t *net = NULL;
    if (sb->ns_network != SANDBOX_NS_NODE && sandbox_network_prepare(d, sb, &net, err) < 0)
        return cri_error_wrap(err, "RunPodSandbox `%s`", r->config->metadata->name);
    if (sandbox_store_persist(daemon_sandboxes(d), sb, true, err) < 0)
        return cri_error_wrap(err, "RunPodSandbox `%s`", r->config->metadata->name);
    testhook_failpoint("run.after_reserve");

    int rc = run_pin(d, sb, r->config, err);
    if (rc == 0 && sb->infra && pause_image)
        rc = sandbox_pause_image_prepare(d, sb, &rootfs, &args, err);
    if (rc == 0)
        rc = run_build(d, sb, net, r->config, rootfs, args, err);
    sb->timings.total_ns = now_unix_ns() - start;
    if (rc == 0 && sandbox_store_persist(daemon_sandboxes(d), sb, false, err) < 0)
        rc = -1;
    if (rc == 0)
        testhook_failpoint("run.after_record");
    if (rc < 0 || sandbox_store_add(daemon_sandboxes(d), sb, err) < 0) {
        run_rollback(d, sb);
        return cri_error_wrap(err, "run pod sandbox `%s`", sb->name);
    }
    /* in the store first: a death reported at once must find it */
    pid_t pid = 0;
    sandbox_get_state(sb, &pid);
    pthread_mutex_lock(&sb->lock);
    pid_t monitor = sb->monitor_pid;
    pthread_mutex_unlock(&sb->lock);
    if (monitor > 0) /* a pod without an infra process has no monitor to watch */
        exit_watcher_watch(daemon_exits(d), sb->id, monitor, pid);

    /* a pod's own events carry its id as container id (as containerd's) */
    events_publish(daemon_events(d), EVENTS_CONTAINER_CREATED, sb->id, sb->id);
    events_publish(daemon_events(d), EVENTS_CONTAINER_STARTED, sb->id, sb->id);
    Runtime__V1__RunPodSandboxResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__run_pod_sandbox_response__init(resp);
    resp->pod_sandbox_id = rpc_strdup(ctx, sb->id);
    *ret_resp = &resp->base;
    return 0;
}
