/* RunPodSandbox, StopPodSandbox and RemovePodSandbox called directly on a
 * daemon whose runtime, monitor, CNI and host changes are fakes (fakes.h):
 * no root, no runc. Every rollback path of RunPodSandbox is driven by
 * failing one step, and the fakes and the store must show that everything
 * made before it was undone. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "conf/conf.h"
#include "fakes.h"
#include "server/handlers.h"
#include "server/sandbox/sandbox.h"

static int setup(void **state)
{
    *state = fake_daemon_new();
    return 0;
}

static int teardown(void **state)
{
    fake_daemon_free(*state);
    return 0;
}

/* Nothing of any pod is left: no pin, mount, attachment, runtime
 * container, directory, exit file, record or name. */
static void assert_no_pod_left(fake_daemon_t *fx)
{
    assert_int_equal(fakes_live(FAKE_LIVE_NETNS), 0);
    assert_int_equal(fakes_live(FAKE_LIVE_SHM), 0);
    assert_int_equal(fakes_live(FAKE_LIVE_ROOTFS), 0);
    assert_int_equal(fakes_live(FAKE_LIVE_CNI), 0);
    assert_int_equal(fakes_containers(), 0);
    /* a DEL is owed as soon as an ADD was tried, with the same arguments */
    for (int i = 1; i <= fakes_calls(FAKE_CNI_ADD); i++)
        assert_string_equal(fakes_arg(FAKE_CNI_DEL, i), fakes_arg(FAKE_CNI_ADD, i));
    assert_int_equal(fake_dir_entries_at(fx->d.runroot, "sandboxes"), 0);
    assert_int_equal(fake_dir_entries_at(fx->d.root, "sandboxes"), 0);
    assert_int_equal(fake_dir_entries_at(fx->d.root, "pause/pods"), 0);
    assert_int_equal(fake_dir_entries_at(fx->d.root, "rootfs-userns/pause-pods"), 0);
    assert_int_equal(fake_dir_entries(fx->d.exit_dir), 0);
    assert_int_equal(fake_store_count(fx, STORE_PODS), 0);
    assert_int_equal(fake_store_count(fx, STORE_NAMES), 0);
    sandbox_t **list = NULL;
    size_t n = 0;
    sandbox_store_list(fx->d.sandboxes, &list, &n);
    sandbox_list_free(list, n);
    assert_int_equal(n, 0);
}

static sandbox_state_t pod_state(fake_daemon_t *fx, const char *id)
{
    cleanup_sandbox sandbox_t *sb = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(sandbox_store_get(fx->d.sandboxes, id, &sb, &err), 0);
    return sandbox_get_state(sb, NULL);
}

/* ---- the whole life of a pod ---- */

