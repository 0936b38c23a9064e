/* The sandbox store: every pod in memory (an array behind a rwlock, each
 * entry refcounted) and its record in STORE_PODS. Handlers take a reference,
 * drop the lock, then do the slow work. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/sandbox/sandbox.h"
#include "server/store.h"

struct sandbox_store {
    pthread_rwlock_t lock;
    sandbox_t **items;
    size_t n, cap;
    store_t *persist;
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
                     &sb->cni_network,
                     &sb->spec_json};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        *strs[i] = xstrdup("");
    sb->labels = xcalloc(1, sizeof(char *));
    sb->annotations = xcalloc(1, sizeof(char *));
    sb->ips = xcalloc(1, sizeof(char *));
    sb->state = SANDBOX_STATE_NOTREADY;
    pthread_mutex_init(&sb->lock, NULL);
    pthread_mutex_init(&sb->op_lock, NULL);
    sb->refs = 1;
    return sb;
}

sandbox_t *sandbox_ref(sandbox_t *sb)
{
    __atomic_add_fetch(&sb->refs, 1, __ATOMIC_RELAXED);
    return sb;
}

void sandbox_unref(sandbox_t *sb)
{
    if (!sb || __atomic_sub_fetch(&sb->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
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
    for (char **p = sb->labels; p[0] && p[1]; p += 2)
        if (strcmp(p[0], key) == 0)
            return p[1];
    return NULL;
}

sandbox_store_t *sandbox_store_new(store_t *persist)
{
    sandbox_store_t *s = xcalloc(1, sizeof(*s));
    pthread_rwlock_init(&s->lock, NULL);
    s->persist = persist;
    return s;
}

void sandbox_store_free(sandbox_store_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        sandbox_unref(s->items[i]);
    free(s->items);
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

int sandbox_store_add(sandbox_store_t *s, sandbox_t *sb, cri_error_t *err)
{
    pthread_rwlock_wrlock(&s->lock);
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->items[i]->id, sb->id) == 0) {
            pthread_rwlock_unlock(&s->lock);
            return cri_error_set(err, EEXIST, "sandbox `%s` already exists", sb->id);
        }
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->items = xrealloc(s->items, s->cap * sizeof(*s->items));
    }
    s->items[s->n++] = sandbox_ref(sb);
    pthread_rwlock_unlock(&s->lock);
    return 0;
}

int sandbox_store_get(sandbox_store_t *s, const char *id, sandbox_t **ret, cri_error_t *err)
{
    if (!id || !id[0])
        return cri_error_set(err, EINVAL, "pod_sandbox_id is empty");
    size_t len = strlen(id);
    sandbox_t *found = NULL;
    size_t matches = 0;
    pthread_rwlock_rdlock(&s->lock);
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->items[i]->id, id) == 0) {
            found = s->items[i];
            matches = 1;
            break;
        }
        if (strncmp(s->items[i]->id, id, len) == 0) {
            found = s->items[i];
            matches++;
        }
    }
    if (matches == 1)
        sandbox_ref(found);
    pthread_rwlock_unlock(&s->lock);
    if (matches == 0)
        return cri_error_set(err, ENOENT, "pod sandbox `%s` not found", id);
    if (matches > 1)
        return cri_error_set(err, EINVAL, "pod sandbox id prefix `%s` is ambiguous (%zu matches)",
                             id, matches);
    *ret = found;
    return 0;
}

void sandbox_store_remove(sandbox_store_t *s, sandbox_t *sb)
{
    sandbox_t *gone = NULL;
    pthread_rwlock_wrlock(&s->lock);
    for (size_t i = 0; i < s->n; i++) {
        if (s->items[i] == sb) {
            gone = sb;
            memmove(&s->items[i], &s->items[i + 1], (s->n - i - 1) * sizeof(*s->items));
            s->n--;
            break;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    sandbox_unref(gone);
}

void sandbox_store_list(sandbox_store_t *s, sandbox_t ***ret_list, size_t *ret_n)
{
    pthread_rwlock_rdlock(&s->lock);
    sandbox_t **list = xcalloc(s->n ? s->n : 1, sizeof(*list));
    for (size_t i = 0; i < s->n; i++)
        list[i] = sandbox_ref(s->items[i]);
    size_t n = s->n;
    pthread_rwlock_unlock(&s->lock);
    *ret_list = list;
    *ret_n = n;
}

void sandbox_list_free(sandbox_t **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sandbox_unref(list[i]);
    free(list);
}

static int persist_record(sandbox_store_t *s, sandbox_t *sb, bool reserve, bool creating,
                          cri_error_t *err)
{
    cleanup_free char *json = sandbox_record_dump(sb, creating);
    cleanup_store_txn store_txn_t *txn = NULL;
    if (store_txn_begin(s->persist, true, &txn, err) < 0)
        return -1;
    if (reserve && store_reserve_name(txn, sb->name, sb->id, err) < 0)
        return -1;
    if (store_put(txn, STORE_PODS, sb->id, json, strlen(json), err) < 0)
        return -1;
    return store_txn_commit(TAKE_PTR(txn), err);
}

int sandbox_store_persist(sandbox_store_t *s, sandbox_t *sb, bool reserve, cri_error_t *err)
{
    /* a reservation comes with the "creating" mark: RunPodSandbox clears it
     * with a plain persist once everything is up */
    return persist_record(s, sb, reserve, reserve, err);
}

int sandbox_store_forget(sandbox_store_t *s, sandbox_t *sb, cri_error_t *err)
{
    cleanup_store_txn store_txn_t *txn = NULL;
    if (store_txn_begin(s->persist, true, &txn, err) < 0)
        return -1;
    cri_error_t del_err = CRI_ERROR_INIT;
    if (store_del(txn, STORE_PODS, sb->id, &del_err) < 0 && del_err.status != ENOENT) {
        *err = del_err;
        return -1;
    }
    cleanup_free char *owner = NULL;
    cri_error_t own_err = CRI_ERROR_INIT;
    if (store_name_owner(txn, sb->name, &owner, &own_err) == 0 && strcmp(owner, sb->id) == 0 &&
        store_release_name(txn, sb->name, err) < 0)
        return -1;
    return store_txn_commit(TAKE_PTR(txn), err);
}
