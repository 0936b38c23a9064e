/* Attach: validate, find the running container, hand back a streaming URL.
 * The same stream rules as Exec (tty with stderr is invalid; at least one
 * stream). The connection itself goes to the container's attach socket
 * through the backend when the client connects. */
#include <errno.h>

#include "api/cri/v1/api.pb-c.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "server/daemon.h"
#include "server/handlers.h"
#include "server/streaming/streaming.h"

int streaming_validate_attach(const Runtime__V1__AttachRequest *in, cri_error_t *err)
{
    if (!in->container_id || !in->container_id[0])
        return cri_error_set(err, EINVAL, "container_id is empty");
    return streaming_check_stdio(in->tty, in->stdin, in->stdout, in->stderr, err);
}

RPC_HANDLER(handle_attach)
{
    const Runtime__V1__AttachRequest *in = (const Runtime__V1__AttachRequest *)req;
    daemon_t *d = rpc_daemon(ctx);
    if (streaming_validate_attach(in, err) < 0)
        return -1;
    cleanup_free char *id = NULL;
    if (streaming_lookup_container(d, in->container_id, &id, err) < 0)
        return -1;
    if (!daemon_streaming(d))
        return cri_error_set(err, EAGAIN, "the streaming server is not running");

    streaming_request_t *r = xcalloc(1, sizeof(*r));
    r->kind = STREAMING_ATTACH;
    r->container_id = TAKE_PTR(id);
    r->tty = in->tty;
    r->in = in->stdin;
    r->out = in->stdout;
    r->err = in->stderr;
    cleanup_free char *url = NULL;
    if (streaming_server_issue(daemon_streaming(d), r, &url, err) < 0)
        return -1;

    Runtime__V1__AttachResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__attach_response__init(resp);
    resp->url = rpc_strdup(ctx, url);
    *ret_resp = &resp->base;
    return 0;
}
