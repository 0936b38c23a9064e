/* PortForward: validate, find the ready sandbox and its pinned netns, hand
 * back a streaming URL. `port` may be empty (critest sends none): over
 * SPDY the ports come in each stream's headers; over WebSocket they are
 * the request's, as in the reference server (BuildV4Options). */
#include <errno.h>
#include <string.h>

#include "api/cri/v1/api.pb-c.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "server/daemon.h"
#include "server/handlers.h"
#include "server/streaming/streaming.h"
#include "server/validate.h"

int streaming_validate_port_forward(const Runtime__V1__PortForwardRequest *in, cri_error_t *err)
{
    if (!in->pod_sandbox_id || !in->pod_sandbox_id[0])
        return cri_error_set(err, EINVAL, "pod_sandbox_id is empty");
    if (validate_count("port", in->n_port, VALIDATE_MAX_ENTRIES, err) < 0)
        return -1;
    for (size_t i = 0; i < in->n_port; i++) {
        if (in->port[i] < 1 || in->port[i] > 65535)
            return cri_error_set(err, EINVAL, "port %d is out of range", in->port[i]);
    }
    return 0;
}

RPC_HANDLER(handle_port_forward)
{
    const Runtime__V1__PortForwardRequest *in = (const Runtime__V1__PortForwardRequest *)req;
    daemon_t *d = rpc_daemon(ctx);
    if (streaming_validate_port_forward(in, err) < 0)
        return -1;
    cleanup_free char *id = NULL;
    cleanup_free char *netns = NULL;
    if (streaming_lookup_sandbox(d, in->pod_sandbox_id, &id, &netns, err) < 0)
        return -1;
    if (!daemon_streaming(d))
        return cri_error_set(err, EAGAIN, "the streaming server is not running");
    unsigned int max = streaming_server_max_port_forwards(daemon_streaming(d));
    if (in->n_port > max)
        return cri_error_set(err, EINVAL,
                             "port: %zu ports, more than streaming.max_port_forwards (%u)",
                             in->n_port, max);

    streaming_request_t *r = xcalloc(1, sizeof(*r));
    r->kind = STREAMING_PORTFORWARD;
    r->pod_id = TAKE_PTR(id);
    r->netns_path = TAKE_PTR(netns);
    r->n_ports = in->n_port;
    r->ports = xcalloc(in->n_port ? in->n_port : 1, sizeof(int32_t));
    if (in->n_port)
        memcpy(r->ports, in->port, in->n_port * sizeof(int32_t));
    cleanup_free char *url = NULL;
    if (streaming_server_issue(daemon_streaming(d), r, &url, err) < 0)
        return -1;

    Runtime__V1__PortForwardResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__port_forward_response__init(resp);
    resp->url = rpc_strdup(ctx, url);
    *ret_resp = &resp->base;
    return 0;
}
