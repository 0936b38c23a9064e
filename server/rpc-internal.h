/* Private interface between the gRPC core (rpc.c) and the reply helpers
 * (rpc_reply.c). Handlers use rpc.h only. */
#ifndef CRICKET_SERVER_RPC_INTERNAL_H
#define CRICKET_SERVER_RPC_INTERNAL_H

#include <stdint.h>

#include "server/arena.h"
#include "server/rpc.h"

/* The arena of the call ctx serves: freed when the call ends. */
arena_t *rpc_ctx_arena(rpc_ctx_t *ctx);

/* CLOCK_MONOTONIC in nanoseconds, the clock struct rpc_ctx keeps the
 * client's deadline on. */
int64_t rpc_mono_ns(void);

#endif
