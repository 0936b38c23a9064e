#include "cni.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"

#define CNI_CONFIG_MAX ((size_t)1024 * 1024)

static bool has_config_suffix(const char *name)
{
    static const char *const suffixes[] = {".conflist", ".conf", ".json"};
    size_t len = strlen(name);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t sl = strlen(suffixes[i]);
        if (len > sl && strcmp(name + len - sl, suffixes[i]) == 0)
            return true;
    }
    return false;
}

/* Network name of a valid config file, or NULL when it is not one. */
static char *config_network_name(const char *path)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return NULL;
    char *name = NULL;
    json_t *plugins = json_object_get(root, "plugins");
    json_t *type = json_object_get(root, "type");
    json_t *jname = json_object_get(root, "name");
    bool valid = plugins ? json_is_array(plugins) && json_array_size(plugins) > 0
                         : json_is_string(type) && json_string_length(type) > 0;
    if (valid && json_is_string(jname) && json_string_length(jname) > 0)
        name = xstrdup(json_string_value(jname));
    json_decref(root);
    return name;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int cni_find_config(const char *conf_dir, const char *want_name, char **ret_path, char **ret_name,
                    cri_error_t *err)
{
    cleanup_dir DIR *dir = opendir(conf_dir);
    if (!dir) {
        if (errno == ENOENT)
            return cri_error_set(err, ENOENT, "no network config: `%s` does not exist", conf_dir);
        return cri_error_make(err, errno, "open network config dir `%s`", conf_dir);
    }

    cleanup_strv char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (de->d_name[0] == '.' || !has_config_suffix(de->d_name))
            continue;
        if (n + 1 >= cap) {
            cap = cap ? cap * 2 : 8;
            names = xrealloc(names, cap * sizeof(*names));
        }
        names[n++] = xstrdup(de->d_name);
        names[n] = NULL;
    }
    if (n > 1)
        qsort(names, n, sizeof(*names), cmp_names);

    for (size_t i = 0; i < n; i++) {
        cleanup_free char *path = xasprintf("%s/%s", conf_dir, names[i]);
        cleanup_free char *name = config_network_name(path);
        if (!name)
            continue;
        if (want_name && *want_name && strcmp(name, want_name) != 0)
            continue;
        if (ret_name)
            *ret_name = TAKE_PTR(name);
        *ret_path = TAKE_PTR(path);
        return 0;
    }
    if (want_name && *want_name)
        return cri_error_set(err, ENOENT, "no valid network config named `%s` in `%s`", want_name,
                             conf_dir);
    return cri_error_set(err, ENOENT, "no valid network config in `%s`", conf_dir);
}
