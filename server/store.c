/* The LMDB-backed state store. See store.h for the contract. */
#include "store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/statvfs.h>

#include "common/cleanup.h"
#include "common/util.h"

#define STORE_META_DB "meta"
#define STORE_SCHEMA_KEY "schema_version"
/* Free space under which a failed write is taken for a full disk. */
#define STORE_FULL_BYTES ((uint64_t)1024 * 1024)

struct store {
    MDB_env *env;
    MDB_dbi dbi[STORE_KIND_COUNT];
    MDB_dbi meta;
    size_t max_key; /* longest key LMDB accepts (511 in Debian's build) */
};

struct store_txn {
    store_t *store;
    MDB_txn *txn;
    bool write;
    pthread_t thread; /* a write txn must end in the thread that began it */
};

static const char *const kind_names[STORE_KIND_COUNT] = {
    [STORE_PODS] = "pods",     [STORE_CONTAINERS] = "containers", [STORE_IMAGES] = "images",
    [STORE_LAYERS] = "layers", [STORE_NAMES] = "names",
};

const char *store_kind_name(store_kind_t kind)
{
    if ((unsigned)kind >= STORE_KIND_COUNT)
        return "unknown";
    return kind_names[kind];
}

/* LMDB's own codes become the errno the rest of cricket understands; system
 * errors that LMDB passes through (EACCES, ENOSPC, ENOMEM, ...) stay as is. */
static int mdb_to_errno(int rc)
{
    switch (rc) {
    case MDB_NOTFOUND:
        return ENOENT;
    case MDB_MAP_FULL:
        return ENOSPC;
    case MDB_KEYEXIST:
        return EEXIST;
    default:
        return rc > 0 ? rc : EIO;
    }
}

