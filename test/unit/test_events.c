/* server/events.c: the event hub's per-subscriber queue bound, fan-out,
 * wakes and counters, with a fake snapshot function. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <time.h>

#include "common/util.h"
#include "server/events.h"

static int snapshots; /* calls of fake_snapshot */

/* The event as "<type>:<container_id>:<sandbox_id>". */
static int fake_snapshot(events_type_t type, const char *container_id, const char *sandbox_id,
                         int64_t created_at, void *data, void **ret_buf, size_t *ret_len)
{
    snapshots++;
    assert_true(created_at > 0);
    if (strcmp(container_id, "declined") == 0)
        return -1;
    char *s = xasprintf("%d:%s:%s", (int)type, container_id, sandbox_id);
    *ret_len = strlen(s);
    *ret_buf = s;
    return 0;
}

static void count_wake(void *data)
{
    (*(int *)data)++;
}

/* Pops one event and checks its text. */
static void expect_pop(events_sub_t *sub, const char *want)
{
    events_blob_t *b = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(events_pop(sub, &b, &err), 1);
    assert_int_equal(events_blob_len(b), strlen(want));
    assert_memory_equal(events_blob_data(b), want, strlen(want));
    events_blob_unref(b);
}

static void test_no_subscriber_builds_nothing(void **state)
{
    events_hub_t *hub = events_hub_new(4);
    events_hub_set_snapshot(hub, fake_snapshot, NULL);
    snapshots = 0;
    events_publish(hub, EVENTS_CONTAINER_CREATED, "c1", "p1");
    assert_int_equal(snapshots, 0);
    events_publish(NULL, EVENTS_CONTAINER_CREATED, "c1", "p1"); /* no hub: a no-op */
    events_stats_t st;
    events_hub_stats(hub, &st);
    assert_int_equal(st.published, 0);
    events_hub_free(hub);
}

static void test_fan_out_in_order(void **state)
{
    events_hub_t *hub = events_hub_new(4);
    events_hub_set_snapshot(hub, fake_snapshot, NULL);
    int wakes_a = 0, wakes_b = 0;
    events_sub_t *a = events_subscribe(hub, count_wake, &wakes_a);
    events_sub_t *b = events_subscribe(hub, count_wake, &wakes_b);
    snapshots = 0;
    events_publish(hub, EVENTS_CONTAINER_CREATED, "c1", "p1");
    events_publish(hub, EVENTS_CONTAINER_STARTED, "c1", "p1");
    events_publish(hub, EVENTS_CONTAINER_DELETED, "p1", "p1");
    assert_int_equal(snapshots, 3); /* once per event, shared by both queues */
    assert_int_equal(wakes_a, 3);
    assert_int_equal(wakes_b, 3);
    const char *want[] = {"0:c1:p1", "1:c1:p1", "3:p1:p1"};
    for (size_t i = 0; i < 3; i++)
        expect_pop(a, want[i]);
    events_blob_t *blob = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(events_pop(a, &blob, &err), 0); /* empty, not ended */
    assert_int_equal(err.status, 0);
    expect_pop(b, want[0]);
    /* a declined snapshot is no event */
    events_publish(hub, EVENTS_CONTAINER_CREATED, "declined", "p1");
    assert_int_equal(events_pop(a, &blob, &err), 0);
    /* unsubscribing with events still queued frees them (valgrind/ASan) */
    events_unsubscribe(b);
    events_unsubscribe(a);
    events_stats_t st;
    events_hub_stats(hub, &st);
    assert_int_equal(st.published, 3);
    assert_int_equal(st.subscribers, 0);
    assert_int_equal(st.dropped, 0);
    events_hub_free(hub);
}

static void test_queue_bound_ends_only_the_laggard(void **state)
{
    events_hub_t *hub = events_hub_new(3);
    events_hub_set_snapshot(hub, fake_snapshot, NULL);
    int wakes_slow = 0, wakes_fast = 0;
    events_sub_t *slow = events_subscribe(hub, count_wake, &wakes_slow);
    events_sub_t *fast = events_subscribe(hub, count_wake, &wakes_fast);
    char id[16];
    for (int i = 0; i < 6; i++) {
        (void)snprintf(id, sizeof(id), "c%d", i);
        events_publish(hub, EVENTS_CONTAINER_CREATED, id, "p");
        expect_pop(fast, (snprintf(id, sizeof(id), "0:c%d:p", i), id)); /* keeps up */
    }
    /* 3 queued, the 4th overran it (one wake to say so), 5 and 6 refused quietly */
    assert_int_equal(wakes_slow, 4);
    assert_int_equal(wakes_fast, 6);
    events_stats_t st;
    events_hub_stats(hub, &st);
    assert_int_equal(st.dropped, 3);
    assert_int_equal(st.overrun_subs, 1);
    assert_int_equal(st.subscribers, 2);
    /* the laggard gets what was queued, then the end */
    expect_pop(slow, "0:c0:p");
    expect_pop(slow, "0:c1:p");
    expect_pop(slow, "0:c2:p");
    events_blob_t *b = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(events_pop(slow, &b, &err), -1);
    assert_int_equal(err.status, ENOBUFS);
    assert_non_null(strstr(err.msg, "queue of 3 events"));
    assert_non_null(strstr(err.msg, "3 event(s) were dropped"));
    /* and stays ended, while the other goes on */
    cri_error_clear(&err);
    events_publish(hub, EVENTS_CONTAINER_STOPPED, "c9", "p");
    assert_int_equal(events_pop(slow, &b, &err), -1);
    expect_pop(fast, "2:c9:p");
    events_unsubscribe(slow);
    events_unsubscribe(fast);
    events_hub_free(hub);
}

