/* A per-call context without a gRPC server, for unit tests that call
 * handlers directly (see server/rpc-ctx.h). Not linked into cricketd. */
#include "server/rpc-ctx.h"

#include <stdlib.h>

#include "common/util.h"

rpc_ctx_t *rpc_test_ctx_new(daemon_t *d)
{
    rpc_ctx_t *ctx = xcalloc(1, sizeof(*ctx));
    ctx->daemon = d;
    ctx->arena = arena_new();
    ctx->deadline_ns = -1;
    return ctx;
}

void rpc_test_ctx_free(rpc_ctx_t *ctx)
{
    if (!ctx)
        return;
    arena_free(ctx->arena);
    free(ctx);
}
