/* Garbage collection of blobs and layers, the crash sweep, and the pull/GC
 * exclusion.
 *
 * GC never runs while a pull does: a pull that found a layer present must
 * be able to rely on it until its record is committed. RemoveImage asks for
 * GC; when pulls are running the last one to end runs it. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "server/image/store/store-internal.h"
#include "server/trash.h"

/* Removes every entry of dir (not dir itself). */
static int empty_dir(const char *dir, cri_error_t *err)
{
    cleanup_dir DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : cri_error_make(err, errno, "open `%s`", dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        cleanup_free char *p = xasprintf("%s/%s", dir, e->d_name);
        if (rm_rf(p, err) < 0)
            return -1;
    }
    return 0;
}

int image_gc_sweep_tmp(const char *root, cri_error_t *err)
{
    cleanup_free char *ingest = xasprintf("%s/blobs/ingest", root);
    cleanup_free char *tmp = xasprintf("%s/layers/tmp", root);
    if (empty_dir(ingest, err) < 0 || empty_dir(tmp, err) < 0)
        return -1;
    return 0;
}

static int keep_rec(image_rec_t *rec, void *data, cri_error_t *err)
{
    json_t *keep = data;
    json_object_set_new(keep, rec->id, json_true());
    for (size_t i = 0; i < rec->n_layers; i++) {
        json_object_set_new(keep, rec->layers[i].digest, json_true());
        json_object_set_new(keep, rec->layers[i].chain_id, json_true());
    }
    return 0;
}

/* Names ("sha256:<entry>") of dir's entries not in keep, or that the in-use
 * callback does not claim. */
static int doomed_entries(image_store_t *s, const char *dir, json_t *keep, bool layers, json_t *out,
                          cri_error_t *err)
{
    cleanup_dir DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : cri_error_make(err, errno, "open `%s`", dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || (layers && strcmp(e->d_name, "tmp") == 0))
            continue;
        cleanup_free char *digest = xasprintf("sha256:%s", e->d_name);
        if (json_object_get(keep, digest) || json_object_get(s->holds, digest))
            continue;
        if (layers && s->in_use && s->in_use(digest, s->in_use_data))
            continue;
        json_array_append_new(out, json_string_nocheck(e->d_name));
    }
    return 0;
}

int image_gc_collect(image_store_t *s, cri_error_t *err)
{
    cleanup_json json_t *keep = json_object();
    cleanup_json json_t *blobs = json_array();
    cleanup_json json_t *layers = json_array();
    cleanup_free char *blob_dir = xasprintf("%s/blobs/sha256", s->root);
    cleanup_free char *layer_dir = xasprintf("%s/layers", s->root);
    pthread_mutex_lock(&s->lock);
    int r = image_store_walk(s, keep_rec, keep, err);
    if (r == 0)
        r = doomed_entries(s, blob_dir, keep, false, blobs, err);
    if (r == 0)
        r = doomed_entries(s, layer_dir, keep, true, layers, err);
    pthread_mutex_unlock(&s->lock);
    if (r < 0)
        return cri_error_wrap(err, "collect image garbage");
    /* into the trash (one rename each; deleted in the background), or
     * removed here without one; a crash leaves either an unreferenced
     * entry, which the next GC finds, or a trash entry */
    size_t i;
    json_t *v;
    json_array_foreach(blobs, i, v)
    {
        cleanup_free char *p = xasprintf("%s/%s", blob_dir, json_string_value(v));
        if (trash_put(s->trash, p, err) < 0)
            return cri_error_wrap(err, "remove blob");
    }
    json_array_foreach(layers, i, v)
    {
        /* renamed within layers/ first: a layer is never half deleted under
         * its own name, even when the trash is on another mount */
        cleanup_free char *p = xasprintf("%s/%s", layer_dir, json_string_value(v));
        cleanup_free char *t = xasprintf("%s/tmp/gc-%s", layer_dir, json_string_value(v));
        if (rename(p, t) < 0 && errno != ENOENT)
            return cri_error_make(err, errno, "move layer `%s` away", p);
        if (trash_put(s->trash, t, err) < 0)
            return cri_error_wrap(err, "remove layer");
    }
    return 0;
}

void image_store_set_trash(image_store_t *s, struct trash *trash)
{
    s->trash = trash;
}

static int gc_run(image_store_t *s, cri_error_t *err)
{
    int r = image_gc_collect(s, err);
    pthread_mutex_lock(&s->lock);
    s->gc_running = false;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return r;
}

int image_store_gc(image_store_t *s, cri_error_t *err)
{
    pthread_mutex_lock(&s->lock);
    while (s->active_pulls > 0 || s->gc_running)
        pthread_cond_wait(&s->cond, &s->lock);
    s->gc_running = true;
    s->gc_pending = false;
    pthread_mutex_unlock(&s->lock);
    return gc_run(s, err);
}

int image_store_gc_soon(image_store_t *s, cri_error_t *err)
{
    pthread_mutex_lock(&s->lock);
    if (s->active_pulls > 0 || s->gc_running) {
        s->gc_pending = true;
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    s->gc_running = true;
    s->gc_pending = false;
    pthread_mutex_unlock(&s->lock);
    return gc_run(s, err);
}

void image_store_pull_begin(image_store_t *s)
{
    pthread_mutex_lock(&s->lock);
    while (s->gc_running)
        pthread_cond_wait(&s->cond, &s->lock);
    s->active_pulls++;
    pthread_mutex_unlock(&s->lock);
}

void image_store_pull_end(image_store_t *s, bool failed)
{
    pthread_mutex_lock(&s->lock);
    if (failed)
        s->gc_pending = true;
    bool run = --s->active_pulls == 0 && s->gc_pending && !s->gc_running;
    if (run) {
        s->gc_pending = false;
        s->gc_running = true;
    }
    pthread_mutex_unlock(&s->lock);
    cri_error_t err = CRI_ERROR_INIT;
    if (run && gc_run(s, &err) < 0)
        log_warn("image garbage collection after pull: %s, ignoring", err.msg);
}