/* Fills err with "<what>: <cause>" for LMDB result rc. Returns -1. */
static int store_fail(cri_error_t *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int store_fail(cri_error_t *err, int rc, const char *fmt, ...)
{
    char what[CRI_ERROR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (rc == MDB_NOTFOUND)
        cri_error_set(err, ENOENT, "%s: not found", what);
    else
        cri_error_set(err, mdb_to_errno(rc), "%s: %s", what, mdb_strerror(rc));
    return -1;
}

static void mdb_env_closep(MDB_env **env)
{
    if (*env)
        mdb_env_close(*env);
}

static void mdb_txn_abortp(MDB_txn **txn)
{
    if (*txn)
        mdb_txn_abort(*txn);
}

static void mdb_cursor_closep(MDB_cursor **cur)
{
    if (*cur)
        mdb_cursor_close(*cur);
}

/* Checks the arguments every record operation shares. */
static int check_args(store_txn_t *txn, store_kind_t kind, const char *key, bool write,
                      const char *verb, cri_error_t *err)
{
    if ((unsigned)kind >= STORE_KIND_COUNT)
        return cri_error_set(err, EINVAL, "%s: unknown record kind %d", verb, (int)kind);
    const char *kname = kind_names[kind];
    if (!key || !*key)
        return cri_error_set(err, EINVAL, "%s %s: empty key", verb, kname);
    size_t len = strlen(key);
    if (len > txn->store->max_key)
        return cri_error_set(err, EINVAL, "%s %s `%.64s...`: key is %zu bytes, longer than %zu",
                             verb, kname, key, len, txn->store->max_key);
    if (write && !txn->write)
        return cri_error_set(err, EINVAL, "%s %s `%s`: read-only transaction", verb, kname, key);
    return 0;
}

static MDB_val key_val(const char *key)
{
    return (MDB_val){.mv_size = strlen(key), .mv_data = (void *)key};
}

/* Reads or initialises the schema version inside the open's write txn. */
static int check_schema(MDB_txn *txn, MDB_dbi meta, const char *dir, cri_error_t *err)
{
    MDB_val k = key_val(STORE_SCHEMA_KEY), v;
    int rc = mdb_get(txn, meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%d", STORE_SCHEMA_VERSION);
        v = (MDB_val){.mv_size = (size_t)n, .mv_data = buf};
        rc = mdb_put(txn, meta, &k, &v, 0);
        if (rc != 0)
            return store_fail(err, rc, "open store `%s`: write schema version", dir);
        return 0;
    }
    if (rc != 0)
        return store_fail(err, rc, "open store `%s`: read schema version", dir);

    char buf[32];
    uintmax_t version = 0;
    bool ok = v.mv_size > 0 && v.mv_size < sizeof(buf);
    if (ok) {
        memcpy(buf, v.mv_data, v.mv_size);
        buf[v.mv_size] = '\0';
        char *end = NULL;
        errno = 0;
        version = strtoumax(buf, &end, 10);
        ok = errno == 0 && *end == '\0' && buf[0] >= '0' && buf[0] <= '9' && version >= 1;
    }
    if (!ok)
        return cri_error_set(err, EIO, "open store `%s`: corrupt schema version record", dir);
    if (version > STORE_SCHEMA_VERSION)
        return cri_error_set(err, ENOTSUP,
                             "open store `%s`: schema version %ju is newer than this cricketd "
                             "supports (%d)",
                             dir, version, STORE_SCHEMA_VERSION);
    /* Older versions would be migrated here; version 1 is the first. */
    return 0;
}

/* LMDB 0.9.24 opens data.mdb's main descriptor without O_CLOEXEC (lock.mdb
 * and the meta-page descriptor have it): without this, every runc, conmon and
 * CNI plugin cricketd spawns would inherit an open data.mdb. */
static int set_cloexec(MDB_env *env, const char *dir, cri_error_t *err)
{
    int fd = -1;
    int rc = mdb_env_get_fd(env, &fd);
    if (rc != 0)
        return store_fail(err, rc, "open store `%s`: get data file descriptor", dir);
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
        return cri_error_make(err, errno, "open store `%s`: set close-on-exec", dir);
    return 0;
}

int store_open(const char *dir, store_t **ret, cri_error_t *err)
{
    if (!dir || !*dir)
        return cri_error_set(err, EINVAL, "open store: empty directory");
    if (mkdir_p(dir, 0700, err) < 0)
        return cri_error_wrap(err, "open store `%s`", dir);

    __attribute__((cleanup(mdb_env_closep))) MDB_env *env = NULL;
    int rc = mdb_env_create(&env);
    if (rc != 0)
        return store_fail(err, rc, "open store `%s`: create environment", dir);
    if ((rc = mdb_env_set_maxdbs(env, STORE_KIND_COUNT + 1)) != 0 ||
        (rc = mdb_env_set_maxreaders(env, STORE_MAX_READERS)) != 0)
        return store_fail(err, rc, "open store `%s`: configure environment", dir);
    /* No map size yet: an existing store keeps the size it recorded. */
    rc = mdb_env_open(env, dir, MDB_NOTLS, 0600);
    if (rc != 0)
        return store_fail(err, rc, "open store `%s`", dir);
    if (set_cloexec(env, dir, err) < 0)
        return -1;

    MDB_envinfo info;
    if ((rc = mdb_env_info(env, &info)) != 0)
        return store_fail(err, rc, "open store `%s`: read environment info", dir);
    if (info.me_mapsize < STORE_MAP_SIZE_DEFAULT &&
        (rc = mdb_env_set_mapsize(env, STORE_MAP_SIZE_DEFAULT)) != 0)
        return store_fail(err, rc, "open store `%s`: set map size", dir);

    /* Reader slots of processes that died (a SIGKILLed cricketd) would pin
     * old pages forever and fill the reader table. */
    int dead = 0;
    if ((rc = mdb_reader_check(env, &dead)) != 0)
        return store_fail(err, rc, "open store `%s`: check stale readers", dir);

    cleanup_free store_t *store = xcalloc(1, sizeof(*store));
    int max_key = mdb_env_get_maxkeysize(env);
    store->max_key = max_key > 0 ? (size_t)max_key : 0;

    __attribute__((cleanup(mdb_txn_abortp))) MDB_txn *txn = NULL;
    if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0)
        return store_fail(err, rc, "open store `%s`: begin transaction", dir);
    for (int i = 0; i < STORE_KIND_COUNT; i++) {
        if ((rc = mdb_dbi_open(txn, kind_names[i], MDB_CREATE, &store->dbi[i])) != 0)
            return store_fail(err, rc, "open store `%s`: open sub-database `%s`", dir,
                              kind_names[i]);
    }
    if ((rc = mdb_dbi_open(txn, STORE_META_DB, MDB_CREATE, &store->meta)) != 0)
        return store_fail(err, rc, "open store `%s`: open sub-database `%s`", dir, STORE_META_DB);
    if (check_schema(txn, store->meta, dir, err) < 0)
        return -1;
    rc = mdb_txn_commit(TAKE_PTR(txn));
    if (rc != 0)
        return store_fail(err, rc, "open store `%s`: commit", dir);

    store->env = TAKE_PTR(env);
    *ret = TAKE_PTR(store);
    return 0;
}

void store_close(store_t *store)
{
    if (!store)
        return;
    mdb_env_close(store->env);
    free(store);
}

int store_txn_begin(store_t *store, bool write, store_txn_t **ret, cri_error_t *err)
{
    MDB_txn *mtxn = NULL;
    int rc = mdb_txn_begin(store->env, NULL, write ? 0 : MDB_RDONLY, &mtxn);
    if (rc != 0) {
        /* Not `return store_fail()`: the analyzer does not follow variadic
         * calls and would then assume *ret may be used unset. */
        store_fail(err, rc, "begin %s transaction", write ? "write" : "read");
        return -1;
    }
    store_txn_t *txn = xmalloc(sizeof(*txn));
    *txn = (store_txn_t){.store = store, .txn = mtxn, .write = write, .thread = pthread_self()};
    *ret = txn;
    return 0;
}

/* Whether the store's file system has no room left for a few pages. */
static bool disk_full(store_t *store)
{
    int fd = -1;
    struct statvfs sv;
    if (mdb_env_get_fd(store->env, &fd) != 0 || fstatvfs(fd, &sv) < 0)
        return false;
    return (uint64_t)sv.f_bavail * sv.f_frsize < STORE_FULL_BYTES;
}

int store_txn_commit(store_txn_t *txn, cri_error_t *err)
{
    assert(txn);
    assert(!txn->write || pthread_equal(txn->thread, pthread_self()));
    bool write = txn->write;
    int rc = mdb_txn_commit(txn->txn); /* frees the MDB_txn even on failure */
    if (rc == EIO && write && disk_full(txn->store))
        rc = ENOSPC; /* LMDB reports a short write (the disk filled up) as EIO */
    free(txn);
    if (rc != 0)
        return store_fail(err, rc, "commit %s transaction", write ? "write" : "read");
    return 0;
}

void store_txn_abort(store_txn_t *txn)
{
    if (!txn)
        return;
    assert(!txn->write || pthread_equal(txn->thread, pthread_self()));
    mdb_txn_abort(txn->txn);
    free(txn);
}

int store_put(store_txn_t *txn, store_kind_t kind, const char *key, const void *val, size_t len,
              cri_error_t *err)
{
    if (check_args(txn, kind, key, true, "put", err) < 0)
        return -1;
    MDB_val k = key_val(key);
    MDB_val v = {.mv_size = len, .mv_data = len ? (void *)val : (void *)""};
    int rc = mdb_put(txn->txn, txn->store->dbi[kind], &k, &v, 0);
    if (rc != 0)
        return store_fail(err, rc, "put %s `%s`", kind_names[kind], key);
    return 0;
}

int store_get(store_txn_t *txn, store_kind_t kind, const char *key, void **ret_val, size_t *ret_len,
              cri_error_t *err)
{
    if (check_args(txn, kind, key, false, "get", err) < 0)
        return -1;
    MDB_val k = key_val(key), v;
    int rc = mdb_get(txn->txn, txn->store->dbi[kind], &k, &v);
    if (rc != 0)
        return store_fail(err, rc, "get %s `%s`", kind_names[kind], key);
    char *copy = xmalloc(v.mv_size + 1);
    if (v.mv_size)
        memcpy(copy, v.mv_data, v.mv_size);
    copy[v.mv_size] = '\0';
    if (ret_len)
        *ret_len = v.mv_size;
    *ret_val = copy;
    return 0;
}

int store_del(store_txn_t *txn, store_kind_t kind, const char *key, cri_error_t *err)
{
    if (check_args(txn, kind, key, true, "delete", err) < 0)
        return -1;
    MDB_val k = key_val(key);
    int rc = mdb_del(txn->txn, txn->store->dbi[kind], &k, NULL);
    if (rc != 0)
        return store_fail(err, rc, "delete %s `%s`", kind_names[kind], key);
    return 0;
}

int store_foreach(store_txn_t *txn, store_kind_t kind, store_foreach_fn fn, void *data,
                  cri_error_t *err)
{
    if ((unsigned)kind >= STORE_KIND_COUNT)
        return cri_error_set(err, EINVAL, "walk: unknown record kind %d", (int)kind);
    const char *kname = kind_names[kind];

    __attribute__((cleanup(mdb_cursor_closep))) MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(txn->txn, txn->store->dbi[kind], &cur);
    if (rc != 0)
        return store_fail(err, rc, "walk %s", kname);

    /* LMDB refuses keys longer than max_key, so this always fits. */
    cleanup_free char *keybuf = xmalloc(txn->store->max_key + 1);
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size > txn->store->max_key)
            return cri_error_set(err, EIO, "walk %s: key of %zu bytes is too long", kname,
                                 k.mv_size);
        memcpy(keybuf, k.mv_data, k.mv_size);
        keybuf[k.mv_size] = '\0';
        int r = fn(keybuf, v.mv_data, v.mv_size, data, err);
        if (r < 0) {
            if (err->status == 0)
                cri_error_set(err, EIO, "callback failed at `%s`", keybuf);
            return cri_error_wrap(err, "walk %s", kname);
        }
        if (r > 0)
            return 1;
    }
    if (rc != MDB_NOTFOUND)
        return store_fail(err, rc, "walk %s", kname);
    return 0;
}

