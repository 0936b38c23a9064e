/* The infra container of a pod: cricket-pause in a read-only rootfs that
 * cricket builds itself (no image, no registry), holding the pod's IPC, UTS
 * and (shared) PID namespaces and joining its pinned network namespace. It
 * runs under a monitor like any container: the monitor writes its exit file
 * when it dies, so a dead infra is noticed after a daemon restart too. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "conf/conf.h"
#include "server/testhooks.h"
#include "server/daemon.h"
#include "server/exits.h"
#include "server/sandbox/sandbox-internal.h"
#include "server/seccomp.h"

#define INFRA_PAUSE_MAX ((size_t)64 * 1024 * 1024)
#define INFRA_OOM_SCORE_ADJ (-998)

/* Serialises rootfs builds of this process (the rename makes them atomic for
 * readers; the lock keeps two RunPodSandbox calls from building twice). */
static pthread_mutex_t rootfs_lock = PTHREAD_MUTEX_INITIALIZER;

static bool rootfs_current(const char *rootfs, const char *pause_path)
{
    struct stat have, want;
    cleanup_free char *bin = xasprintf("%s/pause", rootfs);
    return stat(bin, &have) == 0 && stat(pause_path, &want) == 0 && have.st_size == want.st_size;
}

static int rootfs_populate(const char *dir, const char *pause_path, cri_error_t *err)
{
    static const char *const dirs[] = {"proc", "sys", "dev", "etc", "tmp"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        cleanup_free char *p = xasprintf("%s/%s", dir, dirs[i]);
        if (mkdir_p(p, 0755, err) < 0)
            return -1;
    }
    static const char *const files[][2] = {
        {"etc/passwd", "root:x:0:0:root:/:/pause\nnobody:x:65534:65534:nobody:/:/pause\n"},
        {"etc/group", "root:x:0:\nnobody:x:65534:\n"},
        {"etc/hostname", ""},
        {"etc/hosts", ""},
        {"etc/resolv.conf", ""},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        cleanup_free char *p = xasprintf("%s/%s", dir, files[i][0]);
        if (write_file_atomic(p, files[i][1], strlen(files[i][1]), 0644, err) < 0)
            return -1;
    }
    cleanup_free char *data = NULL;
    size_t len = 0;
    if (read_file(pause_path, INFRA_PAUSE_MAX, &data, &len, err) < 0)
        return cri_error_wrap(err, "read pause binary (runtime.pause_path)");
    cleanup_free char *bin = xasprintf("%s/pause", dir);
    return write_file_atomic(bin, data, len, 0755, err);
}

static int rootfs_build(const char *base, const char *rootfs, const char *pause_path,
                        cri_error_t *err)
{
    if (mkdir_p(base, 0711, err) < 0)
        return -1;
    cleanup_free char *tmp = xasprintf("%s/.build-XXXXXX", base);
    if (!mkdtemp(tmp))
        return cri_error_make(err, errno, "create `%s`", tmp);
    chmod(tmp, 0755);
    cri_error_t ignore = CRI_ERROR_INIT;
    if (rootfs_populate(tmp, pause_path, err) < 0) {
        rm_rf(tmp, &ignore);
        return cri_error_wrap(err, "build infra rootfs");
    }
    cleanup_free char *old = xasprintf("%s/.old-%lld", base, (long long)now_unix_ns());
    bool had_old = rename(rootfs, old) == 0;
    if (rename(tmp, rootfs) < 0) {
        int e = errno;
        rm_rf(tmp, &ignore);
        return cri_error_make(err, e, "install infra rootfs `%s`", rootfs);
    }
    if (fsync_parent(rootfs, err) < 0)
        return -1;
    if (had_old)
        rm_rf(old, &ignore);
    return 0;
}

