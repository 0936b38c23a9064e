/* The handler side of cricketd's gRPC plumbing.
 *
 * Handlers see protobuf-c structs only; server/rpc.c is the one file that
 * includes <grpc/grpc.h>. Every request is unpacked into a per-call arena,
 * and every response is built from that arena (rpc_alloc and friends), so a
 * handler never frees what it hands back: the arena goes when the call ends. */
#ifndef CRICKET_SERVER_RPC_H
#define CRICKET_SERVER_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "common/error.h"

typedef struct daemon daemon_t;
typedef struct rpc_ctx rpc_ctx_t;

/* A handler validates req, does the work and sets *ret_resp to a response
 * allocated from the call's arena. On failure it returns -1 with err set;
 * err->status picks the gRPC code (rpc_code_from_errno). */
typedef int (*rpc_handler_fn)(rpc_ctx_t *ctx, const ProtobufCMessage *req,
                              ProtobufCMessage **ret_resp, cri_error_t *err);

/* A server-streaming handler: *ret_msgs gets *ret_n responses (arena
 * memory, like everything else), sent in order, then an OK status. Zero
 * responses is a valid, empty stream. */
typedef int (*rpc_stream_fn)(rpc_ctx_t *ctx, const ProtobufCMessage *req,
                             ProtobufCMessage ***ret_msgs, size_t *ret_n, cri_error_t *err);

/* A long-lived server stream (a "feed": GetContainerEvents). The handler
 * subscribes somewhere and returns at once, filling *ret_source; the gRPC
 * core then sends what the source yields, one message in flight at a time,
 * until the source ends, the client goes away or the server stops (status
 * UNAVAILABLE, so the client subscribes again). No worker is held while the
 * feed lives. */
typedef struct rpc_feed rpc_feed_t;

typedef struct rpc_feed_source {
    /* The next message: 1 with *ret_buf (malloc'd packed bytes, taken) and
     * *ret_len; 0 when none waits (the source calls rpc_feed_wake() when
     * one does); -1 when the feed is over, err giving the status to end
     * with. Called with the feed's lock held: must not block. */
    int (*next)(void *data, void **ret_buf, size_t *ret_len, cri_error_t *err);
    /* The call is over: stop waking the feed and free data. Called once,
     * after the last next(); after it returns, the feed is freed. */
    void (*release)(void *data);
    void *data;
} rpc_feed_source_t;

/* A feed handler: validates req and subscribes (waking `feed` later). On
 * failure returns -1 with err set and nothing subscribed. */
typedef int (*rpc_feed_fn)(rpc_ctx_t *ctx, const ProtobufCMessage *req, rpc_feed_t *feed,
                           rpc_feed_source_t *ret_source, cri_error_t *err);

/* Tells the gRPC core that feed's source has something for next(): a
 * message or its end. Any thread; cheap: it queues the feed for the
 * core's kicker thread, which starts the send. */
void rpc_feed_wake(rpc_feed_t *feed);

/* Where a method runs. FAST handlers answer inline on a poller thread and
 * must never block (no runc, CNI, network, sleeping locks); SLOW ones run on
 * the worker pool. */
typedef enum rpc_class {
    RPC_FAST = 0,
    RPC_SLOW = 1,
} rpc_class_t;

/* One row of the method table in rpc_methods.c. handler NULL = not built yet: the
 * method answers UNIMPLEMENTED naming itself. */
typedef struct rpc_method {
    const char *path; /* "/runtime.v1.RuntimeService/Version" */
    const char *name; /* "Version", for logs */
    const ProtobufCMessageDescriptor *request;
    rpc_handler_fn handler;
    rpc_class_t klass;
    bool server_streaming; /* protobuf-c does not mark these */
    rpc_stream_fn stream;  /* server_streaming methods: NULL = not built yet */
    rpc_feed_fn feed;      /* long-lived server_streaming methods (instead of stream) */
} rpc_method_t;

/* The method table: every RuntimeService and ImageService method. */
const rpc_method_t *rpc_methods(size_t *ret_count);

