/* The fake world of fakes.h. */
#include "fakes.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "conf/conf.h"
#include "server/handlers.h"
#include "server/image/store/store-internal.h"
#include "server/rpc-ctx.h"

#define FAKE_MAX_CALLS 512
#define FAKE_MAX_LIVE 64
#define FAKE_MAX_FAILS 8

typedef struct fake_call {
    char op[24];
    char *arg;
} fake_call_t;

typedef struct fake_item {
    char kind[16];
    char key[512];
    oci_status_t status; /* containers */
} fake_item_t;

static struct {
    pthread_mutex_t lock;
    fake_call_t calls[FAKE_MAX_CALLS];
    int n_calls;
    struct {
        char op[24];
        int nth, status;
    } fails[FAKE_MAX_FAILS];
    int n_fails;
    fake_item_t live[FAKE_MAX_LIVE];
    char exit_dir[512];
    int next_pid;
} W = {.lock = PTHREAD_MUTEX_INITIALIZER};

#define KIND_CONTAINER "container"

void fakes_reset(const char *exit_dir)
{
    pthread_mutex_lock(&W.lock);
    for (int i = 0; i < W.n_calls; i++)
        free(W.calls[i].arg);
    W.n_calls = 0;
    W.n_fails = 0;
    memset(W.live, 0, sizeof(W.live));
    snprintf(W.exit_dir, sizeof(W.exit_dir), "%s", exit_dir ? exit_dir : "");
    W.next_pid = 1000;
    pthread_mutex_unlock(&W.lock);
}

void fakes_fail(const char *op, int nth, int status)
{
    pthread_mutex_lock(&W.lock);
    assert_true(W.n_fails < FAKE_MAX_FAILS);
    int already = 0;
    for (int i = 0; i < W.n_calls; i++)
        already += strcmp(W.calls[i].op, op) == 0;
    snprintf(W.fails[W.n_fails].op, sizeof(W.fails[0].op), "%s", op);
    W.fails[W.n_fails].nth = already + nth;
    W.fails[W.n_fails].status = status;
    W.n_fails++;
    pthread_mutex_unlock(&W.lock);
}

/* Records a call (under W.lock) and says whether it must fail: 0, or the
 * errno to fail with. */
static int record_locked(const char *op, char *arg)
{
    assert_true(W.n_calls < FAKE_MAX_CALLS);
    snprintf(W.calls[W.n_calls].op, sizeof(W.calls[0].op), "%s", op);
    W.calls[W.n_calls].arg = arg;
    W.n_calls++;
    int nth = 0;
    for (int i = 0; i < W.n_calls; i++)
        nth += strcmp(W.calls[i].op, op) == 0;
    for (int i = 0; i < W.n_fails; i++)
        if (strcmp(W.fails[i].op, op) == 0 && W.fails[i].nth == nth)
            return W.fails[i].status;
    return 0;
}

static int fail_with(cri_error_t *err, int status, const char *op, const char *arg)
{
    return cri_error_set(err, status, "fake %s `%s` failed as told", op, arg);
}

int fakes_calls(const char *op)
{
    pthread_mutex_lock(&W.lock);
    int n = 0;
    for (int i = 0; i < W.n_calls; i++)
        n += strcmp(W.calls[i].op, op) == 0;
    pthread_mutex_unlock(&W.lock);
    return n;
}

const char *fakes_arg(const char *op, int nth)
{
    pthread_mutex_lock(&W.lock);
    const char *arg = NULL;
    for (int i = 0, k = 0; i < W.n_calls && !arg; i++)
        if (strcmp(W.calls[i].op, op) == 0 && ++k == nth)
            arg = W.calls[i].arg;
    pthread_mutex_unlock(&W.lock);
    return arg;
}

static fake_item_t *find_locked(const char *kind, const char *key)
{
    for (int i = 0; i < FAKE_MAX_LIVE; i++)
        if (strcmp(W.live[i].kind, kind) == 0 && strcmp(W.live[i].key, key) == 0)
            return &W.live[i];
    return NULL;
}

