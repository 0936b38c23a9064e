/* cricket-pull: the helper process that runs image pulls for cricketd
 * (the daemon's side and the protocol are in store/remote.c). It holds the
 * registry client (libcurl) and the layer unpacker (libarchive), which the
 * daemon does not link, and it is where untrusted input (manifests, configs,
 * tar streams, HTTP) is parsed, so it runs confined (pull_sandbox.c):
 * no_new_privs, only the capabilities that writing layer trees needs, and a
 * seccomp filter.
 *
 * It reads the startup config from the first message on fd 3, opens the
 * store on the same root (this sweeps ingest/ and layers/tmp/: the daemon
 * starts a helper only when no other one lives and no GC runs), then runs
 * every request in a thread of its own through image_store_pull(). When
 * the daemon shuts the socket with no pull running, it exits 0; when the
 * socket closes while pulls run, the daemon died: it exits at once (what
 * it leaves is swept by the next helper). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "conf/conf.h"
#include "server/image/pull_helper.h"
#include "server/image/store/image_store.h"
#include "server/store.h"
#include "server/testhooks.h"

#define FD_CONTROL 3
#define MSG_MAX (4u << 20)
#define TOKENS_MAX_SEND (64u << 10)

typedef struct helper {
    image_store_t *images;
    pthread_mutex_t lock; /* the two below and sending */
    int running;
} helper_t;

typedef struct job {
    helper_t *h;
    json_t *req;
} job_t;

/* Every layer is in use as far as this process knows: only the daemon knows
 * the containers, so only the daemon's GC deletes layers. */
static bool keep_layers(const char *chain_id, void *data)
{
    return true;
}

static void reply(helper_t *h, json_t *m)
{
    cleanup_free char *text = json_dumps(m, JSON_COMPACT);
    pthread_mutex_lock(&h->lock);
    if (text && send(FD_CONTROL, text, strlen(text), MSG_NOSIGNAL) < 0)
        _exit(3); /* the daemon is gone */
    h->running--;
    pthread_mutex_unlock(&h->lock);
}

static void *run_job(void *arg)
{
    job_t *j = arg;
    json_t *r = j->req;
    json_t *a = json_object_get(r, "auth");
    image_auth_t auth = {
        .username = json_string_value(json_object_get(a, "username")),
        .password = json_string_value(json_object_get(a, "password")),
        .auth = json_string_value(json_object_get(a, "auth")),
        .identity_token = json_string_value(json_object_get(a, "identity_token")),
        .registry_token = json_string_value(json_object_get(a, "registry_token")),
    };
    const char *ref = json_string_value(json_object_get(r, "ref"));
    int64_t timeout_ms = json_integer_value(json_object_get(r, "timeout_ms"));
    cleanup_free char *id = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    int rc = ref ? image_store_pull(j->h->images, ref, a ? &auth : NULL, timeout_ms, &id, &err)
                 : cri_error_set(&err, EINVAL, "pull request without a reference");
    cleanup_free char *tokens = image_store_tokens_export(j->h->images);
    json_t *out = json_pack("{s:O}", "id", json_object_get(r, "id"));
    /* one packet must fit the socket buffer (wmem_max, ~208 KiB): a cache
     * past TOKENS_MAX_SEND stays here (the next helper asks again) */
    if (strlen(tokens) <= TOKENS_MAX_SEND)
        json_object_set_new(out, "tokens", json_string(tokens));
    if (rc == 0) {
        json_object_set_new(out, "image_id", json_string(id));
    } else {
        json_object_set_new(out, "status", json_integer(err.status));
        json_object_set_new(out, "msg", json_string(err.msg));
    }
    reply(j->h, out);
    json_decref(out);
    json_decref(r);
    free(j);
    return NULL;
}

/* Applies a "settings" config (a SIGHUP reload in the daemon). */
static int apply_settings(helper_t *h, const char *yaml, cri_error_t *err)
{
    conf_t *c = conf_new_defaults(NULL);
    if (conf_load_buffer(c, "settings", yaml, strlen(yaml), err) < 0) {
        conf_free(c);
        return -1;
    }
    image_store_reconfigure(h->images, c);
    return 0;
}

