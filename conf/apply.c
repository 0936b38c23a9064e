/* Walks a parsed file against the key table: first to check it (apply=false),
 * then to set its values (apply=true). Scalars replace, lists replace, the
 * handler and registry maps merge per entry. Each value set records its
 * origin (file:line) for later messages. */
#include "conf-internal.h"

#include <errno.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"

typedef struct walk {
    conf_t *conf;
    const char *file;
    bool apply;
    cri_error_t *err;
} walk_t;

static int err_unknown(walk_t *w, const char *key, int line)
{
    char kq[CONF_QUOTE_MAX];
    return cri_error_set(w->err, EINVAL, "%s:%d: unknown key \"%s\"", w->file, line,
                         conf_quote(key, kq, sizeof(kq)));
}

static int err_duplicate(walk_t *w, const char *key, int line)
{
    char kq[CONF_QUOTE_MAX];
    return cri_error_set(w->err, EINVAL, "%s:%d: duplicate key \"%s\"", w->file, line,
                         conf_quote(key, kq, sizeof(kq)));
}

static int err_type(walk_t *w, const char *key, const conf_node_t *n, conf_node_kind_t want)
{
    char kq[CONF_QUOTE_MAX];
    return cri_error_set(w->err, EINVAL, "%s:%d: key \"%s\" must be a %s, not a %s", w->file,
                         n->line, conf_quote(key, kq, sizeof(kq)), conf_node_kind_name(want),
                         conf_node_kind_name(n->kind));
}

static int err_invalid(walk_t *w, const char *key, int line, const char *value, const char *why)
{
    char kq[CONF_QUOTE_MAX], vq[CONF_QUOTE_MAX];
    return cri_error_set(w->err, EINVAL, "%s:%d: key \"%s\": invalid value \"%s\": %s", w->file,
                         line, conf_quote(key, kq, sizeof(kq)), conf_quote(value, vq, sizeof(vq)),
                         why);
}

static int err_too_many(walk_t *w, const char *key, const conf_node_t *n)
{
    char kq[CONF_QUOTE_MAX];
    return cri_error_set(w->err, EINVAL, "%s:%d: key \"%s\" has more than %d entries", w->file,
                         n->line, conf_quote(key, kq, sizeof(kq)), CONF_MAX_ENTRIES);
}

static size_t map_len(const conf_node_t *map)
{
    return map->n_items / 2;
}

/* True when key i of map repeats an earlier key. */
static bool is_duplicate(const conf_node_t *map, size_t i)
{
    for (size_t j = 0; j < i; j += 2)
        if (strcmp(map->items[j]->value, map->items[i]->value) == 0)
            return true;
    return false;
}

static bool is_null(const conf_node_t *n)
{
    return n->kind == CONF_NODE_SCALAR && n->null;
}

/* A string value: type, check, then (apply) set and record its origin. */
static int apply_string(walk_t *w, const char *key, const conf_node_t *vn, conf_check_fn check,
                        char **dst)
{
    if (vn->kind != CONF_NODE_SCALAR)
        return err_type(w, key, vn, CONF_NODE_SCALAR);
    const char *why = check ? check(vn->value) : NULL;
    if (why)
        return err_invalid(w, key, vn->line, vn->value, why);
    if (!w->apply)
        return 0;
    if (strcmp(key, "listen") == 0) {
        free(*dst);
        *dst = conf_listen_normalize(vn->value);
    } else {
        str_set(dst, vn->value);
    }
    conf_origin_set(w->conf, key, w->file, vn->line);
    return 0;
}

static int apply_port(walk_t *w, const char *key, const conf_node_t *vn, int *dst)
{
    int port = 0;
    if (vn->kind != CONF_NODE_SCALAR)
        return err_type(w, key, vn, CONF_NODE_SCALAR);
    const char *why = conf_port_parse(vn->value, &port);
    if (why)
        return err_invalid(w, key, vn->line, vn->value, why);
    if (w->apply) {
        *dst = port;
        conf_origin_set(w->conf, key, w->file, vn->line);
    }
    return 0;
}

static int apply_bool(walk_t *w, const char *key, const conf_node_t *vn, bool *dst)
{
    if (vn->kind != CONF_NODE_SCALAR)
        return err_type(w, key, vn, CONF_NODE_SCALAR);
    bool on = strcmp(vn->value, "true") == 0;
    if (!on && strcmp(vn->value, "false") != 0)
        return err_invalid(w, key, vn->line, vn->value, "must be true or false");
    if (w->apply) {
        *dst = on;
        conf_origin_set(w->conf, key, w->file, vn->line);
    }
    return 0;
}

