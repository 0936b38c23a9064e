/* The token cache shared by pulls (see auth.c for the keys and the rules):
 * in-memory, and exported and imported as JSON so that it outlives one
 * cricket-pull helper process (the daemon keeps the snapshot between
 * helpers). No libcurl here: the daemon links this file. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "server/image/registry/registry-internal.h"

struct registry_tokens {
    pthread_mutex_t lock;
    json_t *cache; /* key -> [token, expires (monotonic s)] */
};

int64_t registry_tokens_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

registry_tokens_t *registry_tokens_new(void)
{
    registry_tokens_t *t = xcalloc(1, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    t->cache = json_object();
    return t;
}

void registry_tokens_free(registry_tokens_t *t)
{
    if (!t)
        return;
    json_decref(t->cache);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

void registry_tokens_put(registry_tokens_t *t, const char *key, const char *token, int64_t expires,
                         int64_t now)
{
    pthread_mutex_lock(&t->lock);
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(t->cache, tmp, k, v)
    {
        if (json_integer_value(json_array_get(v, 1)) <= now)
            json_object_del(t->cache, k);
    }
    if (json_object_size(t->cache) >= REGISTRY_TOKENS_MAX)
        json_object_clear(t->cache);
    json_object_set_new(t->cache, key, json_pack("[s, I]", token, (json_int_t)expires));
    pthread_mutex_unlock(&t->lock);
}

char *registry_tokens_get(registry_tokens_t *t, const char *key, int64_t now)
{
    pthread_mutex_lock(&t->lock);
    json_t *hit = json_object_get(t->cache, key);
    const char *tok = json_string_value(json_array_get(hit, 0));
    char *out = tok && json_integer_value(json_array_get(hit, 1)) > now ? xstrdup(tok) : NULL;
    pthread_mutex_unlock(&t->lock);
    return out;
}

size_t registry_tokens_count(registry_tokens_t *t)
{
    pthread_mutex_lock(&t->lock);
    size_t n = json_object_size(t->cache);
    pthread_mutex_unlock(&t->lock);
    return n;
}

char *registry_tokens_export(registry_tokens_t *t)
{
    pthread_mutex_lock(&t->lock);
    char *out = json_dumps(t->cache, JSON_COMPACT);
    pthread_mutex_unlock(&t->lock);
    return out ? out : xstrdup("{}");
}

void registry_tokens_import(registry_tokens_t *t, const char *json, int64_t now)
{
    json_error_t jerr;
    json_t *in = json_loads(json, 0, &jerr);
    const char *k;
    json_t *v;
    json_object_foreach(in, k, v)
    {
        const char *tok = json_string_value(json_array_get(v, 0));
        json_int_t expires = json_integer_value(json_array_get(v, 1));
        if (tok && expires > now)
            registry_tokens_put(t, k, tok, expires, now);
    }
    json_decref(in);
}
