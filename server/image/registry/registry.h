/* The registry client library: image references, digests and the
 * distribution API v2 client (manifests and blobs over libcurl, with auth
 * challenges, a token cache and bounded retries).
 *
 * The contract of server/image/registry/ for the image store. It knows
 * nothing of CRI messages (no protobuf-c type), of the store's files or of
 * manifest formats: manifest bodies come back as bytes with their
 * Content-Type, blobs go to a caller's sink. Private helpers shared with the
 * unit tests are in registry-internal.h. */
#ifndef CRICKET_SERVER_IMAGE_REGISTRY_H
#define CRICKET_SERVER_IMAGE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/error.h"
#include "common/json.h"

struct conf;

#define IMAGE_DIGEST_LEN (7 + 64) /* "sha256:" + hex */
#define IMAGE_MAX_MANIFEST (4u << 20)

/* ---- reference.c: image references -------------------------------------- */

/* A parsed, normalised image reference (Docker rules): `busybox` is
 * docker.io/library/busybox:latest; `index.docker.io` becomes docker.io. */
typedef struct image_ref {
    char *domain; /* "docker.io", "quay.io", "127.0.0.1:5000", "localhost" */
    char *path;   /* "library/busybox" */
    char *tag;    /* "latest"; NULL when only a digest was given */
    char *digest; /* "sha256:<64 hex>" or NULL */
} image_ref_t;

/* Parses and normalises s. A reference without tag and digest gets tag
 * "latest". *ret is the caller's: free with image_ref_free().
 * err->status: EINVAL with a message naming s (empty, bad characters,
 * upper case repository, bad tag or digest, too long, 64-hex id). */
int image_ref_parse(const char *s, image_ref_t **ret, cri_error_t *err);

/* Frees r; NULL is a no-op. */
void image_ref_free(image_ref_t *r);

/* "domain/path" (malloc'd, caller frees). */
char *image_ref_name(const image_ref_t *r);

/* The full form: "domain/path:tag", "domain/path@digest" or both
 * "domain/path:tag@digest" (malloc'd, caller frees). */
char *image_ref_string(const image_ref_t *r);

/* True when s is "sha256:" followed by 64 lower-case hex digits. */
bool image_digest_valid(const char *s);

static inline void image_ref_freep(image_ref_t **r)
{
    image_ref_free(*r);
}
#define cleanup_image_ref __attribute__((cleanup(image_ref_freep)))

/* ---- digest.c: sha256 ---------------------------------------------------- */

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

/* ---- registry.c, auth.c: the client ------------------------------------- */

/* Credentials for one pull (CRI AuthConfig). Any field may be NULL or "". */
typedef struct image_auth {
    const char *username;
    const char *password;
    const char *auth;           /* base64 "user:password" */
    const char *identity_token; /* OAuth2 refresh token for the token server */
    const char *registry_token; /* bearer token sent as is */
} image_auth_t;

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
/* The clock of the cache: CLOCK_MONOTONIC seconds (one clock for every
 * process of the host, so an exported cache means the same elsewhere). */
int64_t registry_tokens_now(void);
/* The live entries as one JSON text (malloc'd), for registry_tokens_import()
 * in another process (the daemon keeps it between cricket-pull helpers). */
char *registry_tokens_export(registry_tokens_t *t);
/* Adds the entries of an export that have not expired by now; a malformed
 * text adds nothing. */
void registry_tokens_import(registry_tokens_t *t, const char *json, int64_t now);

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

/* GETs a manifest by tag or digest, asking for the media types in accept
 * (an Accept header value). At most IMAGE_MAX_MANIFEST bytes. *ret_body
 * (malloc'd, NUL-terminated) and *ret_type (Content-Type, malloc'd).
 * err->status: ENOENT (404), EACCES (401/403), EIO (5xx, network),
 * ETIMEDOUT, EBADMSG (body too large). */
int registry_get_manifest(registry_client_t *c, const char *ref, const char *accept,
                          char **ret_body, size_t *ret_len, char **ret_type, cri_error_t *err);
/* Where a blob goes: write() gets the body in pieces; reset() is called
 * before every attempt (a retry, another scheme) so the sink starts over.
 * Both return <0 with err set to stop the transfer. */
typedef struct registry_sink {
    int (*write)(void *data, const void *buf, size_t len, cri_error_t *err);
    int (*reset)(void *data, cri_error_t *err);
    void *data;
} registry_sink_t;

/* Streams a blob into sink. err->status as registry_get_manifest, plus the
 * sink's (EBADMSG, ENOSPC). */
int registry_get_blob(registry_client_t *c, const char *digest, const registry_sink_t *sink,
                      cri_error_t *err);
/* The endpoint host, for messages. */
const char *registry_client_host(const registry_client_t *c);

/* CLOCK_MONOTONIC in milliseconds (pull deadlines; retry.c). */
int64_t image_now_ms(void);

#endif
