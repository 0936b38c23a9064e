/* conf_to_json(): the effective config as a JSON object, walking the same
 * key table as the YAML emitter (crictl info wants every Status info value
 * to be JSON). */
#include "conf-internal.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static json_t *strv_json(char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *handlers_json(const conf_t *conf)
{
    json_t *o = json_object();
    for (size_t i = 0; i < conf->runtime.n_handlers; i++) {
        const conf_handler_t *h = &conf->runtime.handlers[i];
        json_object_set_new(o, h->name, json_pack("{s:s, s:s}", "path", h->path, "root", h->root));
    }
    return o;
}

static json_t *registries_json(const conf_t *conf)
{
    json_t *o = json_object();
    for (size_t i = 0; i < conf->image.n_registries; i++) {
        const conf_registry_t *r = &conf->image.registries[i];
        json_object_set_new(
            o, r->host,
            json_pack("{s:s, s:o}", "location", r->location, "mirrors", strv_json(r->mirrors)));
    }
    return o;
}

/* True when key is a direct child of prefix (NULL: the top level). */
static bool child_of(const char *key, const char *prefix)
{
    const char *dot = strrchr(key, '.');
    if (!prefix)
        return !dot;
    size_t len = strlen(prefix);
    return dot && (size_t)(dot - key) == len && strncmp(key, prefix, len) == 0;
}

static json_t *section_json(const conf_t *conf, const char *prefix)
{
    json_t *o = json_object();
    for (size_t i = 0; i < conf_n_keys; i++) {
        const conf_key_t *k = &conf_keys[i];
        if (!child_of(k->key, prefix))
            continue;
        const char *dot = strrchr(k->key, '.');
        json_t *v = NULL;
        switch (k->kind) {
        case CONF_KEY_SECTION:
            v = section_json(conf, k->key);
            break;
        case CONF_KEY_STRING:
            v = json_string(*CONF_CFIELD(conf, k, char *));
            break;
        case CONF_KEY_PORT:
            v = json_integer(*CONF_CFIELD(conf, k, int));
            break;
        case CONF_KEY_BOOL:
            v = json_boolean(*CONF_CFIELD(conf, k, bool));
            break;
        case CONF_KEY_DURATION: {
            char text[64];
            conf_duration_format(*CONF_CFIELD(conf, k, uint64_t), text, sizeof(text));
            v = json_string(text);
            break;
        }
        case CONF_KEY_COUNT:
            v = json_integer((json_int_t)*CONF_CFIELD(conf, k, uint64_t));
            break;
        case CONF_KEY_STRV:
            v = strv_json(*CONF_CFIELD(conf, k, char **));
            break;
        case CONF_KEY_HANDLERS:
            v = handlers_json(conf);
            break;
        case CONF_KEY_REGISTRIES:
            v = registries_json(conf);
            break;
        }
        json_object_set_new(o, dot ? dot + 1 : k->key, v ? v : json_null());
    }
    return o;
}

char *conf_to_json(const conf_t *conf)
{
    json_t *o = section_json(conf, NULL);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s)
        abort();
    return s;
}
