/* The environment of a container's process. */
#include "container.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Index of KEY in env (entries "KEY=..."), or -1. */
static ssize_t env_find(char **env, size_t n, const char *key, size_t key_len)
{
    for (size_t i = 0; i < n; i++)
        if (strncmp(env[i], key, key_len) == 0 && env[i][key_len] == '=')
            return (ssize_t)i;
    return -1;
}

static void env_set(char **env, size_t *n, char *entry)
{
    size_t key_len = strcspn(entry, "=");
    ssize_t at = env_find(env, *n, entry, key_len);
    if (at >= 0) {
        free(env[at]);
        env[at] = entry;
    } else {
        env[(*n)++] = entry;
    }
}

int container_env(char *const *image_env, const container_env_kv_t *envs, size_t n_envs,
                  const char *hostname, char ***ret_env, cri_error_t *err)
{
    for (size_t i = 0; i < n_envs; i++)
        if (!envs[i].key || !*envs[i].key || strchr(envs[i].key, '='))
            return cri_error_set(err, EINVAL, "config.envs[%zu].key `%s` is invalid", i,
                                 envs[i].key ? envs[i].key : "");
    size_t n_img = strv_len(image_env);
    cleanup_strv char **env = xcalloc(n_img + n_envs + 3, sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; i < n_img; i++)
        if (strchr(image_env[i], '=')) /* a bare "KEY" carries no value: skip */
            env_set(env, &n, xstrdup(image_env[i]));
    for (size_t i = 0; i < n_envs; i++)
        env_set(env, &n, xasprintf("%s=%s", envs[i].key, envs[i].value ? envs[i].value : ""));
    if (hostname && *hostname && env_find(env, n, "HOSTNAME", 8) < 0)
        env[n++] = xasprintf("HOSTNAME=%s", hostname);
    if (env_find(env, n, "PATH", 4) < 0)
        env[n++] = xstrdup(DEFAULT_PATH);
    env[n] = NULL;
    *ret_env = TAKE_PTR(env);
    return 0;
}
