/* A worker pool for handlers that may block.
 *
 * Threads are started on demand up to a maximum and leave after being idle
 * for a while, so an idle daemon holds none. Jobs never wait for a thread
 * while the pool is below its maximum. */
#ifndef CRICKET_SERVER_POOL_H
#define CRICKET_SERVER_POOL_H

#include <stddef.h>

typedef struct pool pool_t;

/* New pool with at most max_threads workers and at most max_queued jobs
 * waiting for one; idle workers exit after idle_ms. Never fails (aborts on
 * OOM). Free with pool_free(). */
pool_t *pool_new(size_t max_threads, size_t max_queued, int idle_ms);

/* Queues fn(arg). Runs it on an idle worker, a new one, or the next worker
 * that frees up. Returns -1 (and queues nothing) when every worker is busy
 * and max_queued jobs already wait: the caller refuses the work. Must not
 * be called after pool_free() started. */
int pool_submit(pool_t *pool, void (*fn)(void *arg), void *arg);

/* Jobs waiting for a worker right now (for logs and SIGUSR1 dumps). */
size_t pool_queued(pool_t *pool);

/* Number of live worker threads (for logs and SIGUSR1 dumps). */
size_t pool_threads(pool_t *pool);

/* Runs every queued job, waits for all workers to exit and frees the pool.
 * NULL is fine. */
void pool_free(pool_t *pool);

#endif
