/* WebSocket framing (RFC 6455 section 5) and the handshake key.
 *
 *  FIN RSV1-3 opcode(4) | MASK len(7) [len16 | len64] [mask(4)] payload
 *
 * A server must receive masked frames only and sends unmasked ones. Control
 * frames (close, ping, pong) carry at most 125 bytes, are never fragmented
 * and may arrive between the fragments of a message. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/streaming/proto/proto.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* SHA-1 through gnutls (linked for streaming TLS anyway): the daemon does
 * not load libcrypto only for this (issue 15, idle RSS). */
char *ws_accept_key(const char *key)
{
    cleanup_free char *joined = xasprintf("%s%s", key, WS_GUID);
    unsigned char digest[20];
    if (gnutls_hash_fast(GNUTLS_DIG_SHA1, joined, strlen(joined), digest) < 0)
        abort(); /* SHA-1 is built into every gnutls; only OOM fails here */
    char *out = xmalloc(4 * ((sizeof(digest) + 2) / 3) + 1);
    ws_base64_encode(out, digest, sizeof(digest));
    return out;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* RFC 4648 section 4, with padding; out gets 4 * ceil(n / 3) + 1 bytes. */
size_t ws_base64_encode(char *out, const void *p, size_t n)
{
    const uint8_t *in = p;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o] = '=';
        out[o + 1] = '=';
        if (i + 1 < n)
            out[o] = b64[(v >> 6) & 63];
        if (i + 2 < n)
            out[o + 1] = b64[v & 63];
        o += 2;
    }
    out[o] = '\0';
    return o;
}

static int b64_value(char c)
{
    const char *hit = c ? strchr(b64, c) : NULL;
    return hit ? (int)(hit - b64) : -1;
}

long ws_base64_decode(uint8_t *out, const char *p, size_t n)
{
    if (n % 4 != 0)
        return -1;
    long k = 0;
    for (size_t i = 0; i < n; i += 4) {
        bool last = i + 4 == n;
        int pad = last ? (p[i + 3] == '=') + (p[i + 2] == '=' && p[i + 3] == '=') : 0;
        uint32_t v = 0;
        for (size_t j = 0; j < 4; j++) {
            int d = j >= 4 - (size_t)pad ? 0 : b64_value(p[i + j]);
            if (d < 0)
                return -1;
            v = v << 6 | (uint32_t)d;
        }
        out[k++] = (uint8_t)(v >> 16);
        if (pad < 2)
            out[k++] = (uint8_t)(v >> 8);
        if (pad < 1)
            out[k++] = (uint8_t)v;
    }
    return k;
}

static bool is_control(uint8_t opcode)
{
    return opcode & 0x8;
}

long ws_frame_parse(uint8_t *p, size_t n, bool require_mask, size_t max, ws_frame_t *ret,
                    cri_error_t *err)
{
    if (n < 2)
        return 0;
    ws_frame_t f = {0};
    f.fin = (p[0] & 0x80) != 0;
    f.opcode = p[0] & 0x0f;
    f.masked = (p[1] & 0x80) != 0;
    if (p[0] & 0x70)
        return cri_error_set(err, EPROTO, "websocket: reserved bits set");
    if (f.opcode > WS_BINARY && !is_control(f.opcode))
        return cri_error_set(err, EPROTO, "websocket: opcode %u", f.opcode);
    if (f.opcode > WS_PONG)
        return cri_error_set(err, EPROTO, "websocket: opcode %u", f.opcode);
    if (require_mask && !f.masked)
        return cri_error_set(err, EPROTO, "websocket: client frame not masked");
    uint64_t len = p[1] & 0x7f;
    size_t pos = 2;
    if (len == 126) {
        if (n < 4)
            return 0;
        len = (uint64_t)p[2] << 8 | p[3];
        pos = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        pos = 10;
    }
    if (is_control(f.opcode) && (len > 125 || !f.fin))
        return cri_error_set(err, EPROTO, "websocket: bad control frame");
    if (len > max)
        return cri_error_set(err, EMSGSIZE, "websocket: frame of %llu bytes",
                             (unsigned long long)len);
    uint8_t mask[4] = {0};
    if (f.masked) {
        if (n < pos + 4)
            return 0;
        memcpy(mask, p + pos, 4);
        pos += 4;
    }
    if (n < pos + len)
        return 0;
    f.payload = p + pos;
    f.payload_len = (size_t)len;
    if (f.masked) {
        for (size_t i = 0; i < f.payload_len; i++)
            f.payload[i] ^= mask[i & 3];
    }
    *ret = f;
    return (long)(pos + len);
}

void ws_write_frame(sbuf_t *out, uint8_t opcode, bool fin, const uint8_t *mask, const void *p,
                    size_t n)
{
    uint8_t h[14];
    size_t hl = 2;
    h[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    uint8_t m = mask ? 0x80 : 0;
    if (n < 126) {
        h[1] = (uint8_t)(m | n);
    } else if (n <= 0xffff) {
        h[1] = m | 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        hl = 4;
    } else {
        h[1] = m | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    if (mask) {
        memcpy(h + hl, mask, 4);
        hl += 4;
    }
    sbuf_append(out, h, hl);
    size_t start = out->len;
    sbuf_append(out, p, n);
    if (mask) {
        for (size_t i = 0; i < n; i++)
            out->data[start + i] ^= mask[i & 3];
    }
}

int ws_reader_feed(ws_reader_t *r, const ws_frame_t *f, size_t max, uint8_t *ret_opcode,
                   const uint8_t **ret_p, size_t *ret_n, cri_error_t *err)
{
    if (is_control(f->opcode)) {
        *ret_opcode = f->opcode;
        *ret_p = f->payload;
        *ret_n = f->payload_len;
        return 1;
    }
    if (f->opcode == WS_CONT) {
        if (!r->msg_opcode)
            return cri_error_set(err, EPROTO, "websocket: continuation without a message");
    } else {
        if (r->msg_opcode)
            return cri_error_set(err, EPROTO, "websocket: new message inside a fragmented one");
        if (f->fin) { /* the common case: no copy */
            *ret_opcode = f->opcode;
            *ret_p = f->payload;
            *ret_n = f->payload_len;
            return 1;
        }
        r->msg_opcode = f->opcode;
        r->msg.len = 0;
    }
    if (r->msg.len + f->payload_len > max)
        return cri_error_set(err, EMSGSIZE, "websocket: message larger than %zu", max);
    sbuf_append(&r->msg, f->payload, f->payload_len);
    if (!f->fin)
        return 0;
    *ret_opcode = r->msg_opcode;
    *ret_p = r->msg.data;
    *ret_n = r->msg.len;
    r->msg_opcode = 0;
    return 1;
}

void ws_reader_free(ws_reader_t *r)
{
    sbuf_free(&r->msg);
    r->msg_opcode = 0;
}
