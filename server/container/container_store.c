/* The container store: every container in memory (refcounted entries behind
 * one rwlock) and its record in STORE_CONTAINERS, written in one LMDB
 * transaction together with the name reservation in STORE_NAMES. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/container/container.h"
#include "server/store.h"

struct container_store {
    pthread_rwlock_t lock;
    container_t **items;
    size_t n, cap;
    struct store *persist;
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
    c->refs = 1;
    return c;
}

container_t *container_ref(container_t *c)
{
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
    return c;
}

void container_unref(container_t *c)
{
    if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
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

void container_set_exited(container_t *c, int64_t finished_at, int exit_code, const char *reason,
                          const char *message)
{
    char *r = xstrdup(reason ? reason : "");
    char *m = xstrdup(message ? message : "");
    pthread_mutex_lock(&c->lock);
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
}

const char *container_label(const container_t *c, const char *key)
{
    for (char **p = c->labels; p[0] && p[1]; p += 2)
        if (strcmp(p[0], key) == 0)
            return p[1];
    return NULL;
}

container_store_t *container_store_new(struct store *persist)
{
    container_store_t *s = xcalloc(1, sizeof(*s));
    pthread_rwlock_init(&s->lock, NULL);
    s->persist = persist;
    return s;
}

void container_store_free(container_store_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        container_unref(s->items[i]);
    free(s->items);
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

int container_store_add(container_store_t *s, container_t *c, cri_error_t *err)
{
    pthread_rwlock_wrlock(&s->lock);
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->items[i]->id, c->id) == 0) {
            pthread_rwlock_unlock(&s->lock);
            return cri_error_set(err, EEXIST, "container `%s` already exists", c->id);
        }
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->items = xrealloc(s->items, s->cap * sizeof(*s->items));
    }
    s->items[s->n++] = container_ref(c);
    pthread_rwlock_unlock(&s->lock);
    return 0;
}

int container_store_get(container_store_t *s, const char *id, container_t **ret, cri_error_t *err)
{
    if (!id || !id[0])
        return cri_error_set(err, EINVAL, "container_id is empty");
    size_t len = strlen(id), matches = 0;
    container_t *found = NULL;
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
        container_ref(found);
    pthread_rwlock_unlock(&s->lock);
    if (matches == 0)
        return cri_error_set(err, ENOENT, "container `%s` not found", id);
    if (matches > 1)
        return cri_error_set(err, EINVAL, "container id prefix `%s` is ambiguous (%zu matches)", id,
                             matches);
    *ret = found;
    return 0;
}

void container_store_remove(container_store_t *s, container_t *c)
{
    container_t *gone = NULL;
    pthread_rwlock_wrlock(&s->lock);
    for (size_t i = 0; i < s->n; i++) {
        if (s->items[i] == c) {
            gone = c;
            memmove(&s->items[i], &s->items[i + 1], (s->n - i - 1) * sizeof(*s->items));
            s->n--;
            break;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    container_unref(gone);
}

void container_store_list(container_store_t *s, const char *sandbox_id, container_t ***ret_list,
                          size_t *ret_n)
{
    pthread_rwlock_rdlock(&s->lock);
    container_t **list = xcalloc(s->n ? s->n : 1, sizeof(*list));
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (!sandbox_id || strcmp(s->items[i]->sandbox_id, sandbox_id) == 0)
            list[n++] = container_ref(s->items[i]);
    pthread_rwlock_unlock(&s->lock);
    *ret_list = list;
    *ret_n = n;
}

void container_list_free(container_t **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        container_unref(list[i]);
    free(list);
}

int container_store_persist(container_store_t *s, container_t *c, bool reserve, cri_error_t *err)
{
    cleanup_free char *json = container_record_dump(c, reserve);
    cleanup_store_txn store_txn_t *txn = NULL;
    if (store_txn_begin(s->persist, true, &txn, err) < 0)
        return -1;
    if (reserve && store_reserve_name(txn, c->name, c->id, err) < 0)
        return -1;
    if (store_put(txn, STORE_CONTAINERS, c->id, json, strlen(json), err) < 0)
        return -1;
    return store_txn_commit(TAKE_PTR(txn), err);
}

int container_store_forget(container_store_t *s, container_t *c, cri_error_t *err)
{
    cleanup_store_txn store_txn_t *txn = NULL;
    if (store_txn_begin(s->persist, true, &txn, err) < 0)
        return -1;
    cri_error_t del_err = CRI_ERROR_INIT;
    if (store_del(txn, STORE_CONTAINERS, c->id, &del_err) < 0 && del_err.status != ENOENT) {
        *err = del_err;
        return -1;
    }
    cleanup_free char *owner = NULL;
    cri_error_t own_err = CRI_ERROR_INIT;
    if (store_name_owner(txn, c->name, &owner, &own_err) == 0 && strcmp(owner, c->id) == 0 &&
        store_release_name(txn, c->name, err) < 0)
        return -1;
    return store_txn_commit(TAKE_PTR(txn), err);
}

static int load_one(const char *key, const void *val, size_t len, void *data, cri_error_t *err)
{
    container_store_t *s = data;
    cleanup_free char *text = xstrndup(val, len);
    cleanup_container container_t *c = NULL;
    bool creating = false;
    cri_error_t perr = CRI_ERROR_INIT;
    if (container_record_parse(text, len, &c, &creating, &perr) < 0)
        return 0;           /* container_recover reports it */
    c->creating = creating; /* container_recover rolls it back */
    cri_error_t aerr = CRI_ERROR_INIT;
    container_store_add(s, c, &aerr);
    return 0;
}

int container_store_load(container_store_t *s, cri_error_t *err)
{
    cleanup_store_txn store_txn_t *txn = NULL;
    if (store_txn_begin(s->persist, false, &txn, err) < 0)
        return -1;
    if (store_foreach(txn, STORE_CONTAINERS, load_one, s, err) < 0)
        return cri_error_wrap(err, "load containers");
    return 0;
}

bool container_layer_in_use(const char *chain_id, void *data)
{
    container_store_t *s = data;
    bool used = false;
    pthread_rwlock_rdlock(&s->lock);
    for (size_t i = 0; i < s->n && !used; i++)
        for (char **p = s->items[i]->chain_ids; *p && !used; p++)
            used = strcmp(*p, chain_id) == 0;
    pthread_rwlock_unlock(&s->lock);
    return used;
}
