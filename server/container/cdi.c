/* CDI (Container Device Interface) devices of CreateContainer
 * (ContainerConfig.CDI_devices): each fully-qualified name
 * "vendor.com/class=device" is looked up in the JSON spec files (*.json) of
 * runtime.cdi_spec_dirs, and the device's containerEdits plus its spec's
 * top-level containerEdits (once per spec) become devices, mounts and
 * environment variables of the container.
 *
 * Lookup: the dirs are searched last first (a later dir overrides an
 * earlier one, as /var/run/cdi does /etc/cdi), the files of a dir in
 * lexical order; the first spec of the device's kind that defines it wins.
 * A spec file that cannot be read or parsed is skipped with a warning (it
 * may belong to another vendor). Edits cricket cannot apply (hooks,
 * additionalGIDs, intelRdt, netDevices) are refused rather than ignored.
 * Errors: EINVAL for a malformed name or edit, ENOENT for a device no spec
 * defines, each naming CDI_devices[i]. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "server/container/container-internal.h"

#define CDI_MAX_SPEC_SIZE ((size_t)1 << 20)
#define CDI_MAX_FILES 1024

static const char *keep(container_cdi_t *c, char *s)
{
    c->strs = xrealloc(c->strs, (c->n_strs + 1) * sizeof(char *));
    c->strs[c->n_strs++] = s;
    return s;
}

void container_cdi_free(container_cdi_t *c)
{
    for (size_t i = 0; i < c->n_strs; i++)
        free(c->strs[i]);
    free(c->strs);
    free(c->env);
    free(c->devices);
    free(c->mounts);
    strv_free(c->applied_specs);
    memset(c, 0, sizeof(*c));
}

/* "vendor.com/class=name" -> kind "vendor.com/class" and "name". */
static bool split_name(const char *fq, char **ret_kind, const char **ret_dev)
{
    const char *eq = strchr(fq, '=');
    const char *slash = strchr(fq, '/');
    if (!eq || !slash || slash > eq || slash == fq || slash + 1 == eq || !eq[1])
        return false;
    const char *second = strchr(slash + 1, '/');
    if ((second && second < eq) || strchr(eq + 1, '='))
        return false;
    *ret_kind = xstrndup(fq, (size_t)(eq - fq));
    *ret_dev = eq + 1;
    return true;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static bool is_json(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && strcmp(name + n - 5, ".json") == 0 && name[0] != '.';
}

static json_t *load_spec(const char *path)
{
    cleanup_free char *data = NULL;
    size_t len = 0;
    cri_error_t err = CRI_ERROR_INIT;
    if (read_file(path, CDI_MAX_SPEC_SIZE, &data, &len, &err) < 0) {
        log_warn("CDI spec `%s` skipped: %s", path, err.msg);
        return NULL;
    }
    json_error_t jerr;
    json_t *spec = json_loadb(data, len, 0, &jerr);
    if (!spec || !json_is_object(spec)) {
        log_warn("CDI spec `%s` skipped: line %d: %s", path, jerr.line,
                 spec ? "not an object" : jerr.text);
        json_decref(spec);
        return NULL;
    }
    return spec;
}

static json_t *find_device(json_t *spec, const char *kind, const char *dev)
{
    const char *k = json_string_value(json_object_get(spec, "kind"));
    if (!k || strcmp(k, kind) != 0)
        return NULL;
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(spec, "devices"), i, d)
    {
        const char *name = json_string_value(json_object_get(d, "name"));
        if (name && strcmp(name, dev) == 0)
            return d;
    }
    return NULL;
}

/* The spec file defining kind/dev: *ret_spec (a new reference) and
 * *ret_path; 0 with *ret_spec NULL when none does. */
static void lookup(char *const *dirs, const char *kind, const char *dev, json_t **ret_spec,
                   char **ret_path)
{
    *ret_spec = NULL;
    for (size_t i = strv_len(dirs); i-- > 0;) {
        struct dirent **ents = NULL;
        int n = scandir(dirs[i], &ents, NULL, by_name);
        if (n < 0)
            continue; /* a missing dir defines nothing */
        for (int k = 0; k < n; k++) {
            if (!*ret_spec && k < CDI_MAX_FILES && is_json(ents[k]->d_name)) {
                cleanup_free char *path = xasprintf("%s/%s", dirs[i], ents[k]->d_name);
                json_t *spec = load_spec(path);
                if (spec && find_device(spec, kind, dev)) {
                    *ret_spec = spec;
                    *ret_path = TAKE_PTR(path);
                } else {
                    json_decref(spec);
                }
            }
            free(ents[k]);
        }
        free(ents);
        if (*ret_spec)
            return;
    }
}

static bool nonempty_array(json_t *edits, const char *key)
{
    json_t *v = json_object_get(edits, key);
    return v && !json_is_null(v) && !(json_is_array(v) && json_array_size(v) == 0);
}

static int edit_env(container_cdi_t *c, json_t *edits, const char *what, cri_error_t *err)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(edits, "env"), i, e)
    {
        const char *kv = json_string_value(e);
        const char *eq = kv ? strchr(kv, '=') : NULL;
        if (!eq || eq == kv)
            return cri_error_set(err, EINVAL, "%s: env[%zu] is not KEY=VALUE", what, i);
        c->env = xrealloc(c->env, (c->n_env + 1) * sizeof(*c->env));
        c->env[c->n_env].key = keep(c, xstrndup(kv, (size_t)(eq - kv)));
        c->env[c->n_env++].value = keep(c, xstrdup(eq + 1));
    }
    return 0;
}