static void test_run_stop_remove(void **state)
{
    fake_daemon_t *fx = *state;
    const char *id = fake_run_pod(fx, "web");
    assert_int_equal(strlen(id), 64);
    assert_int_equal(pod_state(fx, id), SANDBOX_STATE_READY);
    assert_int_equal(fakes_live(FAKE_LIVE_NETNS), 1);
    assert_int_equal(fakes_live(FAKE_LIVE_SHM), 1);
    assert_int_equal(fakes_live(FAKE_LIVE_CNI), 1);
    assert_int_equal(fakes_container_status(id), OCI_STATUS_RUNNING);
    cleanup_free char *netns = xasprintf("%s/netns/%s", fx->d.runroot, id);
    assert_string_equal(fakes_arg(FAKE_NETNS_PIN, 1), netns);
    assert_non_null(strstr(fakes_arg(FAKE_CNI_ADD, 1), "K8S_POD_NAME=web;"));
    assert_non_null(strstr(fakes_arg(FAKE_CNI_ADD, 1), "net=fakenet "));
    cleanup_free char *bundle = xasprintf("bundle=%s/sandboxes/%s ", fx->d.runroot, id);
    assert_non_null(strstr(fakes_arg(FAKE_CONMON_CREATE, 1), bundle));
    assert_int_equal(fake_store_count(fx, STORE_PODS), 1);
    assert_int_equal(fake_store_count(fx, STORE_NAMES), 1);
    cleanup_sandbox sandbox_t *sb = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(sandbox_store_get(fx->d.sandboxes, id, &sb, &err), 0);
    assert_string_equal(sb->ips[0], "10.88.0.7");

    /* Stop: DEL with ADD's arguments, infra killed and deleted, unmounted, unpinned */
    assert_int_equal(fake_stop_pod(fx, id, &err), 0);
    assert_int_equal(pod_state(fx, id), SANDBOX_STATE_NOTREADY);
    assert_int_equal(fakes_live(FAKE_LIVE_NETNS), 0);
    assert_int_equal(fakes_live(FAKE_LIVE_SHM), 0);
    assert_int_equal(fakes_live(FAKE_LIVE_CNI), 0);
    assert_int_equal(fakes_containers(), 0);
    assert_string_equal(fakes_arg(FAKE_CNI_DEL, 1), fakes_arg(FAKE_CNI_ADD, 1));
    /* again: fine, and the runtime is not asked to kill anything */
    int kills = fakes_calls(FAKE_OCI_KILL);
    assert_int_equal(fake_stop_pod(fx, id, &err), 0);
    assert_int_equal(fakes_calls(FAKE_OCI_KILL), kills);

    assert_int_equal(fake_remove_pod(fx, id, &err), 0);
    assert_no_pod_left(fx);
    cri_error_t nf = CRI_ERROR_INIT;
    sandbox_t *gone = NULL;
    assert_int_equal(sandbox_store_get(fx->d.sandboxes, id, &gone, &nf), -1);
    assert_int_equal(nf.status, ENOENT);
    /* Remove and Stop of a removed (unknown) pod succeed */
    assert_int_equal(fake_remove_pod(fx, id, &err), 0);
    assert_int_equal(fake_stop_pod(fx, id, &err), 0);
}

static void test_remove_running_pod(void **state)
{
    fake_daemon_t *fx = *state;
    const char *id = fake_run_pod(fx, "web");
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(fake_remove_pod(fx, id, &err), 0); /* stops it first */
    assert_int_equal(fakes_calls(FAKE_CNI_DEL), 1);
    assert_no_pod_left(fx);
}

static void test_empty_ids_refused(void **state)
{
    fake_daemon_t *fx = *state;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(fake_stop_pod(fx, "", &err), -1);
    assert_int_equal(err.status, EINVAL);
    cri_error_t err2 = CRI_ERROR_INIT;
    assert_int_equal(fake_remove_pod(fx, "", &err2), -1);
    assert_int_equal(err2.status, EINVAL);
    assert_int_equal(fake_stop_pod(fx, "0123abcd", &err), 0);
    assert_int_equal(fake_remove_pod(fx, "0123abcd", &err), 0);
}

/* A failed CNI DEL fails Stop and keeps what the retry needs: the pin (DEL
 * must run in the netns) and the attachment; the retry then succeeds. */
static void test_stop_cni_del_fails(void **state)
{
    fake_daemon_t *fx = *state;
    const char *id = fake_run_pod(fx, "web");
    fakes_fail(FAKE_CNI_DEL, 1, EIO);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(fake_stop_pod(fx, id, &err), -1);
    assert_int_equal(err.status, EIO);
    assert_non_null(strstr(err.msg, "failed as told"));
    assert_int_equal(fakes_live(FAKE_LIVE_NETNS), 1);
    assert_int_equal(fakes_live(FAKE_LIVE_CNI), 1);
    assert_int_equal(pod_state(fx, id), SANDBOX_STATE_READY);
    /* Remove refuses too (it stops first), and keeps the record */
    fakes_fail(FAKE_CNI_DEL, 1, EIO);
    cri_error_t rerr = CRI_ERROR_INIT;
    assert_int_equal(fake_remove_pod(fx, id, &rerr), -1);
    assert_int_equal(rerr.status, EIO);
    assert_int_equal(fake_store_count(fx, STORE_PODS), 1);

    cri_error_t err2 = CRI_ERROR_INIT;
    assert_int_equal(fake_stop_pod(fx, id, &err2), 0);
    assert_int_equal(fakes_live(FAKE_LIVE_NETNS), 0);
    assert_int_equal(fakes_live(FAKE_LIVE_CNI), 0);
    assert_int_equal(pod_state(fx, id), SANDBOX_STATE_NOTREADY);
    assert_int_equal(fake_remove_pod(fx, id, &err2), 0);
    assert_no_pod_left(fx);
}

