/* The per-call context handlers get (private to server/rpc.c and to the
 * unit-test constructor in server/rpc_test_ctx.c). No gRPC type in here, so
 * a handler can be called without a server. */
#ifndef CRICKET_SERVER_RPC_CTX_H
#define CRICKET_SERVER_RPC_CTX_H

#include <stdint.h>

#include "server/arena.h"
#include "server/rpc.h"

struct rpc_ctx {
    daemon_t *daemon;
    const rpc_method_t *method; /* NULL in unit tests */
    arena_t *arena;
    int64_t deadline_ns; /* the client's, on CLOCK_MONOTONIC; -1 = none */
};

/* server/rpc_test_ctx.c, linked into unit tests only: a context for calling
 * a handler directly, on daemon d, with a fresh arena and no deadline. Free
 * with rpc_test_ctx_free(), which frees the arena and with it every reply
 * the handlers built. */
rpc_ctx_t *rpc_test_ctx_new(daemon_t *d);
void rpc_test_ctx_free(rpc_ctx_t *ctx);

#endif
