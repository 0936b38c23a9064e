/* Manifests, indexes and image configs (jansson).
 *
 * Accepted: Docker schema2 manifest and manifest list, OCI image manifest and
 * index. Docker schema1 is refused (it has no config blob, so no image id). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/image/store/store-internal.h"

#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_V1 "application/vnd.docker.distribution.manifest.v1"

const char *const manifest_accept =
    MT_OCI_INDEX ", " MT_DOCKER_LIST ", " MT_OCI_MANIFEST ", " MT_DOCKER_MANIFEST;

void manifest_free(manifest_t *m)
{
    if (!m)
        return;
    free(m->config.media_type);
    free(m->config.digest);
    for (size_t i = 0; i < m->n_layers; i++) {
        free(m->layers[i].media_type);
        free(m->layers[i].digest);
    }
    free(m->layers);
    json_decref(m->annotations);
    free(m);
}

static int parse_desc(json_t *j, const char *what, manifest_desc_t *d, cri_error_t *err)
{
    const char *mt = "", *digest = NULL;
    json_int_t size = -1;
    json_error_t je;
    if (json_unpack_ex(j, &je, 0, "{s?s, s:s, s:I}", "mediaType", &mt, "digest", &digest, "size",
                       &size) < 0)
        return cri_error_set(err, EBADMSG, "manifest %s: %s", what, je.text);
    if (!image_digest_valid(digest))
        return cri_error_set(err, EBADMSG, "manifest %s: unsupported digest `%s`", what, digest);
    if (size < 0)
        return cri_error_set(err, EBADMSG, "manifest %s: negative size", what);
    d->media_type = xstrdup(mt);
    d->digest = xstrdup(digest);
    d->size = size;
    return 0;
}

static int parse_image_manifest(json_t *root, manifest_t *m, cri_error_t *err)
{
    json_t *config = json_object_get(root, "config");
    json_t *layers = json_object_get(root, "layers");
    if (!json_is_object(config) || !json_is_array(layers))
        return cri_error_set(err, EBADMSG, "manifest has no config or layers");
    if (parse_desc(config, "config", &m->config, err) < 0)
        return -1;
    m->layers = xcalloc(json_array_size(layers) + 1, sizeof(*m->layers));
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l)
    {
        if (parse_desc(l, "layer", &m->layers[i], err) < 0)
            return -1;
        m->n_layers = i + 1;
        const char *mt = m->layers[i].media_type;
        if (strstr(mt, "nondistributable") || strstr(mt, "foreign"))
            return cri_error_set(err, ENOTSUP, "layer `%s`: foreign layers are not supported",
                                 m->layers[i].digest);
    }
    return 0;
}

/* The string members of o (an "annotations" object) as a new object; other
 * values are dropped. Empty when o is not an object. */
static json_t *string_object(json_t *o)
{
    json_t *out = json_object();
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val)
    {
        if (json_is_string(val))
            json_object_set(out, key, val);
    }
    return out;
}

int manifest_parse(const char *body, size_t len, const char *content_type, manifest_t **ret,
                   cri_error_t *err)
{
    json_error_t je;
    cleanup_json json_t *root = json_loadb(body, len, 0, &je);
    if (!json_is_object(root))
        return cri_error_set(err, EBADMSG, "manifest is not a JSON object: %s", je.text);
    const char *mt = json_string_value(json_object_get(root, "mediaType"));
    if (!mt || !*mt)
        mt = content_type && *content_type ? content_type : "";
    json_int_t version = json_integer_value(json_object_get(root, "schemaVersion"));
    if (version == 1 || str_has_prefix(mt, MT_DOCKER_V1))
        return cri_error_set(err, ENOTSUP,
                             "docker schema1 manifests are not supported: push the image again "
                             "with a current client");
    cleanup_free manifest_t *m = xcalloc(1, sizeof(*m));
    m->annotations = string_object(json_object_get(root, "annotations"));
    bool index = strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0 ||
                 (!*mt && json_is_array(json_object_get(root, "manifests")));
    if (index) {
        m->is_index = true;
        *ret = TAKE_PTR(m);
        return 0;
    }
    if (*mt && strcmp(mt, MT_OCI_MANIFEST) != 0 && strcmp(mt, MT_DOCKER_MANIFEST) != 0 &&
        !str_has_prefix(mt, "application/json")) {
        manifest_free(TAKE_PTR(m));
        return cri_error_set(err, ENOTSUP, "unsupported manifest media type `%s`", mt);
    }
    if (parse_image_manifest(root, m, err) < 0) {
        manifest_free(TAKE_PTR(m));
        return -1;
    }
    *ret = TAKE_PTR(m);
    return 0;
}

void manifest_host_platform(const char **ret_arch, const char **ret_variant)
{
#if defined(__x86_64__)
    *ret_arch = "amd64";
    *ret_variant = "";
#elif defined(__aarch64__)
    *ret_arch = "arm64";
    *ret_variant = "v8";
#elif defined(__arm__)
    *ret_arch = "arm";
    *ret_variant = "v7";
#elif defined(__i386__)
    *ret_arch = "386";
    *ret_variant = "";
#elif defined(__s390x__)
    *ret_arch = "s390x";
    *ret_variant = "";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    *ret_arch = "ppc64le";
    *ret_variant = "";
#else
    *ret_arch = "unknown";
    *ret_variant = "";
#endif
}