/* Unmount failures of Stop: the error, then a retry that succeeds. */
static void test_stop_unmount_fails(void **state)
{
    fake_daemon_t *fx = *state;
    const char *id = fake_run_pod(fx, "web");
    fakes_fail(FAKE_SHM_UNMOUNT, 1, EBUSY);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(fake_stop_pod(fx, id, &err), -1);
    assert_int_equal(err.status, EBUSY);
    assert_int_equal(fakes_live(FAKE_LIVE_SHM), 1);
    fakes_fail(FAKE_NETNS_UNPIN, 1, EBUSY);
    cri_error_t err2 = CRI_ERROR_INIT;
    assert_int_equal(fake_stop_pod(fx, id, &err2), -1);
    assert_int_equal(err2.status, EBUSY);
    assert_int_equal(fakes_live(FAKE_LIVE_SHM), 0);
    assert_int_equal(fakes_live(FAKE_LIVE_NETNS), 1);
    cri_error_t err3 = CRI_ERROR_INIT;
    assert_int_equal(fake_stop_pod(fx, id, &err3), 0);
    assert_int_equal(fake_remove_pod(fx, id, &err3), 0);
    assert_no_pod_left(fx);
}

/* A second pod under the same name is refused and the first one is kept. */
static void test_run_name_taken(void **state)
{
    fake_daemon_t *fx = *state;
    const char *id = fake_run_pod(fx, "web");
    fake_pod_req_t p;
    fake_pod_req_init(fx, &p, "web");
    const char *id2 = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(fake_run_pod_req(fx, &p, &id2, &err), -1);
    assert_int_equal(err.status, EEXIST);
    assert_int_equal(fakes_calls(FAKE_NETNS_PIN), 1); /* nothing was tried */
    assert_int_equal(fakes_calls(FAKE_CONMON_CREATE), 1);
    assert_int_equal(pod_state(fx, id), SANDBOX_STATE_READY);
    assert_int_equal(fakes_live(FAKE_LIVE_NETNS), 1);
    assert_int_equal(fake_store_count(fx, STORE_PODS), 1);
}

/* A rollback step that fails too does not mask the cause, and the other
 * steps still run. The pod is then kept (record, name, listed NOTREADY)
 * so that Remove retries the failed DEL: before, the record went and the
 * IP lease of the failed DEL leaked for good (issue 11). */
static void test_run_rollback_step_fails(void **state)
{
    fake_daemon_t *fx = *state;
    fakes_fail(FAKE_OCI_START, 1, EIO);
    fakes_fail(FAKE_CNI_DEL, 1, EBUSY);
    fakes_fail(FAKE_SHM_UNMOUNT, 1, EBUSY);
    fake_pod_req_t p;
    fake_pod_req_init(fx, &p, "web");
    const char *id = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(fake_run_pod_req(fx, &p, &id, &err), -1);
    assert_int_equal(err.status, EIO);
    assert_non_null(strstr(err.msg, "fake oci_start"));
    assert_int_equal(fakes_calls(FAKE_CNI_DEL), 1);
    assert_int_equal(fakes_live(FAKE_LIVE_NETNS), 0);
    assert_int_equal(fakes_containers(), 0);
    assert_int_equal(fake_store_count(fx, STORE_PODS), 1);
    assert_int_equal(fake_store_count(fx, STORE_NAMES), 1);
    sandbox_t **list = NULL;
    size_t n = 0;
    sandbox_store_list(fx->d.sandboxes, &list, &n);
    assert_int_equal(n, 1);
    cleanup_free char *kept = xstrdup(list[0]->id);
    sandbox_list_free(list, n);
    assert_int_equal(pod_state(fx, kept), SANDBOX_STATE_NOTREADY);
    assert_int_equal(fake_remove_pod(fx, kept, &err), 0);
    assert_int_equal(fakes_calls(FAKE_CNI_DEL), 2);
    assert_no_pod_left(fx);
}

