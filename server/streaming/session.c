/* One upgraded connection, run to its end on its own thread.
 *
 * The loop polls the client socket, the session's ends of the backend's
 * pipes and the port-forward sockets. Backpressure: the backends' output is
 * read only while less than SESSION_OUT_HIGH bytes wait for the client, and
 * the client is read only while less than SESSION_IN_HIGH bytes wait for a
 * backend, so a slow reader on either side stalls the other instead of
 * growing a buffer. The client is not read either while more than
 * SESSION_OUT_HIGH bytes wait for it: every frame it sends may call for a
 * reply (PING, a refused stream, a WebSocket pong), and a client that
 * sends without reading must stall on its own socket, not grow ours.
 * A session with no traffic to or from its client for idle_timeout_ms
 * ends. Exec and attach run on a backend thread of their own;
 * when it returns and its output has drained, the exit status goes on the
 * error stream and the connection closes. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "server/streaming/session-internal.h"

#define LINGER_MS 2000
#define RESIZE_TEXT_MAX 4096

int64_t session_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Frames n bytes for the client on channel c (of role, for WebSocket). */
void session_send(session_t *s, role_t role, chan_t *c, const void *p, size_t n)
{
    if (!c->open || c->fin_sent)
        return;
    if (!s->websocket) {
        const uint8_t *b = p;
        do {
            size_t k = n > SESSION_CHUNK ? SESSION_CHUNK : n;
            spdy_write_data(&s->out, c->id, 0, b, k);
            b += k;
            n -= k;
        } while (n > 0);
        return;
    }
    sbuf_t msg = {0};
    if (s->proto->base64) {
        uint8_t ch = (uint8_t)('0' + c->id);
        sbuf_append(&msg, &ch, 1);
        cleanup_free char *b64 = xmalloc(4 * ((n + 2) / 3) + 1);
        size_t enc = ws_base64_encode(b64, p, n);
        sbuf_append(&msg, b64, enc);
        ws_write_frame(&s->out, WS_TEXT, true, NULL, msg.data, msg.len);
    } else {
        uint8_t ch = (uint8_t)c->id;
        sbuf_append(&msg, &ch, 1);
        sbuf_append(&msg, p, n);
        ws_write_frame(&s->out, WS_BINARY, true, NULL, msg.data, msg.len);
    }
    sbuf_free(&msg);
    (void)role;
}

/* SPDY: an empty DATA frame with FIN. WebSocket channels have no
 * server-side close: the connection's end ends them. */
void session_send_fin(session_t *s, chan_t *c)
{
    if (!c->open || c->fin_sent)
        return;
    if (!s->websocket)
        spdy_write_data(&s->out, c->id, SPDY_FLAG_FIN, NULL, 0);
    c->fin_sent = true;
}

void session_stdin_data(session_t *s, const uint8_t *p, size_t n)
{
    if (s->req->in && !s->ch[ROLE_STDIN].client_fin)
        sbuf_append(&s->to_stdin, p, n); /* flushed once the backend runs */
}

void session_stdin_close(session_t *s)
{
    s->ch[ROLE_STDIN].client_fin = true;
    if (s->to_stdin.len == 0)
        close_fd(&s->in_w);
}

/* The resize stream carries JSON objects {"Width":w,"Height":h}, one after
 * another (client-go encodes each with a json.Encoder). */
void session_resize_data(session_t *s, const uint8_t *p, size_t n)
{
    sbuf_append(&s->resize_text, p, n);
    for (;;) {
        size_t start = 0;
        while (start < s->resize_text.len && strchr(" \t\r\n", s->resize_text.data[start]) &&
               s->resize_text.data[start])
            start++;
        sbuf_consume(&s->resize_text, start);
        if (s->resize_text.len == 0)
            return;
        json_error_t jerr;
        json_t *o = json_loadb((const char *)s->resize_text.data, s->resize_text.len,
                               JSON_DISABLE_EOF_CHECK, &jerr);
        if (!o)
            break; /* incomplete: wait for more */
        json_int_t w = 0, h = 0;
        if (json_unpack(o, "{s:I, s:I}", "Width", &w, "Height", &h) == 0 && s->resize_w >= 0) {
            streaming_winsize_t ws = {(uint16_t)w, (uint16_t)h};
            if (write(s->resize_w, &ws, sizeof(ws)) < 0) {
                /* a full pipe drops the event: only the latest size matters */
            }
        }
        json_decref(o);
        sbuf_consume(&s->resize_text, (size_t)jerr.position);
    }
    if (s->resize_text.len > RESIZE_TEXT_MAX)
        s->resize_text.len = 0; /* garbage: drop it */
}

