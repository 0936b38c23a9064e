#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"

struct job {
    struct job *next;
    void (*fn)(void *arg);
    void *arg;
};

struct pool {
    pthread_mutex_t lock;
    pthread_cond_t work;    /* a job was queued, or the pool is stopping */
    pthread_cond_t drained; /* the last worker left */
    struct job *head, *tail;
    size_t max_threads, threads, idle;
    size_t max_queued, queued; /* jobs no worker has taken yet */
    size_t busy;               /* workers running a job */
    int idle_ms;
    bool stopping;
};

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *worker_main(void *data)
{
    pool_t *pool = data;

    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->head && !pool->stopping) {
            struct timespec ts;
            deadline_in(&ts, pool->idle_ms);
            pool->idle++;
            int r = pthread_cond_timedwait(&pool->work, &pool->lock, &ts);
            pool->idle--;
            if (r == ETIMEDOUT && !pool->head)
                goto out;
        }
        struct job *job = pool->head;
        if (!job)
            break; /* stopping and drained */
        pool->head = job->next;
        if (!pool->head)
            pool->tail = NULL;
        pool->queued--;
        pool->busy++;
        pthread_mutex_unlock(&pool->lock);
        job->fn(job->arg);
        free(job);
        pthread_mutex_lock(&pool->lock);
        pool->busy--;
    }
out:
    pool->threads--;
    if (pool->threads == 0)
        pthread_cond_broadcast(&pool->drained);
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

pool_t *pool_new(size_t max_threads, size_t max_queued, int idle_ms)
{
    pool_t *pool = xcalloc(1, sizeof(*pool));
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work, &attr);
    pthread_cond_init(&pool->drained, NULL);
    pthread_condattr_destroy(&attr);
    pool->max_threads = max_threads ? max_threads : 1;
    pool->max_queued = max_queued;
    pool->idle_ms = idle_ms > 0 ? idle_ms : 1;
    return pool;
}

/* Called with the lock held. A failed thread start is not fatal while
 * another worker exists to run the job later. */
static void spawn_worker(pool_t *pool)
{
    pthread_t tid;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int r = pthread_create(&tid, &attr, worker_main, pool);
    pthread_attr_destroy(&attr);
    if (r == 0) {
        pool->threads++;
        return;
    }
    if (pool->threads == 0) {
        log_error("start worker thread: error %d, aborting", r);
        abort();
    }
    log_warn("start worker thread: error %d, queueing the job, ignoring", r);
}

int pool_submit(pool_t *pool, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&pool->lock);
    /* accepted and unfinished jobs: one per worker plus max_queued waiting */
    if (pool->queued + pool->busy >= pool->max_threads + pool->max_queued) {
        pthread_mutex_unlock(&pool->lock);
        return -1;
    }
    struct job *job = xmalloc(sizeof(*job));
    job->next = NULL;
    job->fn = fn;
    job->arg = arg;
    pool->queued++;
    if (pool->tail)
        pool->tail->next = job;
    else
        pool->head = job;
    pool->tail = job;
    if (pool->idle > 0)
        pthread_cond_signal(&pool->work);
    else if (pool->threads < pool->max_threads)
        spawn_worker(pool);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

size_t pool_queued(pool_t *pool)
{
    pthread_mutex_lock(&pool->lock);
    size_t n = pool->queued;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

size_t pool_threads(pool_t *pool)
{
    pthread_mutex_lock(&pool->lock);
    size_t n = pool->threads;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

void pool_free(pool_t *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    if (pool->head && pool->threads == 0)
        spawn_worker(pool);
    pthread_cond_broadcast(&pool->work);
    while (pool->threads > 0)
        pthread_cond_wait(&pool->drained, &pool->lock);
    pthread_mutex_unlock(&pool->lock);

    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->work);
    pthread_cond_destroy(&pool->drained);
    free(pool);
}