/* pid CONTAINER with runtime.drop_infra (the default): three pins, no
 * monitor, no runtime call; Stop unpins all three. drop_infra false brings
 * the infra back for the same request. */
static void test_run_stop_remove_no_infra(void **state)
{
    fake_daemon_t *fx = *state;
    fake_pod_req_t p;
    fake_pod_req_init(fx, &p, "lean");
    p.ns.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
    const char *id = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(fake_run_pod_req(fx, &p, &id, &err), 0);
    assert_int_equal(pod_state(fx, id), SANDBOX_STATE_READY);
    assert_int_equal(fakes_live(FAKE_LIVE_NETNS), 3); /* net, ipc, uts */
    assert_int_equal(fakes_live(FAKE_LIVE_SHM), 1);
    assert_int_equal(fakes_calls(FAKE_CONMON_CREATE), 0);
    assert_int_equal(fakes_calls(FAKE_OCI_START), 0);
    assert_int_equal(fakes_containers(), 0);
    cleanup_sandbox sandbox_t *sb = NULL;
    assert_int_equal(sandbox_store_get(fx->d.sandboxes, id, &sb, &err), 0);
    assert_false(sb->infra);
    cleanup_free char *ipc = xasprintf("%s/ipcns/%s", fx->d.runroot, id);
    assert_string_equal(sb->ipcns_path, ipc);
    pid_t pid = -1;
    sandbox_get_state(sb, &pid);
    assert_int_equal(pid, 0);
    assert_int_equal(fake_stop_pod(fx, id, &err), 0);
    assert_int_equal(fakes_live(FAKE_LIVE_NETNS), 0);
    assert_int_equal(fakes_calls(FAKE_OCI_KILL), 0);
    assert_int_equal(fake_remove_pod(fx, id, &err), 0);
    assert_no_pod_left(fx);
}

static void test_drop_infra_false_keeps_the_infra(void **state)
{
    fake_daemon_t *fx = *state;
    fx->d.conf->runtime.drop_infra = false;
    fake_pod_req_t p;
    const char *id = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    fake_pod_req_init(fx, &p, "fat");
    p.ns.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
    assert_int_equal(fake_run_pod_req(fx, &p, &id, &err), 0);
    assert_int_equal(fakes_live(FAKE_LIVE_NETNS), 1);
    assert_int_equal(fakes_calls(FAKE_CONMON_CREATE), 1);
    assert_int_equal(fakes_container_status(id), OCI_STATUS_RUNNING);
    assert_int_equal(fake_remove_pod(fx, id, &err), 0);
    assert_no_pod_left(fx);
}

/* ---- every rollback path of RunPodSandbox ---- */

typedef struct run_case {
    const char *name;
    const char *op; /* the fake step that fails; NULL: `setup` makes it fail */
    int nth;
    int status;                        /* injected errno */
    void (*setup)(fake_daemon_t *fx);  /* other ways to fail */
    void (*undo)(fake_daemon_t *fx);   /* puts it right for the rerun */
    void (*tweak)(fake_pod_req_t *p);  /* request changes */
    void (*config)(fake_daemon_t *fx); /* daemon changes, before the run and the rerun */
    int want_status;
    const char *want_msg;
} run_case_t;

static void block_pod_files(fake_daemon_t *fx)
{
    fake_replace_with_file(fx->d.root, "sandboxes");
}

static void unblock_pod_files(fake_daemon_t *fx)
{
    fake_restore_dir(fx->d.root, "sandboxes");
}

static void block_bundle(fake_daemon_t *fx)
{
    fake_replace_with_file(fx->d.runroot, "sandboxes");
}

static void unblock_bundle(fake_daemon_t *fx)
{
    fake_restore_dir(fx->d.runroot, "sandboxes");
}

static void remove_cni_config(fake_daemon_t *fx)
{
    cleanup_free char *path = xasprintf("%s/10-fake.conflist", fx->d.cni_conf_dir);
    assert_int_equal(unlink(path), 0);
}

