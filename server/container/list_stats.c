/* ListContainerStats: the stats of every running container that passes
 * the filter (id prefix, pod id prefix, labels; no state filter here). */
#include "common/util.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/handlers.h"

RPC_HANDLER(handle_list_container_stats)
{
    const Runtime__V1__ListContainerStatsRequest *r =
        (const Runtime__V1__ListContainerStatsRequest *)req;
    const Runtime__V1__ContainerStatsFilter *sf = r->filter;
    Runtime__V1__ContainerFilter f = RUNTIME__V1__CONTAINER_FILTER__INIT;
    if (sf) {
        f.id = sf->id;
        f.pod_sandbox_id = sf->pod_sandbox_id;
        /* the two label maps have the same entry layout */
        f.n_label_selector = sf->n_label_selector;
        f.label_selector = (Runtime__V1__ContainerFilter__LabelSelectorEntry **)sf->label_selector;
    }
    container_t **all = NULL;
    size_t n = 0;
    container_store_list(daemon_containers(rpc_daemon(ctx)), NULL, &all, &n);
    Runtime__V1__ListContainerStatsResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__list_container_stats_response__init(resp);
    resp->stats = rpc_alloc_array(ctx, n ? n : 1, Runtime__V1__ContainerStats *);
    for (size_t i = 0; i < n; i++) {
        container_status_t st;
        container_get_status(all[i], &st);
        bool running = st.state == CONTAINER_STATE_RUNNING;
        container_status_clear(&st);
        if (running && container_filter_matches(all[i], sf ? &f : NULL))
            resp->stats[resp->n_stats++] = container_reply_stats(ctx, all[i]);
    }
    container_list_free(all, n);
    *ret_resp = &resp->base;
    return 0;
}
