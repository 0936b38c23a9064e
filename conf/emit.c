/* conf_to_yaml(): the effective config through libyaml's emitter, in key
 * table order, in a form conf_load_buffer() reads back to the same values. */
#include "conf-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "common/cleanup.h"
#include "common/util.h"

typedef struct out {
    char *data;
    size_t len, cap;
} out_t;

typedef struct emit {
    yaml_emitter_t emitter;
    out_t out;
    cri_error_t *err;
} emit_t;

static int out_write(void *data, unsigned char *bytes, size_t size)
{
    out_t *o = data;
    if (o->len + size + 1 > o->cap) {
        while (o->len + size + 1 > o->cap)
            o->cap = o->cap ? o->cap * 2 : 4096;
        o->data = xrealloc(o->data, o->cap);
    }
    memcpy(o->data + o->len, bytes, size);
    o->len += size;
    o->data[o->len] = '\0';
    return 1;
}

static int emit_failed(emit_t *em, const char *what)
{
    const yaml_emitter_t *e = &em->emitter;
    char q[CONF_QUOTE_MAX];
    if (e->error == YAML_MEMORY_ERROR)
        return cri_error_set(em->err, ENOMEM, "emit config: out of memory");
    return cri_error_set(em->err, EINVAL, "emit config: %s: %s", conf_quote(what, q, sizeof(q)),
                         e->problem ? e->problem : "invalid value");
}

static int emit_event(emit_t *em, yaml_event_t *ev, const char *what)
{
    /* The emitter takes the event (and frees it) whether or not it succeeds. */
    if (!yaml_emitter_emit(&em->emitter, ev))
        return emit_failed(em, what);
    return 0;
}

/* Plain where the emitter allows it, quoted where our own parser would read
 * a plain scalar as null. */
static int emit_string(emit_t *em, const char *value)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
    yaml_event_t ev;

    value = value ? value : "";
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp(value, nulls[i]) == 0)
            style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    size_t len = strlen(value);
    if (len > INT32_MAX ||
        !yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)value, (int)len, 1, 1, style))
        return cri_error_set(em->err, EINVAL, "emit config: value is not valid UTF-8");
    return emit_event(em, &ev, value);
}

static int emit_map_start(emit_t *em)
{
    yaml_event_t ev;
    yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
    return emit_event(em, &ev, "map");
}

static int emit_map_end(emit_t *em)
{
    yaml_event_t ev;
    yaml_mapping_end_event_initialize(&ev);
    return emit_event(em, &ev, "map");
}

static int emit_pair(emit_t *em, const char *key, const char *value)
{
    return emit_string(em, key) < 0 || emit_string(em, value) < 0 ? -1 : 0;
}

static int emit_strv(emit_t *em, char *const *v)
{
    yaml_event_t ev;
    yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
    if (emit_event(em, &ev, "list") < 0)
        return -1;
    for (size_t i = 0; v && v[i]; i++)
        if (emit_string(em, v[i]) < 0)
            return -1;
    yaml_sequence_end_event_initialize(&ev);
    return emit_event(em, &ev, "list");
}

static int emit_handlers(emit_t *em, const conf_t *conf)
{
    if (emit_map_start(em) < 0)
        return -1;
    for (size_t i = 0; i < conf->runtime.n_handlers; i++) {
        const conf_handler_t *h = &conf->runtime.handlers[i];
        if (emit_string(em, h->name) < 0 || emit_map_start(em) < 0 ||
            emit_pair(em, "path", h->path) < 0 || emit_pair(em, "root", h->root) < 0 ||
            emit_map_end(em) < 0)
            return -1;
    }
    return emit_map_end(em);
}

static int emit_registries(emit_t *em, const conf_t *conf)
{
    if (emit_map_start(em) < 0)
        return -1;
    for (size_t i = 0; i < conf->image.n_registries; i++) {
        const conf_registry_t *r = &conf->image.registries[i];
        if (emit_string(em, r->host) < 0 || emit_map_start(em) < 0 ||
            emit_pair(em, "location", r->location) < 0 || emit_string(em, "mirrors") < 0 ||
            emit_strv(em, r->mirrors) < 0 || emit_map_end(em) < 0)
            return -1;
    }
    return emit_map_end(em);
}