static void restore_cni_config(fake_daemon_t *fx)
{
    cleanup_free char *path = xasprintf("%s/10-fake.conflist", fx->d.cni_conf_dir);
    static const char text[] =
        "{\"cniVersion\":\"1.0.0\",\"name\":\"fakenet\",\"plugins\":[{\"type\":\"bridge\"}]}";
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(write_file_atomic(path, text, strlen(text), 0644, &err), 0);
}

static void remove_pause_binary(fake_daemon_t *fx)
{
    assert_int_equal(unlink(fx->d.conf->runtime.pause_path), 0);
}

static void restore_pause_binary(fake_daemon_t *fx)
{
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(write_file_atomic(fx->d.conf->runtime.pause_path, "x", 1, 0755, &err), 0);
}

static void host_network(fake_pod_req_t *p)
{
    p->ns.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
    p->ns.ipc = RUNTIME__V1__NAMESPACE_MODE__NODE;
}

/* kubelet's default: pid CONTAINER, so no infra (runtime.drop_infra) */
static void no_infra(fake_pod_req_t *p)
{
    p->ns.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
}

static void unknown_handler(fake_pod_req_t *p)
{
    p->req.runtime_handler = "nope";
}

#define PAUSE_REF "registry.test/pause:1"

static void use_pause_image(fake_daemon_t *fx)
{
    str_set(&fx->d.conf->image.pause_image, PAUSE_REF);
    fake_daemon_add_image(fx, PAUSE_REF,
                          "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":"
                          "\"layers\",\"diff_ids\":[]},"
                          "\"config\":{\"Entrypoint\":[\"/pause\"]}}");
}

/* A pod with its own user namespace (what kubelet sends for hostUsers:
 * false) on a daemon that supports them. */
static Runtime__V1__IDMapping userns_range = {
    PROTOBUF_C_MESSAGE_INIT(&runtime__v1__idmapping__descriptor), 65536, 0, 65536};
static Runtime__V1__IDMapping *userns_ranges[] = {&userns_range};
static Runtime__V1__UserNamespace userns_pod_opts = {
    PROTOBUF_C_MESSAGE_INIT(&runtime__v1__user_namespace__descriptor),
    RUNTIME__V1__NAMESPACE_MODE__POD,
    1,
    userns_ranges,
    1,
    userns_ranges};

static void userns_pod(fake_pod_req_t *p)
{
    p->ns.userns_options = &userns_pod_opts;
}

static void userns_on(fake_daemon_t *fx)
{
    fx->d.host.userns_supported = true;
}

static void userns_on_pause_image(fake_daemon_t *fx)
{
    userns_on(fx);
    use_pause_image(fx);
}