static void flush_stdin(session_t *s);

static void *backend_main(void *arg)
{
    session_t *s = arg;
    int code = 0;
    if (s->req->kind == STREAMING_EXEC) {
        s->brc = s->ops->exec ? s->ops->exec(s->ops_data, s->req, &s->bio, &code, &s->berr)
                              : cri_error_set(&s->berr, ENOSYS, "exec is not supported");
    } else {
        s->brc = s->ops->attach ? s->ops->attach(s->ops_data, s->req, &s->bio, &s->berr)
                                : cri_error_set(&s->berr, ENOSYS, "attach is not supported");
    }
    s->exit_code = code;
    /* closing the write ends is what ends stdout/stderr for the client */
    close_fd(&s->bio.in);
    close_fd(&s->bio.out);
    close_fd(&s->bio.err);
    close_fd(&s->bio.resize);
    close_fd(&s->bio.cancel);
    char x = 'x';
    if (write(s->done_w, &x, 1) < 0) {
        /* the session polls done_r: a failed write shows as POLLHUP below */
    }
    close_fd(&s->done_w);
    return NULL;
}

/* One pipe: *ret_session gets the session's end (non-blocking). */
static int make_pipe(bool session_reads, int *ret_session, int *ret_backend, cri_error_t *err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return cri_error_make(err, errno, "pipe");
    int mine = session_reads ? p[0] : p[1];
    fcntl(mine, F_SETFL, O_NONBLOCK);
    *ret_session = mine;
    *ret_backend = session_reads ? p[1] : p[0];
    return 0;
}

void session_start_backend(session_t *s)
{
    cri_error_t err = CRI_ERROR_INIT;
    const streaming_request_t *r = s->req;
    bool ok = true;
    if (r->in)
        ok = ok && make_pipe(false, &s->in_w, &s->bio.in, &err) == 0;
    if (r->out)
        ok = ok && make_pipe(true, &s->out_r, &s->bio.out, &err) == 0;
    if (r->err && !r->tty)
        ok = ok && make_pipe(true, &s->err_r, &s->bio.err, &err) == 0;
    if (r->tty)
        ok = ok && make_pipe(false, &s->resize_w, &s->bio.resize, &err) == 0;
    ok = ok && make_pipe(false, &s->cancel_w, &s->bio.cancel, &err) == 0;
    ok = ok && make_pipe(true, &s->done_r, &s->done_w, &err) == 0;
    s->backend_started = true;
    flush_stdin(s); /* stdin may have come, and even ended, before the last stream */
    if (ok && pthread_create(&s->backend, NULL, backend_main, s) == 0)
        return;
    s->backend_started = false;
    s->backend_done = true;
    s->brc = -1;
    if (err.status)
        s->berr = err;
    else
        cri_error_set(&s->berr, EAGAIN, "start backend thread");
    close_fd(&s->out_r);
    close_fd(&s->err_r);
}

/* Exec/attach: once the backend returned and its output drained, the
 * status goes on the error stream and the connection winds down. */
static void finish_exec(session_t *s)
{
    if (!s->backend_done || s->out_r >= 0 || s->err_r >= 0 || s->status_sent)
        return;
    s->status_sent = true;
    chan_t *e = &s->ch[ROLE_ERROR];
    const char *msg = s->brc < 0 ? s->berr.msg : NULL;
    int code = s->req->kind == STREAMING_EXEC ? s->exit_code : 0;
    if (s->proto->proto >= PROTO_V4) {
        cleanup_free char *st = streaming_status_json(code, msg);
        session_send(s, ROLE_ERROR, e, st, strlen(st));
    } else if (msg || code != 0) { /* v1-v3: plain text, failures only */
        cleanup_free char *text =
            msg ? xstrdup(msg)
                : xasprintf("command terminated with non-zero exit code: exit status %d", code);
        session_send(s, ROLE_ERROR, e, text, strlen(text));
    }
    for (int i = 0; i < ROLE_COUNT; i++)
        session_send_fin(s, &s->ch[i]);
    if (s->websocket)
        ws_session_close(s, 1000);
    s->closing = true;
}

