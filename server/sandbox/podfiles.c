/* A pod's own files, made once by RunPodSandbox and bind-mounted into each of
 * its containers later: hostname, resolv.conf, hosts, and a /dev/shm tmpfs
 * shared by the pod (its IPC namespace is the pod's). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/sandbox/sandbox-internal.h"

#define PODFILES_MAX ((size_t)1024 * 1024)

typedef struct strbuf {
    char *s;
    size_t len;
} strbuf_t;

static void sb_append(strbuf_t *b, const char *piece)
{
    size_t n = strlen(piece);
    b->s = xrealloc(b->s, b->len + n + 1);
    memcpy(b->s + b->len, piece, n + 1);
    b->len += n;
}

static void sb_line(strbuf_t *b, const char *key, char **items, size_t n)
{
    if (n == 0)
        return;
    sb_append(b, key);
    for (size_t i = 0; i < n; i++) {
        sb_append(b, " ");
        sb_append(b, items[i]);
    }
    sb_append(b, "\n");
}

char *sandbox_resolv_conf(const Runtime__V1__DNSConfig *dns)
{
    if (!dns || dns->n_servers + dns->n_searches + dns->n_options == 0)
        return NULL;
    strbuf_t b = {xstrdup(""), 0};
    sb_line(&b, "search", dns->searches, dns->n_searches);
    for (size_t i = 0; i < dns->n_servers; i++)
        sb_line(&b, "nameserver", &dns->servers[i], 1);
    sb_line(&b, "options", dns->options, dns->n_options);
    return b.s;
}

static int write_text(const char *dir, const char *name, const char *text, cri_error_t *err)
{
    cleanup_free char *path = xasprintf("%s/%s", dir, name);
    if (write_file_atomic(path, text, strlen(text), 0644, err) < 0)
        return cri_error_wrap(err, "write pod file");
    return 0;
}

/* Copies a host file (missing = empty). */
static int copy_host_file(const char *host_path, const char *dir, const char *name,
                          cri_error_t *err)
{
    cleanup_free char *data = NULL;
    cri_error_t rerr = CRI_ERROR_INIT;
    if (read_file(host_path, PODFILES_MAX, &data, NULL, &rerr) < 0) {
        if (rerr.status != ENOENT) {
            *err = rerr;
            return cri_error_wrap(err, "copy host file");
        }
        data = xstrdup("");
    }
    return write_text(dir, name, data, err);
}

static int write_hosts(const sandbox_t *sb, const char *dir, cri_error_t *err)
{
    if (sb->ns_network == SANDBOX_NS_NODE)
        return copy_host_file("/etc/hosts", dir, "hosts", err);
    cleanup_free char *text =
        xasprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                  "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
                  "ff02::2\tip6-allrouters\n");
    return write_text(dir, "hosts", text, err);
}

int sandbox_shm_unmount(const char *shm_dir, cri_error_t *err)
{
    if (access(shm_dir, F_OK) < 0 && errno == ENOENT)
        return 0;
    if (umount2(shm_dir, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
        return cri_error_make(err, errno, "unmount pod shm `%s`", shm_dir);
    return 0;
}

int sandbox_shm_mount(const char *shm_dir, uint32_t uid, uint32_t gid, cri_error_t *err)
{
    if (mkdir_p(shm_dir, 0700, err) < 0)
        return -1;
    char opts[96];
    (void)snprintf(opts, sizeof(opts), "mode=1777,size=%s,uid=%u,gid=%u", SANDBOX_SHM_SIZE, uid,
                   gid);
    if (mount("shm", shm_dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
        return cri_error_make(err, errno, "mount pod shm at `%s`", shm_dir);
    return 0;
}

int sandbox_podfiles_write(const sandbox_t *sb, const Runtime__V1__DNSConfig *dns,
                           const char *files_dir, cri_error_t *err)
{
    if (mkdir_p(files_dir, 0711, err) < 0)
        return -1;
    cleanup_free char *hostname = xasprintf("%s\n", sb->hostname);
    if (write_text(files_dir, "hostname", hostname, err) < 0)
        return -1;
    cleanup_free char *resolv = sandbox_resolv_conf(dns);
    int r = resolv ? write_text(files_dir, "resolv.conf", resolv, err)
                   : copy_host_file("/etc/resolv.conf", files_dir, "resolv.conf", err);
    if (r < 0)
        return -1;
    return write_hosts(sb, files_dir, err);
}
