/* The persistent state store: the only code in cricket that touches LMDB.
 *
 * One LMDB environment (data.mdb + lock.mdb) lives in a directory, normally
 * /var/lib/cricket/meta. It holds one named sub-database per record kind
 * (pods, containers, images, layers, names) plus "meta", which records the
 * schema version. Keys are C strings (ids, digests, names; 1..511 bytes, no
 * NUL); values are opaque bytes (callers store JSON).
 *
 * Transactions. Every read and write happens inside a store_txn_t. A write
 * transaction is atomic and durable once store_txn_commit() returns 0 (LMDB's
 * default sync: fsync on commit): after a crash at any point, a later open
 * sees either all of its changes or none. A read transaction sees one
 * consistent snapshot and never blocks, nor is blocked by, a writer.
 *
 * Threads. One store_t is shared by every thread of the daemon (opened with
 * MDB_NOTLS, so read transactions are not bound to a thread's slot).
 *   - Only one write transaction exists at a time: store_txn_begin(write) blocks
 *     while another thread holds one. So NEVER hold a write transaction across
 *     slow work (runc, CNI, pulls, waiting on a lock or a socket): prepare the
 *     records first, then begin, put, commit.
 *   - A thread that holds a write transaction must not begin a second one, nor
 *     call store_put1()/store_del1(): that deadlocks on itself.
 *   - A transaction is used by one thread at a time; a write transaction must
 *     be committed or aborted by the thread that began it.
 *   - Any number of read transactions may run at once, in any threads (the
 *     environment allows STORE_MAX_READERS of them at the same moment).
 *
 * Processes. Open a directory at most once per process (LMDB's locks are
 * per process), and never use a store_t in a forked child: the child execs
 * or _exit()s. LMDB's file descriptors are close-on-exec. A process that dies
 * while holding a transaction leaves no damage: its write lock is a robust
 * mutex and its stale reader slots are cleared by the next store_open(). */
#ifndef CRICKET_SERVER_STORE_H
#define CRICKET_SERVER_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

/* Schema version this build writes and understands (in sub-db "meta",
 * key "schema_version", ASCII decimal). */
#define STORE_SCHEMA_VERSION 1
/* Default map size: the most data the store may hold (sparse file). */
#define STORE_MAP_SIZE_DEFAULT ((size_t)1 << 30)
/* Most read transactions that may be open at the same moment. */
#define STORE_MAX_READERS 512

typedef enum {
    STORE_PODS,
    STORE_CONTAINERS,
    STORE_IMAGES,
    STORE_LAYERS,
    STORE_NAMES,
    STORE_KIND_COUNT
} store_kind_t;

typedef struct store store_t;
typedef struct store_txn store_txn_t;

/* Name of a kind, also its sub-database name: "pods", "containers", "images",
 * "layers", "names"; "unknown" for anything else. Static string. */
const char *store_kind_name(store_kind_t kind);

/* Opens (creating when missing) the store in `dir`: mkdir -p with mode 0700,
 * data files 0600, map size STORE_MAP_SIZE_DEFAULT (or the file's size when
 * larger), clears reader slots left by dead processes, creates the
 * sub-databases and writes the schema version on first use.
 * *ret is owned by the caller: free with store_close().
 * err->status: EINVAL (empty dir), errno from mkdir/open (EACCES, ENOTDIR,
 * ...), ENOTSUP when the store was written by a newer schema version, EIO when
 * the version record is corrupt or on other LMDB errors. */
int store_open(const char *dir, store_t **ret, cri_error_t *err);

/* Closes the store. Every transaction must have ended. NULL is a no-op. */
void store_close(store_t *store);

/* Begins a transaction: read-only when `write` is false. A write transaction
 * waits until no other write transaction is open (see "Threads" above).
 * *ret is owned by the caller and must end with store_txn_commit() or
 * store_txn_abort(), before store_close().
 * err->status: EIO (e.g. MDB_READERS_FULL), or an errno from LMDB. */
int store_txn_begin(store_t *store, bool write, store_txn_t **ret, cri_error_t *err);

/* Commits and frees txn, whatever the outcome: on failure nothing of it was
 * written. Committing a read transaction just ends it. Pass ownership with
 * TAKE_PTR() when txn is a cleanup_store_txn variable:
 *     return store_txn_commit(TAKE_PTR(txn), err);
 * err->status: ENOSPC (map full), EIO, or an errno from the write/fsync. */
int store_txn_commit(store_txn_t *txn, cri_error_t *err);

/* Discards every change of txn and frees it. NULL is a no-op. */
void store_txn_abort(store_txn_t *txn);

