/* image_store_pull(): manifest -> platform manifest -> config -> layers ->
 * record. Endpoints (mirrors, then the location) are tried in order; the
 * first that serves the whole image wins, and the error of the last one is
 * returned when none does. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "conf/conf.h"
#include "server/image/store/store-internal.h"
#include "server/testhooks.h"

static void manifest_freep(manifest_t **m)
{
    manifest_free(*m);
}
#define cleanup_manifest __attribute__((cleanup(manifest_freep)))

/* GETs a manifest; checks its digest when asked by digest. */
static int get_manifest(registry_client_t *c, const char *ref, char **ret_body, size_t *ret_len,
                        char **ret_type, char ret_digest[IMAGE_DIGEST_LEN + 1], cri_error_t *err)
{
    cleanup_free char *body = NULL, *type = NULL;
    size_t len = 0;
    if (registry_get_manifest(c, ref, manifest_accept, &body, &len, &type, err) < 0)
        return -1;
    char got[IMAGE_DIGEST_LEN + 1];
    image_digest_of(body, len, got);
    if (str_has_prefix(ref, "sha256:") && strcmp(got, ref) != 0)
        return cri_error_set(err, EBADMSG, "manifest `%s` from `%s`: digest mismatch: got %s", ref,
                             registry_client_host(c), got);
    memcpy(ret_digest, got, sizeof(got));
    *ret_body = TAKE_PTR(body);
    *ret_len = len;
    *ret_type = TAKE_PTR(type);
    return 0;
}

/* The image manifest for this platform, and the top-level digest. The
 * annotations of an index and of the manifest picked from it are merged into
 * the manifest's (the manifest's value wins on a conflict: it is the more
 * specific one). */
static int resolve_manifest(registry_client_t *c, const image_ref_t *r, manifest_t **ret,
                            char top_digest[IMAGE_DIGEST_LEN + 1], cri_error_t *err)
{
    cleanup_free char *body = NULL, *type = NULL;
    size_t len;
    const char *ref = r->digest ? r->digest : r->tag;
    if (get_manifest(c, ref, &body, &len, &type, top_digest, err) < 0)
        return -1;
    cleanup_manifest manifest_t *m = NULL;
    if (manifest_parse(body, len, type, &m, err) < 0)
        return cri_error_wrap(err, "manifest `%s` from `%s`", ref, registry_client_host(c));
    if (m->is_index) {
        const char *arch, *variant;
        manifest_host_platform(&arch, &variant);
        cleanup_free char *pick = NULL;
        if (manifest_pick_platform(body, len, "linux", arch, variant, &pick, err) < 0)
            return cri_error_wrap(err, "index `%s` from `%s`", ref, registry_client_host(c));
        free(body);
        free(type);
        body = type = NULL;
        char digest[IMAGE_DIGEST_LEN + 1];
        if (get_manifest(c, pick, &body, &len, &type, digest, err) < 0)
            return -1;
        cleanup_json json_t *merged = json_incref(m->annotations);
        manifest_free(TAKE_PTR(m));
        if (manifest_parse(body, len, type, &m, err) < 0)
            return cri_error_wrap(err, "manifest `%s` from `%s`", pick, registry_client_host(c));
        if (m->is_index)
            return cri_error_set(err, ENOTSUP, "manifest `%s`: nested indexes are not supported",
                                 pick);
        json_object_update(merged, m->annotations);
        json_decref(m->annotations);
        m->annotations = TAKE_PTR(merged);
    }
    *ret = TAKE_PTR(m);
    return 0;
}

static int get_config(image_store_t *s, registry_client_t *c, const manifest_desc_t *d, char **ret,
                      size_t *ret_len, cri_error_t *err)
{
    if (d->size > (int64_t)IMAGE_MAX_CONFIG)
        return cri_error_set(err, EBADMSG, "config `%s` is too large", d->digest);
    if (!content_has(s->root, d->digest)) {
        content_writer_t *w = NULL;
        if (content_writer_open(s->root, d->digest, d->size, &w, err) < 0)
            return -1;
        registry_sink_t sink = content_writer_sink(w);
        int r = registry_get_blob(c, d->digest, &sink, err);
        if (r == 0)
            r = content_writer_commit(w, err);
        content_writer_free(w);
        if (r < 0)
            return cri_error_wrap(err, "config from `%s`", registry_client_host(c));
    }
    return content_get(s->root, d->digest, IMAGE_MAX_CONFIG, ret, ret_len, err);
}