static fake_item_t *add_locked(const char *kind, const char *key)
{
    fake_item_t *it = find_locked(kind, key);
    if (it)
        return it;
    it = find_locked("", "");
    assert_non_null(it);
    snprintf(it->kind, sizeof(it->kind), "%s", kind);
    snprintf(it->key, sizeof(it->key), "%s", key);
    return it;
}

static bool drop_locked(const char *kind, const char *key)
{
    fake_item_t *it = find_locked(kind, key);
    if (it)
        memset(it, 0, sizeof(*it));
    return it != NULL;
}

static int count_locked(const char *kind)
{
    int n = 0;
    for (int i = 0; i < FAKE_MAX_LIVE; i++)
        n += strcmp(W.live[i].kind, kind) == 0;
    return n;
}

int fakes_live(const char *kind)
{
    pthread_mutex_lock(&W.lock);
    int n = count_locked(kind);
    pthread_mutex_unlock(&W.lock);
    return n;
}

int fakes_containers(void)
{
    return fakes_live(KIND_CONTAINER);
}

oci_status_t fakes_container_status(const char *id)
{
    pthread_mutex_lock(&W.lock);
    fake_item_t *it = find_locked(KIND_CONTAINER, id);
    oci_status_t st = it ? it->status : OCI_STATUS_UNKNOWN;
    pthread_mutex_unlock(&W.lock);
    return st;
}

void fakes_set_container(const char *id, oci_status_t status)
{
    pthread_mutex_lock(&W.lock);
    add_locked(KIND_CONTAINER, id)->status = status;
    pthread_mutex_unlock(&W.lock);
}

/* ---- host ops: a path per call; live sets of pins and mounts ---- */

static int host_add(const char *op, const char *kind, const char *path, cri_error_t *err)
{
    pthread_mutex_lock(&W.lock);
    int fail = record_locked(op, xstrdup(path));
    if (!fail)
        add_locked(kind, path);
    pthread_mutex_unlock(&W.lock);
    return fail ? fail_with(err, fail, op, path) : 0;
}

static int host_drop(const char *op, const char *kind, const char *path, cri_error_t *err)
{
    pthread_mutex_lock(&W.lock);
    int fail = record_locked(op, xstrdup(path ? path : ""));
    if (!fail && path)
        drop_locked(kind, path);
    pthread_mutex_unlock(&W.lock);
    return fail ? fail_with(err, fail, op, path) : 0;
}

/* Each pin is a live netns-kind resource (netns_unpin drops each). */
static int fake_ns_pin(const host_ns_pins_t *pins, cri_error_t *err)
{
    if (!pins->net[0] && !pins->ipc[0] && !pins->uts[0])
        return 0;
    if (host_add(FAKE_NETNS_PIN, FAKE_LIVE_NETNS,
                 pins->net[0]   ? pins->net
                 : pins->ipc[0] ? pins->ipc
                                : pins->uts,
                 err) < 0)
        return -1;
    pthread_mutex_lock(&W.lock);
    if (pins->net[0] && pins->ipc[0])
        add_locked(FAKE_LIVE_NETNS, pins->ipc);
    if ((pins->net[0] || pins->ipc[0]) && pins->uts[0])
        add_locked(FAKE_LIVE_NETNS, pins->uts);
    pthread_mutex_unlock(&W.lock);
    return 0;
}

static int fake_netns_unpin(const char *path, cri_error_t *err)
{
    return host_drop(FAKE_NETNS_UNPIN, FAKE_LIVE_NETNS, path, err);
}

static bool fake_netns_alive(const char *path)
{
    pthread_mutex_lock(&W.lock);
    bool alive = path && find_locked(FAKE_LIVE_NETNS, path) != NULL;
    pthread_mutex_unlock(&W.lock);
    return alive;
}

