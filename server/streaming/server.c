/* The streaming HTTP server (libmicrohttpd): URL routing, tokens, the
 * upgrade handshakes for SPDY/3.1 and WebSocket, and one detached thread
 * per upgraded connection (session.c). Stopping shuts every upgraded
 * socket down, which ends its session and cancels its backend, waits for
 * the threads and then stops libmicrohttpd. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "server/streaming/streaming-internal.h"
#include "server/testhooks.h"

#define MAX_OFFERS 16

typedef struct live {
    int sock;
    struct live *next;
} live_t;

struct streaming_server {
    struct MHD_Daemon *mhd;
    token_store_t *tokens;
    const streaming_backend_ops_t *ops;
    void *ops_data;
    char *base_url;
    uint16_t port;
    bool fake;
    streaming_tls_t *tls; /* NULL: plain HTTP */
    streaming_guard_t *guard;
    unsigned int max_connections, max_per_client, max_port_forwards;
    int64_t idle_timeout_ms;

    pthread_mutex_t lock;
    pthread_cond_t idle;
    live_t *live; /* upgraded connections still running */
    size_t n_live;
};

/* Per-request state (con_cls); freed by the completion callback. */
typedef struct req_ctx {
    streaming_server_t *srv;
    streaming_request_t *req; /* taken by the session on upgrade */
    const proto_choice_t *proto;
    bool websocket;
} req_ctx_t;

typedef struct session_start {
    streaming_server_t *srv;
    session_params_t p;
    uint8_t *extra;
    struct MHD_UpgradeResponseHandle *urh;
    live_t live;
} session_start_t;

/* Unregisters a finished connection and gives its socket back to MHD. */
static void session_finish(session_start_t *st)
{
    streaming_server_t *srv = st->srv;
    pthread_mutex_lock(&srv->lock);
    for (live_t **l = &srv->live; *l; l = &(*l)->next) {
        if (*l == &st->live) {
            *l = st->live.next;
            break;
        }
    }
    MHD_upgrade_action(st->urh, MHD_UPGRADE_ACTION_CLOSE);
    srv->n_live--;
    pthread_cond_broadcast(&srv->idle);
    pthread_mutex_unlock(&srv->lock);
    free(st->extra);
    free(st);
}

static void *session_main(void *arg)
{
    session_start_t *st = arg;
    streaming_session_run(&st->p);
    session_finish(st);
    return NULL;
}

static void on_upgrade(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    req_ctx_t *ctx = cls;
    streaming_server_t *srv = ctx->srv;
    streaming_guard_upgraded(srv->guard, conn);
    session_start_t *st = xcalloc(1, sizeof(*st));
    st->srv = srv;
    st->urh = urh;
    st->extra = xmalloc(extra_in_size ? extra_in_size : 1);
    memcpy(st->extra, extra_in, extra_in_size);
    st->p = (session_params_t){.sock = sock,
                               .extra = st->extra,
                               .extra_len = extra_in_size,
                               .req = TAKE_PTR(ctx->req),
                               .proto = ctx->proto,
                               .websocket = ctx->websocket,
                               .ops = srv->ops,
                               .ops_data = srv->ops_data,
                               .idle_timeout_ms = srv->idle_timeout_ms,
                               .max_port_forwards = srv->max_port_forwards};
    st->live.sock = sock;
    pthread_mutex_lock(&srv->lock);
    st->live.next = srv->live;
    srv->live = &st->live;
    srv->n_live++;
    pthread_mutex_unlock(&srv->lock);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int rc = pthread_create(&t, &attr, session_main, st);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        log_warn("streaming: cannot start a session thread: %s, closing", strerror(rc));
        streaming_request_free(st->p.req);
        session_finish(st);
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    req_ctx_t *ctx = *con_cls;
    if (!ctx)
        return;
    streaming_request_free(ctx->req);
    free(ctx);
    *con_cls = NULL;
}

typedef struct offers {
    const char *name;
    const char *v[MAX_OFFERS];
    size_t n;
} offers_t;

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    offers_t *o = cls;
    if (key && value && strcasecmp(key, o->name) == 0 && o->n < MAX_OFFERS)
        o->v[o->n++] = value;
    return MHD_YES;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned int code, const char *text,
                                  const char *accepted)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    if (accepted)
        MHD_add_response_header(r, "X-Accepted-Stream-Protocol-Versions", accepted);
    enum MHD_Result rc = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return rc;
}

