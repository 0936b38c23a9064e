/* Private interfaces of server/image/: shared by its files and unit tests only. */
#ifndef CRICKET_SERVER_IMAGE_INTERNAL_H
#define CRICKET_SERVER_IMAGE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/error.h"
#include "server/image/image.h"

struct conf;
struct store;

/* A json_t local released at scope exit (jansson's own json_decrefp). */
#define cleanup_json __attribute__((cleanup(json_decrefp)))

#define IMAGE_DIGEST_LEN (7 + 64) /* "sha256:" + hex */
#define IMAGE_MAX_MANIFEST (4u << 20)
#define IMAGE_MAX_CONFIG (8u << 20)

/* ---- digest.c: sha256 --------------------------------------------------- */

typedef struct image_hasher image_hasher_t;
image_hasher_t *image_hasher_new(void);
void image_hasher_update(image_hasher_t *h, const void *data, size_t len);
/* Writes "sha256:<hex>" (IMAGE_DIGEST_LEN + 1 bytes) into out. */
void image_hasher_final(image_hasher_t *h, char out[IMAGE_DIGEST_LEN + 1]);
void image_hasher_free(image_hasher_t *h);
/* "sha256:<hex>" of data into out. */
void image_digest_of(const void *data, size_t len, char out[IMAGE_DIGEST_LEN + 1]);
/* Chain id of a layer: diff_id for the first, sha256("<parent> <diff_id>")
 * after that (OCI image-spec config.md). */
void image_chain_id(const char *parent, const char *diff_id, char out[IMAGE_DIGEST_LEN + 1]);

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
/* err->status: EBADMSG (digest or size mismatch: "digest mismatch: got x, want y"), errno. */
int content_writer_commit(content_writer_t *w, cri_error_t *err);
void content_writer_free(content_writer_t *w);
/* Stores data as a blob after checking it hashes to digest (EBADMSG if not). */
int content_put(const char *root, const char *digest, const void *data, size_t len,
                cri_error_t *err);
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

/* ---- registry.c, auth.c: the registry client ---------------------------- */

typedef struct registry_tokens registry_tokens_t; /* cache shared by pulls */
registry_tokens_t *registry_tokens_new(void);
void registry_tokens_free(registry_tokens_t *t);
/* Caches token under key until expires (CLOCK_MONOTONIC seconds), first
 * evicting every entry that expired by now; when more than
 * REGISTRY_TOKENS_MAX live entries remain the cache starts over empty. */
void registry_tokens_put(registry_tokens_t *t, const char *key, const char *token, int64_t expires,
                         int64_t now);
/* The cached token of key (malloc'd) if it has not expired by now, else NULL. */
char *registry_tokens_get(registry_tokens_t *t, const char *key, int64_t now);
/* Number of entries held (expired ones included until the next put). */
size_t registry_tokens_count(registry_tokens_t *t);
#define REGISTRY_TOKENS_MAX 1024

/* One repository on one endpoint, for the length of a pull. */
typedef struct registry_client registry_client_t;

typedef struct registry_endpoint {
    char *host;   /* host[:port] contacted */
    char *prefix; /* path put before the repository ("" = none) */
    bool insecure;
    bool mirror; /* one of image.registries.<host>.mirrors (gets no request credentials) */
} registry_endpoint_t;

/* The endpoints to try for domain, in order: mirrors, then location (or the
 * domain itself; registry-1.docker.io for docker.io). Caller frees with
 * registry_endpoints_free(). */
registry_endpoint_t *registry_endpoints(const struct conf *conf, const char *domain, size_t *ret_n);
void registry_endpoints_free(registry_endpoint_t *e, size_t n);

/* Looks up credentials for domain in a containers-auth.json or docker
 * config.json file; *ret_user and *ret_pass are malloc'd. Returns 0 with both NULL
 * when the file or entry is missing. err->status: EINVAL (bad file). */
int registry_auth_file_lookup(const char *path, const char *domain, char **ret_user,
                              char **ret_pass, cri_error_t *err);

/* Credentials of one pull, decoded (fields may be NULL). */
typedef struct registry_creds {
    char *username;
    char *password;
    char *identity_token;
    char *registry_token;
} registry_creds_t;

/* The token cache key (malloc'd) of a token for realm, service and scope
 * fetched with creds: every field that authenticates is in it (the user name,
 * and a sha256 of user, password, identity token and registry token), and
 * anonymous requests get a key of their own. */
char *registry_token_key(const char *realm, const char *service, const char *scope,
                         const registry_creds_t *creds);

/* What answering a challenge needs besides the credentials (all borrowed). */
typedef struct registry_auth_ctx {
    registry_tokens_t *tokens;
    const char *repo;           /* default scope repository:<repo>:pull */
    char *const *insecure_list; /* hosts whose plain-http realms may get credentials */
    uint64_t timeout_ms;        /* of the token request; 0 = none */
} registry_auth_ctx_t;

/* True when credentials may go to the token realm URL: it is https, or its
 * host[:port] is in insecure_list (NULL-terminated, may be NULL). */
bool registry_realm_trusted(const char *realm, char *const *insecure_list);