/* Every pin is a live netns-kind resource (netns_unpin drops each). */
static int fake_userns_pin(const char *userns_path, const host_ns_pins_t *pins,
                           const uint32_t uid_map[3], const uint32_t gid_map[3], cri_error_t *err)
{
    if (host_add(FAKE_USERNS_PIN, FAKE_LIVE_NETNS, userns_path, err) < 0)
        return -1;
    const char *paths[] = {pins->net, pins->ipc, pins->uts};
    pthread_mutex_lock(&W.lock);
    for (size_t i = 0; i < 3; i++)
        if (paths[i][0])
            add_locked(FAKE_LIVE_NETNS, paths[i]);
    pthread_mutex_unlock(&W.lock);
    return 0;
}

/* The real mounts make their mount points; so do the fakes. */
static int fake_shm_mount(const char *dir, uint32_t uid, uint32_t gid, cri_error_t *err)
{
    if (mkdir_p(dir, 0700, err) < 0)
        return -1;
    return host_add(FAKE_SHM_MOUNT, FAKE_LIVE_SHM, dir, err);
}

static int fake_shm_unmount(const char *dir, cri_error_t *err)
{
    return host_drop(FAKE_SHM_UNMOUNT, FAKE_LIVE_SHM, dir, err);
}

static int fake_rootfs_mount(char *const *layer_dirs, size_t n_layers, const char *empty_dir,
                             const char *upper, const char *work, const char *target,
                             cri_error_t *err)
{
    if (mkdir_p(upper, 0755, err) < 0 || mkdir_p(work, 0700, err) < 0 ||
        mkdir_p(target, 0755, err) < 0)
        return -1;
    return host_add(FAKE_ROOTFS_MOUNT, FAKE_LIVE_ROOTFS, target, err);
}

static int fake_rootfs_mount_idmapped(char *const *layer_dirs, size_t n_layers,
                                      const char *empty_dir, const char *upper, const char *work,
                                      const char *target, const char *userns_path,
                                      unsigned root_uid, unsigned root_gid, cri_error_t *err)
{
    return fake_rootfs_mount(layer_dirs, n_layers, empty_dir, upper, work, target, err);
}

static int fake_rootfs_unmount(const char *target, cri_error_t *err)
{
    return host_drop(FAKE_ROOTFS_UNMOUNT, FAKE_LIVE_ROOTFS, target, err);
}

const host_ops_t fake_host_ops = {
    .ns_pin = fake_ns_pin,
    .netns_unpin = fake_netns_unpin,
    .netns_alive = fake_netns_alive,
    .userns_pin = fake_userns_pin,
    .shm_mount = fake_shm_mount,
    .shm_unmount = fake_shm_unmount,
    .rootfs_mount = fake_rootfs_mount,
    .rootfs_mount_idmapped = fake_rootfs_mount_idmapped,
    .rootfs_unmount = fake_rootfs_unmount,
};

/* ---- CNI: "net=<name> id=<container> args=<K=V;...>" per call ---- */

static char *cni_arg(const char *net, const cni_attachment_t *att)
{
    char *args = xstrdup("");
    for (size_t i = 0; att->args && att->args[i]; i++) {
        char *more = xasprintf("%s%s%s", args, i ? ";" : "", att->args[i]);
        free(args);
        args = more;
    }
    char *s = xasprintf("net=%s id=%s args=%s", net, att->container_id, args);
    free(args);
    return s;
}

static int fake_cni_add(const cni_opts_t *opts, const cni_network_t *net,
                        const cni_attachment_t *att, cni_result_t **ret, cri_error_t *err)
{
    const char *name = cni_network_name(net);
    cleanup_free char *key = xasprintf("%s/%s", name, att->container_id);
    pthread_mutex_lock(&W.lock);
    char *arg = cni_arg(name, att);
    int fail = record_locked(FAKE_CNI_ADD, arg);
    if (!fail)
        add_locked(FAKE_LIVE_CNI, key);
    pthread_mutex_unlock(&W.lock);
    if (fail) /* like cni_add: the plugins that ran are deleted again */
        return fail_with(err, fail, FAKE_CNI_ADD, key);
    static const char result[] =
        "{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.88.0.7/16\"}]}";
    return cni_result_parse(result, ret, err);
}

