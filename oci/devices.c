/* Device nodes and device cgroup rules. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "oci/oci-internal.h"

#define HOST_DEV_MAX_DEPTH 8

static json_t *node_json(const char *path, const struct stat *st)
{
    json_t *d = json_object();
    oci_json_set(d, "path", json_string(path));
    oci_json_set(d, "type", json_string(S_ISBLK(st->st_mode) ? "b" : "c"));
    oci_json_set(d, "major", json_integer(major(st->st_rdev)));
    oci_json_set(d, "minor", json_integer(minor(st->st_rdev)));
    oci_json_set(d, "fileMode", json_integer(st->st_mode & 07777));
    oci_json_set(d, "uid", json_integer(st->st_uid));
    oci_json_set(d, "gid", json_integer(st->st_gid));
    return d;
}

static bool permissions_ok(const char *p)
{
    if (strlen(p) > 3)
        return false;
    for (; *p; p++)
        if (*p != 'r' && *p != 'w' && *p != 'm')
            return false;
    return true;
}

int oci_device_add(const oci_device_t *dev, json_t *devices, json_t *rules, cri_error_t *err)
{
    if (!dev->host_path || dev->host_path[0] != '/')
        return cri_error_set(err, EINVAL, "device host path `%s` is not absolute",
                             dev->host_path ? dev->host_path : "");
    const char *cpath =
        dev->container_path && dev->container_path[0] ? dev->container_path : dev->host_path;
    if (cpath[0] != '/')
        return cri_error_set(err, EINVAL, "device container path `%s` is not absolute", cpath);
    const char *perm = dev->permissions && dev->permissions[0] ? dev->permissions : "rwm";
    if (!permissions_ok(perm))
        return cri_error_set(err, EINVAL, "device `%s`: bad permissions `%s`", dev->host_path,
                             perm);

    struct stat st;
    if (stat(dev->host_path, &st) < 0)
        return cri_error_make(err, errno, "stat device `%s`", dev->host_path);
    if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
        return cri_error_set(err, EINVAL, "`%s` is not a device", dev->host_path);

    oci_json_push(devices, node_json(cpath, &st));
    json_t *rule = json_object();
    oci_json_set(rule, "allow", json_true());
    oci_json_set(rule, "type", json_string(S_ISBLK(st.st_mode) ? "b" : "c"));
    oci_json_set(rule, "major", json_integer(major(st.st_rdev)));
    oci_json_set(rule, "minor", json_integer(minor(st.st_rdev)));
    oci_json_set(rule, "access", json_string(perm));
    oci_json_push(rules, rule);
    return 0;
}

/* Directories and files of /dev a privileged container must not copy: the
 * runtime makes its own pts, shm, mqueue and console; fd is a symlink farm. */
static bool host_dev_skip(const char *name, bool top)
{
    static const char *const skip[] = {"pts",  "shm",         "mqueue", "fd", "console",
                                       ".lxc", ".lxd-mounts", ".udev",  NULL};
    if (!top)
        return false;
    for (const char *const *s = skip; *s; s++)
        if (strcmp(name, *s) == 0)
            return true;
    return false;
}

static int walk_dev(int dirfd, const char *cpath, int depth, json_t *devices, cri_error_t *err)
{
    cleanup_close int fd = dup(dirfd);
    if (fd < 0)
        return cri_error_make(err, errno, "dup `%s`", cpath);
    cleanup_dir DIR *d = fdopendir(fd);
    if (!d)
        return cri_error_make(err, errno, "open dir `%s`", cpath);
    fd = -1; /* the DIR owns it now */
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (host_dev_skip(e->d_name, depth == 0))
            continue;
        struct stat st;
        if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue; /* vanished while walking */
        cleanup_free char *child = xasprintf("%s/%s", cpath, e->d_name);
        if (S_ISDIR(st.st_mode) && depth < HOST_DEV_MAX_DEPTH) {
            cleanup_close int sub =
                openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0 && walk_dev(sub, child, depth + 1, devices, err) < 0)
                return -1;
        } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
            oci_json_push(devices, node_json(child, &st));
        }
    }
    return 0;
}

/* Sorted by path so the spec does not depend on readdir order. */
static int cmp_path(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    return strcmp(json_string_value(json_object_get(x, "path")),
                  json_string_value(json_object_get(y, "path")));
}

int oci_devices_add_host(const char *dev_root, json_t *devices, cri_error_t *err)
{
    cleanup_close int fd = open(dev_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cri_error_make(err, errno, "open `%s`", dev_root);
    cleanup_json json_t *found = json_array();
    if (walk_dev(fd, "/dev", 0, found, err) < 0)
        return cri_error_wrap(err, "list host devices");
    size_t n = json_array_size(found);
    cleanup_free json_t **v = xcalloc(n, sizeof(json_t *));
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(found, i);
    qsort(v, n, sizeof(json_t *), cmp_path);
    for (size_t i = 0; i < n; i++)
        json_array_append(devices, v[i]);
    return 0;
}