int store_count(store_txn_t *txn, store_kind_t kind, size_t *ret, cri_error_t *err)
{
    if ((unsigned)kind >= STORE_KIND_COUNT)
        return cri_error_set(err, EINVAL, "count: unknown record kind %d", (int)kind);
    MDB_stat st;
    int rc = mdb_stat(txn->txn, txn->store->dbi[kind], &st);
    if (rc != 0)
        return store_fail(err, rc, "count %s", kind_names[kind]);
    *ret = st.ms_entries;
    return 0;
}

int store_reserve_name(store_txn_t *txn, const char *name, const char *owner_id, cri_error_t *err)
{
    if (check_args(txn, STORE_NAMES, name, true, "reserve", err) < 0)
        return -1;
    if (!owner_id || !*owner_id)
        return cri_error_set(err, EINVAL, "reserve name `%s`: empty owner id", name);

    MDB_val k = key_val(name), v;
    size_t owner_len = strlen(owner_id);
    int rc = mdb_get(txn->txn, txn->store->dbi[STORE_NAMES], &k, &v);
    if (rc == 0) {
        if (v.mv_size == owner_len && memcmp(v.mv_data, owner_id, owner_len) == 0)
            return 0;
        return cri_error_set(err, EEXIST, "reserve name `%s`: already reserved for `%.*s`", name,
                             (int)(v.mv_size > 512 ? 512 : v.mv_size), (const char *)v.mv_data);
    }
    if (rc != MDB_NOTFOUND)
        return store_fail(err, rc, "reserve name `%s`", name);
    v = (MDB_val){.mv_size = owner_len, .mv_data = (void *)owner_id};
    rc = mdb_put(txn->txn, txn->store->dbi[STORE_NAMES], &k, &v, 0);
    if (rc != 0)
        return store_fail(err, rc, "reserve name `%s`", name);
    return 0;
}

