/* The image store library (server/image/store/): registry pulls, content,
 * layers and image records. The image service's handlers (server/image/ .c files)
 * and the rest of the daemon use it through server/image/image.h, which
 * includes this header; it knows no CRI message (no protobuf-c type).
 * References, digests and auth credentials come from the registry library
 * (server/image/registry/registry.h).
 *
 * On disk (see server/image/README.md):
 *   <root>/blobs/sha256/<hex>     verified content (manifests, configs, layer blobs)
 *   <root>/blobs/ingest/          downloads in progress; renamed in once verified
 *   <root>/layers/<chain-hex>/    one unpacked layer = one overlay lower dir
 *   <root>/layers/tmp/            unpacks in progress; renamed in once complete
 *   LMDB STORE_IMAGES             "sha256:<config hex>" -> image record (JSON)
 * An image exists once its LMDB record is committed, which happens after all
 * its blobs and layers are in place: a crash at any point leaves no listed
 * image and no half-written layer. image_store_open() sweeps ingest/ and
 * layers/tmp/ and collects blobs and layers no record uses.
 *
 * Threads: every function may be called from any thread at any time.
 * image_store_resolve() and image_store_list() only read LMDB and take a
 * short in-memory mutex: they never block on I/O and are safe on the gRPC
 * pollers. image_store_pull() and image_store_remove() do slow work. */
#ifndef CRICKET_SERVER_IMAGE_STORE_IMAGE_STORE_H
#define CRICKET_SERVER_IMAGE_STORE_IMAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "server/image/registry/registry.h"

struct conf;
struct store;

/* ---- images -------------------------------------------------------------- */

/* The parts of an image config (OCI image-spec `config`) a container uses.
 * Lists are NULL-terminated (never NULL themselves); strings are never NULL
 * ("" when unset). entrypoint_set/cmd_set tell an absent list from []. */
typedef struct image_config {
    char **env;           /* "KEY=value" */
    char **entrypoint;    /* Entrypoint */
    bool entrypoint_set;  /* Entrypoint present (maybe empty) */
    char **cmd;           /* Cmd */
    bool cmd_set;         /* Cmd present (maybe empty) */
    char *working_dir;    /* WorkingDir */
    char *user;           /* User: "1000", "www-data", "1000:100", "" */
    char *stop_signal;    /* StopSignal: "SIGQUIT", "" */
    char **exposed_ports; /* keys of ExposedPorts: "80/tcp" */
    char **label_keys;    /* Labels, n_labels pairs in key order */
    char **label_values;
    size_t n_labels;
} image_config_t;

/* One stored image. Immutable and reference counted: a reader keeps using it
 * while other threads pull or remove images. While a reference obtained from
 * image_store_resolve() or image_store_list() is alive, the image's layer
 * directories are protected from garbage collection, even if RemoveImage
 * deletes the image record meanwhile. Drop it with image_unref(). The
 * image_store_t must outlive every image_t it returned. */
typedef struct image {
    char *id;              /* "sha256:<config digest hex>" (= Image.id) */
    char **repo_tags;      /* "docker.io/library/busybox:1.36" (NULL-terminated) */
    char **repo_digests;   /* "docker.io/library/busybox@sha256:..." */
    char *manifest_digest; /* digest of the manifest (or index) that was pulled */
    uint64_t size;         /* bytes of config + compressed layers */
    int64_t created_ns;    /* when it was first stored */
    bool pinned;           /* it is the configured pause image */
    size_t n_layers;
    char **layer_dirs;        /* n_layers absolute overlay lower dirs, LOWEST first */
    char **chain_ids;         /* n_layers "sha256:<hex>" chain ids, lowest first */
    char *config_json;        /* the image config blob, as pulled */
    char **annotation_keys;   /* OCI index + manifest annotations, n_annotations */
    char **annotation_values; /* pairs in key order (Image.spec.annotations) */
    size_t n_annotations;
    image_config_t config;

    /* private */
    struct image_store *store;
    int refs;
} image_t;

/* Length of a NULL-terminated list of image_t (repo_tags, ...). */
size_t image_strv_len(char *const *v);

/* Takes one more reference on img and returns it. */
image_t *image_ref(image_t *img);
/* Drops a reference; the last one frees img and its GC hold. NULL is a no-op. */
void image_unref(image_t *img);

static inline void image_unrefp(image_t **img)
{
    image_unref(*img);
}
#define cleanup_image __attribute__((cleanup(image_unrefp)))

/* ---- the store ------------------------------------------------------------ */

typedef struct image_store image_store_t;

/* Opens the image store under conf->root (blobs/, layers/) with records in
 * `store` (borrowed; must outlive the image store). Creates the directories
 * and sweeps what a crash left (ingest/, layers/tmp/). conf is borrowed for
 * the store's lifetime. Call image_store_gc() next, after setting the in-use
 * callback, to free blobs and layers no image uses any more.
 * err->status: errno of mkdir/readdir, or the store's errors. */