static int fake_cni_del(const cni_opts_t *opts, const char *net_name, const cni_network_t *net,
                        const cni_attachment_t *att, cri_error_t *err)
{
    cleanup_free char *key = xasprintf("%s/%s", net_name, att->container_id);
    pthread_mutex_lock(&W.lock);
    int fail = record_locked(FAKE_CNI_DEL, cni_arg(net_name, att));
    if (!fail)
        drop_locked(FAKE_LIVE_CNI, key);
    pthread_mutex_unlock(&W.lock);
    return fail ? fail_with(err, fail, FAKE_CNI_DEL, key) : 0;
}

static int fake_cni_check(const cni_opts_t *opts, const cni_network_t *net,
                          const cni_attachment_t *att, cri_error_t *err)
{
    return cri_error_set(err, ENOSYS, "fake CNI CHECK");
}

const cni_ops_t fake_cni_ops = {
    .add = fake_cni_add,
    .del = fake_cni_del,
    .check = fake_cni_check,
};

/* ---- the runtime: id -> status; kill writes the exit file ---- */

static int oci_record(const char *op, const char *id, cri_error_t *err)
{
    int fail = record_locked(op, xstrdup(id));
    return fail ? fail_with(err, fail, op, id) : 0;
}

static int fake_oci_start(oci_runtime_t *rt, const char *id, cri_error_t *err)
{
    pthread_mutex_lock(&W.lock);
    int rc = oci_record(FAKE_OCI_START, id, err);
    fake_item_t *it = rc == 0 ? find_locked(KIND_CONTAINER, id) : NULL;
    if (rc == 0 && !it)
        rc = cri_error_set(err, ENOENT, "fake start `%s`: container does not exist", id);
    else if (it)
        it->status = OCI_STATUS_RUNNING;
    pthread_mutex_unlock(&W.lock);
    return rc;
}

static int write_exit_file(const char *id, cri_error_t *err)
{
    conmon_exit_t e = {.pid = 4321, .exit_code = 137, .signal = 9, .finished_at = now_unix_ns()};
    cleanup_free char *json = NULL;
    if (conmon_exit_format(id, &e, &json, err) < 0)
        return -1;
    cleanup_free char *path = xasprintf("%s/%s", W.exit_dir, id);
    return write_file_atomic(path, json, strlen(json), 0600, err);
}

static int fake_oci_kill(oci_runtime_t *rt, const char *id, int signo, bool all, cri_error_t *err)
{
    pthread_mutex_lock(&W.lock);
    int rc = oci_record(FAKE_OCI_KILL, id, err);
    fake_item_t *it = rc == 0 ? find_locked(KIND_CONTAINER, id) : NULL;
    if (rc == 0 && (!it || it->status == OCI_STATUS_STOPPED))
        rc = cri_error_set(err, ENOENT, "fake kill `%s`: container is not running", id);
    else if (it) {
        it->status = OCI_STATUS_STOPPED; /* every signal kills here */
        rc = write_exit_file(id, err);
    }
    pthread_mutex_unlock(&W.lock);
    return rc;
}

static int fake_oci_delete(oci_runtime_t *rt, const char *id, bool force, cri_error_t *err)
{
    pthread_mutex_lock(&W.lock);
    int rc = oci_record(FAKE_OCI_DELETE, id, err);
    fake_item_t *it = rc == 0 ? find_locked(KIND_CONTAINER, id) : NULL;
    if (rc == 0 && !it)
        rc = cri_error_set(err, ENOENT, "fake delete `%s`: container does not exist", id);
    else if (it && !force && it->status == OCI_STATUS_RUNNING)
        rc = cri_error_set(err, EBUSY, "fake delete `%s`: container is running", id);
    else if (it)
        memset(it, 0, sizeof(*it));
    pthread_mutex_unlock(&W.lock);
    return rc;
}

