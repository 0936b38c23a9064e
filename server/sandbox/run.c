/* RunPodSandbox: validate; reserve the pod's name (with a "creating" record,
 * in one LMDB transaction); pin the netns; then write the pod files and run
 * the CNI ADD on a second thread while this one mounts the pod's shm, writes
 * the infra spec and starts the infra container (they do not depend on each
 * other; runc is the longer path); persist READY; reply.
 *
 * A failure at any step rolls back every earlier one (CNI DEL, infra
 * delete, shm mount, netns pin, dirs, record and reservation) and returns
 * the cause. A crash half way leaves the "creating" record, which the
 * startup recovery tears down the same way. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "conf/conf.h"
#include "server/daemon.h"
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
    return 0;
}

/* Undoes everything RunPodSandbox may have done for sb, best effort, in
 * reverse order. The first error is kept for the record but not returned:
 * the caller returns the cause of the failure. */
static void run_rollback(daemon_t *d, sandbox_t *sb)
{
    cri_error_t ignore = CRI_ERROR_INIT;
    sandbox_network_teardown(d, sb, &ignore);
    sandbox_infra_stop(d, sb, &ignore);
    cleanup_free char *shm = sandbox_shm_dir(d, sb->id);
    daemon_host_ops(d)->shm_unmount(shm, &ignore);
    daemon_host_ops(d)->netns_unpin(sb->netns_path, &ignore);
    cleanup_free char *bundle = sandbox_bundle_dir(d, sb->id);
    cleanup_free char *files = sandbox_files_dir(d, sb->id);
    rm_rf(bundle, &ignore);
    rm_rf(files, &ignore);
    cleanup_free char *exit_file = daemon_exit_file(d, sb->id);
    unlink(exit_file);
    sandbox_pause_image_release(d, sb->id, &ignore);
    sandbox_store_forget(daemon_sandboxes(d), sb, &ignore);
}

struct cni_job {
    daemon_t *d;
    sandbox_t *sb;
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
    job->rc = sandbox_network_setup(job->d, job->sb, job->cfg, &job->err);
    job->took_ns = now_unix_ns() - t0;
    return NULL;
}

/* Pod shm, infra spec, infra start: the part that runs beside CNI. */
static int run_infra(daemon_t *d, sandbox_t *sb, const Runtime__V1__PodSandboxConfig *cfg,
                     const char *rootfs, char *const *args, pid_t *ret_pid, cri_error_t *err)
{
    int64_t t0 = now_unix_ns();
    cleanup_free char *bundle = sandbox_bundle_dir(d, sb->id);
    cleanup_free char *shm = sandbox_shm_dir(d, sb->id);
    if (mkdir_p(bundle, 0700, err) < 0)
        return -1;
    if (sb->ns_ipc != SANDBOX_NS_NODE && daemon_host_ops(d)->shm_mount(shm, err) < 0)
        return -1;
    const char *shm_path = sb->ns_ipc == SANDBOX_NS_NODE ? "/dev/shm" : shm;
    if (sandbox_infra_spec(d, sb, cfg, rootfs, args, bundle, shm_path, err) < 0)
        return -1;
    sb->timings.files_ns = now_unix_ns() - t0;
    return sandbox_infra_start(d, sb, bundle, ret_pid, err);
}

/* Everything after the reservation; on failure the caller rolls back. */
static int run_build(daemon_t *d, sandbox_t *sb, const Runtime__V1__PodSandboxConfig *cfg,
                     const char *rootfs, char *const *args, cri_error_t *err)
{
    int64_t t0 = now_unix_ns();
    if (sb->netns_path[0] && daemon_host_ops(d)->netns_pin(sb->netns_path, err) < 0)
        return -1;
    sb->timings.netns_ns = now_unix_ns() - t0;

    struct cni_job job = {.d = d, .sb = sb, .cfg = cfg, .err = CRI_ERROR_INIT};
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
    if (!pause_image &&
        sandbox_infra_rootfs(daemon_root(d), daemon_conf(d)->runtime.pause_path, &rootfs, err) < 0)
        return -1;
    if (sandbox_store_persist(daemon_sandboxes(d), sb, true, err) < 0)
        return cri_error_wrap(err, "RunPodSandbox `%s`", r->config->metadata->name);

    int rc = pause_image ? sandbox_pause_image_prepare(d, sb, &rootfs, &args, err) : 0;
    if (rc == 0)
        rc = run_build(d, sb, r->config, rootfs, args, err);
    sb->timings.total_ns = now_unix_ns() - start;
    if (rc < 0 || sandbox_store_persist(daemon_sandboxes(d), sb, false, err) < 0 ||
        sandbox_store_add(daemon_sandboxes(d), sb, err) < 0) {
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

    Runtime__V1__RunPodSandboxResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__run_pod_sandbox_response__init(resp);
    resp->pod_sandbox_id = rpc_strdup(ctx, sb->id);
    *ret_resp = &resp->base;
    return 0;
}