int sandbox_infra_rootfs(const char *root, const char *pause_path, char **ret_path,
                         cri_error_t *err)
{
    cleanup_free char *base = xasprintf("%s/pause", root);
    char *rootfs = xasprintf("%s/rootfs", base);
    pthread_mutex_lock(&rootfs_lock);
    int r = rootfs_current(rootfs, pause_path) ? 0 : rootfs_build(base, rootfs, pause_path, err);
    pthread_mutex_unlock(&rootfs_lock);
    if (r < 0) {
        free(rootfs);
        return -1;
    }
    *ret_path = rootfs;
    return 0;
}

static oci_ns_mode_t host_or_new(int mode)
{
    return mode == SANDBOX_NS_NODE ? OCI_NS_HOST : OCI_NS_NEW;
}

/* The infra's seccomp follows the pod's (RuntimeDefault when the pod sets
 * none; unconfined for a privileged pod, as in containerd). */
static int infra_security(oci_desc_t *desc, const Runtime__V1__LinuxSandboxSecurityContext *sc,
                          cri_error_t *err)
{
    static const char *const drop_all[] = {"ALL", NULL};
    desc->cap_drop = drop_all;
    desc->process.no_new_privileges = true;
    if (!sc)
        return 0;
    if (seccomp_from_cri(sc->seccomp, sc->seccomp_profile_path, sc->privileged,
                         OCI_SECCOMP_RUNTIME_DEFAULT, "config.linux.security_context",
                         &desc->seccomp, &desc->seccomp_profile_path, err) < 0)
        return -1;
    if (sc->run_as_user)
        desc->process.uid = (uint32_t)sc->run_as_user->value;
    if (sc->run_as_group)
        desc->process.gid = (uint32_t)sc->run_as_group->value;
    return 0;
}

static int infra_desc_build(daemon_t *d, sandbox_t *sb, const Runtime__V1__PodSandboxConfig *cfg,
                            oci_desc_t *desc, oci_kv_t *sysctls, cri_error_t *err)
{
    const Runtime__V1__LinuxPodSandboxConfig *lx = cfg->linux;
    desc->id = sb->id;
    desc->hostname = sb->hostname;
    desc->ns_network.mode = sb->ns_network == SANDBOX_NS_NODE ? OCI_NS_HOST : OCI_NS_JOIN;
    desc->ns_network.path = sb->netns_path;
    desc->ns_pid.mode = host_or_new(sb->ns_pid);
    desc->ns_ipc.mode = host_or_new(sb->ns_ipc);
    desc->ns_uts.mode = host_or_new(sb->ns_network);
    desc->cgroup_parent = sb->cgroup_parent;
    desc->cgroup_systemd = daemon_cgroup_systemd(d);
    sandbox_oci_userns(sb, desc);
    desc->process.has_oom_score_adj = true;
    desc->process.oom_score_adj = INFRA_OOM_SCORE_ADJ;
    if (infra_security(desc, lx ? lx->security_context : NULL, err) < 0)
        return -1;
    for (size_t i = 0; lx && i < lx->n_sysctls; i++) {
        sysctls[i].key = lx->sysctls[i]->key;
        sysctls[i].value = lx->sysctls[i]->value;
    }
    desc->sysctls = sysctls;
    desc->n_sysctls = lx ? lx->n_sysctls : 0;
    return 0;
}

/* The pod's resources (kubelet's sum of its containers' and the overhead)
 * as annotations on the infra spec, the way containerd passes them: kubelet
 * sizes the pod cgroup itself (cgroup_parent), so runc needs nothing more,
 * but a VM-based handler sizes its VM from these. Values are printed into
 * buf (5 slots of 32 bytes); returns how many were set. */
