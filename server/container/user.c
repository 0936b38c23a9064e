/* Users and groups, resolved in the container's own /etc/passwd and
 * /etc/group (never the host's). */
#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

#define ID_FILE_MAX ((size_t)4 * 1024 * 1024)
#define ID_MAX 4294967294LL /* (uid_t)-1 is "no change" */

#define IN_ROOT_MAX_LINKS 40

/* Path walk inside root for kernels (and valgrind) without openat2: one
 * component at a time with O_NOFOLLOW; a symlink is read and walked again
 * from root (absolute) or from its directory (relative); ".." never climbs
 * above root. Returns an O_PATH fd of the final component. */
static int walk_in_root(int rootfd, const char *path, int *links, cri_error_t *err)
{
    int dirs[256];
    size_t depth = 0;
    dirs[0] = dup(rootfd);
    cleanup_free char *buf = xstrdup(path);
    int rc = -1;
    char *save = NULL;
    for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0)
            continue;
        if (strcmp(c, "..") == 0) {
            if (depth > 0)
                close(dirs[depth--]);
            continue;
        }
        int fd = openat(dirs[depth], c, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            cri_error_make(err, errno, "open `%s`", path);
            goto out;
        }
        char target[4096];
        ssize_t n = readlinkat(fd, "", target, sizeof(target) - 1);
        if (n >= 0) {
            close(fd);
            if (++*links > IN_ROOT_MAX_LINKS) {
                cri_error_set(err, ELOOP, "open `%s`: too many symlinks", path);
                goto out;
            }
            target[n] = '\0';
            /* the rest of the path continues from wherever the link leads */
            const char *rest = save ? save : "";
            cleanup_free char *next = xasprintf("%s/%s", target, rest);
            int base = target[0] == '/' ? rootfd : dirs[depth];
            fd = walk_in_root(base, next, links, err);
            if (fd < 0)
                goto out;
            rc = fd;
            goto out;
        }
        if (depth + 1 >= sizeof(dirs) / sizeof(dirs[0])) {
            close(fd);
            cri_error_set(err, ENAMETOOLONG, "open `%s`: too deep", path);
            goto out;
        }
        dirs[++depth] = fd;
    }
    rc = dirs[depth];
    dirs[depth] = -1;
out:
    for (size_t i = 0; i <= depth; i++)
        if (dirs[i] >= 0)
            close(dirs[i]);
    return rc;
}

/* An O_PATH fd of path inside root (symlinks and ".." cannot leave it). */
static int open_path_in_root(int dir, const char *root, const char *path, cri_error_t *err)
{
    struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, dir, path, &how, sizeof(how));
    if (fd < 0 && errno == ENOSYS) {
        int links = 0;
        fd = walk_in_root(dir, path, &links, err);
        if (fd < 0)
            return cri_error_wrap(err, "in `%s`", root);
        return fd;
    }
    if (fd < 0)
        return cri_error_make(err, errno, "open `%s` in `%s`", path, root);
    return fd;
}

int container_open_in_root(const char *root, const char *path, size_t max_size, cri_error_t *err)
{
    cleanup_close int dir = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return cri_error_make(err, errno, "open rootfs `%s`", root);
    cleanup_close int p = open_path_in_root(dir, root, path, err);
    if (p < 0)
        return -1;
    /* look before opening for reading: a FIFO would block and a device
     * node (through overlay, the host's device) must not be opened */
    struct stat st;
    if (fstat(p, &st) < 0)
        return cri_error_make(err, errno, "stat `%s` in `%s`", path, root);
    if (!S_ISREG(st.st_mode))
        return cri_error_set(err, EINVAL, "`%s` in the image is not a regular file", path);
    if ((uint64_t)st.st_size > max_size)
        return cri_error_set(err, EINVAL, "`%s` in the image is larger than %zu bytes", path,
                             max_size);
    cleanup_free char *proc = xasprintf("/proc/self/fd/%d", p);
    int fd = open(proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return cri_error_make(err, errno, "open `%s` in `%s`", path, root);
    return fd;
}

/* Reads rootfs/path (a regular file of at most ID_FILE_MAX bytes); a
 * missing file reads as empty. */
static int read_in_root(const char *rootfs, const char *path, char **ret, cri_error_t *err)
{
    cri_error_t e = CRI_ERROR_INIT;
    cleanup_close int fd = container_open_in_root(rootfs, path, ID_FILE_MAX, &e);
    if (fd < 0) {
        if (e.status != ENOENT) {
            *err = e;
            return -1;
        }
        *ret = xstrdup("");
        return 0;
    }
    cleanup_free char *buf = xmalloc(ID_FILE_MAX + 1);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, ID_FILE_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cri_error_make(err, errno, "read `%s` in `%s`", path, rootfs);
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > ID_FILE_MAX) /* it grew since the check */
            return cri_error_set(err, EINVAL, "`%s` in the image is larger than %zu bytes", path,
                                 ID_FILE_MAX);
    }
    buf[len] = '\0';
    *ret = xrealloc(TAKE_PTR(buf), len + 1);
    return 0;
}

