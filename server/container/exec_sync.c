/* ExecSync: run cmd in a running container through a monitor in exec mode
 * and return its stdout, stderr and exit code. The reply must fit one gRPC
 * message (16 MiB, kubelet's limit, both ways), so the two streams share
 * EXEC_REPLY_BUDGET: each keeps its start, a stream under half the budget
 * keeps all of it and the other gets the rest, the bytes after are
 * dropped (the way CRI-O and containerd cap exec output). The process is the container's own
 * (user, groups, env, cwd, capabilities, seccomp, no_new_privs) with the
 * args replaced. A non-zero exit is a successful reply. On timeout the
 * monitor kills the process and the call fails with DEADLINE_EXCEEDED
 * (containerd's answer; kubelet turns it into a probe timeout). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "conmon/conmon.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/handlers.h"
#include "server/validate.h"

/* 16 MiB message limit minus room for the protobuf and gRPC framing */
#define EXEC_REPLY_BUDGET (16 * 1024 * 1024 - 64 * 1024)

int container_exec_process_file(struct daemon *d, container_t *c, char *const *cmd, size_t n_cmd,
                                bool terminal, char **ret_path, cri_error_t *err)
{
    json_error_t je;
    json_t *spec = json_loads(c->spec_json, 0, &je);
    json_t *proc = spec ? json_object_get(spec, "process") : NULL;
    if (!json_is_object(proc)) {
        json_decref(spec);
        return cri_error_set(err, EIO, "container `%s` has no process spec", c->id);
    }
    json_t *args = json_array();
    for (size_t i = 0; i < n_cmd; i++)
        json_array_append_new(args, json_string(cmd[i]));
    json_object_set_new(proc, "args", args);
    json_object_set_new(proc, "terminal", json_boolean(terminal));
    json_object_del(proc, "consoleSize");
    char *text = json_dumps(proc, JSON_COMPACT);
    json_decref(spec);
    if (!text)
        return cri_error_set(err, EINVAL, "cmd is not valid UTF-8");
    cleanup_free char *bundle = container_bundle_dir(d, c->id);
    char rnd[9];
    for (int i = 0; i < 8; i++)
        rnd[i] = "0123456789abcdef"[random() & 15];
    rnd[8] = '\0';
    char *path = xasprintf("%s/exec-%s.json", bundle, rnd);
    int rc = write_file_atomic(path, text, strlen(text), 0600, err);
    free(text);
    if (rc < 0) {
        free(path);
        return -1;
    }
    *ret_path = path;
    return 0;
}

void container_exec_fit_reply(size_t budget, size_t *out_len, size_t *err_len)
{
    if (*out_len + *err_len <= budget)
        return;
    size_t half = budget / 2;
    if (*out_len <= half)
        *err_len = budget - *out_len;
    else if (*err_len <= half)
        *out_len = budget - *err_len;
    else
        *out_len = *err_len = half;
}

static ProtobufCBinaryData arena_bytes(rpc_ctx_t *ctx, const char *data, size_t len)
{
    ProtobufCBinaryData b = {len, NULL};
    if (len) {
        b.data = rpc_alloc(ctx, len);
        memcpy(b.data, data, len);
    }
    return b;
}

int container_validate_exec_sync(const Runtime__V1__ExecSyncRequest *r, cri_error_t *err)
{
    if (r->n_cmd == 0 || !r->cmd[0][0])
        return cri_error_set(err, EINVAL, "cmd is empty");
    if (validate_strv("cmd", r->cmd, r->n_cmd, VALIDATE_MAX_ARGV, VALIDATE_MAX_ARGV_BYTES, err) < 0)
        return -1;
    if (r->timeout < 0)
        return cri_error_set(err, EINVAL, "timeout %lld is negative", (long long)r->timeout);
    return 0;
}

RPC_HANDLER(handle_exec_sync)
{
    const Runtime__V1__ExecSyncRequest *r = (const Runtime__V1__ExecSyncRequest *)req;
    daemon_t *d = rpc_daemon(ctx);
    if (container_validate_exec_sync(r, err) < 0)
        return -1;
    cleanup_container container_t *c = NULL;
    if (container_get_running(d, r->container_id, &c, err) < 0)
        return -1;
    daemon_runtime_t *rt = daemon_runtime(d, c->runtime);
    if (!rt)
        return cri_error_set(err, EINVAL, "runtime handler `%s` is not configured", c->runtime);
    cleanup_free char *path = NULL;
    if (container_exec_process_file(d, c, r->cmd, r->n_cmd, false, &path, err) < 0)
        return cri_error_wrap(err, "exec in `%s`", c->id);
    conmon_exec_opts_t opts = {.id = c->id,
                               .process_path = path,
                               .timeout_s = r->timeout > 86400 ? 86400 : (int)r->timeout,
                               .output_cap = EXEC_REPLY_BUDGET};
    cleanup_conmon_exec_result conmon_exec_result_t *res = NULL;
    int rc = daemon_conmon_ops(d)->exec_sync(&rt->conmon, &opts, &res, err);
    unlink(path);
    if (rc < 0)
        return cri_error_wrap(err, "exec in `%s`", c->id);
    if (res->timed_out)
        return cri_error_set(err, ETIMEDOUT, "command timed out after %lld s (killed)",
                             (long long)r->timeout);
    Runtime__V1__ExecSyncResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__exec_sync_response__init(resp);
    size_t out_len = res->out_len, err_len = res->err_len;
    container_exec_fit_reply(EXEC_REPLY_BUDGET, &out_len, &err_len);
    resp->stdout = arena_bytes(ctx, res->out, out_len);
    resp->stderr = arena_bytes(ctx, res->err, err_len);
    resp->exit_code = res->exit_code;
    *ret_resp = &resp->base;
    return 0;
}
