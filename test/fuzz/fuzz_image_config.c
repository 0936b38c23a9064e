/* libFuzzer entry for image configs (image_config_parse()): the blob is
 * digest-checked, but anyone who can push an image chooses its content. The
 * parsed config must be complete (lists and strings never NULL) and every
 * diff id valid; image_config_clear() frees it all. */
#include "test/fuzz/fuzz.h"

#include "common/cleanup.h"
#include "server/image/store/store-internal.h"

static void check_strv(char **v, const char *what)
{
    if (!v)
        fuzz_fail("%s is NULL", what);
    for (; *v; v++)
        (void)strlen(*v);
}

static void check_config(const image_config_t *c, char **diff_ids)
{
    check_strv(c->env, "env");
    check_strv(c->entrypoint, "entrypoint");
    check_strv(c->cmd, "cmd");
    check_strv(c->exposed_ports, "exposed_ports");
    check_strv(diff_ids, "diff_ids");
    if (!c->working_dir || !c->user || !c->stop_signal)
        fuzz_fail("a string field is NULL");
    for (size_t i = 0; i < c->n_labels; i++)
        if (!c->label_keys[i] || !c->label_values[i])
            fuzz_fail("label %zu is NULL", i);
    if (c->label_keys[c->n_labels] || c->label_values[c->n_labels])
        fuzz_fail("labels are not NULL-terminated");
    for (char **p = diff_ids; *p; p++)
        if (!image_digest_valid(*p))
            fuzz_fail("invalid diff id `%s` kept", *p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cleanup_free char *json = xmalloc(size ? size : 1);
    memcpy(json, data, size);
    image_config_t cfg;
    cleanup_strv char **diff_ids = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    if (image_config_parse(json, size, &cfg, &diff_ids, &err) < 0) {
        fuzz_check_error(&err, "image_config_parse");
        return 0;
    }
    check_config(&cfg, diff_ids);
    image_config_clear(&cfg);
    return 0;
}
