/* Unit tests of server/store.c: the LMDB state store. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/store.h"

/* Per-test state: a fresh temporary directory, the store in <tmp>/meta. */
typedef struct fixture {
    char tmp[64];
    char *dir;
    store_t *store;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = xcalloc(1, sizeof(*f));
    snprintf(f->tmp, sizeof(f->tmp), "/tmp/cricket-store-XXXXXX");
    if (!mkdtemp(f->tmp)) {
        free(f);
        return -1;
    }
    f->dir = xasprintf("%s/meta", f->tmp);
    cri_error_t err = CRI_ERROR_INIT;
    if (store_open(f->dir, &f->store, &err) < 0) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;
    store_close(f->store);
    int r = rm_rf(f->tmp, &err);
    free(f->dir);
    free(f);
    return r;
}

/* Closes and reopens the fixture's store. */
static void reopen(fixture_t *f)
{
    cri_error_t err = CRI_ERROR_INIT;
    store_close(f->store);
    f->store = NULL;
    if (store_open(f->dir, &f->store, &err) < 0)
        fail_msg("reopen: %s", err.msg);
}

static bool exists(store_t *store, store_kind_t kind, const char *key)
{
    cri_error_t err = CRI_ERROR_INIT;
    cleanup_free void *val = NULL;
    if (store_get1(store, kind, key, &val, NULL, &err) == 0)
        return true;
    assert_int_equal(err.status, ENOENT);
    return false;
}

static size_t count1(store_t *store, store_kind_t kind)
{
    cri_error_t err = CRI_ERROR_INIT;
    cleanup_store_txn store_txn_t *txn = NULL;
    size_t n = 0;
    assert_int_equal(store_txn_begin(store, false, &txn, &err), 0);
    assert_int_equal(store_count(txn, kind, &n, &err), 0);
    return n;
}

/* ---- basics ------------------------------------------------------------ */

static void test_kind_names(void **state)
{
    assert_string_equal(store_kind_name(STORE_PODS), "pods");
    assert_string_equal(store_kind_name(STORE_CONTAINERS), "containers");
    assert_string_equal(store_kind_name(STORE_IMAGES), "images");
    assert_string_equal(store_kind_name(STORE_LAYERS), "layers");
    assert_string_equal(store_kind_name(STORE_NAMES), "names");
    assert_string_equal(store_kind_name(STORE_KIND_COUNT), "unknown");
    assert_string_equal(store_kind_name((store_kind_t)-1), "unknown");
}

typedef struct walk {
    char keys[16][32];
    char vals[16][64];
    size_t n;
    size_t stop_after; /* 0: never */
    int fail_status;   /* != 0: fail at the first record */
    bool fail_silent;  /* fail without filling err */
} walk_t;

static int walk_cb(const char *key, const void *val, size_t len, void *data, cri_error_t *err)
{
    walk_t *w = data;
    if (w->fail_silent)
        return -1;
    if (w->fail_status)
        return cri_error_set(err, w->fail_status, "parse `%s`: bad json", key);
    assert_true(w->n < 16);
    snprintf(w->keys[w->n], sizeof(w->keys[0]), "%s", key);
    assert_true(len < sizeof(w->vals[0]));
    memcpy(w->vals[w->n], val, len);
    w->vals[w->n][len] = '\0';
    w->n++;
    return w->stop_after && w->n >= w->stop_after ? 1 : 0;
}

static void test_crud_every_kind(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;

    for (int kind = 0; kind < STORE_KIND_COUNT; kind++) {
        const char *kname = store_kind_name(kind);
        /* Written out of order: foreach must return key order. */
        static const char *const keys[] = {"k2", "k1", "k3"};
        for (size_t i = 0; i < 3; i++) {
            char val[64];
            int n = snprintf(val, sizeof(val), "{\"kind\":\"%s\",\"key\":\"%s\"}", kname, keys[i]);
            assert_int_equal(store_put1(f->store, kind, keys[i], val, (size_t)n, &err), 0);
        }
        assert_int_equal(count1(f->store, kind), 3);

        cleanup_free void *val = NULL;
        size_t len = 0;
        assert_int_equal(store_get1(f->store, kind, "k1", &val, &len, &err), 0);
        cleanup_free char *want = xasprintf("{\"kind\":\"%s\",\"key\":\"k1\"}", kname);
        assert_int_equal(len, strlen(want));
        assert_string_equal(val, want); /* NUL-terminated copy */

        /* Overwrite replaces. */
        assert_int_equal(store_put1(f->store, kind, "k1", "new", 3, &err), 0);
        free(TAKE_PTR(val));
        assert_int_equal(store_get1(f->store, kind, "k1", &val, &len, &err), 0);
        assert_int_equal(len, 3);
        assert_string_equal(val, "new");
        assert_int_equal(count1(f->store, kind), 3);

        {
            cleanup_store_txn store_txn_t *txn = NULL;
            walk_t w = {0};
            assert_int_equal(store_txn_begin(f->store, false, &txn, &err), 0);
            assert_int_equal(store_foreach(txn, kind, walk_cb, &w, &err), 0);
            assert_int_equal(w.n, 3);
            assert_string_equal(w.keys[0], "k1");
            assert_string_equal(w.vals[0], "new");
            assert_string_equal(w.keys[1], "k2");
            assert_string_equal(w.keys[2], "k3");
        }

        assert_int_equal(store_del1(f->store, kind, "k2", &err), 0);
        assert_int_equal(count1(f->store, kind), 2);
        assert_false(exists(f->store, kind, "k2"));
        assert_true(exists(f->store, kind, "k3"));
    }
    /* Kinds are separate: 2 records left in each. */
    for (int kind = 0; kind < STORE_KIND_COUNT; kind++)
        assert_int_equal(count1(f->store, kind), 2);
}

