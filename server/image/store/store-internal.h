/* Private interfaces of server/image/store/: shared by its files and its
 * unit tests and fuzzers only. */
#ifndef CRICKET_SERVER_IMAGE_STORE_INTERNAL_H
#define CRICKET_SERVER_IMAGE_STORE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/error.h"
#include "server/image/registry/registry.h"
#include "server/image/store/image_store.h"

struct conf;
struct store;

#define IMAGE_MAX_CONFIG (8u << 20)

/* ---- content.c: blobs by digest ----------------------------------------- */

/* <root>/blobs/sha256/<hex> of digest (malloc'd). */
char *content_blob_path(const char *root, const char *digest);
/* True when the blob is present. */
bool content_has(const char *root, const char *digest);

/* A download into <root>/blobs/ingest/: data is hashed and counted as it is
 * written; content_writer_commit() verifies digest and size and renames the
 * file into blobs/sha256/. A writer freed without commit removes its file. */
typedef struct content_writer content_writer_t;
/* expected_size < 0: unknown. err->status: errno of open. */
int content_writer_open(const char *root, const char *digest, int64_t expected_size,
                        content_writer_t **ret, cri_error_t *err);
/* err->status: EBADMSG when more than the expected size arrives, errno of write (ENOSPC). */
int content_writer_write(content_writer_t *w, const void *data, size_t len, cri_error_t *err);
/* Bytes written so far. */
uint64_t content_writer_written(const content_writer_t *w);
/* Restarts from zero (a retry on another endpoint). */
int content_writer_reset(content_writer_t *w, cri_error_t *err);
/* Called after each write with the bytes written so far, and with
 * restarted = true when a reset threw away bytes already written. */
typedef void (*content_observer_fn)(void *data, uint64_t written, bool restarted);
void content_writer_observe(content_writer_t *w, content_observer_fn fn, void *data);
/* The ingest file (read it with pread() only, while the writer lives). */
int content_writer_fd(const content_writer_t *w);
/* err->status: EBADMSG (digest or size mismatch: "digest mismatch: got x, want y"), errno. */
int content_writer_commit(content_writer_t *w, cri_error_t *err);
void content_writer_free(content_writer_t *w);
/* Stores data as a blob after checking it hashes to digest (EBADMSG if not). */
int content_put(const char *root, const char *digest, const void *data, size_t len,
                cri_error_t *err);
/* A registry sink writing into w (borrowed), for registry_get_blob(). */
registry_sink_t content_writer_sink(content_writer_t *w);
/* Reads a blob (at most max bytes) after checking its digest again. */
int content_get(const char *root, const char *digest, size_t max, char **ret, size_t *ret_len,
                cri_error_t *err);

/* ---- unpack.c: layer tarballs -------------------------------------------- */

/* Bounds of one unpack; 0 = none. */
typedef struct unpack_limits {
    uint64_t max_bytes;   /* uncompressed tar stream (image.max_layer_unpacked_bytes) */
    uint64_t max_entries; /* tar entries (image.max_layer_entries) */
    int64_t deadline_ms;  /* CLOCK_MONOTONIC milliseconds */
} unpack_limits_t;

typedef struct unpack_stats {
    uint64_t size;           /* uncompressed bytes */
    uint64_t entries;        /* tar entries read (counted when max_entries is set) */
    uint64_t dropped_xattrs; /* trusted.* xattrs not written */
} unpack_stats_t;

/* Unpacks the layer blob at blob_path (gzip, zstd or plain tar) into dir,
 * which must exist and be empty. OCI whiteouts become overlay whiteouts
 * (char 0/0 devices; `trusted.overlay.opaque=y` on opaque dirs); trusted.*
 * xattrs of the tar are dropped. Entries with `..`, absolute names (made
 * relative) and any write through a symlink are confined to dir: nothing is
 * written outside it. When diff_id is not NULL the uncompressed stream must
 * hash to it. limits may be NULL. *ret_stats (may be NULL) is set on
 * success. What was written stays in dir on failure (the caller removes it).
 * err->status: EBADMSG (bad archive, diff_id mismatch), EPERM (hostile entry
 * refused), EINVAL (a limit of limits: the message names the config key),
 * ETIMEDOUT (deadline), errno (ENOSPC). */
