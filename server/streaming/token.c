/* The token store: random, single-use, short-lived tokens, each standing
 * for one copied CRI request (cri-streaming's request cache does the same
 * job). Tokens are 16 bytes from getrandom(2), base64url without padding.
 * The store is bounded: inserting past the bound evicts the oldest token. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/streaming/streaming-internal.h"

#define TOKEN_BYTES 16
#define TOKEN_CHARS 22 /* ceil(16 * 4 / 3) without padding */

typedef struct token_entry {
    char token[TOKEN_CHARS + 1];
    int64_t expires_ns;
    streaming_request_t *req;
} token_entry_t;

struct token_store {
    pthread_mutex_t lock;
    token_entry_t *v; /* oldest first */
    size_t n, max;
    int64_t ttl_ns;
    streaming_clock_fn clock;
    void *clock_data;
};

void streaming_request_free(streaming_request_t *r)
{
    if (!r)
        return;
    free(r->container_id);
    free(r->pod_id);
    free(r->netns_path);
    strv_free(r->cmd);
    free(r->ports);
    free(r);
}

static int64_t monotonic_ns(void *data)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

token_store_t *token_store_new(int64_t ttl_ms, size_t max, streaming_clock_fn clock,
                               void *clock_data)
{
    token_store_t *t = xcalloc(1, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    t->max = max ? max : STREAMING_MAX_TOKENS;
    t->ttl_ns = (ttl_ms > 0 ? ttl_ms : STREAMING_TOKEN_TTL_MS) * 1000000;
    t->clock = clock ? clock : monotonic_ns;
    t->clock_data = clock_data;
    t->v = xcalloc(t->max, sizeof(*t->v));
    return t;
}

void token_store_free(token_store_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        streaming_request_free(t->v[i].req);
    free(t->v);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static void remove_at(token_store_t *t, size_t i)
{
    streaming_request_free(t->v[i].req);
    memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(*t->v));
    t->n--;
}

/* Drops expired entries; the array is in insertion (= expiry) order. */
static void expire_locked(token_store_t *t, int64_t now)
{
    size_t k = 0;
    while (k < t->n && t->v[k].expires_ns <= now)
        k++;
    for (size_t i = 0; i < k; i++)
        streaming_request_free(t->v[i].req);
    memmove(t->v, t->v + k, (t->n - k) * sizeof(*t->v));
    t->n -= k;
}

static void encode_token(const uint8_t *raw, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < TOKEN_BYTES; i++) {
        acc = (acc << 8) | raw[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = alphabet[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = alphabet[(acc << (6 - bits)) & 63];
    out[o] = '\0';
}

int token_store_insert(token_store_t *t, streaming_request_t *r, char **ret_token, cri_error_t *err)
{
    uint8_t raw[TOKEN_BYTES];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t k = getrandom(raw + got, sizeof(raw) - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            streaming_request_free(r);
            return cri_error_make(err, errno, "getrandom");
        }
        got += (size_t)k;
    }
    pthread_mutex_lock(&t->lock);
    int64_t now = t->clock(t->clock_data);
    expire_locked(t, now);
    if (t->n == t->max)
        remove_at(t, 0); /* bounded: the oldest goes */
    token_entry_t *e = &t->v[t->n++];
    encode_token(raw, e->token);
    e->expires_ns = now + t->ttl_ns;
    e->req = r;
    *ret_token = xstrdup(e->token);
    pthread_mutex_unlock(&t->lock);
    return 0;
}

/* Compares without an early exit, so timing tells nothing of a prefix. */
static bool token_equal(const char *a, const char *b)
{
    if (strlen(b) != TOKEN_CHARS)
        return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < TOKEN_CHARS; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

streaming_request_t *token_store_consume(token_store_t *t, const char *token)
{
    streaming_request_t *r = NULL;
    pthread_mutex_lock(&t->lock);
    expire_locked(t, t->clock(t->clock_data));
    for (size_t i = 0; i < t->n; i++) {
        if (token_equal(t->v[i].token, token)) {
            r = t->v[i].req;
            t->v[i].req = NULL;
            remove_at(t, i);
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return r;
}

size_t token_store_count(token_store_t *t)
{
    pthread_mutex_lock(&t->lock);
    expire_locked(t, t->clock(t->clock_data));
    size_t n = t->n;
    pthread_mutex_unlock(&t->lock);
    return n;
}
