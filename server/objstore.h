/* A generic object store: the refcounted in-memory table behind the sandbox
 * and container stores, written through to one record kind of the LMDB
 * state store (server/store.h).
 *
 * Objects are the caller's own structs; the store reaches them only through
 * an ops table (id, name, ref/unref, record encode/decode). It keeps one
 * reference to each object it holds, in insertion order, behind a rwlock.
 * Handlers take a reference with objstore_get(), drop the lock (the store
 * never holds it across a callback that could block), then do the slow work.
 *
 * Lookup is by full id or unique id prefix (what crictl sends). A record and
 * the reservation of the object's name are written in one LMDB transaction,
 * so a name is never held without its record and the other way round. */
#ifndef CRICKET_SERVER_OBJSTORE_H
#define CRICKET_SERVER_OBJSTORE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "server/store.h"

typedef struct objstore_ops {
    store_kind_t kind;    /* where the records live (STORE_PODS, ...) */
    const char *what;     /* "pod sandbox": messages ("pod sandbox `x` not found") */
    const char *dup_what; /* add of a taken id: "<dup_what> `x` already exists" */
    const char *id_field; /* request field named by the empty-id error: "pod_sandbox_id" */
    const char *(*id)(const void *obj);
    const char *(*name)(const void *obj); /* the name reserved in STORE_NAMES */
    void (*ref)(void *obj);
    void (*unref)(void *obj);
    /* The record text (malloc'd); `creating` marks an unfinished create. */
    char *(*encode)(void *obj, bool creating);
    /* Parses a record into a new object with one reference (the creating mark
     * is kept in the object). EINVAL naming what is wrong. */
    int (*decode)(const char *text, size_t len, void **ret_obj, cri_error_t *err);
} objstore_ops_t;

typedef struct objstore objstore_t;

/* An empty store for objects described by ops (static, not copied), writing
 * through to persist (not owned; may be NULL for a memory-only store, then
 * persist/forget/load are EINVAL). Never fails. */
objstore_t *objstore_new(const objstore_ops_t *ops, store_t *persist);
/* Drops the store's reference to every object and frees it. Accepts NULL. */
void objstore_free(objstore_t *s);

/* Adds obj; the store takes its own reference. EEXIST when the id is taken. */
int objstore_add(objstore_t *s, void *obj, cri_error_t *err);

/* Finds an object by full id or unique id prefix; *ret gets a reference
 * (drop it with ops->unref). A full id wins over longer ids it prefixes.
 * EINVAL for an empty id ("<id_field> is empty") or an ambiguous prefix
 * ("<what> id prefix `x` is ambiguous (N matches)"), ENOENT when none
 * matches ("<what> `x` not found"). */
int objstore_get(objstore_t *s, const char *id, void **ret, cri_error_t *err);

/* Removes obj (by identity) and drops the store's reference. No-op when
 * absent. */
void objstore_remove(objstore_t *s, void *obj);

/* Filter of objstore_list() and objstore_any(); called under the read lock,
 * so it must not call back into the store. */
typedef bool (*objstore_filter_fn)(const void *obj, void *data);

/* A snapshot of the objects that pass filter (every object when filter is
 * NULL), in insertion order, one reference each: free with
 * objstore_list_free(). Never fails. */
void objstore_list(objstore_t *s, objstore_filter_fn filter, void *data, void ***ret_list,
                   size_t *ret_n);
void objstore_list_free(objstore_t *s, void **list, size_t n);

/* True when some object passes filter. */
bool objstore_any(objstore_t *s, objstore_filter_fn filter, void *data);

/* Number of objects in memory. */
size_t objstore_count(objstore_t *s);

/* Writes obj's record. With `reserve`, also reserves its name for its id in
 * the same transaction and marks the record creating (a plain persist clears
 * the mark once the create has finished): EEXIST naming the holder when
 * another object has the name, and then nothing is written. */
int objstore_persist(objstore_t *s, void *obj, bool reserve, cri_error_t *err);

/* Deletes obj's record and releases its name (when obj holds it), in one
 * transaction. A missing record is success. */
int objstore_forget(objstore_t *s, void *obj, cri_error_t *err);

/* Loads every record into memory. A record that does not parse, or whose
 * id is already in memory, is skipped with a warning naming its key and the
 * reason; *ret_skipped (may be NULL) gets how many were. Fails only when
 * the store cannot be read. */
int objstore_load(objstore_t *s, size_t *ret_skipped, cri_error_t *err);

/* The typed face of an object store, written once for every kind. For a
 * prefix p and object type T it defines the ops table (T has `char *id`,
 * `char *name` and `bool creating`; p_record_dump() and p_record_parse()
 * exist) and these functions, declared in the kind's own
 * header (struct p_store has a member `objstore_t *objs`):
 *   p_store_t *p_store_new(store_t *persist);     void p_store_free(p_store_t *s);
 *   int p_store_add(s, T *, err);                 int p_store_get(s, id, T **ret, err);
 *   void p_store_remove(s, T *);                  void p_list_free(T **list, size_t n);
 *   int p_store_persist(s, T *, bool reserve, err); int p_store_forget(s, T *, err);
 *   int p_store_load(s, size_t *ret_skipped, err);
 *   T *p_ref(T *obj);                             void p_unref(T *obj);
 * Their contracts are the objstore_* ones; p_unref() accepts NULL and calls
 * the kind's own `static void p_free(T *)` on the last reference (T has an
 * `int refs`, 1 when new). */
