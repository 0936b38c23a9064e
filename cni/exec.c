/* Running one CNI plugin: environment, stdin config, result or error. */
#include "cni-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/spawn.h"
#include "common/util.h"

static const char *const command_names[] = {"ADD", "DEL", "CHECK"};

/* The first plugin_dirs entry holding an executable `type`. */
static int find_plugin(const cni_opts_t *opts, const char *type, char **ret_path, cri_error_t *err)
{
    for (size_t i = 0; opts->plugin_dirs && opts->plugin_dirs[i]; i++) {
        cleanup_free char *p = xasprintf("%s/%s", opts->plugin_dirs[i], type);
        if (access(p, X_OK) == 0) {
            *ret_path = TAKE_PTR(p);
            return 0;
        }
    }
    return cri_error_set(err, ENOENT, "plugin `%s` not found in the plugin dirs", type);
}

static char *join(char *const *v, const char *sep)
{
    size_t len = 1;
    for (size_t i = 0; v && v[i]; i++)
        len += strlen(v[i]) + strlen(sep);
    char *s = xcalloc(1, len);
    for (size_t i = 0; v && v[i]; i++) {
        if (i)
            strncat(s, sep, len - strlen(s) - 1);
        strncat(s, v[i], len - strlen(s) - 1);
    }
    return s;
}

/* The plugin's stdin: its own config plus name, cniVersion, prevResult and
 * the runtimeConfig entries for the capabilities it declares. */
static char *plugin_stdin(const cni_network_t *net, size_t i, json_t *cap_args, json_t *prev)
{
    json_t *conf = json_deep_copy(json_array_get(net->plugins, i));
    json_object_set_new(conf, "name", json_string(net->name));
    json_object_set_new(conf, "cniVersion", json_string(net->version));
    if (prev)
        json_object_set(conf, "prevResult", prev);
    json_t *caps = json_object_get(conf, "capabilities");
    json_t *rc = json_object();
    const char *key;
    json_t *val;
    json_object_foreach(caps, key, val)
    {
        json_t *arg = json_object_get(cap_args, key);
        if (json_is_true(val) && arg)
            json_object_set(rc, key, arg);
    }
    if (json_object_size(rc) > 0)
        json_object_set_new(conf, "runtimeConfig", rc);
    else
        json_decref(rc);
    char *s = json_dumps(conf, JSON_COMPACT);
    json_decref(conf);
    if (!s)
        abort();
    return s;
}

struct started_ctx {
    const cni_opts_t *opts;
    const char *command;
};

static void plugin_started(void *arg)
{
    const struct started_ctx *sc = arg;
    sc->opts->plugin_started(sc->command);
}

/* The plugin's error: its JSON error object when it printed one. */
static int plugin_failed(const char *type, cni_command_t cmd, const spawn_result_t *r,
                         cri_error_t *err)
{
    json_t *e = json_loads(r->out, 0, NULL);
    const char *msg = json_string_value(json_object_get(e, "msg"));
    const char *details = json_string_value(json_object_get(e, "details"));
    json_int_t code = json_integer_value(json_object_get(e, "code"));
    char how[64];
    spawn_describe_status(r->wait_status, how, sizeof(how));
    if (msg)
        cri_error_set(err, EIO, "plugin `%s` %s: %s%s%s (code %lld)", type, command_names[cmd], msg,
                      details && *details ? ": " : "", details ? details : "", (long long)code);
    else
        cri_error_set(err, EIO, "plugin `%s` %s failed (%s): %s", type, command_names[cmd], how,
                      r->err_len ? r->err : r->out);
    json_decref(e);
    return -1;
}

int cni_exec_plugin(const cni_opts_t *opts, const cni_network_t *net, size_t i, cni_command_t cmd,
                    const cni_attachment_t *att, json_t *cap_args, json_t *prev,
                    json_t **ret_result, cri_error_t *err)
{
    const char *type = json_string_value(json_object_get(json_array_get(net->plugins, i), "type"));
    cleanup_free char *path = NULL;
    if (find_plugin(opts, type, &path, err) < 0)
        return -1;

    cleanup_free char *args = join((char *const *)att->args, ";");
    cleanup_free char *cni_path = join(opts->plugin_dirs, ":");
    const char *sys_path = getenv("PATH");
    cleanup_free char *e_cmd = xasprintf("CNI_COMMAND=%s", command_names[cmd]);
    cleanup_free char *e_id = xasprintf("CNI_CONTAINERID=%s", att->container_id);
    cleanup_free char *e_ns = xasprintf("CNI_NETNS=%s", att->netns ? att->netns : "");
    cleanup_free char *e_if = xasprintf("CNI_IFNAME=%s", att->ifname ? att->ifname : "eth0");
    cleanup_free char *e_args = xasprintf("CNI_ARGS=IgnoreUnknown=1%s%s", *args ? ";" : "", args);
    cleanup_free char *e_cpath = xasprintf("CNI_PATH=%s", cni_path);
    cleanup_free char *e_path =
        xasprintf("PATH=%s", sys_path ? sys_path : "/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin");
    const char *envp[] = {e_cmd, e_id, e_ns, e_if, e_args, e_cpath, e_path, opts->marker_env, NULL};
    const char *argv[] = {path, NULL};
    cleanup_free char *input = plugin_stdin(net, i, cap_args, prev);

    spawn_opts_t so = SPAWN_OPTS_INIT;
    so.argv = argv;
    so.envp = envp;
    so.stdin_data = input;
    so.stdin_len = strlen(input);
    so.timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 60000;
    struct started_ctx sc = {opts, command_names[cmd]};
    if (opts->plugin_started) {
        so.started = plugin_started;
        so.started_arg = &sc;
    }
    spawn_result_t r = {0};
    if (spawn_run(&so, &r, err) < 0)
        return cri_error_wrap(err, "plugin `%s` %s", type, command_names[cmd]);
    if (!WIFEXITED(r.wait_status) || WEXITSTATUS(r.wait_status) != 0) {
        plugin_failed(type, cmd, &r, err);
        spawn_result_free(&r);
        return -1;
    }
    int rc = 0;
    if (ret_result && cmd == CNI_ADD) {
        json_error_t jerr;
        json_t *res = json_loads(r.out, 0, &jerr);
        if (!json_is_object(res)) {
            json_decref(res);
            rc = cri_error_set(err, EIO, "plugin `%s` ADD: result is not a JSON object", type);
        } else {
            *ret_result = res;
        }
    }
    spawn_result_free(&r);
    return rc;
}
