/* A sandbox's persistent record: one JSON object per pod in STORE_PODS.
 * Everything RunPodSandbox decided is in it, so Stop and Remove work after a
 * daemon restart or a reboot without the request. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/sandbox/sandbox.h"

#define RECORD_VERSION 1

static json_t *pairs_to_json(char **pairs)
{
    json_t *o = json_object();
    for (char **p = pairs; p[0] && p[1]; p += 2)
        json_object_set_new(o, p[0], json_string(p[1]));
    return o;
}

static json_t *strv_to_json(char **v)
{
    json_t *a = json_array();
    for (char **p = v; *p; p++)
        json_array_append_new(a, json_string(*p));
    return a;
}

char *sandbox_record_dump(sandbox_t *sb, bool creating)
{
    pid_t pid = 0;
    sandbox_state_t state = sandbox_get_state(sb, &pid);
    json_t *o = json_pack(
        "{s:i, s:s, s:s, s:{s:s, s:s, s:s, s:I}, s:o, s:o, s:s, s:s, s:I, s:{s:i, s:i, s:i}, "
        "s:s, s:s, s:s, s:s, s:s, s:o, s:i, s:i, s:b, s:b}",
        "version", RECORD_VERSION, "id", sb->id, "name", sb->name, "metadata", "name",
        sb->meta_name, "uid", sb->meta_uid, "namespace", sb->meta_namespace, "attempt",
        (json_int_t)sb->attempt, "labels", pairs_to_json(sb->labels), "annotations",
        pairs_to_json(sb->annotations), "runtime_handler", sb->runtime_handler, "runtime",
        sb->runtime, "created_at", (json_int_t)sb->created_at, "namespaces", "network",
        sb->ns_network, "pid", sb->ns_pid, "ipc", sb->ns_ipc, "hostname", sb->hostname,
        "log_directory", sb->log_directory, "cgroup_parent", sb->cgroup_parent, "netns",
        sb->netns_path, "cni_network", sb->cni_network, "ips", strv_to_json(sb->ips), "state",
        (int)state, "pid", (int)pid, "creating", creating, "privileged", sb->privileged);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        abort(); /* only on OOM: every string came from valid UTF-8 input */
    return text;
}

/* Flattens an object of strings into key, value, ..., NULL. */
static int json_to_pairs(json_t *o, char ***ret, cri_error_t *err)
{
    if (!json_is_object(o))
        return cri_error_set(err, EINVAL, "not an object");
    char **v = xcalloc(json_object_size(o) * 2 + 1, sizeof(char *));
    size_t n = 0;
    const char *k;
    json_t *val;
    json_object_foreach(o, k, val)
    {
        if (!json_is_string(val)) {
            strv_free(v);
            return cri_error_set(err, EINVAL, "value of `%s` is not a string", k);
        }
        v[n++] = xstrdup(k);
        v[n++] = xstrdup(json_string_value(val));
    }
    *ret = v;
    return 0;
}

static int json_to_strv(json_t *a, char ***ret, cri_error_t *err)
{
    if (!json_is_array(a))
        return cri_error_set(err, EINVAL, "not an array");
    char **v = xcalloc(json_array_size(a) + 1, sizeof(char *));
    size_t i;
    json_t *val;
    json_array_foreach(a, i, val)
    {
        if (!json_is_string(val)) {
            strv_free(v);
            return cri_error_set(err, EINVAL, "element %zu is not a string", i);
        }
        v[i] = xstrdup(json_string_value(val));
    }
    *ret = v;
    return 0;
}

static void set_str(char **field, const char *value)
{
    free(*field);
    *field = xstrdup(value);
}

static int record_fill(sandbox_t *sb, json_t *o, bool *ret_creating, cri_error_t *err)
{
    const char *id, *name, *mname, *muid, *mns, *handler, *runtime, *hostname, *logdir, *cgp,
        *netns, *cninet;
    json_int_t attempt, created;
    json_t *labels, *annotations, *ips;
    int version, netmode, pidmode, ipcmode, state, pid, creating = 0, privileged = 0;
    json_error_t jerr;
    if (json_unpack_ex(o, &jerr, 0,
                       "{s:i, s:s, s:s, s:{s:s, s:s, s:s, s:I}, s:o, s:o, s:s, s:s, s:I, "
                       "s:{s:i, s:i, s:i}, s:s, s:s, s:s, s:s, s:s, s:o, s:i, s:i, s?b, s?b}",
                       "version", &version, "id", &id, "name", &name, "metadata", "name", &mname,
                       "uid", &muid, "namespace", &mns, "attempt", &attempt, "labels", &labels,
                       "annotations", &annotations, "runtime_handler", &handler, "runtime",
                       &runtime, "created_at", &created, "namespaces", "network", &netmode, "pid",
                       &pidmode, "ipc", &ipcmode, "hostname", &hostname, "log_directory", &logdir,
                       "cgroup_parent", &cgp, "netns", &netns, "cni_network", &cninet, "ips", &ips,
                       "state", &state, "pid", &pid, "creating", &creating, "privileged",
                       &privileged) < 0)
        return cri_error_set(err, EINVAL, "%s", jerr.text);
    if (version != RECORD_VERSION)
        return cri_error_set(err, EINVAL, "unknown record version %d", version);
    const char *const src[] = {id,      name,     mname,  muid, mns,   handler,
                               runtime, hostname, logdir, cgp,  netns, cninet};
    char **dst[] = {&sb->id,
                    &sb->name,
                    &sb->meta_name,
                    &sb->meta_uid,
                    &sb->meta_namespace,
                    &sb->runtime_handler,
                    &sb->runtime,
                    &sb->hostname,
                    &sb->log_directory,
                    &sb->cgroup_parent,
                    &sb->netns_path,
                    &sb->cni_network};
    for (size_t i = 0; i < sizeof(src) / sizeof(src[0]); i++)
        set_str(dst[i], src[i]);
    sb->attempt = (uint32_t)attempt;
    sb->created_at = created;
    sb->ns_network = netmode;
    sb->ns_pid = pidmode;
    sb->ns_ipc = ipcmode;
    sb->privileged = privileged != 0; /* missing in older records: not privileged */
    strv_free(sb->labels);
    strv_free(sb->annotations);
    strv_free(sb->ips);
    sb->labels = sb->annotations = sb->ips = NULL;
    if (json_to_pairs(labels, &sb->labels, err) < 0)
        return cri_error_wrap(err, "labels");
    if (json_to_pairs(annotations, &sb->annotations, err) < 0)
        return cri_error_wrap(err, "annotations");
    if (json_to_strv(ips, &sb->ips, err) < 0)
        return cri_error_wrap(err, "ips");
    sb->state = state == SANDBOX_STATE_READY ? SANDBOX_STATE_READY : SANDBOX_STATE_NOTREADY;
    sb->pid = pid;
    *ret_creating = creating != 0;
    return 0;
}

int sandbox_record_parse(const char *json, size_t len, sandbox_t **ret, bool *ret_creating,
                         cri_error_t *err)
{
    json_error_t jerr;
    json_t *o = json_loadb(json, len, 0, &jerr);
    if (!o)
        return cri_error_set(err, EINVAL, "parse pod record: line %d: %s", jerr.line, jerr.text);
    sandbox_t *sb = sandbox_new();
    bool creating = false;
    int r = record_fill(sb, o, &creating, err);
    json_decref(o);
    if (r < 0) {
        sandbox_unref(sb);
        return cri_error_wrap(err, "parse pod record");
    }
    *ret = sb;
    *ret_creating = creating;
    return 0;
}
