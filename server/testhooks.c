/* Test hooks for cricketd-test (see testhooks.h); read once, at first use. */
#include "testhooks.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char *slow_method; /* fixed after init, freed at exit */
static char *slow_gate;

static void free_hooks(void)
{
    free(slow_method);
    free(slow_gate);
}

static void init_hooks(void)
{
    const char *hook = getenv("CRICKET_TEST_HOOK_SLOW");
    const char *colon = hook ? strchr(hook, ':') : NULL;
    if (!colon || colon == hook || !colon[1])
        return;
    slow_method = xstrndup(hook, (size_t)(colon - hook));
    slow_gate = xstrdup(colon + 1);
    (void)atexit(free_hooks);
    log_warn("test hook active: %s waits while %s exists", slow_method, slow_gate);
}

bool testhooks_built(void)
{
    return true;
}

bool testhook_slow_method(const char *method)
{
    pthread_once(&once, init_hooks);
    return slow_method && strcmp(slow_method, method) == 0;
}

void testhook_slow_wait(const char *method, const atomic_bool *stopping)
{
    if (!testhook_slow_method(method))
        return;
    for (int i = 0; i < 12000 && !atomic_load(stopping); i++) {
        if (access(slow_gate, F_OK) < 0)
            break;
        usleep(10000);
    }
}

void testhook_streaming(bool *fake, int64_t *ttl_ms)
{
    const char *hook = getenv("CRICKET_TEST_HOOK_STREAMING");
    if (!hook || !*hook)
        return;
    cleanup_free char *copy = xstrdup(hook);
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        if (strcmp(item, "fake") == 0)
            *fake = true;
        else if (str_has_prefix(item, "ttl_ms="))
            *ttl_ms = strtoll(item + strlen("ttl_ms="), NULL, 10);
    }
    log_warn("streaming: test hook on (%s)", hook);
}

void testhook_pool_limits(size_t *threads, size_t *queued)
{
    const char *hook = getenv("CRICKET_TEST_HOOK_POOL");
    char *end = NULL;
    if (!hook || !*hook)
        return;
    unsigned long t = strtoul(hook, &end, 10);
    if (*end != ':' || t == 0)
        return;
    *threads = t;
    *queued = strtoul(end + 1, NULL, 10);
    log_warn("test hook active: pool of %zu workers, %zu queued", *threads, *queued);
}
