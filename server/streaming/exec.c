/* Exec: validate, find the running container, and hand back a streaming
 * URL whose token holds a copy of the request. The command itself runs
 * only when the client connects (session.c, then the backend's exec).
 * Rules as the reference streaming server (k8s.io/kubelet/pkg/cri/
 * streaming server.go validateExecRequest): tty with stderr is invalid,
 * and at least one of stdin, stdout, stderr is required. */
#include <errno.h>

#include "api/cri/v1/api.pb-c.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "server/daemon.h"
#include "server/handlers.h"
#include "server/streaming/streaming.h"
#include "server/validate.h"

int streaming_validate_exec(const Runtime__V1__ExecRequest *in, cri_error_t *err)
{
    if (!in->container_id || !in->container_id[0])
        return cri_error_set(err, EINVAL, "container_id is empty");
    if (in->n_cmd == 0 || !in->cmd[0][0])
        return cri_error_set(err, EINVAL, "cmd is empty");
    if (validate_strv("cmd", in->cmd, in->n_cmd, VALIDATE_MAX_ARGV, VALIDATE_MAX_ARGV_BYTES, err) <
        0)
        return -1;
    return streaming_check_stdio(in->tty, in->stdin, in->stdout, in->stderr, err);
}

RPC_HANDLER(handle_exec)
{
    const Runtime__V1__ExecRequest *in = (const Runtime__V1__ExecRequest *)req;
    daemon_t *d = rpc_daemon(ctx);
    if (streaming_validate_exec(in, err) < 0)
        return -1;
    cleanup_free char *id = NULL;
    if (streaming_lookup_container(d, in->container_id, &id, err) < 0)
        return -1;
    if (!daemon_streaming(d))
        return cri_error_set(err, EAGAIN, "the streaming server is not running");

    streaming_request_t *r = xcalloc(1, sizeof(*r));
    r->kind = STREAMING_EXEC;
    r->container_id = TAKE_PTR(id);
    r->cmd = xcalloc(in->n_cmd + 1, sizeof(char *));
    for (size_t i = 0; i < in->n_cmd; i++)
        r->cmd[i] = xstrdup(in->cmd[i]);
    r->tty = in->tty;
    r->in = in->stdin;
    r->out = in->stdout;
    r->err = in->stderr;
    cleanup_free char *url = NULL;
    if (streaming_server_issue(daemon_streaming(d), r, &url, err) < 0)
        return -1;

    Runtime__V1__ExecResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__exec_response__init(resp);
    resp->url = rpc_strdup(ctx, url);
    *ret_resp = &resp->base;
    return 0;
}
