/* UpdateRuntimeConfig: kubelet hands over the node's pod CIDR.
 *
 * The reply is empty and only transport errors matter to kubelet. An empty
 * CIDR is ignored (CRI-O does the same); anything else must parse. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/cri/v1/api.pb-c.h"
#include "server/daemon.h"
#include "server/handlers.h"

/* "10.244.1.0/24" or "fd00::/64" */
static bool cidr_valid(const char *s)
{
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || slash - s >= 64 || !slash[1])
        return false;
    char addr[64];
    memcpy(addr, s, (size_t)(slash - s));
    addr[slash - s] = '\0';
    unsigned char buf[16];
    int max;
    if (inet_pton(AF_INET, addr, buf) == 1)
        max = 32;
    else if (inet_pton(AF_INET6, addr, buf) == 1)
        max = 128;
    else
        return false;
    char *end;
    errno = 0;
    long bits = strtol(slash + 1, &end, 10);
    return errno == 0 && *end == '\0' && bits >= 0 && bits <= max;
}

RPC_HANDLER(handle_update_runtime_config)
{
    const Runtime__V1__UpdateRuntimeConfigRequest *in =
        (const Runtime__V1__UpdateRuntimeConfigRequest *)req;
    const char *cidr = in->runtime_config && in->runtime_config->network_config
                           ? in->runtime_config->network_config->pod_cidr
                           : "";
    if (cidr && *cidr) {
        /* kubelet may send a comma-separated dual-stack pair */
        char *copy = rpc_strdup(ctx, cidr);
        for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save))
            if (!cidr_valid(tok))
                return cri_error_set(
                    err, EINVAL, "runtime_config.network_config.pod_cidr `%s` is not a CIDR", cidr);
        daemon_set_pod_cidr(rpc_daemon(ctx), cidr);
    }
    Runtime__V1__UpdateRuntimeConfigResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__update_runtime_config_response__init(resp);
    *ret_resp = &resp->base;
    return 0;
}
