/* A container's persistent record: one JSON object per container in
 * STORE_CONTAINERS, holding everything CreateContainer decided, so status,
 * stop and remove work after a daemon restart without the request. The run
 * state is written at create, start, stop and whenever an exit is recorded
 * (lifecycle.c container_persist_exit), so an exit survives a reboot that
 * wipes the exit files. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/container/container.h"
#include "server/record.h"

#define RECORD_VERSION 1

static json_t *mounts_to_json(const container_t *c)
{
    json_t *a = json_array();
    for (size_t i = 0; i < c->n_mounts; i++) {
        const container_mount_t *m = &c->mounts[i];
        json_t *o = json_pack("{s:s, s:s, s:b, s:b, s:i}", "container_path", m->container_path,
                              "host_path", m->host_path, "readonly", m->readonly, "selinux_relabel",
                              m->selinux_relabel, "propagation", m->propagation);
        if (m->image_ref) /* absent: a host path (and every older record) */
            json_object_set_new(o, "image",
                                json_pack("{s:s, s:s, s:s}", "image", m->image, "ref", m->image_ref,
                                          "sub_path", m->image_sub_path));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *gids_to_json(const container_t *c)
{
    json_t *a = json_array();
    for (size_t i = 0; i < c->n_gids; i++)
        json_array_append_new(a, json_integer(c->gids[i]));
    return a;
}

static json_t *resources_to_json(const container_resources_t *r)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:s}", "cpu_period",
                     (json_int_t)r->cpu_period, "cpu_quota", (json_int_t)r->cpu_quota, "cpu_shares",
                     (json_int_t)r->cpu_shares, "memory_limit", (json_int_t)r->memory_limit,
                     "memory_swap", (json_int_t)r->memory_swap, "oom_score_adj",
                     (json_int_t)r->oom_score_adj, "cpuset_cpus", r->cpuset_cpus, "cpuset_mems",
                     r->cpuset_mems);
}

char *container_record_dump(container_t *c, bool creating)
{
    pthread_mutex_lock(&c->lock);
    json_t *run =
        json_pack("{s:i, s:i, s:I, s:I, s:i, s:s, s:s, s:o}", "state", (int)c->state, "pid",
                  (int)c->pid, "started_at", (json_int_t)c->started_at, "finished_at",
                  (json_int_t)c->finished_at, "exit_code", c->exit_code, "reason", c->reason,
                  "message", c->message, "resources", resources_to_json(&c->resources));
    pthread_mutex_unlock(&c->lock);
    json_t *o = json_pack(
        "{s:i, s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:{s:s, s:s, s:s, s:s}, s:o, s:s, s:s, s:I, "
        "s:i, s:b, s:b, s:b, s:o, s:i, s:i, s:o, s:o, s:b}",
        "version", RECORD_VERSION, "id", c->id, "name", c->name, "sandbox_id", c->sandbox_id,
        "meta_name", c->meta_name, "attempt", (json_int_t)c->attempt, "labels",
        record_pairs_to_json(c->labels), "annotations", record_pairs_to_json(c->annotations),
        "image", "name", c->image_name, "user_specified", c->image_user, "ref", c->image_ref, "id",
        c->image_id, "chain_ids", record_strv_to_json(c->chain_ids), "runtime", c->runtime,
        "log_path", c->log_path, "created_at", (json_int_t)c->created_at, "stop_signal",
        c->stop_signal, "tty", c->tty, "stdin", c->stdin_open, "stdin_once", c->stdin_once,
        "mounts", mounts_to_json(c), "uid", (int)c->uid, "gid", (int)c->gid, "gids",
        gids_to_json(c), "run", run, "creating", creating);
    return record_dump(o);
}

static int parse_mounts(container_t *c, json_t *a, cri_error_t *err)
{
    if (!json_is_array(a))
        return cri_error_set(err, EINVAL, "mounts: not an array");
    c->mounts = xcalloc(json_array_size(a) + 1, sizeof(*c->mounts));
    size_t i;
    json_t *m;
    json_array_foreach(a, i, m)
    {
        const char *cp = NULL, *hp = NULL;
        int ro = 0, relabel = 0, prop = 0;
        json_error_t je;
        if (json_unpack_ex(m, &je, 0, "{s:s, s:s, s:b, s:b, s:i}", "container_path", &cp,
                           "host_path", &hp, "readonly", &ro, "selinux_relabel", &relabel,
                           "propagation", &prop) < 0)
            return cri_error_set(err, EINVAL, "mounts[%zu]: %s", i, je.text);
        c->mounts[i] = (container_mount_t){.container_path = xstrdup(cp),
                                           .host_path = xstrdup(hp),
                                           .readonly = ro,
                                           .selinux_relabel = relabel,
                                           .propagation = prop};
        c->n_mounts = i + 1;
        json_t *img = json_object_get(m, "image");
        const char *image = NULL, *ref = NULL, *sub = NULL;
        if (img && json_unpack_ex(img, &je, 0, "{s:s, s:s, s:s}", "image", &image, "ref", &ref,
                                  "sub_path", &sub) < 0)
            return cri_error_set(err, EINVAL, "mounts[%zu].image: %s", i, je.text);
        if (img) {
            c->mounts[i].image = xstrdup(image);
            c->mounts[i].image_ref = xstrdup(ref);
            c->mounts[i].image_sub_path = xstrdup(sub);
        }
    }
    return 0;
}

