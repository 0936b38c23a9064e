/* The SPDY/3.1 side of a session: the client opens every stream
 * (SYN_STREAM with a `streamtype` header), the server answers each with a
 * SYN_REPLY and never opens streams itself. Nothing is sent before the
 * client's first frame. Exec/attach start once every stream the request
 * implies exists (error, and stdin/stdout/stderr as asked, and resize for a
 * tty from v3 on), as kubelet's remotecommand server waits for them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/streaming/session-internal.h"

static int role_of(const char *type)
{
    static const char *const names[ROLE_COUNT] = {"error", "stdin", "stdout", "stderr", "resize"};
    for (int i = 0; i < ROLE_COUNT; i++)
        if (type && strcmp(type, names[i]) == 0)
            return i;
    return -1;
}

static int reply(session_t *s, uint32_t id, cri_error_t *err)
{
    return spdy_write_syn(&s->out, &s->z, SPDY_SYN_REPLY, id, 0, NULL, 0, err);
}

static chan_t *exec_chan(session_t *s, uint32_t id, role_t *ret_role)
{
    for (int i = 0; i < ROLE_COUNT; i++) {
        if (s->ch[i].open && s->ch[i].id == id) {
            *ret_role = (role_t)i;
            return &s->ch[i];
        }
    }
    return NULL;
}

static pf_pair_t *pf_by_stream(session_t *s, uint32_t id, bool *ret_data)
{
    for (size_t i = 0; i < s->n_pairs; i++) {
        pf_pair_t *p = s->pairs[i];
        if (p->data.open && p->data.id == id) {
            *ret_data = true;
            return p;
        }
        if (p->error.open && p->error.id == id) {
            *ret_data = false;
            return p;
        }
    }
    return NULL;
}

/* One port-forward connection too many: its error stream is accepted to
 * say so and ends at once, its data stream is refused (REFUSED_STREAM).
 * Neither is kept, so a client cannot grow the session's table. */
static int refuse_portforward(session_t *s, uint32_t id, bool data, unsigned long port,
                              cri_error_t *err)
{
    if (data) {
        spdy_write_rst(&s->out, id, SPDY_RST_REFUSED_STREAM);
        return 0;
    }
    if (reply(s, id, err) < 0)
        return -1;
    chan_t c = {.open = true, .id = id};
    cleanup_free char *msg =
        xasprintf("error forwarding port %lu to pod %s: too many port-forward connections in this "
                  "session (limit %u, streaming.max_port_forwards)",
                  port, s->req->pod_id ? s->req->pod_id : "", s->max_pairs);
    session_send(s, ROLE_PF_ERROR, &c, msg, strlen(msg));
    session_send_fin(s, &c);
    return 0;
}

/* Port-forward streams carry `port` and `requestid`; clients before
 * requestid pair a data stream with the error stream opened just before it. */
static int syn_portforward(session_t *s, uint32_t id, const spdy_headers_t *h, cri_error_t *err)
{
    const char *type = spdy_headers_get(h, "streamtype");
    bool data = type && strcmp(type, "data") == 0;
    if (!type || (!data && strcmp(type, "error") != 0)) {
        spdy_write_rst(&s->out, id, SPDY_RST_PROTOCOL_ERROR);
        return 0;
    }
    const char *rid = spdy_headers_get(h, "requestid");
    char *end = NULL;
    unsigned long req_id = rid ? strtoul(rid, &end, 10) : (data ? id - 2 : id);
    if (rid && (*rid == '\0' || *end != '\0')) {
        spdy_write_rst(&s->out, id, SPDY_RST_PROTOCOL_ERROR);
        return 0;
    }
    const char *port = spdy_headers_get(h, "port");
    unsigned long pn = port ? strtoul(port, &end, 10) : 0;
    pf_pair_t *p = pf_pair_get(s, (uint32_t)req_id, false);
    if (!p && s->n_pairs >= s->max_pairs)
        return refuse_portforward(s, id, data, pn, err);
    if (!p)
        p = pf_pair_get(s, (uint32_t)req_id, true);
    chan_t *c = data ? &p->data : &p->error;
    if (c->open) {
        spdy_write_rst(&s->out, id, SPDY_RST_PROTOCOL_ERROR);
        return 0;
    }
    if (port && *port && *end == '\0' && pn >= 1 && pn <= 65535)
        p->port = (uint16_t)pn;
    c->open = true;
    c->id = id;
    if (reply(s, id, err) < 0)
        return -1;
    if (p->data.open && p->error.open)
        pf_pair_dial(s, p);
    return 0;
}

