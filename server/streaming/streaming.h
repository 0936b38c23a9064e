/* server/streaming/: the Exec, Attach and PortForward RPCs and the HTTP
 * streaming server their URLs point at.
 *
 * The RPC handlers (exec.c, attach.c, port_forward.c) validate a request,
 * look its target up through the hooks below and store a copy of it under a
 * random single-use token; the reply is
 * `http://<address>:<port>/{exec,attach,portforward}/<token>`. The server
 * (libmicrohttpd) answers that URL with an upgrade to SPDY/3.1 (kubelet,
 * crictl) or WebSocket (newer kubectl/kubelet), runs one thread per upgraded
 * connection and calls a backend ops table that does the container work:
 * it sees file descriptors only, so it knows nothing of either protocol.
 *
 * Thread safety: every function here may be called from any thread. */
#ifndef CRICKET_SERVER_STREAMING_STREAMING_H
#define CRICKET_SERVER_STREAMING_STREAMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct daemon;

typedef enum streaming_kind {
    STREAMING_EXEC = 0,
    STREAMING_ATTACH = 1,
    STREAMING_PORTFORWARD = 2,
} streaming_kind_t;

/* A copy of the CRI request a token stands for (every string malloc'd). */
typedef struct streaming_request {
    streaming_kind_t kind;
    char *container_id;     /* exec, attach: the full id the lookup returned */
    char *pod_id;           /* portforward: the full sandbox id */
    char *netns_path;       /* portforward: pinned netns, "" = host network */
    char **cmd;             /* exec: argv, NULL-terminated */
    bool tty, in, out, err; /* exec, attach: stdin, stdout, stderr */
    int32_t *ports;         /* portforward: the request's ports (may be empty) */
    size_t n_ports;
} streaming_request_t;

/* Frees r and everything it holds. Accepts NULL. */
void streaming_request_free(streaming_request_t *r);

/* ---- the backend: what the container code provides ---- */

/* Terminal size sent to resize_fd as one record per change. */
typedef struct streaming_winsize {
    uint16_t width, height;
} streaming_winsize_t;

/* The descriptors a backend works with. The backend only borrows them:
 * the streaming code closes them after the backend call returns, which is
 * what ends stdout/stderr for the client. -1 = stream not requested. */
typedef struct streaming_stdio {
    int in;     /* read: the client's stdin; EOF when the client closes it */
    int out;    /* write: to the client's stdout */
    int err;    /* write: to the client's stderr (never with tty) */
    int resize; /* read: streaming_winsize_t records (tty only) */
    int cancel; /* read: becomes readable (POLLIN/POLLHUP) when the client
                 * went away; the backend then stops and returns */
} streaming_stdio_t;

typedef struct streaming_backend_ops {
    /* Runs r->cmd in the running container r->container_id with its streams
     * on io and waits for it; *ret_exit_code gets the exit status. Runs on a
     * thread of its own and may block. ENOENT when the container is gone. */
    int (*exec)(void *data, const streaming_request_t *r, const streaming_stdio_t *io,
                int *ret_exit_code, cri_error_t *err);
    /* Connects io to the container's attach socket until the container's
     * output ends, io->cancel fires or (stdin_once) stdin closes. */
    int (*attach)(void *data, const streaming_request_t *r, const streaming_stdio_t *io,
                  cri_error_t *err);
    /* Connects to `port` on localhost inside the pod's network; *ret_fd gets
     * a connected stream socket the caller owns. ECONNREFUSED and friends
     * come back as err->status. */
    int (*portforward)(void *data, const streaming_request_t *r, uint16_t port, int *ret_fd,
                       cri_error_t *err);
} streaming_backend_ops_t;

/* The backend the daemon uses (ops data: the daemon): exec is
 * streaming_exec_conmon(), attach is streaming_attach_conmon(),
 * portforward is streaming_netns_connect(). */
extern const streaming_backend_ops_t streaming_default_backend;

/* Connects to localhost:port inside the network namespace pinned at
 * netns_path ("" = the host's), tcp4 first then tcp6, from a dedicated
 * thread that setns()es (the caller's namespace never changes). *ret_fd
 * gets the connected socket (CLOEXEC). Fails with the connect errno of the
 * last attempt (ECONNREFUSED, ...) or the setns/open errno. */
int streaming_netns_connect(const char *netns_path, uint16_t port, int *ret_fd, cri_error_t *err);

/* Runs r->cmd in r->container_id (data: the daemon_t) through a monitor in
 * interactive exec mode, with the process built as for ExecSync (the
 * container's user, env, cwd, caps, seccomp...) and its stdio relayed live
 * to io (pipes, or a pty with r->tty and resize records forwarded). When
 * io->cancel fires the process is killed and 0 is returned once the
 * monitor reported its end. *ret_exit_code: exit status or 128 + signal.
 * ENOENT when the container is gone, EINVAL when it is not running, EIO
 * with the runtime's message when the exec could not start. */
int streaming_exec_conmon(void *data, const streaming_request_t *r, const streaming_stdio_t *io,
                          int *ret_exit_code, cri_error_t *err);

