/* ListPodSandbox: every pod in memory (FAST), filtered by the AND of id
 * (unique or not: a prefix), state (only when the wrapper is set: READY is
 * 0) and label selector (every key=value exact). No match is an empty list. */
#include <errno.h>
#include <string.h>

#include "common/util.h"
#include "server/daemon.h"
#include "server/handlers.h"
#include "server/sandbox/sandbox-internal.h"

static bool list_matches(sandbox_t *sb, const Runtime__V1__PodSandboxFilter *f)
{
    if (!f)
        return true;
    if (f->id[0] && !str_has_prefix(sb->id, f->id))
        return false;
    if (f->state && (int)sandbox_get_state(sb, NULL) != (int)f->state->state)
        return false;
    for (size_t i = 0; i < f->n_label_selector; i++) {
        const char *v = sandbox_label(sb, f->label_selector[i]->key);
        if (!v || strcmp(v, f->label_selector[i]->value) != 0)
            return false;
    }
    return true;
}

Runtime__V1__PodSandboxMetadata *sandbox_reply_metadata(rpc_ctx_t *ctx, const sandbox_t *sb)
{
    Runtime__V1__PodSandboxMetadata *m = rpc_alloc(ctx, sizeof(*m));
    runtime__v1__pod_sandbox_metadata__init(m);
    m->name = rpc_strdup(ctx, sb->meta_name);
    m->uid = rpc_strdup(ctx, sb->meta_uid);
    m->namespace_ = rpc_strdup(ctx, sb->meta_namespace);
    m->attempt = sb->attempt;
    return m;
}

static Runtime__V1__PodSandbox *list_item(rpc_ctx_t *ctx, sandbox_t *sb)
{
    Runtime__V1__PodSandbox *p = rpc_alloc(ctx, sizeof(*p));
    runtime__v1__pod_sandbox__init(p);
    p->id = rpc_strdup(ctx, sb->id);
    p->metadata = sandbox_reply_metadata(ctx, sb);
    p->state = (Runtime__V1__PodSandboxState)sandbox_get_state(sb, NULL);
    p->created_at = sb->created_at;
    p->labels = (Runtime__V1__PodSandbox__LabelsEntry **)rpc_map_entries(
        ctx, &runtime__v1__pod_sandbox__labels_entry__descriptor, sb->labels, &p->n_labels);
    p->annotations = (Runtime__V1__PodSandbox__AnnotationsEntry **)rpc_map_entries(
        ctx, &runtime__v1__pod_sandbox__annotations_entry__descriptor, sb->annotations,
        &p->n_annotations);
    p->runtime_handler = rpc_strdup(ctx, sb->runtime_handler);
    return p;
}

RPC_HANDLER(handle_list_pod_sandbox)
{
    const Runtime__V1__ListPodSandboxRequest *r = (const Runtime__V1__ListPodSandboxRequest *)req;
    const Runtime__V1__PodSandboxFilter *f = r->filter;
    if (f && f->state &&
        (f->state->state < RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY ||
         f->state->state > RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY))
        return cri_error_set(err, EINVAL, "filter.state.state: invalid %d", (int)f->state->state);
    sandbox_t **all = NULL;
    size_t n = 0;
    sandbox_store_list(daemon_sandboxes(rpc_daemon(ctx)), &all, &n);
    Runtime__V1__ListPodSandboxResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__list_pod_sandbox_response__init(resp);
    resp->items = rpc_alloc_array(ctx, n ? n : 1, Runtime__V1__PodSandbox *);
    for (size_t i = 0; i < n; i++)
        if (list_matches(all[i], f))
            resp->items[resp->n_items++] = list_item(ctx, all[i]);
    sandbox_list_free(all, n);
    *ret_resp = &resp->base;
    return 0;
}
