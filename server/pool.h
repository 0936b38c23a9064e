/* A worker pool for handlers that may block.
 *
 * Threads are started on demand up to a maximum and leave after being idle
 * for a while, so an idle daemon holds none. Jobs never wait for a thread
 * while the pool is below its maximum. */
#ifndef CRICKET_SERVER_POOL_H
#define CRICKET_SERVER_POOL_H

#include <stddef.h>

typedef struct pool pool_t;

/* New pool with at most max_threads workers; idle workers exit after
 * idle_ms. Never fails (aborts on OOM). Free with pool_free(). */
pool_t *pool_new(size_t max_threads, int idle_ms);

/* Queues fn(arg). Runs it on an idle worker, a new one, or the next worker
 * that frees up. Must not be called after pool_free() started. */
void pool_submit(pool_t *pool, void (*fn)(void *arg), void *arg);

/* Number of live worker threads (for logs and SIGUSR1 dumps). */
size_t pool_threads(pool_t *pool);

/* Runs every queued job, waits for all workers to exit and frees the pool.
 * NULL is fine. */
void pool_free(pool_t *pool);

#endif