static int start_job(helper_t *h, json_t *req, cri_error_t *err)
{
    const char *tokens = json_string_value(json_object_get(req, "tokens"));
    if (tokens)
        image_store_tokens_import(h->images, tokens);
    const char *settings = json_string_value(json_object_get(req, "settings"));
    if (settings && apply_settings(h, settings, err) < 0)
        return -1;
    job_t *j = xcalloc(1, sizeof(*j));
    j->h = h;
    j->req = json_incref(req);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&h->lock);
    h->running++;
    pthread_mutex_unlock(&h->lock);
    pthread_t t;
    int rc = pthread_create(&t, &attr, run_job, j);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        json_decref(j->req);
        free(j);
        pthread_mutex_lock(&h->lock);
        h->running--;
        pthread_mutex_unlock(&h->lock);
        return cri_error_make(err, rc, "start pull thread");
    }
    return 0;
}

/* Serves requests until the daemon shuts the socket. */
static int serve(helper_t *h, char *buf)
{
    for (;;) {
        ssize_t n = recv(FD_CONTROL, buf, MSG_MAX, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        json_error_t jerr;
        cleanup_json json_t *req = json_loadb(buf, (size_t)n, 0, &jerr);
        cri_error_t err = CRI_ERROR_INIT;
        if (!req || start_job(h, req, &err) < 0) {
            cleanup_json json_t *out =
                json_pack("{s:O?, s:i, s:s}", "id", json_object_get(req, "id"), "status",
                          req ? err.status : EINVAL, "msg", req ? err.msg : "malformed request");
            pthread_mutex_lock(&h->lock);
            h->running++;
            pthread_mutex_unlock(&h->lock);
            reply(h, out);
        }
    }
    pthread_mutex_lock(&h->lock);
    int running = h->running;
    pthread_mutex_unlock(&h->lock);
    return running;
}

/* The startup config from the first message. */
static conf_t *read_conf(char *buf, cri_error_t *err)
{
    ssize_t n;
    while ((n = recv(FD_CONTROL, buf, MSG_MAX, 0)) < 0 && errno == EINTR)
        ;
    if (n <= 0) {
        cri_error_make(err, n == 0 ? EPIPE : errno, "read config from the daemon");
        return NULL;
    }
    json_error_t jerr;
    cleanup_json json_t *m = json_loadb(buf, (size_t)n, 0, &jerr);
    const char *yaml = json_string_value(json_object_get(m, "conf"));
    if (!yaml) {
        cri_error_set(err, EINVAL, "first message from the daemon carries no config");
        return NULL;
    }
    conf_t *c = conf_new_defaults(NULL);
    if (conf_load_buffer(c, "daemon config", yaml, strlen(yaml), err) < 0) {
        conf_free(c);
        return NULL;
    }
    return c;
}

static int run(char *buf, cri_error_t *err)
{
    cleanup_conf conf_t *conf = read_conf(buf, err);
    if (!conf)
        return -1;
    int lvl = log_level_parse(conf->log_level);
    if (lvl >= 0)
        log_set_level((log_level_t)lvl);
    if (pull_sandbox_enter(err) < 0)
        return -1;
    testhook_failpoint_kill_also((int)getppid());
    cleanup_free char *meta = xasprintf("%s/meta", conf->root);
    cleanup_store store_t *store = NULL;
    if (store_open(meta, &store, err) < 0)
        return -1;
    helper_t h = {.running = 0};
    pthread_mutex_init(&h.lock, NULL);
    if (image_store_open(conf, store, &h.images, err) < 0)
        return -1;
    image_store_set_in_use_fn(h.images, keep_layers, NULL);
    if (serve(&h, buf) > 0)
        _exit(2); /* the daemon died with pulls running: stop writing now */
    image_store_close(h.images);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        (void)fprintf(stderr, "cricket-pull: started by cricketd only (no arguments)\n");
        return 2;
    }
    char *buf = xmalloc(MSG_MAX);
    cri_error_t err = CRI_ERROR_INIT;
    int rc = run(buf, &err);
    free(buf);
    if (rc < 0) {
        log_error("cricket-pull: %s", err.msg);
        return 1;
    }
    return 0;
}
