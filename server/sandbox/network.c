/* A pod's CNI attachment: ADD on the pinned netns with kubelet's CNI_ARGS
 * and capability args, DEL with what ADD cached (cni/ keeps the config,
 * runtime args and result on disk, so DEL works after a restart, a config
 * change or a reboot). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cni/cni.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "server/daemon.h"
#include "server/host_ops.h"
#include "server/sandbox/sandbox-internal.h"

static void result_freep(cni_result_t **r)
{
    cni_result_free(*r);
}
#define cleanup_cni_result __attribute__((cleanup(result_freep)))

static int load_network(daemon_t *d, cni_network_t **ret, cri_error_t *err)
{
    cleanup_free char *path = NULL;
    if (daemon_cni_config(d, &path, err) < 0) {
        /* ENOENT would read as "pod not found": say what is missing instead */
        err->status = ENETDOWN;
        return cri_error_wrap(err, "no CNI network");
    }
    return cni_network_load(path, ret, err);
}

/* CNI_ARGS as kubelet's runtimes send them. Caller frees with strv_free. */
static char **pod_args(const sandbox_t *sb)
{
    char **v = xcalloc(6, sizeof(char *));
    v[0] = xstrdup("IgnoreUnknown=1");
    v[1] = xasprintf("K8S_POD_NAMESPACE=%s", sb->meta_namespace);
    v[2] = xasprintf("K8S_POD_NAME=%s", sb->meta_name);
    v[3] = xasprintf("K8S_POD_INFRA_CONTAINER_ID=%s", sb->id);
    v[4] = xasprintf("K8S_POD_UID=%s", sb->meta_uid);
    return v;
}

static const char *protocol_name(int p)
{
    switch (p) {
    case RUNTIME__V1__PROTOCOL__UDP:
        return "udp";
    case RUNTIME__V1__PROTOCOL__SCTP:
        return "sctp";
    default:
        return "tcp";
    }
}

/* kubelet sends every containerPort; only those with a hostPort map. */
static cni_port_mapping_t *port_mappings(const Runtime__V1__PodSandboxConfig *cfg, size_t *ret_n)
{
    cni_port_mapping_t *ports = xcalloc(cfg->n_port_mappings + 1, sizeof(*ports));
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_port_mappings; i++) {
        const Runtime__V1__PortMapping *p = cfg->port_mappings[i];
        if (p->host_port <= 0)
            continue;
        ports[n].host_port = p->host_port;
        ports[n].container_port = p->container_port;
        ports[n].protocol = protocol_name(p->protocol);
        ports[n].host_ip = p->host_ip;
        n++;
    }
    *ret_n = n;
    return ports;
}

/* A NULL-terminated copy of a protobuf string array (strings borrowed). */
static const char **null_terminated(char **items, size_t n)
{
    const char **v = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        v[i] = items[i];
    return v;
}

static void set_ips(sandbox_t *sb, char **ips)
{
    size_t n = 0;
    while (ips && ips[n])
        n++;
    char **v = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        v[i] = xstrdup(ips[i]);
    strv_free(sb->ips);
    sb->ips = v;
}

int sandbox_network_prepare(daemon_t *d, sandbox_t *sb, cni_network_t **ret, cri_error_t *err)
{
    cni_network_t *net = NULL;
    if (load_network(d, &net, err) < 0)
        return -1;
    /* recorded before the pod's record is written: from then on a DEL of
     * this network is owed, even when ADD dies half way */
    str_set(&sb->cni_network, cni_network_name(net));
    *ret = net;
    return 0;
}

int sandbox_network_setup(daemon_t *d, sandbox_t *sb, const cni_network_t *net,
                          const Runtime__V1__PodSandboxConfig *cfg, cri_error_t *err)
{
    cleanup_strv char **args = pod_args(sb);
    size_t n_ports = 0;
    cleanup_free cni_port_mapping_t *ports = port_mappings(cfg, &n_ports);
    const Runtime__V1__DNSConfig *dns = cfg->dns_config;
    cni_attachment_t att = {
        .container_id = sb->id,
        .netns = sb->netns_path,
        .args = (const char *const *)args,
        .ports = ports,
        .n_ports = n_ports,
        .cgroup_path = sb->cgroup_parent[0] ? sb->cgroup_parent : NULL,
    };
    cleanup_free const char **servers = NULL, **searches = NULL, **options = NULL;
    if (dns && dns->n_servers + dns->n_searches + dns->n_options > 0) {
        servers = null_terminated(dns->servers, dns->n_servers);
        searches = null_terminated(dns->searches, dns->n_searches);
        options = null_terminated(dns->options, dns->n_options);
        att.dns_servers = servers;
        att.dns_searches = searches;
        att.dns_options = options;
    }
    cleanup_cni_result cni_result_t *res = NULL;
    if (daemon_cni_ops(d)->add(daemon_cni(d), net, &att, &res, err) < 0)
        return -1;
    set_ips(sb, res->ips);
    return 0;
}

int sandbox_network_teardown(daemon_t *d, sandbox_t *sb, cri_error_t *err)
{
    if (!sb->cni_network[0])
        return 0;
    /* the current config stands in when ADD failed before caching */
    cleanup_cni_network cni_network_t *net = NULL;
    cri_error_t lerr = CRI_ERROR_INIT;
    if (load_network(d, &net, &lerr) == 0 && strcmp(cni_network_name(net), sb->cni_network) != 0) {
        cni_network_free(net);
        net = NULL;
    }
    cleanup_strv char **args = pod_args(sb);
    cni_attachment_t att = {
        .container_id = sb->id,
        .netns = daemon_host_ops(d)->netns_alive(sb->netns_path) ? sb->netns_path : "",
        .args = (const char *const *)args,
    };
    if (daemon_cni_ops(d)->del(daemon_cni(d), sb->cni_network, net, &att, err) < 0)
        return cri_error_wrap(err, "tear down pod network");
    return 0;
}
