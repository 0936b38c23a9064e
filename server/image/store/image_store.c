/* The image store object: open/close, lookups and the GC holds of live
 * image_t references.
 *
 * Locking: s->lock is a plain mutex held only for in-memory work and LMDB
 * reads (never for I/O on blobs or the network), so lookups stay fast enough
 * for the gRPC pollers. A lookup reads the record and takes its layer holds
 * under the lock; GC computes what to keep under the same lock, so a layer
 * can never be collected between a lookup finding it and holding it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "conf/conf.h"
#include "server/image/store/store-internal.h"
#include "server/store.h"

char *image_layer_dir(const char *root, const char *chain_id)
{
    const char *hex = strchr(chain_id, ':');
    return xasprintf("%s/layers/%s", root, hex ? hex + 1 : chain_id);
}

static int make_dirs(const char *root, cri_error_t *err)
{
    const char *subs[] = {"blobs/sha256", "blobs/ingest", "layers/tmp"};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        cleanup_free char *p = xasprintf("%s/%s", root, subs[i]);
        if (mkdir_p(p, 0700, err) < 0)
            return -1;
    }
    return 0;
}

int image_store_open(const conf_t *conf, struct store *store, image_store_t **ret, cri_error_t *err)
{
    if (make_dirs(conf->root, err) < 0 || image_gc_sweep_tmp(conf->root, err) < 0)
        return cri_error_wrap(err, "open image store `%s`", conf->root);
    image_store_t *s = xcalloc(1, sizeof(*s));
    s->conf = conf;
    s->store = store;
    s->root = xstrdup(conf->root);
    s->tokens = registry_tokens_new();
    s->holds = json_object();
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->settings = xcalloc(1, sizeof(*s->settings));
    s->settings->refs = 1;
    s->settings->conf = (conf_t *)conf; /* borrowed: never freed by the store */
    image_ref_t *pause = NULL;
    cri_error_t perr = CRI_ERROR_INIT;
    if (conf->image.pause_image[0] && image_ref_parse(conf->image.pause_image, &pause, &perr) == 0)
        s->pause_image = image_ref_string(pause);
    else
        s->pause_image = xstrdup("");
    image_ref_free(pause);
    s->remote = pull_remote_new();
    *ret = s;
    return 0;
}

void image_store_close(image_store_t *s)
{
    if (!s)
        return;
    pull_remote_free(s->remote);
    image_settings_put(s, s->settings);
    registry_tokens_free(s->tokens);
    json_decref(s->holds);
    free(s->root);
    free(s->pause_image);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}

image_settings_t *image_settings_get(image_store_t *s)
{
    pthread_mutex_lock(&s->lock);
    image_settings_t *st = s->settings;
    st->refs++;
    pthread_mutex_unlock(&s->lock);
    return st;
}

void image_settings_put(image_store_t *s, image_settings_t *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&s->lock);
    bool last = --st->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (!last)
        return;
    if (st->owned)
        conf_free(st->conf);
    free(st);
}

void image_store_reconfigure(image_store_t *s, conf_t *conf)
{
    image_settings_t *st = xcalloc(1, sizeof(*st));
    st->refs = 1;
    st->conf = conf;
    st->owned = true;
    pthread_mutex_lock(&s->lock);
    image_settings_t *old = s->settings;
    s->settings = st;
    pthread_mutex_unlock(&s->lock);
    /* cached tokens stay: their key covers the credentials they were granted for */
    image_settings_put(s, old);
}

void image_store_set_in_use_fn(image_store_t *s, image_layer_in_use_fn fn, void *data)
{
    pthread_mutex_lock(&s->lock);
    s->in_use = fn;
    s->in_use_data = data;
    pthread_mutex_unlock(&s->lock);
}

const char *image_store_pause_image(const image_store_t *s)
{
    return s->pause_image;
}

/* Adds delta to the hold count of every layer of img; s->lock held. */
static void holds_add(image_store_t *s, char **chain_ids, size_t n, int delta)
{
    for (size_t i = 0; i < n; i++) {
        json_int_t c = json_integer_value(json_object_get(s->holds, chain_ids[i])) + delta;
        if (c > 0)
            json_object_set_new(s->holds, chain_ids[i], json_integer(c));
        else
            json_object_del(s->holds, chain_ids[i]);
    }
}

