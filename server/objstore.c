/* The generic object store. See objstore.h for the contract. */
#include "server/objstore.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

struct objstore {
    const objstore_ops_t *ops;
    store_t *persist;
    pthread_rwlock_t lock;
    void **items; /* insertion order, one reference each */
    size_t n, cap;
};

objstore_t *objstore_new(const objstore_ops_t *ops, store_t *persist)
{
    objstore_t *s = xcalloc(1, sizeof(*s));
    s->ops = ops;
    s->persist = persist;
    pthread_rwlock_init(&s->lock, NULL);
    return s;
}

void objstore_free(objstore_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        s->ops->unref(s->items[i]);
    free(s->items);
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

/* Index of the object with exactly this id, or -1. Caller holds the lock. */
static ssize_t find_id(objstore_t *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->ops->id(s->items[i]), id) == 0)
            return (ssize_t)i;
    return -1;
}

int objstore_add(objstore_t *s, void *obj, cri_error_t *err)
{
    const char *id = s->ops->id(obj);
    pthread_rwlock_wrlock(&s->lock);
    if (find_id(s, id) >= 0) {
        pthread_rwlock_unlock(&s->lock);
        return cri_error_set(err, EEXIST, "%s `%s` already exists", s->ops->dup_what, id);
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->items = xrealloc(s->items, s->cap * sizeof(*s->items));
    }
    s->ops->ref(obj);
    s->items[s->n++] = obj;
    pthread_rwlock_unlock(&s->lock);
    return 0;
}

int objstore_get(objstore_t *s, const char *id, void **ret, cri_error_t *err)
{
    if (!id || !id[0])
        return cri_error_set(err, EINVAL, "%s is empty", s->ops->id_field);
    size_t len = strlen(id);
    void *found = NULL;
    size_t matches = 0;
    pthread_rwlock_rdlock(&s->lock);
    for (size_t i = 0; i < s->n; i++) {
        const char *oid = s->ops->id(s->items[i]);
        if (strcmp(oid, id) == 0) {
            found = s->items[i];
            matches = 1;
            break;
        }
        if (strncmp(oid, id, len) == 0) {
            found = s->items[i];
            matches++;
        }
    }
    if (matches == 1)
        s->ops->ref(found);
    pthread_rwlock_unlock(&s->lock);
    if (matches == 0)
        return cri_error_set(err, ENOENT, "%s `%s` not found", s->ops->what, id);
    if (matches > 1)
        return cri_error_set(err, EINVAL, "%s id prefix `%s` is ambiguous (%zu matches)",
                             s->ops->what, id, matches);
    *ret = found;
    return 0;
}

