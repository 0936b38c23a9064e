/* ExecSync: run cmd in a running container and return its stdout, stderr
 * and exit code. Nothing is streamed, so no monitor is involved: a worker
 * thread runs `runtime exec` in the foreground with pipes (oci/). The reply
 * must fit one gRPC message (16 MiB, kubelet's limit, both ways), so the
 * two streams share EXEC_REPLY_BUDGET: each keeps its start, a stream under
 * half the budget keeps all of it and the other gets the rest, the bytes
 * after are dropped (the way CRI-O and containerd cap exec output). The
 * process is the container's own (user, groups, env, cwd, capabilities,
 * seccomp, no_new_privs) with the args replaced. A non-zero exit is a
 * successful reply. On timeout the process is killed and the call fails
 * with DEADLINE_EXCEEDED (containerd's answer; kubelet turns it into a
 * probe timeout). A container whose monitor died is refused
 * (FAILED_PRECONDITION, container_get_running()), as Exec and Attach are. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "oci/oci.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/handlers.h"
#include "server/validate.h"

/* 16 MiB message limit minus room for the protobuf and gRPC framing */
#define EXEC_REPLY_BUDGET (16 * 1024 * 1024 - 64 * 1024)

/* c's process object with args = cmd, as JSON text (malloc'd). */
static int exec_process_json(container_t *c, char *const *cmd, size_t n_cmd, bool terminal,
                             char **ret_text, cri_error_t *err)
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
    *ret_text = text;
    return 0;
}

int container_exec_process_file(struct daemon *d, container_t *c, char *const *cmd, size_t n_cmd,
                                bool terminal, char **ret_path, cri_error_t *err)
{
    cleanup_free char *text = NULL;
    if (exec_process_json(c, cmd, n_cmd, terminal, &text, err) < 0)
        return -1;
    cleanup_free char *bundle = container_bundle_dir(d, c->id);
    char rnd[9];
    for (int i = 0; i < 8; i++)
        rnd[i] = "0123456789abcdef"[random() & 15];
    rnd[8] = '\0';
    cleanup_free char *path = xasprintf("%s/exec-%s.json", bundle, rnd);
    /* read once by the runtime, then unlinked; in the runroot, which a
     * reboot empties: no rename, no fsync */
    cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write_all(fd, text, strlen(text)) < 0) {
        cri_error_make(err, errno, "write `%s`", path);
        if (fd >= 0)
            unlink(path);
        return -1;
    }
    *ret_path = TAKE_PTR(path);
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
    cleanup_free char *proc = NULL;
    if (exec_process_json(c, r->cmd, r->n_cmd, false, &proc, err) < 0)
        return cri_error_wrap(err, "exec in `%s`", c->id);
    int timeout_s = r->timeout > 86400 ? 86400 : (int)r->timeout;
    oci_exec_sync_opts_t opts = {
        .process_json = proc, .timeout_ms = timeout_s * 1000, .output_cap = EXEC_REPLY_BUDGET};
    oci_exec_sync_result_t res = {0};
    if (oci_runtime_exec_sync(rt->oci, c->id, &opts, &res, err) < 0) {
        if (err->status == ETIMEDOUT)
            return cri_error_set(err, ETIMEDOUT, "command timed out after %lld s (killed)",
                                 (long long)r->timeout);
        return cri_error_wrap(err, "exec in `%s`", c->id);
    }
    Runtime__V1__ExecSyncResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__exec_sync_response__init(resp);
    size_t out_len = res.out_len, err_len = res.err_len;
    container_exec_fit_reply(EXEC_REPLY_BUDGET, &out_len, &err_len);
    resp->stdout = arena_bytes(ctx, res.out, out_len);
    resp->stderr = arena_bytes(ctx, res.err, err_len);
    resp->exit_code = res.exit_code;
    oci_exec_sync_result_clear(&res);
    *ret_resp = &resp->base;
    return 0;
}