/* A duration (ms) or a count: both uint64_t, read by parse; check (may be
 * NULL) puts bounds on the text. */
static int apply_u64(walk_t *w, const char *key, const conf_node_t *vn,
                     const char *(*parse)(const char *, uint64_t *), conf_check_fn check,
                     uint64_t *dst)
{
    uint64_t ms = 0;
    if (vn->kind != CONF_NODE_SCALAR)
        return err_type(w, key, vn, CONF_NODE_SCALAR);
    const char *why = check ? check(vn->value) : NULL;
    if (!why)
        why = parse(vn->value, &ms);
    if (why)
        return err_invalid(w, key, vn->line, vn->value, why);
    if (w->apply) {
        *dst = ms;
        conf_origin_set(w->conf, key, w->file, vn->line);
    }
    return 0;
}

/* A list of strings replaces the old list whole; null means empty. */
static int apply_strv(walk_t *w, const char *key, const conf_node_t *vn, conf_check_fn check,
                      char ***dst)
{
    size_t n = 0;
    if (!is_null(vn)) {
        if (vn->kind != CONF_NODE_LIST)
            return err_type(w, key, vn, CONF_NODE_LIST);
        n = vn->n_items;
    }
    if (n > CONF_MAX_ENTRIES)
        return err_too_many(w, key, vn);
    for (size_t i = 0; i < n; i++) {
        const conf_node_t *item = vn->items[i];
        cleanup_free char *ikey = xasprintf("%s[%zu]", key, i);
        if (item->kind != CONF_NODE_SCALAR)
            return err_type(w, ikey, item, CONF_NODE_SCALAR);
        const char *why = check ? check(item->value) : NULL;
        if (why)
            return err_invalid(w, ikey, item->line, item->value, why);
    }
    if (!w->apply)
        return 0;

    char **v = xcalloc(n + 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = xstrdup(vn->items[i]->value);
    strv_free(*dst);
    *dst = v;
    conf_origin_drop_items(w->conf, key);
    conf_origin_set(w->conf, key, w->file, vn->line);
    for (size_t i = 0; i < n; i++) {
        cleanup_free char *ikey = xasprintf("%s[%zu]", key, i);
        conf_origin_set(w->conf, ikey, w->file, vn->items[i]->line);
    }
    return 0;
}

/* Common shape of runtime.handlers and image.registries: a map whose keys
 * name entries (checked by check_name) and whose values are null or maps. */
typedef int (*entry_fn)(walk_t *w, const char *entry_key, const char *name,
                        const conf_node_t *fields);

static int apply_entries(walk_t *w, const char *key, const conf_node_t *vn,
                         conf_check_fn check_name, entry_fn apply_entry)
{
    if (is_null(vn))
        return 0;
    if (vn->kind != CONF_NODE_MAP)
        return err_type(w, key, vn, CONF_NODE_MAP);
    if (map_len(vn) > CONF_MAX_ENTRIES)
        return err_too_many(w, key, vn);
    for (size_t i = 0; i < vn->n_items; i += 2) {
        const conf_node_t *kn = vn->items[i], *fields = vn->items[i + 1];
        cleanup_free char *entry_key = xasprintf("%s.%s", key, kn->value);
        const char *why = check_name(kn->value);
        if (why)
            return err_invalid(w, key, kn->line, kn->value, why);
        if (is_duplicate(vn, i))
            return err_duplicate(w, entry_key, kn->line);
        if (!is_null(fields) && fields->kind != CONF_NODE_MAP)
            return err_type(w, entry_key, fields, CONF_NODE_MAP);
        if (apply_entry(w, entry_key, kn->value, fields) < 0)
            return -1;
        if (w->apply)
            conf_origin_set(w->conf, entry_key, w->file, kn->line);
    }
    return 0;
}

/* Finds field `name` of an entry map; checks unknown and duplicate keys. */
static int entry_fields_check(walk_t *w, const char *entry_key, const conf_node_t *fields,
                              const char *const *known)
{
    for (size_t i = 0; !is_null(fields) && i < fields->n_items; i += 2) {
        const conf_node_t *kn = fields->items[i];
        cleanup_free char *fkey = xasprintf("%s.%s", entry_key, kn->value);
        bool found = false;
        for (const char *const *k = known; *k; k++)
            found = found || strcmp(*k, kn->value) == 0;
        if (!found)
            return err_unknown(w, fkey, kn->line);
        if (is_duplicate(fields, i))
            return err_duplicate(w, fkey, kn->line);
    }
    return 0;
}

static int apply_handler(walk_t *w, const char *entry_key, const char *name,
                         const conf_node_t *fields)
{
    static const char *const known[] = {"path", "root", NULL};
    if (entry_fields_check(w, entry_key, fields, known) < 0)
        return -1;
    conf_handler_t scratch = {0}; /* the check pass writes nothing */
    conf_handler_t *h = w->apply ? conf_handler_get(w->conf, name, true) : &scratch;
    for (size_t i = 0; !is_null(fields) && i < fields->n_items; i += 2) {
        const conf_node_t *kn = fields->items[i], *vn = fields->items[i + 1];
        cleanup_free char *fkey = xasprintf("%s.%s", entry_key, kn->value);
        bool is_path = strcmp(kn->value, "path") == 0;
        if (apply_string(w, fkey, vn, is_path ? conf_check_nonempty : conf_check_abs_path_or_empty,
                         is_path ? &h->path : &h->root) < 0)
            return -1;
    }
    return 0;
}

static int apply_registry(walk_t *w, const char *entry_key, const char *host,
                          const conf_node_t *fields)
{
    static const char *const known[] = {"location", "mirrors", NULL};
    if (entry_fields_check(w, entry_key, fields, known) < 0)
        return -1;
    conf_registry_t scratch = {0}; /* the check pass writes nothing */
    conf_registry_t *r = w->apply ? conf_registry_get(w->conf, host, true) : &scratch;
    for (size_t i = 0; !is_null(fields) && i < fields->n_items; i += 2) {
        const conf_node_t *kn = fields->items[i], *vn = fields->items[i + 1];
        cleanup_free char *fkey = xasprintf("%s.%s", entry_key, kn->value);
        int rc = strcmp(kn->value, "location") == 0
                     ? apply_string(w, fkey, vn, conf_check_registry, &r->location)
                     : apply_strv(w, fkey, vn, conf_check_registry, &r->mirrors);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int apply_section(walk_t *w, const char *prefix, const conf_node_t *map);

static int apply_key(walk_t *w, const conf_key_t *k, const conf_node_t *vn)
{
    conf_t *c = w->conf;
    switch (k->kind) {
    case CONF_KEY_SECTION:
        if (is_null(vn))
            return 0;
        if (vn->kind != CONF_NODE_MAP)
            return err_type(w, k->key, vn, CONF_NODE_MAP);
        return apply_section(w, k->key, vn);
    case CONF_KEY_STRING:
        return apply_string(w, k->key, vn, k->check, CONF_FIELD(c, k, char *));
    case CONF_KEY_PORT:
        return apply_port(w, k->key, vn, CONF_FIELD(c, k, int));
    case CONF_KEY_BOOL:
        return apply_bool(w, k->key, vn, CONF_FIELD(c, k, bool));
    case CONF_KEY_DURATION:
        return apply_u64(w, k->key, vn, conf_duration_parse, NULL, CONF_FIELD(c, k, uint64_t));
    case CONF_KEY_COUNT:
        return apply_u64(w, k->key, vn, conf_count_parse, k->check, CONF_FIELD(c, k, uint64_t));
    case CONF_KEY_STRV:
        return apply_strv(w, k->key, vn, k->check, CONF_FIELD(c, k, char **));
    case CONF_KEY_HANDLERS:
        return apply_entries(w, k->key, vn, conf_check_handler_name, apply_handler);
    case CONF_KEY_REGISTRIES:
        return apply_entries(w, k->key, vn, conf_check_registry, apply_registry);
    }
    return 0;
}

/* The keys of a section map (prefix NULL for the top level). */
static int apply_section(walk_t *w, const char *prefix, const conf_node_t *map)
{
    for (size_t i = 0; i < map->n_items; i += 2) {
        const conf_node_t *kn = map->items[i], *vn = map->items[i + 1];
        cleanup_free char *key =
            prefix ? xasprintf("%s.%s", prefix, kn->value) : xstrdup(kn->value);
        /* Look up by path components only: a key "runtime.x" is not runtime: {x}. */
        const conf_key_t *k = strchr(kn->value, '.') ? NULL : conf_key_find(key);
        if (!k)
            return err_unknown(w, key, kn->line);
        if (is_duplicate(map, i))
            return err_duplicate(w, key, kn->line);
        if (apply_key(w, k, vn) < 0)
            return -1;
    }
    return 0;
}

int conf_apply(conf_t *conf, const char *file, const conf_node_t *root, bool apply,
               cri_error_t *err)
{
    walk_t w = {.conf = conf, .file = file, .apply = apply, .err = err};
    return apply_section(&w, NULL, root);
}