image_t *image_ref(image_t *img)
{
    __atomic_add_fetch(&img->refs, 1, __ATOMIC_SEQ_CST);
    return img;
}

void image_unref(image_t *img)
{
    if (!img || __atomic_sub_fetch(&img->refs, 1, __ATOMIC_SEQ_CST) > 0)
        return;
    if (img->store) {
        pthread_mutex_lock(&img->store->lock);
        holds_add(img->store, img->chain_ids, img->n_layers, -1);
        pthread_mutex_unlock(&img->store->lock);
    }
    free(img->id);
    strv_free(img->repo_tags);
    strv_free(img->repo_digests);
    free(img->manifest_digest);
    strv_free(img->layer_dirs);
    strv_free(img->chain_ids);
    free(img->config_json);
    for (size_t i = 0; i < img->n_annotations; i++) {
        free(img->annotation_keys[i]);
        free(img->annotation_values[i]);
    }
    free(img->annotation_keys);
    free(img->annotation_values);
    image_config_clear(&img->config);
    free(img);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Copies the string members of annotations, in key order. */
static void set_annotations(image_t *img, json_t *annotations)
{
    size_t n = json_object_size(annotations);
    img->annotation_keys = xcalloc(n + 1, sizeof(char *));
    img->annotation_values = xcalloc(n + 1, sizeof(char *));
    const char **keys = xcalloc(n + 1, sizeof(char *));
    size_t k = 0;
    const char *key;
    json_t *val;
    json_object_foreach(annotations, key, val)
    {
        if (json_is_string(val))
            keys[k++] = key;
    }
    qsort(keys, k, sizeof(*keys), cmp_str);
    for (size_t i = 0; i < k; i++) {
        img->annotation_keys[i] = xstrdup(keys[i]);
        img->annotation_values[i] =
            xstrdup(json_string_value(json_object_get(annotations, keys[i])));
    }
    img->n_annotations = k;
    free(keys);
}

/* s->lock held by the caller. */
int image_from_rec(image_store_t *s, const image_rec_t *rec, image_t **ret, cri_error_t *err)
{
    image_t *img = xcalloc(1, sizeof(*img));
    img->refs = 1;
    if (image_config_parse(rec->config_json, strlen(rec->config_json), &img->config, NULL, err) <
        0) {
        image_unref(img);
        return cri_error_wrap(err, "image `%s`", rec->id);
    }
    img->id = xstrdup(rec->id);
    img->repo_tags = image_strv_copy(rec->repo_tags);
    img->repo_digests = image_strv_copy(rec->repo_digests);
    img->manifest_digest = xstrdup(rec->manifest_digest);
    img->size = (uint64_t)rec->size;
    img->created_ns = rec->created_ns;
    img->pinned = s->pause_image[0] && image_strv_contains(rec->repo_tags, s->pause_image);
    img->n_layers = rec->n_layers;
    img->layer_dirs = xcalloc(rec->n_layers + 1, sizeof(char *));
    img->chain_ids = xcalloc(rec->n_layers + 1, sizeof(char *));
    for (size_t i = 0; i < rec->n_layers; i++) {
        img->layer_dirs[i] = image_layer_dir(s->root, rec->layers[i].chain_id);
        img->chain_ids[i] = xstrdup(rec->layers[i].chain_id);
    }
    img->config_json = xstrdup(rec->config_json);
    set_annotations(img, rec->annotations);
    holds_add(s, img->chain_ids, img->n_layers, 1);
    img->store = s;
    *ret = img;
    return 0;
}

typedef struct walk_ctx {
    image_rec_fn fn;
    void *data;
} walk_ctx_t;

static int walk_one(const char *key, const void *val, size_t len, void *data, cri_error_t *err)
{
    walk_ctx_t *w = data;
    image_rec_t *rec = NULL;
    if (image_rec_from_json(val, len, &rec, err) < 0)
        return cri_error_wrap(err, "image `%s`", key);
    int r = w->fn(rec, w->data, err);
    image_rec_free(rec);
    return r;
}

int image_store_walk(image_store_t *s, image_rec_fn fn, void *data, cri_error_t *err)
{
    cleanup_store_txn store_txn_t *txn = NULL;
    if (store_txn_begin(s->store, false, &txn, err) < 0)
        return -1;
    walk_ctx_t w = {fn, data};
    return store_foreach(txn, STORE_IMAGES, walk_one, &w, err) < 0 ? -1 : 0;
}
