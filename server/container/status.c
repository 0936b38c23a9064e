/* ContainerStatus: from memory only (FAST). Unknown → NOT_FOUND (kubelet
 * skips the entry). Name, image and image_ref come from create time so they
 * outlive the image; log_path is absolute; mounts are the CRI mounts (kubelet
 * reads the termination message through them); verbose adds info["info"]
 * with pid, sandboxID and runtimeSpec, like CRI-O and containerd. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/container/container-internal.h"
#include "server/daemon.h"
#include "server/handlers.h"
#include "server/status_replies.h"

static Runtime__V1__Mount **status_mounts(rpc_ctx_t *ctx, const container_t *c)
{
    Runtime__V1__Mount **v = rpc_alloc_array(ctx, c->n_mounts + 1, Runtime__V1__Mount *);
    for (size_t i = 0; i < c->n_mounts; i++) {
        v[i] = rpc_alloc(ctx, sizeof(*v[i]));
        runtime__v1__mount__init(v[i]);
        v[i]->container_path = rpc_strdup(ctx, c->mounts[i].container_path);
        v[i]->host_path = rpc_strdup(ctx, c->mounts[i].host_path);
        v[i]->readonly = c->mounts[i].readonly;
        v[i]->selinux_relabel = c->mounts[i].selinux_relabel;
        v[i]->propagation = (Runtime__V1__MountPropagation)c->mounts[i].propagation;
        if (c->mounts[i].image_ref) {
            /* an image volume: which image, and the id it resolved to */
            Runtime__V1__ImageSpec *img = rpc_alloc(ctx, sizeof(*img));
            runtime__v1__image_spec__init(img);
            img->image = rpc_strdup(ctx, c->mounts[i].image);
            img->image_ref = rpc_strdup(ctx, c->mounts[i].image_ref);
            v[i]->image = img;
            v[i]->image_sub_path = rpc_strdup(ctx, c->mounts[i].image_sub_path);
        }
    }
    return v;
}

static Runtime__V1__ContainerResources *status_resources(rpc_ctx_t *ctx, container_t *c)
{
    Runtime__V1__ContainerResources *res = rpc_alloc(ctx, sizeof(*res));
    runtime__v1__container_resources__init(res);
    Runtime__V1__LinuxContainerResources *l = rpc_alloc(ctx, sizeof(*l));
    runtime__v1__linux_container_resources__init(l);
    pthread_mutex_lock(&c->lock);
    l->cpu_period = c->resources.cpu_period;
    l->cpu_quota = c->resources.cpu_quota;
    l->cpu_shares = c->resources.cpu_shares;
    l->memory_limit_in_bytes = c->resources.memory_limit;
    l->memory_swap_limit_in_bytes = c->resources.memory_swap;
    l->oom_score_adj = c->resources.oom_score_adj;
    l->cpuset_cpus = rpc_strdup(ctx, c->resources.cpuset_cpus);
    l->cpuset_mems = rpc_strdup(ctx, c->resources.cpuset_mems);
    pthread_mutex_unlock(&c->lock);
    res->linux = l;
    return res;
}

static Runtime__V1__ContainerUser *status_user(rpc_ctx_t *ctx, const container_t *c)
{
    Runtime__V1__ContainerUser *u = rpc_alloc(ctx, sizeof(*u));
    runtime__v1__container_user__init(u);
    Runtime__V1__LinuxContainerUser *l = rpc_alloc(ctx, sizeof(*l));
    runtime__v1__linux_container_user__init(l);
    l->uid = c->uid;
    l->gid = c->gid;
    l->supplemental_groups = rpc_alloc_array(ctx, c->n_gids + 1, int64_t);
    for (size_t i = 0; i < c->n_gids; i++)
        l->supplemental_groups[i] = c->gids[i];
    l->n_supplemental_groups = c->n_gids;
    u->linux = l;
    return u;
}

