/* libFuzzer entry for CNI network configs (cni_network_parse()): files in
 * /etc/cni/net.d are written by whatever network add-on the cluster runs. A
 * config that loads has a name and a cniVersion. */
#include "test/fuzz/fuzz.h"

#include "cni/cni.h"
#include "common/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cleanup_free char *json = fuzz_strndup(data, size);
    cni_network_t *net = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    if (cni_network_parse(json, "fuzz.conflist", &net, &err) < 0) {
        fuzz_check_error(&err, "cni_network_parse");
        return 0;
    }
    const char *name = cni_network_name(net);
    const char *version = cni_network_version(net);
    if (!name || !name[0] || !version)
        fuzz_fail("network without name or version");
    cni_network_free(net);
    return 0;
}
