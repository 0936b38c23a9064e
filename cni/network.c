/* Loading network configs: a .conflist, or a single-plugin .conf/.json. */
#include "cni-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"

#define CNI_CONFIG_MAX ((size_t)1024 * 1024)

/* Network names become cache file names: keep them to a safe alphabet (the
 * CNI spec's own rule). */
static bool name_valid(const char *s)
{
    if (!*s || strlen(s) > 200)
        return false;
    for (const char *p = s; *p; p++) {
        bool alnum =
            (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9');
        if (!alnum && (p == s || !strchr("_.-", *p)))
            return false;
    }
    return true;
}

static bool type_valid(const char *s)
{
    return *s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

int cni_network_from_json(json_t *root, const char *origin, cni_network_t **ret, cri_error_t *err)
{
    if (!json_is_object(root))
        return cri_error_set(err, EINVAL, "network config `%s`: not a JSON object", origin);
    const char *name = json_string_value(json_object_get(root, "name"));
    const char *version = json_string_value(json_object_get(root, "cniVersion"));
    if (!name || !name_valid(name))
        return cri_error_set(err, EINVAL, "network config `%s`: \"name\" is missing or invalid",
                             origin);
    if (!version || !*version)
        return cri_error_set(err, EINVAL, "network config `%s`: \"cniVersion\" is missing", origin);

    json_t *plugins = json_object_get(root, "plugins");
    json_t *list;
    if (plugins) {
        if (!json_is_array(plugins) || json_array_size(plugins) == 0)
            return cri_error_set(err, EINVAL, "network config `%s`: \"plugins\" is empty", origin);
        list = json_deep_copy(plugins);
    } else {
        /* a single plugin config: the file itself is the plugin */
        list = json_pack("[o]", json_deep_copy(root));
        json_t *only = json_array_get(list, 0);
        json_object_del(only, "name");
        json_object_del(only, "cniVersion");
    }
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p)
    {
        const char *type = json_string_value(json_object_get(p, "type"));
        if (!json_is_object(p) || !type || !type_valid(type)) {
            json_decref(list);
            return cri_error_set(
                err, EINVAL, "network config `%s`: plugin %zu has no valid \"type\"", origin, i);
        }
    }
    cni_network_t *net = xcalloc(1, sizeof(*net));
    net->name = xstrdup(name);
    net->version = xstrdup(version);
    net->plugins = list;
    *ret = net;
    return 0;
}

int cni_network_parse(const char *json, const char *origin, cni_network_t **ret, cri_error_t *err)
{
    json_error_t jerr;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return cri_error_set(err, EINVAL, "network config `%s`: line %d: %s", origin, jerr.line,
                             jerr.text);
    int r = cni_network_from_json(root, origin, ret, err);
    json_decref(root);
    return r;
}

int cni_network_load(const char *path, cni_network_t **ret, cri_error_t *err)
{
    cleanup_free char *data = NULL;
    if (read_file(path, CNI_CONFIG_MAX, &data, NULL, err) < 0)
        return cri_error_wrap(err, "load network config");
    return cni_network_parse(data, path, ret, err);
}

void cni_network_free(cni_network_t *net)
{
    if (!net)
        return;
    free(net->name);
    free(net->version);
    json_decref(net->plugins);
    free(net);
}

const char *cni_network_name(const cni_network_t *net)
{
    return net->name;
}

const char *cni_network_version(const cni_network_t *net)
{
    return net->version;
}

json_t *cni_network_to_json(const cni_network_t *net)
{
    return json_pack("{s:s, s:s, s:O}", "cniVersion", net->version, "name", net->name, "plugins",
                     net->plugins);
}

bool cni_version_at_least(const char *version, int major, int minor)
{
    unsigned long ma = 0, mi = 0;
    if (!parse_major_minor(version, &ma, &mi))
        return false;
    if (major < 0 || minor < 0)
        return true;
    return ma > (unsigned long)major || (ma == (unsigned long)major && mi >= (unsigned long)minor);
}
