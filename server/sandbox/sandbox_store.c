/* The sandbox store: a typed face of the generic object store
 * (server/objstore.h) over STORE_PODS, plus the container callbacks that
 * Stop and Remove run. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/objstore.h"
#include "server/record.h"
#include "server/sandbox/sandbox.h"
#include "server/store.h"

struct sandbox_store {
    objstore_t *objs;
    sandbox_container_hooks_t hooks; /* all NULL until registered */
    void *hooks_data;
};

sandbox_t *sandbox_new(void)
{
    sandbox_t *sb = xcalloc(1, sizeof(*sb));
    char **strs[] = {&sb->id,
                     &sb->name,
                     &sb->meta_name,
                     &sb->meta_uid,
                     &sb->meta_namespace,
                     &sb->runtime_handler,
                     &sb->runtime,
                     &sb->hostname,
                     &sb->log_directory,
                     &sb->cgroup_parent,
                     &sb->netns_path,
                     &sb->userns_path,
                     &sb->ipcns_path,
                     &sb->utsns_path,
                     &sb->cni_network,
                     &sb->spec_json};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        *strs[i] = xstrdup("");
    sb->labels = xcalloc(1, sizeof(char *));
    sb->annotations = xcalloc(1, sizeof(char *));
    sb->ips = xcalloc(1, sizeof(char *));
    sb->state = SANDBOX_STATE_NOTREADY;
    sb->infra = true;
    pthread_mutex_init(&sb->lock, NULL);
    pthread_mutex_init(&sb->op_lock, NULL);
    sb->refs = 1;
    return sb;
}

static void sandbox_free(sandbox_t *sb)
{
    char *strs[] = {sb->id,
                    sb->name,
                    sb->meta_name,
                    sb->meta_uid,
                    sb->meta_namespace,
                    sb->runtime_handler,
                    sb->runtime,
                    sb->hostname,
                    sb->log_directory,
                    sb->cgroup_parent,
                    sb->netns_path,
                    sb->userns_path,
                    sb->ipcns_path,
                    sb->utsns_path,
                    sb->cni_network,
                    sb->spec_json};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        free(strs[i]);
    strv_free(sb->labels);
    strv_free(sb->annotations);
    strv_free(sb->ips);
    pthread_mutex_destroy(&sb->lock);
    pthread_mutex_destroy(&sb->op_lock);
    free(sb);
}

sandbox_state_t sandbox_get_state(sandbox_t *sb, pid_t *ret_pid)
{
    pthread_mutex_lock(&sb->lock);
    sandbox_state_t st = sb->state;
    pid_t pid = sb->pid;
    pthread_mutex_unlock(&sb->lock);
    if (ret_pid)
        *ret_pid = pid;
    return st;
}

void sandbox_set_state(sandbox_t *sb, sandbox_state_t state, pid_t pid)
{
    pthread_mutex_lock(&sb->lock);
    sb->state = state;
    sb->pid = pid;
    pthread_mutex_unlock(&sb->lock);
}

const char *sandbox_label(const sandbox_t *sb, const char *key)
{
    return record_pairs_get(sb->labels, key);
}

OBJSTORE_DEFINE_TYPED(sandbox, sandbox_t, STORE_PODS, "pod sandbox", "sandbox", "pod_sandbox_id")

void sandbox_store_list(sandbox_store_t *s, sandbox_t ***ret_list, size_t *ret_n)
{
    objstore_list(s->objs, NULL, NULL, (void ***)ret_list, ret_n);
}

void sandbox_store_set_container_hooks(sandbox_store_t *s, const sandbox_container_hooks_t *hooks,
                                       void *data)
{
    s->hooks = *hooks;
    s->hooks_data = data;
}

int sandbox_stop_containers(sandbox_store_t *s, sandbox_t *sb, cri_error_t *err)
{
    return s->hooks.stop ? s->hooks.stop(s->hooks_data, sb->id, err) : 0;
}

int sandbox_remove_containers(sandbox_store_t *s, sandbox_t *sb, cri_error_t *err)
{
    return s->hooks.remove ? s->hooks.remove(s->hooks_data, sb->id, err) : 0;
}