int store_release_name(store_txn_t *txn, const char *name, cri_error_t *err)
{
    if (check_args(txn, STORE_NAMES, name, true, "release", err) < 0)
        return -1;
    MDB_val k = key_val(name);
    int rc = mdb_del(txn->txn, txn->store->dbi[STORE_NAMES], &k, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store_fail(err, rc, "release name `%s`", name);
    return 0;
}

int store_name_owner(store_txn_t *txn, const char *name, char **ret_owner, cri_error_t *err)
{
    if (check_args(txn, STORE_NAMES, name, false, "look up", err) < 0)
        return -1;
    MDB_val k = key_val(name), v;
    int rc = mdb_get(txn->txn, txn->store->dbi[STORE_NAMES], &k, &v);
    if (rc != 0)
        return store_fail(err, rc, "look up name `%s`", name);
    *ret_owner = xstrndup(v.mv_data, v.mv_size);
    return 0;
}

int store_put1(store_t *store, store_kind_t kind, const char *key, const void *val, size_t len,
               cri_error_t *err)
{
    cleanup_store_txn store_txn_t *txn = NULL;
    if (store_txn_begin(store, true, &txn, err) < 0)
        return cri_error_wrap(err, "put %s `%s`", store_kind_name(kind), key ? key : "");
    if (store_put(txn, kind, key, val, len, err) < 0)
        return -1;
    if (store_txn_commit(TAKE_PTR(txn), err) < 0)
        return cri_error_wrap(err, "put %s `%s`", kind_names[kind], key);
    return 0;
}

int store_get1(store_t *store, store_kind_t kind, const char *key, void **ret_val, size_t *ret_len,
               cri_error_t *err)
{
    cleanup_store_txn store_txn_t *txn = NULL;
    if (store_txn_begin(store, false, &txn, err) < 0)
        return cri_error_wrap(err, "get %s `%s`", store_kind_name(kind), key ? key : "");
    return store_get(txn, kind, key, ret_val, ret_len, err);
}

int store_del1(store_t *store, store_kind_t kind, const char *key, cri_error_t *err)
{
    cleanup_store_txn store_txn_t *txn = NULL;
    if (store_txn_begin(store, true, &txn, err) < 0)
        return cri_error_wrap(err, "delete %s `%s`", store_kind_name(kind), key ? key : "");
    if (store_del(txn, kind, key, err) < 0)
        return -1;
    if (store_txn_commit(TAKE_PTR(txn), err) < 0)
        return cri_error_wrap(err, "delete %s `%s`", kind_names[kind], key);
    return 0;
}