static int fake_oci_state(oci_runtime_t *rt, const char *id, oci_state_t *ret, cri_error_t *err)
{
    pthread_mutex_lock(&W.lock);
    int rc = oci_record(FAKE_OCI_STATE, id, err);
    fake_item_t *it = rc == 0 ? find_locked(KIND_CONTAINER, id) : NULL;
    if (rc == 0 && !it)
        rc = cri_error_set(err, ENOENT, "fake state `%s`: container does not exist", id);
    else if (it) {
        memset(ret, 0, sizeof(*ret));
        ret->status = it->status;
        ret->pid = it->status == OCI_STATUS_STOPPED ? 0 : 4321;
    }
    pthread_mutex_unlock(&W.lock);
    return rc;
}

/* ExecSync: "out" on stdout, exit code 3 */
static int fake_oci_exec_sync(oci_runtime_t *rt, const char *id, const oci_exec_sync_opts_t *opts,
                              oci_exec_sync_result_t *ret, cri_error_t *err)
{
    pthread_mutex_lock(&W.lock);
    int fail = record_locked(FAKE_OCI_EXEC_SYNC, xstrdup(id));
    pthread_mutex_unlock(&W.lock);
    if (fail)
        return fail_with(err, fail, FAKE_OCI_EXEC_SYNC, id);
    *ret = (oci_exec_sync_result_t){
        .exit_code = 3, .out = xstrdup("out"), .out_len = 3, .err = xstrdup("")};
    return 0;
}

const struct oci_runtime_ops fake_oci_ops = {
    .exec_sync = fake_oci_exec_sync,
    .start = fake_oci_start,
    .kill = fake_oci_kill,
    .delete = fake_oci_delete,
    .state = fake_oci_state,
};

/* ---- the monitor: create makes the runtime container ---- */

static int fake_conmon_create(const conmon_config_t *cfg, const conmon_create_opts_t *opts,
                              pid_t *ret_container_pid, pid_t *ret_monitor_pid, cri_error_t *err)
{
    pthread_mutex_lock(&W.lock);
    char *arg = xasprintf("id=%s bundle=%s log=%s tty=%d", opts->id, opts->bundle,
                          opts->log_path ? opts->log_path : "", opts->terminal);
    int fail = record_locked(FAKE_CONMON_CREATE, arg);
    /* a failing create may leave the container half made: the caller owes a delete */
    add_locked(KIND_CONTAINER, opts->id)->status = OCI_STATUS_CREATED;
    pid_t pid = W.next_pid++;
    pthread_mutex_unlock(&W.lock);
    if (fail)
        return fail_with(err, fail, FAKE_CONMON_CREATE, opts->id);
    *ret_container_pid = pid;
    if (ret_monitor_pid)
        *ret_monitor_pid = pid + 100000;
    return 0;
}

static int fake_conmon_reopen_log(const char *socket_dir, const char *id, int timeout_ms,
                                  cri_error_t *err)
{
    pthread_mutex_lock(&W.lock);
    int fail = record_locked(FAKE_CONMON_REOPEN_LOG, xstrdup(id));
    pthread_mutex_unlock(&W.lock);
    return fail ? fail_with(err, fail, FAKE_CONMON_REOPEN_LOG, id) : 0;
}

const conmon_ops_t fake_conmon_ops = {
    .create = fake_conmon_create,
    .reopen_log = fake_conmon_reopen_log,
};

/* ---- the daemon ---- */

static void write_text(const char *path, const char *text)
{
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(write_file_atomic(path, text, strlen(text), 0644, &err), 0);
}

static void set_path(char **field, const char *prefix, const char *dir, const char *suffix)
{
    free(*field);
    *field = xasprintf("%s%s%s", prefix, dir, suffix);
}

