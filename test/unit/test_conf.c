/* Unit tests for conf/: defaults, every key, merge order of drop-ins, list
 * and map merging, every error with its exact "file:line: message", cross-key
 * validation, the conf_to_yaml() round trip and the shipped conf/cricket.yaml. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "conf/conf.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define EXE_DIR "/usr/local/bin"

/* ---- helpers ---- */

static int setup_tmpdir(void **state)
{
    char *dir = xstrdup("/tmp/test_conf.XXXXXX");
    if (!mkdtemp(dir)) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

static int teardown_tmpdir(void **state)
{
    cri_error_t err = CRI_ERROR_INIT;
    int r = rm_rf(*state, &err);
    free(*state);
    return r;
}

/* Writes text to dir/name; returns the path (caller frees). */
static char *put_file(const char *dir, const char *name, const char *text)
{
    cri_error_t err = CRI_ERROR_INIT;
    char *path = xasprintf("%s/%s", dir, name);
    if (write_file_atomic(path, text, strlen(text), 0644, &err) < 0)
        fail_msg("%s", err.msg);
    return path;
}

static char *make_dir(const char *dir, const char *name)
{
    char *path = xasprintf("%s/%s", dir, name);
    assert_int_equal(mkdir(path, 0755), 0);
    return path;
}

static char *strv_join(char *const *v)
{
    char *s = xstrdup("");
    for (size_t i = 0; v && v[i]; i++) {
        char *t = xasprintf("%s%s%s", s, i ? "," : "", v[i]);
        free(s);
        s = t;
    }
    return s;
}

/* A value by dotted key, rendered as text (lists joined with ','). */
static char *get(const conf_t *c, const char *key)
{
    static const char hp[] = "runtime.handlers.", rp[] = "image.registries.";
    const struct {
        const char *key;
        const char *value;
    } strings[] = {
        {"listen", c->listen},
        {"root", c->root},
        {"runroot", c->runroot},
        {"log_level", c->log_level},
        {"runtime.default_handler", c->runtime.default_handler},
        {"runtime.cgroup_manager", c->runtime.cgroup_manager},
        {"runtime.conmon_path", c->runtime.conmon_path},
        {"runtime.pause_path", c->runtime.pause_path},
        {"network.conf_dir", c->network.conf_dir},
        {"network.default_network", c->network.default_network},
        {"image.pause_image", c->image.pause_image},
        {"image.auth_file", c->image.auth_file},
        {"streaming.address", c->streaming.address},
        {"streaming.tls_cert", c->streaming.tls_cert},
        {"streaming.tls_key", c->streaming.tls_key},
        {"streaming.tls_client_ca", c->streaming.tls_client_ca},
        {"metrics.address", c->metrics.address},
    };
    for (size_t i = 0; i < ARRAY_SIZE(strings); i++)
        if (strcmp(key, strings[i].key) == 0)
            return xstrdup(strings[i].value);
    if (strcmp(key, "network.plugin_dirs") == 0)
        return strv_join(c->network.plugin_dirs);
    if (strcmp(key, "runtime.cdi_spec_dirs") == 0)
        return strv_join(c->runtime.cdi_spec_dirs);
    if (strcmp(key, "image.insecure_registries") == 0)
        return strv_join(c->image.insecure_registries);
    if (strcmp(key, "network.plugin_timeout") == 0)
        return xasprintf("%" PRIu64, c->network.plugin_timeout_ms);
    if (strcmp(key, "image.pull_progress_timeout") == 0)
        return xasprintf("%" PRIu64, c->image.pull_progress_timeout_ms);
    if (strcmp(key, "image.pull_timeout") == 0)
        return xasprintf("%" PRIu64, c->image.pull_timeout_ms);
    if (strcmp(key, "image.max_layer_unpacked_bytes") == 0)
        return xasprintf("%" PRIu64, c->image.max_layer_unpacked_bytes);
    if (strcmp(key, "image.max_layer_entries") == 0)
        return xasprintf("%" PRIu64, c->image.max_layer_entries);
    if (strcmp(key, "streaming.port") == 0)
        return xasprintf("%d", c->streaming.port);
    if (strcmp(key, "streaming.max_connections") == 0)
        return xasprintf("%" PRIu64, c->streaming.max_connections);
    if (strcmp(key, "streaming.max_connections_per_client") == 0)
        return xasprintf("%" PRIu64, c->streaming.max_connections_per_client);
    if (strcmp(key, "streaming.max_port_forwards") == 0)
        return xasprintf("%" PRIu64, c->streaming.max_port_forwards);
    if (strcmp(key, "streaming.handshake_timeout") == 0)
        return xasprintf("%" PRIu64, c->streaming.handshake_timeout_ms);
    if (strcmp(key, "streaming.idle_timeout") == 0)
        return xasprintf("%" PRIu64, c->streaming.idle_timeout_ms);
    if (strcmp(key, "events.queue_length") == 0)
        return xasprintf("%" PRIu64, c->events.queue_length);
    if (strcmp(key, "metrics.enable") == 0)
        return xstrdup(c->metrics.enable ? "true" : "false");
    if (strcmp(key, "runtime.drop_infra") == 0)
        return xstrdup(c->runtime.drop_infra ? "true" : "false");
    if (strcmp(key, "metrics.port") == 0)
        return xasprintf("%d", c->metrics.port);
    if (strcmp(key, "runtime.handlers") == 0) {
        char *s = xstrdup("");
        for (size_t i = 0; i < c->runtime.n_handlers; i++) {
            char *t = xasprintf("%s%s%s", s, i ? "," : "", c->runtime.handlers[i].name);
            free(s);
            s = t;
        }
        return s;
    }
    if (strcmp(key, "image.registries") == 0) {
        char *s = xstrdup("");
        for (size_t i = 0; i < c->image.n_registries; i++) {
            char *t = xasprintf("%s%s%s", s, i ? "," : "", c->image.registries[i].host);
            free(s);
            s = t;
        }
        return s;
    }
    if (str_has_prefix(key, hp)) {
        const char *dot = strrchr(key, '.');
        cleanup_free char *name = xstrndup(key + strlen(hp), (size_t)(dot - key) - strlen(hp));
        const conf_handler_t *h = conf_find_handler(c, name);
        if (!h)
            return xstrdup("<none>");
        return xstrdup(strcmp(dot, ".path") == 0 ? h->path : h->root);
    }
    if (str_has_prefix(key, rp)) {
        const char *dot = strrchr(key, '.');
        cleanup_free char *host = xstrndup(key + strlen(rp), (size_t)(dot - key) - strlen(rp));
        const conf_registry_t *r = conf_find_registry(c, host);
        if (!r)
            return xstrdup("<none>");
        return strcmp(dot, ".location") == 0 ? xstrdup(r->location) : strv_join(r->mirrors);
    }
    fail_msg("test bug: unknown key %s", key);
    return NULL;
}

static void assert_get(const conf_t *c, const char *key, const char *want)
{
    cleanup_free char *got = get(c, key);
    if (strcmp(got, want) != 0)
        fail_msg("%s: got \"%s\", want \"%s\"", key, got, want);
}

static void assert_strv_equal(char *const *a, char *const *b)
{
    cleanup_free char *ja = strv_join(a);
    cleanup_free char *jb = strv_join(b);
    assert_string_equal(ja, jb);
}

/* Field by field: every value of conf_t. */
static void assert_conf_equal(const conf_t *a, const conf_t *b)
{
    assert_string_equal(a->listen, b->listen);
    assert_string_equal(a->root, b->root);
    assert_string_equal(a->runroot, b->runroot);
    assert_string_equal(a->log_level, b->log_level);
    assert_string_equal(a->runtime.default_handler, b->runtime.default_handler);
    assert_int_equal(a->runtime.n_handlers, b->runtime.n_handlers);
    for (size_t i = 0; i < a->runtime.n_handlers; i++) {
        assert_string_equal(a->runtime.handlers[i].name, b->runtime.handlers[i].name);
        assert_string_equal(a->runtime.handlers[i].path, b->runtime.handlers[i].path);
        assert_string_equal(a->runtime.handlers[i].root, b->runtime.handlers[i].root);
    }
    assert_string_equal(a->runtime.cgroup_manager, b->runtime.cgroup_manager);
    assert_string_equal(a->runtime.conmon_path, b->runtime.conmon_path);
    assert_string_equal(a->runtime.pause_path, b->runtime.pause_path);
    assert_string_equal(a->network.conf_dir, b->network.conf_dir);
    assert_strv_equal(a->network.plugin_dirs, b->network.plugin_dirs);
    assert_string_equal(a->network.default_network, b->network.default_network);
    assert_int_equal(a->image.n_registries, b->image.n_registries);
    for (size_t i = 0; i < a->image.n_registries; i++) {
        assert_string_equal(a->image.registries[i].host, b->image.registries[i].host);
        assert_string_equal(a->image.registries[i].location, b->image.registries[i].location);
        assert_strv_equal(a->image.registries[i].mirrors, b->image.registries[i].mirrors);
    }
    assert_strv_equal(a->image.insecure_registries, b->image.insecure_registries);
    assert_string_equal(a->image.pause_image, b->image.pause_image);
    assert_int_equal(a->image.pull_progress_timeout_ms, b->image.pull_progress_timeout_ms);
    assert_int_equal(a->image.pull_timeout_ms, b->image.pull_timeout_ms);
    assert_int_equal(a->image.max_layer_unpacked_bytes, b->image.max_layer_unpacked_bytes);
    assert_int_equal(a->image.max_layer_entries, b->image.max_layer_entries);
    assert_int_equal(a->network.plugin_timeout_ms, b->network.plugin_timeout_ms);
    assert_string_equal(a->image.auth_file, b->image.auth_file);
    assert_string_equal(a->streaming.address, b->streaming.address);
    assert_int_equal(a->streaming.port, b->streaming.port);
    assert_string_equal(a->streaming.tls_cert, b->streaming.tls_cert);
    assert_string_equal(a->streaming.tls_key, b->streaming.tls_key);
    assert_string_equal(a->streaming.tls_client_ca, b->streaming.tls_client_ca);
    assert_int_equal(a->streaming.max_connections, b->streaming.max_connections);
    assert_int_equal(a->streaming.max_connections_per_client,
                     b->streaming.max_connections_per_client);
    assert_int_equal(a->streaming.max_port_forwards, b->streaming.max_port_forwards);
    assert_int_equal(a->streaming.handshake_timeout_ms, b->streaming.handshake_timeout_ms);
    assert_int_equal(a->streaming.idle_timeout_ms, b->streaming.idle_timeout_ms);
    assert_int_equal(a->events.queue_length, b->events.queue_length);
    assert_int_equal(a->metrics.enable, b->metrics.enable);
    assert_int_equal(a->runtime.drop_infra, b->runtime.drop_infra);
    assert_string_equal(a->metrics.address, b->metrics.address);
    assert_int_equal(a->metrics.port, b->metrics.port);
}

/* Loads text (as dir/name) over fresh defaults; fails the test on error. */
static conf_t *load_text(const char *dir, const char *text)
{
    cri_error_t err = CRI_ERROR_INIT;
    cleanup_free char *path = put_file(dir, "main.yaml", text);
    conf_t *c = conf_new_defaults(EXE_DIR);
    if (conf_load_file(c, path, &err) < 0)
        fail_msg("load failed: %s\n---\n%s", err.msg, text);
    return c;
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
    cleanup_conf conf_t *c = conf_new_defaults(EXE_DIR);
    static const struct {
        const char *key, *want;
    } cases[] = {
        {"listen", "unix:///run/cricket/cricket.sock"},
        {"root", "/var/lib/cricket"},
        {"runroot", "/run/cricket"},
        {"log_level", "info"},
        {"runtime.default_handler", "runc"},
        {"runtime.handlers", "runc"},
        {"runtime.handlers.runc.path", "runc"},
        {"runtime.handlers.runc.root", ""},
        {"runtime.cgroup_manager", "cgroupfs"},
        {"runtime.conmon_path", EXE_DIR "/cricket-conmon"},
        {"runtime.pause_path", EXE_DIR "/cricket-pause"},
        {"network.conf_dir", "/etc/cni/net.d"},
        {"network.plugin_dirs", "/opt/cni/bin,/usr/lib/cni"},
        {"runtime.cdi_spec_dirs", "/etc/cdi,/var/run/cdi"},
        {"network.default_network", ""},
        {"image.registries", ""},
        {"image.insecure_registries", ""},
        {"image.pause_image", ""},
        {"image.pull_progress_timeout", "60000"},
        {"network.plugin_timeout", "60000"},
        {"image.auth_file", ""},
        {"image.pull_timeout", "3600000"},
        {"image.max_layer_unpacked_bytes", "68719476736"},
        {"image.max_layer_entries", "1000000"},
        {"streaming.address", "127.0.0.1"},
        {"streaming.port", "0"},
        {"streaming.tls_cert", ""},
        {"streaming.tls_key", ""},
        {"streaming.tls_client_ca", ""},
        {"streaming.max_connections", "1024"},
        {"streaming.max_connections_per_client", "128"},
        {"streaming.max_port_forwards", "64"},
        {"streaming.handshake_timeout", "10000"},
        {"streaming.idle_timeout", "14400000"},
        {"events.queue_length", "1024"},
        {"metrics.enable", "false"},
        {"runtime.drop_infra", "true"},
        {"metrics.address", "127.0.0.1"},
        {"metrics.port", "9090"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        assert_get(c, cases[i].key, cases[i].want);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(conf_validate(c, &err), 0);
    assert_int_equal(err.status, 0);

    static const struct {
        const char *exe_dir, *conmon, *pause;
    } dirs[] = {
        {NULL, "cricket-conmon", "cricket-pause"},
        {"/opt/cricket/", "/opt/cricket/cricket-conmon", "/opt/cricket/cricket-pause"},
        {"/", "/cricket-conmon", "/cricket-pause"},
        {"", "cricket-conmon", "cricket-pause"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
        cleanup_conf conf_t *d = conf_new_defaults(dirs[i].exe_dir);
        assert_string_equal(d->runtime.conmon_path, dirs[i].conmon);
        assert_string_equal(d->runtime.pause_path, dirs[i].pause);
        assert_int_equal(conf_validate(d, &err), 0);
    }
}

static void test_empty_files(void **state)
{
    static const char *const texts[] = {
        "",
        "\n\n",
        "# only\n   # comments\n",
        "---\n",
        "---\n...\n",
        "~\n",
        "{}\n",
        "runtime:\nnetwork: ~\nimage: {}\nstreaming:\n",
        "runtime:\n  handlers:\nimage:\n  registries: # none\n",
    };
    cleanup_conf conf_t *defaults = conf_new_defaults(EXE_DIR);
    for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
        cleanup_conf conf_t *c = load_text(*state, texts[i]);
        assert_conf_equal(c, defaults);
    }
}

/* ---- every key ---- */

static void test_each_key(void **state)
{
    static const struct {
        const char *yaml, *key, *want;
    } cases[] = {
        {"listen: unix:///tmp/c.sock", "listen", "unix:///tmp/c.sock"},
        {"listen: /tmp/c.sock", "listen", "unix:///tmp/c.sock"},
        {"root: /srv/cricket", "root", "/srv/cricket"},
        {"runroot: /run/c2", "runroot", "/run/c2"},
        {"log_level: error", "log_level", "error"},
        {"log_level: warn", "log_level", "warn"},
        {"log_level: debug", "log_level", "debug"},
        {"log_level: trace", "log_level", "trace"},
        {"runtime:\n  default_handler: crun\n", "runtime.default_handler", "crun"},
        {"runtime:\n  handlers:\n    crun:\n      path: /usr/bin/crun\n", "runtime.handlers",
         "runc,crun"},
        {"runtime:\n  handlers:\n    crun:\n      path: /usr/bin/crun\n",
         "runtime.handlers.crun.path", "/usr/bin/crun"},
        {"runtime:\n  handlers:\n    crun:\n      root: /run/crun\n", "runtime.handlers.crun.root",
         "/run/crun"},
        {"runtime:\n  handlers:\n    crun:\n      root: /run/crun\n", "runtime.handlers.crun.path",
         "crun"},
        {"runtime:\n  handlers:\n    kata-qemu:\n", "runtime.handlers.kata-qemu.path", "kata-qemu"},
        {"runtime:\n  handlers:\n    runc:\n      path: /usr/sbin/runc\n",
         "runtime.handlers.runc.path", "/usr/sbin/runc"},
        {"runtime:\n  handlers:\n    runc:\n      root: /run/runc\n", "runtime.handlers.runc.path",
         "runc"},
        {"runtime:\n  cgroup_manager: systemd\n", "runtime.cgroup_manager", "systemd"},
        {"runtime:\n  cgroup_manager: cgroupfs\n", "runtime.cgroup_manager", "cgroupfs"},
        {"runtime:\n  conmon_path: /opt/c/conmon\n", "runtime.conmon_path", "/opt/c/conmon"},
        {"runtime:\n  pause_path: /opt/c/pause\n", "runtime.pause_path", "/opt/c/pause"},
        {"network:\n  conf_dir: /etc/cni/other\n", "network.conf_dir", "/etc/cni/other"},
        {"network:\n  plugin_dirs: [/a, /b, /c]\n", "network.plugin_dirs", "/a,/b,/c"},
        {"runtime:\n  cdi_spec_dirs: [/t/cdi, /t/run]\n", "runtime.cdi_spec_dirs", "/t/cdi,/t/run"},
        {"runtime:\n  cdi_spec_dirs: []\n", "runtime.cdi_spec_dirs", ""},
        {"network:\n  plugin_dirs:\n    - /x\n", "network.plugin_dirs", "/x"},
        {"network:\n  plugin_dirs: []\n", "network.plugin_dirs", ""},
        {"network:\n  plugin_dirs:\n", "network.plugin_dirs", ""},
        {"network:\n  default_network: podnet\n", "network.default_network", "podnet"},
        {"image:\n  registries:\n    docker.io:\n      location: 127.0.0.1:5000\n",
         "image.registries.docker.io.location", "127.0.0.1:5000"},
        {"image:\n  registries:\n    docker.io:\n      mirrors: [m1:5000, m2/ns]\n",
         "image.registries.docker.io.mirrors", "m1:5000,m2/ns"},
        {"image:\n  registries:\n    quay.io:\n", "image.registries.quay.io.location", "quay.io"},
        {"image:\n  registries:\n    quay.io:\n", "image.registries.quay.io.mirrors", ""},
        {"image:\n  insecure_registries: [127.0.0.1:5000, reg.local]\n",
         "image.insecure_registries", "127.0.0.1:5000,reg.local"},
        {"image:\n  pause_image: registry.k8s.io/pause:3.9\n", "image.pause_image",
         "registry.k8s.io/pause:3.9"},
        {"image:\n  pull_progress_timeout: 30s\n", "image.pull_progress_timeout", "30000"},
        {"network:\n  plugin_timeout: 3s\n", "network.plugin_timeout", "3000"},
        {"image:\n  pull_progress_timeout: 1m\n", "image.pull_progress_timeout", "60000"},
        {"image:\n  pull_progress_timeout: 1m30s\n", "image.pull_progress_timeout", "90000"},
        {"image:\n  pull_progress_timeout: 500ms\n", "image.pull_progress_timeout", "500"},
        {"image:\n  pull_progress_timeout: 2h\n", "image.pull_progress_timeout", "7200000"},
        {"image:\n  pull_progress_timeout: 0\n", "image.pull_progress_timeout", "0"},
        {"image:\n  pull_progress_timeout: 0s\n", "image.pull_progress_timeout", "0"},
        {"image:\n  pull_progress_timeout: 1.5s\n", "image.pull_progress_timeout", "1500"},
        {"image:\n  pull_progress_timeout: .5s\n", "image.pull_progress_timeout", "500"},
        {"image:\n  pull_progress_timeout: 1h2m3.5s\n", "image.pull_progress_timeout", "3723500"},
        {"image:\n  pull_progress_timeout: 2000us\n", "image.pull_progress_timeout", "2"},
        {"image:\n  pull_progress_timeout: 3000000ns\n", "image.pull_progress_timeout", "3"},
        {"image:\n  pull_progress_timeout: \"+1s\"\n", "image.pull_progress_timeout", "1000"},
        {"image:\n  pull_timeout: 0\n", "image.pull_timeout", "0"},
        {"image:\n  pull_timeout: 10m\n", "image.pull_timeout", "600000"},
        {"image:\n  max_layer_entries: 100\n", "image.max_layer_entries", "100"},
        {"image:\n  max_layer_entries: 0\n", "image.max_layer_entries", "0"},
        {"image:\n  max_layer_unpacked_bytes: 4096\n", "image.max_layer_unpacked_bytes", "4096"},
        {"image:\n  max_layer_unpacked_bytes: 1Ki\n", "image.max_layer_unpacked_bytes", "1024"},
        {"image:\n  max_layer_unpacked_bytes: 3Mi\n", "image.max_layer_unpacked_bytes", "3145728"},
        {"image:\n  max_layer_unpacked_bytes: 2Ti\n", "image.max_layer_unpacked_bytes",
         "2199023255552"},
        {"image:\n  max_layer_unpacked_bytes: \"18446744073709551615\"\n",
         "image.max_layer_unpacked_bytes", "18446744073709551615"},
        {"image:\n  auth_file: /etc/cricket/auth.json\n", "image.auth_file",
         "/etc/cricket/auth.json"},
        {"streaming:\n  address: 0.0.0.0\n", "streaming.address", "0.0.0.0"},
        {"streaming:\n  address: \"::1\"\n", "streaming.address", "::1"},
        {"streaming:\n  port: 10010\n", "streaming.port", "10010"},
        {"streaming:\n  port: 65535\n", "streaming.port", "65535"},
        {"streaming:\n  port: '8080'\n", "streaming.port", "8080"},
        {"streaming:\n  tls_cert: /etc/cricket/tls.crt\n", "streaming.tls_cert",
         "/etc/cricket/tls.crt"},
        {"streaming:\n  tls_key: /etc/cricket/tls.key\n", "streaming.tls_key",
         "/etc/cricket/tls.key"},
        {"streaming:\n  tls_client_ca: /etc/cricket/ca.crt\n", "streaming.tls_client_ca",
         "/etc/cricket/ca.crt"},
        {"streaming:\n  tls_cert: ''\n", "streaming.tls_cert", ""},
        {"streaming:\n  max_connections: 1\n", "streaming.max_connections", "1"},
        {"streaming:\n  max_connections: 1000000\n", "streaming.max_connections", "1000000"},
        {"streaming:\n  max_connections_per_client: '64'\n", "streaming.max_connections_per_client",
         "64"},
        {"streaming:\n  max_port_forwards: 8\n", "streaming.max_port_forwards", "8"},
        {"streaming:\n  handshake_timeout: 2s\n", "streaming.handshake_timeout", "2000"},
        {"streaming:\n  handshake_timeout: 0\n", "streaming.handshake_timeout", "0"},
        {"streaming:\n  idle_timeout: 1500ms\n", "streaming.idle_timeout", "1500"},
        {"streaming:\n  idle_timeout: 0s\n", "streaming.idle_timeout", "0"},
        {"events:\n  queue_length: 1\n", "events.queue_length", "1"},
        {"events:\n  queue_length: 4Ki\n", "events.queue_length", "4096"},
        {"metrics:\n  enable: true\n", "metrics.enable", "true"},
        {"runtime:\n  drop_infra: false\n", "runtime.drop_infra", "false"},
        {"runtime:\n  drop_infra: true\n", "runtime.drop_infra", "true"},
        {"metrics:\n  enable: false\n", "metrics.enable", "false"},
        {"metrics:\n  address: '::1'\n", "metrics.address", "::1"},
        {"metrics:\n  port: 0\n", "metrics.port", "0"},
        {"metrics:\n  port: 19090\n", "metrics.port", "19090"},
        {"network:\n  default_network: \"\"\n", "network.default_network", ""},
        {"image:\n  pause_image: \"null\"\n", "image.pause_image", "null"},
        {"image:\n  pause_image: 123\n", "image.pause_image", "123"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        cleanup_conf conf_t *c = load_text(*state, cases[i].yaml);
        assert_get(c, cases[i].key, cases[i].want);
    }
}

/* ---- merging ---- */

static void test_merge_order(void **state)
{
    const char *dir = *state;
    cleanup_free char *main_path = put_file(dir, "cricket.yaml",
                                            "log_level: debug\n"
                                            "root: /main\n"
                                            "runroot: /main-run\n");
    cleanup_free char *d = make_dir(dir, "cricket.d");
    /* strcmp order: "10-a" < "20-b" < "B" < "a" */
    free(put_file(d, "20-b.yaml", "root: /twenty\n"));
    free(put_file(d, "10-a.yaml", "root: /ten\nrunroot: /ten-run\n"));
    free(put_file(d, "a.yaml", "streaming:\n  port: 1\n"));
    free(put_file(d, "B.yaml", "streaming:\n  port: 2\n"));
    /* not drop-ins: loading any of these would fail */
    free(put_file(d, "30-c.yml", "{{{"));
    free(put_file(d, "40-d.yaml.bak", "{{{"));
    free(put_file(d, ".50-hidden.yaml", "{{{"));
    free(put_file(d, "yaml", "{{{"));
    free(put_file(d, ".yaml", "{{{"));
    cleanup_free char *sub = make_dir(d, "60-dir.yaml");
    free(put_file(sub, "x.yaml", "{{{"));

    cleanup_conf conf_t *c = conf_new_defaults(EXE_DIR);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(conf_load(c, main_path, d, true, &err), 0);
    assert_get(c, "log_level", "debug");
    assert_get(c, "root", "/twenty");
    assert_get(c, "runroot", "/ten-run");
    assert_get(c, "streaming.port", "1");
    assert_int_equal(conf_validate(c, &err), 0);
}

static void test_lists_replace_maps_merge(void **state)
{
    const char *dir = *state;
    cleanup_free char *main_path = put_file(dir, "cricket.yaml",
                                            "network:\n"
                                            "  plugin_dirs: [/x, /y]\n"
                                            "runtime:\n"
                                            "  handlers:\n"
                                            "    crun:\n"
                                            "      path: /usr/bin/crun\n"
                                            "image:\n"
                                            "  insecure_registries: [a:1, b:2]\n"
                                            "  registries:\n"
                                            "    docker.io:\n"
                                            "      location: 127.0.0.1:5000\n"
                                            "      mirrors: [m1, m2]\n"
                                            "    ghcr.io:\n"
                                            "      mirrors: [g1]\n");
    cleanup_free char *d = make_dir(dir, "cricket.d");
    free(put_file(d, "10.yaml",
                  "network:\n"
                  "  plugin_dirs: [/z]\n"
                  "runtime:\n"
                  "  handlers:\n"
                  "    crun:\n"
                  "      root: /run/crun\n"
                  "    kata:\n"
                  "      path: /opt/kata/bin/kata-runtime\n"
                  "image:\n"
                  "  insecure_registries: []\n"
                  "  registries:\n"
                  "    docker.io:\n"
                  "      mirrors: [m3]\n"
                  "    quay.io:\n"));
    free(put_file(d, "20.yaml",
                  "image:\n"
                  "  registries:\n"
                  "    ghcr.io:\n"
                  "      mirrors:\n"));

    cleanup_conf conf_t *c = conf_new_defaults(EXE_DIR);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(conf_load(c, main_path, d, false, &err), 0);
    static const struct {
        const char *key, *want;
    } cases[] = {
        {"network.plugin_dirs", "/z"},
        {"runtime.handlers", "runc,crun,kata"},
        {"runtime.handlers.runc.path", "runc"},
        {"runtime.handlers.crun.path", "/usr/bin/crun"},
        {"runtime.handlers.crun.root", "/run/crun"},
        {"runtime.handlers.kata.path", "/opt/kata/bin/kata-runtime"},
        {"image.insecure_registries", ""},
        {"image.registries", "docker.io,ghcr.io,quay.io"},
        {"image.registries.docker.io.location", "127.0.0.1:5000"},
        {"image.registries.docker.io.mirrors", "m3"},
        {"image.registries.ghcr.io.location", "ghcr.io"},
        {"image.registries.ghcr.io.mirrors", ""},
        {"image.registries.quay.io.location", "quay.io"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        assert_get(c, cases[i].key, cases[i].want);
    assert_int_equal(conf_validate(c, &err), 0);
}

static void test_missing_files(void **state)
{
    const char *dir = *state;
    cleanup_free char *missing = xasprintf("%s/nope.yaml", dir);
    cleanup_free char *missing_dir = xasprintf("%s/nope.d", dir);
    cleanup_conf conf_t *defaults = conf_new_defaults(EXE_DIR);
    cri_error_t err = CRI_ERROR_INIT;

    cleanup_conf conf_t *c = conf_new_defaults(EXE_DIR);
    assert_int_equal(conf_load(c, missing, missing_dir, false, &err), 0);
    assert_int_equal(err.status, 0);
    assert_int_equal(conf_load(c, NULL, NULL, true, &err), 0);
    assert_conf_equal(c, defaults);

    assert_int_equal(conf_load(c, missing, missing_dir, true, &err), -1);
    assert_int_equal(err.status, ENOENT);
    assert_non_null(strstr(err.msg, missing));

    cri_error_clear(&err);
    assert_int_equal(conf_load_file(c, missing, &err), -1);
    assert_int_equal(err.status, ENOENT);

    /* a drop-in "dir" that is a file */
    cleanup_free char *file = put_file(dir, "file", "");
    cri_error_clear(&err);
    assert_int_equal(conf_load(c, NULL, file, false, &err), -1);
    assert_int_equal(err.status, ENOTDIR);

    /* a dangling symlink among the drop-ins is an error, not skipped */
    cleanup_free char *d = make_dir(dir, "cricket.d");
    cleanup_free char *link = xasprintf("%s/10-gone.yaml", d);
    assert_int_equal(symlink("/nonexistent/file.yaml", link), 0);
    cri_error_clear(&err);
    assert_int_equal(conf_load(c, NULL, d, false, &err), -1);
    assert_int_equal(err.status, ENOENT);
    assert_non_null(strstr(err.msg, link));
    assert_conf_equal(c, defaults);
}

/* ---- parse errors: exact "file:line: message" ---- */

static const struct {
    const char *yaml;
    int line;
    const char *msg;
} parse_errors[] = {
    /* syntax */
    {"root: /a\n bad: x\n", 2, "syntax error: mapping values are not allowed in this context"},
    {"log_level: [info\n", 2,
     "syntax error: did not find expected ',' or ']' while parsing a flow sequence"},
    {"root: \"/a\n", 2,
     "syntax error: found unexpected end of stream while scanning a quoted scalar"},
    {"runtime:\n\tcgroup_manager: systemd\n", 2,
     "syntax error: found character that cannot start any token while scanning for the next "
     "token"},
    {"log_level: info\nroot: /\xff\n", 2, "syntax error: invalid leading UTF-8 octet"},
    {"root: \"/a\\0b\"\n", 1, "a value must not contain NUL"},
    /* unknown keys, with the full dotted name */
    {"log_lvl: info\n", 1, "unknown key \"log_lvl\""},
    {"runtime:\n  cgroup_mangler: systemd\n", 2, "unknown key \"runtime.cgroup_mangler\""},
    {"runtime.cgroup_manager: systemd\n", 1, "unknown key \"runtime.cgroup_manager\""},
    {"network:\n  conf_dir: /a\n  plugins: [/b]\n", 3, "unknown key \"network.plugins\""},
    {"runtime:\n  handlers:\n    crun:\n      pth: /x\n", 4,
     "unknown key \"runtime.handlers.crun.pth\""},
    {"image:\n  registries:\n    docker.io:\n      mirror: [a]\n", 4,
     "unknown key \"image.registries.docker.io.mirror\""},
    {"streaming:\n  port: 1\n  tls: true\n", 3, "unknown key \"streaming.tls\""},
    {"root: /a\n\"\": x\n", 2, "unknown key \"\""},
    /* duplicates */
    {"log_level: info\nlog_level: debug\n", 2, "duplicate key \"log_level\""},
    {"runtime:\n  handlers:\n    crun:\n    crun:\n", 4, "duplicate key \"runtime.handlers.crun\""},
    {"runtime:\n  handlers:\n    crun:\n      path: a\n      path: b\n", 5,
     "duplicate key \"runtime.handlers.crun.path\""},
    /* wrong types */
    {"runtime: runc\n", 1, "key \"runtime\" must be a map, not a scalar"},
    {"image: [a]\n", 1, "key \"image\" must be a map, not a list"},
    {"log_level: [info]\n", 1, "key \"log_level\" must be a scalar, not a list"},
    {"root:\n  path: /x\n", 2, "key \"root\" must be a scalar, not a map"},
    {"network:\n  plugin_dirs: /opt/cni/bin\n", 2,
     "key \"network.plugin_dirs\" must be a list, not a scalar"},
    {"network:\n  plugin_dirs:\n    - /a\n    - {x: y}\n", 4,
     "key \"network.plugin_dirs[1]\" must be a scalar, not a map"},
    {"runtime:\n  handlers: [runc]\n", 2, "key \"runtime.handlers\" must be a map, not a list"},
    {"runtime:\n  handlers:\n    crun: /usr/bin/crun\n", 3,
     "key \"runtime.handlers.crun\" must be a map, not a scalar"},
    {"image:\n  registries:\n    docker.io: [a]\n", 3,
     "key \"image.registries.docker.io\" must be a map, not a list"},
    {"image:\n  registries:\n    docker.io:\n      mirrors: m1\n", 4,
     "key \"image.registries.docker.io.mirrors\" must be a list, not a scalar"},
    {"streaming:\n  port: [1]\n", 2, "key \"streaming.port\" must be a scalar, not a list"},
    {"streaming:\n  max_connections: [1]\n", 2,
     "key \"streaming.max_connections\" must be a scalar, not a list"},
    {"streaming:\n  max_connections: 0\n", 2,
     "key \"streaming.max_connections\": invalid value \"0\": must be a whole number from 1 to "
     "1000000"},
    {"streaming:\n  max_connections_per_client: -1\n", 2,
     "key \"streaming.max_connections_per_client\": invalid value \"-1\": must be a whole number "
     "from 1 to 1000000"},
    {"streaming:\n  max_port_forwards: 1000001\n", 2,
     "key \"streaming.max_port_forwards\": invalid value \"1000001\": must be a whole number from "
     "1 to 1000000"},
    {"streaming:\n  max_port_forwards: 12345678\n", 2,
     "key \"streaming.max_port_forwards\": invalid value \"12345678\": must be a whole number from "
     "1 to 1000000"},
    {"streaming:\n  max_port_forwards: 6x\n", 2,
     "key \"streaming.max_port_forwards\": invalid value \"6x\": must be a whole number from 1 to "
     "1000000"},
    {"image:\n  pull_progress_timeout: {a: 1}\n", 2,
     "key \"image.pull_progress_timeout\" must be a scalar, not a map"},
    /* bad values */
    {"log_level: loud\n", 1,
     "key \"log_level\": invalid value \"loud\": must be one of error, warn, info, debug, trace"},
    {"log_level: INFO\n", 1,
     "key \"log_level\": invalid value \"INFO\": must be one of error, warn, info, debug, trace"},
    {"runtime:\n  cgroup_manager: cgroupv2\n", 2,
     "key \"runtime.cgroup_manager\": invalid value \"cgroupv2\": must be cgroupfs or systemd"},
    {"listen: tcp://0.0.0.0:1234\n", 1,
     "key \"listen\": invalid value \"tcp://0.0.0.0:1234\": must be unix:///absolute/path or an "
     "absolute path"},
    {"listen: unix://run/c.sock\n", 1,
     "key \"listen\": invalid value \"unix://run/c.sock\": must be unix:///absolute/path or an "
     "absolute path"},
    {"listen: /"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaa\n",
     1,
     "key \"listen\": invalid value "
     "\"/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\": "
     "socket path longer than 107 bytes"},
    {"root: var/lib/cricket\n", 1,
     "key \"root\": invalid value \"var/lib/cricket\": must be an absolute path"},
    {"runroot:\n", 1, "key \"runroot\": invalid value \"\": must be an absolute path"},
    {"network:\n  conf_dir: ''\n", 2,
     "key \"network.conf_dir\": invalid value \"\": must be an absolute path"},
    {"network:\n  plugin_dirs: [/a, bin]\n", 2,
     "key \"network.plugin_dirs[1]\": invalid value \"bin\": must be an absolute path"},
    {"runtime:\n  cdi_spec_dirs: [cdi]\n", 2,
     "key \"runtime.cdi_spec_dirs[0]\": invalid value \"cdi\": must be an absolute path"},
    {"runtime:\n  default_handler: ''\n", 2,
     "key \"runtime.default_handler\": invalid value \"\": must not be empty"},
    {"runtime:\n  conmon_path:\n", 2,
     "key \"runtime.conmon_path\": invalid value \"\": must not be empty"},
    {"runtime:\n  handlers:\n    Crun:\n", 3,
     "key \"runtime.handlers\": invalid value \"Crun\": must be a DNS label (a-z, 0-9 and '-', "
     "at most 63, starting and ending alphanumeric)"},
    {"runtime:\n  handlers:\n    crun:\n      path: ''\n", 4,
     "key \"runtime.handlers.crun.path\": invalid value \"\": must not be empty"},
    {"runtime:\n  handlers:\n    crun:\n      root: run/crun\n", 4,
     "key \"runtime.handlers.crun.root\": invalid value \"run/crun\": must be empty or an "
     "absolute path"},
    {"image:\n  registries:\n    docker.io:\n      location: ''\n", 4,
     "key \"image.registries.docker.io.location\": invalid value \"\": must not be empty"},
    {"image:\n  registries:\n    docker.io:\n      location: http://127.0.0.1:5000\n", 4,
     "key \"image.registries.docker.io.location\": invalid value \"http://127.0.0.1:5000\": "
     "must be host[:port][/path], without a scheme"},
    {"image:\n  registries:\n    docker.io:\n      mirrors:\n        - m1\n        -\n", 6,
     "key \"image.registries.docker.io.mirrors[1]\": invalid value \"\": must not be empty"},
    {"image:\n  registries:\n    '':\n", 3,
     "key \"image.registries\": invalid value \"\": must not be empty"},
    {"image:\n  insecure_registries: ['a b']\n", 2,
     "key \"image.insecure_registries[0]\": invalid value \"a b\": must not contain spaces or "
     "control characters"},
    {"image:\n  auth_file: auth.json\n", 2,
     "key \"image.auth_file\": invalid value \"auth.json\": must be empty or an absolute path"},
    {"streaming:\n  address: localhost\n", 2,
     "key \"streaming.address\": invalid value \"localhost\": must be an IPv4 or IPv6 address"},
    {"events:\n  queue_length: 0\n", 2,
     "key \"events.queue_length\": invalid value \"0\": must be a whole number from 1 to "
     "1000000"},
    {"metrics:\n  enable: yes\n", 2,
     "key \"metrics.enable\": invalid value \"yes\": must be true or false"},
    {"metrics:\n  enable: [true]\n", 2, "key \"metrics.enable\" must be a scalar, not a list"},
    {"runtime:\n  drop_infra: maybe\n", 2,
     "key \"runtime.drop_infra\": invalid value \"maybe\": must be true or false"},
    {"metrics:\n  address: localhost\n", 2,
     "key \"metrics.address\": invalid value \"localhost\": must be an IPv4 or IPv6 address"},
    {"metrics:\n  port: 65536\n", 2,
     "key \"metrics.port\": invalid value \"65536\": must be an integer from 0 to 65535"},
    {"streaming:\n  port: 65536\n", 2,
     "key \"streaming.port\": invalid value \"65536\": must be an integer from 0 to 65535"},
    {"streaming:\n  port: -1\n", 2,
     "key \"streaming.port\": invalid value \"-1\": must be an integer from 0 to 65535"},
    {"streaming:\n  port: 0x50\n", 2,
     "key \"streaming.port\": invalid value \"0x50\": must be an integer from 0 to 65535"},
    {"streaming:\n  port:\n", 2,
     "key \"streaming.port\": invalid value \"\": must be an integer from 0 to 65535"},
    {"streaming:\n  tls_cert: tls.crt\n", 2,
     "key \"streaming.tls_cert\": invalid value \"tls.crt\": must be empty or an absolute path"},
    {"streaming:\n  port: 1\n  tls_key: ./k\n", 3,
     "key \"streaming.tls_key\": invalid value \"./k\": must be empty or an absolute path"},
    {"streaming:\n  tls_client_ca: ca.pem\n", 2,
     "key \"streaming.tls_client_ca\": invalid value \"ca.pem\": must be empty or an absolute "
     "path"},
    {"streaming:\n  tls_cert: [/a]\n", 2,
     "key \"streaming.tls_cert\" must be a scalar, not a list"},
    {"image:\n  pull_progress_timeout: 30\n", 2,
     "key \"image.pull_progress_timeout\": invalid value \"30\": missing unit (use ms, s, m or "
     "h)"},
    {"image:\n  pull_progress_timeout: 1d\n", 2,
     "key \"image.pull_progress_timeout\": invalid value \"1d\": unknown unit (use ms, s, m or "
     "h)"},
    {"image:\n  pull_progress_timeout: -1s\n", 2,
     "key \"image.pull_progress_timeout\": invalid value \"-1s\": must not be negative"},
    {"image:\n  pull_progress_timeout: 1.0001s\n", 2,
     "key \"image.pull_progress_timeout\": invalid value \"1.0001s\": must be a whole number of "
     "milliseconds"},
    {"image:\n  pull_progress_timeout: 1m30\n", 2,
     "key \"image.pull_progress_timeout\": invalid value \"1m30\": missing unit (use ms, s, m or "
     "h)"},
    {"image:\n  pull_progress_timeout: ms\n", 2,
     "key \"image.pull_progress_timeout\": invalid value \"ms\": must be a duration such as "
     "500ms, 30s, 1m30s or 2h"},
    {"image:\n  pull_progress_timeout:\n", 2,
     "key \"image.pull_progress_timeout\": invalid value \"\": must be a duration such as 500ms, "
     "30s, 1m30s or 2h"},
    {"image:\n  max_layer_entries: -1\n", 2,
     "key \"image.max_layer_entries\": invalid value \"-1\": must be a whole number such as 1000 "
     "or 64Gi"},
    {"image:\n  max_layer_entries: 10k\n", 2,
     "key \"image.max_layer_entries\": invalid value \"10k\": unknown suffix (use Ki, Mi, Gi or "
     "Ti)"},
    {"image:\n  max_layer_unpacked_bytes: 18446744073709551616\n", 2,
     "key \"image.max_layer_unpacked_bytes\": invalid value \"18446744073709551616\": too large"},
    {"image:\n  max_layer_unpacked_bytes: 17179869184Gi\n", 2,
     "key \"image.max_layer_unpacked_bytes\": invalid value \"17179869184Gi\": too large"},
    {"image:\n  max_layer_unpacked_bytes: [1]\n", 2,
     "key \"image.max_layer_unpacked_bytes\" must be a scalar, not a list"},
    {"image:\n  pull_progress_timeout: 9999999999999999999h\n", 2,
     "key \"image.pull_progress_timeout\": invalid value \"9999999999999999999h\": too large"},
    {"root: \"/a\\nb\"\nlog_level: \"x\\ty\"\n", 2,
     "key \"log_level\": invalid value \"x?y\": must be one of error, warn, info, debug, trace"},
    /* not plain data */
    {"root: &r /x\nrunroot: *r\n", 1, "anchors and aliases are not supported (anchor \"&r\")"},
    {"root: /x\nrunroot: *r\n", 2, "anchors and aliases are not supported (alias \"*r\")"},
    {"network:\n  plugin_dirs: &dirs\n    - /a\n", 2,
     "anchors and aliases are not supported (anchor \"&dirs\")"},
    {"root: !!str /x\n", 1, "tags are not supported (tag \"tag:yaml.org,2002:str\")"},
    {"runtime: !custom\n  cgroup_manager: systemd\n", 1,
     "tags are not supported (tag \"!custom\")"},
    /* shape */
    {"- root: /x\n", 1, "the top level must be a map, not a list"},
    {"hello\n", 1, "the top level must be a map, not a scalar"},
    {"root: /x\n---\nroot: /y\n", 2, "more than one YAML document"},
    {"? [a]\n: b\n", 1, "a key must be a scalar, not a list"},
    {"root: /x\n? {a: b}\n: c\n", 2, "a key must be a scalar, not a map"},
    {"runtime:\n  handlers:\n    crun:\n      path: [[[[[[[[x]]]]]]]]\n", 4,
     "nesting deeper than 8 levels"},
};

static void test_parse_errors(void **state)
{
    for (size_t i = 0; i < ARRAY_SIZE(parse_errors); i++) {
        cleanup_free char *path = put_file(*state, "bad.yaml", parse_errors[i].yaml);
        cleanup_free char *want =
            xasprintf("%s:%d: %s", path, parse_errors[i].line, parse_errors[i].msg);
        cleanup_conf conf_t *c = conf_new_defaults(EXE_DIR);
        cleanup_conf conf_t *defaults = conf_new_defaults(EXE_DIR);
        cri_error_t err = CRI_ERROR_INIT;
        if (conf_load_file(c, path, &err) != -1)
            fail_msg("case %zu: loaded, want error %s", i, want);
        assert_int_equal(err.status, EINVAL);
        if (strcmp(err.msg, want) != 0)
            fail_msg("case %zu:\n got: %s\nwant: %s", i, err.msg, want);
        /* a failed load leaves the config untouched */
        assert_conf_equal(c, defaults);
    }
}

static void test_error_in_dropin(void **state)
{
    const char *dir = *state;
    cleanup_free char *main_path = put_file(dir, "cricket.yaml", "log_level: debug\n");
    cleanup_free char *d = make_dir(dir, "cricket.d");
    free(put_file(d, "10-ok.yaml", "root: /ok\n"));
    cleanup_free char *bad = put_file(d, "20-bad.yaml", "# comment\nruntime:\n  cgroup: x\n");
    free(put_file(d, "30-never.yaml", "runroot: /never\n"));
    cleanup_free char *want = xasprintf("%s:3: unknown key \"runtime.cgroup\"", bad);

    cleanup_conf conf_t *c = conf_new_defaults(EXE_DIR);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(conf_load(c, main_path, d, true, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_string_equal(err.msg, want);
    assert_get(c, "runroot", "/run/cricket");
}

static void test_size_limit(void **state)
{
    const char *dir = *state;
    size_t max = CONF_MAX_FILE_SIZE;
    cleanup_free char *text = xmalloc(max + 2);

    /* exactly the limit: one long comment line */
    memset(text, 'x', max);
    text[0] = '#';
    text[max - 1] = '\n';
    text[max] = '\0';
    cleanup_free char *ok = put_file(dir, "ok.yaml", text);
    cleanup_conf conf_t *c = conf_new_defaults(EXE_DIR);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(conf_load_file(c, ok, &err), 0);

    /* one byte more */
    text[max] = '\n';
    text[max + 1] = '\0';
    cleanup_free char *big = put_file(dir, "big.yaml", text);
    cleanup_free char *want = xasprintf("%s: larger than %zu bytes", big, CONF_MAX_FILE_SIZE);
    assert_int_equal(conf_load_file(c, big, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_string_equal(err.msg, want);

    cri_error_clear(&err);
    assert_int_equal(conf_load_buffer(c, "mem", text, max + 1, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_string_equal(err.msg, "mem: larger than 1048576 bytes");
}

static void test_too_many_entries(void **state)
{
    size_t n = 1100;
    cleanup_free char *text = xstrdup("network:\n  plugin_dirs:\n");
    for (size_t i = 0; i < n; i++) {
        char *t = xasprintf("%s    - /d%zu\n", text, i);
        free(text);
        text = t;
    }
    cleanup_free char *path = put_file(*state, "many.yaml", text);
    cleanup_free char *want =
        xasprintf("%s:3: key \"network.plugin_dirs\" has more than 1024 entries", path);
    cleanup_conf conf_t *c = conf_new_defaults(EXE_DIR);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(conf_load_file(c, path, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_string_equal(err.msg, want);

    /* too many nodes in all: caught while parsing, at the node past the limit */
    cleanup_free char *flow = xstrdup("image:\n  insecure_registries: [");
    for (size_t i = 0; i < 9000; i++) {
        char *t = xasprintf("%s%sr%zu", flow, i ? ", " : "", i);
        free(flow);
        flow = t;
        if (i % 1000 == 999) { /* one line per thousand */
            t = xasprintf("%s\n", flow);
            free(flow);
            flow = t;
        }
    }
    cleanup_free char *big = put_file(*state, "nodes.yaml", flow);
    cleanup_free char *want_nodes = xasprintf("%s:10: more than 8192 nodes", big);
    cri_error_clear(&err);
    assert_int_equal(conf_load_file(c, big, &err), -1);
    assert_int_equal(err.status, EINVAL);
    assert_string_equal(err.msg, want_nodes);
}

/* ---- validation after merging points at the origin ---- */

static void test_validate(void **state)
{
    const char *dir = *state;
    static const struct {
        const char *main, *dropin;
        int in_dropin; /* 1: the message names the drop-in, 0: the main file */
        int line;
        const char *msg; /* NULL: valid */
    } cases[] = {
        {"runtime:\n  default_handler: crun\n", NULL, 0, 2,
         "key \"runtime.default_handler\": invalid value \"crun\": no such entry in "
         "runtime.handlers"},
        {"runtime:\n  default_handler: crun\n  handlers:\n    crun:\n", NULL, 0, 0, NULL},
        {"runtime:\n  default_handler: crun\n", "runtime:\n  handlers:\n    crun:\n", 0, 0, NULL},
        {"runtime:\n  handlers:\n    crun:\n  default_handler: crun\n",
         "# kata next\nruntime:\n  default_handler: kata\n", 1, 3,
         "key \"runtime.default_handler\": invalid value \"kata\": no such entry in "
         "runtime.handlers"},
        {"log_level: debug\n\n\nruntime:\n  default_handler: kata\n",
         "runtime:\n  cgroup_manager: systemd\n", 0, 5,
         "key \"runtime.default_handler\": invalid value \"kata\": no such entry in "
         "runtime.handlers"},
        /* TLS: cert and key together; a client CA only with them */
        {"streaming:\n  tls_cert: /c.pem\n  tls_key: /k.pem\n", NULL, 0, 0, NULL},
        {"streaming:\n  tls_cert: /c.pem\n  tls_key: /k.pem\n  tls_client_ca: /ca.pem\n", NULL, 0,
         0, NULL},
        {"streaming:\n  tls_cert: /c.pem\n", "streaming:\n  tls_key: /k.pem\n", 0, 0, NULL},
        {"streaming:\n  port: 1\n  tls_cert: /c.pem\n", NULL, 0, 3,
         "key \"streaming.tls_cert\": invalid value \"/c.pem\": streaming.tls_key must be set "
         "too"},
        {"streaming:\n  tls_key: /k.pem\n", NULL, 0, 2,
         "key \"streaming.tls_key\": invalid value \"/k.pem\": streaming.tls_cert must be set "
         "too"},
        {"streaming:\n  tls_cert: /c.pem\n  tls_key: /k.pem\n", "streaming:\n  tls_key: \"\"\n", 0,
         2,
         "key \"streaming.tls_cert\": invalid value \"/c.pem\": streaming.tls_key must be set "
         "too"},
        {"streaming:\n  tls_client_ca: /ca.pem\n", NULL, 0, 2,
         "key \"streaming.tls_client_ca\": invalid value \"/ca.pem\": needs "
         "streaming.tls_cert and streaming.tls_key"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        cleanup_free char *sub = xasprintf("case%zu", i);
        cleanup_free char *d = make_dir(dir, sub);
        cleanup_free char *main_path = put_file(d, "cricket.yaml", cases[i].main);
        cleanup_free char *dropin_dir = make_dir(d, "cricket.d");
        cleanup_free char *dropin =
            cases[i].dropin ? put_file(dropin_dir, "50-x.yaml", cases[i].dropin) : NULL;
        cleanup_conf conf_t *c = conf_new_defaults(EXE_DIR);
        cri_error_t err = CRI_ERROR_INIT;
        assert_int_equal(conf_load(c, main_path, dropin_dir, true, &err), 0);
        int r = conf_validate(c, &err);
        if (!cases[i].msg) {
            if (r != 0)
                fail_msg("case %zu: %s", i, err.msg);
            continue;
        }
        cleanup_free char *want = xasprintf("%s:%d: %s", cases[i].in_dropin ? dropin : main_path,
                                            cases[i].line, cases[i].msg);
        assert_int_equal(r, -1);
        assert_int_equal(err.status, EINVAL);
        if (strcmp(err.msg, want) != 0)
            fail_msg("case %zu:\n got: %s\nwant: %s", i, err.msg, want);
    }
}

/* Values set by code have no origin: the message has no file:line. */
static void test_validate_code_values(void **state)
{
    static const struct {
        const char *msg;
    } cases[] = {
        {"key \"root\": invalid value \"relative\": must be an absolute path"},
        {"key \"streaming.port\": invalid value \"70000\": must be an integer from 0 to 65535"},
        {"key \"network.plugin_dirs[1]\": invalid value \"cni\": must be an absolute path"},
        {"key \"runtime.handlers.runc.path\": invalid value \"\": must not be empty"},
        {"key \"image.registries.docker.io.mirrors[0]\": invalid value \"https://m\": must be "
         "host[:port][/path], without a scheme"},
        {"key \"listen\": invalid value \"tcp://x\": must be unix:///absolute/path or an "
         "absolute path"},
        {"key \"streaming.tls_key\": invalid value \"/k\": streaming.tls_cert must be set "
         "too"},
        {"key \"streaming.max_connections_per_client\": invalid value \"0\": must be a "
         "whole number from 1 to 1000000"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        cleanup_conf conf_t *c = load_text(*state, "image:\n  registries:\n    docker.io:\n");
        cri_error_t err = CRI_ERROR_INIT;
        switch (i) {
        case 0:
            str_set(&c->root, "relative");
            break;
        case 1:
            c->streaming.port = 70000;
            break;
        case 2:
            str_set(&c->network.plugin_dirs[1], "cni");
            break;
        case 3:
            str_set(&c->runtime.handlers[0].path, "");
            break;
        case 4:
            strv_free(c->image.registries[0].mirrors);
            c->image.registries[0].mirrors = xcalloc(2, sizeof(char *));
            c->image.registries[0].mirrors[0] = xstrdup("https://m");
            break;
        case 5:
            str_set(&c->listen, "tcp://x");
            break;
        case 6:
            str_set(&c->streaming.tls_key, "/k");
            break;
        case 7:
            c->streaming.max_connections_per_client = 0;
            break;
        }
        assert_int_equal(conf_validate(c, &err), -1);
        assert_int_equal(err.status, EINVAL);
        assert_string_equal(err.msg, cases[i].msg);
    }
}

/* ---- conf_to_yaml round trip ---- */

static const char *const round_trip_texts[] = {
    "",
    "listen: /tmp/rt.sock\n"
    "root: /srv/c\n"
    "runroot: /run/c\n"
    "log_level: trace\n"
    "runtime:\n"
    "  default_handler: crun\n"
    "  handlers:\n"
    "    crun:\n"
    "      path: /usr/bin/crun\n"
    "      root: /run/crun\n"
    "    kata:\n"
    "    runc:\n"
    "      path: /usr/sbin/runc\n"
    "  cgroup_manager: systemd\n"
    "  conmon_path: \"/opt/with space/conmon\"\n"
    "  pause_path: /opt/p\n"
    "network:\n"
    "  conf_dir: /etc/cni/x\n"
    "  plugin_dirs: []\n"
    "  default_network: \"~\"\n"
    "image:\n"
    "  registries:\n"
    "    docker.io:\n"
    "      location: 127.0.0.1:5000/library\n"
    "      mirrors: [m1:5000, m2]\n"
    "    \"null\":\n"
    "    quay.io:\n"
    "      mirrors: []\n"
    "  insecure_registries: [\"127.0.0.1:5000\", 'NULL']\n"
    "  pause_image: \"null\"\n"
    "  pull_progress_timeout: 1h2m3.5s\n"
    "  auth_file: \"/etc/c/a: b.json\"\n"
    "  pull_timeout: 90s\n"
    "  max_layer_unpacked_bytes: 5Gi\n"
    "  max_layer_entries: 0\n"
    "streaming:\n"
    "  address: \"::\"\n"
    "  port: 65535\n"
    "  tls_cert: /etc/c/tls.crt\n"
    "  tls_key: \"/etc/c/tls key.pem\"\n"
    "  tls_client_ca: /etc/c/ca.crt\n"
    "  max_connections: 7\n"
    "  max_connections_per_client: 3\n"
    "  max_port_forwards: 2\n"
    "  handshake_timeout: 2.5s\n"
    "  idle_timeout: 0\n",
    "network:\n"
    "  default_network: \"123\"\n"
    "image:\n"
    "  pause_image: \"- not a list: [x] # nor a comment \\u00e9\"\n"
    "  pull_progress_timeout: 999ms\n",
    "image:\n  pull_progress_timeout: 61001ms\n",
    "image:\n  pull_progress_timeout: 0\n",
    "image:\n  pull_progress_timeout: 100h\n",
    "image:\n  pull_progress_timeout: 60m\n",
    "image:\n  pause_image: \"line 1\\nline 2\\n\\n  indented\\n\"\n"
    "  auth_file: \"/a\\tb \"\n"
    "network:\n  default_network: \" lead'ing \\\"quote\\\" and \\\\ back\"\n",
    "image:\n  pause_image: \"#hash\"\n  auth_file: \"/x: y # z\"\n"
    "network:\n  default_network: \"\\u00e9t\\u00e9 \\U0001F600 \\x01\"\n",
    "network:\n  default_network: \"key: value\"\n"
    "image:\n  pause_image: \"- x\"\n  insecure_registries: [\"[a]\", \"{b}\", \"*c\", \"&d\", "
    "\"!e\", \"%f\", \"@g\", \"'h'\", \"yes\", \"0x1F\"]\n",
};

static void test_round_trip(void **state)
{
    for (size_t i = 0; i < ARRAY_SIZE(round_trip_texts); i++) {
        cleanup_conf conf_t *a = load_text(*state, round_trip_texts[i]);
        cri_error_t err = CRI_ERROR_INIT;
        assert_int_equal(conf_validate(a, &err), 0);
        cleanup_free char *yaml = conf_to_yaml(a, &err);
        assert_non_null(yaml);

        cleanup_conf conf_t *b = conf_new_defaults(EXE_DIR);
        if (conf_load_buffer(b, "emitted", yaml, strlen(yaml), &err) < 0)
            fail_msg("case %zu: %s\n%s", i, err.msg, yaml);
        assert_conf_equal(a, b);
        assert_int_equal(conf_validate(b, &err), 0);
        cleanup_free char *again = conf_to_yaml(b, &err);
        assert_non_null(again);
        assert_string_equal(yaml, again);
    }
}

static void test_to_yaml_shape(void **state)
{
    cleanup_conf conf_t *c = conf_new_defaults(EXE_DIR);
    cri_error_t err = CRI_ERROR_INIT;
    cleanup_free char *yaml = conf_to_yaml(c, &err);
    assert_non_null(yaml);
    static const char want[] = "listen: unix:///run/cricket/cricket.sock\n"
                               "root: /var/lib/cricket\n"
                               "runroot: /run/cricket\n"
                               "log_level: info\n"
                               "runtime:\n"
                               "  default_handler: runc\n"
                               "  handlers:\n"
                               "    runc:\n"
                               "      path: runc\n"
                               "      root: \"\"\n"
                               "  cgroup_manager: cgroupfs\n"
                               "  conmon_path: /usr/local/bin/cricket-conmon\n"
                               "  pause_path: /usr/local/bin/cricket-pause\n"
                               "  cdi_spec_dirs:\n"
                               "  - /etc/cdi\n"
                               "  - /var/run/cdi\n"
                               "  drop_infra: true\n"
                               "network:\n"
                               "  conf_dir: /etc/cni/net.d\n"
                               "  plugin_dirs:\n"
                               "  - /opt/cni/bin\n"
                               "  - /usr/lib/cni\n"
                               "  default_network: \"\"\n"
                               "  plugin_timeout: 1m\n"
                               "image:\n"
                               "  registries: {}\n"
                               "  insecure_registries: []\n"
                               "  pause_image: \"\"\n"
                               "  pull_progress_timeout: 1m\n"
                               "  auth_file: \"\"\n"
                               "  pull_timeout: 1h\n"
                               "  max_layer_unpacked_bytes: 68719476736\n"
                               "  max_layer_entries: 1000000\n"
                               "streaming:\n"
                               "  address: 127.0.0.1\n"
                               "  port: 0\n"
                               "  tls_cert: \"\"\n"
                               "  tls_key: \"\"\n"
                               "  tls_client_ca: \"\"\n"
                               "  max_connections: 1024\n"
                               "  max_connections_per_client: 128\n"
                               "  max_port_forwards: 64\n"
                               "  handshake_timeout: 10s\n"
                               "  idle_timeout: 4h\n"
                               "events:\n"
                               "  queue_length: 1024\n"
                               "metrics:\n"
                               "  enable: false\n"
                               "  address: 127.0.0.1\n"
                               "  port: 9090\n";
    assert_string_equal(yaml, want);

    /* a string set by code that is not UTF-8 cannot be emitted */
    str_set(&c->image.pause_image, "bad\xff");
    assert_null(conf_to_yaml(c, &err));
    assert_int_equal(err.status, EINVAL);
}

/* ---- the shipped conf/cricket.yaml ---- */

/* __FILE__ is test/unit/test_conf.c: the repo is two levels up. */
static char *source_path(const char *rel)
{
    const char *slash = strrchr(__FILE__, '/');
    size_t len = slash ? (size_t)(slash - __FILE__) : 1;
    return xasprintf("%.*s/../../%s", (int)len, slash ? __FILE__ : ".", rel);
}

static void test_shipped_config(void **state)
{
    cleanup_free char *path = source_path("conf/cricket.yaml");
    cleanup_conf conf_t *c = conf_new_defaults(EXE_DIR);
    cleanup_conf conf_t *defaults = conf_new_defaults(EXE_DIR);
    cri_error_t err = CRI_ERROR_INIT;
    if (conf_load(c, path, NULL, true, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(conf_validate(c, &err), 0);
    /* it documents the defaults, so it changes nothing */
    assert_conf_equal(c, defaults);

    /* every key the emitter knows is documented in it */
    cleanup_free char *text = NULL;
    assert_int_equal(read_file(path, CONF_MAX_FILE_SIZE, &text, NULL, &err), 0);
    cleanup_free char *yaml = conf_to_yaml(defaults, &err);
    assert_non_null(yaml);
    for (char *line = yaml; *line;) {
        char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        cleanup_free char *l = xstrndup(line, n);
        char *colon = strchr(l, ':');
        char *key = l + strspn(l, " ");
        if (colon && *key != '-') {
            colon[1] = '\0';
            if (!strstr(text, key))
                fail_msg("key %s is not documented in %s", key, path);
        }
        line += n + (end ? 1 : 0);
    }
}

static void test_find(void **state)
{
    cleanup_conf conf_t *c = load_text(*state, "runtime:\n  handlers:\n    crun:\n"
                                               "image:\n  registries:\n    docker.io:\n");
    assert_non_null(conf_find_handler(c, "runc"));
    assert_string_equal(conf_find_handler(c, "crun")->path, "crun");
    assert_null(conf_find_handler(c, "kata"));
    assert_string_equal(conf_find_registry(c, "docker.io")->location, "docker.io");
    assert_null(conf_find_registry(c, "quay.io"));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_tmpdir, teardown_tmpdir)
    const struct CMUnitTest tests[] = {
        T(test_defaults),
        T(test_empty_files),
        T(test_each_key),
        T(test_merge_order),
        T(test_lists_replace_maps_merge),
        T(test_missing_files),
        T(test_parse_errors),
        T(test_error_in_dropin),
        T(test_size_limit),
        T(test_too_many_entries),
        T(test_validate),
        T(test_validate_code_values),
        T(test_round_trip),
        T(test_to_yaml_shape),
        T(test_shipped_config),
        T(test_find),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