/* Builds the record and the layer jobs from manifest + config. */
static int plan(const manifest_t *m, char *config, size_t config_len, image_rec_t *rec,
                fetch_layer_job_t **ret_jobs, cri_error_t *err)
{
    image_config_t cfg;
    cleanup_strv char **diff_ids = NULL;
    if (image_config_parse(config, config_len, &cfg, &diff_ids, err) < 0)
        return -1;
    image_config_clear(&cfg);
    if (image_strv_len(diff_ids) != m->n_layers)
        return cri_error_set(err, EBADMSG, "config has %zu diff ids for %zu layers",
                             image_strv_len(diff_ids), m->n_layers);
    rec->layers = xcalloc(m->n_layers + 1, sizeof(*rec->layers));
    fetch_layer_job_t *jobs = xcalloc(m->n_layers + 1, sizeof(*jobs));
    rec->size = m->config.size;
    char chain[IMAGE_DIGEST_LEN + 1] = "";
    for (size_t i = 0; i < m->n_layers; i++) {
        image_chain_id(chain, diff_ids[i], chain);
        image_layer_rec_t *l = &rec->layers[i];
        l->digest = xstrdup(m->layers[i].digest);
        l->diff_id = xstrdup(diff_ids[i]);
        l->chain_id = xstrdup(chain);
        l->size = m->layers[i].size;
        rec->size += l->size;
        rec->n_layers = i + 1;
        jobs[i] = (fetch_layer_job_t){l->digest, l->diff_id, l->chain_id, l->size};
    }
    *ret_jobs = jobs;
    return 0;
}

static int sync_dir_fs(const char *root, const char *sub, dev_t *done, cri_error_t *err)
{
    cleanup_free char *p = xasprintf("%s/%s", root, sub);
    cleanup_close int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return cri_error_make(err, errno, "open `%s`", p);
    if (*done == st.st_dev)
        return 0;
    if (syncfs(fd) < 0)
        return cri_error_make(err, errno, "syncfs `%s`", p);
    *done = st.st_dev;
    return 0;
}

/* Flushes blobs and layers before the record points at them (power loss
 * safety): the one sync of a pull, in place of an fsync per blob, file and
 * rename. A failure fails the pull (its layers are then collected). */
static int sync_store(const char *root, cri_error_t *err)
{
    dev_t done = (dev_t)-1;
    if (sync_dir_fs(root, "layers", &done, err) < 0 || sync_dir_fs(root, "blobs", &done, err) < 0)
        return cri_error_wrap(err, "flush the pulled layers");
    return 0;
}

static int pull_from(image_store_t *s, registry_client_t *c, const image_ref_t *r, char **ret_id,
                     cri_error_t *err)
{
    cleanup_manifest manifest_t *m = NULL;
    char top[IMAGE_DIGEST_LEN + 1];
    if (resolve_manifest(c, r, &m, top, err) < 0)
        return -1;
    cleanup_free char *config = NULL;
    size_t config_len = 0;
    if (get_config(s, c, &m->config, &config, &config_len, err) < 0)
        return -1;
    image_rec_t *rec = xcalloc(1, sizeof(*rec));
    cleanup_free fetch_layer_job_t *jobs = NULL;
    int ret = plan(m, config, config_len, rec, &jobs, err);
    if (ret == 0)
        ret = fetch_layers(s, c, jobs, m->n_layers, err);
    if (ret == 0) {
        cleanup_free char *name = image_ref_name(r);
        rec->id = xstrdup(m->config.digest);
        rec->config_json = TAKE_PTR(config);
        rec->manifest_digest = xstrdup(top);
        rec->annotations = json_incref(m->annotations);
        rec->created_ns = now_unix_ns();
        rec->repo_tags = xcalloc(2, sizeof(char *));
        if (r->tag && !r->digest)
            rec->repo_tags[0] = xasprintf("%s:%s", name, r->tag);
        rec->repo_digests = xcalloc(2, sizeof(char *));
        rec->repo_digests[0] = xasprintf("%s@%s", name, top);
        ret = sync_store(s->root, err);
        if (ret == 0)
            ret = image_meta_commit(s, rec, err);
        if (ret == 0)
            testhook_failpoint("pull.after_record");
    }
    if (ret == 0)
        *ret_id = xstrdup(rec->id);
    image_rec_free(rec);
    return ret;
}