/* Does a comma-separated header value hold token (case-insensitive)? */
static bool has_token(const char *value, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = value; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (strncasecmp(p, token, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
            return true;
        p = strchr(p, ',');
    }
    return false;
}

static bool parse_url(const char *url, streaming_kind_t *ret_kind, const char **ret_token)
{
    static const struct {
        const char *prefix;
        streaming_kind_t kind;
    } routes[] = {{"/exec/", STREAMING_EXEC},
                  {"/attach/", STREAMING_ATTACH},
                  {"/portforward/", STREAMING_PORTFORWARD}};
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (str_has_prefix(url, routes[i].prefix)) {
            const char *token = url + strlen(routes[i].prefix);
            if (!*token || strchr(token, '/'))
                return false;
            *ret_kind = routes[i].kind;
            *ret_token = token;
            return true;
        }
    }
    return false;
}

/* Builds the 101 for ctx's negotiated protocol. */
static enum MHD_Result upgrade(struct MHD_Connection *conn, req_ctx_t *ctx, const char *ws_key)
{
    struct MHD_Response *r = MHD_create_response_for_upgrade(on_upgrade, ctx);
    if (!r)
        return MHD_NO;
    if (ctx->websocket) {
        cleanup_free char *accept = ws_accept_key(ws_key);
        MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, "websocket");
        MHD_add_response_header(r, "Sec-WebSocket-Accept", accept);
        if (ctx->proto->name[0])
            MHD_add_response_header(r, "Sec-WebSocket-Protocol", ctx->proto->name);
    } else {
        MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, "SPDY/3.1");
        MHD_add_response_header(r, "X-Stream-Protocol-Version", ctx->proto->name);
    }
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, r);
    MHD_destroy_response(r);
    return rc;
}

/* Checks the upgrade headers and negotiates; on success ctx is ready for
 * upgrade(), else an error response has been queued (*ret_rc). */
static bool handshake(struct MHD_Connection *conn, req_ctx_t *ctx, const char **ret_key,
                      enum MHD_Result *ret_rc)
{
    const char *up = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Upgrade");
    const char *connection = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Connection");
    streaming_kind_t kind = ctx->req->kind;
    if (!up || !connection || !has_token(connection, "upgrade")) {
        *ret_rc = reply_text(conn, MHD_HTTP_BAD_REQUEST, "upgrade request required\n", NULL);
        return false;
    }
    ctx->websocket = strcasecmp(up, "websocket") == 0;
    if (!ctx->websocket && strcasecmp(up, "SPDY/3.1") != 0) {
        *ret_rc = reply_text(conn, MHD_HTTP_BAD_REQUEST, "unsupported upgrade protocol\n", NULL);
        return false;
    }
    if (ctx->websocket) {
        const char *ver =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Version");
        *ret_key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Key");
        if (!ver || strcmp(ver, "13") != 0 || !*ret_key || !**ret_key) {
            *ret_rc = reply_text(conn, MHD_HTTP_BAD_REQUEST, "bad websocket handshake\n", NULL);
            return false;
        }
    }
    offers_t o = {.name = ctx->websocket ? "Sec-WebSocket-Protocol" : "X-Stream-Protocol-Version"};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, collect, &o);
    if (!ctx->websocket && o.n == 0) {
        *ret_rc = reply_text(conn, MHD_HTTP_BAD_REQUEST,
                             "unable to upgrade: X-Stream-Protocol-Version is required\n", NULL);
        return false;
    }
    ctx->proto = streaming_negotiate(kind, ctx->websocket, o.v, o.n);
    if (!ctx->proto) {
        const char *accepted = streaming_supported(kind, ctx->websocket);
        cleanup_free char *msg = xasprintf(
            "unable to upgrade: unable to negotiate protocol: server accepts %s\n", accepted);
        *ret_rc = reply_text(conn, MHD_HTTP_FORBIDDEN, msg, ctx->websocket ? NULL : accepted);
        return false;
    }
    return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    streaming_server_t *srv = cls;
    if (*con_cls) { /* a body we do not use */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!streaming_tls_client_ok(srv->tls, conn))
        return reply_text(conn, MHD_HTTP_FORBIDDEN, "client certificate required\n", NULL);
    streaming_kind_t kind;
    const char *token = NULL;
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", NULL);
    if (!parse_url(url, &kind, &token))
        return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found\n", NULL);
    streaming_request_t *req = token_store_consume(srv->tokens, token);
    if (!req || req->kind != kind) {
        streaming_request_free(req);
        return reply_text(conn, MHD_HTTP_NOT_FOUND, "unknown or expired token\n", NULL);
    }
    req_ctx_t *ctx = xcalloc(1, sizeof(*ctx));
    ctx->srv = srv;
    ctx->req = req;
    *con_cls = ctx; /* on_completed frees it */
    const char *key = NULL;
    enum MHD_Result rc = MHD_NO;
    if (!handshake(conn, ctx, &key, &rc))
        return rc;
    return upgrade(conn, ctx, key);
}

