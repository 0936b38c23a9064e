/* libFuzzer entry for conf/: YAML text from the fuzzer is loaded over the
 * defaults (conf_load_buffer(), the same path conf_load_file() takes after
 * reading the file), validated, and, when it loads, emitted and loaded again:
 * the round trip must give back the same text, else the entry aborts.
 *
 * Built with -fsanitize=fuzzer (libFuzzer brings main(), CRICKET_FUZZ=ON), or
 * with replay.c, whose main() replays test/fuzz/corpus/conf/ under ctest. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cleanup_conf conf_t *c = conf_new_defaults("/usr/local/bin");
    cri_error_t err = CRI_ERROR_INIT;

    if (conf_load_buffer(c, "fuzz.yaml", (const char *)data, size, &err) < 0) {
        if (err.status == 0 || !err.msg[0] || strchr(err.msg, '\n'))
            abort(); /* every failure explains itself on one line */
        return 0;
    }
    (void)conf_validate(c, &err);

    /* Whatever loads must emit, and load back to the same config. */
    cleanup_free char *yaml = conf_to_yaml(c, &err);
    if (!yaml)
        abort();
    cleanup_conf conf_t *again = conf_new_defaults("/usr/local/bin");
    if (conf_load_buffer(again, "emitted.yaml", yaml, strlen(yaml), &err) < 0)
        abort();
    cleanup_free char *yaml2 = conf_to_yaml(again, &err);
    if (!yaml2 || strcmp(yaml, yaml2) != 0)
        abort();
    return 0;
}
