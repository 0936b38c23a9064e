/* The registry client (distribution API v2 over libcurl).
 *
 * One registry_client_t talks to one endpoint about one repository for the
 * length of a pull; blob downloads of a pull may run in several threads at
 * once (each request has its own curl handle; the Authorization value is
 * shared under a mutex). A 401 is answered once through registry_authorize()
 * and the request retried. 429, 5xx and broken connections are retried with
 * a bounded backoff (retry.c). Insecure endpoints try https without
 * verification, then fall back to plain http for good. Errors name the host,
 * the request and the HTTP status (with the registry's error code). */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "conf/conf.h"
#include "server/image/registry/registry-internal.h"

#define ERRBODY_MAX 2048

struct registry_client {
    char *host;
    char *repo;
    bool insecure;
    bool plain_http; /* decided after the first transport failure on an insecure endpoint */
    registry_creds_t creds;
    registry_tokens_t *tokens;
    uint64_t timeout_ms;        /* progress timeout; 0 = none */
    int64_t deadline_ms;        /* image_now_ms() the pull must end by; 0 = none */
    char *const *insecure_list; /* image.insecure_registries (token realms) */
    pthread_mutex_t lock;       /* authz, plain_http */
    char *authz;
};

/* Where a response body goes. */
typedef struct sink {
    CURL *h;
    char *buf; /* memory body (manifests) */
    size_t len, max;
    const registry_sink_t *w; /* or a blob */
    cri_error_t werr;
    bool werr_set;
    char errbody[ERRBODY_MAX]; /* body of a non-2xx response */
    size_t errlen;
    char *content_type;
    char *www_auth;
    char *retry_after;
    bool transient; /* the transport failure may go away (connection broke) */
} sink_t;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
}

void registry_endpoints_free(registry_endpoint_t *e, size_t n)
{
    for (size_t i = 0; e && i < n; i++) {
        free(e[i].host);
        free(e[i].prefix);
    }
    free(e);
}

static bool is_insecure(const conf_t *conf, const char *host, const char *domain)
{
    for (char **p = conf->image.insecure_registries; p && *p; p++)
        if (strcmp(*p, host) == 0 || strcmp(*p, domain) == 0)
            return true;
    return false;
}

static void add_endpoint(registry_endpoint_t *e, size_t *n, const conf_t *conf, const char *loc,
                         const char *domain)
{
    const char *slash = strchr(loc, '/');
    e[*n].host = slash ? xstrndup(loc, (size_t)(slash - loc)) : xstrdup(loc);
    e[*n].prefix = xstrdup(slash ? slash + 1 : "");
    size_t pl = strlen(e[*n].prefix);
    while (pl > 0 && e[*n].prefix[pl - 1] == '/')
        e[*n].prefix[--pl] = '\0';
    e[*n].insecure = is_insecure(conf, e[*n].host, domain);
    (*n)++;
}

registry_endpoint_t *registry_endpoints(const conf_t *conf, const char *domain, size_t *ret_n)
{
    const conf_registry_t *reg = conf_find_registry(conf, domain);
    size_t n_mirrors = 0, n = 0;
    while (reg && reg->mirrors && reg->mirrors[n_mirrors])
        n_mirrors++;
    registry_endpoint_t *e = xcalloc(n_mirrors + 1, sizeof(*e));
    for (size_t i = 0; i < n_mirrors; i++) {
        add_endpoint(e, &n, conf, reg->mirrors[i], domain);
        e[n - 1].mirror = true;
    }
    const char *loc = reg && reg->location[0] ? reg->location : domain;
    if (strcmp(loc, "docker.io") == 0)
        loc = "registry-1.docker.io";
    add_endpoint(e, &n, conf, loc, domain);
    *ret_n = n;
    return e;
}