int image_store_open(const struct conf *conf, struct store *store, image_store_t **ret,
                     cri_error_t *err);

/* Frees the store. Pulls must have ended. NULL is a no-op. */
void image_store_close(image_store_t *s);

/* SIGHUP: pulls that start from now on use conf's image.registries,
 * image.insecure_registries and image.auth_file; pulls in flight finish
 * with the settings they started with. Takes ownership of conf. */
void image_store_reconfigure(image_store_t *s, struct conf *conf);

/* Pulls `ref` (any reference form) for the host platform and stores it.
 * Blobs and layers already present are reused; concurrent pulls of the same
 * layers share one download. auth may be NULL (then the configured auth file
 * is used); it goes to the image's registry only, never to a mirror. The pull
 * ends after client_timeout_ms (-1 = no client deadline) or
 * image.pull_timeout, whichever comes first. On success *ret_id (malloc'd)
 * is the image id "sha256:<hex>". err->status: EINVAL (bad reference, a
 * layer past image.max_layer_unpacked_bytes or max_layer_entries), ENOENT
 * (manifest or blob unknown), EACCES (401/403), ENOTSUP (schema1, no
 * matching platform), EBADMSG (digest or size mismatch, bad manifest),
 * ETIMEDOUT (no progress, deadline), ECONNREFUSED and other network errors
 * (EIO), ENOSPC; the message names the host and the HTTP status. Nothing of
 * a failed pull stays visible. */
int image_store_pull(image_store_t *s, const char *ref, const image_auth_t *auth,
                     int64_t client_timeout_ms, char **ret_id, cri_error_t *err);

/* image_store_pull() run in the cricket-pull helper process (started by
 * the first pull, ending with the last one; see store/remote.c): what the
 * daemon calls, so it links no registry client and no unpacker. Same
 * arguments, result and err->status, plus EIO when the helper dies or
 * cannot start (the message says how). Concurrent pulls share the helper. */
int image_store_pull_remote(image_store_t *s, const char *ref, const image_auth_t *auth,
                            int64_t client_timeout_ms, char **ret_id, cri_error_t *err);

/* Checks that the cricket-pull helper binary is there (daemon start).
 * err->status: errno of access() (ENOENT), the message names the path. */
int image_store_check_pull_helper(image_store_t *s, cri_error_t *err);

/* The registry token cache as JSON (malloc'd), and adding such an export
 * to the cache: the helper sends its cache back with each reply, and the
 * daemon hands it to the next helper (registry_tokens_export/import). */
char *image_store_tokens_export(image_store_t *s);
void image_store_tokens_import(image_store_t *s, const char *json);

/* Finds the image `ref` names: an id ("sha256:<hex>" or the bare hex), a
 * unique id prefix (at least 3 hex digits), a tag in any reference form
 * (`busybox` = docker.io/library/busybox:latest), or name@digest (a repo
 * digest). *ret is a new reference (image_unref()).
 * err->status: ENOENT when no image matches, EINVAL (empty ref, ambiguous
 * prefix), EIO. */
int image_store_resolve(image_store_t *s, const char *ref, image_t **ret, cri_error_t *err);

/* Every image, in id order: *ret is a malloc'd array of *ret_n references;
 * free with image_list_free(). err->status: EIO. */
int image_store_list(image_store_t *s, image_t ***ret, size_t *ret_n, cri_error_t *err);
void image_list_free(image_t **list, size_t n);

/* Removes what `ref` names. A tag (or name@digest) that is one of several
 * names of an image removes just that name; the last name, or the id,
 * removes the image. Blobs and layers no other image, hold or in-use
 * callback needs are freed (now, or when running pulls end). A missing
 * image is success (RemoveImage is idempotent).
 * err->status: EINVAL (bad or ambiguous ref), EIO. */
int image_store_remove(image_store_t *s, const char *ref, cri_error_t *err);

/* Asks whether a layer (chain id "sha256:<hex>") is used by something outside
 * the image store (a container's rootfs). Return true to keep it. Called by
 * garbage collection, also at open; must not call back into the store. */
typedef bool (*image_layer_in_use_fn)(const char *chain_id, void *data);

/* Sets the in-use callback (the container store, for rootfs that outlive
 * their image). Set it once, before serving. */
void image_store_set_in_use_fn(image_store_t *s, image_layer_in_use_fn fn, void *data);

/* Sets the trash (server/trash.h) GC moves blobs and layers into, to be
 * deleted in the background; without one GC deletes them itself. Set it
 * once, before serving. */
struct trash;
void image_store_set_trash(image_store_t *s, struct trash *trash);

/* Deletes blobs and layers that no image record, live image_t or in-use
 * callback needs. Waits while pulls run. err->status: errno of readdir/rm. */
int image_store_gc(image_store_t *s, cri_error_t *err);

/* The normalised pause image reference ("" when none is configured). */
const char *image_store_pause_image(const image_store_t *s);

#endif
