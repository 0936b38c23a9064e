/* Writes of image records: committing a pull and removing names or images.
 * Each is one LMDB write transaction, so readers see all of it or none. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/image/store/store-internal.h"
#include "server/store.h"

static void image_rec_freep(image_rec_t **r)
{
    image_rec_free(*r);
}
#define cleanup_image_rec __attribute__((cleanup(image_rec_freep)))

static int get_rec(store_txn_t *txn, const char *id, image_rec_t **ret, cri_error_t *err)
{
    cleanup_free char *val = NULL;
    size_t len = 0;
    if (store_get(txn, STORE_IMAGES, id, (void **)&val, &len, err) < 0)
        return -1;
    return image_rec_from_json(val, len, ret, err);
}

static int put_rec(store_txn_t *txn, const image_rec_t *rec, cri_error_t *err)
{
    cleanup_free char *json = image_rec_to_json(rec);
    return store_put(txn, STORE_IMAGES, rec->id, json, strlen(json), err);
}

typedef struct holders {
    char *const *tags;
    const char *skip_id;
    char **keys;
} holders_t;

static int find_holder(const char *key, const void *val, size_t len, void *data, cri_error_t *err)
{
    holders_t *h = data;
    if (strcmp(key, h->skip_id) == 0)
        return 0;
    image_rec_t *rec = NULL;
    if (image_rec_from_json(val, len, &rec, err) < 0)
        return -1;
    for (char *const *t = h->tags; *t; t++)
        if (image_strv_contains(rec->repo_tags, *t))
            image_strv_add(&h->keys, key);
    image_rec_free(rec);
    return 0;
}

/* Takes rec's tags away from every other image (a tag names one image). */
static int move_tags(store_txn_t *txn, const image_rec_t *rec, cri_error_t *err)
{
    holders_t h = {.tags = rec->repo_tags, .skip_id = rec->id, .keys = xcalloc(1, sizeof(char *))};
    cleanup_strv char **keys = NULL;
    int r = store_foreach(txn, STORE_IMAGES, find_holder, &h, err);
    keys = h.keys;
    if (r < 0)
        return -1;
    for (char **k = keys; *k; k++) {
        cleanup_image_rec image_rec_t *other = NULL;
        if (get_rec(txn, *k, &other, err) < 0)
            return -1;
        for (char *const *t = rec->repo_tags; *t; t++)
            image_strv_remove(&other->repo_tags, *t);
        if (put_rec(txn, other, err) < 0)
            return -1;
    }
    return 0;
}

int image_meta_commit(image_store_t *s, image_rec_t *rec, cri_error_t *err)
{
    cleanup_store_txn store_txn_t *txn = NULL;
    if (store_txn_begin(s->store, true, &txn, err) < 0)
        return -1;
    cleanup_image_rec image_rec_t *old = NULL;
    cri_error_t gerr = CRI_ERROR_INIT;
    if (get_rec(txn, rec->id, &old, &gerr) == 0) {
        for (char **t = old->repo_tags; t && *t; t++)
            image_strv_add(&rec->repo_tags, *t);
        for (char **d = old->repo_digests; d && *d; d++)
            image_strv_add(&rec->repo_digests, *d);
        rec->created_ns = old->created_ns;
        if (old->annotations) { /* a new pull adds to and overrides what was stored */
            json_t *merged = json_deep_copy(old->annotations);
            if (rec->annotations)
                json_object_update(merged, rec->annotations);
            json_decref(rec->annotations);
            rec->annotations = merged;
        }
    } else if (gerr.status != ENOENT) {
        *err = gerr;
        return -1;
    }
    if (move_tags(txn, rec, err) < 0 || put_rec(txn, rec, err) < 0)
        return cri_error_wrap(err, "store image `%s`", rec->id);
    return store_txn_commit(TAKE_PTR(txn), err);
}

/* RemoveImage semantics (api.proto: "This call is idempotent, and must not
 * return an error if the image has already been removed"): any name of an
 * image (a tag, its id, a digest) removes the image with all its tags, as
 * critest v1.36 checks ("removing image by one tag should remove all tags",
 * also across registries) and containerd does. */
static int remove_rec(image_store_t *s, const char *id, cri_error_t *err)
{
    cleanup_store_txn store_txn_t *txn = NULL;
    if (store_txn_begin(s->store, true, &txn, err) < 0)
        return -1;
    cleanup_image_rec image_rec_t *rec = NULL;
    cri_error_t gerr = CRI_ERROR_INIT;
    if (get_rec(txn, id, &rec, &gerr) < 0)
        return gerr.status == ENOENT ? 0 : (*err = gerr, -1);
    if (store_del(txn, STORE_IMAGES, id, err) < 0)
        return -1;
    return store_txn_commit(TAKE_PTR(txn), err);
}

int image_store_remove(image_store_t *s, const char *ref, cri_error_t *err)
{
    cleanup_image_rec image_rec_t *rec = NULL;
    cleanup_free char *name = NULL;
    image_match_t how;
    cri_error_t lerr = CRI_ERROR_INIT;
    pthread_mutex_lock(&s->lock);
    int r = image_lookup(s, ref, &rec, &how, &name, &lerr);
    pthread_mutex_unlock(&s->lock);
    if (r < 0) {
        if (lerr.status == ENOENT)
            return 0;
        *err = lerr;
        return -1;
    }
    if (remove_rec(s, rec->id, err) < 0)
        return cri_error_wrap(err, "remove image `%s`", rec->id);
    if (image_store_gc_soon(s, err) < 0)
        return cri_error_wrap(err, "remove image `%s`", rec->id);
    return 0;
}
