/* SIGHUP: reload what can change while serving, as CRI-O does. The new
 * config has been loaded and validated like the one at startup; here the
 * two are compared key by key. Reloadable keys are applied; every other
 * changed key is logged as needing a restart and keeps its running value,
 * so Status{verbose} and SIGUSR1 always show what is in force. */
#include "server/daemon.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "conf/conf.h"
#include "server/image/image.h"

static const char *const reloadable[] = {
    "log_level",       "image.registries",        "image.insecure_registries",
    "image.auth_file", "network.default_network",
};

static bool is_reloadable(const char *key)
{
    for (size_t i = 0; i < sizeof(reloadable) / sizeof(reloadable[0]); i++)
        if (strcmp(reloadable[i], key) == 0)
            return true;
    return false;
}

/* The dotted keys whose values differ between a and b: sections (top-level
 * objects) are compared key by key, anything below that as a whole. */
static void diff_keys(json_t *a, json_t *b, const char *prefix, char ***changed)
{
    const char *k;
    json_t *vb;
    json_object_foreach(b, k, vb)
    {
        json_t *va = json_object_get(a, k);
        cleanup_free char *key = prefix ? xasprintf("%s.%s", prefix, k) : xstrdup(k);
        if (!prefix && json_is_object(va) && json_is_object(vb) && strcmp(k, "log_level") != 0) {
            diff_keys(va, vb, k, changed);
            continue;
        }
        if (!va || !json_equal(va, vb))
            strv_push(changed, TAKE_PTR(key));
    }
}

/* Sets the dotted key (one or two levels) of dst to its value in src. */
static void copy_key(json_t *dst, json_t *src, const char *key)
{
    cleanup_free char *top = xstrdup(key);
    char *dot = strchr(top, '.');
    if (!dot) {
        json_object_set(dst, top, json_object_get(src, top));
        return;
    }
    *dot = '\0';
    json_object_set(json_object_get(dst, top), dot + 1,
                    json_object_get(json_object_get(src, top), dot + 1));
}

static void apply_log_level(const conf_t *conf)
{
    log_set_level((log_level_t)log_level_parse(conf->log_level));
}

static void apply_network(daemon_t *d, const conf_t *conf)
{
    char *name = xstrdup(conf->network.default_network);
    pthread_mutex_lock(&d->lock);
    free(d->cni_network);
    d->cni_network = name;
    pthread_mutex_unlock(&d->lock);
    if (d->cni_watch)
        cni_watch_set_network(d->cni_watch, conf->network.default_network);
}

int daemon_reload(daemon_t *d, conf_t *conf)
{
    cleanup_conf conf_t *owned = conf;
    cleanup_free char *new_text = conf_to_json(conf);
    cleanup_free char *old_text = daemon_config_json(d);
    json_t *old = json_loads(old_text, 0, NULL), *neu = json_loads(new_text, 0, NULL);
    cleanup_strv char **changed = NULL;
    if (old && neu)
        diff_keys(old, neu, NULL, &changed);

    int applied = 0;
    bool image = false, network = false, level = false;
    for (char **k = changed; k && *k; k++) {
        if (!is_reloadable(*k)) {
            log_warn("reload: `%s` changed; it takes effect after a restart", *k);
            continue;
        }
        copy_key(old, neu, *k);
        log_info("reload: `%s` applied", *k);
        applied++;
        image |= str_has_prefix(*k, "image.");
        network |= strcmp(*k, "network.default_network") == 0;
        level |= strcmp(*k, "log_level") == 0;
    }
    if (!changed)
        log_info("reload: the config has not changed");
    if (level)
        apply_log_level(conf);
    if (network)
        apply_network(d, conf);
    if (applied) {
        char *text = json_dumps(old, JSON_COMPACT | JSON_PRESERVE_ORDER);
        pthread_mutex_lock(&d->lock);
        free(d->config_json);
        d->config_json = text;
        pthread_mutex_unlock(&d->lock);
    }
    if (image) /* the image store keeps the config for pulls it starts */
        image_store_reconfigure(d->images, TAKE_PTR(owned));
    json_decref(old);
    json_decref(neu);
    return applied;
}
