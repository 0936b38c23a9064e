/* StopPodSandbox: stop the pod's containers, tear down its network (CNI DEL
 * with the cached ADD result), kill and delete the infra container, unmount
 * the pod's shm and release the namespace pins (netns; ipc and uts of a pod
 * without an infra); the pod then reads NOTREADY and stays listable.
 *
 * Idempotent (api.proto: "If there are any running containers in the
 * sandbox, they must be forcibly terminated ... the call must not return an
 * error if all relevant resources have already been reclaimed"): an unknown
 * id is OK (kubelet's GC calls Stop before every Remove and leaks the pod on
 * any error), repeats are OK, and it works with the netns pin or the infra
 * already gone (after a reboot, or removed by hand). */
#include <errno.h>
#include <pthread.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/testhooks.h"
#include "server/daemon.h"
#include "server/events.h"
#include "server/host_ops.h"
#include "server/handlers.h"
#include "server/sandbox/sandbox-internal.h"

struct teardown_job {
    daemon_t *d;
    sandbox_t *sb;
    cri_error_t err;
    int rc;
};

static void *teardown_thread(void *data)
{
    struct teardown_job *job = data;
    job->rc = sandbox_network_teardown(job->d, job->sb, &job->err);
    return NULL;
}

/* CNI DEL and the infra's kill + delete do not depend on each other (the
 * pin keeps the netns alive while the infra dies): run them side by side. */
static int stop_network_and_infra(daemon_t *d, sandbox_t *sb, cri_error_t *err)
{
    if (!sb->infra) /* nothing to kill: the pins hold the namespaces */
        return sandbox_network_teardown(d, sb, err);
    struct teardown_job job = {.d = d, .sb = sb, .err = CRI_ERROR_INIT};
    pthread_t t;
    bool threaded = sb->cni_network[0] && pthread_create(&t, NULL, teardown_thread, &job) == 0;
    if (!threaded)
        teardown_thread(&job);
    int rc = sandbox_infra_stop(d, sb, err);
    if (threaded)
        pthread_join(t, NULL);
    if (job.rc < 0) {
        *err = job.err; /* the network error wins: it is what leaks an IP */
        return -1;
    }
    return rc;
}

int sandbox_stop_locked(daemon_t *d, sandbox_t *sb, cri_error_t *err)
{
    if (sb->removed)
        return 0;
    if (sandbox_stop_containers(daemon_sandboxes(d), sb, err) < 0)
        return cri_error_wrap(err, "stop containers of pod `%s`", sb->id);
    testhook_failpoint("stop_pod.after_containers");
    if (stop_network_and_infra(d, sb, err) < 0)
        return -1;
    testhook_failpoint("stop_pod.after_network");
    cleanup_free char *shm = sandbox_shm_dir(d, sb->id);
    if (daemon_host_ops(d)->shm_unmount(shm, err) < 0)
        return -1;
    if (sandbox_unpin_all(d, sb, err) < 0)
        return -1;
    testhook_failpoint("stop_pod.after_unpin");
    pid_t pid = 0;
    bool changed = sandbox_get_state(sb, &pid) != SANDBOX_STATE_NOTREADY || pid != 0;
    sandbox_set_state(sb, SANDBOX_STATE_NOTREADY, 0);
    if (changed && sandbox_store_persist(daemon_sandboxes(d), sb, false, err) < 0)
        return cri_error_wrap(err, "record pod `%s` as stopped", sb->id);
    testhook_failpoint("stop_pod.after_record");
    if (changed)
        events_publish(daemon_events(d), EVENTS_CONTAINER_STOPPED, sb->id, sb->id);
    return 0;
}

RPC_HANDLER(handle_stop_pod_sandbox)
{
    const Runtime__V1__StopPodSandboxRequest *r = (const Runtime__V1__StopPodSandboxRequest *)req;
    daemon_t *d = rpc_daemon(ctx);
    if (!r->pod_sandbox_id[0])
        return cri_error_set(err, EINVAL, "pod_sandbox_id is empty");
    cleanup_sandbox sandbox_t *sb = NULL;
    cri_error_t lerr = CRI_ERROR_INIT;
    if (sandbox_store_get(daemon_sandboxes(d), r->pod_sandbox_id, &sb, &lerr) < 0) {
        if (lerr.status != ENOENT) {
            *err = lerr;
            return -1;
        }
    } else {
        pthread_mutex_lock(&sb->op_lock);
        int rc = sandbox_stop_locked(d, sb, err);
        pthread_mutex_unlock(&sb->op_lock);
        if (rc < 0)
            return cri_error_wrap(err, "stop pod sandbox `%s`", sb->id);
    }
    Runtime__V1__StopPodSandboxResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__stop_pod_sandbox_response__init(resp);
    *ret_resp = &resp->base;
    return 0;
}
