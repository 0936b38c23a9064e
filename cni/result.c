/* Plugin results: the IPs a pod got. Results of 0.3.x, 0.4.0 and 1.0.0 all
 * list "ips" entries with an "address" in CIDR form ("10.1.0.5/24"); 0.4.0
 * and older also say "version": "4" or "6". */
#include "cni-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"

void cni_result_free(cni_result_t *res)
{
    if (!res)
        return;
    strv_free(res->ips);
    free(res->json);
    free(res);
}

/* "10.1.0.5/24" -> "10.1.0.5"; NULL unless it is an IP with a prefix. */
static char *address_ip(const char *cidr, int *ret_family)
{
    const char *slash = strchr(cidr, '/');
    if (!slash || slash == cidr || slash - cidr > 45)
        return NULL;
    cleanup_free char *ip = xstrndup(cidr, (size_t)(slash - cidr));
    unsigned char buf[16];
    if (inet_pton(AF_INET, ip, buf) == 1)
        *ret_family = 4;
    else if (inet_pton(AF_INET6, ip, buf) == 1)
        *ret_family = 6;
    else
        return NULL;
    return TAKE_PTR(ip);
}

int cni_result_parse(const char *json, cni_result_t **ret, cri_error_t *err)
{
    json_error_t jerr;
    json_t *root = json_loads(json, 0, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return cri_error_set(err, EINVAL, "parse CNI result: not a JSON object");
    }
    json_t *ips = json_object_get(root, "ips");
    size_t n = json_is_array(ips) ? json_array_size(ips) : 0;
    cleanup_strv char **v4 = xcalloc(n + 1, sizeof(char *));
    cleanup_strv char **v6 = xcalloc(n + 1, sizeof(char *));
    size_t n4 = 0, n6 = 0;
    for (size_t i = 0; i < n; i++) {
        const char *addr = json_string_value(json_object_get(json_array_get(ips, i), "address"));
        int family = 0;
        char *ip = addr ? address_ip(addr, &family) : NULL;
        if (!ip) {
            json_decref(root);
            return cri_error_set(err, EINVAL, "parse CNI result: ips[%zu] has no valid address", i);
        }
        if (family == 4)
            v4[n4++] = ip;
        else
            v6[n6++] = ip;
    }
    cni_result_t *res = xcalloc(1, sizeof(*res));
    res->ips = xcalloc(n + 1, sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; i < n4; i++)
        res->ips[k++] = TAKE_PTR(v4[i]);
    for (size_t i = 0; i < n6; i++)
        res->ips[k++] = TAKE_PTR(v6[i]);
    res->json = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!res->json)
        abort();
    *ret = res;
    return 0;
}
