/* The streaming protocol core (server/streaming/proto/): the wire formats
 * kubectl and the kubelet speak to the streaming server, as pure codecs on
 * byte buffers: SPDY/3.1 frames and zlib header blocks, RFC 6455 WebSocket
 * frames and message reassembly. No sockets, threads or CRI messages (no
 * protobuf-c type): the sessions (server/streaming/session*.c) drive them. */
#ifndef CRICKET_SERVER_STREAMING_PROTO_H
#define CRICKET_SERVER_STREAMING_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zlib.h>

#include "common/error.h"

/* ---- growable byte buffer (sbuf.c) ---- */

typedef struct sbuf {
    uint8_t *data;
    size_t len, cap;
} sbuf_t;

void sbuf_append(sbuf_t *b, const void *p, size_t n);
void sbuf_put32(sbuf_t *b, uint32_t v);
/* Drops the first n bytes. */
void sbuf_consume(sbuf_t *b, size_t n);
void sbuf_free(sbuf_t *b);

/* ---- SPDY/3.1 (spdy.c) ---- */

enum spdy_type {
    SPDY_DATA = 0,
    SPDY_SYN_STREAM = 1,
    SPDY_SYN_REPLY = 2,
    SPDY_RST_STREAM = 3,
    SPDY_SETTINGS = 4,
    SPDY_PING = 6,
    SPDY_GOAWAY = 7,
    SPDY_HEADERS = 8,
    SPDY_WINDOW_UPDATE = 9,
};
#define SPDY_FLAG_FIN 0x01
#define SPDY_FLAG_UNIDIRECTIONAL 0x02
#define SPDY_MAX_FRAME (8u << 20) /* bounds the input buffer; clients send 32 KiB */
#define SPDY_RST_PROTOCOL_ERROR 1
#define SPDY_RST_INVALID_STREAM 2
#define SPDY_RST_REFUSED_STREAM 3
#define SPDY_RST_CANCEL 5

/* The SPDY/3 header compression dictionary (built once, 1423 bytes). */
const uint8_t *spdy_dictionary(size_t *ret_len);

typedef struct spdy_header {
    char *name, *value;
} spdy_header_t;

typedef struct spdy_headers {
    spdy_header_t *v;
    size_t n;
} spdy_headers_t;

void spdy_headers_free(spdy_headers_t *h);
/* Value of name (lower case), NULL when absent. */
const char *spdy_headers_get(const spdy_headers_t *h, const char *name);

/* One zlib inflate and one deflate context per connection. */
typedef struct spdy_zctx {
    z_stream in, out;
    bool in_ok, out_ok;
} spdy_zctx_t;

int spdy_zctx_init(spdy_zctx_t *z, cri_error_t *err);
void spdy_zctx_free(spdy_zctx_t *z);
/* Compresses a header block (count, then length-prefixed names/values)
 * with Z_SYNC_FLUSH and appends it to out. */
int spdy_headers_encode(spdy_zctx_t *z, const spdy_header_t *h, size_t n, sbuf_t *out,
                        cri_error_t *err);
/* Inflates and parses a header block. EPROTO on a malformed block. */
int spdy_headers_decode(spdy_zctx_t *z, const uint8_t *p, size_t n, spdy_headers_t *ret,
                        cri_error_t *err);

typedef struct spdy_frame {
    bool control;
    uint16_t type; /* control frames */
    uint8_t flags;
    uint32_t stream_id;     /* data, SYN_*, RST, HEADERS, WINDOW_UPDATE */
    uint32_t value;         /* RST/GOAWAY status, PING id, WINDOW_UPDATE delta, GOAWAY last id */
    const uint8_t *payload; /* data bytes or the compressed header block */
    size_t payload_len;
} spdy_frame_t;

/* Parses one frame at the start of p. Returns the frame's total length, 0
 * when more bytes are needed, -1 (EPROTO) on a malformed frame. Payload
 * pointers point into p. */
long spdy_frame_parse(const uint8_t *p, size_t n, spdy_frame_t *ret, cri_error_t *err);

/* Frame writers: append one frame to out. */
void spdy_write_data(sbuf_t *out, uint32_t stream_id, uint8_t flags, const void *p, size_t n);
int spdy_write_syn(sbuf_t *out, spdy_zctx_t *z, uint16_t type, uint32_t stream_id, uint8_t flags,
                   const spdy_header_t *h, size_t n, cri_error_t *err);
void spdy_write_rst(sbuf_t *out, uint32_t stream_id, uint32_t status);
void spdy_write_ping(sbuf_t *out, uint32_t id);
void spdy_write_goaway(sbuf_t *out, uint32_t last_stream_id, uint32_t status);

/* ---- WebSocket, RFC 6455 (ws.c) ---- */

enum ws_opcode {
    WS_CONT = 0x0,
    WS_TEXT = 0x1,
    WS_BINARY = 0x2,
    WS_CLOSE = 0x8,
    WS_PING = 0x9,
    WS_PONG = 0xa,
};
#define WS_MAX_MESSAGE (1u << 20)

/* Standard base64 of n bytes into out (room for 4*ceil(n/3)+1); returns
 * the length written (NUL-terminated). */
size_t ws_base64_encode(char *out, const void *p, size_t n);
/* Decodes standard base64 (padding required) into out (room for 3*n/4);
 * returns the decoded length, -1 when invalid. */
long ws_base64_decode(uint8_t *out, const char *p, size_t n);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (malloc'd). */
char *ws_accept_key(const char *key);

typedef struct ws_frame {
    bool fin, masked;
    uint8_t opcode;
    uint8_t *payload; /* unmasked in place */
    size_t payload_len;
} ws_frame_t;

/* Parses (and unmasks, in place) one frame at the start of p. Returns its
 * total length, 0 when more bytes are needed, -1 with err (EPROTO, or
 * EMSGSIZE past max) when malformed. require_mask: server side. */
long ws_frame_parse(uint8_t *p, size_t n, bool require_mask, size_t max, ws_frame_t *ret,
                    cri_error_t *err);

/* Appends one frame; mask non-NULL masks it (client side). */
void ws_write_frame(sbuf_t *out, uint8_t opcode, bool fin, const uint8_t *mask, const void *p,
                    size_t n);

/* Reassembles fragmented messages; control frames pass straight through. */
typedef struct ws_reader {
    sbuf_t msg;
    uint8_t msg_opcode; /* 0 = no message under way */
} ws_reader_t;

/* Feeds one parsed frame. Returns 1 with *ret_opcode, *ret_p and *ret_n set when
 * a whole message or control frame is ready (pointers valid until the next
 * call), 0 when waiting for more fragments, -1 (EPROTO/EMSGSIZE) on a bad
 * sequence. */
int ws_reader_feed(ws_reader_t *r, const ws_frame_t *f, size_t max, uint8_t *ret_opcode,
                   const uint8_t **ret_p, size_t *ret_n, cri_error_t *err);
void ws_reader_free(ws_reader_t *r);

#endif
