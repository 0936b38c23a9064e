/* libFuzzer entry for manifests and indexes (manifest_parse(),
 * manifest_pick_platform()): the body comes from the registry before its
 * digest can be checked when it was pulled by tag. The first byte picks the
 * Content-Type the registry claimed; the rest is the body. A parsed image
 * manifest has valid digests and sizes; an index yields a valid digest or a
 * reason. */
#include "test/fuzz/fuzz.h"

#include "common/cleanup.h"
#include "server/image/store/store-internal.h"

static const char *const content_types[] = {
    "",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/json; charset=utf-8",
    "text/plain",
};
#define N_TYPES (sizeof(content_types) / sizeof(content_types[0]))

static void check_desc(const manifest_desc_t *d, const char *what)
{
    if (!image_digest_valid(d->digest) || d->size < 0 || !d->media_type)
        fuzz_fail("%s: bad descriptor kept", what);
}

static void check_manifest(const manifest_t *m)
{
    if (m->is_index)
        return;
    check_desc(&m->config, "config");
    for (size_t i = 0; i < m->n_layers; i++)
        check_desc(&m->layers[i], "layer");
}

static void check_pick(const char *body, size_t len, const char *arch, const char *variant)
{
    cleanup_free char *digest = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    if (manifest_pick_platform(body, len, "linux", arch, variant, &digest, &err) < 0) {
        fuzz_check_error(&err, "manifest_pick_platform");
        return;
    }
    if (!image_digest_valid(digest))
        fuzz_fail("picked invalid digest `%s`", digest);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *type = content_types[data[0] % N_TYPES];
    /* the body exactly as received: not NUL-terminated */
    cleanup_free char *body = xmalloc(size - 1 ? size - 1 : 1);
    memcpy(body, data + 1, size - 1);
    manifest_t *m = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    if (manifest_parse(body, size - 1, type, &m, &err) < 0) {
        fuzz_check_error(&err, "manifest_parse");
        if (m)
            fuzz_fail("manifest_parse failed but set *ret");
    } else {
        check_manifest(m);
        manifest_free(m);
    }
    check_pick(body, size - 1, "amd64", "");
    check_pick(body, size - 1, "arm64", "v8");
    return 0;
}
