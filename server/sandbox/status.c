/* PodSandboxStatus: the pod as stored in memory (FAST: no runc, no disk).
 * Unknown id -> NOT_FOUND (kubelet skips the pod). Echoes metadata incl.
 * attempt, labels, annotations, runtime handler and the namespace options
 * (kubelet recreates a pod whose network mode reads differently); network
 * ip + additional_ips; verbose adds info["info"], a JSON object with the
 * infra pid (0 without one), whether there is an infra ("infra"), the
 * runtime spec, the netns, ipc and uts pins, the RunPodSandbox timings and,
 * after an UpdatePodSandboxResources, the pod's "resources" and "overhead". */
#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "server/daemon.h"
#include "server/handlers.h"
#include "server/sandbox/sandbox-internal.h"
#include "server/status_replies.h"

static Runtime__V1__PodSandboxNetworkStatus *status_network(rpc_ctx_t *ctx, const sandbox_t *sb)
{
    Runtime__V1__PodSandboxNetworkStatus *net = rpc_alloc(ctx, sizeof(*net));
    runtime__v1__pod_sandbox_network_status__init(net);
    size_t n = 0;
    while (sb->ips[n])
        n++;
    net->ip = rpc_strdup(ctx, n ? sb->ips[0] : "");
    net->additional_ips = rpc_alloc_array(ctx, n ? n : 1, Runtime__V1__PodIP *);
    for (size_t i = 1; i < n; i++) {
        Runtime__V1__PodIP *ip = rpc_alloc(ctx, sizeof(*ip));
        runtime__v1__pod_ip__init(ip);
        ip->ip = rpc_strdup(ctx, sb->ips[i]);
        net->additional_ips[net->n_additional_ips++] = ip;
    }
    return net;
}

static Runtime__V1__IDMapping **status_idmap(rpc_ctx_t *ctx, const uint32_t map[3])
{
    Runtime__V1__IDMapping **v = rpc_alloc_array(ctx, 1, Runtime__V1__IDMapping *);
    v[0] = rpc_alloc(ctx, sizeof(**v));
    runtime__v1__idmapping__init(v[0]);
    v[0]->container_id = map[0];
    v[0]->host_id = map[1];
    v[0]->length = map[2];
    return v;
}

/* NODE for the host's user namespace; POD with the pod's ranges. */
static Runtime__V1__UserNamespace *status_userns(rpc_ctx_t *ctx, const sandbox_t *sb)
{
    Runtime__V1__UserNamespace *u = rpc_alloc(ctx, sizeof(*u));
    runtime__v1__user_namespace__init(u);
    u->mode = RUNTIME__V1__NAMESPACE_MODE__NODE;
    if (!sb->userns_path[0])
        return u;
    u->mode = RUNTIME__V1__NAMESPACE_MODE__POD;
    u->uids = status_idmap(ctx, sb->uid_map);
    u->n_uids = 1;
    u->gids = status_idmap(ctx, sb->gid_map);
    u->n_gids = 1;
    return u;
}

static Runtime__V1__LinuxPodSandboxStatus *status_linux(rpc_ctx_t *ctx, const sandbox_t *sb)
{
    Runtime__V1__NamespaceOption *opt = rpc_alloc(ctx, sizeof(*opt));
    runtime__v1__namespace_option__init(opt);
    opt->network = (Runtime__V1__NamespaceMode)sb->ns_network;
    opt->pid = (Runtime__V1__NamespaceMode)sb->ns_pid;
    opt->ipc = (Runtime__V1__NamespaceMode)sb->ns_ipc;
    opt->userns_options = status_userns(ctx, sb);
    Runtime__V1__Namespace *ns = rpc_alloc(ctx, sizeof(*ns));
    runtime__v1__namespace__init(ns);
    ns->options = opt;
    Runtime__V1__LinuxPodSandboxStatus *lx = rpc_alloc(ctx, sizeof(*lx));
    runtime__v1__linux_pod_sandbox_status__init(lx);
    lx->namespaces = ns;
    return lx;
}

