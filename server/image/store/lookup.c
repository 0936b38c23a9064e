/* Lookups: reference, id or id prefix -> image record / image_t. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/image/store/store-internal.h"
#include "server/store.h"

#define ID_PREFIX_MIN 3

typedef struct find_ctx {
    char *tag;          /* "name:tag" to find in repo_tags (owned) */
    char *digest;       /* "name@digest" to find in repo_digests (owned) */
    const char *prefix; /* hex id prefix */
    image_rec_t *found;
    image_match_t how;
    int matches;
} find_ctx_t;

static int find_one(image_rec_t *rec, void *data, cri_error_t *err)
{
    find_ctx_t *f = data;
    bool hit = false;
    if (f->digest && image_strv_contains(rec->repo_digests, f->digest)) {
        hit = true;
        f->how = IMAGE_MATCH_DIGEST;
    } else if (f->tag && image_strv_contains(rec->repo_tags, f->tag)) {
        hit = true;
        f->how = IMAGE_MATCH_TAG;
    } else if (f->prefix && str_has_prefix(rec->id + 7, f->prefix)) {
        hit = true;
        f->how = IMAGE_MATCH_ID;
    }
    if (!hit)
        return 0;
    f->matches++;
    if (!f->found) {
        /* steal the record: the walker frees what it passes, so copy */
        cleanup_free char *json = image_rec_to_json(rec);
        if (image_rec_from_json(json, strlen(json), &f->found, err) < 0)
            return -1;
    }
    return f->prefix ? 0 : 1; /* a prefix must be unique: keep counting */
}

static bool is_hex(const char *s)
{
    return *s && strspn(s, "0123456789abcdef") == strlen(s);
}

static int by_id(image_store_t *s, const char *id, image_rec_t **ret, cri_error_t *err)
{
    cleanup_free char *key = xasprintf("sha256:%s", id);
    cleanup_free char *val = NULL;
    size_t len = 0;
    if (store_get1(s->store, STORE_IMAGES, key, (void **)&val, &len, err) < 0)
        return -1;
    return image_rec_from_json(val, len, ret, err);
}

/* A reference form: name:tag, name@digest or name:tag@digest. */
static int by_reference(image_store_t *s, const image_ref_t *r, find_ctx_t *f, cri_error_t *err)
{
    cleanup_free char *name = image_ref_name(r);
    f->tag = r->tag && !r->digest ? xasprintf("%s:%s", name, r->tag) : NULL;
    f->digest = r->digest ? xasprintf("%s@%s", name, r->digest) : NULL;
    return image_store_walk(s, find_one, f, err);
}

static int lookup(image_store_t *s, const char *ref, find_ctx_t *f, cri_error_t *err);

int image_lookup(image_store_t *s, const char *ref, image_rec_t **ret, image_match_t *ret_how,
                 char **ret_name, cri_error_t *err)
{
    find_ctx_t f = {0};
    int r = lookup(s, ref, &f, err);
    if (r == 0) {
        *ret_how = f.how;
        *ret_name = f.how == IMAGE_MATCH_ID    ? xstrdup(f.found->id)
                    : f.how == IMAGE_MATCH_TAG ? xstrdup(f.tag)
                                               : xstrdup(f.digest);
        *ret = f.found;
    }
    free(f.tag);
    free(f.digest);
    return r;
}

/* Fills f->found (the caller's) or fails. */
static int lookup(image_store_t *s, const char *ref, find_ctx_t *f, cri_error_t *err)
{
    if (!ref || !*ref)
        return cri_error_set(err, EINVAL, "image reference is empty");
    const char *hex = str_has_prefix(ref, "sha256:") ? ref + 7 : ref;
    if (strlen(hex) == 64 && is_hex(hex)) {
        f->how = IMAGE_MATCH_ID;
        return by_id(s, hex, &f->found, err);
    }
    cleanup_image_ref image_ref_t *r = NULL;
    cri_error_t perr = CRI_ERROR_INIT;
    bool parsed = image_ref_parse(ref, &r, &perr) == 0;
    if (parsed && by_reference(s, r, f, err) < 0)
        return -1;
    if (!f->found && is_hex(hex) && strlen(hex) >= ID_PREFIX_MIN) {
        find_ctx_t p = {.prefix = hex};
        if (image_store_walk(s, find_one, &p, err) < 0)
            return -1;
        if (p.matches > 1) {
            image_rec_free(p.found);
            return cri_error_set(err, EINVAL, "image id prefix `%s` is ambiguous", hex);
        }
        f->found = p.found;
        f->how = IMAGE_MATCH_ID;
    }
    if (!f->found && !parsed) {
        *err = perr;
        return -1;
    }
    if (!f->found)
        return cri_error_set(err, ENOENT, "image `%s` not found", ref);
    return 0;
}

int image_store_resolve(image_store_t *s, const char *ref, image_t **ret, cri_error_t *err)
{
    image_rec_t *rec = NULL;
    image_match_t how;
    cleanup_free char *name = NULL;
    pthread_mutex_lock(&s->lock);
    int r = image_lookup(s, ref, &rec, &how, &name, err);
    if (r == 0)
        r = image_from_rec(s, rec, ret, err);
    pthread_mutex_unlock(&s->lock);
    image_rec_free(rec);
    return r;
}

typedef struct list_ctx {
    image_store_t *s;
    image_t **items;
    size_t n;
} list_ctx_t;

static int list_one(image_rec_t *rec, void *data, cri_error_t *err)
{
    list_ctx_t *l = data;
    image_t *img = NULL;
    if (image_from_rec(l->s, rec, &img, err) < 0)
        return -1;
    l->items = xrealloc(l->items, (l->n + 1) * sizeof(image_t *));
    l->items[l->n++] = img;
    return 0;
}

void image_list_free(image_t **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        image_unref(list[i]);
    free(list);
}

int image_store_list(image_store_t *s, image_t ***ret, size_t *ret_n, cri_error_t *err)
{
    list_ctx_t l = {.s = s};
    pthread_mutex_lock(&s->lock);
    int r = image_store_walk(s, list_one, &l, err);
    pthread_mutex_unlock(&s->lock);
    if (r < 0) {
        image_list_free(l.items, l.n);
        return -1;
    }
    *ret = l.items;
    *ret_n = l.n;
    return 0;
}
