/* image_store_pull_remote(): the daemon's side of the cricket-pull helper
 * (server/image/pull_helper.c). The registry client (libcurl) and the layer
 * unpack (libarchive) run in that helper process, so the daemon links
 * neither and untrusted input is parsed outside it.
 *
 * One helper at a time, alive while pulls run: the first pull spawns it,
 * every pull is a request on the same SOCK_SEQPACKET socket (the helper runs
 * each in a thread of its own, so a layer another pull fetches is waited
 * for, as before), and once no pull has run for PULL_HELPER_LINGER_MS the
 * monitor shuts the socket: the helper exits. The linger spares a burst of
 * pulls (kubelet pulls one image after the other) a helper start each
 * (exec, loading libcurl, libarchive and their chains, opening the store:
 * ~25 ms, bench/pull_helper_bench.py). The helper commits each image record itself (LMDB
 * serves several processes; the daemon keeps no record in memory, every
 * lookup reads LMDB, so it sees the record at once). A monitor thread,
 * alive as long as the helper, reads the replies and reaps it; a helper
 * that dies fails the pulls it ran with EIO naming how it died, and its
 * leftovers (ingest/, layers/tmp/) are swept by the next helper when it
 * opens the store, the rest by the daemon's GC after the failed pull.
 *
 * Protocol (JSON, one message per packet):
 *   daemon -> helper, first:  {"conf": "<startup config YAML>"}
 *   daemon -> helper:         {"id": N, "ref": s, "auth": {...}?, "timeout_ms": n,
 *                              "tokens": "<token cache export>", "settings": "<YAML>"?}
 *   helper -> daemon:         {"id": N, "image_id": s, "tokens": s}
 *                          or {"id": N, "status": errno, "msg": s, "tokens": s}
 * "settings" is the config a SIGHUP loaded (registries, insecure registries,
 * auth file), sent until the helper has it. The token cache lives in the
 * daemon between helpers, so a later pull reuses a token as before. */
#include <errno.h>
#include <limits.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "conf/conf.h"
#include "server/image/store/store-internal.h"
#include "server/testhooks.h"

extern char **environ;

#define REMOTE_MSG_MAX (4u << 20)
#define PULL_HELPER_LINGER_MS 2000

typedef struct pending {
    uint64_t id;
    const char *ref;
    bool done;
    int status;
    char *msg;
    char *image_id;
    struct pending *next;
} pending_t;

typedef enum { HELPER_NONE, HELPER_RUNNING, HELPER_EXITING } helper_state_t;

struct pull_remote {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    helper_state_t state;
    pid_t pid;
    int fd;
    int users;
    int64_t idle_since; /* mono_ms() when users last fell to 0 */
    uint64_t next_id;
    pending_t *pending;
    char *tokens;              /* the helper's last token cache export */
    const void *sent_settings; /* the settings the helper has */
    char *path;                /* the helper binary */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* cricket-pull (cricket-pull-test for cricketd-test) beside the running
 * binary when it is there (a build tree), else in the libexec dir. */
static char *helper_path(void)
{
    const char *name = testhooks_built() ? "cricket-pull-test" : "cricket-pull";
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n > 0) {
        buf[n] = '\0';
        char *p = xasprintf("%s/%s", dirname(buf), name);
        if (access(p, X_OK) == 0)
            return p;
        free(p);
    }
    return xasprintf("%s/%s", CRICKET_LIBEXECDIR, name);
}