static bool auth_empty(const image_auth_t *a)
{
    return !a || ((!a->username || !*a->username) && (!a->auth || !*a->auth) &&
                  (!a->identity_token || !*a->identity_token) &&
                  (!a->registry_token || !*a->registry_token));
}

/* Pulls through one endpoint with the credentials that belong to it: the
 * request's (else the auth file's entry for the image's registry) for the
 * registry itself (location), and only the auth file's entry for the
 * mirror's own host for a mirror. */
static int pull_endpoint(image_store_t *s, const conf_t *rc, const image_ref_t *r,
                         const registry_endpoint_t *ep, const image_auth_t *auth,
                         const registry_opts_t *opts, char **ret_id, cri_error_t *err)
{
    cleanup_free char *user = NULL, *pass = NULL;
    image_auth_t file_auth = {0};
    if (ep->mirror || auth_empty(auth)) {
        const char *key = ep->mirror ? ep->host : r->domain;
        if (registry_auth_file_lookup(rc->image.auth_file, key, &user, &pass, err) < 0)
            return -1;
        file_auth.username = user;
        file_auth.password = pass;
        auth = &file_auth;
    }
    registry_client_t *c = NULL;
    if (registry_client_new(ep, r->path, auth, s->tokens, opts, &c, err) < 0)
        return -1;
    int ret = pull_from(s, c, r, ret_id, err);
    registry_client_free(c);
    return ret;
}

static int pull_endpoints(image_store_t *s, const image_ref_t *r, const image_auth_t *auth,
                          int64_t deadline_ms, char **ret_id, cri_error_t *err)
{
    /* one set of registry settings from start to end, whatever SIGHUP does */
    image_settings_t *st = image_settings_get(s);
    const conf_t *rc = st->conf;
    size_t n = 0;
    registry_endpoint_t *eps = registry_endpoints(rc, r->domain, &n);
    registry_opts_t opts = {.progress_timeout_ms = s->conf->image.pull_progress_timeout_ms,
                            .deadline_ms = deadline_ms,
                            .insecure_list = rc->image.insecure_registries};
    int ret = -1;
    cri_error_t last = CRI_ERROR_INIT; /* err is set only when every endpoint failed */
    for (size_t i = 0; i < n && ret < 0; i++) {
        if (i > 0 && deadline_ms && image_now_ms() >= deadline_ms)
            break; /* keep the last endpoint's error */
        cri_error_clear(&last);
        ret = pull_endpoint(s, rc, r, &eps[i], auth, &opts, ret_id, &last);
    }
    registry_endpoints_free(eps, n);
    image_settings_put(s, st);
    if (ret < 0)
        *err = last;
    return ret;
}

int image_store_pull(image_store_t *s, const char *ref, const image_auth_t *auth,
                     int64_t client_timeout_ms, char **ret_id, cri_error_t *err)
{
    cleanup_image_ref image_ref_t *r = NULL;
    if (image_ref_parse(ref, &r, err) < 0)
        return -1;
    /* the sooner of image.pull_timeout and the client's deadline */
    int64_t start = image_now_ms(), deadline = 0;
    uint64_t cap = s->conf->image.pull_timeout_ms;
    const char *why = "image.pull_timeout";
    if (cap)
        deadline = start + (int64_t)(cap < (uint64_t)INT64_MAX / 4 ? cap : (uint64_t)INT64_MAX / 4);
    if (client_timeout_ms >= 0 && (!deadline || start + client_timeout_ms < deadline)) {
        deadline = start + (client_timeout_ms > 0 ? client_timeout_ms : 1);
        why = "the client's deadline";
    }
    image_store_pull_begin(s);
    int ret = pull_endpoints(s, r, auth, deadline, ret_id, err);
    image_store_pull_end(s, ret < 0);
    if (ret < 0 && deadline && image_now_ms() >= deadline) {
        err->status = ETIMEDOUT; /* whatever broke, the pull ran out of time */
        return cri_error_wrap(err, "pull `%s`: deadline exceeded (%s)", ref, why);
    }
    if (ret < 0)
        return cri_error_wrap(err, "pull `%s`", ref);
    return 0;
}
