/* The production twin of testhooks.c: no hook, no environment read. */
#include "testhooks.h"

bool testhooks_built(void)
{
    return false;
}

bool testhook_slow_method(const char *method)
{
    return false;
}

void testhook_slow_wait(const char *method, const atomic_bool *stopping)
{
}

void testhook_streaming(bool *fake, int64_t *ttl_ms)
{
}

void testhook_pool_limits(size_t *threads, size_t *queued)
{
}

void testhook_failpoint(const char *name)
{
}

void testhook_failpoint_kill_also(int pid)
{
}

void testhook_failpoint_list(void)
{
}