static void test_enoent(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;
    void *val = (void *)0x1;
    size_t len = 77;

    assert_int_equal(store_get1(f->store, STORE_PODS, "abc", &val, &len, &err), -1);
    assert_int_equal(err.status, ENOENT);
    assert_string_equal(err.msg, "get pods `abc`: not found");
    assert_ptr_equal(val, (void *)0x1); /* outputs untouched on failure */
    assert_int_equal(len, 77);

    cri_error_clear(&err);
    assert_int_equal(store_del1(f->store, STORE_CONTAINERS, "abc", &err), -1);
    assert_int_equal(err.status, ENOENT);
    assert_string_equal(err.msg, "delete containers `abc`: not found");

    cleanup_store_txn store_txn_t *txn = NULL;
    assert_int_equal(store_txn_begin(f->store, true, &txn, &err), 0);
    cri_error_clear(&err);
    assert_int_equal(store_get(txn, STORE_IMAGES, "sha256:00", &val, NULL, &err), -1);
    assert_int_equal(err.status, ENOENT);
    assert_int_equal(store_del(txn, STORE_LAYERS, "sha256:00", &err), -1);
    assert_int_equal(err.status, ENOENT);
    assert_string_equal(err.msg, "delete layers `sha256:00`: not found");
    char *owner = (char *)0x1;
    assert_int_equal(store_name_owner(txn, "nobody", &owner, &err), -1);
    assert_int_equal(err.status, ENOENT);
    assert_ptr_equal(owner, (void *)0x1);
    /* A failed get/del leaves the txn usable. */
    assert_int_equal(store_put(txn, STORE_PODS, "after", "x", 1, &err), 0);
    assert_int_equal(store_txn_commit(TAKE_PTR(txn), &err), 0);
    assert_true(exists(f->store, STORE_PODS, "after"));
}

