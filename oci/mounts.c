/* Mounts: the defaults every container gets, plus the caller's binds. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "oci/oci-internal.h"

#define OPTS(...) ((const char *const[]){__VA_ARGS__, NULL})

typedef struct default_mount {
    const char *destination;
    const char *type;
    const char *const *options;
    bool sys; /* read-only unless privileged */
} default_mount_t;

/* The kernel file systems a container expects, parents first. /dev/shm is
 * added separately (tmpfs or the pod's shared directory). */
static const default_mount_t default_mounts[] = {
    {"/proc", "proc", OPTS("nosuid", "noexec", "nodev"), false},
    {"/dev", "tmpfs", OPTS("nosuid", "strictatime", "mode=755", "size=65536k"), false},
    {"/dev/pts", "devpts",
     OPTS("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"), false},
    {"/dev/mqueue", "mqueue", OPTS("nosuid", "noexec", "nodev"), false},
    {"/sys", "sysfs", OPTS("nosuid", "noexec", "nodev"), true},
    {"/sys/fs/cgroup", "cgroup", OPTS("nosuid", "noexec", "nodev", "relatime"), true},
};

/* Compares paths ignoring trailing slashes ("/dev/shm/" == "/dev/shm"). */
static bool path_same(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la > 1 && a[la - 1] == '/')
        la--;
    while (lb > 1 && b[lb - 1] == '/')
        lb--;
    return la == lb && memcmp(a, b, la) == 0;
}

static bool user_mount_at(const oci_desc_t *desc, const char *dest)
{
    for (size_t i = 0; i < desc->n_mounts; i++)
        if (desc->mounts[i].destination && path_same(desc->mounts[i].destination, dest))
            return true;
    return false;
}

static json_t *mount_json(const char *dest, const char *type, const char *source, json_t *opts)
{
    json_t *m = json_object();
    oci_json_set(m, "destination", json_string(dest));
    oci_json_set(m, "type", json_string(type));
    oci_json_set(m, "source", json_string(source));
    oci_json_set(m, "options", opts);
    return m;
}

static void add_defaults(const oci_desc_t *desc, json_t *mounts)
{
    for (size_t i = 0; i < sizeof(default_mounts) / sizeof(default_mounts[0]); i++) {
        const default_mount_t *d = &default_mounts[i];
        if (user_mount_at(desc, d->destination))
            continue;
        json_t *opts = oci_json_strv(d->options);
        if (d->sys)
            oci_json_push(opts, json_string(desc->privileged ? "rw" : "ro"));
        oci_json_push(mounts, mount_json(d->destination, d->type, d->type, opts));
    }
    if (user_mount_at(desc, "/dev/shm"))
        return;
    if (desc->shm_path && desc->shm_path[0])
        oci_json_push(mounts,
                      mount_json("/dev/shm", "bind", desc->shm_path,
                                 oci_json_strv(OPTS("rbind", "nosuid", "nodev", "noexec"))));
    else
        oci_json_push(mounts, mount_json("/dev/shm", "tmpfs", "shm",
                                         oci_json_strv(OPTS("nosuid", "noexec", "nodev",
                                                            "mode=1777", "size=65536k"))));
}

static const char *propagation_option(oci_propagation_t p)
{
    switch (p) {
    case OCI_PROPAGATION_HOST_TO_CONTAINER:
        return "rslave";
    case OCI_PROPAGATION_BIDIRECTIONAL:
        return "rshared";
    case OCI_PROPAGATION_PRIVATE:
        break;
    }
    return "rprivate";
}

static bool is_bind(const oci_mount_t *m)
{
    return !m->type || !m->type[0] || strcmp(m->type, "bind") == 0;
}

