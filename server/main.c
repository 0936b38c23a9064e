/* cricketd: the Kubernetes CRI runtime daemon.
 *
 * Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT), 1 when the daemon
 * cannot start (socket or root held by another daemon, bind failure), 2
 * for a bad command line or configuration. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "conf/conf.h"
#include "server/container/container.h"
#include "server/daemon.h"
#include "server/exits.h"
#include "server/image/image.h"
#include "server/metrics_server.h"
#include "server/notify.h"
#include "server/orphans.h"
#include "server/rpc.h"
#include "server/sandbox/sandbox.h"
#include "server/streaming/streaming.h"
#include "server/testhooks.h"

#define SHUTDOWN_GRACE_MS 5000

struct options {
    const char *config;
    const char *config_dir;
    const char *listen;
    const char *root;
    const char *runroot;
    const char *log_level;
    bool print_config;
};

static void usage(FILE *out)
{
    (void)fprintf(out, "Usage: cricketd [OPTIONS] [config]\n"
                       "\n"
                       "Serves the Kubernetes CRI (runtime.v1) on a unix socket.\n"
                       "\n"
                       "  -c, --config FILE      config file (default " CONF_DEFAULT_PATH ";\n"
                       "                         a missing default file means built-in defaults)\n"
                       "      --config-dir DIR   drop-in dir, *.yaml in lexical order (default\n"
                       "                         " CONF_DEFAULT_DROPIN_DIR
                       ", or cricket.d beside --config)\n"
                       "  -l, --listen ADDR      CRI socket, unix:///path (default "
                       "unix:///run/cricket/cricket.sock)\n"
                       "      --root DIR         persistent state (default /var/lib/cricket)\n"
                       "      --runroot DIR      volatile state (default /run/cricket)\n"
                       "      --log-level L      error|warn|info|debug|trace (default info)\n"
                       "  -v, --version          print the version and exit\n"
                       "  -h, --help             print this help and exit\n"
                       "\n"
                       "Commands:\n"
                       "  config                 print the effective config as YAML and exit\n");
}

static int parse_args(int argc, char **argv, struct options *o)
{
    enum { OPT_ROOT = 256, OPT_RUNROOT, OPT_LOG_LEVEL, OPT_CONFIG_DIR };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"config-dir", required_argument, NULL, OPT_CONFIG_DIR},
        {"listen", required_argument, NULL, 'l'},
        {"root", required_argument, NULL, OPT_ROOT},
        {"runroot", required_argument, NULL, OPT_RUNROOT},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:l:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case OPT_CONFIG_DIR:
            o->config_dir = optarg;
            break;
        case 'l':
            o->listen = optarg;
            break;
        case OPT_ROOT:
            o->root = optarg;
            break;
        case OPT_RUNROOT:
            o->runroot = optarg;
            break;
        case OPT_LOG_LEVEL:
            o->log_level = optarg;
            break;
        case 'v':
            printf("cricketd version %s (CRI runtime.v1)\n", CRICKET_VERSION);
            exit(0);
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        if (strcmp(argv[optind], "config") != 0 || optind + 1 != argc) {
            (void)fprintf(stderr, "cricketd: unknown command `%s`\n", argv[optind]);
            usage(stderr);
            return -1;
        }
        o->print_config = true;
    }
    return 0;
}

/* Where the helper binaries (cricket-conmon, cricket-pause) are: beside the
 * running binary when they are there (a build tree), else the install's
 * libexec dir. */
static char *helper_dir(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0)
        return xstrdup(CRICKET_LIBEXECDIR);
    buf[n] = '\0';
    cleanup_free char *dir = xstrdup(dirname(buf));
    cleanup_free char *conmon = xasprintf("%s/cricket-conmon", dir);
    if (access(conmon, X_OK) == 0)
        return TAKE_PTR(dir);
    return xstrdup(CRICKET_LIBEXECDIR);
}

