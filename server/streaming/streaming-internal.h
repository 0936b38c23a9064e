/* Private helpers of server/streaming/: the token store, the SPDY/3.1 and
 * WebSocket codecs, protocol negotiation and the per-connection sessions.
 * The unit tests include this; nothing outside server/streaming/ does. */
#ifndef CRICKET_SERVER_STREAMING_INTERNAL_H
#define CRICKET_SERVER_STREAMING_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zlib.h>

#include "common/error.h"
#include "server/streaming/streaming.h"

/* ---- growable byte buffer ---- */

typedef struct sbuf {
    uint8_t *data;
    size_t len, cap;
} sbuf_t;

void sbuf_append(sbuf_t *b, const void *p, size_t n);
void sbuf_put32(sbuf_t *b, uint32_t v);
/* Drops the first n bytes. */
void sbuf_consume(sbuf_t *b, size_t n);
void sbuf_free(sbuf_t *b);

/* ---- token store (token.c) ---- */

#define STREAMING_TOKEN_TTL_MS 60000
#define STREAMING_MAX_TOKENS 1000

typedef int64_t (*streaming_clock_fn)(void *data); /* monotonic ns */
typedef struct token_store token_store_t;

/* A store whose tokens live ttl_ms and of which at most max exist (the
 * oldest is evicted past that). clock NULL = CLOCK_MONOTONIC. */
token_store_t *token_store_new(int64_t ttl_ms, size_t max, streaming_clock_fn clock,
                               void *clock_data);
void token_store_free(token_store_t *t);
/* Stores r (owned from now on, also on failure) and sets *ret_token
 * (malloc'd, 22 URL-safe characters). Fails only if getrandom fails. */
int token_store_insert(token_store_t *t, streaming_request_t *r, char **ret_token,
                       cri_error_t *err);
/* Removes and returns the request of token (caller frees), NULL when the
 * token is unknown, used or expired. */
streaming_request_t *token_store_consume(token_store_t *t, const char *token);
size_t token_store_count(token_store_t *t);

/* ---- protocol negotiation (negotiate.c) ---- */

typedef enum stream_proto {
    PROTO_NONE = 0,
    PROTO_V1,         /* channel.k8s.io */
    PROTO_V2,         /* v2.channel.k8s.io */
    PROTO_V3,         /* v3.channel.k8s.io */
    PROTO_V4,         /* v4.channel.k8s.io */
    PROTO_V5,         /* v5.channel.k8s.io (WebSocket only) */
    PROTO_PORTFORWARD /* portforward.k8s.io, or the port-forward WebSocket set */
} stream_proto_t;

typedef struct proto_choice {
    const char *name; /* as put in the reply ("" = no subprotocol header) */
    stream_proto_t proto;
    bool base64; /* WebSocket base64.* text framing */
} proto_choice_t;

/* Picks the first of the client's offers (values may hold comma-separated
 * lists; whitespace trimmed) that the server supports for kind over SPDY
 * (websocket false) or WebSocket. For WebSocket an empty offer list means
 * the "" protocol. Returns NULL when nothing matches. */
const proto_choice_t *streaming_negotiate(streaming_kind_t kind, bool websocket,
                                          const char *const *offers, size_t n_offers);
/* The server's list for kind/transport as one comma-separated string
 * (static), for X-Accepted-Stream-Protocol-Versions and error messages. */
const char *streaming_supported(streaming_kind_t kind, bool websocket);

/* metav1.Status JSON text for an exit code (0 = Success, else Failure
 * NonZeroExitCode with an ExitCode cause) or, with msg non-NULL, an
 * InternalError failure. malloc'd. */
char *streaming_status_json(int exit_code, const char *msg);

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

/* ---- upgraded connections (session*.c) ---- */

typedef struct streaming_session streaming_session_t;

typedef struct session_params {
    int sock;
    const uint8_t *extra; /* bytes MHD read past the request head */
    size_t extra_len;
    streaming_request_t *req; /* owned by the session */
    const proto_choice_t *proto;
    bool websocket;
    const streaming_backend_ops_t *ops;
    void *ops_data;
    int64_t idle_timeout_ms;        /* 0 = none */
    unsigned int max_port_forwards; /* >= 1 */
} session_params_t;

/* Runs one upgraded connection to its end on the calling thread: frames in
 * and out, the backend on a thread of its own, until both sides are done
 * or the client goes away. Takes ownership of p->req. Never fails: errors
 * end the connection. */
void streaming_session_run(const session_params_t *p);

/* ---- connection limits (guard.c) ---- */

#define STREAMING_MAX_CONNECTIONS 1024
#define STREAMING_MAX_CONNECTIONS_PER_CLIENT 128
#define STREAMING_MAX_PORT_FORWARDS 64

struct MHD_Connection;
struct MHD_OptionItem;

/* Tracks the connections libmicrohttpd accepted and shuts down each one
 * still not upgraded timeout_ms after it was accepted (slowloris), from a
 * thread of its own that checks every 250 ms. timeout_ms 0: tracks, cuts
 * nothing (no thread). */
typedef struct streaming_guard streaming_guard_t;

streaming_guard_t *streaming_guard_new(int64_t timeout_ms);
/* Stops the thread. Call before MHD_stop_daemon(); free after it. */
void streaming_guard_stop(streaming_guard_t *g);
/* Frees g (and any entry MHD did not report closed). Accepts NULL. */
void streaming_guard_free(streaming_guard_t *g);
/* Fills *opt with the MHD_OPTION_NOTIFY_CONNECTION item that feeds g. */
void streaming_guard_option(streaming_guard_t *g, struct MHD_OptionItem *opt);
/* The connection completed its handshake: no longer cut. */
void streaming_guard_upgraded(streaming_guard_t *g, struct MHD_Connection *conn);
/* Connections tracked now (tests, SIGUSR1-style dumps). */
size_t streaming_guard_count(streaming_guard_t *g);

/* The fake backend of the test hook (fake_backend.c). */
extern const streaming_backend_ops_t streaming_fake_backend;

/* ---- TLS (tls.c) ---- */

struct MHD_OptionItem;
struct MHD_Connection;

/* PEM text of the streaming server's TLS files, read at startup. */
typedef struct streaming_tls {
    char *cert, *key;
    char *client_ca; /* NULL: no client certificates asked for */
} streaming_tls_t;

/* Reads the PEM files (absolute paths; "" or NULL = unset) into *ret, which
 * stays NULL when none is set (plain HTTP), and checks them with GnuTLS.
 * err->status: EINVAL when only one of cert and key is set, a client CA
 * comes without them, a file is not PEM, the key does not match the
 * certificate or GnuTLS refuses a file (its message); ENOTSUP when
 * libmicrohttpd has no TLS; the read errno (ENOENT, EACCES, EFBIG). Free
 * with streaming_tls_free(). */
int streaming_tls_load(const char *cert, const char *key, const char *client_ca,
                       streaming_tls_t **ret, cri_error_t *err);
/* Frees t (wiping the key). Accepts NULL. */
void streaming_tls_free(streaming_tls_t *t);
/* Fills opts (room for n >= 3 items) with the libmicrohttpd options for t
 * (key, cert, and the trust list when a client CA is set); returns how many.
 * The items borrow t's strings. 0 for t NULL. */
size_t streaming_tls_options(const streaming_tls_t *t, struct MHD_OptionItem *opts, size_t n);
/* True when t asks for no client certificate, or the connection's client
 * presented one that verifies against the client CA and may be used for
 * TLS client authentication. */
bool streaming_tls_client_ok(const streaming_tls_t *t, struct MHD_Connection *conn);

#endif