int registry_client_new(const registry_endpoint_t *ep, const char *repo, const image_auth_t *auth,
                        registry_tokens_t *tokens, const registry_opts_t *opts,
                        registry_client_t **ret, cri_error_t *err)
{
    pthread_once(&curl_once, curl_init_once);
    registry_client_t *c = xcalloc(1, sizeof(*c));
    c->host = xstrdup(ep->host);
    c->repo = ep->prefix[0] ? xasprintf("%s/%s", ep->prefix, repo) : xstrdup(repo);
    c->insecure = ep->insecure;
    c->tokens = tokens;
    c->timeout_ms = opts->progress_timeout_ms;
    c->deadline_ms = opts->deadline_ms;
    c->insecure_list = opts->insecure_list;
    pthread_mutex_init(&c->lock, NULL);
    if (auth && auth->auth && auth->auth[0]) {
        if (registry_decode_auth(auth->auth, &c->creds.username, &c->creds.password, err) < 0) {
            registry_client_free(c);
            return -1;
        }
    } else if (auth && auth->username && auth->username[0]) {
        c->creds.username = xstrdup(auth->username);
        c->creds.password = xstrdup(auth->password);
    }
    if (auth && auth->identity_token && auth->identity_token[0])
        c->creds.identity_token = xstrdup(auth->identity_token);
    if (auth && auth->registry_token && auth->registry_token[0]) {
        c->creds.registry_token = xstrdup(auth->registry_token);
        c->authz = xasprintf("Bearer %s", auth->registry_token);
    }
    *ret = c;
    return 0;
}

void registry_client_free(registry_client_t *c)
{
    if (!c)
        return;
    free(c->host);
    free(c->repo);
    free(c->creds.username);
    free(c->creds.password);
    free(c->creds.identity_token);
    free(c->creds.registry_token);
    free(c->authz);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

const char *registry_client_host(const registry_client_t *c)
{
    return c->host;
}

int64_t registry_client_deadline(const registry_client_t *c)
{
    return c->deadline_ms;
}

/* Milliseconds left before the pull deadline: -1 = no deadline, 0 = past. */
static int64_t time_left_ms(const registry_client_t *c)
{
    if (!c->deadline_ms)
        return -1;
    int64_t left = c->deadline_ms - image_now_ms();
    return left > 0 ? left : 0;
}

static size_t on_header(char *line, size_t size, size_t n, void *data)
{
    sink_t *s = data;
    size_t len = size * n;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        free(s->content_type);
        free(s->www_auth);
        free(s->retry_after);
        s->content_type = s->www_auth = s->retry_after = NULL;
        return len;
    }
    const char *colon = memchr(line, ':', len);
    if (!colon)
        return len;
    size_t klen = (size_t)(colon - line);
    const char *v = colon + 1;
    while (v < line + len && (*v == ' ' || *v == '\t'))
        v++;
    size_t vlen = (size_t)(line + len - v);
    while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n'))
        vlen--;
    if (klen == 12 && strncasecmp(line, "Content-Type", 12) == 0) {
        free(s->content_type);
        s->content_type = xstrndup(v, vlen);
    } else if (klen == 16 && strncasecmp(line, "WWW-Authenticate", 16) == 0) {
        free(s->www_auth);
        s->www_auth = xstrndup(v, vlen);
    } else if (klen == 11 && strncasecmp(line, "Retry-After", 11) == 0) {
        free(s->retry_after);
        s->retry_after = xstrndup(v, vlen);
    }
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    sink_t *s = arg;
    size_t len = size * n;
    long code = 0;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &code);
    if (code < 200 || code > 299) {
        size_t room = ERRBODY_MAX - 1 - s->errlen;
        size_t k = len < room ? len : room;
        memcpy(s->errbody + s->errlen, data, k);
        s->errlen += k;
        return len;
    }
    if (s->w) {
        if (s->w->write(s->w->data, data, len, &s->werr) < 0) {
            s->werr_set = true;
            return 0;
        }
        return len;
    }
    if (s->len + len > s->max) {
        s->werr_set = true;
        cri_error_set(&s->werr, EBADMSG, "response larger than %zu bytes", s->max);
        return 0;
    }
    s->buf = xrealloc(s->buf, s->len + len + 1);
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    s->buf[s->len] = '\0';
    return len;
}

