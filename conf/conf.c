/* Config lifecycle: the key table, defaults, origins, and loading files and
 * drop-in directories. */
#include "conf-internal.h"

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/util.h"

#define OFF(field) offsetof(conf_t, field)

/* Every key, in the order conf_to_yaml() writes them; a section precedes its
 * keys. Keep conf/cricket.yaml in step. */
const conf_key_t conf_keys[] = {
    {"listen", CONF_KEY_STRING, OFF(listen), conf_check_listen},
    {"root", CONF_KEY_STRING, OFF(root), conf_check_abs_path},
    {"runroot", CONF_KEY_STRING, OFF(runroot), conf_check_abs_path},
    {"log_level", CONF_KEY_STRING, OFF(log_level), conf_check_log_level},
    {"runtime", CONF_KEY_SECTION, 0, NULL},
    {"runtime.default_handler", CONF_KEY_STRING, OFF(runtime.default_handler), conf_check_nonempty},
    {"runtime.handlers", CONF_KEY_HANDLERS, 0, NULL},
    {"runtime.cgroup_manager", CONF_KEY_STRING, OFF(runtime.cgroup_manager),
     conf_check_cgroup_manager},
    {"runtime.conmon_path", CONF_KEY_STRING, OFF(runtime.conmon_path), conf_check_nonempty},
    {"runtime.pause_path", CONF_KEY_STRING, OFF(runtime.pause_path), conf_check_nonempty},
    {"runtime.cdi_spec_dirs", CONF_KEY_STRV, OFF(runtime.cdi_spec_dirs), conf_check_abs_path},
    {"runtime.drop_infra", CONF_KEY_BOOL, OFF(runtime.drop_infra), NULL},
    {"network", CONF_KEY_SECTION, 0, NULL},
    {"network.conf_dir", CONF_KEY_STRING, OFF(network.conf_dir), conf_check_abs_path},
    {"network.plugin_dirs", CONF_KEY_STRV, OFF(network.plugin_dirs), conf_check_abs_path},
    {"network.default_network", CONF_KEY_STRING, OFF(network.default_network), NULL},
    {"network.plugin_timeout", CONF_KEY_DURATION, OFF(network.plugin_timeout_ms), NULL},
    {"image", CONF_KEY_SECTION, 0, NULL},
    {"image.registries", CONF_KEY_REGISTRIES, 0, NULL},
    {"image.insecure_registries", CONF_KEY_STRV, OFF(image.insecure_registries),
     conf_check_registry},
    {"image.pause_image", CONF_KEY_STRING, OFF(image.pause_image), NULL},
    {"image.pull_progress_timeout", CONF_KEY_DURATION, OFF(image.pull_progress_timeout_ms), NULL},
    {"image.auth_file", CONF_KEY_STRING, OFF(image.auth_file), conf_check_abs_path_or_empty},
    {"image.pull_timeout", CONF_KEY_DURATION, OFF(image.pull_timeout_ms), NULL},
    {"image.max_layer_unpacked_bytes", CONF_KEY_COUNT, OFF(image.max_layer_unpacked_bytes), NULL},
    {"image.max_layer_entries", CONF_KEY_COUNT, OFF(image.max_layer_entries), NULL},
    {"streaming", CONF_KEY_SECTION, 0, NULL},
    {"streaming.address", CONF_KEY_STRING, OFF(streaming.address), conf_check_ip},
    {"streaming.port", CONF_KEY_PORT, OFF(streaming.port), NULL},
    {"streaming.tls_cert", CONF_KEY_STRING, OFF(streaming.tls_cert), conf_check_abs_path_or_empty},
    {"streaming.tls_key", CONF_KEY_STRING, OFF(streaming.tls_key), conf_check_abs_path_or_empty},
    {"streaming.tls_client_ca", CONF_KEY_STRING, OFF(streaming.tls_client_ca),
     conf_check_abs_path_or_empty},
    {"streaming.max_connections", CONF_KEY_COUNT, OFF(streaming.max_connections),
     conf_check_count_limit},
    {"streaming.max_connections_per_client", CONF_KEY_COUNT,
     OFF(streaming.max_connections_per_client), conf_check_count_limit},
    {"streaming.max_port_forwards", CONF_KEY_COUNT, OFF(streaming.max_port_forwards),
     conf_check_count_limit},
    {"streaming.handshake_timeout", CONF_KEY_DURATION, OFF(streaming.handshake_timeout_ms), NULL},
    {"streaming.idle_timeout", CONF_KEY_DURATION, OFF(streaming.idle_timeout_ms), NULL},
    {"events", CONF_KEY_SECTION, 0, NULL},
    {"events.queue_length", CONF_KEY_COUNT, OFF(events.queue_length), conf_check_count_limit},
    {"metrics", CONF_KEY_SECTION, 0, NULL},
    {"metrics.enable", CONF_KEY_BOOL, OFF(metrics.enable), NULL},
    {"metrics.address", CONF_KEY_STRING, OFF(metrics.address), conf_check_ip},
    {"metrics.port", CONF_KEY_PORT, OFF(metrics.port), NULL},
};
const size_t conf_n_keys = sizeof(conf_keys) / sizeof(conf_keys[0]);