static const run_case_t run_cases[] = {
    {.name = "run_userns_fails_at_userns_pin",
     .op = FAKE_USERNS_PIN,
     .nth = 1,
     .status = EPERM,
     .config = userns_on,
     .tweak = userns_pod},
    {.name = "run_userns_fails_at_cni_add",
     .op = FAKE_CNI_ADD,
     .nth = 1,
     .status = EIO,
     .config = userns_on,
     .tweak = userns_pod},
    {.name = "run_userns_fails_at_shm_mount",
     .op = FAKE_SHM_MOUNT,
     .nth = 1,
     .status = EPERM,
     .config = userns_on,
     .tweak = userns_pod},
    {.name = "run_userns_fails_at_infra_start",
     .op = FAKE_OCI_START,
     .nth = 1,
     .status = EIO,
     .config = userns_on,
     .tweak = userns_pod},
    {.name = "run_userns_pause_image_fails_at_rootfs_mount",
     .op = FAKE_ROOTFS_MOUNT,
     .nth = 1,
     .status = EPERM,
     .config = userns_on_pause_image,
     .tweak = userns_pod},
    {.name = "run_userns_refused_when_unsupported",
     .tweak = userns_pod,
     .want_status = EINVAL,
     .want_msg = "userns_options: user namespaces are not available"},
    {.name = "run_fails_at_netns_pin", .op = FAKE_NETNS_PIN, .nth = 1, .status = EPERM},
    {.name = "run_fails_at_cni_add", .op = FAKE_CNI_ADD, .nth = 1, .status = EIO},
    {.name = "run_fails_at_shm_mount", .op = FAKE_SHM_MOUNT, .nth = 1, .status = EPERM},
    {.name = "run_no_infra_fails_at_pins",
     .op = FAKE_NETNS_PIN,
     .nth = 1,
     .status = EPERM,
     .tweak = no_infra},
    {.name = "run_no_infra_fails_at_cni_add",
     .op = FAKE_CNI_ADD,
     .nth = 1,
     .status = EIO,
     .tweak = no_infra},
    {.name = "run_no_infra_fails_at_shm_mount",
     .op = FAKE_SHM_MOUNT,
     .nth = 1,
     .status = EPERM,
     .tweak = no_infra},
    {.name = "run_no_infra_fails_at_pod_files",
     .setup = block_pod_files,
     .undo = unblock_pod_files,
     .tweak = no_infra,
     .want_status = ENOTDIR},
    {.name = "run_fails_at_monitor_create", .op = FAKE_CONMON_CREATE, .nth = 1, .status = EIO},
    {.name = "run_monitor_create_times_out",
     .op = FAKE_CONMON_CREATE,
     .nth = 1,
     .status = ETIMEDOUT},
    {.name = "run_fails_at_infra_start", .op = FAKE_OCI_START, .nth = 1, .status = EIO},
    {.name = "run_host_network_fails_at_infra_start",
     .op = FAKE_OCI_START,
     .nth = 1,
     .status = EIO,
     .tweak = host_network},
    {.name = "run_pause_image_fails_at_rootfs_mount",
     .op = FAKE_ROOTFS_MOUNT,
     .nth = 1,
     .status = EPERM,
     .config = use_pause_image},
    {.name = "run_pause_image_fails_at_infra_start",
     .op = FAKE_OCI_START,
     .nth = 1,
     .status = EIO,
     .config = use_pause_image},
    {.name = "run_fails_at_pod_files",
     .setup = block_pod_files,
     .undo = unblock_pod_files,
     .want_status = ENOTDIR},
    {.name = "run_fails_at_infra_bundle",
     .setup = block_bundle,
     .undo = unblock_bundle,
     .want_status = ENOTDIR},
    {.name = "run_fails_without_cni_config",
     .setup = remove_cni_config,
     .undo = restore_cni_config,
     .want_status = ENETDOWN,
     .want_msg = "no CNI network"},
    {.name = "run_fails_at_infra_rootfs",
     .setup = remove_pause_binary,
     .undo = restore_pause_binary,
     .want_status = ENOENT,
     .want_msg = "pause binary"},
    {.name = "run_fails_at_runtime_handler",
     .tweak = unknown_handler,
     .want_status = EINVAL,
     .want_msg = "runtime_handler `nope`"},
};

static void test_run_rollback(void **state)
{
    const run_case_t *c = *state;
    fake_daemon_t *fx = fake_daemon_new();
    if (c->config)
        c->config(fx);
    if (c->op)
        fakes_fail(c->op, c->nth, c->status);
    if (c->setup)
        c->setup(fx);
    fake_pod_req_t p;
    fake_pod_req_init(fx, &p, "web");
    if (c->tweak)
        c->tweak(&p);
    const char *id = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(fake_run_pod_req(fx, &p, &id, &err), -1);
    fake_assert_error(&err, c->op ? c->status : c->want_status,
                      c->op ? "failed as told" : c->want_msg);
    if (c->op)
        assert_true(fakes_calls(c->op) >= c->nth);
    assert_no_pod_left(fx);

    /* the name is free again and the same pod now runs */
    if (c->undo)
        c->undo(fx);
    fake_pod_req_init(fx, &p, "web");
    cri_error_t err2 = CRI_ERROR_INIT;
    if (fake_run_pod_req(fx, &p, &id, &err2) < 0)
        fail_msg("rerun: %s", err2.msg);
    assert_int_equal(pod_state(fx, id), SANDBOX_STATE_READY);
    fake_daemon_free(fx);
}