static void sink_reset(sink_t *s)
{
    free(s->content_type);
    free(s->www_auth);
    free(s->retry_after);
    s->content_type = s->www_auth = s->retry_after = NULL;
    s->len = 0;
    s->errlen = 0;
    s->werr_set = false;
    s->transient = false;
}

static void sink_clear(sink_t *s)
{
    sink_reset(s);
    free(s->buf);
    s->buf = NULL;
}

/* The connection broke under the request: worth another try. */
static bool curl_transient(CURLcode rc)
{
    return rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING ||
           rc == CURLE_PARTIAL_FILE || rc == CURLE_HTTP2 || rc == CURLE_HTTP2_STREAM;
}

static int curl_errno(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        return ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
        return EHOSTUNREACH;
    default:
        return EIO;
    }
}

/* One HTTP GET; *ret_code is the final status. Fails only on transport errors. */
static int http_get(registry_client_t *c, const char *url, const char *accept, sink_t *s,
                    long *ret_code, cri_error_t *err)
{
    int64_t left = time_left_ms(c);
    if (left == 0)
        return cri_error_set(err, ETIMEDOUT, "GET %s: pull deadline exceeded", url);
    CURL *h = curl_easy_init();
    if (!h)
        return cri_error_set(err, ENOMEM, "curl_easy_init");
    s->h = h;
    struct curl_slist *hdrs = NULL;
    cleanup_free char *accept_h = accept ? xasprintf("Accept: %s", accept) : NULL;
    pthread_mutex_lock(&c->lock);
    cleanup_free char *authz_h = c->authz ? xasprintf("Authorization: %s", c->authz) : NULL;
    pthread_mutex_unlock(&c->lock);
    if (accept_h)
        hdrs = curl_slist_append(hdrs, accept_h);
    if (authz_h)
        hdrs = curl_slist_append(hdrs, authz_h);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "cricket/" CRICKET_VERSION);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    if (c->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (c->timeout_ms > 0) {
        long secs = (long)((c->timeout_ms + 999) / 1000);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, secs);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms);
    }
    if (left > 0) /* the whole transfer ends with the pull's deadline */
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)left);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    s->h = NULL;
    if (rc != CURLE_OK && s->werr_set) {
        *err = s->werr;
        return -1;
    }
    s->transient = rc != CURLE_OK && curl_transient(rc);
    if (rc != CURLE_OK && left > 0 && time_left_ms(c) == 0)
        return cri_error_set(err, ETIMEDOUT, "GET %s: pull deadline exceeded", url);
    if (rc != CURLE_OK)
        return cri_error_set(err, curl_errno(rc), "GET %s: %s", url,
                             errbuf[0] ? errbuf : curl_easy_strerror(rc));
    *ret_code = code;
    return 0;
}

/* "404 Not Found (MANIFEST_UNKNOWN: manifest unknown)" style detail. */
static void status_error(const sink_t *s, long code, const char *what, cri_error_t *err)
{
    json_error_t je;
    json_t *o = json_loadb(s->errbody, s->errlen, 0, &je);
    json_t *e0 = json_array_get(json_object_get(o, "errors"), 0);
    const char *ecode = json_string_value(json_object_get(e0, "code"));
    const char *emsg = json_string_value(json_object_get(e0, "message"));
    int st = code == 404 ? ENOENT : (code == 401 || code == 403) ? EACCES : EIO;
    if (code == 429)
        st = EAGAIN;
    cri_error_set(err, st, "%s: HTTP %ld%s%s%s%s%s", what, code, ecode || emsg ? " (" : "",
                  ecode ? ecode : "", ecode && emsg ? ": " : "", emsg ? emsg : "",
                  ecode || emsg ? ")" : "");
    json_decref(o);
}