/* Answers a 401 challenge: *ret_authz (malloc'd) is the Authorization header
 * value to retry with ("Bearer <token>" from the token server, cached until
 * it expires, or "Basic <base64>"). A realm registry_realm_trusted() refuses
 * is asked anonymously. err->status: EACCES (no or wrong credentials, token
 * server refusal: the message says when credentials were withheld), EIO
 * (token server unreachable), ETIMEDOUT. */
int registry_authorize(const registry_auth_ctx_t *ctx, const char *challenge,
                       const registry_creds_t *creds, char **ret_authz, cri_error_t *err);

/* Decodes AuthConfig.auth (base64 "user:password"). EINVAL when malformed. */
int registry_decode_auth(const char *b64, char **ret_user, char **ret_pass, cri_error_t *err);

/* Parses a WWW-Authenticate header. *ret_scheme is "bearer" or "basic";
 * *ret_params is a JSON object of the auth-params (realm, service, scope). */
int registry_parse_challenge(const char *header, char **ret_scheme, json_t **ret_params,
                             cri_error_t *err);

/* Settings of a client (insecure_list borrowed). */
typedef struct registry_opts {
    uint64_t progress_timeout_ms; /* a transfer idle this long fails; 0 = never */
    int64_t deadline_ms;          /* image_now_ms() every request must end by; 0 = none */
    char *const *insecure_list;   /* image.insecure_registries */
} registry_opts_t;

/* A client for repo on ep. auth (may be NULL) is sent to this endpoint only:
 * the caller picks the credentials that belong to it. err->status: EINVAL
 * (auth.auth not base64 of user:password). */
int registry_client_new(const registry_endpoint_t *ep, const char *repo, const image_auth_t *auth,
                        registry_tokens_t *tokens, const registry_opts_t *opts,
                        registry_client_t **ret, cri_error_t *err);
void registry_client_free(registry_client_t *c);
/* The deadline of the client's requests (image_now_ms() value; 0 = none). */
int64_t registry_client_deadline(const registry_client_t *c);

/* GETs a manifest by tag or digest. *ret_body (malloc'd, NUL-terminated) and
 * *ret_type (Content-Type, malloc'd). err->status: ENOENT (404), EACCES
 * (401/403), EIO (5xx, network), ETIMEDOUT. */
int registry_get_manifest(registry_client_t *c, const char *ref, char **ret_body, size_t *ret_len,
                          char **ret_type, cri_error_t *err);
/* Streams a blob into w. err->status as registry_get_manifest, plus the
 * writer's (EBADMSG, ENOSPC). */
int registry_get_blob(registry_client_t *c, const char *digest, content_writer_t *w,
                      cri_error_t *err);
/* The endpoint host, for messages. */
const char *registry_client_host(const registry_client_t *c);

/* ---- retry.c: when and how long to retry a registry request ------------- */

#define REGISTRY_ATTEMPTS 3         /* tries per request, the first included */
#define REGISTRY_RETRY_BASE_MS 250  /* first wait; doubles per retry */
#define REGISTRY_RETRY_MAX_MS 10000 /* cap of any wait, Retry-After included */

/* True for HTTP statuses worth another try: 429 and 5xx except 501/505. */
bool registry_retryable_status(long code);
/* Milliseconds to wait before retry number attempt + 1 (attempt 0 = the
 * first retry): REGISTRY_RETRY_BASE_MS << attempt, or longer when the
 * Retry-After value (may be NULL; delta seconds or an HTTP date, relative to
 * now in Unix seconds) asks for it; never above REGISTRY_RETRY_MAX_MS. */
uint64_t registry_retry_delay_ms(int attempt, const char *retry_after, int64_t now);
/* Sleeps ms milliseconds (EINTR resumed). */
void registry_retry_sleep(uint64_t ms);
/* CLOCK_MONOTONIC in milliseconds (pull deadlines). */
int64_t image_now_ms(void);

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
size_t image_strv_len(char *const *v);
char **image_strv_copy(char *const *v);

/* ---- the store object (store.c) ------------------------------------------ */

typedef struct inflight inflight_t;

struct image_store {
    const struct conf *conf;
    struct store *store;
    char *root;
    char *pause_image; /* normalised; "" = none */
    registry_tokens_t *tokens;

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t cond;
    inflight_t *inflight; /* layers being fetched */
    json_t *holds;        /* chain id -> count of live image_t refs */
    int active_pulls;     /* GC waits until this is 0 */
    bool gc_pending;      /* a removal found pulls running */
    bool gc_running;      /* pulls wait for it */
    image_layer_in_use_fn in_use;
    void *in_use_data;
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

/* ---- convert.c: image_t -> CRI messages (server/image RPC files only) ---- */

struct rpc_ctx;
struct Runtime__V1__Image;
/* An arena-allocated CRI Image for img. */
struct Runtime__V1__Image *image_to_cri(struct rpc_ctx *ctx, const image_t *img);
/* The verbose info JSON of ImageStatus (arena string). */
char *image_verbose_info(struct rpc_ctx *ctx, const image_t *img);

#endif