static void test_default_bound(void **state)
{
    events_hub_t *hub = events_hub_new(0);
    events_hub_set_snapshot(hub, fake_snapshot, NULL);
    int wakes = 0;
    events_sub_t *s = events_subscribe(hub, count_wake, &wakes);
    for (int i = 0; i < EVENTS_QUEUE_DEFAULT; i++)
        events_publish(hub, EVENTS_CONTAINER_CREATED, "c", "p");
    events_stats_t st;
    events_hub_stats(hub, &st);
    assert_int_equal(st.dropped, 0);
    events_publish(hub, EVENTS_CONTAINER_CREATED, "c", "p");
    events_hub_stats(hub, &st);
    assert_int_equal(st.dropped, 1);
    events_unsubscribe(s);
    events_hub_free(hub);
}

/* Two publishers at once: the stream's order is the created_at order
 * (kubelet's EventedPLEG drops an event older than the pod's cached
 * status). The first publisher's snapshot stalls after taking its
 * timestamp until the second has published, or 300 ms if the hub makes
 * the second wait for it. */
static pthread_mutex_t race_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t race_cond = PTHREAD_COND_INITIALIZER;
static bool first_in, second_done;

static int stalling_snapshot(events_type_t type, const char *container_id, const char *sandbox_id,
                             int64_t created_at, void *data, void **ret_buf, size_t *ret_len)
{
    (void)type;
    (void)sandbox_id;
    (void)data;
    if (strcmp(container_id, "first") == 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 300 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&race_lock);
        first_in = true;
        pthread_cond_broadcast(&race_cond);
        while (!second_done && pthread_cond_timedwait(&race_cond, &race_lock, &until) == 0)
            ;
        pthread_mutex_unlock(&race_lock);
    }
    char *s = xasprintf("%020lld", (long long)created_at);
    *ret_len = strlen(s);
    *ret_buf = s;
    return 0;
}

static void *publish_first(void *hub)
{
    events_publish(hub, EVENTS_CONTAINER_DELETED, "first", "p1");
    return NULL;
}

static void test_concurrent_publishers_keep_created_at_order(void **state)
{
    (void)state;
    events_hub_t *hub = events_hub_new(4);
    events_hub_set_snapshot(hub, stalling_snapshot, NULL);
    int wakes = 0;
    events_sub_t *sub = events_subscribe(hub, count_wake, &wakes);
    first_in = second_done = false;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, publish_first, hub), 0);
    pthread_mutex_lock(&race_lock);
    while (!first_in) /* first has its timestamp and stalls */
        pthread_cond_wait(&race_cond, &race_lock);
    pthread_mutex_unlock(&race_lock);
    events_publish(hub, EVENTS_CONTAINER_DELETED, "second", "p1");
    pthread_mutex_lock(&race_lock);
    second_done = true;
    pthread_cond_broadcast(&race_cond);
    pthread_mutex_unlock(&race_lock);
    pthread_join(t, NULL);
    events_blob_t *a = NULL, *b = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(events_pop(sub, &a, &err), 1);
    assert_int_equal(events_pop(sub, &b, &err), 1);
    assert_int_equal(wakes, 2);
    /* fixed-width decimal: memcmp orders them */
    assert_true(memcmp(events_blob_data(a), events_blob_data(b), 20) < 0);
    events_blob_unref(a);
    events_blob_unref(b);
    events_unsubscribe(sub);
    events_hub_free(hub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_subscriber_builds_nothing),
        cmocka_unit_test(test_fan_out_in_order),
        cmocka_unit_test(test_queue_bound_ends_only_the_laggard),
        cmocka_unit_test(test_default_bound),
        cmocka_unit_test(test_concurrent_publishers_keep_created_at_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
