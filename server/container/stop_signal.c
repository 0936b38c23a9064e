/* A stop signal the kernel dropped. The init of a pid namespace (a
 * container's process, unless the pod shares its pid namespace) gets no
 * signal it has left at SIG_DFL, SIGKILL aside, not even from the host: a
 * SIGTERM that lands between the container's exec and its handler setup
 * (critest stops `sh -c top` a few ms after starting it) is lost, and
 * StopContainer would sit out its whole timeout. Stop looks at the
 * process's dispositions around the send; when the signal was dropped it
 * sends it again once the process has a handler. A signal the process
 * ignores (SIG_IGN) or caught is never repeated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/container/container-internal.h"

/* The value of "key:" in a /proc/<pid>/status text, or NULL. */
static const char *status_field(const char *text, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, key, n) == 0 && p[n] == ':')
            return p + n + 1;
    return NULL;
}

static bool mask_has(const char *v, int signo)
{
    char *end = NULL;
    unsigned long long m = strtoull(v, &end, 16);
    return end != v && signo >= 1 && signo <= 64 && (m >> (signo - 1)) & 1ULL;
}

container_sig_fate_t container_sig_fate_parse(const char *status, int signo)
{
    const char *nspid = status_field(status, "NSpid");
    const char *ign = status_field(status, "SigIgn");
    const char *cgt = status_field(status, "SigCgt");
    if (!nspid || !ign || !cgt)
        return CONTAINER_SIG_UNKNOWN;
    const char *eol = strchr(nspid, '\n');
    size_t len = eol ? (size_t)(eol - nspid) : strlen(nspid);
    /* the last NSpid field is the pid in the innermost namespace */
    while (len && (nspid[len - 1] == ' ' || nspid[len - 1] == '\t'))
        len--;
    size_t start = len;
    while (start && nspid[start - 1] != ' ' && nspid[start - 1] != '\t')
        start--;
    bool init = len - start == 1 && nspid[start] == '1';
    if (mask_has(cgt, signo) || mask_has(ign, signo) || !init)
        return CONTAINER_SIG_DELIVERED;
    return CONTAINER_SIG_DROPPED;
}

container_sig_fate_t container_sig_fate(pid_t pid, int signo)
{
    if (pid <= 0)
        return CONTAINER_SIG_UNKNOWN;
    char path[64];
    (void)snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    cleanup_free char *text = NULL;
    size_t len = 0;
    cri_error_t ignore = CRI_ERROR_INIT;
    if (read_file(path, (size_t)64 * 1024, &text, &len, &ignore) < 0)
        return CONTAINER_SIG_UNKNOWN;
    return container_sig_fate_parse(text, signo);
}
