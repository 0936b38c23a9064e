/* Registry authentication: WWW-Authenticate challenges, the bearer token
 * flow (docker distribution token spec, with an OAuth2 refresh token when an
 * identity token is given), HTTP basic, the token cache and the auth file.
 *
 * Tokens are cached per (realm, service, scope, credentials) until 10 s
 * before they expire (expires_in, default 60 s), so the layers of a pull and
 * later pulls of the same repository with the same credentials reuse them.
 * The key holds the user name and a sha256 of every secret (password,
 * identity token, registry token): a pull with other or no credentials never
 * gets a token that was issued for these. Each new token evicts the expired ones,
 * so the cache holds at most the live tokens (and never more than
 * REGISTRY_TOKENS_MAX). */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/image/registry/registry-internal.h"

#define TOKEN_BODY_MAX (1u << 20)
#define TOKEN_DEFAULT_TTL 60
#define TOKEN_MARGIN 10
#define TOKEN_MAX_TTL ((json_int_t)24 * 3600)

int registry_parse_challenge(const char *header, char **ret_scheme, json_t **ret_params,
                             cri_error_t *err)
{
    const char *p = header + strspn(header, " ");
    size_t n = strcspn(p, " ");
    if (n == 0)
        return cri_error_set(err, EACCES, "empty WWW-Authenticate challenge");
    cleanup_free char *scheme = xstrndup(p, n);
    for (char *c = scheme; *c; c++)
        *c = (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
    cleanup_json json_t *params = json_object();
    p += n;
    while (*p) {
        p += strspn(p, " ,");
        size_t klen = strcspn(p, "= ,");
        if (klen == 0 || p[klen] != '=')
            break;
        cleanup_free char *key = xstrndup(p, klen);
        p += klen + 1;
        cleanup_free char *val = NULL;
        if (*p == '"') {
            p++;
            char *v = xmalloc(strlen(p) + 1);
            size_t k = 0;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1])
                    p++;
                v[k++] = *p++;
            }
            v[k] = '\0';
            val = v;
            if (*p == '"')
                p++;
        } else {
            size_t vlen = strcspn(p, ",");
            val = xstrndup(p, vlen);
            p += vlen;
        }
        for (char *c = key; *c; c++)
            *c = (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
        json_object_set_new(params, key, json_string(val));
    }
    *ret_scheme = TAKE_PTR(scheme);
    *ret_params = TAKE_PTR(params);
    return 0;
}

int registry_decode_auth(const char *b64, char **ret_user, char **ret_pass, cri_error_t *err)
{
    size_t n = strlen(b64);
    cleanup_free unsigned char *out = xmalloc(n + 4);
    int len = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
    if (len < 0)
        return cri_error_set(err, EINVAL, "auth: not valid base64");
    while (len > 0 && n > 0 && b64[n - 1] == '=') { /* EVP counts padding as zeros */
        len--;
        n--;
    }
    out[len] = '\0';
    char *colon = strchr((char *)out, ':');
    if (!colon)
        return cri_error_set(err, EINVAL, "auth: expected base64 of `user:password`");
    *ret_user = xstrndup((char *)out, (size_t)(colon - (char *)out));
    *ret_pass = xstrdup(colon + 1);
    return 0;
}

static char *basic_value(const char *user, const char *pass)
{
    cleanup_free char *plain = xasprintf("%s:%s", user, pass ? pass : "");
    size_t n = strlen(plain);
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)plain, (int)n);
    char *v = xasprintf("Basic %s", out);
    free(out);
    return v;
}

static size_t token_body(char *data, size_t size, size_t n, void *arg)
{
    char **buf = arg;
    size_t len = size * n, have = *buf ? strlen(*buf) : 0;
    if (have + len > TOKEN_BODY_MAX)
        return 0;
    *buf = xrealloc(*buf, have + len + 1);
    memcpy(*buf + have, data, len);
    (*buf)[have + len] = '\0';
    return len;
}