/* Answers a 401: 0 to try again with new credentials, -1 with err set. */
static int reauthorize(registry_client_t *c, const sink_t *s, long code, const char *what,
                       cri_error_t *err)
{
    cleanup_free char *authz = NULL;
    int64_t left = time_left_ms(c);
    if (left == 0)
        return cri_error_set(err, ETIMEDOUT, "%s: pull deadline exceeded", what);
    uint64_t timeout = c->timeout_ms;
    if (left > 0 && (timeout == 0 || (uint64_t)left < timeout))
        timeout = (uint64_t)left;
    registry_auth_ctx_t actx = {c->tokens, c->repo, c->insecure_list, timeout};
    if (registry_authorize(&actx, s->www_auth, &c->creds, &authz, err) < 0)
        return cri_error_wrap(err, "%s: HTTP 401", what);
    pthread_mutex_lock(&c->lock);
    bool same = c->authz && strcmp(c->authz, authz) == 0;
    free(c->authz);
    c->authz = TAKE_PTR(authz);
    pthread_mutex_unlock(&c->lock);
    if (same) { /* the registry refused what it asked for */
        status_error(s, code, what, err);
        return -1;
    }
    return 0;
}

/* A failed try: waits and returns true when another is allowed (retry.c),
 * never past the pull deadline. */
static bool retry_after_wait(const registry_client_t *c, const sink_t *s, int *tries)
{
    if (++*tries >= REGISTRY_ATTEMPTS)
        return false;
    uint64_t ms = registry_retry_delay_ms(*tries - 1, s->retry_after, time(NULL));
    int64_t left = time_left_ms(c);
    if (left >= 0 && ms >= (uint64_t)left)
        return false;
    registry_retry_sleep(ms);
    return true;
}

/* GET /v2/<repo>/<kind>/<ref> with an auth round for a 401, the http
 * fallback of insecure endpoints, and retries of transient failures. */
static int request(registry_client_t *c, const char *kind, const char *ref, const char *accept,
                   sink_t *s, cri_error_t *err)
{
    cleanup_free char *what = xasprintf("GET `%s` from `%s`", ref, c->host);
    int tries = 0, auth_rounds = 0;
    for (;;) {
        pthread_mutex_lock(&c->lock);
        const char *scheme = c->plain_http ? "http" : "https";
        pthread_mutex_unlock(&c->lock);
        cleanup_free char *url =
            xasprintf("%s://%s/v2/%s/%s/%s", scheme, c->host, c->repo, kind, ref);
        long code = 0;
        sink_reset(s);
        if (s->w && s->w->reset(s->w->data, err) < 0)
            return -1;
        cri_error_t gerr = CRI_ERROR_INIT; /* err stays untouched on success */
        if (http_get(c, url, accept, s, &code, &gerr) < 0) {
            bool fallback =
                c->insecure && strcmp(scheme, "https") == 0 && !s->werr_set && gerr.status == EIO;
            if (fallback) {
                pthread_mutex_lock(&c->lock);
                c->plain_http = true;
                pthread_mutex_unlock(&c->lock);
                continue;
            }
            if (s->transient && retry_after_wait(c, s, &tries))
                continue;
            *err = gerr;
            return cri_error_wrap(err, "%s", what);
        }
        if (code >= 200 && code <= 299)
            return 0;
        if (registry_retryable_status(code) && retry_after_wait(c, s, &tries))
            continue;
        if (code != 401 || auth_rounds++ == 2 || !s->www_auth) {
            status_error(s, code, what, err);
            return -1;
        }
        if (reauthorize(c, s, code, what, err) < 0)
            return -1;
    }
}

int registry_get_manifest(registry_client_t *c, const char *ref, const char *accept,
                          char **ret_body, size_t *ret_len, char **ret_type, cri_error_t *err)
{
    sink_t s = {.max = IMAGE_MAX_MANIFEST};
    if (request(c, "manifests", ref, accept, &s, err) < 0) {
        sink_clear(&s);
        return -1;
    }
    *ret_body = s.buf ? s.buf : xstrdup("");
    *ret_len = s.len;
    *ret_type = s.content_type ? xstrdup(s.content_type) : xstrdup("");
    s.buf = NULL;
    sink_clear(&s);
    return 0;
}

int registry_get_blob(registry_client_t *c, const char *digest, const registry_sink_t *sink,
                      cri_error_t *err)
{
    sink_t s = {.w = sink};
    int r = request(c, "blobs", digest, NULL, &s, err);
    sink_clear(&s);
    return r;
}
