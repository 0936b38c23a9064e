/* Private helpers of server/streaming/: the token store, protocol
 * negotiation and the per-connection sessions; the SPDY/3.1 and WebSocket
 * codecs come from the protocol core (proto/proto.h).
 * The unit tests include this; nothing outside server/streaming/ does. */
#ifndef CRICKET_SERVER_STREAMING_INTERNAL_H
#define CRICKET_SERVER_STREAMING_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "server/streaming/proto/proto.h"
#include "server/streaming/streaming.h"

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
    bool tunnel; /* SPDY carried in WebSocket binary messages (client-go's tunneling dialer) */
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