const conf_key_t *conf_key_find(const char *key)
{
    for (size_t i = 0; i < conf_n_keys; i++)
        if (strcmp(conf_keys[i].key, key) == 0)
            return &conf_keys[i];
    return NULL;
}

struct conf_origins {
    conf_origin_t *v;
    size_t n, cap;
};

static char **strv_new(const char *const *items)
{
    if (!items)
        return xcalloc(1, sizeof(char *));
    size_t n = 0;
    while (items[n])
        n++;
    char **v = xcalloc(n + 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = xstrdup(items[i]);
    return v;
}

static char *path_join(const char *dir, const char *name)
{
    size_t len = strlen(dir);
    while (len > 0 && dir[len - 1] == '/')
        len--;
    return xasprintf("%.*s/%s", (int)len, dir, name);
}

conf_t *conf_new_defaults(const char *exe_dir)
{
    static const char *const plugin_dirs[] = {"/opt/cni/bin", "/usr/lib/cni", NULL};
    static const char *const cdi_spec_dirs[] = {"/etc/cdi", "/var/run/cdi", NULL};
    conf_t *c = xcalloc(1, sizeof(*c));

    c->listen = xstrdup("unix:///run/cricket/cricket.sock");
    c->root = xstrdup("/var/lib/cricket");
    c->runroot = xstrdup("/run/cricket");
    c->log_level = xstrdup("info");
    c->runtime.default_handler = xstrdup("runc");
    conf_handler_get(c, "runc", true);
    c->runtime.cgroup_manager = xstrdup("cgroupfs");
    if (exe_dir && !exe_dir[0])
        exe_dir = NULL;
    c->runtime.conmon_path =
        exe_dir ? path_join(exe_dir, "cricket-conmon") : xstrdup("cricket-conmon");
    c->runtime.pause_path =
        exe_dir ? path_join(exe_dir, "cricket-pause") : xstrdup("cricket-pause");
    c->runtime.cdi_spec_dirs = strv_new(cdi_spec_dirs);
    c->runtime.drop_infra = true;
    c->network.conf_dir = xstrdup("/etc/cni/net.d");
    c->network.plugin_dirs = strv_new(plugin_dirs);
    c->network.default_network = xstrdup("");
    c->network.plugin_timeout_ms = 60000;
    c->image.insecure_registries = strv_new(NULL);
    c->image.pause_image = xstrdup("");
    c->image.pull_progress_timeout_ms = 60000;
    c->image.auth_file = xstrdup("");
    c->image.pull_timeout_ms = 3600000;
    c->image.max_layer_unpacked_bytes = (uint64_t)64 << 30;
    c->image.max_layer_entries = 1000000;
    c->streaming.address = xstrdup("127.0.0.1");
    c->streaming.port = 0;
    c->streaming.tls_cert = xstrdup("");
    c->streaming.tls_key = xstrdup("");
    c->streaming.tls_client_ca = xstrdup("");
    c->streaming.max_connections = 1024;
    c->streaming.max_connections_per_client = 128;
    c->streaming.max_port_forwards = 64;
    c->streaming.handshake_timeout_ms = 10000;
    c->streaming.idle_timeout_ms = (uint64_t)4 * 3600 * 1000;
    c->events.queue_length = 1024;
    c->metrics.enable = false;
    c->metrics.address = xstrdup("127.0.0.1");
    c->metrics.port = 9090;
    c->origins = xcalloc(1, sizeof(*c->origins));
    return c;
}

void conf_free(conf_t *conf)
{
    if (!conf)
        return;
    for (size_t i = 0; i < conf_n_keys; i++) {
        const conf_key_t *k = &conf_keys[i];
        if (k->kind == CONF_KEY_STRING)
            free(*CONF_FIELD(conf, k, char *));
        else if (k->kind == CONF_KEY_STRV)
            strv_free(*CONF_FIELD(conf, k, char **));
    }
    for (size_t i = 0; i < conf->runtime.n_handlers; i++) {
        free(conf->runtime.handlers[i].name);
        free(conf->runtime.handlers[i].path);
        free(conf->runtime.handlers[i].root);
    }
    free(conf->runtime.handlers);
    for (size_t i = 0; i < conf->image.n_registries; i++) {
        free(conf->image.registries[i].host);
        free(conf->image.registries[i].location);
        strv_free(conf->image.registries[i].mirrors);
    }
    free(conf->image.registries);
    if (conf->origins) {
        for (size_t i = 0; i < conf->origins->n; i++) {
            free(conf->origins->v[i].key);
            free(conf->origins->v[i].file);
        }
        free(conf->origins->v);
        free(conf->origins);
    }
    free(conf);
}

conf_handler_t *conf_handler_get(conf_t *conf, const char *name, bool create)
{
    for (size_t i = 0; i < conf->runtime.n_handlers; i++)
        if (strcmp(conf->runtime.handlers[i].name, name) == 0)
            return &conf->runtime.handlers[i];
    if (!create)
        return NULL;
    size_t n = conf->runtime.n_handlers;
    conf->runtime.handlers = xrealloc(conf->runtime.handlers, (n + 1) * sizeof(conf_handler_t));
    conf_handler_t *h = &conf->runtime.handlers[n];
    h->name = xstrdup(name);
    h->path = xstrdup(name);
    h->root = xstrdup("");
    conf->runtime.n_handlers = n + 1;
    return h;
}

conf_registry_t *conf_registry_get(conf_t *conf, const char *host, bool create)
{
    for (size_t i = 0; i < conf->image.n_registries; i++)
        if (strcmp(conf->image.registries[i].host, host) == 0)
            return &conf->image.registries[i];
    if (!create)
        return NULL;
    size_t n = conf->image.n_registries;
    conf->image.registries = xrealloc(conf->image.registries, (n + 1) * sizeof(conf_registry_t));
    conf_registry_t *r = &conf->image.registries[n];
    r->host = xstrdup(host);
    r->location = xstrdup(host);
    r->mirrors = strv_new(NULL);
    conf->image.n_registries = n + 1;
    return r;
}

const conf_handler_t *conf_find_handler(const conf_t *conf, const char *name)
{
    return conf_handler_get((conf_t *)conf, name, false);
}

const conf_registry_t *conf_find_registry(const conf_t *conf, const char *host)
{
    return conf_registry_get((conf_t *)conf, host, false);
}

void conf_origin_set(conf_t *conf, const char *key, const char *file, int line)
{
    struct conf_origins *o = conf->origins;
    for (size_t i = 0; i < o->n; i++) {
        if (strcmp(o->v[i].key, key) == 0) {
            if (strcmp(o->v[i].file, file) != 0) {
                str_set(&o->v[i].file, file);
            }
            o->v[i].line = line;
            return;
        }
    }
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 32;
        o->v = xrealloc(o->v, o->cap * sizeof(*o->v));
    }
    o->v[o->n++] = (conf_origin_t){.key = xstrdup(key), .file = xstrdup(file), .line = line};
}

