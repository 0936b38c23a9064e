/* libFuzzer entry for WWW-Authenticate challenges (registry_parse_challenge()):
 * the header comes from any registry or mirror a pull talks to. A parsed
 * challenge has a lower-case scheme without spaces and a JSON object of
 * lower-case parameter names with string values. */
#include "test/fuzz/fuzz.h"

#include "common/cleanup.h"
#include "server/image/registry/registry-internal.h"

static void check_lower(const char *header, const char *what, const char *s)
{
    for (const char *c = s; *c; c++)
        if ((*c >= 'A' && *c <= 'Z') || *c == ' ')
            fuzz_fail("`%s`: %s `%s` is not lower case", header, what, s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cleanup_free char *header = fuzz_strndup(data, size);
    cleanup_free char *scheme = NULL;
    cleanup_json json_t *params = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    if (registry_parse_challenge(header, &scheme, &params, &err) < 0) {
        fuzz_check_error(&err, "registry_parse_challenge");
        return 0;
    }
    if (!scheme[0])
        fuzz_fail("`%s`: empty scheme", header);
    check_lower(header, "scheme", scheme);
    if (!json_is_object(params))
        fuzz_fail("`%s`: params are not an object", header);
    const char *key;
    json_t *val;
    json_object_foreach(params, key, val)
    {
        check_lower(header, "parameter", key);
        if (!json_is_string(val))
            fuzz_fail("`%s`: parameter `%s` is not a string", header, key);
    }
    return 0;
}