fake_daemon_t *fake_daemon_new(void)
{
    fake_daemon_t *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test-handlers-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    conf_t *conf = conf_new_defaults(NULL);
    set_path(&conf->root, "", fx->dir, "/root");
    set_path(&conf->runroot, "", fx->dir, "/run");
    set_path(&conf->listen, "unix://", fx->dir, "/cricket.sock");
    set_path(&conf->runtime.pause_path, "", fx->dir, "/pause");
    write_text(conf->runtime.pause_path, "not really a binary");
    set_path(&conf->network.conf_dir, "", fx->dir, "/cni");
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(mkdir_p(conf->network.conf_dir, 0755, &err), 0);
    cleanup_free char *net = xasprintf("%s/10-fake.conflist", conf->network.conf_dir);
    write_text(net, "{\"cniVersion\":\"1.0.0\",\"name\":\"fakenet\","
                    "\"plugins\":[{\"type\":\"bridge\"}]}");
    for (size_t i = 0; i < conf->runtime.n_handlers; i++) {
        /* any executable does: the fake ops never run it */
        str_set(&conf->runtime.handlers[i].path, "/bin/true");
        set_path(&conf->runtime.handlers[i].root, "", fx->dir, "/rt");
    }
    if (daemon_open(&fx->d, conf, &err) < 0)
        fail_msg("daemon_open: %s", err.msg);
    for (size_t i = 0; i < fx->d.n_runtimes; i++)
        fx->d.runtimes[i].oci->ops = &fake_oci_ops;
    fx->d.cni_ops = &fake_cni_ops;
    fx->d.conmon_ops = &fake_conmon_ops;
    fx->d.host_ops = &fake_host_ops;
    fakes_reset(fx->d.exit_dir);
    fx->ctx = rpc_test_ctx_new(&fx->d);
    return fx;
}

void fake_daemon_free(fake_daemon_t *fx)
{
    if (!fx)
        return;
    rpc_test_ctx_free(fx->ctx);
    daemon_close(&fx->d);
    cri_error_t err = CRI_ERROR_INIT;
    rm_rf(fx->dir, &err);
    fakes_reset(NULL);
    free(fx);
}

void fake_daemon_add_image(fake_daemon_t *fx, const char *ref, const char *config_json)
{
    image_rec_t *rec = xcalloc(1, sizeof(*rec));
    rec->id = xstrdup("sha256:1111111111111111111111111111111111111111111111111111111111111111");
    rec->repo_tags = xcalloc(2, sizeof(char *));
    rec->repo_tags[0] = xstrdup(ref);
    rec->repo_digests = xcalloc(1, sizeof(char *));
    rec->manifest_digest =
        xstrdup("sha256:2222222222222222222222222222222222222222222222222222222222222222");
    rec->created_ns = now_unix_ns();
    rec->config_json = xstrdup(config_json);
    cri_error_t err = CRI_ERROR_INIT;
    if (image_meta_commit(fx->d.images, rec, &err) < 0)
        fail_msg("add image: %s", err.msg);
    image_rec_free(rec);
}

int fake_dir_entries(const char *path)
{
    DIR *dir = opendir(path);
    if (!dir)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(dir);
    return n;
}

static int count_one(const char *key, const void *val, size_t len, void *data, cri_error_t *err)
{
    (*(int *)data)++;
    return 0;
}

int fake_store_count(fake_daemon_t *fx, store_kind_t kind)
{
    cri_error_t err = CRI_ERROR_INIT;
    store_txn_t *txn = NULL;
    assert_int_equal(store_txn_begin(fx->d.store, false, &txn, &err), 0);
    int n = 0;
    assert_int_equal(store_foreach(txn, kind, count_one, &n, &err), 0);
    store_txn_abort(txn);
    return n;
}

