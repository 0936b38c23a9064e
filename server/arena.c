#include "arena.h"

#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define ARENA_CHUNK 4096
#define ARENA_ALIGN 16
/* After freeing an arena this big, hand free heap pages back to the kernel:
 * glibc keeps freed memory in each thread's malloc arena (up to 8 per core),
 * so a few refused 16 MiB requests would otherwise leave the daemon's RSS
 * tens of MiB higher for good. Rare (kubelet's requests are a few KiB) and
 * cheap next to unpacking that much. */
#define ARENA_TRIM_AT (1u << 20)

struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

struct arena {
    struct chunk *head;
    size_t total;
};

arena_t *arena_new(void)
{
    return xcalloc(1, sizeof(arena_t));
}

static struct chunk *chunk_new(size_t cap)
{
    struct chunk *c = xmalloc(sizeof(*c) + cap);
    c->next = NULL;
    c->used = 0;
    c->cap = cap;
    return c;
}

void *arena_alloc(arena_t *arena, size_t size)
{
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (size == 0)
        size = ARENA_ALIGN;
    struct chunk *c = arena->head;
    if (!c || c->cap - c->used < size) {
        if (size > ARENA_CHUNK / 4) {
            /* a big block gets a chunk of its own, kept behind the head */
            struct chunk *big = chunk_new(size);
            big->used = size;
            if (c) {
                big->next = c->next;
                c->next = big;
            } else {
                arena->head = big;
            }
            arena->total += size;
            memset(big->data, 0, size);
            return big->data;
        }
        c = chunk_new(ARENA_CHUNK);
        c->next = arena->head;
        arena->head = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    arena->total += size;
    memset(p, 0, size);
    return p;
}

size_t arena_used(const arena_t *arena)
{
    return arena->total;
}

void arena_free(arena_t *arena)
{
    if (!arena)
        return;
    struct chunk *c = arena->head;
    while (c) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
    bool trim = arena->total >= ARENA_TRIM_AT;
    free(arena);
    if (trim)
        malloc_trim(0);
}

static void *pb_alloc(void *data, size_t size)
{
    return arena_alloc(data, size);
}

static void pb_free(void *data, void *p)
{
    (void)data;
    (void)p;
}

void arena_protobuf_allocator(arena_t *arena, ProtobufCAllocator *ret)
{
    ret->alloc = pb_alloc;
    ret->free = pb_free;
    ret->allocator_data = arena;
}