/* Asks the token server; *ret_body is its JSON answer. */
static int token_request(const char *realm, const char *service, const char *scope,
                         const registry_creds_t *creds, uint64_t timeout_ms, char **ret_body,
                         cri_error_t *err)
{
    CURL *h = curl_easy_init();
    if (!h)
        return cri_error_set(err, ENOMEM, "curl_easy_init");
    char *e_service = curl_easy_escape(h, service ? service : "", 0);
    char *e_scope = curl_easy_escape(h, scope, 0);
    cleanup_free char *url = NULL, *form = NULL;
    if (creds->identity_token) {
        char *e_tok = curl_easy_escape(h, creds->identity_token, 0);
        url = xstrdup(realm);
        form = xasprintf("grant_type=refresh_token&refresh_token=%s&service=%s&scope=%s"
                         "&client_id=cricket",
                         e_tok, e_service, e_scope);
        curl_free(e_tok);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
    } else {
        url = xasprintf("%s%sservice=%s&scope=%s", realm, strchr(realm, '?') ? "&" : "?", e_service,
                        e_scope);
        if (creds->username) {
            curl_easy_setopt(h, CURLOPT_USERNAME, creds->username);
            curl_easy_setopt(h, CURLOPT_PASSWORD, creds->password ? creds->password : "");
        }
    }
    curl_free(e_service);
    curl_free(e_scope);
    cleanup_free char *body = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, token_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (timeout_ms)
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK)
        return cri_error_set(err, rc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT : EIO,
                             "token server `%s`: %s", realm,
                             errbuf[0] ? errbuf : curl_easy_strerror(rc));
    if (code == 401 || code == 403)
        return cri_error_set(err, EACCES, "token server `%s`: HTTP %ld (wrong credentials?)", realm,
                             code);
    if (code != 200)
        return cri_error_set(err, EIO, "token server `%s`: HTTP %ld", realm, code);
    *ret_body = TAKE_PTR(body);
    return 0;
}

char *registry_token_key(const char *realm, const char *service, const char *scope,
                         const registry_creds_t *creds)
{
    const char *who = "anonymous";
    char hash[IMAGE_DIGEST_LEN + 1] = "";
    if (creds->username || creds->password || creds->identity_token || creds->registry_token) {
        /* a JSON array keeps the fields apart whatever bytes they hold */
        cleanup_json json_t *a = json_pack("[s?, s?, s?, s?]", creds->username, creds->password,
                                           creds->identity_token, creds->registry_token);
        cleanup_free char *text = json_dumps(a, JSON_COMPACT);
        image_digest_of(text, strlen(text), hash);
        who = hash;
    }
    return xasprintf("%s\n%s\n%s\n%s\n%s", realm, service ? service : "", scope,
                     creds->username ? creds->username : "", who);
}