static int parse_run(container_t *c, json_t *run, cri_error_t *err)
{
    int state = 0, pid = 0, code = 0;
    json_int_t started = 0, finished = 0;
    const char *reason = NULL, *message = NULL;
    json_int_t period = 0, quota = 0, shares = 0, mem = 0, swap = 0, oom = 0;
    const char *cpus = NULL, *mems = NULL;
    json_error_t je;
    if (json_unpack_ex(run, &je, 0,
                       "{s:i, s:i, s:I, s:I, s:i, s:s, s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:s, "
                       "s:s}}",
                       "state", &state, "pid", &pid, "started_at", &started, "finished_at",
                       &finished, "exit_code", &code, "reason", &reason, "message", &message,
                       "resources", "cpu_period", &period, "cpu_quota", &quota, "cpu_shares",
                       &shares, "memory_limit", &mem, "memory_swap", &swap, "oom_score_adj", &oom,
                       "cpuset_cpus", &cpus, "cpuset_mems", &mems) < 0)
        return cri_error_set(err, EINVAL, "run: %s", je.text);
    if (state < CONTAINER_STATE_CREATED || state > CONTAINER_STATE_UNKNOWN)
        return cri_error_set(err, EINVAL, "run: state %d is invalid", state);
    c->state = (container_state_t)state;
    c->pid = pid;
    c->started_at = started;
    c->finished_at = finished;
    c->exit_code = code;
    str_set(&c->reason, reason);
    str_set(&c->message, message);
    c->resources.cpu_period = period;
    c->resources.cpu_quota = quota;
    c->resources.cpu_shares = shares;
    c->resources.memory_limit = mem;
    c->resources.memory_swap = swap;
    c->resources.oom_score_adj = oom;
    str_set(&c->resources.cpuset_cpus, cpus);
    str_set(&c->resources.cpuset_mems, mems);
    return 0;
}

static int parse_fields(void *obj, json_t *o, bool *ret_creating, cri_error_t *err)
{
    container_t *c = obj;
    int version = 0, tty = 0, in = 0, once = 0, creating = 0, sig = 0, uid = 0, gid = 0;
    const char *id, *name, *sbid, *mname, *iname, *iuser, *iref, *iid, *runtime, *log_path;
    json_int_t attempt = 0, created = 0;
    json_t *labels, *annotations, *chain, *mounts, *gids, *run;
    json_error_t je;
    if (json_unpack_ex(o, &je, 0,
                       "{s:i, s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:{s:s, s:s, s:s, s:s}, s:o, s:s, "
                       "s:s, s:I, s:i, s:b, s:b, s:b, s:o, s:i, s:i, s:o, s:o, s:b}",
                       "version", &version, "id", &id, "name", &name, "sandbox_id", &sbid,
                       "meta_name", &mname, "attempt", &attempt, "labels", &labels, "annotations",
                       &annotations, "image", "name", &iname, "user_specified", &iuser, "ref",
                       &iref, "id", &iid, "chain_ids", &chain, "runtime", &runtime, "log_path",
                       &log_path, "created_at", &created, "stop_signal", &sig, "tty", &tty, "stdin",
                       &in, "stdin_once", &once, "mounts", &mounts, "uid", &uid, "gid", &gid,
                       "gids", &gids, "run", &run, "creating", &creating) < 0)
        return cri_error_set(err, EINVAL, "%s", je.text);
    if (version != RECORD_VERSION)
        return cri_error_set(err, EINVAL, "record version %d is not %d", version, RECORD_VERSION);
    str_set(&c->id, id);
    str_set(&c->name, name);
    str_set(&c->sandbox_id, sbid);
    str_set(&c->meta_name, mname);
    c->attempt = (uint32_t)attempt;
    str_set(&c->image_name, iname);
    str_set(&c->image_user, iuser);
    str_set(&c->image_ref, iref);
    str_set(&c->image_id, iid);
    str_set(&c->runtime, runtime);
    str_set(&c->log_path, log_path);
    c->created_at = created;
    c->stop_signal = sig;
    c->tty = tty;
    c->stdin_open = in;
    c->stdin_once = once;
    c->uid = (uint32_t)uid;
    c->gid = (uint32_t)gid;
    if (record_json_to_label_maps(labels, annotations, &c->labels, &c->annotations, err) < 0)
        return -1;
    if (record_json_to_strv(chain, &c->chain_ids, err) < 0)
        return cri_error_wrap(err, "chain_ids");
    if (!json_is_array(gids))
        return cri_error_set(err, EINVAL, "gids: not an array");
    c->gids = xcalloc(json_array_size(gids) + 1, sizeof(*c->gids));
    for (size_t i = 0; i < json_array_size(gids); i++)
        c->gids[c->n_gids++] = json_integer_value(json_array_get(gids, i));
    if (parse_mounts(c, mounts, err) < 0 || parse_run(c, run, err) < 0)
        return -1;
    *ret_creating = creating;
    return 0;
}

RECORD_DEFINE_PARSE(container, container_t, "container record", parse_fields)
