/* server/: the method table against the contract, errno mapping, the
 * per-call arena and the worker pool. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/cri/v1/api.pb-c.h"
#include "common/util.h"
#include "server/arena.h"
#include "server/pool.h"
#include "server/rpc.h"

static const rpc_method_t *find(const char *path)
{
    size_t n;
    const rpc_method_t *m = rpc_methods(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(m[i].path, path) == 0)
            return &m[i];
    return NULL;
}

static void check_service(const ProtobufCServiceDescriptor *svc, size_t *seen)
{
    for (unsigned i = 0; i < svc->n_methods; i++) {
        const ProtobufCMethodDescriptor *md = &svc->methods[i];
        char path[256];
        snprintf(path, sizeof(path), "/%s/%s", svc->name, md->name);
        const rpc_method_t *m = find(path);
        assert_non_null(m);
        assert_ptr_equal(m->request, md->input);
        assert_string_equal(m->name, md->name);
        (*seen)++;
    }
}

static void test_table_matches_contract(void **state)
{
    size_t n, seen = 0;
    rpc_methods(&n);
    assert_int_equal(n, 43);
    check_service(&runtime__v1__runtime_service__descriptor, &seen);
    check_service(&runtime__v1__image_service__descriptor, &seen);
    assert_int_equal(seen, n);
}

static void test_streaming_methods_flagged(void **state)
{
    static const char *const streaming[] = {
        "/runtime.v1.RuntimeService/StreamPodSandboxes",
        "/runtime.v1.RuntimeService/StreamContainers",
        "/runtime.v1.RuntimeService/StreamContainerStats",
        "/runtime.v1.RuntimeService/StreamPodSandboxStats",
        "/runtime.v1.RuntimeService/GetContainerEvents",
        "/runtime.v1.RuntimeService/StreamPodSandboxMetrics",
        "/runtime.v1.ImageService/StreamImages",
    };
    size_t n, flagged = 0;
    const rpc_method_t *m = rpc_methods(&n);
    for (size_t i = 0; i < n; i++)
        flagged += m[i].server_streaming;
    assert_int_equal(flagged, sizeof(streaming) / sizeof(streaming[0]));
    for (size_t i = 0; i < sizeof(streaming) / sizeof(streaming[0]); i++)
        assert_true(find(streaming[i])->server_streaming);
}

static void test_fast_methods_are_reads(void **state)
{
    /* inline (FAST) methods must not block: only these may be FAST */
    static const char *const allowed[] = {
        "Version",        "Status",           "RuntimeConfig",         "UpdateRuntimeConfig",
        "ListPodSandbox", "PodSandboxStatus", "ListContainers",        "ContainerStatus",
        "ListImages",     "ImageStatus",      "ListMetricDescriptors",
    };
    size_t n;
    const rpc_method_t *m = rpc_methods(&n);
    for (size_t i = 0; i < n; i++) {
        if (m[i].klass != RPC_FAST)
            continue;
        bool ok = false;
        for (size_t k = 0; k < sizeof(allowed) / sizeof(allowed[0]); k++)
            ok |= strcmp(allowed[k], m[i].name) == 0;
        assert_true(ok);
    }
    assert_int_equal(find("/runtime.v1.ImageService/PullImage")->klass, RPC_SLOW);
    assert_int_equal(find("/runtime.v1.ImageService/ImageFsInfo")->klass, RPC_SLOW);
}