static conf_t *load_config(const struct options *o, cri_error_t *err)
{
    cleanup_free char *dir = helper_dir();
    cleanup_conf conf_t *conf = conf_new_defaults(dir);
    const char *main_path = o->config ? o->config : CONF_DEFAULT_PATH;
    cleanup_free char *dropins = NULL;
    if (o->config_dir) {
        dropins = xstrdup(o->config_dir);
    } else if (o->config) {
        cleanup_free char *copy = xstrdup(o->config);
        dropins = xasprintf("%s/cricket.d", dirname(copy));
    } else {
        dropins = xstrdup(CONF_DEFAULT_DROPIN_DIR);
    }
    if (conf_load(conf, main_path, dropins, o->config != NULL, err) < 0)
        return NULL;

    /* command-line flags override every file */
    if (o->listen) {
        if (o->listen[0] == '/')
            conf->listen = (free(conf->listen), xasprintf("unix://%s", o->listen));
        else
            str_set(&conf->listen, o->listen);
    }
    if (o->root)
        str_set(&conf->root, o->root);
    if (o->runroot)
        str_set(&conf->runroot, o->runroot);
    if (o->log_level)
        str_set(&conf->log_level, o->log_level);
    if (conf_validate(conf, err) < 0)
        return NULL;
    return TAKE_PTR(conf);
}

/* Exit watcher callback: infra containers mark their pod NOTREADY, the
 * others record their exit. */
static void on_exit_file(const char *id, const conmon_exit_t *e, void *data)
{
    daemon_t *d = data;
    if (!sandbox_on_infra_exit(d, id))
        container_on_exit(d, id, e);
}

/* Monitor watch callback: a monitor died without an exit file. */
static void on_monitor_death(const char *id, const exit_watcher_death_t *death, void *data)
{
    daemon_t *d = data;
    if (!sandbox_on_infra_monitor_death(d, id, death))
        container_on_monitor_death(d, id, death);
}

/* Debug log of how long a startup step took (issue 15: time to serving). */
static void startup_step(const char *what, int64_t *since)
{
    int64_t now = now_unix_ns();
    log_debug("startup: %s took %lld us", what, (long long)((now - *since) / 1000));
    *since = now;
}