/* ---- UpdatePodSandboxResources: every refusal changes nothing ---- */

static int update_resources(fake_daemon_t *fx, const char *id,
                            const Runtime__V1__LinuxContainerResources *res,
                            const Runtime__V1__LinuxContainerResources *over, cri_error_t *err)
{
    Runtime__V1__UpdatePodSandboxResourcesRequest r;
    runtime__v1__update_pod_sandbox_resources_request__init(&r);
    r.pod_sandbox_id = (char *)id;
    r.resources = (Runtime__V1__LinuxContainerResources *)res;
    r.overhead = (Runtime__V1__LinuxContainerResources *)over;
    ProtobufCMessage *resp = NULL;
    return handle_update_pod_sandbox_resources(fx->ctx, &r.base, &resp, err);
}

static bool pod_resources_set(fake_daemon_t *fx, const char *id)
{
    cleanup_sandbox sandbox_t *sb = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(sandbox_store_get(fx->d.sandboxes, id, &sb, &err), 0);
    return sb->resources_set;
}

static void test_update_resources_refusals(void **state)
{
    fake_daemon_t *fx = *state;
    const char *plain = fake_run_pod(fx, "plain");
    fake_pod_req_t p;
    fake_pod_req_init(fx, &p, "parented");
    p.lx.cgroup_parent = "/cricket-unit-no-such-cgroup";
    const char *parented = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(fake_run_pod_req(fx, &p, &parented, &err), 0);

    Runtime__V1__LinuxContainerResources ok;
    runtime__v1__linux_container_resources__init(&ok);
    ok.memory_limit_in_bytes = 64 << 20;
    static const struct {
        const char *field;
        int64_t period, quota, shares, memory;
        bool in_overhead;
    } bad[] = {
        {"resources.cpu_period", 999, 0, 0, 0, false},
        {"resources.cpu_period", 1000001, 0, 0, 0, false},
        {"resources.cpu_quota", 0, -2, 0, 0, false},
        {"resources.cpu_quota", 0, 999, 0, 0, false},
        {"resources.cpu_shares", 0, 0, 262145, 0, false},
        {"resources.memory_limit_in_bytes", 0, 0, 0, -1, false},
        {"overhead.cpu_shares", 0, 0, -1, 0, true},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        Runtime__V1__LinuxContainerResources r;
        runtime__v1__linux_container_resources__init(&r);
        r.cpu_period = bad[i].period;
        r.cpu_quota = bad[i].quota;
        r.cpu_shares = bad[i].shares;
        r.memory_limit_in_bytes = bad[i].memory;
        cri_error_t e = CRI_ERROR_INIT;
        assert_int_equal(update_resources(fx, parented, bad[i].in_overhead ? &ok : &r,
                                          bad[i].in_overhead ? &r : NULL, &e),
                         -1);
        fake_assert_error(&e, EINVAL, bad[i].field);
    }
    cri_error_t e1 = CRI_ERROR_INIT, e2 = CRI_ERROR_INIT, e3 = CRI_ERROR_INIT, e4 = CRI_ERROR_INIT,
                e5 = CRI_ERROR_INIT;
    assert_int_equal(update_resources(fx, "", &ok, NULL, &e1), -1);
    fake_assert_error(&e1, EINVAL, "pod_sandbox_id");
    assert_int_equal(update_resources(fx, parented, NULL, &ok, &e2), -1);
    fake_assert_error(&e2, EINVAL, "resources is missing");
    assert_int_equal(update_resources(fx, "0123abcd", &ok, NULL, &e3), -1);
    assert_int_equal(e3.status, ENOENT);
    /* no cgroup_parent: no pod cgroup to resize */
    assert_int_equal(update_resources(fx, plain, &ok, NULL, &e4), -1);
    fake_assert_error(&e4, EINVAL, "cgroup_parent");
    /* the parent's cgroup is not there: the error names it */
    assert_int_equal(update_resources(fx, parented, &ok, NULL, &e5), -1);
    fake_assert_error(&e5, ENOENT, "cricket-unit-no-such-cgroup");
    assert_false(pod_resources_set(fx, plain));
    assert_false(pod_resources_set(fx, parented));
}

