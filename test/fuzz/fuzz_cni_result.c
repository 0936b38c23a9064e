/* libFuzzer entry for CNI results (cni_result_parse()): the JSON a plugin
 * binary prints on stdout, or what the ADD cache on disk holds. A parsed
 * result keeps the JSON and a NULL-terminated list of addresses without a
 * prefix length. */
#include "test/fuzz/fuzz.h"

#include "cni/cni.h"
#include "common/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cleanup_free char *json = fuzz_strndup(data, size);
    cni_result_t *res = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    if (cni_result_parse(json, &res, &err) < 0) {
        fuzz_check_error(&err, "cni_result_parse");
        return 0;
    }
    if (!res->ips || !res->json)
        fuzz_fail("result without ips or json");
    for (char **p = res->ips; *p; p++)
        if (!**p || strchr(*p, '/'))
            fuzz_fail("address `%s` is empty or has a prefix length", *p);
    cni_result_free(res);
    return 0;
}
