/* Private interfaces of server/image/registry/: auth.c, retry.c and
 * registry.c, and the unit tests and fuzzers of this library. */
#ifndef CRICKET_SERVER_IMAGE_REGISTRY_INTERNAL_H
#define CRICKET_SERVER_IMAGE_REGISTRY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "common/error.h"
#include "server/image/registry/registry.h"

/* ---- auth.c ---------------------------------------------------------------- */

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

#endif