/* ---- PodSandboxStats, ListPodSandboxStats: lookups and filters ---- */

static void test_pod_stats_lookups_and_filters(void **state)
{
    fake_daemon_t *fx = *state;
    const char *id = fake_run_pod(fx, "web");
    Runtime__V1__PodSandboxStatsRequest r;
    runtime__v1__pod_sandbox_stats_request__init(&r);
    ProtobufCMessage *resp = NULL;
    cri_error_t e1 = CRI_ERROR_INIT, e2 = CRI_ERROR_INIT, e3 = CRI_ERROR_INIT;
    r.pod_sandbox_id = "";
    assert_int_equal(handle_pod_sandbox_stats(fx->ctx, &r.base, &resp, &e1), -1);
    fake_assert_error(&e1, EINVAL, "pod_sandbox_id");
    r.pod_sandbox_id = "0123abcd";
    assert_int_equal(handle_pod_sandbox_stats(fx->ctx, &r.base, &resp, &e2), -1);
    assert_int_equal(e2.status, ENOENT);
    r.pod_sandbox_id = (char *)id;
    assert_int_equal(handle_pod_sandbox_stats(fx->ctx, &r.base, &resp, &e3), 0);
    const Runtime__V1__PodSandboxStats *st = ((Runtime__V1__PodSandboxStatsResponse *)resp)->stats;
    assert_string_equal(st->attributes->id, id);
    assert_string_equal(st->attributes->metadata->name, "web");
    assert_int_equal(st->linux->n_containers, 0);

    Runtime__V1__ListPodSandboxStatsRequest l;
    runtime__v1__list_pod_sandbox_stats_request__init(&l);
    Runtime__V1__PodSandboxStatsFilter f;
    runtime__v1__pod_sandbox_stats_filter__init(&f);
    l.filter = &f;
    f.id = (char *)"ABC";
    cri_error_t e4 = CRI_ERROR_INIT;
    assert_int_equal(handle_list_pod_sandbox_stats(fx->ctx, &l.base, &resp, &e4), -1);
    fake_assert_error(&e4, EINVAL, "filter.id");
    f.id = (char *)"";
    Runtime__V1__PodSandboxStatsFilter__LabelSelectorEntry sel;
    runtime__v1__pod_sandbox_stats_filter__label_selector_entry__init(&sel);
    sel.key = "";
    sel.value = "x";
    Runtime__V1__PodSandboxStatsFilter__LabelSelectorEntry *sels[] = {&sel};
    f.label_selector = sels;
    f.n_label_selector = 1;
    cri_error_t e5 = CRI_ERROR_INIT;
    assert_int_equal(handle_list_pod_sandbox_stats(fx->ctx, &l.base, &resp, &e5), -1);
    fake_assert_error(&e5, EINVAL, "filter.label_selector");
    sel.key = "app";
    cri_error_t e6 = CRI_ERROR_INIT;
    assert_int_equal(handle_list_pod_sandbox_stats(fx->ctx, &l.base, &resp, &e6), 0);
    assert_int_equal(((Runtime__V1__ListPodSandboxStatsResponse *)resp)->n_stats, 0);
    f.n_label_selector = 0;
    f.id = (char *)id;
    assert_int_equal(handle_list_pod_sandbox_stats(fx->ctx, &l.base, &resp, &e6), 0);
    assert_int_equal(((Runtime__V1__ListPodSandboxStatsResponse *)resp)->n_stats, 1);
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test_setup_teardown(test_run_stop_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_stop_remove_no_infra, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_infra_false_keeps_the_infra, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_running_pod, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_ids_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_cni_del_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_unmount_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_name_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_rollback_step_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_resources_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pod_stats_lookups_and_filters, setup, teardown),
    };
    return fake_run_tests("handlers_sandbox", fixed, sizeof(fixed) / sizeof(fixed[0]), run_cases,
                          sizeof(run_cases) / sizeof(run_cases[0]), sizeof(run_cases[0]),
                          test_run_rollback);
}
