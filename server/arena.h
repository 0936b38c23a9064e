/* A bump allocator for everything one RPC call touches: the unpacked
 * request, the response and its strings. Freed in one go when the call ends. */
#ifndef CRICKET_SERVER_ARENA_H
#define CRICKET_SERVER_ARENA_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

typedef struct arena arena_t;

/* Empty arena; never fails (aborts on OOM). Free with arena_free(). */
arena_t *arena_new(void);
/* Zeroed, 16-byte aligned memory that lives as long as the arena. */
void *arena_alloc(arena_t *arena, size_t size);
/* Bytes handed out so far (for tests and logs). */
size_t arena_used(const arena_t *arena);
/* Frees every allocation and the arena. NULL is fine. */
void arena_free(arena_t *arena);
/* A protobuf-c allocator that draws from the arena (its free is a no-op). */
void arena_protobuf_allocator(arena_t *arena, ProtobufCAllocator *ret);

#endif