int unpack_layer(const char *blob_path, const char *dir, const char *diff_id,
                 const unpack_limits_t *limits, unpack_stats_t *ret_stats, cri_error_t *err);
/* Where unpack_layer_from() reads the blob: read() returns the bytes put in
 * buf (at most len), 0 at the end, or -1 with err set (that error is then
 * the unpack's). */
typedef struct unpack_reader {
    ssize_t (*read)(void *data, void *buf, size_t len, cri_error_t *err);
    void *data;
} unpack_reader_t;
/* unpack_layer() of a blob read through rd (a download in progress). */
int unpack_layer_from(const unpack_reader_t *rd, const char *dir, const char *diff_id,
                      const unpack_limits_t *limits, unpack_stats_t *ret_stats, cri_error_t *err);

/* ---- manifest.c: manifests, indexes, configs ----------------------------- */

typedef struct manifest_desc {
    char *media_type;
    char *digest;
    int64_t size;
} manifest_desc_t;

typedef struct manifest {
    bool is_index;          /* manifest list / OCI index: pick a platform */
    json_t *annotations;    /* "annotations" (string values only; never NULL) */
    manifest_desc_t config; /* image manifests */
    manifest_desc_t *layers;
    size_t n_layers;
} manifest_t;

/* Parses a manifest or index body (annotations too, for either). content_type may be NULL or "".
 * err->status: ENOTSUP (schema1, unknown media type), EBADMSG (bad JSON,
 * missing fields, bad digests). */
int manifest_parse(const char *body, size_t len, const char *content_type, manifest_t **ret,
                   cri_error_t *err);
void manifest_free(manifest_t *m);
/* Picks the manifest of an index for os/arch[/variant]; *ret_digest is
 * malloc'd. err->status: ENOTSUP when no entry matches (message lists them). */
int manifest_pick_platform(const char *body, size_t len, const char *os, const char *arch,
                           const char *variant, char **ret_digest, cri_error_t *err);
/* The Go arch of this host ("amd64", "arm64") and variant ("" or "v8"). */
void manifest_host_platform(const char **ret_arch, const char **ret_variant);
/* The Accept header value for manifest requests. */
extern const char *const manifest_accept;

/* Parses an image config blob: fills cfg and the diff ids (NULL-terminated,
 * malloc'd). err->status: EBADMSG. */
int image_config_parse(const char *json, size_t len, image_config_t *cfg, char ***ret_diff_ids,
                       cri_error_t *err);
void image_config_clear(image_config_t *cfg);

/* ---- meta.c: image records in LMDB -------------------------------------- */

typedef struct image_layer_rec {
    char *digest;   /* blob digest (compressed) */
    char *diff_id;  /* uncompressed digest */
    char *chain_id; /* layer directory name */
    int64_t size;   /* blob size */
} image_layer_rec_t;

/* An image record as stored (key = id). */
typedef struct image_rec {
    char *id;
    char **repo_tags;
    char **repo_digests;
    char *manifest_digest;
    int64_t size;
    int64_t created_ns;
    image_layer_rec_t *layers;
    size_t n_layers;
    char *config_json;
    json_t *annotations; /* index + manifest annotations (object; NULL = none) */
} image_rec_t;

void image_rec_free(image_rec_t *r);
/* JSON of a record (malloc'd). */
char *image_rec_to_json(const image_rec_t *r);
/* err->status: EIO (corrupt record). */
int image_rec_from_json(const char *json, size_t len, image_rec_t **ret, cri_error_t *err);
/* Adds s to the NULL-terminated vector *v unless present; true when added. */
bool image_strv_add(char ***v, const char *s);
/* Removes s from *v; true when it was there. */
bool image_strv_remove(char ***v, const char *s);
bool image_strv_contains(char *const *v, const char *s);
char **image_strv_copy(char *const *v);

/* ---- the store object (store.c) ------------------------------------------ */

typedef struct inflight inflight_t;

/* remote.c: the cricket-pull helper of the daemon (NULL in the helper). */
typedef struct pull_remote pull_remote_t;
pull_remote_t *pull_remote_new(void);
void pull_remote_free(pull_remote_t *r);
/* err->status: errno of access() on the helper binary. */
int pull_remote_check(pull_remote_t *r, cri_error_t *err);

/* The registry settings a pull uses from start to end (image.registries,
 * insecure_registries, auth_file): SIGHUP swaps in new ones without
 * disturbing pulls in flight. Refcounted; owns conf when `owned`. */