void objstore_remove(objstore_t *s, void *obj)
{
    void *gone = NULL;
    pthread_rwlock_wrlock(&s->lock);
    for (size_t i = 0; i < s->n; i++) {
        if (s->items[i] == obj) {
            gone = obj;
            memmove(&s->items[i], &s->items[i + 1], (s->n - i - 1) * sizeof(*s->items));
            s->n--;
            break;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    if (gone)
        s->ops->unref(gone);
}

void objstore_list(objstore_t *s, objstore_filter_fn filter, void *data, void ***ret_list,
                   size_t *ret_n)
{
    pthread_rwlock_rdlock(&s->lock);
    void **list = xcalloc(s->n ? s->n : 1, sizeof(*list));
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (filter && !filter(s->items[i], data))
            continue;
        s->ops->ref(s->items[i]);
        list[n++] = s->items[i];
    }
    pthread_rwlock_unlock(&s->lock);
    *ret_list = list;
    *ret_n = n;
}

void objstore_list_free(objstore_t *s, void **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s->ops->unref(list[i]);
    free(list);
}

bool objstore_any(objstore_t *s, objstore_filter_fn filter, void *data)
{
    bool found = false;
    pthread_rwlock_rdlock(&s->lock);
    for (size_t i = 0; i < s->n && !found; i++)
        found = filter(s->items[i], data);
    pthread_rwlock_unlock(&s->lock);
    return found;
}

size_t objstore_count(objstore_t *s)
{
    pthread_rwlock_rdlock(&s->lock);
    size_t n = s->n;
    pthread_rwlock_unlock(&s->lock);
    return n;
}

static int need_persist(objstore_t *s, const char *verb, cri_error_t *err)
{
    if (!s->persist)
        return cri_error_set(err, EINVAL, "%s %s records: the store is memory-only", verb,
                             s->ops->what);
    return 0;
}

int objstore_persist(objstore_t *s, void *obj, bool reserve, cri_error_t *err)
{
    if (need_persist(s, "write", err) < 0)
        return -1;
    const char *id = s->ops->id(obj);
    /* encoded before the write transaction: never hold it across work */
    cleanup_free char *text = s->ops->encode(obj, reserve);
    cleanup_store_txn store_txn_t *txn = NULL;
    if (store_txn_begin(s->persist, true, &txn, err) < 0)
        return -1;
    if (reserve && store_reserve_name(txn, s->ops->name(obj), id, err) < 0)
        return -1;
    if (store_put(txn, s->ops->kind, id, text, strlen(text), err) < 0)
        return -1;
    return store_txn_commit(TAKE_PTR(txn), err);
}

int objstore_forget(objstore_t *s, void *obj, cri_error_t *err)
{
    if (need_persist(s, "delete", err) < 0)
        return -1;
    const char *id = s->ops->id(obj), *name = s->ops->name(obj);
    cleanup_store_txn store_txn_t *txn = NULL;
    if (store_txn_begin(s->persist, true, &txn, err) < 0)
        return -1;
    cri_error_t del_err = CRI_ERROR_INIT;
    if (store_del(txn, s->ops->kind, id, &del_err) < 0 && del_err.status != ENOENT) {
        *err = del_err;
        return -1;
    }
    cleanup_free char *owner = NULL;
    cri_error_t own_err = CRI_ERROR_INIT;
    if (name[0] && store_name_owner(txn, name, &owner, &own_err) == 0 && strcmp(owner, id) == 0 &&
        store_release_name(txn, name, err) < 0)
        return -1;
    return store_txn_commit(TAKE_PTR(txn), err);
}

struct load_ctx {
    objstore_t *s;
    size_t skipped;
};

static int load_one(const char *key, const void *val, size_t len, void *data, cri_error_t *err)
{
    struct load_ctx *ctx = data;
    objstore_t *s = ctx->s;
    cleanup_free char *text = xstrndup(val, len);
    void *obj = NULL;
    cri_error_t perr = CRI_ERROR_INIT;
    if (s->ops->decode(text, len, &obj, &perr) < 0) {
        log_warn("load %s record `%s`: %s, skipping it", s->ops->what, key, perr.msg);
        ctx->skipped++;
        return 0;
    }
    if (strcmp(s->ops->id(obj), key) != 0)
        cri_error_set(&perr, EINVAL, "it holds id `%s`", s->ops->id(obj));
    else
        objstore_add(s, obj, &perr);
    s->ops->unref(obj);
    if (perr.status != 0) {
        log_warn("load %s record `%s`: %s, skipping it", s->ops->what, key, perr.msg);
        ctx->skipped++;
    }
    return 0;
}

int objstore_load(objstore_t *s, size_t *ret_skipped, cri_error_t *err)
{
    if (need_persist(s, "load", err) < 0)
        return -1;
    struct load_ctx ctx = {.s = s};
    cleanup_store_txn store_txn_t *txn = NULL;
    if (store_txn_begin(s->persist, false, &txn, err) < 0 ||
        store_foreach(txn, s->ops->kind, load_one, &ctx, err) < 0)
        return cri_error_wrap(err, "load %s records", s->ops->what);
    if (ret_skipped)
        *ret_skipped = ctx.skipped;
    return 0;
}
