/* The container event hub behind GetContainerEvents (what kubelet's
 * EventedPLEG reads).
 *
 * The container and sandbox modules publish CREATED, STARTED, STOPPED and
 * DELETED as their objects change (a pod's own events carry the pod id as
 * container id, as containerd does). Each published event is turned once
 * into the message subscribers get, by a snapshot function registered at
 * startup (the pod's status and its containers' statuses at that moment,
 * built from memory); the hub itself knows no CRI message and no gRPC type:
 * it moves opaque byte blobs.
 *
 * Every subscriber has its own queue of at most queue_max events. Publishing
 * never waits for a subscriber: a subscriber whose queue is full is marked
 * overrun, gets what was queued and then ends (events_pop() says so), and
 * the drop is counted. With no subscriber, publishing costs one lock. */
#ifndef CRICKET_SERVER_EVENTS_H
#define CRICKET_SERVER_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* CRI ContainerEventType numbers. */
typedef enum events_type {
    EVENTS_CONTAINER_CREATED = 0,
    EVENTS_CONTAINER_STARTED = 1,
    EVENTS_CONTAINER_STOPPED = 2,
    EVENTS_CONTAINER_DELETED = 3,
} events_type_t;

/* The default bound of a subscriber's queue (config events.queue_length). */
#define EVENTS_QUEUE_DEFAULT 1024

typedef struct events_hub events_hub_t;
typedef struct events_sub events_sub_t;

/* One event as subscribers get it: immutable bytes shared by every queue
 * holding it (refcounted). */
typedef struct events_blob events_blob_t;

/* Builds the message of an event (malloc'd bytes in *ret_buf, *ret_len):
 * called once per event, on the publishing thread, only when somebody
 * subscribes. Must not block (memory only). Returns -1 to drop the event. */
typedef int (*events_snapshot_fn)(events_type_t type, const char *container_id,
                                  const char *sandbox_id, int64_t created_at, void *data,
                                  void **ret_buf, size_t *ret_len);

/* Called (with the hub's lock held) when sub has something new to pop: an
 * event or its end. Must not block and must not call back into the hub
 * except events_pop(). */
typedef void (*events_wake_fn)(void *data);

/* A hub whose subscribers hold at most queue_max events (0: the default). */
events_hub_t *events_hub_new(size_t queue_max);
/* Frees the hub; every subscriber must be gone. NULL is fine. */
void events_hub_free(events_hub_t *hub);
/* Registers the snapshot function (before serving; not synchronised). */
void events_hub_set_snapshot(events_hub_t *hub, events_snapshot_fn fn, void *data);

/* Publishes one event to every subscriber; never blocks on one. hub NULL
 * (unit tests, startup) does nothing. */
void events_publish(events_hub_t *hub, events_type_t type, const char *container_id,
                    const char *sandbox_id);

/* Adds a subscriber; wake(data) runs whenever it has something to pop.
 * Free with events_unsubscribe(). */
events_sub_t *events_subscribe(events_hub_t *hub, events_wake_fn wake, void *data);
/* Removes and frees sub: once it returns, wake is never called again. */
void events_unsubscribe(events_sub_t *sub);

/* The subscriber's next event: 1 with *ret (the caller unrefs it), 0 when
 * nothing waits, -1 when sub was overrun and its queue is drained: err
 * (ENOBUFS) says how far behind it fell. */
int events_pop(events_sub_t *sub, events_blob_t **ret, cri_error_t *err);

const void *events_blob_data(const events_blob_t *b);
size_t events_blob_len(const events_blob_t *b);
void events_blob_unref(events_blob_t *b);

/* Counters for the metrics endpoint. */
typedef struct events_stats {
    uint64_t subscribers;  /* now */
    uint64_t published;    /* events published while somebody listened */
    uint64_t dropped;      /* events a full queue refused */
    uint64_t overrun_subs; /* subscribers ended for lagging */
} events_stats_t;
void events_hub_stats(events_hub_t *hub, events_stats_t *ret);

#endif