void fake_pod_req_init(fake_daemon_t *fx, fake_pod_req_t *p, const char *name)
{
    memset(p, 0, sizeof(*p));
    runtime__v1__run_pod_sandbox_request__init(&p->req);
    runtime__v1__pod_sandbox_config__init(&p->cfg);
    runtime__v1__pod_sandbox_metadata__init(&p->meta);
    runtime__v1__linux_pod_sandbox_config__init(&p->lx);
    runtime__v1__linux_sandbox_security_context__init(&p->sc);
    runtime__v1__namespace_option__init(&p->ns);
    snprintf(p->uid, sizeof(p->uid), "uid-%s", name);
    snprintf(p->log_dir, sizeof(p->log_dir), "%s/logs/%s", fx->dir, name);
    p->meta.name = (char *)name;
    p->meta.uid = p->uid;
    p->meta.namespace_ = "default";
    p->cfg.metadata = &p->meta;
    p->cfg.hostname = (char *)name;
    p->cfg.log_directory = p->log_dir;
    p->sc.namespace_options = &p->ns;
    p->lx.security_context = &p->sc;
    p->cfg.linux = &p->lx;
    p->req.config = &p->cfg;
}

int fake_run_pod_req(fake_daemon_t *fx, fake_pod_req_t *p, const char **ret_id, cri_error_t *err)
{
    ProtobufCMessage *resp = NULL;
    int rc = handle_run_pod_sandbox(fx->ctx, &p->req.base, &resp, err);
    if (rc == 0)
        *ret_id = ((Runtime__V1__RunPodSandboxResponse *)resp)->pod_sandbox_id;
    return rc;
}

const char *fake_run_pod(fake_daemon_t *fx, const char *name)
{
    fake_pod_req_t p;
    fake_pod_req_init(fx, &p, name);
    const char *id = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    if (fake_run_pod_req(fx, &p, &id, &err) < 0)
        fail_msg("RunPodSandbox `%s`: %s", name, err.msg);
    return id;
}

int fake_stop_pod(fake_daemon_t *fx, const char *id, cri_error_t *err)
{
    Runtime__V1__StopPodSandboxRequest r;
    runtime__v1__stop_pod_sandbox_request__init(&r);
    r.pod_sandbox_id = (char *)id;
    ProtobufCMessage *resp = NULL;
    return handle_stop_pod_sandbox(fx->ctx, &r.base, &resp, err);
}

int fake_remove_pod(fake_daemon_t *fx, const char *id, cri_error_t *err)
{
    Runtime__V1__RemovePodSandboxRequest r;
    runtime__v1__remove_pod_sandbox_request__init(&r);
    r.pod_sandbox_id = (char *)id;
    ProtobufCMessage *resp = NULL;
    return handle_remove_pod_sandbox(fx->ctx, &r.base, &resp, err);
}

int fake_dir_entries_at(const char *base, const char *name)
{
    cleanup_free char *path = xasprintf("%s/%s", base, name);
    return fake_dir_entries(path);
}

void fake_replace_with_file(const char *base, const char *name)
{
    cleanup_free char *path = xasprintf("%s/%s", base, name);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(rm_rf(path, &err), 0);
    assert_int_equal(write_file_atomic(path, "", 0, 0600, &err), 0);
}

void fake_restore_dir(const char *base, const char *name)
{
    cleanup_free char *path = xasprintf("%s/%s", base, name);
    unlink(path);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(mkdir_p(path, 0700, &err), 0);
}

void fake_assert_error(const cri_error_t *err, int status, const char *want)
{
    if (err->status != status)
        fail_msg("status %d: %s", err->status, err->msg);
    if (want && !strstr(err->msg, want))
        fail_msg("error `%s` does not say `%s`", err->msg, want);
}

int fake_run_tests(const char *group, const struct CMUnitTest *fixed, size_t n_fixed,
                   const void *cases, size_t n_cases, size_t case_size,
                   void (*test_func)(void **state))
{
    struct CMUnitTest *tests = xcalloc(n_fixed + n_cases, sizeof(*tests));
    memcpy(tests, fixed, n_fixed * sizeof(*tests));
    for (size_t i = 0; i < n_cases; i++) {
        const void *c = (const char *)cases + i * case_size;
        tests[n_fixed + i] = (struct CMUnitTest){
            .name = *(const char *const *)c, .test_func = test_func, .initial_state = (void *)c};
    }
    int rc = _cmocka_run_group_tests(group, tests, n_fixed + n_cases, NULL, NULL);
    free(tests);
    return rc;
}
