/* ListPodSandboxStats and StreamPodSandboxStats: the PodSandboxStats of
 * every READY pod passing the filter (id: a prefix; label_selector: every
 * key=value exact). A bad filter (an id that is not a hex prefix of at most
 * 64 digits, an empty label key) is INVALID_ARGUMENT naming the field; no
 * match is an empty list. The stream sends the same entries in chunks. */
#include <errno.h>
#include <string.h>

#include "common/util.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/handlers.h"
#include "server/sandbox/sandbox.h"

int container_validate_pod_stats_filter(const Runtime__V1__PodSandboxStatsFilter *f,
                                        cri_error_t *err)
{
    if (!f)
        return 0;
    size_t len = strlen(f->id);
    if (len > 64 || strspn(f->id, "0123456789abcdef") != len)
        return cri_error_set(err, EINVAL, "filter.id `%.80s`: not a pod id prefix (hex, <= 64)",
                             f->id);
    for (size_t i = 0; i < f->n_label_selector; i++)
        if (!f->label_selector[i]->key[0])
            return cri_error_set(err, EINVAL, "filter.label_selector: empty key");
    return 0;
}

bool container_pod_stats_filter_matches(sandbox_t *sb, const Runtime__V1__PodSandboxStatsFilter *f)
{
    if (!f)
        return true;
    if (f->id[0] && !str_has_prefix(sb->id, f->id))
        return false;
    for (size_t i = 0; i < f->n_label_selector; i++) {
        const char *v = sandbox_label(sb, f->label_selector[i]->key);
        if (!v || strcmp(v, f->label_selector[i]->value) != 0)
            return false;
    }
    return true;
}

RPC_HANDLER(handle_list_pod_sandbox_stats)
{
    const Runtime__V1__ListPodSandboxStatsRequest *r =
        (const Runtime__V1__ListPodSandboxStatsRequest *)req;
    if (container_validate_pod_stats_filter(r->filter, err) < 0)
        return -1;
    sandbox_t **all = NULL;
    size_t n = 0;
    sandbox_store_list(daemon_sandboxes(rpc_daemon(ctx)), &all, &n);
    Runtime__V1__ListPodSandboxStatsResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__list_pod_sandbox_stats_response__init(resp);
    resp->stats = rpc_alloc_array(ctx, n ? n : 1, Runtime__V1__PodSandboxStats *);
    for (size_t i = 0; i < n; i++)
        if (sandbox_get_state(all[i], NULL) == SANDBOX_STATE_READY &&
            container_pod_stats_filter_matches(all[i], r->filter))
            resp->stats[resp->n_stats++] = container_reply_pod_stats(ctx, all[i]);
    sandbox_list_free(all, n);
    *ret_resp = &resp->base;
    return 0;
}

RPC_STREAM_HANDLER(handle_stream_pod_sandbox_stats)
{
    const Runtime__V1__StreamPodSandboxStatsRequest *in =
        (const Runtime__V1__StreamPodSandboxStatsRequest *)req;
    Runtime__V1__ListPodSandboxStatsRequest list =
        RUNTIME__V1__LIST_POD_SANDBOX_STATS_REQUEST__INIT;
    list.filter = in->filter;
    ProtobufCMessage *out = NULL;
    if (handle_list_pod_sandbox_stats(ctx, &list.base, &out, err) < 0)
        return -1;
    const Runtime__V1__ListPodSandboxStatsResponse *all =
        (const Runtime__V1__ListPodSandboxStatsResponse *)out;
    rpc_stream_slices(ctx, &runtime__v1__stream_pod_sandbox_stats_response__descriptor,
                      (void **)all->stats, all->n_stats, ret_msgs, ret_n);
    return 0;
}