// NOLINTBEGIN(bugprone-macro-parentheses): T is a type name
#define OBJSTORE_DEFINE_TYPED(p, T, KIND, WHAT, DUP_WHAT, ID_FIELD)                       \
    T *p##_ref(T *obj)                                                                    \
    {                                                                                     \
        __atomic_add_fetch(&obj->refs, 1, __ATOMIC_RELAXED);                              \
        return obj;                                                                       \
    }                                                                                     \
    void p##_unref(T *obj)                                                                \
    {                                                                                     \
        if (obj && __atomic_sub_fetch(&obj->refs, 1, __ATOMIC_ACQ_REL) == 0)              \
            p##_free(obj);                                                                \
    }                                                                                     \
    static const char *p##_ops_id(const void *obj)                                        \
    {                                                                                     \
        return ((const T *)obj)->id;                                                      \
    }                                                                                     \
    static const char *p##_ops_name(const void *obj)                                      \
    {                                                                                     \
        return ((const T *)obj)->name;                                                    \
    }                                                                                     \
    static void p##_ops_ref(void *obj)                                                    \
    {                                                                                     \
        p##_ref(obj);                                                                     \
    }                                                                                     \
    static void p##_ops_unref(void *obj)                                                  \
    {                                                                                     \
        p##_unref(obj);                                                                   \
    }                                                                                     \
    static char *p##_ops_encode(void *obj, bool creating)                                 \
    {                                                                                     \
        return p##_record_dump(obj, creating);                                            \
    }                                                                                     \
    static int p##_ops_decode(const char *text, size_t len, void **ret, cri_error_t *err) \
    {                                                                                     \
        T *obj = NULL;                                                                    \
        bool creating = false;                                                            \
        if (p##_record_parse(text, len, &obj, &creating, err) < 0)                        \
            return -1;                                                                    \
        obj->creating = creating; /* recovery rolls it back */                            \
        *ret = obj;                                                                       \
        return 0;                                                                         \
    }                                                                                     \
    static const objstore_ops_t p##_objstore_ops = {                                      \
        .kind = (KIND),                                                                   \
        .what = (WHAT),                                                                   \
        .dup_what = (DUP_WHAT),                                                           \
        .id_field = (ID_FIELD),                                                           \
        .id = p##_ops_id,                                                                 \
        .name = p##_ops_name,                                                             \
        .ref = p##_ops_ref,                                                               \
        .unref = p##_ops_unref,                                                           \
        .encode = p##_ops_encode,                                                         \
        .decode = p##_ops_decode,                                                         \
    };                                                                                    \
    p##_store_t *p##_store_new(store_t *persist)                                          \
    {                                                                                     \
        p##_store_t *s = xcalloc(1, sizeof(*s));                                          \
        s->objs = objstore_new(&p##_objstore_ops, persist);                               \
        return s;                                                                         \
    }                                                                                     \
    void p##_store_free(p##_store_t *s)                                                   \
    {                                                                                     \
        if (!s)                                                                           \
            return;                                                                       \
        objstore_free(s->objs);                                                           \
        free(s);                                                                          \
    }                                                                                     \
    int p##_store_add(p##_store_t *s, T *obj, cri_error_t *err)                           \
    {                                                                                     \
        return objstore_add(s->objs, obj, err);                                           \
    }                                                                                     \
    int p##_store_get(p##_store_t *s, const char *id, T **ret, cri_error_t *err)          \
    {                                                                                     \
        return objstore_get(s->objs, id, (void **)ret, err);                              \
    }                                                                                     \
    void p##_store_remove(p##_store_t *s, T *obj)                                         \
    {                                                                                     \
        objstore_remove(s->objs, obj);                                                    \
    }                                                                                     \
    void p##_list_free(T **list, size_t n)                                                \
    {                                                                                     \
        for (size_t i = 0; i < n; i++)                                                    \
            p##_unref(list[i]);                                                           \
        free(list);                                                                       \
    }                                                                                     \
    int p##_store_persist(p##_store_t *s, T *obj, bool reserve, cri_error_t *err)         \
    {                                                                                     \
        return objstore_persist(s->objs, obj, reserve, err);                              \
    }                                                                                     \
    int p##_store_forget(p##_store_t *s, T *obj, cri_error_t *err)                        \
    {                                                                                     \
        return objstore_forget(s->objs, obj, err);                                        \
    }                                                                                     \
    int p##_store_load(p##_store_t *s, size_t *ret_skipped, cri_error_t *err)             \
    {                                                                                     \
        return objstore_load(s->objs, ret_skipped, err);                                  \
    }
// NOLINTEND(bugprone-macro-parentheses)

#endif