/* Reads what a backend pipe has, within the output budget. */
static void drain_pipe(session_t *s, int *fd, role_t role)
{
    uint8_t buf[SESSION_CHUNK];
    while (session_out_pending(s) < SESSION_OUT_HIGH) {
        ssize_t k = read(*fd, buf, sizeof(buf));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            return;
        if (k <= 0) {
            close_fd(fd);
            if (!s->websocket)
                session_send_fin(s, &s->ch[role]);
            return;
        }
        session_send(s, role, &s->ch[role], buf, (size_t)k);
    }
}

static void flush_stdin(session_t *s)
{
    while (s->to_stdin.len > 0 && s->in_w >= 0) {
        ssize_t k = write(s->in_w, s->to_stdin.data, s->to_stdin.len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            return;
        if (k < 0) { /* the backend stopped reading stdin */
            s->to_stdin.len = 0;
            close_fd(&s->in_w);
            return;
        }
        sbuf_consume(&s->to_stdin, (size_t)k);
    }
    if (s->to_stdin.len == 0 && s->ch[ROLE_STDIN].client_fin)
        close_fd(&s->in_w);
}

/* Bytes not yet sent to the client (SPDY or channel frames, and in a
 * tunnel the WebSocket frames around them). */
size_t session_out_pending(const session_t *s)
{
    return s->out.len + s->wire_out.len;
}

static void flush_out(session_t *s)
{
    if (s->tunnel)
        ws_tunnel_output(s);
    sbuf_t *w = s->tunnel ? &s->wire_out : &s->out;
    while (w->len > 0) {
        ssize_t k = send(s->sock, w->data, w->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            return;
        if (k < 0) {
            s->client_gone = true;
            w->len = 0;
            return;
        }
        s->last_traffic_ms = session_now_ms();
        sbuf_consume(w, (size_t)k);
    }
}

static void read_client(session_t *s)
{
    uint8_t buf[SESSION_CHUNK];
    ssize_t k = recv(s->sock, buf, sizeof(buf), MSG_DONTWAIT);
    if (k < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (k <= 0) {
        s->client_gone = true;
        return;
    }
    s->last_traffic_ms = session_now_ms();
    sbuf_append(s->tunnel ? &s->wire_in : &s->in, buf, (size_t)k);
    cri_error_t err = CRI_ERROR_INIT;
    int rc = s->websocket ? ws_session_input(s, &err)
             : s->tunnel  ? ws_tunnel_input(s, &err)
                          : spdy_session_input(s, &err);
    if (rc < 0) {
        if (s->websocket)
            ws_session_close(s, err.status == EMSGSIZE ? 1009 : 1002);
        else
            spdy_write_goaway(&s->out, s->last_stream, 1); /* PROTOCOL_ERROR */
        s->closing = true;
    }
}

static bool client_readable(session_t *s)
{
    return !s->closing && session_out_pending(s) < SESSION_OUT_HIGH &&
           s->to_stdin.len < SESSION_IN_HIGH && pf_pending_in(s) < SESSION_IN_HIGH;
}

enum { P_SOCK, P_OUT, P_ERR, P_IN, P_DONE, P_FIXED };

static void poll_once(session_t *s)
{
    size_t max = P_FIXED + s->n_pairs;
    cleanup_free struct pollfd *fds = xcalloc(max, sizeof(*fds));
    bool room = session_out_pending(s) < SESSION_OUT_HIGH;
    fds[P_SOCK].fd = s->sock;
    fds[P_SOCK].events =
        (short)((client_readable(s) ? POLLIN : 0) | (session_out_pending(s) ? POLLOUT : 0));
    fds[P_OUT].fd = room ? s->out_r : -1;
    fds[P_OUT].events = POLLIN;
    fds[P_ERR].fd = room ? s->err_r : -1;
    fds[P_ERR].events = POLLIN;
    fds[P_IN].fd = s->to_stdin.len ? s->in_w : -1;
    fds[P_IN].events = POLLOUT;
    fds[P_DONE].fd = s->done_r;
    fds[P_DONE].events = POLLIN;
    size_t n = P_FIXED + pf_poll_add(s, fds + P_FIXED, s->n_pairs);
    int rc = poll(fds, n, 1000);
    if (rc < 0)
        return;
    if (fds[P_SOCK].revents & (POLLERR | POLLHUP | POLLNVAL) && !(fds[P_SOCK].revents & POLLIN))
        s->client_gone = true;
    /* the pairs first: reading the client may add or drop pairs */
    pf_poll_handle(s, fds + P_FIXED, n - P_FIXED);
    if (fds[P_SOCK].revents & POLLIN)
        read_client(s);
    if (fds[P_OUT].revents)
        drain_pipe(s, &s->out_r, ROLE_STDOUT);
    if (fds[P_ERR].revents)
        drain_pipe(s, &s->err_r, ROLE_STDERR);
    if (fds[P_IN].revents)
        flush_stdin(s);
    if (fds[P_DONE].revents) {
        close_fd(&s->done_r);
        s->backend_done = true;
    }
    flush_stdin(s);
    flush_out(s);
}

/* After the last byte went out: half-close, then give the client a moment
 * to read everything and close its side, so that our close never turns
 * into a reset that eats unread data. */
static void linger(session_t *s)
{
    shutdown(s->sock, SHUT_WR);
    int64_t end = session_now_ms() + LINGER_MS;
    for (;;) {
        int64_t left = end - session_now_ms();
        if (left <= 0)
            return;
        struct pollfd p = {.fd = s->sock, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            return;
        uint8_t buf[4096];
        ssize_t k = recv(s->sock, buf, sizeof(buf), MSG_DONTWAIT);
        if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN))
            return;
    }
}

static void progress(session_t *s)
{
    if (s->req->kind == STREAMING_PORTFORWARD) {
        if (s->websocket && !s->closing && pf_all_done(s)) {
            ws_session_close(s, 1000);
            s->closing = true;
        }
        return;
    }
    if (!s->websocket && !s->backend_started && !s->closing)
        spdy_session_check_streams(s);
    finish_exec(s);
}

static bool idle_too_long(session_t *s)
{
    if (s->idle_timeout_ms <= 0 || session_now_ms() - s->last_traffic_ms < s->idle_timeout_ms)
        return false;
    log_info("streaming: closing a session idle for %lld ms", (long long)s->idle_timeout_ms);
    return true;
}

static void cleanup_backend(session_t *s)
{
    /* the client is gone or done: make the backend stop and wait for it */
    close_fd(&s->cancel_w);
    close_fd(&s->in_w);
    close_fd(&s->out_r);
    close_fd(&s->err_r);
    close_fd(&s->resize_w);
    if (s->backend_started)
        pthread_join(s->backend, NULL);
    close_fd(&s->done_r);
    close_fd(&s->done_w);
    close_fd(&s->bio.in);
    close_fd(&s->bio.out);
    close_fd(&s->bio.err);
    close_fd(&s->bio.resize);
    close_fd(&s->bio.cancel);
}

void streaming_session_run(const session_params_t *p)
{
    session_t s = {0};
    s.sock = p->sock;
    s.tunnel = p->websocket && p->proto->tunnel;
    s.websocket = p->websocket && !s.tunnel;
    s.proto = p->proto;
    s.req = p->req;
    s.ops = p->ops;
    s.ops_data = p->ops_data;
    s.started_ns = session_now_ms();
    s.last_traffic_ms = s.started_ns;
    s.idle_timeout_ms = p->idle_timeout_ms;
    s.max_pairs = p->max_port_forwards ? p->max_port_forwards : STREAMING_MAX_PORT_FORWARDS;
    s.in_w = s.out_r = s.err_r = s.resize_w = s.cancel_w = s.done_r = s.done_w = -1;
    s.bio = (streaming_stdio_t){-1, -1, -1, -1, -1};
    cri_error_t err = CRI_ERROR_INIT;
    if (!s.websocket && spdy_zctx_init(&s.z, &err) < 0)
        s.client_gone = true;
    sbuf_append(s.tunnel ? &s.wire_in : &s.in, p->extra, p->extra_len);
    if (s.websocket)
        ws_session_open(&s);
    else if (s.tunnel ? s.wire_in.len && ws_tunnel_input(&s, &err) < 0
                      : s.in.len && spdy_session_input(&s, &err) < 0)
        s.client_gone = true;
    while (!s.client_gone && !(s.closing && session_out_pending(&s) == 0)) {
        progress(&s);
        if (s.tunnel)
            ws_tunnel_output(&s);
        if (s.closing && session_out_pending(&s) == 0)
            break;
        poll_once(&s);
        if (idle_too_long(&s))
            s.client_gone = true; /* no linger: it does not read anyway */
    }
    if (!s.client_gone)
        linger(&s);
    cleanup_backend(&s);
    pf_free_all(&s);
    spdy_zctx_free(&s.z);
    ws_reader_free(&s.wsr);
    sbuf_free(&s.in);
    sbuf_free(&s.out);
    sbuf_free(&s.wire_in);
    sbuf_free(&s.wire_out);
    sbuf_free(&s.to_stdin);
    sbuf_free(&s.resize_text);
    streaming_request_free(s.req);
}