/* Attaches io to the attach socket of r->container_id's monitor (data: the
 * daemon_t). Returns 0 when the container's output ended or the client
 * went away; ESRCH when no monitor runs for it. */
int streaming_attach_conmon(void *data, const streaming_request_t *r, const streaming_stdio_t *io,
                            cri_error_t *err);

/* ---- lookups the sandbox and container code will fill in ---- */

struct Runtime__V1__ExecRequest;
struct Runtime__V1__AttachRequest;
struct Runtime__V1__PortForwardRequest;

/* Checks of an Exec, Attach or PortForward request before any lookup:
 * pure functions (no daemon), also run by test/fuzz/. EINVAL naming the
 * field. */
int streaming_validate_exec(const struct Runtime__V1__ExecRequest *in, cri_error_t *err);
int streaming_validate_attach(const struct Runtime__V1__AttachRequest *in, cri_error_t *err);
int streaming_validate_port_forward(const struct Runtime__V1__PortForwardRequest *in,
                                    cri_error_t *err);

/* The stdio rules Exec and Attach share: tty together with stderr is
 * invalid (a tty merges the streams), and at least one stream must be
 * asked for. EINVAL naming the fields. */
int streaming_check_stdio(bool tty, bool in, bool out, bool err_stream, cri_error_t *err);

/* Resolves a container id (full or unique prefix) for Exec/Attach through
 * the container store: *ret_id gets the full id (malloc'd). ENOENT when no
 * such container exists, EINVAL when it is not running (or the prefix is
 * ambiguous). */
int streaming_lookup_container(struct daemon *d, const char *id, char **ret_id, cri_error_t *err);

/* Resolves a sandbox id for PortForward: *ret_id gets the full id and
 * *ret_netns its pinned netns path ("" for host network), both malloc'd.
 * ENOENT when unknown, EINVAL when the sandbox is not ready. */
int streaming_lookup_sandbox(struct daemon *d, const char *id, char **ret_id, char **ret_netns,
                             cri_error_t *err);

/* ---- the server ---- */

typedef struct streaming_server streaming_server_t;

typedef struct streaming_config {
    const char *address; /* IP to bind ("127.0.0.1", "::1", "0.0.0.0") */
    int port;            /* 0 = pick a free port */
    const streaming_backend_ops_t *ops;
    void *ops_data;
    int64_t token_ttl_ms;  /* 0 = 60 s */
    size_t max_tokens;     /* 0 = 1000 */
    struct daemon *daemon; /* the ops' data when ops_data is NULL (the container
                            * backends will look their targets up in it) */
    /* TLS (absolute paths of PEM files; NULL or "" = unset): with cert and
     * key the server speaks HTTPS only; with client_ca too, a client must
     * present a certificate signed by it (else 403). */
    const char *tls_cert, *tls_key, *tls_client_ca;
    /* Limits (0 = the default in parentheses): connections open at once
     * (1024) and from one IP address (128), port-forward connections open
     * at once in one session (64); a connection not upgraded
     * handshake_timeout_ms after accept is closed, an upgraded one without
     * traffic for idle_timeout_ms too (0 = no limit for both). */
    unsigned int max_connections, max_connections_per_client, max_port_forwards;
    int64_t handshake_timeout_ms, idle_timeout_ms;
} streaming_config_t;

/* Binds and starts serving (HTTPS when cfg has TLS files, read here once:
 * EINVAL for a half-set pair or a non-PEM file, ENOTSUP when libmicrohttpd
 * lacks TLS, the read errno otherwise). The environment variable
 * CRICKET_TEST_HOOK_STREAMING (tests only: "fake" and/or "ttl_ms=N",
 * comma separated) swaps in a fake backend and a shorter token lifetime.
 * EADDRINUSE/EINVAL style errors when the address cannot be bound. Free
 * with streaming_server_stop(). */
int streaming_server_start(const streaming_config_t *cfg, streaming_server_t **ret,
                           cri_error_t *err);

/* Closes every upgraded connection (their backends see cancel), waits for
 * their threads, stops the HTTP server and frees everything. Accepts NULL. */
void streaming_server_stop(streaming_server_t *s);

/* The bound port (the chosen one when the config said 0). */
uint16_t streaming_server_port(const streaming_server_t *s);

/* The base URL, "http://127.0.0.1:40123" ("https://" with TLS; IPv6 in
 * brackets). Owned by s. */
const char *streaming_server_base_url(const streaming_server_t *s);

/* Port-forward connections one session may have open at once. */
unsigned int streaming_server_max_port_forwards(const streaming_server_t *s);

/* True while the test hook's fake backend is on. */
bool streaming_server_fake(const streaming_server_t *s);

/* Stores r (ownership moves to the server, also on failure) under a new
 * token and sets *ret_url (malloc'd) to the URL for it. */
int streaming_server_issue(streaming_server_t *s, streaming_request_t *r, char **ret_url,
                           cri_error_t *err);

#endif
