/* cricketd configuration: built-in defaults, overlaid by YAML files (libyaml).
 *
 * Sources, in order: the defaults (conf_new_defaults()), the main file
 * (/etc/cricket/cricket.yaml), then every `*.yaml` drop-in of
 * /etc/cricket/cricket.d/ in strcmp() order of file names. A later source
 * overrides what it sets: a scalar replaces the value, a list replaces the
 * whole list, and the two maps (runtime.handlers, image.registries) merge per
 * entry and then per key. conf/cricket.yaml documents every key.
 *
 * Errors about what a file says have err->status EINVAL and a one-line
 * message that starts with "<file>:<line>: " (1-based line of the offending
 * node), e.g. `/etc/cricket/cricket.yaml:3: unknown key "runtime.cgroup_mangler"`.
 * conf_validate() points at the file and line each bad value came from.
 *
 * A conf_t is plain data: the daemon reads its fields directly. Fill it at
 * startup, then share it read-only. Every string is owned by the conf_t and
 * never NULL; lists are NULL-terminated string vectors (see strv_free()). */
#ifndef CRICKET_CONF_CONF_H
#define CRICKET_CONF_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define CONF_DEFAULT_PATH "/etc/cricket/cricket.yaml"
#define CONF_DEFAULT_DROPIN_DIR "/etc/cricket/cricket.d"
/* A config file larger than this is refused. */
#define CONF_MAX_FILE_SIZE ((size_t)1 << 20)

/* runtime.handlers.<name>: a RuntimeClass handler and its OCI runtime. */
typedef struct conf_handler {
    char *name; /* handler name, as in RuntimeClass.handler */
    char *path; /* runtime binary: absolute, or a name looked up in $PATH; defaults to name */
    char *root; /* runtime state dir (runc --root); "" = the runtime's own default */
} conf_handler_t;

/* image.registries.<host>: where images named after `host` come from. */
typedef struct conf_registry {
    char *host;     /* registry as written in image references: "docker.io", "quay.io:443" */
    char *location; /* host[:port][/path] to pull from instead; defaults to host */
    char **mirrors; /* host[:port][/path] tried in order before location; may be empty */
} conf_registry_t;

struct conf_origins; /* private: file and line each value came from */

typedef struct conf {
    char *listen;    /* CRI socket, always "unix:///abs/path" after loading */
    char *root;      /* persistent state dir (absolute) */
    char *runroot;   /* volatile state dir (absolute) */
    char *log_level; /* error|warn|info|debug|trace; see log_level_parse() */
    struct {
        char *default_handler;    /* names an entry of handlers */
        conf_handler_t *handlers; /* n_handlers entries, in order of first definition */
        size_t n_handlers;
        char *cgroup_manager; /* "cgroupfs" or "systemd" */
        char *conmon_path;    /* cricket-conmon binary */
        char *pause_path;     /* cricket-pause binary (copied into the infra rootfs) */
        char **cdi_spec_dirs; /* CDI spec dirs (absolute), later ones win */
        bool drop_infra;      /* no pause process in pods that do not share PID */
    } runtime;
    struct {
        char *conf_dir;             /* CNI config dir (absolute) */
        char **plugin_dirs;         /* CNI plugin dirs (absolute), searched in order */
        char *default_network;      /* network name; "" = first config file in lexical order */
        uint64_t plugin_timeout_ms; /* each CNI plugin call is killed past this; 0 = 1m */
    } network;
    struct {
        conf_registry_t *registries; /* n_registries entries, in order of first definition */
        size_t n_registries;
        char **insecure_registries;        /* host[:port]: plain HTTP or unverified TLS allowed */
        char *pause_image;                 /* "" = the built-in pause rootfs */
        uint64_t pull_progress_timeout_ms; /* cancel a pull idle this long; 0 = never */
        char *auth_file;                   /* registry credentials file; "" = none */
        uint64_t pull_timeout_ms;          /* a whole pull, at most; 0 = no limit */
        uint64_t max_layer_unpacked_bytes; /* uncompressed tar of one layer; 0 = no limit */
        uint64_t max_layer_entries;        /* tar entries of one layer; 0 = no limit */
    } image;
    struct {
        char *address;       /* IP address the streaming server binds to */
        int port;            /* 0..65535; 0 = pick a free port */
        char *tls_cert;      /* PEM certificate (chain), absolute; "" = plain HTTP */
        char *tls_key;       /* PEM private key of tls_cert; set with it or not at all */
        char *tls_client_ca; /* PEM CA clients must present a cert of; "" = none */

        uint64_t max_connections;            /* open at once, all clients */
        uint64_t max_connections_per_client; /* open at once from one IP address */
        uint64_t max_port_forwards;          /* open at once in one port-forward session */
        uint64_t handshake_timeout_ms;       /* accept to complete upgrade request; 0 = none */
        uint64_t idle_timeout_ms;            /* upgraded session without traffic; 0 = none */
    } streaming;
    struct {
        uint64_t queue_length; /* GetContainerEvents: events one subscriber may lag behind */
    } events;
    struct {
        bool enable;   /* serve Prometheus metrics over HTTP */
        char *address; /* IP address to bind (127.0.0.1 by default) */
        int port;      /* 0..65535; 0 = pick a free port */
    } metrics;
    struct conf_origins *origins;
} conf_t;

