/* The runtime object, the dispatchers, and the verbs of the real ops table
 * (runc-compatible command line). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "oci/oci-internal.h"

#define DEFAULT_TIMEOUT_MS 120000

static char *find_in_path(const char *name)
{
    if (strchr(name, '/'))
        return access(name, X_OK) == 0 ? xstrdup(name) : NULL;
    const char *path = getenv("PATH");
    cleanup_free char *copy = xstrdup(path && *path ? path
                                                    : "/usr/local/sbin:/usr/local/bin:"
                                                      "/usr/sbin:/usr/bin:/sbin:/bin");
    char *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        cleanup_free char *cand = xasprintf("%s/%s", dir, name);
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
            return TAKE_PTR(cand);
    }
    return NULL;
}

int oci_runtime_sweep_tmp(oci_runtime_t *rt, cri_error_t *err)
{
    cleanup_dir DIR *dir = opendir(rt->tmp_dir);
    if (!dir)
        return errno == ENOENT ? 0 : cri_error_make(err, errno, "open `%s`", rt->tmp_dir);
    for (struct dirent *e = readdir(dir); e; e = readdir(dir)) {
        const char *dash = strchr(e->d_name, '-');
        char *end = NULL;
        long pid = dash ? strtol(dash + 1, &end, 10) : 0;
        if (pid <= 0 || !end || *end != '-' || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 ||
            errno != ESRCH)
            continue;
        if (unlinkat(dirfd(dir), e->d_name, 0) < 0 && errno != ENOENT)
            return cri_error_make(err, errno, "remove `%s/%s`", rt->tmp_dir, e->d_name);
    }
    return 0;
}

int oci_runtime_new(const char *path, const char *root, int timeout_ms, const oci_host_t *host,
                    oci_runtime_t **ret, cri_error_t *err)
{
    if (!path || !*path || !root || root[0] != '/')
        return cri_error_set(err, EINVAL, "runtime needs a binary and an absolute root");
    cleanup_free char *bin = find_in_path(path);
    if (!bin)
        return cri_error_set(err, ENOENT, "runtime binary `%s` not found or not executable", path);
    cleanup_free char *tmp = xasprintf("%s.tmp", root);
    if (mkdir_p(root, 0700, err) < 0 || mkdir_p(tmp, 0700, err) < 0)
        return cri_error_wrap(err, "runtime root");

    oci_runtime_t *rt = xcalloc(1, sizeof(*rt));
    rt->ops = &oci_runtime_exec_ops;
    const char *base = strrchr(bin, '/');
    rt->name = xstrdup(base ? base + 1 : bin);
    rt->path = TAKE_PTR(bin);
    rt->root = xstrdup(root);
    rt->tmp_dir = TAKE_PTR(tmp);
    rt->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
    if (host)
        rt->host = *host;
    else
        oci_host_detect(&rt->host);
    *ret = rt;
    return 0;
}

oci_runtime_t *oci_runtime_new_with_ops(const struct oci_runtime_ops *ops, const char *name,
                                        const char *root, void *userdata)
{
    oci_runtime_t *rt = xcalloc(1, sizeof(*rt));
    rt->ops = ops;
    rt->name = xstrdup(name);
    rt->path = xstrdup(name);
    rt->root = xstrdup(root);
    rt->tmp_dir = xasprintf("%s.tmp", root ? root : "");
    rt->timeout_ms = DEFAULT_TIMEOUT_MS;
    rt->host.oom_score_adj_min = -1000;
    rt->userdata = userdata;
    return rt;
}

void oci_runtime_free(oci_runtime_t *rt)
{
    if (!rt)
        return;
    free(rt->name);
    free(rt->path);
    free(rt->root);
    free(rt->tmp_dir);
    free(rt);
}

const char *oci_status_name(oci_status_t status)
{
    static const char *const names[] = {"unknown", "creating", "created",
                                        "running", "paused",   "stopped"};
    if ((unsigned)status < sizeof(names) / sizeof(names[0]))
        return names[status];
    return "unknown";
}

oci_status_t oci_status_parse(const char *s)
{
    for (int i = OCI_STATUS_CREATING; i <= OCI_STATUS_STOPPED; i++)
        if (s && strcmp(s, oci_status_name((oci_status_t)i)) == 0)
            return (oci_status_t)i;
    return OCI_STATUS_UNKNOWN;
}

#define DISPATCH(op, ...)                                                            \
    do {                                                                             \
        if (!rt->ops->op)                                                            \
            return cri_error_set(err, ENOSYS, "runtime `%s` has no " #op, rt->name); \
        return rt->ops->op(rt, __VA_ARGS__, err);                                    \
    } while (0)

int oci_runtime_create(oci_runtime_t *rt, const char *id, const char *bundle,
                       const oci_create_opts_t *opts, cri_error_t *err)
{
    DISPATCH(create, id, bundle, opts);
}

int oci_runtime_start(oci_runtime_t *rt, const char *id, cri_error_t *err)
{
    DISPATCH(start, id);
}

int oci_runtime_kill(oci_runtime_t *rt, const char *id, int signo, bool all, cri_error_t *err)
{
    DISPATCH(kill, id, signo, all);
}

int oci_runtime_delete(oci_runtime_t *rt, const char *id, bool force, cri_error_t *err)
{
    DISPATCH(delete, id, force);
}

int oci_runtime_state(oci_runtime_t *rt, const char *id, oci_state_t *ret_state, cri_error_t *err)
{
    DISPATCH(state, id, ret_state);
}

int oci_runtime_update(oci_runtime_t *rt, const char *id, const oci_resources_t *res,
                       cri_error_t *err)
{
    DISPATCH(update, id, res);
}

int oci_runtime_pause(oci_runtime_t *rt, const char *id, cri_error_t *err)
{
    DISPATCH(pause, id);
}

int oci_runtime_resume(oci_runtime_t *rt, const char *id, cri_error_t *err)
{
    DISPATCH(resume, id);
}

int oci_runtime_exec(oci_runtime_t *rt, const char *id, const oci_process_t *proc,
                     const oci_exec_opts_t *opts, int *ret_wait_status, cri_error_t *err)
{
    DISPATCH(exec, id, proc, opts, ret_wait_status);
}

int oci_runtime_exec_sync(oci_runtime_t *rt, const char *id, const oci_exec_sync_opts_t *opts,
                          oci_exec_sync_result_t *ret, cri_error_t *err)
{
    DISPATCH(exec_sync, id, opts, ret);
}

void oci_exec_sync_result_clear(oci_exec_sync_result_t *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

/* rro needs the runtime to know the option and mount_setattr (Linux 5.12). */
static bool kernel_at_least(int want_major, int want_minor)
{
    struct utsname u;
    if (uname(&u) < 0)
        return false;
    char *end = NULL;
    long maj = strtol(u.release, &end, 10);
    long min = end && *end == '.' ? strtol(end + 1, NULL, 10) : 0;
    return maj > want_major || (maj == want_major && min >= want_minor);
}

int oci_runtime_supports_rro(oci_runtime_t *rt, bool *ret, cri_error_t *err)
{
    cleanup_json json_t *features = NULL;
    if (oci_runtime_features(rt, &features, err) < 0)
        return -1;
    bool found = false;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(features, "mountOptions"), i,
                       o) if (json_is_string(o) && strcmp(json_string_value(o), "rro") == 0) found =
        true;
    *ret = found && kernel_at_least(5, 12);
    return 0;
}