static int serve(conf_t *conf, const struct options *o)
{
    cri_error_t err = CRI_ERROR_INIT;
    daemon_t d;

    /* gRPC's threads inherit this mask: signals reach only sigwait below. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    (void)signal(SIGPIPE, SIG_IGN);

    int64_t step = now_unix_ns();
    if (daemon_open(&d, conf, &err) < 0) {
        log_error("start: %s", err.msg);
        conf_free(conf);
        return 1;
    }
    if (image_store_check_pull_helper(d.images, &err) < 0) {
        log_error("start: %s", err.msg);
        daemon_close(&d);
        return 1;
    }
    startup_step("store, image GC, runtimes", &step);
    size_t ctrs = 0, pods = 0;
    /* before recovery tears anything down: a helper of the previous daemon
     * that finished afterwards would undo the teardown (server/orphans.h) */
    orphans_wait(&d);
    startup_step("helpers of the previous daemon", &step);
    container_recover(&d, &ctrs, &err);
    startup_step("container recovery", &step);
    log_info("recovered %zu containers", ctrs);
    if (sandbox_recover(&d, &pods, &err) < 0) {
        log_error("start: %s", err.msg);
        daemon_close(&d);
        return 1;
    }
    log_info("recovered %zu pod sandboxes", pods);
    startup_step("pod recovery", &step);
    /* after recovery: it reports the exits that happened while we were down */
    if (exit_watcher_start(d.exit_dir, on_exit_file, &d, &d.exits, &err) < 0) {
        log_error("start: exit watcher: %s", err.msg);
        daemon_close(&d);
        return 1;
    }
    exit_watcher_on_monitor_death(d.exits, on_monitor_death);
    container_watch_monitors(&d);
    sandbox_watch_monitors(&d);
    startup_step("exit watcher and monitors", &step);
    /* asked while we recovered; before any handler builds a spec */
    daemon_features_wait(&d);
    startup_step("runtime features", &step);
    /* before the gRPC server, so no handler ever sees d.streaming change */
    streaming_config_t scfg = {
        .address = d.conf->streaming.address,
        .port = d.conf->streaming.port,
        .tls_cert = d.conf->streaming.tls_cert,
        .tls_key = d.conf->streaming.tls_key,
        .tls_client_ca = d.conf->streaming.tls_client_ca,
        .max_connections = d.conf->streaming.max_connections,
        .max_connections_per_client = d.conf->streaming.max_connections_per_client,
        .max_port_forwards = d.conf->streaming.max_port_forwards,
        .handshake_timeout_ms = (int64_t)d.conf->streaming.handshake_timeout_ms,
        .idle_timeout_ms = (int64_t)d.conf->streaming.idle_timeout_ms,
        .daemon = &d};
    if (streaming_server_start(&scfg, &d.streaming, &err) < 0) {
        log_error("start: streaming server: %s", err.msg);
        exit_watcher_stop(d.exits);
        daemon_close(&d);
        return 1;
    }
    log_info("streaming server on %s", streaming_server_base_url(d.streaming));
    startup_step("streaming server", &step);
    rpc_server_t *srv = NULL;
    if (rpc_server_start(&d, d.conf->listen, &srv, &err) < 0) {
        log_error("start: %s", err.msg);
        streaming_server_stop(d.streaming);
        exit_watcher_stop(d.exits);
        daemon_close(&d);
        return 1;
    }
    startup_step("CRI server", &step);
    metrics_server_t *metrics = NULL;
    if (d.conf->metrics.enable) {
        if (metrics_server_start(&d, d.conf->metrics.address, d.conf->metrics.port, &metrics,
                                 &err) < 0) {
            log_error("start: metrics server: %s", err.msg);
            rpc_server_stop(srv, 0);
            streaming_server_stop(d.streaming);
            exit_watcher_stop(d.exits);
            daemon_close(&d);
            return 1;
        }
        log_info("metrics server on http://%s%s%s:%d/metrics",
                 strchr(d.conf->metrics.address, ':') ? "[" : "", d.conf->metrics.address,
                 strchr(d.conf->metrics.address, ':') ? "]" : "", metrics_server_port(metrics));
    }
    log_info("cricketd %s serving CRI on %s (root %s, runroot %s)", CRICKET_VERSION, d.conf->listen,
             d.root, d.runroot);
    /* Type=notify: kubelet (After=cricket.service) starts once the socket answers */
    cri_error_t nerr = CRI_ERROR_INIT;
    if (notify_service_manager("READY=1", &nerr) < 0)
        log_warn("%s, ignoring", nerr.msg);

    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGUSR1) {
            log_info("state: listen=%s root=%s runroot=%s uptime_s=%lld", d.conf->listen, d.root,
                     d.runroot, (long long)((now_unix_ns() - d.started_ns) / 1000000000));
            cleanup_free char *config = daemon_config_json(&d);
            log_info("config: %s", config);
            continue;
        }
        if (sig == SIGHUP) {
            /* the same files and flags as at startup, validated the same way */
            cri_error_t rerr = CRI_ERROR_INIT;
            conf_t *fresh = load_config(o, &rerr);
            if (fresh)
                daemon_reload(&d, fresh);
            else
                log_error("reload: %s; the running config stays", rerr.msg);
            continue;
        }
        log_info("received %s, shutting down", strsignal(sig));
        notify_service_manager("STOPPING=1", &nerr);
        break;
    }
    metrics_server_stop(metrics);
    rpc_server_stop(srv, SHUTDOWN_GRACE_MS);
    streaming_server_stop(d.streaming);
    d.streaming = NULL;
    exit_watcher_stop(d.exits);
    d.exits = NULL;
    daemon_close(&d);
    log_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    /* Fixed malloc thresholds: glibc otherwise raises both after the first
     * big free (up to 32 MiB and 64 MiB), and each thread's malloc arena then
     * keeps a big request's memory for good. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    testhook_failpoint_list(); /* cricketd-test only: CRICKET_FAILPOINT=list */
    struct options o = {0};
    if (parse_args(argc, argv, &o) < 0)
        return 2;

    cri_error_t err = CRI_ERROR_INIT;
    conf_t *conf = load_config(&o, &err);
    if (!conf) {
        (void)fprintf(stderr, "cricketd: %s\n", err.msg);
        return 2;
    }
    if (o.print_config) {
        char *yaml = conf_to_yaml(conf, &err);
        conf_free(conf);
        if (!yaml) {
            (void)fprintf(stderr, "cricketd: %s\n", err.msg);
            return 2;
        }
        bool ok = fputs(yaml, stdout) != EOF && fflush(stdout) == 0;
        free(yaml);
        if (!ok) {
            (void)fprintf(stderr, "cricketd: cannot write the configuration: %s\n",
                          strerror(errno));
            return 1;
        }
        return 0;
    }
    log_set_level((log_level_t)log_level_parse(conf->log_level));
    return serve(conf, &o);
}
