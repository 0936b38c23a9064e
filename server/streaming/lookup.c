/* Where Exec/Attach/PortForward find their targets: the container store
 * (Exec and Attach want a RUNNING container) and the sandbox store
 * (PortForward wants a READY pod; the netns is its pin).
 *
 * With the test hook's fake backend on, container ids starting "fake" are
 * "running", and sandbox id "fakens-NAME" is a pod whose network is the
 * netns pinned at /run/netns/NAME (ip netns add NAME), so the e2e tests
 * can drive both protocols end to end before containers exist. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "common/cleanup.h"
#include "server/container/container.h"
#include "server/daemon.h"
#include "server/sandbox/sandbox.h"
#include "server/streaming/streaming.h"

static bool fake_mode(struct daemon *d)
{
    return d && daemon_streaming(d) && streaming_server_fake(daemon_streaming(d));
}

int streaming_check_stdio(bool tty, bool in, bool out, bool err_stream, cri_error_t *err)
{
    if (tty && err_stream)
        return cri_error_set(err, EINVAL, "tty and stderr cannot both be true");
    if (!in && !out && !err_stream)
        return cri_error_set(err, EINVAL, "one of stdin, stdout, or stderr must be set");
    return 0;
}

int streaming_lookup_container(struct daemon *d, const char *id, char **ret_id, cri_error_t *err)
{
    if (fake_mode(d) && str_has_prefix(id, "fake")) {
        *ret_id = xstrdup(id);
        return 0;
    }
    if (!d || !daemon_containers(d))
        return cri_error_set(err, ENOENT, "container `%s` not found", id);
    cleanup_container container_t *c = NULL;
    if (container_get_running(d, id, &c, err) < 0)
        return -1;
    *ret_id = xstrdup(c->id);
    return 0;
}

int streaming_lookup_sandbox(struct daemon *d, const char *id, char **ret_id, char **ret_netns,
                             cri_error_t *err)
{
    if (fake_mode(d) && str_has_prefix(id, "fakens-")) {
        char *path = xasprintf("/run/netns/%s", id + strlen("fakens-"));
        struct stat st;
        if (strchr(id + strlen("fakens-"), '/') || stat(path, &st) < 0) {
            free(path);
            return cri_error_set(err, ENOENT, "pod sandbox `%s` not found", id);
        }
        *ret_id = xstrdup(id);
        *ret_netns = path;
        return 0;
    }
    if (!d || !daemon_sandboxes(d))
        return cri_error_set(err, ENOENT, "pod sandbox `%s` not found", id);
    cleanup_sandbox sandbox_t *sb = NULL;
    if (sandbox_store_get(daemon_sandboxes(d), id, &sb, err) < 0)
        return -1;
    if (sandbox_get_state(sb, NULL) != SANDBOX_STATE_READY)
        return cri_error_set(err, EINVAL, "pod sandbox `%s` is not ready", sb->id);
    *ret_id = xstrdup(sb->id);
    *ret_netns = xstrdup(sb->netns_path ? sb->netns_path : "");
    return 0;
}