/* Writes key -> val (len bytes; val may be NULL when len is 0), replacing any
 * old value. Visible to others once txn commits. txn must be a write
 * transaction. After a failure txn can only be aborted (commit fails too).
 * err->status: EINVAL (bad kind, empty or too long key, read-only txn),
 * ENOSPC (map full), EIO. */
int store_put(store_txn_t *txn, store_kind_t kind, const char *key, const void *val, size_t len,
              cri_error_t *err);

/* Reads the value of key. *ret_val gets a malloc'd copy the caller frees,
 * with a NUL byte after the data (so JSON can be parsed as a string);
 * *ret_len (may be NULL) gets its length without that NUL.
 * err->status: ENOENT when key is absent ("get pods `abc`: not found"),
 * EINVAL (bad kind or key), EIO. */
int store_get(store_txn_t *txn, store_kind_t kind, const char *key, void **ret_val, size_t *ret_len,
              cri_error_t *err);

/* Deletes key. txn must be a write transaction.
 * err->status: ENOENT when key is absent, EINVAL (bad kind, key or read-only
 * txn), EIO. */
int store_del(store_txn_t *txn, store_kind_t kind, const char *key, cri_error_t *err);

/* Callback of store_foreach(). key is NUL-terminated; val points into the map
 * (read-only, NOT NUL-terminated, valid only during the call: copy what you
 * keep). Return 0 to go on, > 0 to stop early, < 0 to stop with an error after
 * filling err (the message of store_foreach's caller then reads like
 * "walk pods: <your message>"). */
typedef int (*store_foreach_fn)(const char *key, const void *val, size_t len, void *data,
                                cri_error_t *err);

/* Calls fn for every record of kind, in key order (bytewise). fn may read
 * through txn but must not put or delete records of the same kind (collect
 * keys, then delete after the walk).
 * Returns 0 after the last record, 1 when fn stopped early, -1 on error.
 * err->status: what fn set (EIO if it set nothing), EINVAL (bad kind), EIO. */
int store_foreach(store_txn_t *txn, store_kind_t kind, store_foreach_fn fn, void *data,
                  cri_error_t *err);

/* Stores in *ret the number of records of kind (cheap: no walk).
 * err->status: EINVAL (bad kind), EIO. */
int store_count(store_txn_t *txn, store_kind_t kind, size_t *ret, cri_error_t *err);

/* Reserves `name` for owner_id in STORE_NAMES (the value is the owner id).
 * Reserving a name again for its current owner succeeds and changes nothing.
 * txn must be a write transaction.
 * err->status: EEXIST when another owner holds it, with a message naming that
 * holder ("reserve name `x`: already reserved for `<id>`"); EINVAL (empty
 * name or owner, read-only txn), ENOSPC, EIO. */
int store_reserve_name(store_txn_t *txn, const char *name, const char *owner_id, cri_error_t *err);

/* Releases a reservation, whoever holds it. A name that is not reserved is
 * success. txn must be a write transaction.
 * err->status: EINVAL, EIO. */
int store_release_name(store_txn_t *txn, const char *name, cri_error_t *err);

/* Stores in *ret_owner (malloc'd, caller frees) the id that holds name.
 * err->status: ENOENT when name is not reserved, EINVAL, EIO. */
int store_name_owner(store_txn_t *txn, const char *name, char **ret_owner, cri_error_t *err);

/* One-shot forms of store_put(), store_get() and store_del(), each in its own
 * transaction (a write one for put and del, which is durable on return).
 * Same results and err->status values as the txn forms, plus those of
 * store_txn_begin() and store_txn_commit(). Never call put1/del1 while the
 * same thread holds a write transaction. */
int store_put1(store_t *store, store_kind_t kind, const char *key, const void *val, size_t len,
               cri_error_t *err);
int store_get1(store_t *store, store_kind_t kind, const char *key, void **ret_val, size_t *ret_len,
               cri_error_t *err);
int store_del1(store_t *store, store_kind_t kind, const char *key, cri_error_t *err);

static inline void store_closep(store_t **store)
{
    store_close(*store);
}

static inline void store_txn_abortp(store_txn_t **txn)
{
    store_txn_abort(*txn);
}

/* A store_t local closed at scope exit. */
#define cleanup_store __attribute__((cleanup(store_closep)))
/* A store_txn_t local aborted at scope exit unless its ownership was moved out
 * with TAKE_PTR(), normally into store_txn_commit(). */
#define cleanup_store_txn __attribute__((cleanup(store_txn_abortp)))

#endif
