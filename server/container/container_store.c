/* The container store: a typed face of the generic object store
 * (server/objstore.h) over STORE_CONTAINERS, whose records are written in
 * one LMDB transaction together with the name reservation in STORE_NAMES. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/container/container.h"
#include "server/objstore.h"
#include "server/record.h"
#include "server/store.h"

struct container_store {
    objstore_t *objs;
};

container_t *container_new(void)
{
    container_t *c = xcalloc(1, sizeof(*c));
    c->id = xstrdup("");
    c->name = xstrdup("");
    c->sandbox_id = xstrdup("");
    c->meta_name = xstrdup("");
    c->labels = xcalloc(1, sizeof(char *));
    c->annotations = xcalloc(1, sizeof(char *));
    c->image_name = xstrdup("");
    c->image_user = xstrdup("");
    c->image_ref = xstrdup("");
    c->image_id = xstrdup("");
    c->chain_ids = xcalloc(1, sizeof(char *));
    c->runtime = xstrdup("");
    c->log_path = xstrdup("");
    c->spec_json = xstrdup("");
    c->reason = xstrdup("");
    c->message = xstrdup("");
    c->resources.cpuset_cpus = xstrdup("");
    c->resources.cpuset_mems = xstrdup("");
    c->stop_signal = 15;
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->op_lock, NULL);
    pthread_mutex_init(&c->record_lock, NULL);
    pthread_mutex_init(&c->event_lock, NULL);
    c->refs = 1;
    return c;
}

static void container_free(container_t *c)
{
    free(c->id);
    free(c->name);
    free(c->sandbox_id);
    free(c->meta_name);
    strv_free(c->labels);
    strv_free(c->annotations);
    free(c->image_name);
    free(c->image_user);
    free(c->image_ref);
    free(c->image_id);
    strv_free(c->chain_ids);
    free(c->runtime);
    free(c->log_path);
    for (size_t i = 0; i < c->n_mounts; i++) {
        free(c->mounts[i].container_path);
        free(c->mounts[i].host_path);
        free(c->mounts[i].image);
        free(c->mounts[i].image_ref);
        free(c->mounts[i].image_sub_path);
    }
    free(c->mounts);
    free(c->gids);
    free(c->spec_json);
    free(c->reason);
    free(c->message);
    free(c->resources.cpuset_cpus);
    free(c->resources.cpuset_mems);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->op_lock);
    pthread_mutex_destroy(&c->record_lock);
    pthread_mutex_destroy(&c->event_lock);
    free(c);
}

void container_get_status(container_t *c, container_status_t *ret)
{
    pthread_mutex_lock(&c->lock);
    ret->state = c->state;
    ret->pid = c->pid;
    ret->started_at = c->started_at;
    ret->finished_at = c->finished_at;
    ret->exit_code = c->exit_code;
    ret->reason = xstrdup(c->reason);
    ret->message = xstrdup(c->message);
    pthread_mutex_unlock(&c->lock);
}

void container_status_clear(container_status_t *st)
{
    free(st->reason);
    free(st->message);
    st->reason = st->message = NULL;
}

bool container_set_exited(container_t *c, int64_t finished_at, int exit_code, const char *reason,
                          const char *message)
{
    char *r = xstrdup(reason ? reason : "");
    char *m = xstrdup(message ? message : "");
    pthread_mutex_lock(&c->lock);
    bool changed = c->state != CONTAINER_STATE_EXITED;
    c->state = CONTAINER_STATE_EXITED;
    c->pid = 0;
    c->finished_at = finished_at;
    if (c->started_at > finished_at)
        c->started_at = finished_at;
    c->exit_code = exit_code;
    free(c->reason);
    free(c->message);
    c->reason = r;
    c->message = m;
    pthread_mutex_unlock(&c->lock);
    return changed;
}

const char *container_label(const container_t *c, const char *key)
{
    return record_pairs_get(c->labels, key);
}

OBJSTORE_DEFINE_TYPED(container, container_t, STORE_CONTAINERS, "container", "container",
                      "container_id")

static bool in_pod(const void *obj, void *data)
{
    return strcmp(((const container_t *)obj)->sandbox_id, data) == 0;
}

void container_store_list(container_store_t *s, const char *sandbox_id, container_t ***ret_list,
                          size_t *ret_n)
{
    objstore_list(s->objs, sandbox_id ? in_pod : NULL, (void *)sandbox_id, (void ***)ret_list,
                  ret_n);
}

static bool uses_layer(const void *obj, void *data)
{
    for (char **p = ((const container_t *)obj)->chain_ids; *p; p++)
        if (strcmp(*p, data) == 0)
            return true;
    return false;
}

bool container_layer_in_use(const char *chain_id, void *data)
{
    container_store_t *s = data;
    return objstore_any(s->objs, uses_layer, (void *)chain_id);
}