void conf_origin_drop_items(conf_t *conf, const char *key)
{
    struct conf_origins *o = conf->origins;
    size_t len = strlen(key), j = 0;
    for (size_t i = 0; i < o->n; i++) {
        if (strncmp(o->v[i].key, key, len) == 0 && o->v[i].key[len] == '[') {
            free(o->v[i].key);
            free(o->v[i].file);
            continue;
        }
        o->v[j++] = o->v[i];
    }
    o->n = j;
}

const conf_origin_t *conf_origin_find(const conf_t *conf, const char *key)
{
    const struct conf_origins *o = conf->origins;
    for (size_t i = 0; o && i < o->n; i++)
        if (strcmp(o->v[i].key, key) == 0)
            return &o->v[i];
    return NULL;
}

int conf_load_buffer(conf_t *conf, const char *name, const char *data, size_t len, cri_error_t *err)
{
    cleanup_conf_node conf_node_t *root = NULL;

    if (len > CONF_MAX_FILE_SIZE)
        return cri_error_set(err, EINVAL, "%s: larger than %zu bytes", name, CONF_MAX_FILE_SIZE);
    if (conf_parse(name, data, len, &root, err) < 0)
        return -1;
    if (!root)
        return 0;
    /* Check everything first so that a bad file leaves conf untouched. */
    if (conf_apply(conf, name, root, false, err) < 0)
        return -1;
    return conf_apply(conf, name, root, true, err);
}