static void status_fill(rpc_ctx_t *ctx, container_t *c, const container_status_t *st,
                        Runtime__V1__ContainerStatus *s)
{
    s->id = rpc_strdup(ctx, c->id);
    s->metadata = container_reply_metadata(ctx, c);
    s->state = (Runtime__V1__ContainerState)st->state;
    s->created_at = c->created_at;
    s->started_at = st->started_at;
    s->finished_at = st->finished_at;
    s->exit_code = st->exit_code;
    s->image = container_reply_image(ctx, c);
    s->image_ref = rpc_strdup(ctx, c->image_ref);
    s->image_id = rpc_strdup(ctx, c->image_id);
    s->reason = rpc_strdup(ctx, st->reason);
    s->message = rpc_strdup(ctx, st->message);
    s->labels = (Runtime__V1__ContainerStatus__LabelsEntry **)rpc_map_entries(
        ctx, &runtime__v1__container_status__labels_entry__descriptor, c->labels, &s->n_labels);
    s->annotations = (Runtime__V1__ContainerStatus__AnnotationsEntry **)rpc_map_entries(
        ctx, &runtime__v1__container_status__annotations_entry__descriptor, c->annotations,
        &s->n_annotations);
    s->mounts = status_mounts(ctx, c);
    s->n_mounts = c->n_mounts;
    s->log_path = rpc_strdup(ctx, c->log_path);
    s->resources = status_resources(ctx, c);
    s->user = status_user(ctx, c);
    s->stop_signal = (Runtime__V1__Signal)container_signal_to_cri(c->stop_signal);
}

Runtime__V1__ContainerStatus *container_reply_status(rpc_ctx_t *ctx, container_t *c)
{
    container_status_t st;
    container_get_status(c, &st);
    Runtime__V1__ContainerStatus *s = rpc_alloc(ctx, sizeof(*s));
    runtime__v1__container_status__init(s);
    status_fill(ctx, c, &st, s);
    container_status_clear(&st);
    return s;
}

/* info["info"]: {"pid", "sandboxID", "runtimeSpec", "privileged"...}. */
static char *status_info(container_t *c, const container_status_t *st)
{
    json_error_t je;
    json_t *spec = c->spec_json[0] ? json_loads(c->spec_json, 0, &je) : NULL;
    json_t *o =
        json_pack("{s:s, s:i, s:s, s:s, s:o}", "id", c->id, "pid", (int)st->pid, "sandboxID",
                  c->sandbox_id, "name", c->name, "runtimeSpec", spec ? spec : json_object());
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        abort(); /* OOM only */
    return text;
}

RPC_HANDLER(handle_container_status)
{
    const Runtime__V1__ContainerStatusRequest *r = (const Runtime__V1__ContainerStatusRequest *)req;
    cleanup_container container_t *c = NULL;
    if (container_store_get(daemon_containers(rpc_daemon(ctx)), r->container_id, &c, err) < 0)
        return -1;
    container_status_t st;
    container_get_status(c, &st);
    Runtime__V1__ContainerStatusResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__container_status_response__init(resp);
    resp->status = rpc_alloc(ctx, sizeof(*resp->status));
    runtime__v1__container_status__init(resp->status);
    status_fill(ctx, c, &st, resp->status);
    if (r->verbose) {
        Runtime__V1__ContainerStatusResponse__InfoEntry *e = rpc_alloc(ctx, sizeof(*e));
        runtime__v1__container_status_response__info_entry__init(e);
        e->key = rpc_strdup(ctx, "info");
        cleanup_free char *info = status_info(c, &st);
        e->value = rpc_strdup(ctx, info);
        resp->info = rpc_alloc_array(ctx, 1, Runtime__V1__ContainerStatusResponse__InfoEntry *);
        resp->info[0] = e;
        resp->n_info = 1;
    }
    container_status_clear(&st);
    *ret_resp = &resp->base;
    return 0;
}