static int mount_check(const oci_mount_t *m, const oci_host_t *host, cri_error_t *err)
{
    if (!m->destination || m->destination[0] != '/')
        return cri_error_set(err, EINVAL, "mount destination `%s` is not absolute",
                             m->destination ? m->destination : "");
    if (is_bind(m) && (!m->source || m->source[0] != '/'))
        return cri_error_set(err, EINVAL, "bind mount source `%s` for `%s` is not absolute",
                             m->source ? m->source : "", m->destination);
    if ((unsigned)m->propagation > OCI_PROPAGATION_BIDIRECTIONAL)
        return cri_error_set(err, EINVAL, "mount `%s`: unknown propagation %d", m->destination,
                             (int)m->propagation);
    if (m->recursive_readonly) {
        if (!m->readonly)
            return cri_error_set(err, EINVAL, "mount `%s`: recursive read-only needs read-only",
                                 m->destination);
        if (m->propagation != OCI_PROPAGATION_PRIVATE)
            return cri_error_set(err, EINVAL,
                                 "mount `%s`: recursive read-only needs private propagation",
                                 m->destination);
        if (!host->rro_supported && !host->rro_hook)
            return cri_error_set(err, ENOTSUP,
                                 "mount `%s`: recursive read-only is not supported by the "
                                 "runtime or kernel",
                                 m->destination);
    }
    return 0;
}

static json_t *user_mount_json(const oci_mount_t *m, const oci_host_t *host)
{
    json_t *opts = json_array();
    if (is_bind(m)) {
        oci_json_push(opts, json_string("rbind"));
        oci_json_push(opts, json_string(propagation_option(m->propagation)));
    }
    for (const char *const *o = m->options; o && *o; o++)
        oci_json_push(opts, json_string(*o));
    oci_json_push(opts, json_string(m->readonly ? "ro" : "rw"));
    if (m->recursive_readonly && host->rro_supported)
        oci_json_push(opts, json_string("rro"));
    const char *type = is_bind(m) ? "bind" : m->type;
    const char *source = m->source && m->source[0] ? m->source : type;
    return mount_json(m->destination, type, source, opts);
}

static size_t path_depth(const char *p)
{
    size_t d = 0;
    for (const char *s = p; *s; s++)
        if (*s == '/' && s[1] && s[1] != '/')
            d++;
    return d;
}

json_t *oci_rro_hooks(const oci_desc_t *desc, const oci_host_t *host)
{
    if (host->rro_supported || !host->rro_hook)
        return NULL;
    json_t *args = NULL;
    for (size_t i = 0; i < desc->n_mounts; i++) {
        if (!desc->mounts[i].recursive_readonly)
            continue;
        if (!args) {
            args = json_array();
            oci_json_push(args, json_string("cricket-rro"));
            oci_json_push(args, json_string(desc->root_path));
        }
        oci_json_push(args, json_string(desc->mounts[i].destination));
    }
    if (!args)
        return NULL;
    json_t *hook = json_object();
    oci_json_set(hook, "path", json_string(host->rro_hook));
    oci_json_set(hook, "args", args);
    json_t *list = json_array();
    oci_json_push(list, hook);
    json_t *hooks = json_object();
    oci_json_set(hooks, "createContainer", list);
    return hooks;
}

int oci_mounts_build(const oci_desc_t *desc, const oci_host_t *host, json_t **ret, cri_error_t *err)
{
    for (size_t i = 0; i < desc->n_mounts; i++)
        if (mount_check(&desc->mounts[i], host, err) < 0)
            return -1;

    json_t *mounts = json_array();
    add_defaults(desc, mounts);

    /* Parents before children (a stable insertion order by depth), so a
     * bind at /a/b is not hidden by a later bind at /a. */
    cleanup_free size_t *order = xcalloc(desc->n_mounts, sizeof(size_t));
    for (size_t i = 0; i < desc->n_mounts; i++) {
        size_t j = i;
        size_t di = path_depth(desc->mounts[i].destination);
        while (j > 0 && path_depth(desc->mounts[order[j - 1]].destination) > di) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (size_t i = 0; i < desc->n_mounts; i++)
        oci_json_push(mounts, user_mount_json(&desc->mounts[order[i]], host));
    *ret = mounts;
    return 0;
}
