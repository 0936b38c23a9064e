/* Checks of a RunPodSandbox request before anything is touched, plus ids and
 * the paths every pod file lives at. A bad request gets EINVAL naming the
 * field; protobuf-c accepts any enum number, so every enum is checked. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/util.h"
#include "server/daemon.h"
#include "server/sandbox/sandbox-internal.h"
#include "server/seccomp.h"
#include "server/validate.h"

char *sandbox_bundle_dir(const daemon_t *d, const char *id)
{
    return xasprintf("%s/sandboxes/%s", daemon_runroot(d), id);
}

char *sandbox_files_dir(const daemon_t *d, const char *id)
{
    return xasprintf("%s/sandboxes/%s", daemon_root(d), id);
}

char *sandbox_shm_dir(const daemon_t *d, const char *id)
{
    return xasprintf("%s/sandboxes/%s/shm", daemon_runroot(d), id);
}

char *sandbox_netns_path(const daemon_t *d, const char *id)
{
    return xasprintf("%s/netns/%s", daemon_runroot(d), id);
}

char *sandbox_userns_path(const daemon_t *d, const char *id)
{
    return xasprintf("%s/userns/%s", daemon_runroot(d), id);
}

char *sandbox_ipcns_path(const daemon_t *d, const char *id)
{
    return xasprintf("%s/ipcns/%s", daemon_runroot(d), id);
}

char *sandbox_utsns_path(const daemon_t *d, const char *id)
{
    return xasprintf("%s/utsns/%s", daemon_runroot(d), id);
}

char *sandbox_new_id(void)
{
    unsigned char raw[32];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n < 0 && errno != EINTR)
            abort(); /* getrandom cannot fail on a kernel that runs runc */
        if (n > 0)
            got += (size_t)n;
    }
    char *id = xmalloc(sizeof(raw) * 2 + 1);
    for (size_t i = 0; i < sizeof(raw); i++)
        (void)snprintf(id + i * 2, 3, "%02x", raw[i]);
    return id;
}

static bool ns_mode_valid(int mode, bool allow_container)
{
    return mode == SANDBOX_NS_POD || mode == SANDBOX_NS_NODE ||
           (allow_container && mode == SANDBOX_NS_CONTAINER);
}

static int validate_namespaces(const Runtime__V1__NamespaceOption *ns, cri_error_t *err)
{
    if (!ns)
        return 0;
    if (!ns_mode_valid(ns->network, false))
        return cri_error_set(err, EINVAL,
                             "config.linux.security_context.namespace_options.network: invalid "
                             "mode %d for a pod (POD or NODE)",
                             (int)ns->network);
    if (!ns_mode_valid(ns->pid, true))
        return cri_error_set(err, EINVAL,
                             "config.linux.security_context.namespace_options.pid: invalid mode "
                             "%d for a pod (POD, CONTAINER or NODE)",
                             (int)ns->pid);
    if (!ns_mode_valid(ns->ipc, false))
        return cri_error_set(err, EINVAL,
                             "config.linux.security_context.namespace_options.ipc: invalid mode "
                             "%d for a pod (POD or NODE)",
                             (int)ns->ipc);
    const Runtime__V1__UserNamespace *u = ns->userns_options;
    if (validate_userns("config.linux.security_context.namespace_options.userns_options", u, err) <
        0)
        return -1;
    /* kubelet refuses hostUsers: false with hostNetwork, hostPID or hostIPC;
     * a pod user namespace must own the pod's other namespaces */
    if (u && u->mode == RUNTIME__V1__NAMESPACE_MODE__POD &&
        (ns->network == RUNTIME__V1__NAMESPACE_MODE__NODE ||
         ns->pid == RUNTIME__V1__NAMESPACE_MODE__NODE ||
         ns->ipc == RUNTIME__V1__NAMESPACE_MODE__NODE))
        return cri_error_set(err, EINVAL,
                             "config.linux.security_context.namespace_options.userns_options: "
                             "mode POD cannot be combined with the host's network, pid or ipc "
                             "namespace");
    return 0;
}