static struct MHD_Daemon *bind_mhd(streaming_server_t *s, const char *address, int port,
                                   cri_error_t *err)
{
    struct sockaddr_storage ss = {0};
    unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_UPGRADE | MHD_USE_ITC;
    int family = sockaddr_from_ip(address, port, &ss);
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (family < 0) {
        cri_error_set(err, EINVAL, "streaming address `%s` is not an IP address", address);
        return NULL;
    }
    struct MHD_OptionItem opts[8] = {{MHD_OPTION_END, 0, NULL}};
    size_t n = streaming_tls_options(s->tls, opts, 3);
    if (s->tls)
        flags |= MHD_USE_TLS;
    /* MHD counts upgraded connections too until they are given back */
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, s->max_connections, NULL};
    opts[n++] =
        (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->max_per_client, NULL};
    streaming_guard_option(s->guard, &opts[n++]);
    struct MHD_Daemon *mhd = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)30, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!mhd)
        cri_error_make(err, errno ? errno : EADDRINUSE, "listen on `%s` port %d", address, port);
    return mhd;
}

int streaming_server_start(const streaming_config_t *cfg, streaming_server_t **ret,
                           cri_error_t *err)
{
    streaming_server_t *s = xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->idle, NULL);
    int64_t ttl_ms = cfg->token_ttl_ms;
    testhook_streaming(&s->fake, &ttl_ms);
    s->ops = s->fake ? &streaming_fake_backend : cfg->ops ? cfg->ops : &streaming_default_backend;
    s->ops_data = cfg->ops_data ? cfg->ops_data : cfg->daemon;
    s->tokens = token_store_new(ttl_ms, cfg->max_tokens, NULL, NULL);
    s->max_connections = cfg->max_connections ? cfg->max_connections : STREAMING_MAX_CONNECTIONS;
    s->max_per_client = cfg->max_connections_per_client ? cfg->max_connections_per_client
                                                        : STREAMING_MAX_CONNECTIONS_PER_CLIENT;
    s->max_port_forwards =
        cfg->max_port_forwards ? cfg->max_port_forwards : STREAMING_MAX_PORT_FORWARDS;
    s->idle_timeout_ms = cfg->idle_timeout_ms > 0 ? cfg->idle_timeout_ms : 0;
    s->guard = streaming_guard_new(cfg->handshake_timeout_ms > 0 ? cfg->handshake_timeout_ms : 0);
    const char *address = cfg->address && *cfg->address ? cfg->address : "127.0.0.1";
    if (streaming_tls_load(cfg->tls_cert, cfg->tls_key, cfg->tls_client_ca, &s->tls, err) < 0) {
        streaming_server_stop(s);
        return -1;
    }
    s->mhd = bind_mhd(s, address, cfg->port, err);
    if (!s->mhd) {
        streaming_server_stop(s);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : (uint16_t)cfg->port;
    const char *scheme = s->tls ? "https" : "http";
    s->base_url = strchr(address, ':') ? xasprintf("%s://[%s]:%u", scheme, address, s->port)
                                       : xasprintf("%s://%s:%u", scheme, address, s->port);
    *ret = s;
    return 0;
}

void streaming_server_stop(streaming_server_t *s)
{
    if (!s)
        return;
    if (s->mhd)
        MHD_quiesce_daemon(s->mhd); /* no new connections from here on */
    pthread_mutex_lock(&s->lock);
    for (live_t *l = s->live; l; l = l->next)
        shutdown(l->sock, SHUT_RDWR); /* the session sees EOF and ends */
    while (s->n_live > 0)
        pthread_cond_wait(&s->idle, &s->lock);
    pthread_mutex_unlock(&s->lock);
    streaming_guard_stop(s->guard);
    if (s->mhd)
        MHD_stop_daemon(s->mhd);
    streaming_guard_free(s->guard);
    token_store_free(s->tokens);
    streaming_tls_free(s->tls);
    free(s->base_url);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

uint16_t streaming_server_port(const streaming_server_t *s)
{
    return s->port;
}

const char *streaming_server_base_url(const streaming_server_t *s)
{
    return s->base_url;
}

unsigned int streaming_server_max_port_forwards(const streaming_server_t *s)
{
    return s->max_port_forwards;
}

bool streaming_server_fake(const streaming_server_t *s)
{
    return s->fake;
}

int streaming_server_issue(streaming_server_t *s, streaming_request_t *r, char **ret_url,
                           cri_error_t *err)
{
    static const char *const paths[] = {"exec", "attach", "portforward"};
    const char *path = paths[r->kind];
    cleanup_free char *token = NULL;
    if (token_store_insert(s->tokens, r, &token, err) < 0)
        return -1;
    *ret_url = xasprintf("%s/%s/%s", s->base_url, path, token);
    return 0;
}
