/* GetContainerEvents: a long-lived stream of CREATED, STARTED, STOPPED and
 * DELETED for every container and every pod (a pod's events carry its own
 * id as container_id, as containerd sends them), each with the pod's
 * status and its containers' statuses at the moment of the event: what
 * kubelet's EventedPLEG turns into the pod's cached status (it skips an
 * event without pod_sandbox_status, and keeps the newest by created_at).
 *
 * The message is built once per event, from memory, on the thread that
 * changed the object (container_events_snapshot, registered with the hub),
 * and only while somebody subscribes; the hub queues it for every
 * subscriber without waiting on any (server/events.h). The stream itself is
 * a feed of the gRPC core: no worker waits on it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/cri/v1/api.pb-c.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/events.h"
#include "server/handlers.h"
#include "server/sandbox/sandbox.h"
#include "server/status_replies.h"

/* The statuses of every container of the pod, in creation order. */
static void snapshot_containers(rpc_ctx_t *ctx, daemon_t *d, const char *sandbox_id,
                                Runtime__V1__ContainerEventResponse *ev)
{
    container_t **list = NULL;
    size_t n = 0;
    container_store_list(daemon_containers(d), sandbox_id, &list, &n);
    ev->containers_statuses = rpc_alloc_array(ctx, n + 1, Runtime__V1__ContainerStatus *);
    for (size_t i = 0; i < n; i++)
        ev->containers_statuses[i] = container_reply_status(ctx, list[i]);
    ev->n_containers_statuses = n;
    container_list_free(list, n);
}

int container_events_snapshot(events_type_t type, const char *container_id, const char *sandbox_id,
                              int64_t created_at, void *data, void **ret_buf, size_t *ret_len)
{
    daemon_t *d = data;
    rpc_ctx_t *ctx = rpc_ctx_detached_new(d);
    Runtime__V1__ContainerEventResponse *ev = rpc_alloc(ctx, sizeof(*ev));
    runtime__v1__container_event_response__init(ev);
    ev->container_id = rpc_strdup(ctx, container_id);
    ev->container_event_type = (Runtime__V1__ContainerEventType)type;
    ev->created_at = created_at;
    cleanup_sandbox sandbox_t *sb = NULL;
    cri_error_t ignore = CRI_ERROR_INIT;
    /* a pod being deleted is still in the store when its DELETED goes out */
    if (daemon_sandboxes(d) &&
        sandbox_store_get(daemon_sandboxes(d), sandbox_id, &sb, &ignore) == 0)
        ev->pod_sandbox_status = sandbox_reply_status(ctx, sb);
    if (daemon_containers(d))
        snapshot_containers(ctx, d, sandbox_id, ev);
    *ret_buf = rpc_pack_malloc(&ev->base, ret_len);
    rpc_ctx_detached_free(ctx);
    return 0;
}

/* ---- the feed's source: one hub subscriber ---- */

struct events_source {
    events_sub_t *sub;
    rpc_feed_t *feed;
};

static void source_wake(void *data)
{
    rpc_feed_wake(((struct events_source *)data)->feed);
}

static int source_next(void *data, void **ret_buf, size_t *ret_len, cri_error_t *err)
{
    struct events_source *s = data;
    events_blob_t *b = NULL;
    int r = events_pop(s->sub, &b, err);
    if (r <= 0)
        return r;
    size_t len = events_blob_len(b);
    void *buf = xmalloc(len ? len : 1);
    memcpy(buf, events_blob_data(b), len);
    events_blob_unref(b);
    *ret_buf = buf;
    *ret_len = len;
    return 1;
}

static void source_release(void *data)
{
    struct events_source *s = data;
    events_unsubscribe(s->sub);
    free(s);
}

RPC_FEED_HANDLER(handle_get_container_events)
{
    events_hub_t *hub = daemon_events(rpc_daemon(ctx));
    if (!hub)
        return cri_error_set(err, ENOSYS, "container events are not available");
    struct events_source *s = xcalloc(1, sizeof(*s));
    s->feed = feed;
    /* the source is complete before the first wake can come */
    ret_source->next = source_next;
    ret_source->release = source_release;
    ret_source->data = s;
    s->sub = events_subscribe(hub, source_wake, s);
    return 0;
}