bool registry_realm_trusted(const char *realm, char *const *insecure_list)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    bool ok = false;
    if (u && curl_url_set(u, CURLUPART_URL, realm, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        ok = strcasecmp(scheme, "https") == 0;
        curl_url_get(u, CURLUPART_PORT, &port, 0); /* only when the URL names one */
        cleanup_free char *hostport = port ? xasprintf("%s:%s", host, port) : xstrdup(host);
        bool http = strcasecmp(scheme, "http") == 0;
        for (char *const *p = insecure_list; http && !ok && p && *p; p++)
            ok = strcasecmp(*p, hostport) == 0;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok;
}

static int bearer(const registry_auth_ctx_t *ctx, json_t *params, const registry_creds_t *creds,
                  char **ret_authz, cri_error_t *err)
{
    const char *realm = json_string_value(json_object_get(params, "realm"));
    const char *service = json_string_value(json_object_get(params, "service"));
    const char *scope = json_string_value(json_object_get(params, "scope"));
    if (!realm || !*realm)
        return cri_error_set(err, EACCES, "bearer challenge without realm");
    cleanup_free char *def_scope = xasprintf("repository:%s:pull", ctx->repo);
    if (!scope || !*scope)
        scope = def_scope;
    static const registry_creds_t anonymous = {0};
    bool has_creds = creds->username || creds->identity_token;
    bool withheld = has_creds && !registry_realm_trusted(realm, ctx->insecure_list);
    if (withheld) /* never send secrets in clear text to a host nobody vouched for */
        creds = &anonymous;
    cleanup_free char *key = registry_token_key(realm, service, scope, creds);
    cleanup_free char *cached = registry_tokens_get(ctx->tokens, key, registry_tokens_now());
    if (cached) {
        *ret_authz = xasprintf("Bearer %s", cached);
        return 0;
    }

    cleanup_free char *body = NULL;
    if (token_request(realm, service, scope, creds, ctx->timeout_ms, &body, err) < 0) {
        if (!withheld || err->status != EACCES)
            return -1;
        cri_error_clear(err);
        return cri_error_set(err, EACCES,
                             "token server `%s` refused an anonymous request; credentials were "
                             "not sent: the realm is plain http on a host not in "
                             "image.insecure_registries",
                             realm);
    }
    json_error_t je;
    cleanup_json json_t *o = json_loads(body, 0, &je);
    const char *tok = json_string_value(json_object_get(o, "token"));
    if (!tok || !*tok)
        tok = json_string_value(json_object_get(o, "access_token"));
    if (!tok || !*tok)
        return cri_error_set(err, EACCES, "token server `%s` returned no token", realm);
    json_int_t ttl = json_integer_value(json_object_get(o, "expires_in"));
    if (ttl <= 0)
        ttl = TOKEN_DEFAULT_TTL;
    if (ttl > TOKEN_MAX_TTL)
        ttl = TOKEN_MAX_TTL; /* a hostile expires_in must not overflow */
    int64_t now = registry_tokens_now();
    registry_tokens_put(ctx->tokens, key, tok, now + ttl - TOKEN_MARGIN, now);
    *ret_authz = xasprintf("Bearer %s", tok);
    return 0;
}

int registry_authorize(const registry_auth_ctx_t *ctx, const char *challenge,
                       const registry_creds_t *creds, char **ret_authz, cri_error_t *err)
{
    cleanup_free char *scheme = NULL;
    cleanup_json json_t *params = NULL;
    if (registry_parse_challenge(challenge, &scheme, &params, err) < 0)
        return -1;
    if (strcmp(scheme, "bearer") == 0)
        return bearer(ctx, params, creds, ret_authz, err);
    if (strcmp(scheme, "basic") == 0) {
        if (!creds->username)
            return cri_error_set(err, EACCES, "registry wants credentials and none were given");
        *ret_authz = basic_value(creds->username, creds->password);
        return 0;
    }
    return cri_error_set(err, EACCES, "unsupported auth scheme `%s`", scheme);
}

/* "https://index.docker.io/v1/" -> "index.docker.io"; "host/path" -> "host". */
static bool auth_key_matches(const char *key, const char *domain)
{
    const char *k = strstr(key, "://") ? strstr(key, "://") + 3 : key;
    size_t n = strcspn(k, "/");
    if (strlen(domain) == n && strncmp(k, domain, n) == 0)
        return true;
    if (strcmp(domain, "docker.io") == 0)
        return (n == 15 && strncmp(k, "index.docker.io", n) == 0) ||
               (n == 20 && strncmp(k, "registry-1.docker.io", n) == 0);
    return false;
}

int registry_auth_file_lookup(const char *path, const char *domain, char **ret_user,
                              char **ret_pass, cri_error_t *err)
{
    *ret_user = *ret_pass = NULL;
    if (!path || !*path)
        return 0;
    json_error_t je;
    cleanup_json json_t *o = json_load_file(path, 0, &je);
    if (!o) {
        if (access(path, F_OK) < 0)
            return 0;
        return cri_error_set(err, EINVAL, "auth file `%s`: %s (line %d)", path, je.text, je.line);
    }
    const char *key;
    json_t *entry;
    json_object_foreach(json_object_get(o, "auths"), key, entry)
    {
        if (!auth_key_matches(key, domain))
            continue;
        const char *auth = json_string_value(json_object_get(entry, "auth"));
        if (auth && *auth)
            return registry_decode_auth(auth, ret_user, ret_pass, err) < 0
                       ? cri_error_wrap(err, "auth file `%s` entry `%s`", path, key)
                       : 0;
        const char *u = json_string_value(json_object_get(entry, "username"));
        const char *p = json_string_value(json_object_get(entry, "password"));
        if (u && *u) {
            *ret_user = xstrdup(u);
            *ret_pass = xstrdup(p);
            return 0;
        }
    }
    return 0;
}
