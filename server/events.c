/* The container event hub (events.h).
 *
 * Locks: hub->lock guards the subscriber list and the counters; each
 * subscriber's queue has its own lock. Publishing takes the hub lock, then
 * each queue's lock in turn, and calls wake with only the hub lock held, so
 * a wake callback may pop (queue lock) but never re-enters the hub lock.
 * events_unsubscribe() takes the hub lock, so after it no wake can run.
 * publish_lock, taken first, holds publishers in line from the snapshot's
 * timestamp to the queueing: the stream's order is the created_at order
 * (kubelet's EventedPLEG ignores an event older than the pod's cached
 * status; two containers removed at once came out of order). */
#include "server/events.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

struct events_blob {
    atomic_int refs;
    size_t len;
    unsigned char data[]; /* len bytes */
};

struct events_sub {
    events_hub_t *hub;
    events_wake_fn wake;
    void *wake_data;
    struct events_sub *prev, *next; /* hub's list, behind hub->lock */

    pthread_mutex_t lock; /* behind it: the ring and the flags */
    events_blob_t **ring;
    size_t head, count;
    bool overrun;
    uint64_t refused;
};

struct events_hub {
    size_t queue_max;
    events_snapshot_fn snapshot;
    void *snapshot_data;

    pthread_mutex_t publish_lock;
    pthread_mutex_t lock;
    events_sub_t *subs;
    size_t n_subs;
    events_stats_t stats;
};

events_hub_t *events_hub_new(size_t queue_max)
{
    events_hub_t *hub = xcalloc(1, sizeof(*hub));
    hub->queue_max = queue_max ? queue_max : EVENTS_QUEUE_DEFAULT;
    pthread_mutex_init(&hub->publish_lock, NULL);
    pthread_mutex_init(&hub->lock, NULL);
    return hub;
}

void events_hub_free(events_hub_t *hub)
{
    if (!hub)
        return;
    pthread_mutex_destroy(&hub->lock);
    pthread_mutex_destroy(&hub->publish_lock);
    free(hub);
}

void events_hub_set_snapshot(events_hub_t *hub, events_snapshot_fn fn, void *data)
{
    hub->snapshot = fn;
    hub->snapshot_data = data;
}

const void *events_blob_data(const events_blob_t *b)
{
    return b->data;
}

size_t events_blob_len(const events_blob_t *b)
{
    return b->len;
}

static events_blob_t *blob_ref(events_blob_t *b)
{
    atomic_fetch_add(&b->refs, 1);
    return b;
}

void events_blob_unref(events_blob_t *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1)
        free(b);
}

/* The event as bytes, or NULL when there is no snapshot function or it
 * declines. Runs with publish_lock only: it reads the stores. */
static events_blob_t *build_blob(events_hub_t *hub, events_type_t type, const char *container_id,
                                 const char *sandbox_id)
{
    void *buf = NULL;
    size_t len = 0;
    if (!hub->snapshot || hub->snapshot(type, container_id, sandbox_id, now_unix_ns(),
                                        hub->snapshot_data, &buf, &len) < 0)
        return NULL;
    events_blob_t *b = xmalloc(sizeof(*b) + len);
    atomic_init(&b->refs, 1);
    b->len = len;
    if (len)
        memcpy(b->data, buf, len);
    free(buf);
    return b;
}

/* Queues b on sub; false when sub is (or now becomes) overrun. */
static bool sub_push(events_sub_t *sub, size_t queue_max, events_blob_t *b)
{
    pthread_mutex_lock(&sub->lock);
    bool ok = !sub->overrun && sub->count < queue_max;
    if (ok) {
        sub->ring[(sub->head + sub->count) % queue_max] = blob_ref(b);
        sub->count++;
    } else {
        sub->overrun = true;
        sub->refused++;
    }
    pthread_mutex_unlock(&sub->lock);
    return ok;
}

void events_publish(events_hub_t *hub, events_type_t type, const char *container_id,
                    const char *sandbox_id)
{
    if (!hub)
        return;
    pthread_mutex_lock(&hub->lock);
    bool anyone = hub->n_subs > 0;
    pthread_mutex_unlock(&hub->lock);
    if (!anyone)
        return;
    pthread_mutex_lock(&hub->publish_lock);
    events_blob_t *b = build_blob(hub, type, container_id, sandbox_id);
    if (!b) {
        pthread_mutex_unlock(&hub->publish_lock);
        return;
    }
    pthread_mutex_lock(&hub->lock);
    if (hub->n_subs)
        hub->stats.published++;
    for (events_sub_t *s = hub->subs; s; s = s->next) {
        bool was_overrun = s->overrun; /* written under hub->lock too */
        if (!sub_push(s, hub->queue_max, b)) {
            hub->stats.dropped++;
            if (was_overrun)
                continue; /* already told */
            hub->stats.overrun_subs++;
        }
        s->wake(s->wake_data);
    }
    pthread_mutex_unlock(&hub->lock);
    pthread_mutex_unlock(&hub->publish_lock);
    events_blob_unref(b);
}

events_sub_t *events_subscribe(events_hub_t *hub, events_wake_fn wake, void *data)
{
    events_sub_t *s = xcalloc(1, sizeof(*s));
    s->hub = hub;
    s->wake = wake;
    s->wake_data = data;
    s->ring = xcalloc(hub->queue_max, sizeof(events_blob_t *));
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_lock(&hub->lock);
    s->next = hub->subs;
    if (hub->subs)
        hub->subs->prev = s;
    hub->subs = s;
    hub->n_subs++;
    pthread_mutex_unlock(&hub->lock);
    return s;
}

void events_unsubscribe(events_sub_t *s)
{
    if (!s)
        return;
    events_hub_t *hub = s->hub;
    pthread_mutex_lock(&hub->lock);
    if (s->prev)
        s->prev->next = s->next;
    else
        hub->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    hub->n_subs--;
    pthread_mutex_unlock(&hub->lock);
    for (size_t i = 0; i < s->count; i++)
        events_blob_unref(s->ring[(s->head + i) % hub->queue_max]);
    pthread_mutex_destroy(&s->lock);
    free(s->ring);
    free(s);
}

int events_pop(events_sub_t *s, events_blob_t **ret, cri_error_t *err)
{
    size_t max = s->hub->queue_max;
    pthread_mutex_lock(&s->lock);
    if (s->count) {
        *ret = s->ring[s->head];
        s->ring[s->head] = NULL;
        s->head = (s->head + 1) % max;
        s->count--;
        pthread_mutex_unlock(&s->lock);
        return 1;
    }
    bool overrun = s->overrun;
    uint64_t refused = s->refused;
    pthread_mutex_unlock(&s->lock);
    if (!overrun)
        return 0;
    return cri_error_set(err, ENOBUFS,
                         "subscriber fell behind: its queue of %zu events was full and %llu "
                         "event(s) were dropped; subscribe again and relist",
                         max, (unsigned long long)refused);
}

void events_hub_stats(events_hub_t *hub, events_stats_t *ret)
{
    pthread_mutex_lock(&hub->lock);
    *ret = hub->stats;
    ret->subscribers = hub->n_subs;
    pthread_mutex_unlock(&hub->lock);
}