static size_t resource_annotations(const Runtime__V1__PodSandboxConfig *cfg, oci_kv_t *kv,
                                   char (*buf)[32])
{
    const Runtime__V1__LinuxContainerResources *r = cfg->linux ? cfg->linux->resources : NULL;
    if (!r)
        return 0;
    const struct {
        const char *key;
        int64_t value;
    } fields[] = {
        {"io.kubernetes.cri.sandbox-cpu-period", r->cpu_period},
        {"io.kubernetes.cri.sandbox-cpu-quota", r->cpu_quota},
        {"io.kubernetes.cri.sandbox-cpu-shares", r->cpu_shares},
        {"io.kubernetes.cri.sandbox-memory", r->memory_limit_in_bytes},
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (fields[i].value == 0)
            continue;
        (void)snprintf(buf[n], 32, "%lld", (long long)fields[i].value);
        kv[n] = (oci_kv_t){fields[i].key, buf[n]};
        n++;
    }
    return n;
}

int sandbox_infra_spec(daemon_t *d, sandbox_t *sb, const Runtime__V1__PodSandboxConfig *cfg,
                       const char *rootfs, char *const *args, const char *bundle,
                       const char *shm_path, cri_error_t *err)
{
    static const char *const pause_args[] = {"/pause", NULL};
    static const char *const pause_env[] = {"PATH=/", NULL};
    static const char *const image_env[] = {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    oci_desc_t desc;
    oci_desc_init(&desc, daemon_host(d)->cgroup2);
    desc.process.args = args ? (const char *const *)args : pause_args;
    desc.process.env = args ? image_env : pause_env;
    desc.root_path = rootfs;
    desc.root_readonly = true;
    desc.shm_path = shm_path;
    oci_kv_t annotations[10] = {
        {"io.kubernetes.cri.container-type", "sandbox"},
        {"io.kubernetes.cri.sandbox-id", sb->id},
        {"io.kubernetes.cri.sandbox-name", sb->meta_name},
        {"io.kubernetes.cri.sandbox-namespace", sb->meta_namespace},
        {"io.kubernetes.cri.sandbox-uid", sb->meta_uid},
    };
    char values[5][32];
    desc.annotations = annotations;
    desc.n_annotations = 5 + resource_annotations(cfg, annotations + 5, values);
    size_t n_sysctls = cfg->linux ? cfg->linux->n_sysctls : 0;
    cleanup_free oci_kv_t *sysctls = xcalloc(n_sysctls + 1, sizeof(*sysctls));
    if (infra_desc_build(d, sb, cfg, &desc, sysctls, err) < 0)
        return -1;

    json_t *spec = NULL;
    if (oci_spec_build(&desc, daemon_host(d), &spec, err) < 0)
        return cri_error_wrap(err, "infra spec");
    char *text = json_dumps(spec, JSON_COMPACT);
    json_decref(spec);
    if (!text)
        abort(); /* OOM only */
    free(sb->spec_json);
    sb->spec_json = text;
    if (mkdir_p(bundle, 0700, err) < 0)
        return -1;
    cleanup_free char *path = xasprintf("%s/config.json", bundle);
    return write_file_atomic(path, text, strlen(text), 0600, err);
}

int sandbox_infra_start(daemon_t *d, sandbox_t *sb, const char *bundle, pid_t *ret_pid,
                        cri_error_t *err)
{
    daemon_runtime_t *rt = daemon_runtime(d, sb->runtime);
    if (!rt)
        return cri_error_set(err, EINVAL, "runtime handler `%s` is not configured", sb->runtime);
    conmon_create_opts_t opts = {.id = sb->id, .bundle = bundle};
    pid_t pid = 0, monitor = 0;
    cri_error_t ignore = CRI_ERROR_INIT;
    if (daemon_conmon_ops(d)->create(&rt->conmon, &opts, &pid, &monitor, err) < 0) {
        oci_runtime_delete(rt->oci, sb->id, true, &ignore);
        return cri_error_wrap(err, "create infra container");
    }
    testhook_failpoint("run.after_infra_create");
    if (oci_runtime_start(rt->oci, sb->id, err) < 0) {
        oci_runtime_kill(rt->oci, sb->id, SIGKILL, false, &ignore);
        oci_runtime_delete(rt->oci, sb->id, true, &ignore);
        return cri_error_wrap(err, "start infra container");
    }
    pthread_mutex_lock(&sb->lock);
    sb->monitor_pid = monitor;
    pthread_mutex_unlock(&sb->lock);
    testhook_failpoint("run.after_infra_start");
    *ret_pid = pid;
    return 0;
}

static bool exit_file_exists(daemon_t *d, const char *id)
{
    cleanup_free char *path = daemon_exit_file(d, id);
    return access(path, F_OK) == 0;
}

/* Whether the infra is gone though no exit file will say so: its monitor
 * died (checked every 100 ms through the runtime's state). */
static bool orphan_gone(daemon_runtime_t *rt, sandbox_t *sb, int waited)
{
    pthread_mutex_lock(&sb->lock);
    bool dead = sb->monitor_dead;
    pthread_mutex_unlock(&sb->lock);
    if (!dead || waited % 100 != 0)
        return false;
    oci_state_t st;
    cri_error_t ignore = CRI_ERROR_INIT;
    return oci_runtime_state(rt->oci, sb->id, &st, &ignore) < 0 || st.status == OCI_STATUS_STOPPED;
}

static void wait_exit_file(daemon_t *d, daemon_runtime_t *rt, sandbox_t *sb, int timeout_ms)
{
    const struct timespec tick = {0, 5L * 1000 * 1000};
    for (int waited = 0; waited < timeout_ms; waited += 5) {
        if (exit_file_exists(d, sb->id) || orphan_gone(rt, sb, waited))
            return;
        nanosleep(&tick, NULL);
    }
}

int sandbox_infra_stop(daemon_t *d, sandbox_t *sb, cri_error_t *err)
{
    daemon_runtime_t *rt = daemon_runtime(d, sb->runtime);
    if (!rt)
        return cri_error_set(err, EINVAL, "runtime handler `%s` is not configured", sb->runtime);
    oci_state_t st;
    cri_error_t serr = CRI_ERROR_INIT;
    if (oci_runtime_state(rt->oci, sb->id, &st, &serr) < 0) {
        if (serr.status == ENOENT)
            return 0; /* never created, or already deleted */
        *err = serr;
        return cri_error_wrap(err, "stop infra container");
    }
    if (st.status != OCI_STATUS_STOPPED) {
        cri_error_t kerr = CRI_ERROR_INIT;
        /* "already stopped" races are fine: delete --force settles it */
        if (oci_runtime_kill(rt->oci, sb->id, SIGKILL, false, &kerr) == 0)
            wait_exit_file(d, rt, sb, SANDBOX_STOP_WAIT_MS);
    }
    cri_error_t derr = CRI_ERROR_INIT;
    if (oci_runtime_delete(rt->oci, sb->id, true, &derr) < 0 && derr.status != ENOENT) {
        *err = derr;
        return cri_error_wrap(err, "delete infra container");
    }
    return 0;
}

bool sandbox_infra_running(daemon_t *d, sandbox_t *sb, pid_t *ret_pid)
{
    daemon_runtime_t *rt = daemon_runtime(d, sb->runtime);
    if (!rt || exit_file_exists(d, sb->id))
        return false;
    /* the recorded infra still runs under its live monitor: no runtime call */
    pid_t recorded = 0;
    sandbox_get_state(sb, &recorded);
    if (recorded > 0 && exit_watcher_live_monitor(recorded, sb->id, daemon_exit_dir(d)) > 0) {
        *ret_pid = recorded;
        return true;
    }
    oci_state_t st;
    cri_error_t ignore = CRI_ERROR_INIT;
    if (oci_runtime_state(rt->oci, sb->id, &st, &ignore) < 0)
        return false;
    if (st.status != OCI_STATUS_RUNNING || st.pid <= 0)
        return false;
    *ret_pid = st.pid;
    return true;
}