static char *status_info(rpc_ctx_t *ctx, sandbox_t *sb, pid_t pid)
{
    json_t *spec = NULL;
    if (sb->spec_json[0])
        spec = json_loads(sb->spec_json, 0, NULL);
    const sandbox_timings_t *t = &sb->timings;
    json_t *info = json_pack(
        "{s:i, s:b, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:I, s:I, s:I, s:I, s:I}}", "pid",
        (int)pid, "infra", sb->infra, "runtimeSpec", spec ? spec : json_null(), "netns",
        sb->netns_path, "ipcns", sb->ipcns_path, "utsns", sb->utsns_path, "cniNetwork",
        sb->cni_network, "runtime", sb->runtime, "image",
        sb->infra ? "cricket-pause (built-in)" : "", "timings", "netnsNs", (json_int_t)t->netns_ns,
        "cniNs", (json_int_t)t->cni_ns, "infraNs", (json_int_t)t->infra_ns, "filesNs",
        (json_int_t)t->files_ns, "totalNs", (json_int_t)t->total_ns);
    pthread_mutex_lock(&sb->lock);
    if (info && sb->resources_set) {
        json_object_set_new(info, "resources", sandbox_limits_to_json(&sb->resources));
        json_object_set_new(info, "overhead", sandbox_limits_to_json(&sb->overhead));
    }
    pthread_mutex_unlock(&sb->lock);
    cleanup_free char *text = info ? json_dumps(info, JSON_COMPACT) : NULL;
    json_decref(info);
    return rpc_strdup(ctx, text ? text : "{}");
}

static Runtime__V1__PodSandboxStatus *status_build(rpc_ctx_t *ctx, sandbox_t *sb, pid_t *ret_pid)
{
    Runtime__V1__PodSandboxStatus *st = rpc_alloc(ctx, sizeof(*st));
    runtime__v1__pod_sandbox_status__init(st);
    st->id = rpc_strdup(ctx, sb->id);
    st->metadata = sandbox_reply_metadata(ctx, sb);
    st->state = (Runtime__V1__PodSandboxState)sandbox_get_state(sb, ret_pid);
    st->created_at = sb->created_at;
    st->network = status_network(ctx, sb);
    st->linux = status_linux(ctx, sb);
    st->labels = (Runtime__V1__PodSandboxStatus__LabelsEntry **)rpc_map_entries(
        ctx, &runtime__v1__pod_sandbox_status__labels_entry__descriptor, sb->labels, &st->n_labels);
    st->annotations = (Runtime__V1__PodSandboxStatus__AnnotationsEntry **)rpc_map_entries(
        ctx, &runtime__v1__pod_sandbox_status__annotations_entry__descriptor, sb->annotations,
        &st->n_annotations);
    st->runtime_handler = rpc_strdup(ctx, sb->runtime_handler);
    return st;
}

Runtime__V1__PodSandboxStatus *sandbox_reply_status(rpc_ctx_t *ctx, sandbox_t *sb)
{
    pid_t pid = 0;
    return status_build(ctx, sb, &pid);
}

RPC_HANDLER(handle_pod_sandbox_status)
{
    const Runtime__V1__PodSandboxStatusRequest *r =
        (const Runtime__V1__PodSandboxStatusRequest *)req;
    cleanup_sandbox sandbox_t *sb = NULL;
    if (sandbox_store_get(daemon_sandboxes(rpc_daemon(ctx)), r->pod_sandbox_id, &sb, err) < 0)
        return -1;
    Runtime__V1__PodSandboxStatusResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__pod_sandbox_status_response__init(resp);
    pid_t pid = 0;
    resp->status = status_build(ctx, sb, &pid);
    if (r->verbose) {
        Runtime__V1__PodSandboxStatusResponse__InfoEntry *e = rpc_alloc(ctx, sizeof(*e));
        runtime__v1__pod_sandbox_status_response__info_entry__init(e);
        e->key = "info";
        e->value = status_info(ctx, sb, pid);
        resp->info = rpc_alloc_array(ctx, 1, Runtime__V1__PodSandboxStatusResponse__InfoEntry *);
        resp->info[0] = e;
        resp->n_info = 1;
    }
    *ret_resp = &resp->base;
    return 0;
}
