/* StartContainer: `runc start` of a CREATED container in a READY pod;
 * RUNNING with started_at. Anything but CREATED is an error (api.proto:
 * start a created container). A failed start leaves the container EXITED
 * with exit code 128, reason StartError and the error as message, as
 * containerd does, so kubelet sees why. */
#include <errno.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/testhooks.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/events.h"
#include "server/handlers.h"
#include "server/sandbox/sandbox.h"

static const char *state_name(container_state_t s)
{
    static const char *const names[] = {"created", "running", "exited", "unknown"};
    return s <= CONTAINER_STATE_UNKNOWN ? names[s] : "unknown";
}

static int start_locked(daemon_t *d, container_t *c, cri_error_t *err)
{
    container_status_t st;
    container_get_status(c, &st);
    container_state_t state = st.state;
    container_status_clear(&st);
    if (c->removed)
        return cri_error_set(err, ENOENT, "container `%s` not found", c->id);
    if (state != CONTAINER_STATE_CREATED)
        return cri_error_set(err, EINVAL, "container `%s` is %s, not created", c->id,
                             state_name(state));
    if (container_check_monitor(c, err) < 0)
        return -1;
    cleanup_sandbox sandbox_t *sb = NULL;
    if (sandbox_store_get(daemon_sandboxes(d), c->sandbox_id, &sb, err) < 0)
        return cri_error_wrap(err, "pod of container `%s`", c->id);
    if (sandbox_get_state(sb, NULL) != SANDBOX_STATE_READY)
        return cri_error_set(err, EINVAL, "pod sandbox `%s` is not ready", sb->id);
    daemon_runtime_t *rt = daemon_runtime(d, c->runtime);
    if (!rt)
        return cri_error_set(err, EINVAL, "runtime handler `%s` is not configured", c->runtime);
    pthread_mutex_lock(&c->event_lock);
    c->start_begun = true;
    pthread_mutex_unlock(&c->event_lock);
    if (oci_runtime_start(rt->oci, c->id, err) < 0) {
        pthread_mutex_lock(&c->event_lock);
        c->start_begun = false; /* it never ran: STOPPED alone */
        pthread_mutex_unlock(&c->event_lock);
        container_mark_exited(d, c, now_unix_ns(), 128, "StartError", err->msg);
        cri_error_t ignore = CRI_ERROR_INIT;
        container_record_write(d, c, &ignore);
        return -1;
    }
    testhook_failpoint("start.after_runc_start");
    int64_t now = now_unix_ns();
    pthread_mutex_lock(&c->lock);
    if (c->state == CONTAINER_STATE_CREATED)
        c->state = CONTAINER_STATE_RUNNING; /* else the exit came first */
    c->started_at = c->finished_at && c->finished_at < now ? c->finished_at : now;
    pthread_mutex_unlock(&c->lock);
    if (container_record_write(d, c, err) < 0)
        return -1;
    testhook_failpoint("start.after_record");
    pthread_mutex_lock(&c->event_lock);
    if (!c->started_published) /* else the exit published it, before its STOPPED */
        events_publish(daemon_events(d), EVENTS_CONTAINER_STARTED, c->id, c->sandbox_id);
    c->started_published = true;
    pthread_mutex_unlock(&c->event_lock);
    return 0;
}

RPC_HANDLER(handle_start_container)
{
    const Runtime__V1__StartContainerRequest *r = (const Runtime__V1__StartContainerRequest *)req;
    daemon_t *d = rpc_daemon(ctx);
    cleanup_container container_t *c = NULL;
    if (container_store_get(daemon_containers(d), r->container_id, &c, err) < 0)
        return -1;
    pthread_mutex_lock(&c->op_lock);
    int rc = start_locked(d, c, err);
    pthread_mutex_unlock(&c->op_lock);
    if (rc < 0)
        return cri_error_wrap(err, "start container `%s`", c->id);
    Runtime__V1__StartContainerResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__start_container_response__init(resp);
    *ret_resp = &resp->base;
    return 0;
}
