/* Signal names and the CRI Signal enum. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/container/container.h"

/* CRI Signal enum values 1..34, in order (api.proto). */
static const struct {
    const char *name;
    int signo;
} signals[] = {
    {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"BUS", SIGBUS},       {"CHLD", SIGCHLD},
    {"CLD", SIGCHLD},  {"CONT", SIGCONT}, {"FPE", SIGFPE},       {"HUP", SIGHUP},
    {"ILL", SIGILL},   {"INT", SIGINT},   {"IO", SIGIO},         {"IOT", SIGIOT},
    {"KILL", SIGKILL}, {"PIPE", SIGPIPE}, {"POLL", SIGPOLL},     {"PROF", SIGPROF},
    {"PWR", SIGPWR},   {"QUIT", SIGQUIT}, {"SEGV", SIGSEGV},     {"STKFLT", SIGSTKFLT},
    {"STOP", SIGSTOP}, {"SYS", SIGSYS},   {"TERM", SIGTERM},     {"TRAP", SIGTRAP},
    {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"VTALRM", SIGVTALRM}, {"WINCH", SIGWINCH},
    {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
};
#define N_SIGNALS (sizeof(signals) / sizeof(signals[0]))

int container_signal_parse(const char *s, int *ret, cri_error_t *err)
{
    const char *name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
    for (size_t i = 0; i < N_SIGNALS; i++) {
        if (strcasecmp(signals[i].name, name) == 0) {
            *ret = signals[i].signo;
            return 0;
        }
    }
    char *end = NULL;
    errno = 0;
    long n = strtol(s, &end, 10);
    if (errno || end == s || *end || n <= 0 || n > SIGRTMAX)
        return cri_error_set(err, EINVAL, "unknown signal `%s`", s);
    *ret = (int)n;
    return 0;
}

int container_signal_from_cri(int cri)
{
    if (cri >= 1 && (size_t)cri <= N_SIGNALS)
        return signals[cri - 1].signo;
    return 0;
}

int container_signal_to_cri(int signo)
{
    for (size_t i = 0; i < N_SIGNALS; i++)
        if (signals[i].signo == signo)
            return (int)i + 1;
    return 0;
}
