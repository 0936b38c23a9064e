/* libFuzzer entry for image references (image_ref_parse()): the string comes
 * from PullImage, ImageStatus, RemoveImage and CreateContainer requests.
 * Whatever parses must be normalised: its full form parses again to the same
 * reference, it has a domain and a path, a tag or a digest, and a digest is
 * valid. */
#include "test/fuzz/fuzz.h"

#include "common/cleanup.h"
#include "server/image/image.h"

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_ref(const char *input, const image_ref_t *r)
{
    if (!r->domain[0] || !r->path[0])
        fuzz_fail("`%s`: empty domain or path", input);
    if (!r->tag && !r->digest)
        fuzz_fail("`%s`: neither tag nor digest", input);
    if (r->digest && !image_digest_valid(r->digest))
        fuzz_fail("`%s`: invalid digest kept", input);
    cleanup_free char *full = image_ref_string(r);
    cleanup_image_ref image_ref_t *again = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    if (image_ref_parse(full, &again, &err) < 0)
        fuzz_fail("`%s`: normal form `%s` does not parse: %s", input, full, err.msg);
    if (!str_eq(r->domain, again->domain) || !str_eq(r->path, again->path) ||
        !str_eq(r->tag, again->tag) || !str_eq(r->digest, again->digest))
        fuzz_fail("`%s`: normal form `%s` parses differently", input, full);
    cleanup_free char *name = image_ref_name(r);
    if (strncmp(full, name, strlen(name)) != 0)
        fuzz_fail("`%s`: name `%s` is not a prefix of `%s`", input, name, full);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cleanup_free char *s = fuzz_strndup(data, size);
    cleanup_image_ref image_ref_t *r = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    if (image_ref_parse(s, &r, &err) < 0) {
        fuzz_check_error(&err, "image_ref_parse");
        if (err.status != EINVAL)
            fuzz_fail("`%s`: status %d, want EINVAL", s, err.status);
        return 0;
    }
    check_ref(s, r);
    return 0;
}