static void test_invalid_args(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;
    void *val = NULL;

    assert_int_equal(store_put1(f->store, STORE_PODS, "", "x", 1, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_int_equal(store_put1(f->store, STORE_PODS, NULL, "x", 1, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_int_equal(store_put1(f->store, STORE_KIND_COUNT, "k", "x", 1, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_int_equal(store_get1(f->store, (store_kind_t)42, "k", &val, NULL, &err), -1);
    assert_int_equal(err.status, EINVAL);

    char long_key[600];
    memset(long_key, 'a', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    assert_int_equal(store_put1(f->store, STORE_IMAGES, long_key, "x", 1, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_non_null(strstr(err.msg, "longer than"));
    /* 511 bytes is LMDB's limit and fits. */
    long_key[511] = '\0';
    assert_int_equal(store_put1(f->store, STORE_IMAGES, long_key, "x", 1, &err), 0);
    assert_true(exists(f->store, STORE_IMAGES, long_key));

    cleanup_store_txn store_txn_t *txn = NULL;
    assert_int_equal(store_txn_begin(f->store, false, &txn, &err), 0);
    assert_int_equal(store_put(txn, STORE_PODS, "k", "x", 1, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_string_equal(err.msg, "put pods `k`: read-only transaction");
    assert_int_equal(store_del(txn, STORE_PODS, "k", &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_int_equal(store_reserve_name(txn, "n", "id", &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_int_equal(store_release_name(txn, "n", &err), -1);
    assert_int_equal(err.status, EINVAL);
    size_t n = 9;
    assert_int_equal(store_count(txn, STORE_KIND_COUNT, &n, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_int_equal(n, 9);
    assert_int_equal(store_foreach(txn, STORE_KIND_COUNT, walk_cb, NULL, &err), -1);
    assert_int_equal(err.status, EINVAL);
}

static void test_binary_and_empty_values(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;
    static const unsigned char bin[] = {0, 1, 2, 0, 255, 0};

    assert_int_equal(store_put1(f->store, STORE_LAYERS, "bin", bin, sizeof(bin), &err), 0);
    assert_int_equal(store_put1(f->store, STORE_LAYERS, "empty", NULL, 0, &err), 0);

    cleanup_free void *val = NULL;
    size_t len = 0;
    assert_int_equal(store_get1(f->store, STORE_LAYERS, "bin", &val, &len, &err), 0);
    assert_int_equal(len, sizeof(bin));
    assert_memory_equal(val, bin, sizeof(bin));
    assert_int_equal(((unsigned char *)val)[len], 0);
    free(TAKE_PTR(val));

    len = 99;
    assert_int_equal(store_get1(f->store, STORE_LAYERS, "empty", &val, &len, &err), 0);
    assert_int_equal(len, 0);
    assert_string_equal(val, "");
}

/* Values bigger than a page, and more data than LMDB's default 1 MiB map. */
static void test_large_values(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;
    const size_t size = 100 * 1024;
    cleanup_free char *big = xmalloc(size);
    for (size_t i = 0; i < size; i++)
        big[i] = (char)('a' + i % 26);

    cleanup_store_txn store_txn_t *txn = NULL;
    assert_int_equal(store_txn_begin(f->store, true, &txn, &err), 0);
    for (int i = 0; i < 40; i++) {
        char key[80];
        snprintf(key, sizeof(key), "sha256:%064d", i);
        big[0] = (char)('A' + i % 26);
        assert_int_equal(store_put(txn, STORE_IMAGES, key, big, size, &err), 0);
    }
    assert_int_equal(store_txn_commit(TAKE_PTR(txn), &err), 0);
    reopen(f);

    char key[80];
    snprintf(key, sizeof(key), "sha256:%064d", 39);
    cleanup_free void *val = NULL;
    size_t len = 0;
    assert_int_equal(store_get1(f->store, STORE_IMAGES, key, &val, &len, &err), 0);
    assert_int_equal(len, size);
    big[0] = (char)('A' + 39 % 26);
    assert_memory_equal(val, big, size);
    assert_int_equal(count1(f->store, STORE_IMAGES), 40);
}

static void test_foreach_stop_and_error(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;
    for (int i = 0; i < 5; i++) {
        char key[16];
        snprintf(key, sizeof(key), "c%d", i);
        assert_int_equal(store_put1(f->store, STORE_CONTAINERS, key, "v", 1, &err), 0);
    }
    cleanup_store_txn store_txn_t *txn = NULL;
    assert_int_equal(store_txn_begin(f->store, false, &txn, &err), 0);

    walk_t w = {.stop_after = 2};
    assert_int_equal(store_foreach(txn, STORE_CONTAINERS, walk_cb, &w, &err), 1);
    assert_int_equal(w.n, 2);

    w = (walk_t){.fail_status = EBADMSG};
    assert_int_equal(store_foreach(txn, STORE_CONTAINERS, walk_cb, &w, &err), -1);
    assert_int_equal(err.status, EBADMSG);
    assert_string_equal(err.msg, "walk containers: parse `c0`: bad json");

    cri_error_clear(&err);
    w = (walk_t){.fail_silent = true};
    assert_int_equal(store_foreach(txn, STORE_CONTAINERS, walk_cb, &w, &err), -1);
    assert_int_equal(err.status, EIO);

    /* An empty kind calls nothing. */
    w = (walk_t){0};
    assert_int_equal(store_foreach(txn, STORE_PODS, walk_cb, &w, &err), 0);
    assert_int_equal(w.n, 0);
}

/* ---- transactions ------------------------------------------------------ */

static void test_txn_atomic_commit(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(store_put1(f->store, STORE_PODS, "old", "x", 1, &err), 0);

    cleanup_store_txn store_txn_t *w = NULL;
    assert_int_equal(store_txn_begin(f->store, true, &w, &err), 0);
    assert_int_equal(store_put(w, STORE_PODS, "p1", "pod", 3, &err), 0);
    assert_int_equal(store_put(w, STORE_CONTAINERS, "c1", "ctr", 3, &err), 0);
    assert_int_equal(store_reserve_name(w, "k8s_POD_a_b_c_0", "p1", &err), 0);
    assert_int_equal(store_del(w, STORE_PODS, "old", &err), 0);

    /* The writer sees its own changes. */
    cleanup_free void *val = NULL;
    assert_int_equal(store_get(w, STORE_PODS, "p1", &val, NULL, &err), 0);
    size_t n = 0;
    assert_int_equal(store_count(w, STORE_PODS, &n, &err), 0);
    assert_int_equal(n, 1);

    /* A reader (even in the same thread: MDB_NOTLS) sees none of them yet. */
    assert_true(exists(f->store, STORE_PODS, "old"));
    assert_false(exists(f->store, STORE_PODS, "p1"));
    assert_false(exists(f->store, STORE_CONTAINERS, "c1"));
    assert_false(exists(f->store, STORE_NAMES, "k8s_POD_a_b_c_0"));

    assert_int_equal(store_txn_commit(TAKE_PTR(w), &err), 0);
    assert_null(w);

    assert_false(exists(f->store, STORE_PODS, "old"));
    assert_true(exists(f->store, STORE_PODS, "p1"));
    assert_true(exists(f->store, STORE_CONTAINERS, "c1"));
    assert_true(exists(f->store, STORE_NAMES, "k8s_POD_a_b_c_0"));
}

static void test_txn_snapshot(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(store_put1(f->store, STORE_IMAGES, "i1", "v1", 2, &err), 0);

    cleanup_store_txn store_txn_t *r = NULL;
    assert_int_equal(store_txn_begin(f->store, false, &r, &err), 0);
    assert_int_equal(store_put1(f->store, STORE_IMAGES, "i1", "v2", 2, &err), 0);
    assert_int_equal(store_put1(f->store, STORE_IMAGES, "i2", "v2", 2, &err), 0);

    /* A read txn keeps the snapshot it began with. */
    cleanup_free void *val = NULL;
    assert_int_equal(store_get(r, STORE_IMAGES, "i1", &val, NULL, &err), 0);
    assert_string_equal(val, "v1");
    size_t n = 0;
    assert_int_equal(store_count(r, STORE_IMAGES, &n, &err), 0);
    assert_int_equal(n, 1);
    /* Committing a read txn just ends it. */
    assert_int_equal(store_txn_commit(TAKE_PTR(r), &err), 0);
    assert_int_equal(count1(f->store, STORE_IMAGES), 2);
}

static void test_txn_abort_discards(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;

    store_txn_t *txn = NULL;
    assert_int_equal(store_txn_begin(f->store, true, &txn, &err), 0);
    assert_int_equal(store_put(txn, STORE_PODS, "p1", "x", 1, &err), 0);
    assert_int_equal(store_put(txn, STORE_CONTAINERS, "c1", "x", 1, &err), 0);
    store_txn_abort(txn);
    store_txn_abort(NULL);
    assert_int_equal(count1(f->store, STORE_PODS), 0);
    assert_int_equal(count1(f->store, STORE_CONTAINERS), 0);

    /* A cleanup_store_txn variable that goes out of scope aborts, e.g. when a
     * handler returns early on an error half-way through its writes. */
    {
        cleanup_store_txn store_txn_t *t = NULL;
        assert_int_equal(store_txn_begin(f->store, true, &t, &err), 0);
        assert_int_equal(store_put(t, STORE_PODS, "p2", "x", 1, &err), 0);
        assert_int_equal(store_reserve_name(t, "n2", "p2", &err), 0);
        assert_int_equal(store_put(t, STORE_PODS, "", "x", 1, &err), -1);
    }
    assert_int_equal(count1(f->store, STORE_PODS), 0);
    assert_int_equal(count1(f->store, STORE_NAMES), 0);

    /* The write lock was released: another write txn proceeds. */
    assert_int_equal(store_put1(f->store, STORE_PODS, "p3", "x", 1, &err), 0);
    assert_int_equal(count1(f->store, STORE_PODS), 1);
}

/* ---- names ------------------------------------------------------------- */

static void test_names(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;
    const char *name = "k8s_POD_nginx_default_uid1_0";

    cleanup_store_txn store_txn_t *txn = NULL;
    assert_int_equal(store_txn_begin(f->store, true, &txn, &err), 0);
    assert_int_equal(store_reserve_name(txn, name, "aaaa1111", &err), 0);
    /* Same owner again: fine, nothing changes. */
    assert_int_equal(store_reserve_name(txn, name, "aaaa1111", &err), 0);
    assert_int_equal(store_txn_commit(TAKE_PTR(txn), &err), 0);

    assert_int_equal(store_txn_begin(f->store, true, &txn, &err), 0);
    assert_int_equal(store_reserve_name(txn, name, "bbbb2222", &err), -1);
    assert_int_equal(err.status, EEXIST);
    assert_string_equal(err.msg,
                        "reserve name `k8s_POD_nginx_default_uid1_0`: already reserved for "
                        "`aaaa1111`");
    /* A holder id that is a prefix of the other is still someone else. */
    assert_int_equal(store_reserve_name(txn, name, "aaaa111", &err), -1);
    assert_int_equal(err.status, EEXIST);
    assert_int_equal(store_reserve_name(txn, name, "", &err), -1);
    assert_int_equal(err.status, EINVAL);

    cleanup_free char *owner = NULL;
    assert_int_equal(store_name_owner(txn, name, &owner, &err), 0);
    assert_string_equal(owner, "aaaa1111");

    assert_int_equal(store_release_name(txn, name, &err), 0);
    assert_int_equal(store_release_name(txn, name, &err), 0); /* absent is OK */
    assert_int_equal(store_release_name(txn, "never-reserved", &err), 0);
    assert_int_equal(store_reserve_name(txn, name, "bbbb2222", &err), 0);
    assert_int_equal(store_txn_commit(TAKE_PTR(txn), &err), 0);

    free(TAKE_PTR(owner));
    assert_int_equal(store_txn_begin(f->store, false, &txn, &err), 0);
    assert_int_equal(store_name_owner(txn, name, &owner, &err), 0);
    assert_string_equal(owner, "bbbb2222");
    size_t n = 0;
    assert_int_equal(store_count(txn, STORE_NAMES, &n, &err), 0);
    assert_int_equal(n, 1);
}

/* ---- threads ----------------------------------------------------------- */

#define THREADS 4
#define PUTS_PER_THREAD 200

typedef struct worker {
    store_t *store;
    int id;
    int failures;
    volatile int *stop;
} worker_t;

static void *writer_main(void *arg)
{
    worker_t *w = arg;
    cri_error_t err = CRI_ERROR_INIT;
    for (int i = 0; i < PUTS_PER_THREAD; i++) {
        char key[32], val[64];
        snprintf(key, sizeof(key), "t%d-%04d", w->id, i);
        int n = snprintf(val, sizeof(val), "{\"thread\":%d,\"i\":%d}", w->id, i);
        if (store_put1(w->store, (store_kind_t)(i % STORE_KIND_COUNT), key, val, (size_t)n, &err) <
            0) {
            w->failures++;
            continue;
        }
        /* Every few writes, one multi-record txn too. */
        if (i % 50 == 0) {
            cleanup_store_txn store_txn_t *txn = NULL;
            char name[32];
            snprintf(name, sizeof(name), "name-%d-%d", w->id, i);
            if (store_txn_begin(w->store, true, &txn, &err) < 0 ||
                store_reserve_name(txn, name, key, &err) < 0 ||
                store_del(txn, STORE_NAMES, name, &err) < 0 ||
                store_txn_commit(TAKE_PTR(txn), &err) < 0)
                w->failures++;
        }
        cleanup_free void *got = NULL;
        size_t len = 0;
        if (store_get1(w->store, (store_kind_t)(i % STORE_KIND_COUNT), key, &got, &len, &err) < 0 ||
            len != (size_t)n || memcmp(got, val, len) != 0)
            w->failures++;
    }
    return NULL;
}

static void *reader_main(void *arg)
{
    worker_t *w = arg;
    cri_error_t err = CRI_ERROR_INIT;
    while (!*w->stop) {
        cleanup_store_txn store_txn_t *txn = NULL;
        if (store_txn_begin(w->store, false, &txn, &err) < 0) {
            w->failures++;
            continue;
        }
        size_t total = 0;
        for (int k = 0; k < STORE_KIND_COUNT; k++) {
            size_t n = 0;
            if (store_count(txn, k, &n, &err) < 0)
                w->failures++;
            total += n;
        }
        if (total > (size_t)THREADS * PUTS_PER_THREAD)
            w->failures++;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 100000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void test_threads(void **state)
{
    fixture_t *f = *state;
    pthread_t writers[THREADS], readers[2];
    worker_t wargs[THREADS], rargs[2];
    volatile int stop = 0;

    for (int i = 0; i < 2; i++) {
        rargs[i] = (worker_t){.store = f->store, .id = i, .stop = &stop};
        assert_int_equal(pthread_create(&readers[i], NULL, reader_main, &rargs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        wargs[i] = (worker_t){.store = f->store, .id = i, .stop = &stop};
        assert_int_equal(pthread_create(&writers[i], NULL, writer_main, &wargs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(writers[i], NULL), 0);
        assert_int_equal(wargs[i].failures, 0);
    }
    stop = 1;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(readers[i], NULL), 0);
        assert_int_equal(rargs[i].failures, 0);
    }

    size_t total = 0;
    for (int k = 0; k < STORE_KIND_COUNT; k++)
        total += count1(f->store, k);
    assert_int_equal(total, THREADS * PUTS_PER_THREAD);
    assert_int_equal(count1(f->store, STORE_PODS), THREADS * PUTS_PER_THREAD / STORE_KIND_COUNT);
}

typedef struct blocked {
    store_t *store;
    volatile int got_write; /* set once the second writer owns the lock */
    int reads_ok;
} blocked_t;

static void *second_writer_main(void *arg)
{
    blocked_t *b = arg;
    cri_error_t err = CRI_ERROR_INIT;
    /* Reads go on while another thread holds the write txn. */
    cleanup_free void *val = NULL;
    b->reads_ok = store_get1(b->store, STORE_PODS, "base", &val, NULL, &err) == 0 &&
                  count1(b->store, STORE_PODS) == 1;
    cleanup_store_txn store_txn_t *txn = NULL;
    if (store_txn_begin(b->store, true, &txn, &err) < 0)
        return NULL;
    b->got_write = 1;
    /* It sees what the first writer committed before letting go. */
    if (store_put(txn, STORE_PODS, "second", "2", 1, &err) == 0 &&
        store_txn_commit(TAKE_PTR(txn), &err) == 0)
        b->got_write = 2;
    return NULL;
}

static void test_one_writer_readers_free(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(store_put1(f->store, STORE_PODS, "base", "b", 1, &err), 0);

    cleanup_store_txn store_txn_t *txn = NULL;
    assert_int_equal(store_txn_begin(f->store, true, &txn, &err), 0);
    assert_int_equal(store_put(txn, STORE_PODS, "first", "1", 1, &err), 0);

    blocked_t b = {.store = f->store};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, second_writer_main, &b), 0);
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 200000000L};
    nanosleep(&ts, NULL);
    assert_int_equal(b.got_write, 0); /* still waiting for the write lock */
    assert_int_equal(store_txn_commit(TAKE_PTR(txn), &err), 0);

    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    assert_int_equal(pthread_timedjoin_np(t, NULL, &deadline), 0);
    assert_true(b.reads_ok);
    assert_int_equal(b.got_write, 2);
    assert_true(exists(f->store, STORE_PODS, "first"));
    assert_true(exists(f->store, STORE_PODS, "second"));
}

/* ---- persistence ------------------------------------------------------- */

static void test_reopen_persists(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;
    for (int kind = 0; kind < STORE_KIND_COUNT; kind++)
        assert_int_equal(store_put1(f->store, kind, "persist", store_kind_name(kind),
                                    strlen(store_kind_name(kind)), &err),
                         0);
    reopen(f);
    for (int kind = 0; kind < STORE_KIND_COUNT; kind++) {
        cleanup_free void *val = NULL;
        assert_int_equal(store_get1(f->store, kind, "persist", &val, NULL, &err), 0);
        assert_string_equal(val, store_kind_name(kind));
    }
    struct stat st;
    assert_int_equal(stat(f->dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
}

static void test_open_errors(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;
    store_t *s = (store_t *)0x1;

    assert_int_equal(store_open("", &s, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_ptr_equal(s, (void *)0x1);

    cleanup_free char *file = xasprintf("%s/file", f->tmp);
    assert_int_equal(write_file_atomic(file, "x", 1, 0600, &err), 0);
    assert_int_equal(store_open(file, &s, &err), -1);
    assert_int_equal(err.status, ENOTDIR);
    assert_non_null(strstr(err.msg, "open store `"));

    /* Nested missing parents are created. */
    cleanup_free char *deep = xasprintf("%s/a/b/c", f->tmp);
    cleanup_store store_t *s2 = NULL;
    assert_int_equal(store_open(deep, &s2, &err), 0);
    assert_int_equal(store_put1(s2, STORE_PODS, "k", "v", 1, &err), 0);
}

static void test_fds_cloexec(void **state)
{
    fixture_t *f = *state;
    cleanup_dir DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int seen = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char link[300], target[512];
        snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n < 0)
            continue;
        target[n] = '\0';
        if (!str_has_prefix(target, f->dir))
            continue;
        int fd = (int)strtol(de->d_name, NULL, 10);
        int flags = fcntl(fd, F_GETFD);
        assert_true(flags >= 0);
        if (!(flags & FD_CLOEXEC))
            fail_msg("fd %d (%s) lacks FD_CLOEXEC", fd, target);
        seen++;
    }
    assert_true(seen >= 2); /* data.mdb and lock.mdb */
}

/* Rewrites the schema record with raw LMDB, as a future cricketd would. */
static void set_schema_raw(const char *dir, const char *version)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    MDB_val k = {.mv_size = strlen("schema_version"), .mv_data = "schema_version"};
    MDB_val v = {.mv_size = strlen(version), .mv_data = (void *)version};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void test_schema_version(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(store_put1(f->store, STORE_PODS, "keep", "x", 1, &err), 0);
    store_close(f->store);
    f->store = NULL;

    store_t *s = NULL;
    set_schema_raw(f->dir, "2");
    assert_int_equal(store_open(f->dir, &s, &err), -1);
    assert_int_equal(err.status, ENOTSUP);
    assert_non_null(strstr(err.msg, "schema version 2 is newer"));
    assert_null(s);

    static const char *const corrupt[] = {"", "abc", "1x", "-1", "0", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(corrupt) / sizeof(corrupt[0]); i++) {
        set_schema_raw(f->dir, corrupt[i]);
        assert_int_equal(store_open(f->dir, &s, &err), -1);
        assert_null(s);
        if (err.status != EIO && err.status != ENOTSUP)
            fail_msg("version `%s`: status %d (%s)", corrupt[i], err.status, err.msg);
    }

    set_schema_raw(f->dir, "1");
    reopen(f);
    assert_true(exists(f->store, STORE_PODS, "keep"));
}

/* ---- crash safety -------------------------------------------------------- *
 *
 * Crashing children are this binary re-executed as `--child <mode> ...`: a
 * fresh process (nothing inherited from cmocka or the parent's store) that
 * valgrind --trace-children=no leaves alone, so that the deliberately dead
 * processes are not reported as leaks. */

static char self_exe[4096];

static pid_t fork_or_fail(void)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    return pid;
}

/* Starts `self --child args...`; keep_fd (or -1) stays open across exec. */
static pid_t spawn_child(const char *const *args, int keep_fd)
{
    char *argv[16] = {self_exe, "--child"};
    size_t n = 2;
    for (; args[n - 2] && n < 15; n++)
        argv[n] = (char *)args[n - 2];
    argv[n] = NULL;
    pid_t pid = fork_or_fail();
    if (pid == 0) {
        if (keep_fd >= 0 && fcntl(keep_fd, F_SETFD, 0) < 0)
            _exit(126);
        execv(self_exe, argv);
        _exit(127);
    }
    return pid;
}

static void wait_child(pid_t pid, int *ret_status)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            fail_msg("waitpid: %s", strerror(errno));
    *ret_status = status;
}

static void assert_killed(int status)
{
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
        fail_msg("child was not killed: status 0x%x", status);
}

static long parse_long(const char *s)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end)
        _exit(120);
    return v;
}

static void die(void)
{
    kill(getpid(), SIGKILL);
    _exit(121);
}

/* Child: opens the store, writes many records in one write txn and dies
 * (by _exit or SIGKILL) without committing, holding the write lock. */
static int child_uncommitted(const char *dir, const char *how)
{
    cri_error_t err = CRI_ERROR_INIT;
    store_t *s = NULL;
    store_txn_t *txn = NULL;
    if (store_open(dir, &s, &err) < 0 || store_txn_begin(s, true, &txn, &err) < 0)
        _exit(2);
    for (int i = 0; i < 5000; i++) {
        char key[32];
        snprintf(key, sizeof(key), "pending-%05d", i);
        if (store_put(txn, STORE_PODS, key, key, strlen(key), &err) < 0 ||
            store_put(txn, STORE_CONTAINERS, key, key, strlen(key), &err) < 0)
            _exit(3);
    }
    if (strcmp(how, "kill") == 0)
        die();
    _exit(0);
}

static void crash_uncommitted(fixture_t *f, bool sigkill)
{
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(store_put1(f->store, STORE_PODS, "committed", "x", 1, &err), 0);
    store_close(f->store);
    f->store = NULL;

    const char *args[] = {"uncommitted", f->dir, sigkill ? "kill" : "exit", NULL};
    int status;
    wait_child(spawn_child(args, -1), &status);
    if (sigkill)
        assert_killed(status);
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child status 0x%x", status);

    reopen(f);
    assert_int_equal(count1(f->store, STORE_PODS), 1);
    assert_int_equal(count1(f->store, STORE_CONTAINERS), 0);
    assert_true(exists(f->store, STORE_PODS, "committed"));
    /* The dead writer's lock is gone: writing works. */
    assert_int_equal(store_put1(f->store, STORE_CONTAINERS, "after", "y", 1, &err), 0);
    assert_int_equal(store_del1(f->store, STORE_PODS, "committed", &err), 0);
    reopen(f);
    assert_int_equal(count1(f->store, STORE_PODS), 0);
    assert_int_equal(count1(f->store, STORE_CONTAINERS), 1);
}

static void test_crash_uncommitted_exit(void **state)
{
    crash_uncommitted(*state, false);
}

static void test_crash_uncommitted_sigkill(void **state)
{
    crash_uncommitted(*state, true);
}

#define LOOP_MAX 400
#define READY_MARK UINT32_MAX

/* Child: commits txns start.. where txn i writes pods/p-<i> and
 * containers/c-<i> (a pair that must exist both or neither) and
 * images/last = i, and reports each commit on fd. kill_at/phase choose where
 * it kills itself: after begin (0), between the puts (1), before commit (2)
 * or just after commit (3); kill_at < 0 runs until killed from outside. */
static int child_loop(const char *dir, int fd, long kill_at, long phase)
{
    cri_error_t err = CRI_ERROR_INIT;
    store_t *s = NULL;
    if (store_open(dir, &s, &err) < 0)
        _exit(2);
    long start = 0;
    void *last = NULL;
    if (store_get1(s, STORE_IMAGES, "last", &last, NULL, &err) == 0)
        start = parse_long(last) + 1;
    else if (err.status != ENOENT)
        _exit(3);
    uint32_t mark = READY_MARK;
    if (write(fd, &mark, sizeof(mark)) != sizeof(mark))
        _exit(4);

    for (long n = 0; n < LOOP_MAX; n++) {
        long i = start + n;
        char pk[32], ck[32], num[32];
        snprintf(pk, sizeof(pk), "p-%08ld", i);
        snprintf(ck, sizeof(ck), "c-%08ld", i);
        int len = snprintf(num, sizeof(num), "%ld", i);
        store_txn_t *txn = NULL;
        if (store_txn_begin(s, true, &txn, &err) < 0)
            _exit(5);
        if (n == kill_at && phase == 0)
            die();
        if (store_put(txn, STORE_PODS, pk, num, (size_t)len, &err) < 0)
            _exit(6);
        if (n == kill_at && phase == 1)
            die();
        if (store_put(txn, STORE_CONTAINERS, ck, num, (size_t)len, &err) < 0 ||
            store_put(txn, STORE_IMAGES, "last", num, (size_t)len, &err) < 0)
            _exit(7);
        if (n == kill_at && phase == 2)
            die();
        if (store_txn_commit(txn, &err) < 0)
            _exit(8);
        uint32_t done = (uint32_t)i;
        if (write(fd, &done, sizeof(done)) != sizeof(done))
            _exit(9);
        if (n == kill_at && phase == 3)
            die();
    }
    _exit(0);
}

typedef struct pairs {
    long max_p, n_p;
    bool bad;
} pairs_t;

static int pairs_cb(const char *key, const void *val, size_t len, void *data, cri_error_t *err)
{
    pairs_t *p = data;
    long i = strtol(key + 2, NULL, 10);
    char want[32];
    int n = snprintf(want, sizeof(want), "%ld", i);
    if ((size_t)n != len || memcmp(val, want, len) != 0)
        p->bad = true;
    if (i > p->max_p)
        p->max_p = i;
    p->n_p++;
    return 0;
}

/* Checks that the store holds exactly txns 0..last, each whole, and returns
 * last (-1 when empty). */
static long check_pairs(store_t *store)
{
    cri_error_t err = CRI_ERROR_INIT;
    cleanup_store_txn store_txn_t *txn = NULL;
    assert_int_equal(store_txn_begin(store, false, &txn, &err), 0);
    pairs_t p = {.max_p = -1};
    assert_int_equal(store_foreach(txn, STORE_PODS, pairs_cb, &p, &err), 0);
    assert_false(p.bad);
    size_t nc = 0;
    assert_int_equal(store_count(txn, STORE_CONTAINERS, &nc, &err), 0);
    assert_int_equal((long)nc, p.n_p);
    assert_int_equal(p.n_p, p.max_p + 1); /* no gaps */
    for (long i = 0; i <= p.max_p; i++) {
        char ck[32];
        snprintf(ck, sizeof(ck), "c-%08ld", i);
        cleanup_free void *val = NULL;
        if (store_get(txn, STORE_CONTAINERS, ck, &val, NULL, &err) < 0)
            fail_msg("txn %ld: pod record without its container record", i);
    }
    cleanup_free void *last = NULL;
    if (p.max_p < 0) {
        assert_int_equal(store_get(txn, STORE_IMAGES, "last", &last, NULL, &err), -1);
        assert_int_equal(err.status, ENOENT);
    } else {
        assert_int_equal(store_get(txn, STORE_IMAGES, "last", &last, NULL, &err), 0);
        assert_int_equal(strtol(last, NULL, 10), p.max_p);
    }
    return p.max_p;
}

/* Reads the commit reports of a child; returns the highest (-1 if none). */
static long read_reports(int fd, bool *ret_ready)
{
    long last = -1;
    uint32_t v;
    *ret_ready = false;
    while (read(fd, &v, sizeof(v)) == sizeof(v)) {
        if (v == READY_MARK)
            *ret_ready = true;
        else
            last = (long)v;
    }
    return last;
}

static void test_crash_commit_loop(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    print_message("crash loop seed %u\n", seed);
    srand(seed);
    store_close(f->store);
    f->store = NULL;

    long expect_last = -1;
    for (int round = 0; round < 8; round++) {
        bool external = round % 2 == 1;
        int fds[2];
        assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
        long kill_at = external ? -1 : rand() % (LOOP_MAX / 4);
        int phase = rand() % 4;
        char fd_s[16], kill_s[32], phase_s[16];
        snprintf(fd_s, sizeof(fd_s), "%d", fds[1]);
        snprintf(kill_s, sizeof(kill_s), "%ld", kill_at);
        snprintf(phase_s, sizeof(phase_s), "%d", phase);
        const char *args[] = {"loop", f->dir, fd_s, kill_s, phase_s, NULL};
        pid_t pid = spawn_child(args, fds[1]);
        close(fds[1]);
        if (external) {
            /* Wait until the child has opened the store, then kill it at a
             * random moment, possibly inside a commit. */
            uint32_t v = 0;
            assert_int_equal(read(fds[0], &v, sizeof(v)), sizeof(v));
            assert_int_equal(v, READY_MARK);
            struct timespec ts = {.tv_sec = 0, .tv_nsec = (rand() % 40000) * 1000L};
            nanosleep(&ts, NULL);
            kill(pid, SIGKILL);
        }
        int status;
        wait_child(pid, &status);
        bool ready = external;
        bool ready2 = false;
        long reported = read_reports(fds[0], &ready2);
        close(fds[0]);
        ready = ready || ready2;
        assert_true(ready);
        if (!WIFSIGNALED(status) && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
            fail_msg("round %d: child status 0x%x", round, status);

        cri_error_clear(&err);
        assert_int_equal(store_open(f->dir, &f->store, &err), 0);
        long last = check_pairs(f->store);
        /* Every commit the child saw succeed is there, plus at most the one
         * in flight when it died. */
        long lo = reported >= 0 ? reported : expect_last;
        assert_true(last >= lo);
        assert_true(last <= lo + 1);
        if (!external && phase < 3)
            assert_int_equal(last, expect_last + kill_at);
        else if (!external)
            assert_int_equal(last, expect_last + kill_at + 1);
        print_message("round %d: %s kill (at %ld, phase %d): last txn %ld, last reported %ld\n",
                      round, external ? "external" : "self", kill_at, phase, last, reported);
        expect_last = last;
        store_close(f->store);
        f->store = NULL;
    }

    /* Still writable afterwards. */
    reopen(f);
    assert_int_equal(store_put1(f->store, STORE_PODS, "zz-after", "x", 1, &err), 0);
    assert_true(exists(f->store, STORE_PODS, "zz-after"));
}

/* Child: keeps the store open until fd reaches EOF, after writing one byte
 * to say it is open. */
static int child_hold(const char *dir, int fd)
{
    cri_error_t err = CRI_ERROR_INIT;
    store_t *s = NULL;
    char c = 1;
    if (store_open(dir, &s, &err) < 0)
        _exit(2);
    if (write(fd, &c, 1) != 1)
        _exit(3);
    while (read(fd, &c, 1) > 0)
        ;
    store_close(s);
    close(fd);
    return 0;
}

/* A helper process that keeps the store open (so the lock file is not reset
 * by the next opener, as it is when nobody has it open) until stop_holder(). */
static pid_t spawn_holder(const char *dir, int *ret_fd)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    char fd_s[16];
    snprintf(fd_s, sizeof(fd_s), "%d", sv[1]);
    const char *args[] = {"hold", dir, fd_s, NULL};
    pid_t pid = spawn_child(args, sv[1]);
    close(sv[1]);
    char c = 0;
    assert_int_equal(read(sv[0], &c, 1), 1);
    *ret_fd = sv[0];
    return pid;
}

static void stop_holder(pid_t pid, int fd)
{
    int status;
    close(fd);
    wait_child(pid, &status);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("holder status 0x%x", status);
}

/* Child: dies holding a write txn with two puts in it. */
static int child_writer_dies(const char *dir)
{
    cri_error_t err = CRI_ERROR_INIT;
    store_t *s = NULL;
    store_txn_t *txn = NULL;
    if (store_open(dir, &s, &err) < 0 || store_txn_begin(s, true, &txn, &err) < 0 ||
        store_put(txn, STORE_PODS, "half-a", "x", 1, &err) < 0 ||
        store_put(txn, STORE_CONTAINERS, "half-b", "x", 1, &err) < 0)
        _exit(2);
    die();
    return 0;
}

/* The writer dies holding the write lock while another process keeps the
 * environment open: the next writer must recover the lock (robust mutex)
 * instead of hanging, and see none of the dead txn. */
static void test_crash_writer_dies_while_shared(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(store_put1(f->store, STORE_PODS, "committed", "x", 1, &err), 0);
    store_close(f->store);
    f->store = NULL;

    int holder_fd;
    pid_t holder = spawn_holder(f->dir, &holder_fd);
    const char *args[] = {"writer-dies", f->dir, NULL};
    int status;
    wait_child(spawn_child(args, -1), &status);
    assert_killed(status);

    reopen(f); /* its open txn takes the write lock the child died holding */
    assert_int_equal(count1(f->store, STORE_PODS), 1);
    assert_int_equal(count1(f->store, STORE_CONTAINERS), 0);
    assert_int_equal(store_put1(f->store, STORE_CONTAINERS, "after", "y", 1, &err), 0);
    store_close(f->store);
    f->store = NULL;
    stop_holder(holder, holder_fd);
    reopen(f);
    assert_true(exists(f->store, STORE_CONTAINERS, "after"));
}

/* Child: dies with two read txns open. */
static int child_readers_die(const char *dir)
{
    cri_error_t err = CRI_ERROR_INIT;
    store_t *s = NULL;
    store_txn_t *r1 = NULL, *r2 = NULL;
    if (store_open(dir, &s, &err) < 0 || store_txn_begin(s, false, &r1, &err) < 0 ||
        store_txn_begin(s, false, &r2, &err) < 0)
        _exit(2);
    die();
    return 0;
}

typedef struct reader_scan {
    char pid[32];
    int hits;
} reader_scan_t;

static int reader_lines_cb(const char *msg, void *ctx)
{
    reader_scan_t *scan = ctx;
    if (strstr(msg, scan->pid))
        scan->hits++;
    return 0;
}

/* Counts reader slots held by pid, through raw LMDB (the caller must not
 * have the store open). */
static int readers_of(const char *dir, pid_t pid)
{
    MDB_env *env = NULL;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_set_maxreaders(env, STORE_MAX_READERS), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_NOTLS, 0600), 0);
    reader_scan_t scan = {.hits = 0};
    snprintf(scan.pid, sizeof(scan.pid), " %d ", (int)pid);
    mdb_reader_list(env, reader_lines_cb, &scan);
    mdb_env_close(env);
    return scan.hits;
}

/* A process killed with read txns open leaves reader slots behind;
 * store_open() clears them. (With nobody else holding the environment, LMDB
 * resets the whole lock file on open anyway, so a holder keeps it open.) */
static void test_crash_stale_reader_cleared(void **state)
{
    fixture_t *f = *state;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(store_put1(f->store, STORE_PODS, "p", "x", 1, &err), 0);
    store_close(f->store);
    f->store = NULL;

    int holder_fd;
    pid_t holder = spawn_holder(f->dir, &holder_fd);
    const char *args[] = {"readers-die", f->dir, NULL};
    pid_t pid = spawn_child(args, -1);
    int status;
    wait_child(pid, &status);
    assert_killed(status);
    assert_int_equal(readers_of(f->dir, pid), 2);

    reopen(f); /* runs mdb_reader_check */
    store_close(f->store);
    f->store = NULL;
    assert_int_equal(readers_of(f->dir, pid), 0);
    stop_holder(holder, holder_fd);
    reopen(f);
    assert_true(exists(f->store, STORE_PODS, "p"));
}

static int child_main(int argc, char **argv)
{
    const char *mode = argv[2];
    if (strcmp(mode, "uncommitted") == 0 && argc == 5)
        return child_uncommitted(argv[3], argv[4]);
    if (strcmp(mode, "loop") == 0 && argc == 7)
        return child_loop(argv[3], (int)parse_long(argv[4]), parse_long(argv[5]),
                          parse_long(argv[6]));
    if (strcmp(mode, "hold") == 0 && argc == 5)
        return child_hold(argv[3], (int)parse_long(argv[4]));
    if (strcmp(mode, "writer-dies") == 0 && argc == 4)
        return child_writer_dies(argv[3]);
    if (strcmp(mode, "readers-die") == 0 && argc == 4)
        return child_readers_die(argv[3]);
    fprintf(stderr, "unknown child mode `%s`\n", mode);
    return 125;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "--child") == 0)
        return child_main(argc, argv);
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    if (n < 0) {
        perror("readlink /proc/self/exe");
        return 1;
    }
    self_exe[n] = '\0';

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_names),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_crud_every_kind),
        T(test_enoent),
        T(test_invalid_args),
        T(test_binary_and_empty_values),
        T(test_large_values),
        T(test_foreach_stop_and_error),
        T(test_txn_atomic_commit),
        T(test_txn_snapshot),
        T(test_txn_abort_discards),
        T(test_names),
        T(test_threads),
        T(test_one_writer_readers_free),
        T(test_reopen_persists),
        T(test_open_errors),
        T(test_fds_cloexec),
        T(test_schema_version),
        T(test_crash_uncommitted_exit),
        T(test_crash_uncommitted_sigkill),
        T(test_crash_commit_loop),
        T(test_crash_writer_dies_while_shared),
        T(test_crash_stale_reader_cleared),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
