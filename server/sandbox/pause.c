/* cricket-pause: the process of every pod's infra container.
 *
 * It holds the pod's namespaces open by existing. As PID 1 of a shared pod
 * PID namespace it reaps the zombies the kernel hands it. SIGTERM and SIGINT
 * end it with status 0; nothing else does (SIGKILL aside). No allocation, no
 * stdio, linked statically: it exists once per pod. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A handler, not SIG_DFL: the kernel drops default-action signals sent to a
 * namespace's init. The signals stay blocked and are taken by sigwaitinfo. */
static void pause_noop(int sig)
{
    (void)sig;
}

static void pause_reap(void)
{
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        static const char msg[] = "cricket-pause " CRICKET_VERSION "\n";
        return write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = pause_noop;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
        sigaction(SIGCHLD, &sa, NULL) < 0)
        return 1;
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return 1;

    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&set, &info);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        if (sig == SIGCHLD) {
            pause_reap();
            continue;
        }
        pause_reap();
        return 0;
    }
}