/* True when key is a direct child of prefix (NULL: the top level). */
static bool is_child(const char *key, const char *prefix)
{
    const char *dot = strrchr(key, '.');
    if (!prefix)
        return !dot;
    size_t len = strlen(prefix);
    return dot && (size_t)(dot - key) == len && strncmp(key, prefix, len) == 0;
}

static int emit_section(emit_t *em, const conf_t *conf, const char *prefix)
{
    if (emit_map_start(em) < 0)
        return -1;
    for (size_t i = 0; i < conf_n_keys; i++) {
        const conf_key_t *k = &conf_keys[i];
        if (!is_child(k->key, prefix))
            continue;
        const char *dot = strrchr(k->key, '.');
        if (emit_string(em, dot ? dot + 1 : k->key) < 0)
            return -1;
        char num[64];
        int r = 0;
        switch (k->kind) {
        case CONF_KEY_SECTION:
            r = emit_section(em, conf, k->key);
            break;
        case CONF_KEY_STRING:
            r = emit_string(em, *CONF_CFIELD(conf, k, char *));
            break;
        case CONF_KEY_PORT:
            (void)snprintf(num, sizeof(num), "%d", *CONF_CFIELD(conf, k, int));
            r = emit_string(em, num);
            break;
        case CONF_KEY_BOOL:
            r = emit_string(em, *CONF_CFIELD(conf, k, bool) ? "true" : "false");
            break;
        case CONF_KEY_DURATION:
            conf_duration_format(*CONF_CFIELD(conf, k, uint64_t), num, sizeof(num));
            r = emit_string(em, num);
            break;
        case CONF_KEY_COUNT:
            (void)snprintf(num, sizeof(num), "%" PRIu64, *CONF_CFIELD(conf, k, uint64_t));
            r = emit_string(em, num);
            break;
        case CONF_KEY_STRV:
            r = emit_strv(em, *CONF_CFIELD(conf, k, char **));
            break;
        case CONF_KEY_HANDLERS:
            r = emit_handlers(em, conf);
            break;
        case CONF_KEY_REGISTRIES:
            r = emit_registries(em, conf);
            break;
        }
        if (r < 0)
            return -1;
    }
    return emit_map_end(em);
}

static int emit_document(emit_t *em, const conf_t *conf)
{
    yaml_event_t ev;

    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    if (emit_event(em, &ev, "stream") < 0)
        return -1;
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    if (emit_event(em, &ev, "document") < 0)
        return -1;
    if (emit_section(em, conf, NULL) < 0)
        return -1;
    yaml_document_end_event_initialize(&ev, 1);
    if (emit_event(em, &ev, "document") < 0)
        return -1;
    yaml_stream_end_event_initialize(&ev);
    if (emit_event(em, &ev, "stream") < 0)
        return -1;
    if (!yaml_emitter_flush(&em->emitter))
        return emit_failed(em, "flush");
    return 0;
}

char *conf_to_yaml(const conf_t *conf, cri_error_t *err)
{
    emit_t em = {.err = err};

    if (!yaml_emitter_initialize(&em.emitter)) {
        cri_error_set(err, ENOMEM, "emit config: out of memory");
        return NULL;
    }
    yaml_emitter_set_output(&em.emitter, out_write, &em.out);
    yaml_emitter_set_unicode(&em.emitter, 1);
    yaml_emitter_set_width(&em.emitter, -1); /* never fold long values */
    yaml_emitter_set_indent(&em.emitter, 2);
    int r = emit_document(&em, conf);
    yaml_emitter_delete(&em.emitter);
    if (r < 0) {
        free(em.out.data);
        return NULL;
    }
    return em.out.data ? em.out.data : xstrdup("");
}
