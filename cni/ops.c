/* ADD, DEL and CHECK over a whole network, and the on-disk cache that lets
 * DEL undo exactly what ADD did. */
#include "cni-internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

#define CNI_CACHE_MAX ((size_t)4 * 1024 * 1024)

static json_t *strv_json(const char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

json_t *cni_capability_args(const cni_attachment_t *att)
{
    json_t *args = json_object();
    if (att->n_ports > 0) {
        json_t *ports = json_array();
        for (size_t i = 0; i < att->n_ports; i++) {
            const cni_port_mapping_t *p = &att->ports[i];
            json_t *o = json_pack("{s:i, s:i, s:s}", "hostPort", (int)p->host_port, "containerPort",
                                  (int)p->container_port, "protocol",
                                  p->protocol && *p->protocol ? p->protocol : "tcp");
            if (p->host_ip && *p->host_ip)
                json_object_set_new(o, "hostIP", json_string(p->host_ip));
            json_array_append_new(ports, o);
        }
        json_object_set_new(args, "portMappings", ports);
    }
    if (att->bandwidth) {
        const cni_bandwidth_t *b = att->bandwidth;
        json_t *o = json_object();
        if (b->ingress_rate)
            json_object_set_new(o, "ingressRate", json_integer((json_int_t)b->ingress_rate));
        if (b->ingress_burst)
            json_object_set_new(o, "ingressBurst", json_integer((json_int_t)b->ingress_burst));
        if (b->egress_rate)
            json_object_set_new(o, "egressRate", json_integer((json_int_t)b->egress_rate));
        if (b->egress_burst)
            json_object_set_new(o, "egressBurst", json_integer((json_int_t)b->egress_burst));
        json_object_set_new(args, "bandwidth", o);
    }
    if (att->dns_servers || att->dns_searches || att->dns_options)
        json_object_set_new(args, "dns",
                            json_pack("{s:o, s:o, s:o}", "servers", strv_json(att->dns_servers),
                                      "searches", strv_json(att->dns_searches), "options",
                                      strv_json(att->dns_options)));
    if (att->cgroup_path && *att->cgroup_path)
        json_object_set_new(args, "cgroupPath", json_string(att->cgroup_path));
    return args;
}

static char *cache_path(const cni_opts_t *opts, const char *net_name, const cni_attachment_t *att)
{
    return xasprintf("%s/%s-%s-%s.json", opts->cache_dir, net_name, att->container_id,
                     att->ifname ? att->ifname : "eth0");
}

/* The entry is written twice: before the first plugin runs (no result
 * yet), so a DEL after a crash half way through ADD still finds the exact
 * config and args, then with the result. */
static int cache_write(const cni_opts_t *opts, const cni_network_t *net,
                       const cni_attachment_t *att, json_t *cap_args, json_t *result,
                       cri_error_t *err)
{
    if (mkdir_p(opts->cache_dir, 0700, err) < 0)
        return -1;
    json_t *entry =
        json_pack("{s:s, s:s, s:s, s:o, s:o, s:O, s:O}", "kind", "cniCacheV1", "containerId",
                  att->container_id, "ifName", att->ifname ? att->ifname : "eth0", "config",
                  cni_network_to_json(net), "cniArgs", strv_json(att->args), "capabilityArgs",
                  cap_args, "result", result ? result : json_null());
    char *data = json_dumps(entry, JSON_COMPACT);
    json_decref(entry);
    if (!data)
        abort();
    cleanup_free char *path = cache_path(opts, net->name, att);
    int r = write_file_atomic(path, data, strlen(data), 0600, err);
    free(data);
    return r;
}

/* Loads the cache entry: its network, capability args and result. ENOENT
 * when there is none. */
static int cache_read(const cni_opts_t *opts, const char *net_name, const cni_attachment_t *att,
                      cni_network_t **ret_net, json_t **ret_caps, json_t **ret_result,
                      cri_error_t *err)
{
    cleanup_free char *path = cache_path(opts, net_name, att);
    cleanup_free char *data = NULL;
    if (read_file(path, CNI_CACHE_MAX, &data, NULL, err) < 0)
        return -1;
    json_t *entry = json_loads(data, 0, NULL);
    json_t *config = json_object_get(entry, "config");
    cni_network_t *net = NULL;
    if (!config || cni_network_from_json(config, path, &net, err) < 0) {
        json_decref(entry);
        return cri_error_set(err, EINVAL, "CNI cache `%s` is corrupt", path);
    }
    json_t *caps = json_object_get(entry, "capabilityArgs");
    json_t *result = json_object_get(entry, "result");
    *ret_caps = json_is_object(caps) ? json_incref(caps) : json_object();
    *ret_result = json_is_object(result) ? json_incref(result) : NULL;
    *ret_net = net;
    json_decref(entry);
    return 0;
}

/* Runs the plugins in reverse for DEL; keeps going past a failure so as
 * much as possible is released, and reports the first one. */
static int del_all(const cni_opts_t *opts, const cni_network_t *net, const cni_attachment_t *att,
                   json_t *caps, json_t *prev, cri_error_t *err)
{
    bool with_prev = prev && cni_version_at_least(net->version, 0, 4);
    int rc = 0;
    for (size_t i = json_array_size(net->plugins); i-- > 0;) {
        cri_error_t e = CRI_ERROR_INIT;
        if (cni_exec_plugin(opts, net, i, CNI_DEL, att, caps, with_prev ? prev : NULL, NULL, &e) <
                0 &&
            rc == 0) {
            *err = e;
            rc = -1;
        }
    }
    return rc;
}

/* A failed ADD releases what ran; the cache entry written before it goes
 * only when that worked (else the runtime's DEL still needs it). */
static void add_undo(const cni_opts_t *opts, const cni_network_t *net, const cni_attachment_t *att,
                     json_t *caps, json_t *prev)
{
    cri_error_t ignored = CRI_ERROR_INIT;
    if (del_all(opts, net, att, caps, prev, &ignored) < 0)
        return;
    cleanup_free char *path = cache_path(opts, net->name, att);
    unlink(path);
}

int cni_add(const cni_opts_t *opts, const cni_network_t *net, const cni_attachment_t *att,
            cni_result_t **ret, cri_error_t *err)
{
    json_t *caps = cni_capability_args(att);
    json_t *prev = NULL;
    if (cache_write(opts, net, att, caps, NULL, err) < 0) {
        json_decref(caps);
        return cri_error_wrap(err, "network `%s` ADD", net->name);
    }
    for (size_t i = 0; i < json_array_size(net->plugins); i++) {
        json_t *res = NULL;
        if (cni_exec_plugin(opts, net, i, CNI_ADD, att, caps, prev, &res, err) < 0) {
            /* the runtime must DEL after a failed ADD: release what ran */
            add_undo(opts, net, att, caps, NULL);
            json_decref(prev);
            json_decref(caps);
            return cri_error_wrap(err, "network `%s` ADD", net->name);
        }
        json_decref(prev);
        prev = res;
    }
    char *text = json_dumps(prev, JSON_COMPACT);
    cni_result_t *res = NULL;
    int r = text ? cni_result_parse(text, &res, err) : cri_error_set(err, EIO, "dump result");
    free(text);
    if (r == 0 && cache_write(opts, net, att, caps, prev, err) < 0) {
        cni_result_free(res);
        r = -1;
    }
    if (r < 0) {
        add_undo(opts, net, att, caps, prev);
        json_decref(prev);
        json_decref(caps);
        return cri_error_wrap(err, "network `%s` ADD", net->name);
    }
    json_decref(prev);
    json_decref(caps);
    *ret = res;
    return 0;
}

int cni_del(const cni_opts_t *opts, const char *net_name, const cni_network_t *net,
            const cni_attachment_t *att, cri_error_t *err)
{
    cni_network_t *cached = NULL;
    json_t *caps = NULL, *result = NULL;
    cri_error_t cerr = CRI_ERROR_INIT;
    const char *name = net_name ? net_name : net ? net->name : NULL;
    if (name && cache_read(opts, name, att, &cached, &caps, &result, &cerr) < 0 &&
        cerr.status != ENOENT) {
        *err = cerr;
        return cri_error_wrap(err, "network `%s` DEL", name);
    }
    const cni_network_t *use = cached ? cached : net;
    if (!use)
        return 0;
    if (!caps)
        caps = cni_capability_args(att);
    int r = del_all(opts, use, att, caps, result, err);
    if (r == 0 && cached) {
        cleanup_free char *path = cache_path(opts, use->name, att);
        if (unlink(path) < 0 && errno != ENOENT)
            r = cri_error_make(err, errno, "remove CNI cache `%s`", path);
    }
    if (r < 0)
        cri_error_wrap(err, "network `%s` DEL", use->name); /* use may be cached: wrap first */
    json_decref(caps);
    json_decref(result);
    cni_network_free(cached);
    return r < 0 ? -1 : 0;
}

int cni_cache_sweep(const cni_opts_t *opts, cri_error_t *err)
{
    cleanup_dir DIR *dir = opendir(opts->cache_dir);
    if (!dir)
        return errno == ENOENT ? 0 : cri_error_make(err, errno, "open `%s`", opts->cache_dir);
    for (struct dirent *e = readdir(dir); e; e = readdir(dir)) {
        if (!strstr(e->d_name, ".json.tmp."))
            continue;
        if (unlinkat(dirfd(dir), e->d_name, 0) < 0 && errno != ENOENT)
            return cri_error_make(err, errno, "remove `%s/%s`", opts->cache_dir, e->d_name);
    }
    return 0;
}

int cni_check(const cni_opts_t *opts, const cni_network_t *net, const cni_attachment_t *att,
              cri_error_t *err)
{
    if (!cni_version_at_least(net->version, 0, 4))
        return cri_error_set(err, ENOSYS, "network `%s`: CHECK needs cniVersion 0.4.0 or later",
                             net->name);
    cni_network_t *cached = NULL;
    json_t *caps = NULL, *result = NULL;
    if (cache_read(opts, net->name, att, &cached, &caps, &result, err) < 0)
        return cri_error_wrap(err, "network `%s` CHECK", net->name);
    int r = 0;
    for (size_t i = 0; r == 0 && i < json_array_size(cached->plugins); i++)
        r = cni_exec_plugin(opts, cached, i, CNI_CHECK, att, caps, result, NULL, err);
    json_decref(caps);
    json_decref(result);
    cni_network_free(cached);
    if (r < 0)
        return cri_error_wrap(err, "network `%s` CHECK", net->name);
    return 0;
}

const cni_ops_t cni_plugin_ops = {
    .add = cni_add,
    .del = cni_del,
    .check = cni_check,
};
