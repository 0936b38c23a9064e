/* ListContainers: every container in memory (FAST: no runc, no disk),
 * filtered by the AND of id (prefix), state (only when the wrapper is set:
 * CREATED is 0), pod_sandbox_id (prefix, as containerd) and label selector
 * (every key=value exact). No match is an empty list. Every item has
 * metadata and image: kubelet drops items without them. */
#include <errno.h>
#include <string.h>

#include "common/util.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/handlers.h"

Runtime__V1__ContainerMetadata *container_reply_metadata(rpc_ctx_t *ctx, const container_t *c)
{
    Runtime__V1__ContainerMetadata *m = rpc_alloc(ctx, sizeof(*m));
    runtime__v1__container_metadata__init(m);
    m->name = rpc_strdup(ctx, c->meta_name);
    m->attempt = c->attempt;
    return m;
}

Runtime__V1__ImageSpec *container_reply_image(rpc_ctx_t *ctx, const container_t *c)
{
    Runtime__V1__ImageSpec *i = rpc_alloc(ctx, sizeof(*i));
    runtime__v1__image_spec__init(i);
    i->image = rpc_strdup(ctx, c->image_name);
    i->user_specified_image = rpc_strdup(ctx, c->image_user);
    return i;
}

bool container_filter_matches(container_t *c, const Runtime__V1__ContainerFilter *f)
{
    if (!f)
        return true;
    if (f->id[0] && !str_has_prefix(c->id, f->id))
        return false;
    if (f->pod_sandbox_id[0] && !str_has_prefix(c->sandbox_id, f->pod_sandbox_id))
        return false;
    if (f->state) {
        container_status_t st;
        container_get_status(c, &st);
        bool same = (int)st.state == (int)f->state->state;
        container_status_clear(&st);
        if (!same)
            return false;
    }
    for (size_t i = 0; i < f->n_label_selector; i++) {
        const char *v = container_label(c, f->label_selector[i]->key);
        if (!v || strcmp(v, f->label_selector[i]->value) != 0)
            return false;
    }
    return true;
}

static Runtime__V1__Container *list_item(rpc_ctx_t *ctx, container_t *c)
{
    Runtime__V1__Container *p = rpc_alloc(ctx, sizeof(*p));
    runtime__v1__container__init(p);
    p->id = rpc_strdup(ctx, c->id);
    p->pod_sandbox_id = rpc_strdup(ctx, c->sandbox_id);
    p->metadata = container_reply_metadata(ctx, c);
    p->image = container_reply_image(ctx, c);
    p->image_ref = rpc_strdup(ctx, c->image_ref);
    p->image_id = rpc_strdup(ctx, c->image_id);
    container_status_t st;
    container_get_status(c, &st);
    p->state = (Runtime__V1__ContainerState)st.state;
    container_status_clear(&st);
    p->created_at = c->created_at;
    p->labels = (Runtime__V1__Container__LabelsEntry **)rpc_map_entries(
        ctx, &runtime__v1__container__labels_entry__descriptor, c->labels, &p->n_labels);
    p->annotations = (Runtime__V1__Container__AnnotationsEntry **)rpc_map_entries(
        ctx, &runtime__v1__container__annotations_entry__descriptor, c->annotations,
        &p->n_annotations);
    return p;
}

RPC_HANDLER(handle_list_containers)
{
    const Runtime__V1__ListContainersRequest *r = (const Runtime__V1__ListContainersRequest *)req;
    const Runtime__V1__ContainerFilter *f = r->filter;
    if (f && f->state &&
        (f->state->state < RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED ||
         f->state->state > RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN))
        return cri_error_set(err, EINVAL, "filter.state.state: invalid %d", (int)f->state->state);
    container_t **all = NULL;
    size_t n = 0;
    container_store_list(daemon_containers(rpc_daemon(ctx)), NULL, &all, &n);
    Runtime__V1__ListContainersResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__list_containers_response__init(resp);
    resp->containers = rpc_alloc_array(ctx, n ? n : 1, Runtime__V1__Container *);
    for (size_t i = 0; i < n; i++)
        if (container_filter_matches(all[i], f))
            resp->containers[resp->n_containers++] = list_item(ctx, all[i]);
    container_list_free(all, n);
    *ret_resp = &resp->base;
    return 0;
}
