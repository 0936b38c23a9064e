/* OOM accounting: the oom_kill counter of the container's memory cgroup,
 * cgroup v1 (memory.oom_control) or v2 (memory.events), hybrid hosts
 * included (the v1 memory controller wins there: runc uses it). */
#include "conmon-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

int conmon_oom_count(int fd, uint64_t *ret, cri_error_t *err)
{
    char buf[1024];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n < 0)
        return cri_error_make(err, errno, "read memory events");
    buf[n] = '\0';
    for (char *line = buf; line && *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (str_has_prefix(line, "oom_kill ")) {
            *ret = strtoull(line + 9, NULL, 10);
            return 0;
        }
        line = next;
    }
    return cri_error_set(err, ENOENT, "no oom_kill counter");
}

/* Splits a line of /proc/<pid>/cgroup ("id:controllers:path"). */
static bool cgroup_line(char *line, char **ret_ctrls, char **ret_path)
{
    char *a = strchr(line, ':');
    char *b = a ? strchr(a + 1, ':') : NULL;
    if (!b)
        return false;
    *a = '\0';
    *b = '\0';
    *ret_ctrls = a + 1;
    *ret_path = b + 1;
    return true;
}

static bool has_word(const char *list, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == wl && strncmp(p, word, wl) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

/* Finds the mount point (and its root) of the v1 memory hierarchy, or of
 * cgroup2 when v2 is set, from /proc/self/mountinfo. */
static int find_mount(bool v2, char **ret_mnt, char **ret_root)
{
    cleanup_fclose FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -1;
    cleanup_free char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        char root[4096], mnt[4096], fstype[64], super[1024];
        const char *dash = strstr(line, " - ");
        if (!dash || sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2 ||
            sscanf(dash + 3, "%63s %*s %1023s", fstype, super) != 2)
            continue;
        bool match = v2 ? strcmp(fstype, "cgroup2") == 0
                        : strcmp(fstype, "cgroup") == 0 && has_word(super, "memory");
        if (match) {
            *ret_mnt = xstrdup(mnt);
            *ret_root = xstrdup(root);
            return 0;
        }
    }
    return -1;
}

static int open_in(bool v2, const char *cg_path, int *ret_fd)
{
    cleanup_free char *mnt = NULL, *root = NULL;
    if (find_mount(v2, &mnt, &root) < 0)
        return -1;
    const char *rel = cg_path;
    if (strcmp(root, "/") != 0 && str_has_prefix(rel, root))
        rel += strlen(root);
    cleanup_free char *path =
        xasprintf("%s%s/%s", mnt, rel, v2 ? "memory.events" : "memory.oom_control");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    *ret_fd = fd;
    return 0;
}

int conmon_oom_open(pid_t pid, int *ret_fd, bool *ret_v2, cri_error_t *err)
{
    cleanup_free char *path = xasprintf("/proc/%d/cgroup", (int)pid);
    cleanup_free char *data = NULL;
    if (read_file(path, 1 << 16, &data, NULL, err) < 0)
        return -1;
    char *v1_path = NULL, *v2_path = NULL;
    for (char *save = NULL, *line = strtok_r(data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *ctrls = NULL, *cg = NULL;
        if (!cgroup_line(line, &ctrls, &cg))
            continue;
        if (has_word(ctrls, "memory"))
            v1_path = cg;
        else if (strcmp(line, "0") == 0 && !*ctrls)
            v2_path = cg;
    }
    int fd = -1;
    if (v1_path && open_in(false, v1_path, &fd) == 0) {
        *ret_fd = fd;
        *ret_v2 = false;
        return 0;
    }
    if (v2_path && open_in(true, v2_path, &fd) == 0) {
        *ret_fd = fd;
        *ret_v2 = true;
        return 0;
    }
    return cri_error_set(err, ENOENT, "no readable memory cgroup for pid %d", (int)pid);
}
