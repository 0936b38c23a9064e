/* The Prometheus endpoint: GET /metrics (metrics_server.h). */
#include "server/metrics_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/util.h"
#include "server/container/container.h"
#include "server/daemon.h"
#include "server/events.h"
#include "server/sandbox/sandbox.h"

struct metrics_server {
    daemon_t *daemon;
    struct MHD_Daemon *mhd;
    int port;
};

/* Live monitor processes of this daemon: cricket-conmon runs with
 * `--socket-dir <runroot>/conmon` (conmon/PROTOCOL.md), so a scan of
 * /proc/<pid>/cmdline finds them, and only this daemon's. */
static uint64_t monitors_alive(const char *socket_dir)
{
    DIR *proc = opendir("/proc");
    if (!proc)
        return 0;
    uint64_t n = 0;
    struct dirent *e;
    char path[300], args[4096];
    while ((e = readdir(proc))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        (void)snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, args, sizeof(args) - 1);
        close(fd);
        if (len <= 0)
            continue;
        args[len] = '\0';
        for (const char *a = args; a < args + len; a += strlen(a) + 1) {
            const char *next = a + strlen(a) + 1;
            if (strcmp(a, "--socket-dir") == 0 && next < args + len &&
                strcmp(next, socket_dir) == 0) {
                n++;
                break;
            }
        }
    }
    closedir(proc);
    return n;
}

/* Pods by state, containers by state and the monitors supervising them. */
static void render_objects(daemon_t *d, metrics_buf_t *b)
{
    uint64_t pods[2] = {0}, ctrs[4] = {0};
    sandbox_t **sbs = NULL;
    size_t n_sbs = 0;
    if (daemon_sandboxes(d))
        sandbox_store_list(daemon_sandboxes(d), &sbs, &n_sbs);
    for (size_t i = 0; i < n_sbs; i++)
        pods[sandbox_get_state(sbs[i], NULL) == SANDBOX_STATE_READY ? 0 : 1]++;
    sandbox_list_free(sbs, n_sbs);
    container_t **cs = NULL;
    size_t n_cs = 0;
    if (daemon_containers(d))
        container_store_list(daemon_containers(d), NULL, &cs, &n_cs);
    for (size_t i = 0; i < n_cs; i++) {
        container_status_t st;
        container_get_status(cs[i], &st);
        ctrs[st.state <= CONTAINER_STATE_UNKNOWN ? st.state : CONTAINER_STATE_UNKNOWN]++;
        container_status_clear(&st);
    }
    container_list_free(cs, n_cs);

    metrics_family(b, "cricket_pods", "gauge", "Pod sandboxes, by state.");
    const char *ready[] = {"state", "ready", NULL}, *notready[] = {"state", "notready", NULL};
    metrics_sample_u64(b, "cricket_pods", ready, pods[0]);
    metrics_sample_u64(b, "cricket_pods", notready, pods[1]);
    metrics_family(b, "cricket_containers", "gauge", "Containers, by state.");
    static const char *const names[] = {"created", "running", "exited", "unknown"};
    for (size_t i = 0; i < 4; i++) {
        const char *labels[] = {"state", names[i], NULL};
        metrics_sample_u64(b, "cricket_containers", labels, ctrs[i]);
    }
    metrics_family(b, "cricket_monitors_alive", "gauge",
                   "Monitor processes (cricket-conmon) of this daemon alive now.");
    metrics_sample_u64(b, "cricket_monitors_alive", NULL, monitors_alive(daemon_conmon_dir(d)));
    metrics_family(b, "cricket_monitors_expected", "gauge",
                   "Created or running containers and ready pods: each should have a monitor.");
    metrics_sample_u64(b, "cricket_monitors_expected", NULL, ctrs[0] + ctrs[1] + pods[0]);
}

static void render_events(daemon_t *d, metrics_buf_t *b)
{
    if (!daemon_events(d))
        return;
    events_stats_t st;
    events_hub_stats(daemon_events(d), &st);
    metrics_family(b, "cricket_event_subscribers", "gauge", "GetContainerEvents streams open now.");
    metrics_sample_u64(b, "cricket_event_subscribers", NULL, st.subscribers);
    metrics_family(b, "cricket_events_published_total", "counter",
                   "Container events published while at least one subscriber listened.");
    metrics_sample_u64(b, "cricket_events_published_total", NULL, st.published);
    metrics_family(b, "cricket_events_dropped_total", "counter",
                   "Events a lagging subscriber's full queue refused.");
    metrics_sample_u64(b, "cricket_events_dropped_total", NULL, st.dropped);
    metrics_family(b, "cricket_event_subscribers_ended_total", "counter",
                   "Subscribers ended with RESOURCE_EXHAUSTED for lagging past "
                   "events.queue_length.");
    metrics_sample_u64(b, "cricket_event_subscribers_ended_total", NULL, st.overrun_subs);
}

void metrics_render(daemon_t *d, metrics_buf_t *b)
{
    if (daemon_metrics(d))
        metrics_write(daemon_metrics(d), b);
    render_objects(d, b);
    render_events(d, b);
    metrics_write_process(b);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int code, const char *type,
                             char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result rc = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    metrics_server_t *s = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
                     xstrdup("only GET and HEAD\n"), strlen("only GET and HEAD\n"));
    if (strcmp(url, "/metrics") != 0)
        return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", xstrdup("try /metrics\n"),
                     strlen("try /metrics\n"));
    metrics_buf_t b = {0};
    metrics_render(s->daemon, &b);
    if (!b.data)
        b.data = xstrdup("");
    return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
}

int metrics_server_start(daemon_t *d, const char *address, int port, metrics_server_t **ret,
                         cri_error_t *err)
{
    struct sockaddr_storage ss = {0};
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD; /* errors: ours, in key=value */
    int family = sockaddr_from_ip(address, port, &ss);
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (family < 0) {
        return cri_error_set(err, EINVAL, "metrics.address `%s` is not an IP address", address);
    }
    metrics_server_t *s = xcalloc(1, sizeof(*s));
    s->daemon = d;
    errno = 0;
    s->mhd =
        MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                         &ss, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
    if (!s->mhd) {
        int e = errno ? errno : EADDRINUSE;
        free(s);
        return cri_error_make(err, e, "listen on `%s` port %d", address, port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : port;
    *ret = s;
    return 0;
}

int metrics_server_port(const metrics_server_t *s)
{
    return s->port;
}

void metrics_server_stop(metrics_server_t *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->mhd);
    free(s);
}