/* Score of an index entry: 0 = no match, 2 = exact variant, 1 = no variant given. */
static int platform_score(json_t *entry, const char *os, const char *arch, const char *variant)
{
    json_t *p = json_object_get(entry, "platform");
    const char *eos = json_string_value(json_object_get(p, "os"));
    const char *earch = json_string_value(json_object_get(p, "architecture"));
    const char *evar = json_string_value(json_object_get(p, "variant"));
    if (!eos || !earch || strcmp(eos, os) != 0 || strcmp(earch, arch) != 0)
        return 0;
    if (!evar || !*evar)
        return 1;
    if (strcmp(evar, variant) == 0)
        return 2;
    return 0;
}

int manifest_pick_platform(const char *body, size_t len, const char *os, const char *arch,
                           const char *variant, char **ret_digest, cri_error_t *err)
{
    json_error_t je;
    cleanup_json json_t *root = json_loadb(body, len, 0, &je);
    json_t *list = json_object_get(root, "manifests");
    if (!json_is_array(list))
        return cri_error_set(err, EBADMSG, "index has no manifests");
    int best = 0;
    const char *digest = NULL;
    size_t i;
    json_t *entry;
    json_array_foreach(list, i, entry)
    {
        int s = platform_score(entry, os, arch, variant);
        const char *d = json_string_value(json_object_get(entry, "digest"));
        if (s > best && image_digest_valid(d)) {
            best = s;
            digest = d;
        }
    }
    if (!digest)
        return cri_error_set(err, ENOTSUP, "no manifest for platform %s/%s%s%s in the index", os,
                             arch, *variant ? "/" : "", variant);
    *ret_digest = xstrdup(digest);
    return 0;
}

void image_config_clear(image_config_t *cfg)
{
    strv_free(cfg->env);
    strv_free(cfg->entrypoint);
    strv_free(cfg->cmd);
    free(cfg->working_dir);
    free(cfg->user);
    free(cfg->stop_signal);
    strv_free(cfg->exposed_ports);
    for (size_t i = 0; i < cfg->n_labels; i++) {
        free(cfg->label_keys[i]);
        free(cfg->label_values[i]);
    }
    free(cfg->label_keys);
    free(cfg->label_values);
    memset(cfg, 0, sizeof(*cfg));
}

/* A JSON array of strings as a NULL-terminated vector (non-strings skipped). */
static char **strv_from_json(json_t *arr)
{
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0, k = 0;
    char **v = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (s)
            v[k++] = xstrdup(s);
    }
    return v;
}

static char *json_str_or_empty(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return xstrdup(s ? s : "");
}

static void fill_config(json_t *c, image_config_t *cfg)
{
    cfg->env = strv_from_json(json_object_get(c, "Env"));
    json_t *ep = json_object_get(c, "Entrypoint");
    cfg->entrypoint_set = json_is_array(ep);
    cfg->entrypoint = strv_from_json(ep);
    json_t *cmd = json_object_get(c, "Cmd");
    cfg->cmd_set = json_is_array(cmd);
    cfg->cmd = strv_from_json(cmd);
    cfg->working_dir = json_str_or_empty(c, "WorkingDir");
    cfg->user = json_str_or_empty(c, "User");
    cfg->stop_signal = json_str_or_empty(c, "StopSignal");
    json_t *ports = json_object_get(c, "ExposedPorts");
    cfg->exposed_ports = xcalloc(json_object_size(ports) + 1, sizeof(char *));
    size_t k = 0;
    const char *key;
    json_t *val;
    json_object_foreach(ports, key, val)
    {
        cfg->exposed_ports[k++] = xstrdup(key);
    }
    json_t *labels = json_object_get(c, "Labels");
    size_t n = json_is_object(labels) ? json_object_size(labels) : 0;
    cfg->label_keys = xcalloc(n + 1, sizeof(char *));
    cfg->label_values = xcalloc(n + 1, sizeof(char *));
    json_object_foreach(labels, key, val)
    {
        if (!json_is_string(val))
            continue;
        cfg->label_keys[cfg->n_labels] = xstrdup(key);
        cfg->label_values[cfg->n_labels++] = xstrdup(json_string_value(val));
    }
}

int image_config_parse(const char *json, size_t len, image_config_t *cfg, char ***ret_diff_ids,
                       cri_error_t *err)
{
    json_error_t je;
    cleanup_json json_t *root = json_loadb(json, len, 0, &je);
    if (!json_is_object(root))
        return cri_error_set(err, EBADMSG, "image config is not a JSON object: %s", je.text);
    json_t *diff_ids = json_object_get(json_object_get(root, "rootfs"), "diff_ids");
    if (!json_is_array(diff_ids))
        return cri_error_set(err, EBADMSG, "image config has no rootfs.diff_ids");
    cleanup_strv char **ids = strv_from_json(diff_ids);
    if (image_strv_len(ids) != json_array_size(diff_ids))
        return cri_error_set(err, EBADMSG, "image config: bad rootfs.diff_ids");
    for (char **p = ids; *p; p++)
        if (!image_digest_valid(*p))
            return cri_error_set(err, EBADMSG, "image config: unsupported diff id `%s`", *p);
    memset(cfg, 0, sizeof(*cfg));
    json_t *c = json_object_get(root, "config");
    fill_config(json_is_object(c) ? c : NULL, cfg);
    if (ret_diff_ids)
        *ret_diff_ids = TAKE_PTR(ids);
    return 0;
}
