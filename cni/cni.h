/* CNI: network configuration discovery and plugin invocation.
 *
 * A network is a conflist (or a single .conf wrapped as a one-plugin list).
 * ADD runs its plugins in order, each getting the previous one's result as
 * prevResult; DEL runs them in reverse with the cached ADD result; CHECK
 * likewise in order. The ADD result, the network config it was made with and
 * the runtime arguments are cached on disk (persistent: host-local leases
 * outlive a reboot), so DEL tears down exactly what ADD set up even after the
 * config file changed or went away. */
#ifndef CRICKET_CNI_CNI_H
#define CRICKET_CNI_CNI_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Finds the network config cricket would use: the file in conf_dir whose
 * name ends in .conflist, .conf or .json and that parses as a CNI config
 * (a conflist with a non-empty "plugins" array, or a single config with a
 * "type"), first in lexical order; or, when want_name is non-empty, the
 * first valid one whose "name" equals want_name. Invalid files are skipped.
 * *ret_path gets a malloc'd path (caller frees) and *ret_name, when not
 * NULL, the network name. ENOENT when none fits (message says why). */
int cni_find_config(const char *conf_dir, const char *want_name, char **ret_path, char **ret_name,
                    cri_error_t *err);

/* The config in use, kept current by an inotify watch on conf_dir (created
 * when missing): adding, changing or removing a config file is seen by the
 * next call, without a restart and without rescanning an unchanged dir. */
typedef struct cni_watch cni_watch_t;

/* Starts watching conf_dir for the config cni_find_config() would pick
 * (want_name as there). Free with cni_watch_stop(). */
int cni_watch_start(const char *conf_dir, const char *want_name, cni_watch_t **ret,
                    cri_error_t *err);
/* The config now: malloc'd path (and name, when ret_name is not NULL), or
 * ENOENT with the reason there is none. Thread-safe. */
int cni_watch_current(cni_watch_t *w, char **ret_path, char **ret_name, cri_error_t *err);
/* NULL is fine. */
void cni_watch_stop(cni_watch_t *w);

/* Makes want_name ("" = the first config in lexical order) the network the
 * watch looks for from the next cni_watch_current() on (SIGHUP). */
void cni_watch_set_network(cni_watch_t *w, const char *want_name);

typedef struct cni_network cni_network_t;

/* Loads and checks one config file (.conflist, or .conf/.json holding a
 * single plugin). EINVAL naming the file and what is wrong; the errno of
 * reading it otherwise. Free with cni_network_free(). */
int cni_network_load(const char *path, cni_network_t **ret, cri_error_t *err);
/* Parses a config from memory (same rules; `origin` names it in errors). */
int cni_network_parse(const char *json, const char *origin, cni_network_t **ret, cri_error_t *err);
void cni_network_free(cni_network_t *net);
static inline void cni_network_freep(cni_network_t **net)
{
    cni_network_free(*net);
}
#define cleanup_cni_network __attribute__((cleanup(cni_network_freep)))
/* The network's name and cniVersion (owned by net). */
const char *cni_network_name(const cni_network_t *net);
const char *cni_network_version(const cni_network_t *net);

typedef struct cni_port_mapping {
    int32_t host_port;
    int32_t container_port;
    const char *protocol; /* "tcp", "udp", "sctp" */
    const char *host_ip;  /* "" = all */
} cni_port_mapping_t;

typedef struct cni_bandwidth {
    uint64_t ingress_rate, ingress_burst; /* bits/s and bits; 0 = unset */
    uint64_t egress_rate, egress_burst;
} cni_bandwidth_t;

/* One pod's attachment to a network: what the runtime passes to plugins. */
typedef struct cni_attachment {
    const char *container_id;        /* the sandbox id */
    const char *netns;               /* pinned netns path; may be "" on DEL */
    const char *ifname;              /* NULL = "eth0" */
    const char *const *args;         /* "K=V" for CNI_ARGS (K8S_POD_NAME, ...); NULL-terminated */
    const cni_port_mapping_t *ports; /* capability portMappings */
    size_t n_ports;
    const cni_bandwidth_t *bandwidth;                     /* capability bandwidth; NULL = none */
    const char *const *dns_servers, *const *dns_searches; /* capability dns; NULL = none */
    const char *const *dns_options;
    const char *cgroup_path; /* capability cgroupPath; NULL = none */
} cni_attachment_t;

/* Where plugins live and how long each may run. */
typedef struct cni_opts {
    char *const *plugin_dirs; /* NULL-terminated, searched in order */
    const char *cache_dir;    /* ADD results, e.g. <root>/cni/results */
    int timeout_ms;           /* per plugin call */
    const char *marker_env;   /* "K=V" added to every plugin's environment; NULL = none */
    void (*plugin_started)(const char *command); /* "ADD", "DEL", "CHECK": a plugin runs (test
                                                    builds' failpoints); NULL = none */
} cni_opts_t;

typedef struct cni_result {
    char **ips; /* addresses without prefix length, IPv4 first; NULL-terminated */
    char *json; /* the final result as the last plugin printed it */
} cni_result_t;

void cni_result_free(cni_result_t *res);

/* ADD: runs every plugin of net and caches the result. On a plugin failure
 * the plugins that already ran are deleted again (best effort) and the
 * error carries the plugin's own message ("plugin `bridge` ADD: ...: <msg>
 * (code 11)"); ETIMEDOUT when one hangs past the timeout. */
int cni_add(const cni_opts_t *opts, const cni_network_t *net, const cni_attachment_t *att,
            cni_result_t **ret, cri_error_t *err);

/* DEL: undoes ADD for the network called net_name. Uses the cached config,
 * runtime arguments and result when there is a cache entry for (network,
 * container, ifname); else net (NULL: nothing to do). Removes the cache
 * entry on success. Idempotent: calling it again, or with the netns already
 * gone, succeeds when the plugins do. */
int cni_del(const cni_opts_t *opts, const char *net_name, const cni_network_t *net,
            const cni_attachment_t *att, cri_error_t *err);

/* Removes the temp files a crash left in the cache dir (a cache entry
 * half written: the entry it was to replace, if any, is still there).
 * Called once at startup, before any ADD or DEL. */
int cni_cache_sweep(const cni_opts_t *opts, cri_error_t *err);

/* CHECK: asks the plugins whether the attachment is still as ADD left it
 * (cniVersion >= 0.4.0; ENOENT without a cached result). */
int cni_check(const cni_opts_t *opts, const cni_network_t *net, const cni_attachment_t *att,
              cri_error_t *err);

/* The plugin calls of the daemon as an ops table, so handlers can be unit
 * tested with fakes (server/daemon.h holds a pointer to one). Each member
 * has the contract of the function of the same name above; cni_plugin_ops
 * is the real table (cni_add, cni_del, cni_check). Config discovery and
 * loading stay plain functions: they only read files. */
typedef struct cni_ops {
    int (*add)(const cni_opts_t *opts, const cni_network_t *net, const cni_attachment_t *att,
               cni_result_t **ret, cri_error_t *err);
    int (*del)(const cni_opts_t *opts, const char *net_name, const cni_network_t *net,
               const cni_attachment_t *att, cri_error_t *err);
    int (*check)(const cni_opts_t *opts, const cni_network_t *net, const cni_attachment_t *att,
                 cri_error_t *err);
} cni_ops_t;

extern const cni_ops_t cni_plugin_ops;

/* Parses a plugin result (cniVersion 0.3.x/0.4.0/1.0.0) into its IPs.
 * EINVAL when it is not a result. */
int cni_result_parse(const char *json, cni_result_t **ret, cri_error_t *err);

#endif