pull_remote_t *pull_remote_new(void)
{
    pull_remote_t *r = xcalloc(1, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->fd = -1;
    r->tokens = xstrdup("{}");
    r->path = helper_path();
    return r;
}

int pull_remote_check(pull_remote_t *r, cri_error_t *err)
{
    if (access(r->path, X_OK) < 0)
        return cri_error_make(err, errno, "pull helper `%s`", r->path);
    return 0;
}

static void fail_pending(pull_remote_t *r, const char *why)
{
    for (pending_t *p = r->pending; p; p = p->next) {
        if (p->done)
            continue;
        p->done = true;
        p->status = EIO;
        p->msg = xasprintf("pull `%s`: pull helper `%s` %s", p->ref, r->path, why);
    }
}

static void on_reply(pull_remote_t *r, const char *buf, size_t len)
{
    json_error_t jerr;
    cleanup_json json_t *m = json_loadb(buf, len, 0, &jerr);
    json_int_t id = json_integer_value(json_object_get(m, "id"));
    const char *tokens = json_string_value(json_object_get(m, "tokens"));
    pthread_mutex_lock(&r->lock);
    if (tokens)
        str_set(&r->tokens, tokens);
    for (pending_t *p = r->pending; p; p = p->next) {
        if (p->id != (uint64_t)id || p->done)
            continue;
        const char *image_id = json_string_value(json_object_get(m, "image_id"));
        if (image_id) {
            p->image_id = xstrdup(image_id);
        } else {
            p->status = (int)json_integer_value(json_object_get(m, "status"));
            const char *msg = json_string_value(json_object_get(m, "msg"));
            p->msg = xstrdup(msg ? msg : "pull helper: malformed reply");
            if (p->status <= 0)
                p->status = EIO;
        }
        p->done = true;
    }
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* No pull for the linger: the helper is told to exit (it closes its end). */
static void linger_check(pull_remote_t *r)
{
    pthread_mutex_lock(&r->lock);
    if (r->state == HELPER_RUNNING && r->users == 0 &&
        mono_ms() - r->idle_since >= PULL_HELPER_LINGER_MS) {
        shutdown(r->fd, SHUT_WR);
        r->state = HELPER_EXITING;
    }
    pthread_mutex_unlock(&r->lock);
}

/* Reads replies until the helper closes its end, then reaps it. */
static void *monitor(void *arg)
{
    pull_remote_t *r = arg;
    pthread_mutex_lock(&r->lock);
    int fd = r->fd;
    pid_t pid = r->pid;
    pthread_mutex_unlock(&r->lock);
    char *buf = xmalloc(REMOTE_MSG_MAX);
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, PULL_HELPER_LINGER_MS);
        if (pr == 0) {
            linger_check(r);
            continue;
        }
        if (pr < 0 && errno == EINTR)
            continue;
        ssize_t n = pr < 0 ? -1 : recv(fd, buf, REMOTE_MSG_MAX, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            break;
        on_reply(r, buf, (size_t)n);
    }
    free(buf);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    cleanup_free char *why = WIFSIGNALED(status)
                                 ? xasprintf("was killed by signal %d", WTERMSIG(status))
                                 : xasprintf("exited with status %d", WEXITSTATUS(status));
    pthread_mutex_lock(&r->lock);
    fail_pending(r, why);
    if (r->state != HELPER_EXITING || WIFSIGNALED(status) || WEXITSTATUS(status) != 0)
        log_warn("pull helper %d %s", (int)pid, why);
    close(r->fd);
    r->fd = -1;
    r->pid = 0;
    r->state = HELPER_NONE;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static int send_msg(int fd, json_t *m, cri_error_t *err)
{
    cleanup_free char *text = json_dumps(m, JSON_COMPACT);
    if (!text)
        return cri_error_set(err, ENOMEM, "encode pull request");
    if (strlen(text) > REMOTE_MSG_MAX)
        return cri_error_set(err, EINVAL, "pull request is too large");
    if (send(fd, text, strlen(text), MSG_NOSIGNAL) < 0)
        return cri_error_make(err, errno, "send to pull helper");
    return 0;
}

/* Starts the helper; r->lock held, state NONE. */
static int spawn_helper(image_store_t *s, pull_remote_t *r, cri_error_t *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return cri_error_make(err, errno, "pull helper: socketpair");
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {r->path, NULL};
    pid_t pid = 0;
    int rc = posix_spawn(&pid, r->path, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        /* EIO: a missing helper is no missing image (ENOENT = NOT_FOUND) */
        return cri_error_set(err, EIO, "start pull helper `%s`: %s", r->path, strerror(rc));
    }
    r->fd = sv[0];
    r->pid = pid;
    r->state = HELPER_RUNNING;
    r->idle_since = mono_ms();
    r->sent_settings = NULL;
    cleanup_free char *yaml = conf_to_yaml(s->conf, err);
    cleanup_json json_t *hello = yaml ? json_pack("{s:s}", "conf", yaml) : NULL;
    pthread_t t;
    if (!hello || send_msg(r->fd, hello, err) < 0 ||
        (rc = pthread_create(&t, NULL, monitor, r)) != 0) {
        if (hello && rc != 0)
            cri_error_make(err, rc, "pull helper: monitor thread");
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        close(r->fd);
        r->fd = -1;
        r->state = HELPER_NONE;
        return cri_error_wrap(err, "start pull helper `%s`", r->path);
    }
    pthread_detach(t);
    return 0;
}

static json_t *auth_json(const image_auth_t *a)
{
    json_t *o = json_object();
    const char *keys[] = {"username", "password", "auth", "identity_token", "registry_token"};
    const char *vals[] = {a->username, a->password, a->auth, a->identity_token, a->registry_token};
    for (size_t i = 0; i < 5; i++)
        if (vals[i])
            json_object_set_new(o, keys[i], json_string(vals[i]));
    return o;
}

/* The request for p; r->lock held. */
static json_t *request(image_store_t *s, pull_remote_t *r, const pending_t *p, const char *ref,
                       const image_auth_t *auth, int64_t client_timeout_ms, cri_error_t *err)
{
    json_t *m = json_pack("{s:I, s:s, s:I, s:s}", "id", (json_int_t)p->id, "ref", ref, "timeout_ms",
                          (json_int_t)client_timeout_ms, "tokens", r->tokens);
    if (!m) {
        cri_error_set(err, EINVAL, "pull request: reference or tokens are not UTF-8");
        return NULL;
    }
    if (auth)
        json_object_set_new(m, "auth", auth_json(auth));
    image_settings_t *st = image_settings_get(s);
    if (st->owned && r->sent_settings != st) {
        cleanup_free char *yaml = conf_to_yaml(st->conf, err);
        if (!yaml) {
            image_settings_put(s, st);
            json_decref(m);
            return NULL;
        }
        json_object_set_new(m, "settings", json_string(yaml));
        r->sent_settings = st;
    }
    image_settings_put(s, st);
    return m;
}

/* Sends the request and waits for its reply; r->lock held. */
static int run_remote(image_store_t *s, pull_remote_t *r, pending_t *p, const char *ref,
                      const image_auth_t *auth, int64_t client_timeout_ms, cri_error_t *err)
{
    while (r->state == HELPER_EXITING)
        pthread_cond_wait(&r->cond, &r->lock);
    if (r->state == HELPER_NONE && spawn_helper(s, r, err) < 0)
        return cri_error_wrap(err, "pull `%s`", ref);
    r->users++;
    p->id = ++r->next_id;
    p->next = r->pending;
    r->pending = p;
    cleanup_json json_t *m = request(s, r, p, ref, auth, client_timeout_ms, err);
    int ret = m ? send_msg(r->fd, m, err) : -1;
    if (ret == 0) {
        while (!p->done)
            pthread_cond_wait(&r->cond, &r->lock);
    }
    for (pending_t **q = &r->pending; *q; q = &(*q)->next) {
        if (*q == p) {
            *q = p->next;
            break;
        }
    }
    if (--r->users == 0)
        r->idle_since = mono_ms(); /* the monitor ends the helper past the linger */
    return ret;
}

int image_store_pull_remote(image_store_t *s, const char *ref, const image_auth_t *auth,
                            int64_t client_timeout_ms, char **ret_id, cri_error_t *err)
{
    pull_remote_t *r = s->remote;
    pending_t p = {.ref = ref};
    image_store_pull_begin(s); /* no daemon GC while the helper pulls */
    pthread_mutex_lock(&r->lock);
    int ret = run_remote(s, r, &p, ref, auth, client_timeout_ms, err);
    pthread_mutex_unlock(&r->lock);
    if (ret == 0 && !p.image_id) {
        cri_error_set(err, p.status, "%s", p.msg);
        ret = -1;
    }
    image_store_pull_end(s, ret < 0);
    if (ret == 0)
        *ret_id = TAKE_PTR(p.image_id);
    free(p.image_id);
    free(p.msg);
    return ret;
}

void pull_remote_free(pull_remote_t *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    if (r->state == HELPER_RUNNING) {
        shutdown(r->fd, SHUT_WR); /* a lingering helper: no pull runs any more */
        r->state = HELPER_EXITING;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    while (r->state != HELPER_NONE) {
        if (pthread_cond_timedwait(&r->cond, &r->lock, &until) == ETIMEDOUT) {
            kill(r->pid, SIGKILL); /* the monitor reaps it */
            until.tv_sec += 3600;
        }
    }
    pthread_mutex_unlock(&r->lock);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r->tokens);
    free(r->path);
    free(r);
}

int image_store_check_pull_helper(image_store_t *s, cri_error_t *err)
{
    return pull_remote_check(s->remote, err);
}

char *image_store_tokens_export(image_store_t *s)
{
    return registry_tokens_export(s->tokens);
}

void image_store_tokens_import(image_store_t *s, const char *json)
{
    registry_tokens_import(s->tokens, json, registry_tokens_now());
}