typedef struct image_settings {
    int refs; /* under the store's lock */
    struct conf *conf;
    bool owned;
} image_settings_t;

/* The settings in force, referenced (release with image_settings_put). */
image_settings_t *image_settings_get(image_store_t *s);
void image_settings_put(image_store_t *s, image_settings_t *st);

struct image_store {
    const struct conf *conf; /* the startup config: what a reload cannot change */
    struct store *store;
    char *root;
    char *pause_image; /* normalised; "" = none */
    registry_tokens_t *tokens;

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t cond;
    image_settings_t *settings; /* the registry settings in force */
    inflight_t *inflight;       /* layers being fetched */
    json_t *holds;              /* chain id -> count of live image_t refs */
    int active_pulls;           /* GC waits until this is 0 */
    bool gc_pending;            /* a removal found pulls running */
    bool gc_running;            /* pulls wait for it */
    image_layer_in_use_fn in_use;
    void *in_use_data;
    pull_remote_t *remote; /* the daemon's pull helper */
    struct trash *trash;   /* where GC moves blobs and layers (NULL: removed at once) */
};

/* <root>/layers/<hex of chain id> (malloc'd). */
char *image_layer_dir(const char *root, const char *chain_id);
/* Builds an image_t from a record (adds GC holds under s->lock). */
int image_from_rec(image_store_t *s, const image_rec_t *rec, image_t **ret, cri_error_t *err);
/* Collects garbage now when no pull runs, else leaves it to the last pull. */
int image_store_gc_soon(image_store_t *s, cri_error_t *err);
/* Pulls bracket their work with these (they wait while GC runs). */
void image_store_pull_begin(image_store_t *s);
/* failed: collect what the pull left (blobs and layers no record uses). */
void image_store_pull_end(image_store_t *s, bool failed);
/* Walks every record in one read transaction (under s->lock when the caller
 * holds it). fn returns 0 to go on, >0 to stop, <0 on error. */
typedef int (*image_rec_fn)(image_rec_t *rec, void *data, cri_error_t *err);
int image_store_walk(image_store_t *s, image_rec_fn fn, void *data, cri_error_t *err);

/* ---- lookup.c --------------------------------------------------------------- */

typedef enum image_match {
    IMAGE_MATCH_ID,     /* full id or unique id prefix */
    IMAGE_MATCH_TAG,    /* one of repo_tags */
    IMAGE_MATCH_DIGEST, /* one of repo_digests */
} image_match_t;

/* Finds the record `ref` names (see image_store_resolve() for the forms).
 * *ret_name (malloc'd) is the tag or repo digest matched (the id for
 * IMAGE_MATCH_ID). err->status: ENOENT, EINVAL (empty, ambiguous), EIO. */
int image_lookup(image_store_t *s, const char *ref, image_rec_t **ret, image_match_t *ret_how,
                 char **ret_name, cri_error_t *err);

/* ---- fetch.c: layers, shared between concurrent pulls --------------------- */

typedef struct fetch_layer_job {
    const char *digest;
    const char *diff_id;
    const char *chain_id;
    int64_t size;
} fetch_layer_job_t;

/* Makes sure every layer is unpacked under <root>/layers/, downloading
 * through c (concurrently, at most IMAGE_PULL_PARALLEL at a time) what is
 * missing. Layers present are skipped; a layer another pull is fetching is
 * waited for. */
int fetch_layers(image_store_t *s, registry_client_t *c, const fetch_layer_job_t *jobs, size_t n,
                 cri_error_t *err);
#define IMAGE_PULL_PARALLEL 3

/* ---- gc.c ------------------------------------------------------------------ */

/* Removes ingest/ and layers/tmp/ leftovers. */
int image_gc_sweep_tmp(const char *root, cri_error_t *err);
/* Deletes blobs and layers no record, hold or in-use callback references.
 * Caller holds no lock; no pull may be active (s->active_pulls == 0 checked
 * by the caller under s->lock). */
int image_gc_collect(image_store_t *s, cri_error_t *err);
/* Commits a pulled record: merges names into an existing record of the same
 * id and moves the tag away from any other image. */
int image_meta_commit(image_store_t *s, image_rec_t *rec, cri_error_t *err);

#endif