/* Splits one passwd/group line into at most max ':' fields (in place). */
static size_t split_fields(char *line, char **f, size_t max)
{
    size_t n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == ':') {
            *p = '\0';
            f[n++] = p + 1;
        }
    return n;
}

/* A decimal id in [0, ID_MAX]; false otherwise. */
static bool parse_id(const char *s, int64_t *ret)
{
    if (!*s)
        return false;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
        if (v > ID_MAX)
            return false;
    }
    *ret = v;
    return true;
}

typedef struct passwd_hit {
    bool found;
    int64_t uid, gid;
    char *name;
} passwd_hit_t;

/* Finds a passwd entry by name (name != NULL) or by uid. */
static void passwd_lookup(char *passwd, const char *name, int64_t uid, passwd_hit_t *hit)
{
    for (char *save = NULL, *line = strtok_r(passwd, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[7];
        int64_t u, g;
        if (split_fields(line, f, 7) < 4 || !parse_id(f[2], &u) || !parse_id(f[3], &g))
            continue;
        if (name ? strcmp(f[0], name) == 0 : u == uid) {
            *hit = (passwd_hit_t){.found = true, .uid = u, .gid = g, .name = xstrdup(f[0])};
            return;
        }
    }
}

/* A group name's gid; false when missing. */
static bool group_gid(const char *group, const char *name, int64_t *ret)
{
    cleanup_free char *copy = xstrdup(group);
    for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[4];
        int64_t g;
        if (split_fields(line, f, 4) >= 3 && strcmp(f[0], name) == 0 && parse_id(f[2], &g)) {
            *ret = g;
            return true;
        }
    }
    return false;
}

static void add_gid(container_user_t *u, size_t cap, int64_t gid)
{
    for (size_t i = 0; i < u->n_additional; i++)
        if (u->additional[i] == (gid_t)gid)
            return;
    if (u->n_additional < cap)
        u->additional[u->n_additional++] = (gid_t)gid;
}

/* Groups whose member list names the user, in file order. */
static void member_groups(const char *group, const char *user, container_user_t *u, size_t cap)
{
    cleanup_free char *copy = xstrdup(group);
    for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[4];
        int64_t g;
        if (split_fields(line, f, 4) < 4 || !parse_id(f[2], &g))
            continue;
        for (char *s2 = NULL, *m = strtok_r(f[3], ",", &s2); m; m = strtok_r(NULL, ",", &s2))
            if (strcmp(m, user) == 0)
                add_gid(u, cap, g);
    }
}

/* Splits the image's "user[:group]". */
static void split_image_user(const char *image_user, char **ret_user, char **ret_group)
{
    const char *colon = strchr(image_user, ':');
    *ret_user = colon ? xstrndup(image_user, (size_t)(colon - image_user)) : xstrdup(image_user);
    *ret_group = colon ? xstrdup(colon + 1) : NULL;
}

/* uid (and its passwd gid) from a name or number. */
static int resolve_uid(char *passwd, const char *user, const char *what, passwd_hit_t *hit,
                       cri_error_t *err)
{
    int64_t uid;
    cleanup_free char *copy = xstrdup(passwd);
    if (parse_id(user, &uid)) {
        passwd_lookup(copy, NULL, uid, hit);
        if (!hit->found)
            *hit = (passwd_hit_t){.found = false, .uid = uid, .gid = 0};
        return 0;
    }
    passwd_lookup(copy, user, 0, hit);
    if (!hit->found)
        return cri_error_set(err, ENOENT, "%s `%s` not found in the image's /etc/passwd", what,
                             user);
    return 0;
}

