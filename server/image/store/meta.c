/* Image records: the JSON kept in LMDB (STORE_IMAGES, key = image id).
 *
 * {"id": "sha256:..", "repo_tags": [..], "repo_digests": [..],
 *  "manifest_digest": "sha256:..", "size": N, "created_ns": N,
 *  "layers": [{"digest", "diff_id", "chain_id", "size"}, ...] (lowest first),
 *  "config": "<the config blob as text>",
 *  "annotations": {..} (OCI index + manifest annotations; absent in records
 *  written before it existed, and when there are none)} */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/image/store/store-internal.h"

size_t image_strv_len(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

bool image_strv_contains(char *const *v, const char *s)
{
    for (size_t i = 0; v && v[i]; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

bool image_strv_add(char ***v, const char *s)
{
    if (image_strv_contains(*v, s))
        return false;
    size_t n = image_strv_len(*v);
    *v = xrealloc(*v, (n + 2) * sizeof(char *));
    (*v)[n] = xstrdup(s);
    (*v)[n + 1] = NULL;
    return true;
}

bool image_strv_remove(char ***v, const char *s)
{
    size_t n = image_strv_len(*v);
    for (size_t i = 0; i < n; i++) {
        if (strcmp((*v)[i], s) != 0)
            continue;
        free((*v)[i]);
        memmove(&(*v)[i], &(*v)[i + 1], (n - i) * sizeof(char *));
        return true;
    }
    return false;
}

char **image_strv_copy(char *const *v)
{
    size_t n = image_strv_len(v);
    char **c = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        c[i] = xstrdup(v[i]);
    return c;
}

void image_rec_free(image_rec_t *r)
{
    if (!r)
        return;
    free(r->id);
    strv_free(r->repo_tags);
    strv_free(r->repo_digests);
    free(r->manifest_digest);
    for (size_t i = 0; i < r->n_layers; i++) {
        free(r->layers[i].digest);
        free(r->layers[i].diff_id);
        free(r->layers[i].chain_id);
    }
    free(r->layers);
    free(r->config_json);
    json_decref(r->annotations);
    free(r);
}

static json_t *strv_json(char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

char *image_rec_to_json(const image_rec_t *r)
{
    json_t *layers = json_array();
    for (size_t i = 0; i < r->n_layers; i++)
        json_array_append_new(
            layers, json_pack("{s:s, s:s, s:s, s:I}", "digest", r->layers[i].digest, "diff_id",
                              r->layers[i].diff_id, "chain_id", r->layers[i].chain_id, "size",
                              (json_int_t)r->layers[i].size));
    json_t *o = json_pack("{s:s, s:o, s:o, s:s, s:I, s:I, s:o, s:s, s:O*}", "id", r->id,
                          "repo_tags", strv_json(r->repo_tags), "repo_digests",
                          strv_json(r->repo_digests), "manifest_digest", r->manifest_digest, "size",
                          (json_int_t)r->size, "created_ns", (json_int_t)r->created_ns, "layers",
                          layers, "config", r->config_json, "annotations", r->annotations);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        abort(); /* jansson fails only on OOM here */
    return s;
}

static char **strv_from(json_t *a)
{
    size_t n = json_array_size(a);
    char **v = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        v[i] = xstrdup(json_string_value(json_array_get(a, i)));
    return v;
}

static int parse_layers(json_t *layers, image_rec_t *r, cri_error_t *err)
{
    r->layers = xcalloc(json_array_size(layers) + 1, sizeof(*r->layers));
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l)
    {
        const char *d, *diff, *chain;
        json_int_t size;
        if (json_unpack(l, "{s:s, s:s, s:s, s:I}", "digest", &d, "diff_id", &diff, "chain_id",
                        &chain, "size", &size) < 0)
            return cri_error_set(err, EIO, "image record `%s`: bad layer %zu", r->id, i);
        r->layers[i].digest = xstrdup(d);
        r->layers[i].diff_id = xstrdup(diff);
        r->layers[i].chain_id = xstrdup(chain);
        r->layers[i].size = size;
        r->n_layers = i + 1;
    }
    return 0;
}

int image_rec_from_json(const char *json, size_t len, image_rec_t **ret, cri_error_t *err)
{
    json_error_t je;
    json_t *o = json_loadb(json, len, 0, &je);
    const char *id, *md, *config;
    json_t *tags, *digests, *layers, *annotations = NULL;
    json_int_t size, created;
    if (!o || json_unpack_ex(o, &je, 0, "{s:s, s:o, s:o, s:s, s:I, s:I, s:o, s:s, s?o}", "id", &id,
                             "repo_tags", &tags, "repo_digests", &digests, "manifest_digest", &md,
                             "size", &size, "created_ns", &created, "layers", &layers, "config",
                             &config, "annotations", &annotations) < 0) {
        json_decref(o);
        return cri_error_set(err, EIO, "corrupt image record: %s", je.text);
    }
    image_rec_t *r = xcalloc(1, sizeof(*r));
    r->id = xstrdup(id);
    r->repo_tags = strv_from(tags);
    r->repo_digests = strv_from(digests);
    r->manifest_digest = xstrdup(md);
    r->size = size;
    r->created_ns = created;
    r->config_json = xstrdup(config);
    r->annotations = json_is_object(annotations) ? json_incref(annotations) : NULL;
    int rc = parse_layers(layers, r, err);
    json_decref(o);
    if (rc < 0) {
        image_rec_free(r);
        return -1;
    }
    *ret = r;
    return 0;
}
