/* Private to conf/: the YAML node tree, the key table, value checks and the
 * record of where each value came from. */
#ifndef CRICKET_CONF_INTERNAL_H
#define CRICKET_CONF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

/* Deepest legal path is image.registries.<host>.mirrors[i]: 5 collections. */
#define CONF_MAX_DEPTH 8
/* A real config has a few hundred nodes; this bounds time and memory. */
#define CONF_MAX_NODES 8192
/* Entries in one list or in one of the handler/registry maps. */
#define CONF_MAX_ENTRIES 1024

/* ---- node tree (parse.c) ---- */

typedef enum conf_node_kind {
    CONF_NODE_SCALAR,
    CONF_NODE_MAP,
    CONF_NODE_LIST,
} conf_node_kind_t;

typedef struct conf_node {
    conf_node_kind_t kind;
    int line;    /* 1-based line where the node starts */
    bool null;   /* plain scalar "", "~" or "null" */
    char *value; /* scalar text ("" for null) */
    /* list: the items; map: key, value, key, value, ... (keys are scalars) */
    struct conf_node **items;
    size_t n_items;
} conf_node_t;

/* Parses YAML text into a tree. *ret_root is NULL for an empty stream or a
 * null document, else a map. The caller frees it with conf_node_free().
 * err->status: EINVAL ("<name>:<line>: ..."), ENOMEM. */
int conf_parse(const char *name, const char *data, size_t len, conf_node_t **ret_root,
               cri_error_t *err);
void conf_node_free(conf_node_t *node);
const char *conf_node_kind_name(conf_node_kind_t kind);

static inline void conf_node_freep(conf_node_t **node)
{
    conf_node_free(*node);
}
#define cleanup_conf_node __attribute__((cleanup(conf_node_freep)))

/* ---- key table (conf.c) ---- */

typedef enum conf_key_kind {
    CONF_KEY_SECTION,    /* a map of further keys */
    CONF_KEY_STRING,     /* char * */
    CONF_KEY_PORT,       /* int, 0..65535 */
    CONF_KEY_BOOL,       /* bool: true or false */
    CONF_KEY_DURATION,   /* uint64_t milliseconds, Go-style text */
    CONF_KEY_COUNT,      /* uint64_t, a whole number with an optional Ki/Mi/Gi/Ti suffix */
    CONF_KEY_STRV,       /* char **, NULL-terminated */
    CONF_KEY_HANDLERS,   /* runtime.handlers */
    CONF_KEY_REGISTRIES, /* image.registries */
} conf_key_kind_t;

/* Returns NULL when value is fine, else why not ("must be an absolute path"). */
typedef const char *(*conf_check_fn)(const char *value);

typedef struct conf_key {
    const char *key; /* full dotted name; table order is document order */
    conf_key_kind_t kind;
    size_t offset;       /* of the field in conf_t */
    conf_check_fn check; /* for a string, or each item of a list; may be NULL */
} conf_key_t;

extern const conf_key_t conf_keys[];
extern const size_t conf_n_keys;

/* The entry for a full dotted key, or NULL. */
const conf_key_t *conf_key_find(const char *key);

#define CONF_FIELD(conf, k, type) ((type *)((char *)(conf) + (k)->offset))
#define CONF_CFIELD(conf, k, type) ((type const *)((const char *)(conf) + (k)->offset))

/* Handler and registry entries; create adds one with its defaults. */
conf_handler_t *conf_handler_get(conf_t *conf, const char *name, bool create);
conf_registry_t *conf_registry_get(conf_t *conf, const char *host, bool create);

/* ---- origins (conf.c) ---- */

typedef struct conf_origin {
    char *key;  /* "runtime.default_handler", "network.plugin_dirs[1]" */
    char *file; /* as passed to the loader */
    int line;
} conf_origin_t;

/* Records that `key` was set from file:line (replacing an older record). */
void conf_origin_set(conf_t *conf, const char *key, const char *file, int line);
/* Forgets the records of the items of list `key` ("key[0]", "key[1]", ...). */
void conf_origin_drop_items(conf_t *conf, const char *key);
/* The record for `key`, or NULL when the value is a default or set by code. */
const conf_origin_t *conf_origin_find(const conf_t *conf, const char *key);

/* ---- applying a tree (apply.c) ---- */

/* Checks the tree against the key table (apply=false), or sets its values
 * into conf (apply=true, cannot fail after a successful check).
 * err->status: EINVAL ("<file>:<line>: ..."). */
int conf_apply(conf_t *conf, const char *file, const conf_node_t *root, bool apply,
               cri_error_t *err);

/* ---- value checks (validate.c) ---- */

const char *conf_check_listen(const char *value);
const char *conf_check_abs_path(const char *value);
const char *conf_check_abs_path_or_empty(const char *value);
const char *conf_check_log_level(const char *value);
const char *conf_check_cgroup_manager(const char *value);
const char *conf_check_nonempty(const char *value);
const char *conf_check_registry(const char *value);
const char *conf_check_ip(const char *value);
const char *conf_check_handler_name(const char *value);

/* "/x" -> "unix:///x"; anything else copied. Caller frees. */
char *conf_listen_normalize(const char *value);

/* Parses a Go-style duration ("1m30s", "500ms", "0", "1.5h") into
 * milliseconds; returns NULL, or why not. */
const char *conf_duration_parse(const char *text, uint64_t *ret_ms);
/* Formats milliseconds the way conf_duration_parse() reads them back
 * ("1m30s", "500ms", "0s") into buf. */
void conf_duration_format(uint64_t ms, char *buf, size_t size);

/* Parses a whole number ("1000", "64Gi": Ki, Mi, Gi, Ti are powers of 1024)
 * into *ret; returns NULL, or why not. */
const char *conf_count_parse(const char *text, uint64_t *ret);

/* Parses a port number (decimal, 0..65535); returns NULL or why not. */
const char *conf_port_parse(const char *text, int *ret_port);

/* A check for counts that must be 1..CONF_COUNT_MAX (connection and
 * stream limits): text as conf_count_parse() reads it. */
#define CONF_COUNT_MAX 1000000u
const char *conf_check_count_limit(const char *value);

/* Copies s into buf for an error message: at most about 80 bytes (cut on a
 * UTF-8 boundary, "..." appended), control characters shown as '?'. */
const char *conf_quote(const char *s, char *buf, size_t size);
#define CONF_QUOTE_MAX 96

#endif