static int resolve_gid(const char *group_file, const char *group, int64_t *ret, cri_error_t *err)
{
    if (parse_id(group, ret))
        return 0;
    if (!group_gid(group_file, group, ret))
        return cri_error_set(err, ENOENT, "group `%s` not found in the image's /etc/group", group);
    return 0;
}

/* Picks uid/gid per the precedence rules; *ret_name gets the passwd name. */
static int pick_ids(char *passwd, const char *group, const container_user_req_t *req,
                    passwd_hit_t *hit, cri_error_t *err)
{
    bool by_name = req->run_as_username && *req->run_as_username;
    if (req->run_as_group >= 0 && !by_name && req->run_as_user < 0)
        return cri_error_set(err, EINVAL,
                             "run_as_group is set without run_as_user or run_as_username");
    if (by_name) {
        if (resolve_uid(passwd, req->run_as_username, "run_as_username", hit, err) < 0)
            return -1;
        if (!hit->found) /* a number in run_as_username must still exist */
            return cri_error_set(err, ENOENT,
                                 "run_as_username `%s` not found in the image's /etc/passwd",
                                 req->run_as_username);
    } else if (req->run_as_user >= 0) {
        if (req->run_as_user > ID_MAX)
            return cri_error_set(err, EINVAL, "run_as_user %lld is out of range",
                                 (long long)req->run_as_user);
        cleanup_free char *num = xasprintf("%lld", (long long)req->run_as_user);
        resolve_uid(passwd, num, "run_as_user", hit, err);
    } else {
        cleanup_free char *user = NULL, *grp = NULL;
        split_image_user(req->image_user ? req->image_user : "", &user, &grp);
        if (resolve_uid(passwd, *user ? user : "0", "image user", hit, err) < 0)
            return -1;
        if (grp && *grp && resolve_gid(group, grp, &hit->gid, err) < 0)
            return -1;
    }
    if (req->run_as_group >= 0) {
        if (req->run_as_group > ID_MAX)
            return cri_error_set(err, EINVAL, "run_as_group %lld is out of range",
                                 (long long)req->run_as_group);
        hit->gid = req->run_as_group;
    }
    return 0;
}

int container_user_resolve(const char *rootfs, const container_user_req_t *req,
                           container_user_t *ret, cri_error_t *err)
{
    cleanup_free char *passwd = NULL, *group = NULL;
    if (read_in_root(rootfs, "/etc/passwd", &passwd, err) < 0 ||
        read_in_root(rootfs, "/etc/group", &group, err) < 0)
        return -1;
    for (size_t i = 0; i < req->n_supplemental; i++)
        if (req->supplemental[i] < 0 || req->supplemental[i] > ID_MAX)
            return cri_error_set(err, EINVAL, "supplemental_groups[%zu] %lld is out of range", i,
                                 (long long)req->supplemental[i]);

    passwd_hit_t hit = {0};
    if (pick_ids(passwd, group, req, &hit, err) < 0) {
        free(hit.name);
        return -1;
    }
    size_t cap = 64 + req->n_supplemental;
    container_user_t u = {.uid = (uid_t)hit.uid, .gid = (gid_t)hit.gid};
    u.additional = xcalloc(cap, sizeof(gid_t));
    u.username = hit.name;
    /* The primary group is a supplementary group too (as containerd and
     * CRI-O set additionalGids; `id -G` shows it either way). */
    add_gid(&u, cap, hit.gid);
    if (u.username && !req->strict_groups)
        member_groups(group, u.username, &u, cap);
    for (size_t i = 0; i < req->n_supplemental; i++)
        add_gid(&u, cap, req->supplemental[i]);
    *ret = u;
    return 0;
}

void container_user_free(container_user_t *u)
{
    if (!u)
        return;
    free(u->additional);
    free(u->username);
    u->additional = NULL;
    u->username = NULL;
}