/* Returns a new config holding the built-in defaults. runtime.conmon_path and
 * runtime.pause_path default to `cricket-conmon` and `cricket-pause` in
 * exe_dir, the directory of the running cricketd binary; with exe_dir NULL
 * or "" they are the bare names (looked up in $PATH when run). Never fails
 * (aborts on OOM). The caller frees the result with conf_free(). */
conf_t *conf_new_defaults(const char *exe_dir);

/* Frees conf and everything it owns. Accepts NULL. */
void conf_free(conf_t *conf);

static inline void conf_freep(conf_t **conf)
{
    conf_free(*conf);
}
#define cleanup_conf __attribute__((cleanup(conf_freep)))

/* Overlays the YAML file at `path` on conf: keys present override, lists
 * replace, maps merge per entry. An empty file, or one with only comments,
 * changes nothing. Each value is checked as it is read (type, enums, paths,
 * ranges, durations); cross-key checks are left to conf_validate().
 * Atomic: on failure conf is unchanged.
 * err->status: EINVAL for anything wrong with the content, message
 * "<path>:<line>: ..." (syntax error, unknown key, wrong type, bad value,
 * duplicate key, anchor/alias/tag, nesting, size; a file over
 * CONF_MAX_FILE_SIZE says "<path>: ..." without a line); otherwise the errno of
 * reading the file (ENOENT when missing, EISDIR, EACCES, ...). */
int conf_load_file(conf_t *conf, const char *path, cri_error_t *err);

/* Same as conf_load_file() for YAML text already in memory (len bytes, need
 * not be NUL-terminated); `name` stands in for the file name in messages.
 * err->status: EINVAL (content, as above), ENOMEM (libyaml ran out). */
int conf_load_buffer(conf_t *conf, const char *name, const char *data, size_t len,
                     cri_error_t *err);

/* Loads main_path (when not NULL), then every `*.yaml` regular file of
 * dropin_dir (when not NULL) in strcmp() order of names; names starting with
 * '.' are skipped. A missing main file is fine unless main_required; a
 * missing drop-in dir is fine. Does not call conf_validate(): do that next.
 * Not atomic across files: on failure conf may hold the files loaded before
 * the bad one, so discard it.
 * err->status: as conf_load_file() (for the main file, ENOENT only when
 * main_required), or the errno of opening/reading dropin_dir or of stat() on
 * a drop-in (ENOENT for a dangling symlink: an error, not skipped). */
int conf_load(conf_t *conf, const char *main_path, const char *dropin_dir, bool main_required,
              cri_error_t *err);

/* Checks the merged config: every per-value rule again (for values set by
 * code), plus that runtime.default_handler names a configured handler and
 * that streaming.tls_cert and tls_key are set together (tls_client_ca only
 * with them). The
 * message starts with "<file>:<line>: " when the value came from a file, e.g.
 * `cricket.d/10-rt.yaml:2: key "runtime.default_handler": invalid value
 * "kata": no such entry in runtime.handlers`. err->status: EINVAL. */
int conf_validate(const conf_t *conf, cri_error_t *err);

/* Returns the effective config as YAML text (NUL-terminated, malloc'd; the
 * caller frees it), keys in the order of conf/cricket.yaml. Loading it over
 * conf_new_defaults() gives back an identical config (conmon_path and
 * pause_path are written out too). No comments, so not a substitute for
 * conf/cricket.yaml. err->status: EINVAL when a string is not valid UTF-8
 * (only possible for values set by code), ENOMEM. */
char *conf_to_yaml(const conf_t *conf, cri_error_t *err);

/* Returns the effective config as one line of JSON (an object keyed like
 * the YAML, durations as Go-style text). malloc'd, the caller frees it;
 * never fails (aborts on OOM). */
char *conf_to_json(const conf_t *conf);

/* Returns the handler called `name`, or NULL. Borrowed: valid while conf is. */
const conf_handler_t *conf_find_handler(const conf_t *conf, const char *name);

/* Returns the registry entry for `host`, or NULL. Borrowed: valid while conf is. */
const conf_registry_t *conf_find_registry(const conf_t *conf, const char *host);

#endif
