/* The handler side of the RPC layer: the per-call arena allocators handlers
 * build replies with, the map and stream helpers for protobuf-c messages,
 * and the one errno -> gRPC code mapping. No gRPC here (rpc.c is the only
 * file that includes <grpc/grpc.h>); the arena comes from the call through
 * rpc_ctx_arena(). */
#include "rpc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "server/arena.h"
#include "server/rpc-ctx.h"
#include "server/rpc-internal.h"

int64_t rpc_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

arena_t *rpc_ctx_arena(rpc_ctx_t *ctx)
{
    return ctx->arena;
}

rpc_ctx_t *rpc_ctx_detached_new(daemon_t *d)
{
    rpc_ctx_t *ctx = xcalloc(1, sizeof(*ctx));
    ctx->daemon = d;
    ctx->arena = arena_new();
    ctx->deadline_ns = -1;
    return ctx;
}

void rpc_ctx_detached_free(rpc_ctx_t *ctx)
{
    if (!ctx)
        return;
    arena_free(ctx->arena);
    free(ctx);
}

void *rpc_pack_malloc(const ProtobufCMessage *msg, size_t *ret_len)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    void *buf = xmalloc(len ? len : 1);
    protobuf_c_message_pack(msg, buf);
    *ret_len = len;
    return buf;
}

daemon_t *rpc_daemon(rpc_ctx_t *ctx)
{
    return ctx->daemon;
}

const rpc_method_t *rpc_method(rpc_ctx_t *ctx)
{
    return ctx->method;
}

int64_t rpc_deadline_ms(rpc_ctx_t *ctx)
{
    if (ctx->deadline_ns < 0)
        return -1;
    int64_t ms = (ctx->deadline_ns - rpc_mono_ns()) / 1000000;
    return ms < 0 ? 0 : ms;
}

int rpc_code_from_errno(int status)
{
    switch (status) {
    case 0:
        return RPC_OK;
    case ENOENT:
        return RPC_NOT_FOUND;
    case EEXIST:
        return RPC_ALREADY_EXISTS;
    case EINVAL:
        return RPC_INVALID_ARGUMENT;
    case ETIMEDOUT:
        return RPC_DEADLINE_EXCEEDED;
    case ENOSYS:
        return RPC_UNIMPLEMENTED;
    case ECANCELED:
        return RPC_CANCELLED;
    case ENOBUFS:
    case ENOSPC: /* disk full: kubelet backs off and retries */
    case EDQUOT:
        return RPC_RESOURCE_EXHAUSTED;
    case EOWNERDEAD: /* a container whose monitor died (server/container/monitor.c) */
        return RPC_FAILED_PRECONDITION;
    default:
        return RPC_UNKNOWN;
    }
}

void *rpc_alloc(rpc_ctx_t *ctx, size_t size)
{
    return arena_alloc(rpc_ctx_arena(ctx), size);
}

char *rpc_strdup(rpc_ctx_t *ctx, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *p = arena_alloc(rpc_ctx_arena(ctx), n);
    memcpy(p, s, n);
    return p;
}

char *rpc_printf(rpc_ctx_t *ctx, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = arena_alloc(rpc_ctx_arena(ctx), (size_t)(n < 0 ? 0 : n) + 1);
    if (n > 0)
        (void)vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

void **rpc_map_entries(rpc_ctx_t *ctx, const ProtobufCMessageDescriptor *entry, char *const *pairs,
                       size_t *ret_n)
{
    size_t n = 0;
    while (pairs && pairs[2 * n])
        n++;
    /* map entries have two fields: key (1) then value (2), both strings */
    const ProtobufCFieldDescriptor *key = &entry->fields[0], *value = &entry->fields[1];
    void **v = rpc_alloc_array(ctx, n + 1, void *);
    for (size_t i = 0; i < n; i++) {
        ProtobufCMessage *m = rpc_alloc(ctx, entry->sizeof_message);
        entry->message_init(m);
        *(char **)((char *)m + key->offset) = rpc_strdup(ctx, pairs[2 * i]);
        *(char **)((char *)m + value->offset) = rpc_strdup(ctx, pairs[2 * i + 1]);
        v[i] = m;
    }
    *ret_n = n;
    return v;
}

void rpc_stream_slices(rpc_ctx_t *ctx, const ProtobufCMessageDescriptor *desc, void **items,
                       size_t n, ProtobufCMessage ***ret_msgs, size_t *ret_n)
{
    const ProtobufCFieldDescriptor *f = &desc->fields[0];
    size_t chunks = (n + RPC_STREAM_CHUNK - 1) / RPC_STREAM_CHUNK;
    ProtobufCMessage **msgs = rpc_alloc_array(ctx, chunks + 1, ProtobufCMessage *);
    for (size_t i = 0; i < chunks; i++) {
        ProtobufCMessage *m = rpc_alloc(ctx, desc->sizeof_message);
        desc->message_init(m);
        size_t off = i * RPC_STREAM_CHUNK;
        *(size_t *)((char *)m + f->quantifier_offset) =
            n - off < RPC_STREAM_CHUNK ? n - off : RPC_STREAM_CHUNK;
        *(void ***)((char *)m + f->offset) = items + off;
        msgs[i] = m;
    }
    *ret_msgs = msgs;
    *ret_n = chunks;
}