static int edit_devices(container_cdi_t *c, json_t *edits, const char *what, cri_error_t *err)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(edits, "deviceNodes"), i, d)
    {
        const char *path = json_string_value(json_object_get(d, "path"));
        const char *host = json_string_value(json_object_get(d, "hostPath"));
        const char *perms = json_string_value(json_object_get(d, "permissions"));
        if (!path || path[0] != '/' || (host && host[0] != '/'))
            return cri_error_set(err, EINVAL,
                                 "%s: deviceNodes[%zu]: path and hostPath must be "
                                 "absolute",
                                 what, i);
        c->devices = xrealloc(c->devices, (c->n_devices + 1) * sizeof(*c->devices));
        c->devices[c->n_devices++] =
            (oci_device_t){keep(c, xstrdup(path)), keep(c, xstrdup(host ? host : path)),
                           perms ? keep(c, xstrdup(perms)) : NULL};
    }
    return 0;
}

static int edit_mounts(container_cdi_t *c, json_t *edits, const char *what, cri_error_t *err)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(edits, "mounts"), i, m)
    {
        const char *host = json_string_value(json_object_get(m, "hostPath"));
        const char *dest = json_string_value(json_object_get(m, "containerPath"));
        const char *type = json_string_value(json_object_get(m, "type"));
        if (!host || !dest || dest[0] != '/')
            return cri_error_set(err, EINVAL,
                                 "%s: mounts[%zu]: hostPath and an absolute "
                                 "containerPath are required",
                                 what, i);
        bool bind = !type || !type[0] || strcmp(type, "bind") == 0;
        if (bind && host[0] != '/')
            return cri_error_set(err, EINVAL, "%s: mounts[%zu]: hostPath `%s` is not absolute",
                                 what, i, host);
        oci_mount_t om = {.destination = keep(c, xstrdup(dest)),
                          .source = keep(c, xstrdup(host)),
                          .type = type && !bind ? keep(c, xstrdup(type)) : NULL};
        /* binds get rbind/rprivate and ro/rw from oci/: pass the rest */
        char **opts = NULL;
        size_t k;
        json_t *o;
        json_array_foreach(json_object_get(m, "options"), k, o)
        {
            const char *opt = json_string_value(o);
            if (!opt)
                continue;
            if (strcmp(opt, "ro") == 0)
                om.readonly = true;
            else if (strcmp(opt, "rw") != 0 && strcmp(opt, "bind") != 0 &&
                     strcmp(opt, "rbind") != 0)
                strv_push(&opts, xstrdup(opt));
        }
        if (opts) {
            om.options = (const char *const *)opts;
            for (char **p = opts; *p; p++)
                keep(c, *p);
            keep(c, (char *)opts); /* the vector itself; its strings are kept above */
        }
        c->mounts = xrealloc(c->mounts, (c->n_mounts + 1) * sizeof(*c->mounts));
        c->mounts[c->n_mounts++] = om;
    }
    return 0;
}

static int apply_edits(container_cdi_t *c, json_t *edits, const char *what, cri_error_t *err)
{
    if (!edits || json_is_null(edits))
        return 0;
    if (!json_is_object(edits))
        return cri_error_set(err, EINVAL, "%s: containerEdits is not an object", what);
    static const char *const refused[] = {"hooks", "additionalGIDs", "intelRdt", "netDevices"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (nonempty_array(edits, refused[i]))
            return cri_error_set(err, EINVAL, "%s: containerEdits.%s is not supported", what,
                                 refused[i]);
    if (edit_env(c, edits, what, err) < 0 || edit_devices(c, edits, what, err) < 0)
        return -1;
    return edit_mounts(c, edits, what, err);
}

int container_cdi_resolve(char *const *dirs, Runtime__V1__CDIDevice *const *devs, size_t n,
                          container_cdi_t *ret, cri_error_t *err)
{
    container_cdi_t c = {0};
    for (size_t i = 0; i < n; i++) {
        const char *fq = devs[i]->name;
        cleanup_free char *kind = NULL;
        const char *dev = NULL;
        if (!split_name(fq, &kind, &dev)) {
            container_cdi_free(&c);
            return cri_error_set(err, EINVAL,
                                 "CDI_devices[%zu].name `%s`: want vendor.com/class=device", i, fq);
        }
        cleanup_json json_t *spec = NULL;
        cleanup_free char *path = NULL;
        lookup(dirs, kind, dev, &spec, &path);
        if (!spec) {
            container_cdi_free(&c);
            return cri_error_set(err, ENOENT, "CDI_devices[%zu] `%s`: no CDI spec defines it", i,
                                 fq);
        }
        cleanup_free char *what = xasprintf("CDI_devices[%zu] `%s` (%s)", i, fq, path);
        int r = apply_edits(&c, json_object_get(find_device(spec, kind, dev), "containerEdits"),
                            what, err);
        bool seen = false;
        for (char **p = c.applied_specs; p && *p; p++)
            seen = seen || strcmp(*p, path) == 0;
        if (r == 0 && !seen) {
            r = apply_edits(&c, json_object_get(spec, "containerEdits"), what, err);
            strv_push(&c.applied_specs, xstrdup(path));
        }
        if (r < 0) {
            container_cdi_free(&c);
            return -1;
        }
    }
    *ret = c;
    return 0;
}