int conf_load_file(conf_t *conf, const char *path, cri_error_t *err)
{
    cleanup_free char *data = NULL;
    size_t len = 0;

    if (read_file(path, CONF_MAX_FILE_SIZE + 1, &data, &len, err) < 0) {
        if (err->status == EFBIG)
            return cri_error_set(err, EINVAL, "%s: larger than %zu bytes", path,
                                 CONF_MAX_FILE_SIZE);
        return -1;
    }
    return conf_load_buffer(conf, path, data, len, err);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_dropin_name(const char *name)
{
    size_t len = strlen(name);
    return name[0] != '.' && len > 5 && strcmp(name + len - 5, ".yaml") == 0;
}

/* The sorted `*.yaml` names of dir; *ret_names is NULL when dir is missing. */
static int list_dropins(const char *dir, char ***ret_names, cri_error_t *err)
{
    cleanup_dir DIR *d = opendir(dir);
    cleanup_strv char **names = NULL;
    size_t n = 0, cap = 0;

    if (!d) {
        if (errno == ENOENT) {
            *ret_names = NULL;
            return 0;
        }
        return cri_error_make(err, errno, "open drop-in dir `%s`", dir);
    }
    names = xcalloc(1, sizeof(*names));
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno != 0)
                return cri_error_make(err, errno, "read drop-in dir `%s`", dir);
            break;
        }
        if (!is_dropin_name(de->d_name))
            continue;
        if (n + 1 >= cap) {
            cap = cap ? cap * 2 : 16;
            names = xrealloc(names, cap * sizeof(*names));
        }
        names[n++] = xstrdup(de->d_name);
        names[n] = NULL;
    }
    qsort(names, n, sizeof(*names), cmp_names);
    *ret_names = TAKE_PTR(names);
    return 0;
}

int conf_load(conf_t *conf, const char *main_path, const char *dropin_dir, bool main_required,
              cri_error_t *err)
{
    if (main_path) {
        cri_error_t e = CRI_ERROR_INIT;
        if (conf_load_file(conf, main_path, &e) < 0 && (e.status != ENOENT || main_required)) {
            *err = e;
            return -1;
        }
    }
    if (!dropin_dir)
        return 0;

    cleanup_strv char **names = NULL;
    if (list_dropins(dropin_dir, &names, err) < 0)
        return -1;
    for (size_t i = 0; names && names[i]; i++) {
        cleanup_free char *path = path_join(dropin_dir, names[i]);
        struct stat st;
        if (stat(path, &st) < 0) /* a dangling symlink is an error too */
            return cri_error_make(err, errno, "stat `%s`", path);
        if (!S_ISREG(st.st_mode))
            continue;
        if (conf_load_file(conf, path, err) < 0)
            return -1;
    }
    return 0;
}