/* Zeroed memory from the call's arena; lives until the call ends. */
void *rpc_alloc(rpc_ctx_t *ctx, size_t size);
/* Arena copy of s (NULL stays NULL). */
char *rpc_strdup(rpc_ctx_t *ctx, const char *s);
/* Arena-allocated formatted string. */
char *rpc_printf(rpc_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Arena array of n pointers, zeroed. */
#define rpc_alloc_array(ctx, n, type) ((type *)rpc_alloc((ctx), sizeof(type) * (n)))

/* The entries of a map<string,string> field, built in the arena as
 * messages of type `entry` (any such map's entry descriptor) from
 * "key, value, key, value, ..., NULL" pairs. Cast the result to the
 * field's entry pointer type. */
void **rpc_map_entries(rpc_ctx_t *ctx, const ProtobufCMessageDescriptor *entry, char *const *pairs,
                       size_t *ret_n);

/* Items per response when a list goes out as a stream. */
#define RPC_STREAM_CHUNK 256

/* Splits items[0..n) over responses of type desc, whose first field must be
 * the repeated one, RPC_STREAM_CHUNK items each (no copy: the responses
 * point into items). For the Stream* twins of the List* methods. */
void rpc_stream_slices(rpc_ctx_t *ctx, const ProtobufCMessageDescriptor *desc, void **items,
                       size_t n, ProtobufCMessage ***ret_msgs, size_t *ret_n);

/* A context outside any call, for building messages off a call (the
 * event snapshots of GetContainerEvents): an arena and daemon d, no
 * deadline. Free with rpc_ctx_detached_free(), which frees the arena. */
rpc_ctx_t *rpc_ctx_detached_new(daemon_t *d);
void rpc_ctx_detached_free(rpc_ctx_t *ctx);

/* Packs msg into a malloc'd buffer (*ret_len bytes). */
void *rpc_pack_malloc(const ProtobufCMessage *msg, size_t *ret_len);

/* The daemon state a handler works on. */
daemon_t *rpc_daemon(rpc_ctx_t *ctx);
/* The method being served. */
const rpc_method_t *rpc_method(rpc_ctx_t *ctx);
/* Milliseconds left until the client's deadline (0 when it has passed), or
 * -1 when the client set none. */
int64_t rpc_deadline_ms(rpc_ctx_t *ctx);

/* gRPC status codes, numbered as on the wire (grpc/status.h). */
enum rpc_code {
    RPC_OK = 0,
    RPC_CANCELLED = 1,
    RPC_UNKNOWN = 2,
    RPC_INVALID_ARGUMENT = 3,
    RPC_DEADLINE_EXCEEDED = 4,
    RPC_NOT_FOUND = 5,
    RPC_ALREADY_EXISTS = 6,
    RPC_PERMISSION_DENIED = 7,
    RPC_RESOURCE_EXHAUSTED = 8,
    RPC_FAILED_PRECONDITION = 9,
    RPC_UNIMPLEMENTED = 12,
    RPC_INTERNAL = 13,
    RPC_UNAVAILABLE = 14,
};

/* The single errno -> gRPC code mapping (ENOENT->NOT_FOUND, EEXIST->
 * ALREADY_EXISTS, EINVAL->INVALID_ARGUMENT, ETIMEDOUT->DEADLINE_EXCEEDED,
 * ENOSYS->UNIMPLEMENTED, ECANCELED->CANCELLED, ENOBUFS->RESOURCE_EXHAUSTED,
 * else UNKNOWN). */
int rpc_code_from_errno(int status);

/* A running gRPC server. */
typedef struct rpc_server rpc_server_t;

/* Binds the CRI socket (`unix:///path` or `unix:/path`; mode 0660), registers
 * every method and starts the pollers. EADDRINUSE-style errors when binding
 * fails. Caller frees with rpc_server_stop(). */
int rpc_server_start(daemon_t *daemon, const char *listen, rpc_server_t **ret, cri_error_t *err);

/* Graceful stop: refuse new calls, let in-flight calls finish for up to
 * grace_ms, cancel the rest, join every thread and free the server. */
void rpc_server_stop(rpc_server_t *server, int grace_ms);

#endif
