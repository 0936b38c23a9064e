/* Retry policy of registry requests: which failures are worth another try,
 * and how long to wait before it.
 *
 * A request is tried at most REGISTRY_ATTEMPTS times. Retried: HTTP 429 and
 * 5xx (but 501 and 505, which will not change), and transport failures
 * where the connection broke (reset, closed early, nothing received).
 * Never retried: other 4xx (401 has its own auth round), timeouts (the
 * progress timeout already waited), refused connections and writer errors
 * (digest mismatch, ENOSPC). The wait doubles from REGISTRY_RETRY_BASE_MS;
 * a Retry-After header (seconds or an HTTP date) asks for longer, and every
 * wait is capped at REGISTRY_RETRY_MAX_MS so a pull never hangs on it. */
#include <curl/curl.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "server/image/registry/registry-internal.h"

bool registry_retryable_status(long code)
{
    return code == 429 || (code >= 500 && code <= 599 && code != 501 && code != 505);
}

/* Seconds a Retry-After value asks for; -1 when absent or unparsable. */
static int64_t retry_after_s(const char *v, int64_t now)
{
    if (!v || !*v)
        return -1;
    size_t digits = strspn(v, "0123456789");
    if (digits > 0 && v[digits + strspn(v + digits, " \t")] == '\0') {
        int64_t s = 0;
        for (size_t i = 0; i < digits && s < REGISTRY_RETRY_MAX_MS; i++)
            s = s * 10 + (v[i] - '0');
        return s;
    }
    time_t when = curl_getdate(v, NULL);
    if (when == (time_t)-1)
        return -1;
    return when > now ? (int64_t)when - now : 0;
}

uint64_t registry_retry_delay_ms(int attempt, const char *retry_after, int64_t now)
{
    uint64_t ms = (uint64_t)REGISTRY_RETRY_BASE_MS << (attempt < 10 ? attempt : 10);
    int64_t ra = retry_after_s(retry_after, now);
    if (ra >= 0 && (uint64_t)ra * 1000 > ms)
        ms = (uint64_t)ra * 1000;
    return ms > REGISTRY_RETRY_MAX_MS ? REGISTRY_RETRY_MAX_MS : ms;
}

int64_t image_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void registry_retry_sleep(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}