static int validate_ports(const Runtime__V1__PodSandboxConfig *cfg, cri_error_t *err)
{
    for (size_t i = 0; i < cfg->n_port_mappings; i++) {
        const Runtime__V1__PortMapping *p = cfg->port_mappings[i];
        if ((int)p->protocol < RUNTIME__V1__PROTOCOL__TCP ||
            p->protocol > RUNTIME__V1__PROTOCOL__SCTP)
            return cri_error_set(err, EINVAL, "config.port_mappings[%zu].protocol: invalid %d", i,
                                 (int)p->protocol);
        if (p->container_port <= 0 || p->container_port > 65535)
            return cri_error_set(err, EINVAL,
                                 "config.port_mappings[%zu].container_port: %d out of range", i,
                                 p->container_port);
        if (p->host_port < 0 || p->host_port > 65535)
            return cri_error_set(err, EINVAL,
                                 "config.port_mappings[%zu].host_port: %d out of range", i,
                                 p->host_port);
    }
    return 0;
}

int sandbox_validate_sysctl(const char *name, int ns_network, int ns_ipc, cri_error_t *err)
{
    if (!name[0] || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_.-/") != strlen(name))
        return cri_error_set(err, EINVAL, "config.linux.sysctls: invalid sysctl name `%s`", name);
    bool ipc = str_has_prefix(name, "kernel.shm") || str_has_prefix(name, "kernel.msg") ||
               strcmp(name, "kernel.sem") == 0 || str_has_prefix(name, "fs.mqueue.");
    if (ipc) {
        if (ns_ipc == SANDBOX_NS_NODE)
            return cri_error_set(err, EINVAL,
                                 "config.linux.sysctls: `%s` needs the pod's IPC namespace, "
                                 "but the pod uses the host's",
                                 name);
        return 0;
    }
    if (str_has_prefix(name, "net.")) {
        if (ns_network == SANDBOX_NS_NODE)
            return cri_error_set(err, EINVAL,
                                 "config.linux.sysctls: `%s` needs the pod's network namespace, "
                                 "but the pod uses the host network",
                                 name);
        return 0;
    }
    return cri_error_set(err, EINVAL,
                         "config.linux.sysctls: `%s` is not a namespaced sysctl (allowed: "
                         "kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, net.*)",
                         name);
}

static int validate_security(const Runtime__V1__LinuxSandboxSecurityContext *sc, cri_error_t *err)
{
    if (!sc)
        return 0;
    /* the infra's mapping, run early so a bad profile fails before any work */
    oci_seccomp_kind_t kind;
    const char *path = NULL;
    if (seccomp_from_cri(sc->seccomp, sc->seccomp_profile_path, false, OCI_SECCOMP_RUNTIME_DEFAULT,
                         "config.linux.security_context", &kind, &path, err) < 0)
        return -1;
    if (sc->run_as_user && (sc->run_as_user->value < 0 || sc->run_as_user->value > UINT32_MAX))
        return cri_error_set(err, EINVAL, "config.linux.security_context.run_as_user out of range");
    if (sc->run_as_group && (sc->run_as_group->value < 0 || sc->run_as_group->value > UINT32_MAX))
        return cri_error_set(err, EINVAL,
                             "config.linux.security_context.run_as_group out of range");
    return 0;
}

static int validate_linux(const Runtime__V1__LinuxPodSandboxConfig *lx, cri_error_t *err)
{
    if (!lx)
        return 0;
    if (validate_security(lx->security_context, err) < 0)
        return -1;
    const Runtime__V1__NamespaceOption *ns =
        lx->security_context ? lx->security_context->namespace_options : NULL;
    if (validate_namespaces(ns, err) < 0)
        return -1;
    int net = ns ? (int)ns->network : SANDBOX_NS_POD;
    int ipc = ns ? (int)ns->ipc : SANDBOX_NS_POD;
    for (size_t i = 0; i < lx->n_sysctls; i++) {
        if (sandbox_validate_sysctl(lx->sysctls[i]->key, net, ipc, err) < 0)
            return -1;
        if (strpbrk(lx->sysctls[i]->value, "\n"))
            return cri_error_set(err, EINVAL, "config.linux.sysctls: value of `%s` has a newline",
                                 lx->sysctls[i]->key);
    }
    if (lx->cgroup_parent[0] && lx->cgroup_parent[0] != '/' && !strstr(lx->cgroup_parent, ".slice"))
        return cri_error_set(err, EINVAL,
                             "config.linux.cgroup_parent `%s`: neither an absolute path nor a "
                             "systemd slice",
                             lx->cgroup_parent);
    return 0;
}

static int validate_metadata(const Runtime__V1__PodSandboxMetadata *m, cri_error_t *err)
{
    if (!m)
        return cri_error_set(err, EINVAL, "config.metadata is required");
    /* they become CNI_ARGS (K8S_POD_NAME=..;..), the record name
     * k8s_POD_<name>_<namespace>_<uid>_<attempt> and OCI annotations */
    if (validate_object_name("config.metadata.name", m->name, err) < 0 ||
        validate_dns_label("config.metadata.namespace", m->namespace_, err) < 0 ||
        validate_uid("config.metadata.uid", m->uid, err) < 0)
        return -1;
    return 0;
}

/* Sizes of every repeated field, before any other check looks at them. */
static int validate_sizes(const Runtime__V1__PodSandboxConfig *cfg, cri_error_t *err)
{
    if (validate_map("config.labels", (void *const *)cfg->labels, cfg->n_labels, true, err) < 0 ||
        validate_map("config.annotations", (void *const *)cfg->annotations, cfg->n_annotations,
                     true, err) < 0 ||
        validate_count("config.port_mappings", cfg->n_port_mappings, VALIDATE_MAX_PORTS, err) < 0)
        return -1;
    const Runtime__V1__DNSConfig *dns = cfg->dns_config;
    if (dns &&
        (validate_count("config.dns_config.servers", dns->n_servers, VALIDATE_MAX_DNS, err) < 0 ||
         validate_count("config.dns_config.searches", dns->n_searches, VALIDATE_MAX_DNS, err) < 0 ||
         validate_count("config.dns_config.options", dns->n_options, VALIDATE_MAX_DNS, err) < 0))
        return -1;
    const Runtime__V1__LinuxPodSandboxConfig *lx = cfg->linux;
    if (!lx)
        return 0;
    if (validate_count("config.linux.sysctls", lx->n_sysctls, VALIDATE_MAX_ENTRIES, err) < 0 ||
        validate_map("config.linux.sysctls", (void *const *)lx->sysctls, lx->n_sysctls, false,
                     err) < 0)
        return -1;
    const Runtime__V1__LinuxSandboxSecurityContext *sc = lx->security_context;
    if (sc && validate_count("config.linux.security_context.supplemental_groups",
                             sc->n_supplemental_groups, VALIDATE_MAX_GROUPS, err) < 0)
        return -1;
    return 0;
}

int sandbox_validate_config(const Runtime__V1__PodSandboxConfig *cfg, cri_error_t *err)
{
    if (!cfg)
        return cri_error_set(err, EINVAL, "config is required");
    if (validate_sizes(cfg, err) < 0)
        return -1;
    if (validate_metadata(cfg->metadata, err) < 0)
        return -1;
    if (strlen(cfg->hostname) > 64 || strchr(cfg->hostname, '/') || strchr(cfg->hostname, '\n'))
        return cri_error_set(err, EINVAL, "config.hostname `%s` is not a valid host name",
                             cfg->hostname);
    /* empty: no container logs; else kubelet's /var/log/pods/<ns>_<name>_<uid> */
    if (cfg->log_directory[0] &&
        validate_abs_clean_path("config.log_directory", cfg->log_directory, err) < 0)
        return -1;
    if (validate_ports(cfg, err) < 0)
        return -1;
    if (cfg->dns_config) {
        const Runtime__V1__DNSConfig *dns = cfg->dns_config;
        char **lists[] = {dns->servers, dns->searches, dns->options};
        size_t ns[] = {dns->n_servers, dns->n_searches, dns->n_options};
        for (size_t l = 0; l < 3; l++)
            for (size_t i = 0; i < ns[l]; i++)
                if (!lists[l][i][0] || strpbrk(lists[l][i], " \t\n"))
                    return cri_error_set(err, EINVAL, "config.dns_config: invalid entry `%s`",
                                         lists[l][i]);
    }
    return validate_linux(cfg->linux, err);
}
