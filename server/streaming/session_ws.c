/* The WebSocket side of a session (k8s.io channel protocols).
 *
 * Every message starts with a channel byte (base64.* protocols: the ASCII
 * digit, then base64 text). Exec/attach channels: 0 stdin, 1 stdout,
 * 2 stderr, 3 error, 4 resize; v5.channel.k8s.io adds the close signal
 * [255, channel] with which a client half-closes stdin. Port-forward: per
 * port in the request, channel 2i carries data both ways and 2i+1 errors;
 * each starts with the port as a little-endian uint16. The server sends an
 * empty message on the lowest writable channel once it is ready, as the
 * reference server does. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/streaming/session-internal.h"

#define WS_CLOSE_SIGNAL 255
#define WS_CH_STDIN 0
#define WS_CH_RESIZE 4

/* channel number of each role: stdin 0, stdout 1, stderr 2, error 3, resize 4 */
static const uint32_t ws_channel[ROLE_COUNT] = {
    [ROLE_STDIN] = 0, [ROLE_STDOUT] = 1, [ROLE_STDERR] = 2, [ROLE_ERROR] = 3, [ROLE_RESIZE] = 4};

void ws_session_close(session_t *s, uint16_t code)
{
    uint8_t b[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    ws_write_frame(&s->out, WS_CLOSE, true, NULL, b, sizeof(b));
}

static void open_portforward(session_t *s)
{
    const streaming_request_t *r = s->req;
    /* PortForward refuses more ports than this (streaming_server_max_port_forwards) */
    for (size_t i = 0; i < r->n_ports && i < s->max_pairs; i++) {
        pf_pair_t *p = pf_pair_get(s, (uint32_t)i, true);
        p->port = (uint16_t)r->ports[i];
        p->data = (chan_t){.open = true, .id = (uint32_t)(2 * i)};
        p->error = (chan_t){.open = true, .id = (uint32_t)(2 * i + 1)};
        uint8_t le[2] = {(uint8_t)p->port, (uint8_t)(p->port >> 8)};
        session_send(s, ROLE_PF_DATA, &p->data, le, 2);
        session_send(s, ROLE_PF_ERROR, &p->error, le, 2);
    }
    for (size_t i = 0; i < s->n_pairs; i++)
        pf_pair_dial(s, s->pairs[i]);
}

void ws_session_open(session_t *s)
{
    if (s->req->kind == STREAMING_PORTFORWARD) {
        open_portforward(s);
        return;
    }
    const streaming_request_t *r = s->req;
    for (int i = 0; i < ROLE_COUNT; i++)
        s->ch[i] = (chan_t){.open = true, .id = ws_channel[i]};
    role_t first = r->out ? ROLE_STDOUT : (r->err && !r->tty) ? ROLE_STDERR : ROLE_ERROR;
    session_send(s, first, &s->ch[first], NULL, 0);
    session_start_backend(s);
}

static void on_message(session_t *s, const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    if (s->proto->proto == PROTO_V5 && p[0] == WS_CLOSE_SIGNAL) {
        if (n == 2 && p[1] == WS_CH_STDIN)
            session_stdin_close(s);
        return;
    }
    uint8_t ch = s->proto->base64 ? (uint8_t)(p[0] - '0') : p[0];
    const uint8_t *d = p + 1;
    size_t dn = n - 1;
    cleanup_free uint8_t *decoded = NULL;
    if (s->proto->base64) {
        decoded = xmalloc(dn / 4 * 3 + 3);
        long k = ws_base64_decode(decoded, (const char *)d, dn);
        if (k < 0)
            return; /* as the reference server: a bad frame is skipped */
        d = decoded;
        dn = (size_t)k;
    }
    if (s->req->kind == STREAMING_PORTFORWARD) {
        if (ch % 2 == 0 && ch / 2 < s->n_pairs)
            pf_data_from_client(s, s->pairs[ch / 2], d, dn);
        return;
    }
    if (ch == WS_CH_STDIN && dn)
        session_stdin_data(s, d, dn);
    else if (ch == WS_CH_RESIZE && dn && s->req->tty)
        session_resize_data(s, d, dn);
}

/* A ping gets its pong on `out`; a close is echoed with its code and the
 * session winds down; other opcodes are dropped. */
static void control_frame(session_t *s, sbuf_t *out, uint8_t op, const uint8_t *p, size_t n)
{
    if (op == WS_PING) {
        ws_write_frame(out, WS_PONG, true, NULL, p, n);
    } else if (op == WS_CLOSE) {
        ws_write_frame(out, WS_CLOSE, true, NULL, p, n >= 2 ? 2 : 0);
        s->closing = true;
    }
}

static int on_frame(session_t *s, const ws_frame_t *f, cri_error_t *err)
{
    uint8_t op;
    const uint8_t *p;
    size_t n;
    int rc = ws_reader_feed(&s->wsr, f, WS_MAX_MESSAGE, &op, &p, &n, err);
    if (rc <= 0)
        return rc;
    if (op == WS_TEXT || op == WS_BINARY)
        on_message(s, p, n);
    else
        control_frame(s, &s->out, op, p, n);
    return 0;
}

int ws_session_input(session_t *s, cri_error_t *err)
{
    size_t used = 0;
    while (!s->closing) {
        ws_frame_t f;
        long n = ws_frame_parse(s->in.data + used, s->in.len - used, true, WS_MAX_MESSAGE, &f, err);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        used += (size_t)n;
        if (on_frame(s, &f, err) < 0)
            return -1;
    }
    sbuf_consume(&s->in, used);
    return 0;
}

/* The tunnel's WebSocket layer: binary (and continuation) messages carry
 * SPDY bytes; text messages are not part of the protocol and are dropped. */
static int tunnel_frame(session_t *s, const ws_frame_t *f, cri_error_t *err)
{
    uint8_t op;
    const uint8_t *p;
    size_t n;
    int rc = ws_reader_feed(&s->wsr, f, WS_MAX_MESSAGE, &op, &p, &n, err);
    if (rc <= 0)
        return rc;
    if (op == WS_BINARY)
        sbuf_append(&s->in, p, n);
    else
        control_frame(s, &s->wire_out, op, p, n);
    return 0;
}

int ws_tunnel_input(session_t *s, cri_error_t *err)
{
    size_t used = 0;
    int rc = 0;
    while (!s->closing) {
        ws_frame_t f;
        long n = ws_frame_parse(s->wire_in.data + used, s->wire_in.len - used, true, WS_MAX_MESSAGE,
                                &f, err);
        if (n < 0) {
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (tunnel_frame(s, &f, err) < 0) {
            rc = -1;
            break;
        }
    }
    sbuf_consume(&s->wire_in, used);
    if (rc < 0)
        return -1;
    return s->in.len ? spdy_session_input(s, err) : 0;
}

void ws_tunnel_output(session_t *s)
{
    if (s->out.len == 0)
        return;
    ws_write_frame(&s->wire_out, WS_BINARY, true, NULL, s->out.data, s->out.len);
    s->out.len = 0;
}