static int on_syn_stream(session_t *s, const spdy_frame_t *f, cri_error_t *err)
{
    if (f->stream_id == 0 || f->stream_id <= s->last_stream)
        return cri_error_set(err, EPROTO, "stream id %u out of order", f->stream_id);
    s->last_stream = f->stream_id;
    spdy_headers_t h = {0};
    if (spdy_headers_decode(&s->z, f->payload, f->payload_len, &h, err) < 0)
        return -1;
    int rc = 0;
    if (s->req->kind == STREAMING_PORTFORWARD) {
        rc = syn_portforward(s, f->stream_id, &h, err);
    } else {
        int role = role_of(spdy_headers_get(&h, "streamtype"));
        if (role < 0 || s->ch[role].open || s->backend_started) {
            spdy_write_rst(&s->out, f->stream_id, SPDY_RST_PROTOCOL_ERROR);
        } else {
            s->ch[role].open = true;
            s->ch[role].id = f->stream_id;
            rc = reply(s, f->stream_id, err);
        }
    }
    spdy_headers_free(&h);
    return rc;
}

static void on_data(session_t *s, uint32_t id, uint8_t flags, const uint8_t *p, size_t n)
{
    bool fin = flags & SPDY_FLAG_FIN;
    if (s->req->kind == STREAMING_PORTFORWARD) {
        bool is_data = false;
        pf_pair_t *pair = pf_by_stream(s, id, &is_data);
        if (!pair || !is_data)
            return;
        pf_data_from_client(s, pair, p, n);
        if (fin)
            pf_client_fin(s, pair);
        return;
    }
    role_t role;
    chan_t *c = exec_chan(s, id, &role);
    if (!c)
        return;
    if (role == ROLE_STDIN && n)
        session_stdin_data(s, p, n);
    else if (role == ROLE_RESIZE && n)
        session_resize_data(s, p, n);
    if (fin) {
        c->client_fin = true;
        if (role == ROLE_STDIN)
            session_stdin_close(s);
    }
}

static void on_rst(session_t *s, uint32_t id)
{
    if (s->req->kind == STREAMING_PORTFORWARD) {
        bool is_data = false;
        pf_pair_t *pair = pf_by_stream(s, id, &is_data);
        if (pair)
            pf_client_reset(s, pair, is_data); /* may free pair */
        return;
    }
    on_data(s, id, SPDY_FLAG_FIN, NULL, 0);
    role_t role;
    chan_t *c = exec_chan(s, id, &role);
    if (c)
        c->fin_sent = true; /* reset: nothing more may go out on it */
}

static int on_frame(session_t *s, const spdy_frame_t *f, cri_error_t *err)
{
    if (!f->control) {
        on_data(s, f->stream_id, f->flags, f->payload, f->payload_len);
        return 0;
    }
    switch (f->type) {
    case SPDY_SYN_STREAM: {
        if (on_syn_stream(s, f, err) < 0)
            return -1;
        if (f->flags & SPDY_FLAG_FIN)
            on_data(s, f->stream_id, SPDY_FLAG_FIN, NULL, 0);
        return 0;
    }
    case SPDY_HEADERS: { /* keep the inflate context in step */
        spdy_headers_t h = {0};
        if (spdy_headers_decode(&s->z, f->payload, f->payload_len, &h, err) < 0)
            return -1;
        spdy_headers_free(&h);
        if (f->flags & SPDY_FLAG_FIN)
            on_data(s, f->stream_id, SPDY_FLAG_FIN, NULL, 0);
        return 0;
    }
    case SPDY_RST_STREAM:
        on_rst(s, f->stream_id);
        return 0;
    case SPDY_PING:
        /* client PINGs have odd ids; answer them with the same id */
        if (f->value & 1)
            spdy_write_ping(&s->out, f->value);
        return 0;
    case SPDY_GOAWAY:
        s->closing = true;
        return 0;
    case SPDY_SYN_REPLY: /* we open no streams */
        return cri_error_set(err, EPROTO, "unexpected SYN_REPLY");
    default: /* SETTINGS, WINDOW_UPDATE: no flow control (as spdystream) */
        return 0;
    }
}

int spdy_session_input(session_t *s, cri_error_t *err)
{
    size_t used = 0;
    while (!s->closing) {
        spdy_frame_t f;
        long n = spdy_frame_parse(s->in.data + used, s->in.len - used, &f, err);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        if (on_frame(s, &f, err) < 0)
            return -1;
        used += (size_t)n;
    }
    sbuf_consume(&s->in, used);
    return 0;
}

/* Starts exec/attach once the streams the request implies exist; gives up
 * after SESSION_STREAM_WAIT_MS. */
void spdy_session_check_streams(session_t *s)
{
    const streaming_request_t *r = s->req;
    bool resize = r->tty && s->proto->proto >= PROTO_V3;
    bool all = s->ch[ROLE_ERROR].open && (!r->in || s->ch[ROLE_STDIN].open) &&
               (!r->out || s->ch[ROLE_STDOUT].open) &&
               (!r->err || r->tty || s->ch[ROLE_STDERR].open) &&
               (!resize || s->ch[ROLE_RESIZE].open);
    if (all) {
        session_start_backend(s);
        return;
    }
    if (session_now_ms() - s->started_ns > SESSION_STREAM_WAIT_MS) {
        spdy_write_goaway(&s->out, s->last_stream, 0);
        s->closing = true;
    }
}