static void test_code_from_errno(void **state)
{
    static const struct {
        int in, want;
    } cases[] = {
        {0, RPC_OK},
        {ENOENT, RPC_NOT_FOUND},
        {EEXIST, RPC_ALREADY_EXISTS},
        {EINVAL, RPC_INVALID_ARGUMENT},
        {ETIMEDOUT, RPC_DEADLINE_EXCEEDED},
        {ENOSYS, RPC_UNIMPLEMENTED},
        {ECANCELED, RPC_CANCELLED},
        {EIO, RPC_UNKNOWN},
        {EPERM, RPC_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(rpc_code_from_errno(cases[i].in), cases[i].want);
}

static void test_arena_alignment_zeroing_and_big_blocks(void **state)
{
    arena_t *a = arena_new();
    size_t total = 0;
    for (size_t size = 1; size < 20000; size = size * 3 + 1) {
        total += size;
        unsigned char *p = arena_alloc(a, size);
        assert_int_equal((uintptr_t)p % 16, 0);
        for (size_t i = 0; i < size; i++)
            assert_int_equal(p[i], 0);
        memset(p, 0xab, size);
    }
    assert_true(arena_used(a) >= total);
    arena_free(a);
    arena_free(NULL);
}

static void test_arena_backs_protobuf_unpack(void **state)
{
    Runtime__V1__VersionResponse in = RUNTIME__V1__VERSION_RESPONSE__INIT;
    in.version = "0.1.0";
    in.runtime_name = "cricket";
    uint8_t buf[128];
    size_t len = runtime__v1__version_response__pack(&in, buf);

    arena_t *a = arena_new();
    ProtobufCAllocator alloc;
    arena_protobuf_allocator(a, &alloc);
    Runtime__V1__VersionResponse *out = runtime__v1__version_response__unpack(&alloc, len, buf);
    assert_non_null(out);
    assert_string_equal(out->runtime_name, "cricket");
    /* garbage does not parse */
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    assert_null(runtime__v1__version_response__unpack(&alloc, sizeof(junk), junk));
    arena_free(a); /* frees out too: valgrind checks */
}

struct counter {
    atomic_int done;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int release; /* jobs wait until this is set */
};

static void job(void *data)
{
    struct counter *c = data;
    pthread_mutex_lock(&c->lock);
    while (!c->release)
        pthread_cond_wait(&c->cond, &c->lock);
    pthread_mutex_unlock(&c->lock);
    atomic_fetch_add(&c->done, 1);
}

static void test_pool_runs_jobs_in_parallel_up_to_max(void **state)
{
    struct counter c = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    pool_t *pool = pool_new(4, 16, 50);
    for (int i = 0; i < 10; i++)
        assert_int_equal(pool_submit(pool, job, &c), 0);
    /* all four workers start, blocked on the same condition */
    assert_int_equal(pool_threads(pool), 4);
    pthread_mutex_lock(&c.lock);
    c.release = 1;
    pthread_cond_broadcast(&c.cond);
    pthread_mutex_unlock(&c.lock);
    pool_free(pool); /* runs what is queued, then joins */
    assert_int_equal(atomic_load(&c.done), 10);
}

static void test_pool_queue_is_bounded(void **state)
{
    struct counter c = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    pool_t *pool = pool_new(2, 3, 50);
    for (int i = 0; i < 5; i++) /* 2 running, 3 waiting */
        assert_int_equal(pool_submit(pool, job, &c), 0);
    assert_int_equal(pool_submit(pool, job, &c), -1);
    assert_int_equal(pool_submit(pool, job, &c), -1);
    for (int i = 0; i < 200 && pool_queued(pool) != 3; i++)
        usleep(5000);
    assert_int_equal(pool_queued(pool), 3);
    pthread_mutex_lock(&c.lock);
    c.release = 1;
    pthread_cond_broadcast(&c.cond);
    pthread_mutex_unlock(&c.lock);
    for (int i = 0; i < 500 && atomic_load(&c.done) < 5; i++)
        usleep(5000);
    assert_int_equal(atomic_load(&c.done), 5);
    assert_int_equal(pool_queued(pool), 0);
    assert_int_equal(pool_submit(pool, job, &c), 0); /* room again */
    pool_free(pool);
    assert_int_equal(atomic_load(&c.done), 6);
}

static void quick(void *data)
{
    atomic_fetch_add((atomic_int *)data, 1);
}

static void test_pool_idle_workers_leave(void **state)
{
    atomic_int n = 0;
    pool_t *pool = pool_new(8, 100, 20);
    for (int i = 0; i < 100; i++)
        assert_int_equal(pool_submit(pool, quick, &n), 0);
    for (int i = 0; i < 500 && pool_threads(pool) > 0; i++)
        usleep(10000);
    assert_int_equal(pool_threads(pool), 0);
    assert_int_equal(atomic_load(&n), 100);
    assert_int_equal(pool_submit(pool, quick, &n), 0); /* a new worker comes back */
    pool_free(pool);
    assert_int_equal(atomic_load(&n), 101);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_matches_contract),
        cmocka_unit_test(test_streaming_methods_flagged),
        cmocka_unit_test(test_fast_methods_are_reads),
        cmocka_unit_test(test_code_from_errno),
        cmocka_unit_test(test_arena_alignment_zeroing_and_big_blocks),
        cmocka_unit_test(test_arena_backs_protobuf_unpack),
        cmocka_unit_test(test_pool_runs_jobs_in_parallel_up_to_max),
        cmocka_unit_test(test_pool_idle_workers_leave),
        cmocka_unit_test(test_pool_queue_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
