/* A sandbox's persistent record: one JSON object per pod in STORE_PODS.
 * Everything RunPodSandbox decided is in it, so Stop and Remove work after a
 * daemon restart or a reboot without the request. */
#include <errno.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/record.h"
#include "server/sandbox/sandbox-internal.h"

#define RECORD_VERSION 1

json_t *sandbox_limits_to_json(const cgroup_limits_t *l)
{
    return json_pack("{s:I, s:I, s:I, s:I}", "cpu_period", (json_int_t)l->cpu_period, "cpu_quota",
                     (json_int_t)l->cpu_quota, "cpu_shares", (json_int_t)l->cpu_shares,
                     "memory_limit", (json_int_t)l->memory_limit);
}

static int limits_from_json(json_t *o, cgroup_limits_t *ret, cri_error_t *err)
{
    json_int_t period = 0, quota = 0, shares = 0, mem = 0;
    json_error_t jerr;
    if (json_unpack_ex(o, &jerr, 0, "{s?I, s?I, s?I, s?I}", "cpu_period", &period, "cpu_quota",
                       &quota, "cpu_shares", &shares, "memory_limit", &mem) < 0)
        return cri_error_set(err, EINVAL, "%s", jerr.text);
    ret->cpu_period = period;
    ret->cpu_quota = quota;
    ret->cpu_shares = shares;
    ret->memory_limit = mem;
    return 0;
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
        (json_int_t)sb->attempt, "labels", record_pairs_to_json(sb->labels), "annotations",
        record_pairs_to_json(sb->annotations), "runtime_handler", sb->runtime_handler, "runtime",
        sb->runtime, "created_at", (json_int_t)sb->created_at, "namespaces", "network",
        sb->ns_network, "pid", sb->ns_pid, "ipc", sb->ns_ipc, "hostname", sb->hostname,
        "log_directory", sb->log_directory, "cgroup_parent", sb->cgroup_parent, "netns",
        sb->netns_path, "cni_network", sb->cni_network, "ips", record_strv_to_json(sb->ips),
        "state", (int)state, "pid", (int)pid, "creating", creating, "privileged", sb->privileged);
    pthread_mutex_lock(&sb->lock);
    if (o && sb->resources_set) {
        json_object_set_new(o, "resources", sandbox_limits_to_json(&sb->resources));
        json_object_set_new(o, "overhead", sandbox_limits_to_json(&sb->overhead));
    }
    pthread_mutex_unlock(&sb->lock);
    /* absent in older records: an infra, no ipc/uts pins */
    json_object_set_new(o, "infra", json_boolean(sb->infra));
    if (sb->ipcns_path[0])
        json_object_set_new(o, "ipcns", json_string(sb->ipcns_path));
    if (sb->utsns_path[0])
        json_object_set_new(o, "utsns", json_string(sb->utsns_path));
    if (sb->userns_path[0]) /* absent: the host's user namespace (older records too) */
        json_object_set_new(o, "userns",
                            json_pack("{s:s, s:[I,I,I], s:[I,I,I]}", "path", sb->userns_path, "uid",
                                      (json_int_t)sb->uid_map[0], (json_int_t)sb->uid_map[1],
                                      (json_int_t)sb->uid_map[2], "gid", (json_int_t)sb->gid_map[0],
                                      (json_int_t)sb->gid_map[1], (json_int_t)sb->gid_map[2]));
    return record_dump(o);
}

static int userns_fill(sandbox_t *sb, json_t *o, cri_error_t *err)
{
    json_t *u = json_object_get(o, "userns");
    if (!u)
        return 0;
    const char *path;
    json_int_t m[6];
    json_error_t jerr;
    if (json_unpack_ex(u, &jerr, 0, "{s:s, s:[I,I,I], s:[I,I,I]}", "path", &path, "uid", &m[0],
                       &m[1], &m[2], "gid", &m[3], &m[4], &m[5]) < 0)
        return cri_error_set(err, EINVAL, "userns: %s", jerr.text);
    for (int i = 0; i < 6; i++)
        if (m[i] < 0 || m[i] > UINT32_MAX)
            return cri_error_set(err, EINVAL, "userns: id %lld out of range", (long long)m[i]);
    str_set(&sb->userns_path, path);
    for (int i = 0; i < 3; i++) {
        sb->uid_map[i] = (uint32_t)m[i];
        sb->gid_map[i] = (uint32_t)m[3 + i];
    }
    return 0;
}

/* The pod's infra flag and ipc/uts pins (absent in older records: an
 * infra, no pins). */
static int pins_fill(sandbox_t *sb, json_t *o, cri_error_t *err)
{
    json_t *infra = json_object_get(o, "infra");
    if (infra && !json_is_boolean(infra))
        return cri_error_set(err, EINVAL, "infra: not a boolean");
    sb->infra = !infra || json_is_true(infra);
    const char *keys[] = {"ipcns", "utsns"};
    char **dst[] = {&sb->ipcns_path, &sb->utsns_path};
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(o, keys[i]);
        if (v && !json_is_string(v))
            return cri_error_set(err, EINVAL, "%s: not a string", keys[i]);
        str_set(dst[i], v ? json_string_value(v) : "");
    }
    return 0;
}

static int record_fill(void *obj, json_t *o, bool *ret_creating, cri_error_t *err)
{
    sandbox_t *sb = obj;
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
        str_set(dst[i], src[i]);
    sb->attempt = (uint32_t)attempt;
    sb->created_at = created;
    sb->ns_network = netmode;
    sb->ns_pid = pidmode;
    sb->ns_ipc = ipcmode;
    sb->privileged = privileged != 0; /* missing in older records: not privileged */
    if (record_json_to_label_maps(labels, annotations, &sb->labels, &sb->annotations, err) < 0)
        return -1;
    if (record_json_to_strv(ips, &sb->ips, err) < 0)
        return cri_error_wrap(err, "ips");
    if (userns_fill(sb, o, err) < 0 || pins_fill(sb, o, err) < 0)
        return -1;
    sb->state = state == SANDBOX_STATE_READY ? SANDBOX_STATE_READY : SANDBOX_STATE_NOTREADY;
    sb->pid = pid;
    json_t *res = json_object_get(o, "resources"), *over = json_object_get(o, "overhead");
    if (res) { /* older records have none */
        if (limits_from_json(res, &sb->resources, err) < 0)
            return cri_error_wrap(err, "resources");
        if (over && limits_from_json(over, &sb->overhead, err) < 0)
            return cri_error_wrap(err, "overhead");
        sb->resources_set = true;
    }
    *ret_creating = creating != 0;
    return 0;
}

RECORD_DEFINE_PARSE(sandbox, sandbox_t, "parse pod record", record_fill)
