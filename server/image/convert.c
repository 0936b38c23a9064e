/* image_t -> CRI Image and the verbose ImageStatus info. */
#include <stdlib.h>
#include <string.h>

#include "api/cri/v1/api.pb-c.h"
#include "common/util.h"
#include "server/image/image-internal.h"
#include "server/rpc.h"

static char **arena_strv(rpc_ctx_t *ctx, char *const *v, size_t *ret_n)
{
    size_t n = image_strv_len(v);
    char **out = rpc_alloc_array(ctx, n ? n : 1, char *);
    for (size_t i = 0; i < n; i++)
        out[i] = rpc_strdup(ctx, v[i]);
    *ret_n = n;
    return out;
}

/* USER "1002" -> uid 1002; "www-data" -> username; "1003:grp" -> uid 1003;
 * "www-data:grp" -> username; "" -> neither (kubelet assumes root). */
static void set_user(rpc_ctx_t *ctx, Runtime__V1__Image *out, const char *user)
{
    size_t n = strcspn(user, ":");
    if (n == 0)
        return;
    if (strspn(user, "0123456789") == n && n <= 18) {
        int64_t uid = 0;
        for (size_t i = 0; i < n; i++)
            uid = uid * 10 + (user[i] - '0');
        out->uid = rpc_alloc(ctx, sizeof(*out->uid));
        runtime__v1__int64_value__init(out->uid);
        out->uid->value = uid;
        return;
    }
    char *name = rpc_alloc(ctx, n + 1);
    memcpy(name, user, n);
    out->username = name;
}

/* Image.spec.annotations: the OCI index and manifest annotations. */
static void set_annotations(rpc_ctx_t *ctx, Runtime__V1__ImageSpec *spec, const image_t *img)
{
    size_t n = img->n_annotations;
    if (n == 0)
        return;
    spec->annotations = rpc_alloc_array(ctx, n, Runtime__V1__ImageSpec__AnnotationsEntry *);
    for (size_t i = 0; i < n; i++) {
        Runtime__V1__ImageSpec__AnnotationsEntry *e = rpc_alloc(ctx, sizeof(*e));
        runtime__v1__image_spec__annotations_entry__init(e);
        e->key = rpc_strdup(ctx, img->annotation_keys[i]);
        e->value = rpc_strdup(ctx, img->annotation_values[i]);
        spec->annotations[i] = e;
    }
    spec->n_annotations = n;
}

Runtime__V1__Image *image_to_cri(rpc_ctx_t *ctx, const image_t *img)
{
    Runtime__V1__Image *out = rpc_alloc(ctx, sizeof(*out));
    runtime__v1__image__init(out);
    out->id = rpc_strdup(ctx, img->id);
    out->repo_tags = arena_strv(ctx, img->repo_tags, &out->n_repo_tags);
    out->repo_digests = arena_strv(ctx, img->repo_digests, &out->n_repo_digests);
    out->size = img->size;
    out->pinned = img->pinned;
    set_user(ctx, out, img->config.user);
    out->spec = rpc_alloc(ctx, sizeof(*out->spec));
    runtime__v1__image_spec__init(out->spec);
    out->spec->image = rpc_strdup(ctx, img->id);
    set_annotations(ctx, out->spec, img);
    return out;
}

static json_t *strv_json(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

char *image_verbose_info(rpc_ctx_t *ctx, const image_t *img)
{
    json_error_t je;
    json_t *config = json_loads(img->config_json, 0, &je);
    json_t *o =
        json_pack("{s:s, s:o, s:o, s:s, s:o, s:o, s:b, s:I, s:o*}", "id", img->id, "repoTags",
                  strv_json(img->repo_tags, image_strv_len(img->repo_tags)), "repoDigests",
                  strv_json(img->repo_digests, image_strv_len(img->repo_digests)), "manifestDigest",
                  img->manifest_digest, "chainIDs", strv_json(img->chain_ids, img->n_layers),
                  "layerDirs", strv_json(img->layer_dirs, img->n_layers), "pinned", img->pinned,
                  "createdNs", (json_int_t)img->created_ns, "imageSpec", config);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    char *out = rpc_strdup(ctx, s ? s : "{}");
    free(s);
    return out;
}
