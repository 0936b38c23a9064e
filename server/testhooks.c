/* Test hooks for cricketd-test (see testhooks.h); read once, at first use. */
#include "testhooks.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
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

/* Every failpoint, in the order an object's life reaches them. */
static const char *const failpoints[] = {
    /* RunPodSandbox */
    "run.after_reserve",
    "run.after_netns_pin",
    "cni.add.plugin_running",
    "run.after_cni_add",
    "run.after_infra_create",
    "run.after_infra_start",
    "run.after_record",
    /* CreateContainer, StartContainer, StopContainer, RemoveContainer */
    "create.after_reserve",
    "create.after_rootfs_mount",
    "create.after_spec",
    "create.after_runc_create",
    "create.after_record",
    "start.after_runc_start",
    "start.after_record",
    "stop.after_kill",
    "stop.after_exit",
    "exit.after_runtime_delete",
    "remove.after_runc_delete",
    "remove.after_unmount",
    "remove.after_dirs",
    /* StopPodSandbox, RemovePodSandbox */
    "stop_pod.after_containers",
    "cni.del.plugin_running",
    "stop_pod.after_network",
    "stop_pod.after_unpin",
    "stop_pod.after_record",
    "remove_pod.after_containers",
    "remove_pod.after_files",
    /* PullImage */
    "pull.mid_fetch",
    "pull.before_blob_rename",
    "pull.after_blob_rename",
    "pull.mid_unpack",
    "pull.before_layer_rename",
    "pull.after_layer_rename",
    "pull.after_record",
};

static pthread_once_t fp_once = PTHREAD_ONCE_INIT;
static char *fp_name; /* fixed after init */
static long fp_nth = 1;
static atomic_long fp_hits;

static void init_failpoint(void)
{
    const char *v = getenv("CRICKET_FAILPOINT");
    if (!v || !*v)
        return;
    const char *colon = strchr(v, ':');
    fp_name = colon ? xstrndup(v, (size_t)(colon - v)) : xstrdup(v);
    if (colon)
        fp_nth = strtol(colon + 1, NULL, 10);
    if (fp_nth < 1)
        fp_nth = 1;
    log_warn("test hook active: failpoint %s (hit %ld) kills the daemon", fp_name, fp_nth);
}

static bool failpoint_known(const char *name)
{
    for (size_t i = 0; i < sizeof(failpoints) / sizeof(failpoints[0]); i++)
        if (strcmp(failpoints[i], name) == 0)
            return true;
    return false;
}

static int fp_also; /* set once before the helper serves requests */

void testhook_failpoint_kill_also(int pid)
{
    fp_also = pid;
}

void testhook_failpoint(const char *name)
{
    if (!failpoint_known(name)) {
        log_error("failpoint `%s` is not in the table of testhooks.c", name);
        abort();
    }
    pthread_once(&fp_once, init_failpoint);
    if (!fp_name || strcmp(fp_name, name) != 0)
        return;
    if (atomic_fetch_add(&fp_hits, 1) + 1 != fp_nth)
        return;
    log_warn("failpoint %s reached: SIGKILL", name);
    if (fp_also > 0)
        kill((pid_t)fp_also, SIGKILL);
    kill(getpid(), SIGKILL);
    pause(); /* not reached */
}

void testhook_failpoint_list(void)
{
    const char *v = getenv("CRICKET_FAILPOINT");
    if (!v || strcmp(v, "list") != 0)
        return;
    for (size_t i = 0; i < sizeof(failpoints) / sizeof(failpoints[0]); i++)
        printf("%s\n", failpoints[i]);
    exit(fflush(stdout) == 0 ? 0 : 1);
}
