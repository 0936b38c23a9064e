/* CreateContainer, StartContainer, StopContainer and RemoveContainer
 * called directly on a daemon whose runtime, monitor and mounts are fakes
 * (fakes.h): no root, no runc. Every rollback path of CreateContainer is
 * driven by failing one step, and the fakes and the store must show that
 * everything made before it was undone. */
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
#include "fakes.h"
#include "conmon/conmon.h"
#include "server/container/container.h"
#include "server/exits.h"
#include "server/handlers.h"
#include "server/pool.h"
#include "server/sandbox/sandbox.h"

#define APP_IMAGE "registry.test/app:1"
#define APP_CONFIG                                                                               \
    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":" \
    "[]},\"config\":{\"Cmd\":[\"/bin/sh\"],\"Env\":[\"PATH=/bin\"]}}"

typedef struct fixture {
    fake_daemon_t *fx;
    const char *pod; /* a READY pod, "web" */
} fixture_t;

static fixture_t *fixture_new(void)
{
    fixture_t *f = xcalloc(1, sizeof(*f));
    f->fx = fake_daemon_new();
    fake_daemon_add_image(f->fx, APP_IMAGE, APP_CONFIG);
    f->pod = fake_run_pod(f->fx, "web");
    /* no release at exit (lifecycle.c): Remove does it all, as after a
     * restart; test_exit_releases_runtime turns it on */
    pool_free(f->fx->d.bg_pool);
    f->fx->d.bg_pool = NULL;
    return f;
}

static void fixture_free(fixture_t *f)
{
    fake_daemon_free(f->fx);
    free(f);
}

static int setup(void **state)
{
    *state = fixture_new();
    return 0;
}

static int teardown(void **state)
{
    fixture_free(*state);
    return 0;
}

/* ---- requests ---- */

typedef struct create_req {
    Runtime__V1__CreateContainerRequest req;
    Runtime__V1__ContainerConfig cfg;
    Runtime__V1__ContainerMetadata meta;
    Runtime__V1__ImageSpec image;
    Runtime__V1__LinuxContainerConfig lx;
    Runtime__V1__LinuxContainerSecurityContext sc;
} create_req_t;

static void create_req_init(create_req_t *c, const char *pod, const char *name)
{
    memset(c, 0, sizeof(*c));
    runtime__v1__create_container_request__init(&c->req);
    runtime__v1__container_config__init(&c->cfg);
    runtime__v1__container_metadata__init(&c->meta);
    runtime__v1__image_spec__init(&c->image);
    runtime__v1__linux_container_config__init(&c->lx);
    runtime__v1__linux_container_security_context__init(&c->sc);
    c->meta.name = (char *)name;
    c->image.image = APP_IMAGE;
    c->cfg.metadata = &c->meta;
    c->cfg.image = &c->image;
    c->cfg.log_path = "app/0.log";
    c->lx.security_context = &c->sc;
    c->cfg.linux = &c->lx;
    c->req.pod_sandbox_id = (char *)pod;
    c->req.config = &c->cfg;
}

static int create(fixture_t *f, create_req_t *c, const char **ret_id, cri_error_t *err)
{
    ProtobufCMessage *resp = NULL;
    int rc = handle_create_container(f->fx->ctx, &c->req.base, &resp, err);
    if (rc == 0)
        *ret_id = ((Runtime__V1__CreateContainerResponse *)resp)->container_id;
    return rc;
}

static const char *create_ok(fixture_t *f, const char *name)
{
    create_req_t c;
    create_req_init(&c, f->pod, name);
    const char *id = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    if (create(f, &c, &id, &err) < 0)
        fail_msg("CreateContainer `%s`: %s", name, err.msg);
    return id;
}

static int start(fixture_t *f, const char *id, cri_error_t *err)
{
    Runtime__V1__StartContainerRequest r;
    runtime__v1__start_container_request__init(&r);
    r.container_id = (char *)id;
    ProtobufCMessage *resp = NULL;
    return handle_start_container(f->fx->ctx, &r.base, &resp, err);
}

static int stop(fixture_t *f, const char *id, int64_t timeout, cri_error_t *err)
{
    Runtime__V1__StopContainerRequest r;
    runtime__v1__stop_container_request__init(&r);
    r.container_id = (char *)id;
    r.timeout = timeout;
    ProtobufCMessage *resp = NULL;
    return handle_stop_container(f->fx->ctx, &r.base, &resp, err);
}

static int remove_ctr(fixture_t *f, const char *id, cri_error_t *err)
{
    Runtime__V1__RemoveContainerRequest r;
    runtime__v1__remove_container_request__init(&r);
    r.container_id = (char *)id;
    ProtobufCMessage *resp = NULL;
    return handle_remove_container(f->fx->ctx, &r.base, &resp, err);
}

/* The container's state, exit code and reason ("" when none). */
static container_state_t ctr_state(fixture_t *f, const char *id, int *ret_code, char *reason,
                                   size_t reason_len)
{
    cleanup_container container_t *c = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    if (container_store_get(f->fx->d.containers, id, &c, &err) < 0)
        fail_msg("container `%s`: %s", id, err.msg);
    container_status_t st;
    container_get_status(c, &st);
    container_state_t s = st.state;
    if (ret_code)
        *ret_code = st.exit_code;
    if (reason)
        snprintf(reason, reason_len, "%s", st.reason ? st.reason : "");
    container_status_clear(&st);
    return s;
}

/* No container is left, and the pod is untouched. */
static void assert_no_container_left(fixture_t *f)
{
    fake_daemon_t *fx = f->fx;
    assert_int_equal(fakes_live(FAKE_LIVE_ROOTFS), 0);
    assert_int_equal(fakes_containers(), 1); /* the infra */
    assert_int_equal(fakes_container_status(f->pod), OCI_STATUS_RUNNING);
    assert_int_equal(fake_dir_entries_at(fx->d.root, "containers"), 0);
    assert_int_equal(fake_dir_entries_at(fx->d.runroot, "containers"), 0);
    assert_int_equal(fake_dir_entries(fx->d.exit_dir), 0);
    assert_int_equal(fake_store_count(fx, STORE_CONTAINERS), 0);
    assert_int_equal(fake_store_count(fx, STORE_NAMES), 1); /* the pod's */
    container_t **list = NULL;
    size_t n = 0;
    container_store_list(fx->d.containers, NULL, &list, &n);
    container_list_free(list, n);
    assert_int_equal(n, 0);
}

/* ---- create, start, stop, remove ---- */

static void test_lifecycle(void **state)
{
    fixture_t *f = *state;
    const char *id = create_ok(f, "app");
    assert_int_equal(ctr_state(f, id, NULL, NULL, 0), CONTAINER_STATE_CREATED);
    assert_int_equal(fakes_container_status(id), OCI_STATUS_CREATED);
    assert_int_equal(fakes_live(FAKE_LIVE_ROOTFS), 1);
    cleanup_free char *rootfs = xasprintf("%s/containers/%s/rootfs", f->fx->d.root, id);
    assert_string_equal(fakes_arg(FAKE_ROOTFS_MOUNT, 1), rootfs);
    /* the monitor got the bundle and the log under the pod's log directory */
    cleanup_free char *want = xasprintf("id=%s bundle=%s/containers/%s log=%s/logs/web/app/0.log",
                                        id, f->fx->d.runroot, id, f->fx->dir);
    assert_non_null(strstr(fakes_arg(FAKE_CONMON_CREATE, 2), want));
    cleanup_free char *spec = xasprintf("%s/containers/%s/config.json", f->fx->d.runroot, id);
    assert_int_equal(access(spec, F_OK), 0);
    assert_int_equal(fake_store_count(f->fx, STORE_CONTAINERS), 1);

    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(start(f, id, &err), 0);
    assert_int_equal(ctr_state(f, id, NULL, NULL, 0), CONTAINER_STATE_RUNNING);
    assert_int_equal(fakes_container_status(id), OCI_STATUS_RUNNING);
    /* Start again: only a created container starts */
    cri_error_t serr = CRI_ERROR_INIT;
    assert_int_equal(start(f, id, &serr), -1);
    assert_int_equal(serr.status, EINVAL);
    assert_non_null(strstr(serr.msg, "is running, not created"));

    assert_int_equal(stop(f, id, 0, &err), 0);
    int code = 0;
    char reason[32];
    assert_int_equal(ctr_state(f, id, &code, reason, sizeof(reason)), CONTAINER_STATE_EXITED);
    assert_int_equal(code, 137);
    assert_string_equal(reason, "Error");
    /* stop of a stopped container: fine, nothing signalled */
    int kills = fakes_calls(FAKE_OCI_KILL);
    assert_int_equal(stop(f, id, 10, &err), 0);
    assert_int_equal(fakes_calls(FAKE_OCI_KILL), kills);

    assert_int_equal(remove_ctr(f, id, &err), 0);
    assert_no_container_left(f);
    cri_error_t nf = CRI_ERROR_INIT;
    container_t *gone = NULL;
    assert_int_equal(container_store_get(f->fx->d.containers, id, &gone, &nf), -1);
    assert_int_equal(nf.status, ENOENT);
    /* idempotent: Remove and Stop of a removed (unknown) container */
    assert_int_equal(remove_ctr(f, id, &err), 0);
    assert_int_equal(stop(f, id, 0, &err), 0);
    /* and the name is free */
    create_ok(f, "app");
}

/* A container of a pod with its own user namespace: id-mapped rootfs at
 * <root>/rootfs-userns/<id>, the spec joins the pod's pin with its ranges;
 * a failed create and Remove leave nothing. */
static void test_userns_pod_container(void **state)
{
    fixture_t *f = *state;
    f->fx->d.host.userns_supported = true;
    Runtime__V1__IDMapping range = {PROTOBUF_C_MESSAGE_INIT(&runtime__v1__idmapping__descriptor),
                                    131072, 0, 65536};
    Runtime__V1__IDMapping *ranges[] = {&range};
    Runtime__V1__UserNamespace u = {
        PROTOBUF_C_MESSAGE_INIT(&runtime__v1__user_namespace__descriptor),
        RUNTIME__V1__NAMESPACE_MODE__POD,
        1,
        ranges,
        1,
        ranges};
    fake_pod_req_t p;
    fake_pod_req_init(f->fx, &p, "uns");
    p.ns.userns_options = &u;
    const char *pod = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    if (fake_run_pod_req(f->fx, &p, &pod, &err) < 0)
        fail_msg("RunPodSandbox: %s", err.msg);
    create_req_t c;
    create_req_init(&c, pod, "app");
    const char *id = NULL;
    assert_int_equal(create(f, &c, &id, &err), 0);
    cleanup_free char *rootfs = xasprintf("%s/rootfs-userns/%s", f->fx->d.root, id);
    assert_string_equal(fakes_arg(FAKE_ROOTFS_MOUNT, 1), rootfs);
    cleanup_free char *path = xasprintf("%s/containers/%s/config.json", f->fx->d.runroot, id);
    cleanup_free char *spec = NULL;
    size_t len = 0;
    assert_int_equal(read_file(path, 1 << 20, &spec, &len, &err), 0);
    cleanup_free char *want =
        xasprintf("{\"type\":\"user\",\"path\":\"%s/userns/%s\"}", f->fx->d.runroot, pod);
    assert_non_null(strstr(spec, want));
    assert_non_null(strstr(spec, "\"uidMappings\":[{\"containerID\":0,\"hostID\":131072,"
                                 "\"size\":65536}]"));
    assert_int_equal(remove_ctr(f, id, &err), 0);
    assert_int_equal(fakes_live(FAKE_LIVE_ROOTFS), 0);
    assert_int_equal(fake_dir_entries_at(f->fx->d.root, "rootfs-userns"), 1); /* pause */

    /* a failing spec step (runtime create) takes the id-mapped rootfs down */
    fakes_fail(FAKE_CONMON_CREATE, 1, EIO);
    create_req_init(&c, pod, "app2");
    assert_int_equal(create(f, &c, &id, &err), -1);
    assert_int_equal(fakes_live(FAKE_LIVE_ROOTFS), 0);
    assert_int_equal(fake_dir_entries_at(f->fx->d.root, "rootfs-userns"), 1);
}

static void test_bad_ids(void **state)
{
    fixture_t *f = *state;
    cri_error_t e1 = CRI_ERROR_INIT, e2 = CRI_ERROR_INIT, e3 = CRI_ERROR_INIT, e4 = CRI_ERROR_INIT;
    assert_int_equal(stop(f, "", 0, &e1), -1);
    assert_int_equal(e1.status, EINVAL);
    assert_int_equal(remove_ctr(f, "", &e2), -1);
    assert_int_equal(e2.status, EINVAL);
    assert_int_equal(stop(f, "abc", -1, &e3), -1);
    assert_int_equal(e3.status, EINVAL);
    assert_non_null(strstr(e3.msg, "timeout"));
    assert_int_equal(start(f, "abcdef", &e4), -1);
    assert_int_equal(e4.status, ENOENT);
    cri_error_t ok = CRI_ERROR_INIT;
    assert_int_equal(stop(f, "abcdef", 0, &ok), 0);
    assert_int_equal(remove_ctr(f, "abcdef", &ok), 0);
    assert_int_equal(fakes_calls(FAKE_OCI_KILL) + fakes_calls(FAKE_OCI_DELETE), 0);
}

/* A failed runc start leaves the container EXITED (128, StartError), as
 * persisted, and the error goes back. */
static void test_start_fails(void **state)
{
    fixture_t *f = *state;
    const char *id = create_ok(f, "app");
    fakes_fail(FAKE_OCI_START, 1, EIO);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(start(f, id, &err), -1);
    assert_int_equal(err.status, EIO);
    int code = 0;
    char reason[32];
    assert_int_equal(ctr_state(f, id, &code, reason, sizeof(reason)), CONTAINER_STATE_EXITED);
    assert_int_equal(code, 128);
    assert_string_equal(reason, "StartError");
    void *val = NULL;
    cri_error_t gerr = CRI_ERROR_INIT;
    assert_int_equal(store_get1(f->fx->d.store, STORE_CONTAINERS, id, &val, NULL, &gerr), 0);
    assert_non_null(strstr(val, "StartError"));
    free(val);
    /* Remove still cleans it all up */
    assert_int_equal(remove_ctr(f, id, &err), 0);
    assert_no_container_left(f);
}

static void test_start_in_stopped_pod(void **state)
{
    fixture_t *f = *state;
    const char *id = create_ok(f, "app");
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(fake_stop_pod(f->fx, f->pod, &err), 0);
    /* the pod's Stop stopped its created container too */
    assert_int_equal(ctr_state(f, id, NULL, NULL, 0), CONTAINER_STATE_EXITED);
    cri_error_t serr = CRI_ERROR_INIT;
    assert_int_equal(start(f, id, &serr), -1);
    assert_int_equal(serr.status, EINVAL);
}

/* Stop of a created, never started container kills runc's init. */
static void test_stop_created(void **state)
{
    fixture_t *f = *state;
    const char *id = create_ok(f, "app");
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(stop(f, id, 30, &err), 0);
    assert_int_equal(ctr_state(f, id, NULL, NULL, 0), CONTAINER_STATE_EXITED);
    /* Stop ends by deleting it from the runtime (its release) */
    assert_int_equal(fakes_container_status(id), OCI_STATUS_UNKNOWN);
}

/* StopContainer releases the exited container in the request, so a Remove
 * right after runs no runtime delete (a failing one cannot fail it); a
 * release that failed at Stop is done by Remove. */
static void test_stop_releases_then_remove_skips_delete(void **state)
{
    fixture_t *f = *state;
    const char *id = create_ok(f, "app");
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(start(f, id, &err), 0);
    assert_int_equal(stop(f, id, 0, &err), 0);
    assert_int_equal(fakes_container_status(id), OCI_STATUS_UNKNOWN);
    fakes_fail(FAKE_OCI_DELETE, 1, EIO);
    assert_int_equal(remove_ctr(f, id, &err), 0);

    const char *id2 = create_ok(f, "app2");
    assert_int_equal(start(f, id2, &err), 0);
    fakes_fail(FAKE_OCI_DELETE, 1, EIO);
    assert_int_equal(stop(f, id2, 0, &err), 0); /* the release failed: logged */
    assert_int_equal(fakes_container_status(id2), OCI_STATUS_STOPPED);
    assert_int_equal(remove_ctr(f, id2, &err), 0);
    assert_int_equal(fakes_container_status(id2), OCI_STATUS_UNKNOWN);
}

/* A kill that fails while the container still runs fails Stop; it stays
 * RUNNING and a retry stops it. */
static void test_stop_kill_fails(void **state)
{
    fixture_t *f = *state;
    const char *id = create_ok(f, "app");
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(start(f, id, &err), 0);
    fakes_fail(FAKE_OCI_KILL, 1, EPERM);
    assert_int_equal(stop(f, id, 0, &err), -1);
    assert_int_equal(err.status, EPERM);
    assert_int_equal(ctr_state(f, id, NULL, NULL, 0), CONTAINER_STATE_RUNNING);
    cri_error_t err2 = CRI_ERROR_INIT;
    assert_int_equal(stop(f, id, 0, &err2), 0);
    assert_int_equal(ctr_state(f, id, NULL, NULL, 0), CONTAINER_STATE_EXITED);
}

/* Once an exit is recorded, a background job deletes the container from
 * the runtime and unmounts its rootfs (as containerd's shim does); the
 * status stays EXITED and Remove no longer calls `runc delete` (a failing
 * one cannot fail it). */
static void test_exit_releases_runtime(void **state)
{
    fixture_t *f = *state;
    f->fx->d.bg_pool = pool_new(1, 16, 100);
    const char *id = create_ok(f, "app");
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(start(f, id, &err), 0);
    assert_int_equal(stop(f, id, 0, &err), 0);
    pool_free(f->fx->d.bg_pool); /* runs the queued release, waits for it */
    f->fx->d.bg_pool = NULL;
    assert_int_equal(fakes_live(FAKE_LIVE_ROOTFS), 0);
    assert_int_equal(fakes_container_status(id), OCI_STATUS_UNKNOWN); /* deleted */
    assert_int_equal(ctr_state(f, id, NULL, NULL, 0), CONTAINER_STATE_EXITED);
    assert_int_equal(fake_store_count(f->fx, STORE_CONTAINERS), 1);
    fakes_fail(FAKE_OCI_DELETE, 1, EIO);
    assert_int_equal(remove_ctr(f, id, &err), 0);
    assert_no_container_left(f);
}

/* A failed `runc delete` or unmount keeps the record (and the mount), so
 * a later Remove retries instead of forgetting what is still on the host. */
static void test_remove_keeps_record_on_failure(void **state)
{
    fixture_t *f = *state;
    const char *id = create_ok(f, "app");
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(start(f, id, &err), 0);
    fakes_fail(FAKE_OCI_DELETE, 1, EIO);
    assert_int_equal(remove_ctr(f, id, &err), -1);
    assert_int_equal(err.status, EIO);
    assert_int_equal(fake_store_count(f->fx, STORE_CONTAINERS), 1);
    assert_int_equal(fakes_live(FAKE_LIVE_ROOTFS), 1);
    assert_int_equal(ctr_state(f, id, NULL, NULL, 0), CONTAINER_STATE_EXITED);

    fakes_fail(FAKE_ROOTFS_UNMOUNT, 1, EBUSY);
    cri_error_t err2 = CRI_ERROR_INIT;
    assert_int_equal(remove_ctr(f, id, &err2), -1);
    assert_int_equal(err2.status, EBUSY);
    assert_int_equal(fake_store_count(f->fx, STORE_CONTAINERS), 1);
    assert_int_equal(fakes_live(FAKE_LIVE_ROOTFS), 1);
    cleanup_free char *dir = xasprintf("%s/containers/%s", f->fx->d.root, id);
    assert_int_equal(access(dir, F_OK), 0); /* not removed under a mount */

    cri_error_t err3 = CRI_ERROR_INIT;
    assert_int_equal(remove_ctr(f, id, &err3), 0);
    assert_no_container_left(f);
}

/* A create whose rollback fails too (the rootfs cannot be unmounted)
 * keeps the container, exited with reason CreateError, so RemoveContainer
 * retries; before, its record went and the mount was forgotten. */
static void test_create_rollback_failure_keeps_container(void **state)
{
    fixture_t *f = *state;
    fakes_fail(FAKE_CONMON_CREATE, 1, EIO);
    fakes_fail(FAKE_ROOTFS_UNMOUNT, 1, EBUSY);
    create_req_t r;
    create_req_init(&r, f->pod, "app");
    const char *id = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(create(f, &r, &id, &err), -1);
    assert_int_equal(err.status, EIO);
    assert_int_equal(fake_store_count(f->fx, STORE_CONTAINERS), 1);
    assert_int_equal(fakes_live(FAKE_LIVE_ROOTFS), 1);
    container_t **list = NULL;
    size_t n = 0;
    container_store_list(f->fx->d.containers, NULL, &list, &n);
    assert_int_equal(n, 1);
    cleanup_free char *kept = xstrdup(list[0]->id);
    container_list_free(list, n);
    assert_int_equal(ctr_state(f, kept, NULL, NULL, 0), CONTAINER_STATE_EXITED);
    cri_error_t err2 = CRI_ERROR_INIT;
    assert_int_equal(remove_ctr(f, kept, &err2), 0);
    assert_no_container_left(f);
}

/* ExecSync reaches the runtime (oci ops, no monitor) and ReopenContainerLog
 * the monitor (conmon_ops): the reply carries what they returned, their
 * errors come back, and a container that is not running is refused before
 * either is asked. A timeout is DEADLINE_EXCEEDED's errno. */
static void test_exec_sync_and_reopen_log(void **state)
{
    fixture_t *f = *state;
    const char *id = create_ok(f, "app");
    Runtime__V1__ExecSyncRequest x;
    runtime__v1__exec_sync_request__init(&x);
    char *cmd[] = {"true"};
    x.container_id = (char *)id;
    x.cmd = cmd;
    x.n_cmd = 1;
    Runtime__V1__ReopenContainerLogRequest rl;
    runtime__v1__reopen_container_log_request__init(&rl);
    rl.container_id = (char *)id;
    ProtobufCMessage *resp = NULL;
    cri_error_t e1 = CRI_ERROR_INIT, e2 = CRI_ERROR_INIT;
    assert_int_equal(handle_exec_sync(f->fx->ctx, &x.base, &resp, &e1), -1);
    assert_int_equal(e1.status, EINVAL); /* created, not running */
    assert_int_equal(handle_reopen_container_log(f->fx->ctx, &rl.base, &resp, &e2), -1);
    assert_int_equal(e2.status, EINVAL);
    assert_int_equal(fakes_calls(FAKE_OCI_EXEC_SYNC) + fakes_calls(FAKE_CONMON_REOPEN_LOG), 0);

    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(start(f, id, &err), 0);
    assert_int_equal(handle_exec_sync(f->fx->ctx, &x.base, &resp, &err), 0);
    Runtime__V1__ExecSyncResponse *xr = (Runtime__V1__ExecSyncResponse *)resp;
    assert_int_equal(xr->stdout.len, 3);
    assert_memory_equal(xr->stdout.data, "out", 3);
    assert_int_equal(xr->exit_code, 3);
    assert_string_equal(fakes_arg(FAKE_OCI_EXEC_SYNC, 1), id);
    fakes_fail(FAKE_OCI_EXEC_SYNC, 1, EIO);
    cri_error_t e3 = CRI_ERROR_INIT;
    assert_int_equal(handle_exec_sync(f->fx->ctx, &x.base, &resp, &e3), -1);
    assert_int_equal(e3.status, EIO);
    fakes_fail(FAKE_OCI_EXEC_SYNC, 1, ETIMEDOUT);
    cri_error_t e5 = CRI_ERROR_INIT;
    assert_int_equal(handle_exec_sync(f->fx->ctx, &x.base, &resp, &e5), -1);
    assert_int_equal(e5.status, ETIMEDOUT);
    assert_non_null(strstr(e5.msg, "timed out"));

    assert_int_equal(handle_reopen_container_log(f->fx->ctx, &rl.base, &resp, &err), 0);
    assert_string_equal(fakes_arg(FAKE_CONMON_REOPEN_LOG, 1), id);
    fakes_fail(FAKE_CONMON_REOPEN_LOG, 1, ESRCH);
    cri_error_t e4 = CRI_ERROR_INIT;
    assert_int_equal(handle_reopen_container_log(f->fx->ctx, &rl.base, &resp, &e4), -1);
    assert_int_equal(e4.status, ESRCH);
}

/* The state the record holds for id (a fresh store loaded from disk, as
 * after a restart). */
static container_state_t recorded_state(fixture_t *f, const char *id, int *ret_code, char *reason,
                                        size_t reason_len)
{
    container_store_t *s = container_store_new(f->fx->d.store);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(container_store_load(s, NULL, &err), 0);
    container_t *c = NULL;
    assert_int_equal(container_store_get(s, id, &c, &err), 0);
    container_status_t st;
    container_get_status(c, &st);
    container_state_t state = st.state;
    *ret_code = st.exit_code;
    snprintf(reason, reason_len, "%s", st.reason ? st.reason : "");
    container_status_clear(&st);
    container_unref(c);
    container_store_free(s);
    return state;
}

/* A monitor that died while its container runs: exec, reopen and attach
 * need it, so they are refused (EOWNERDEAD, FAILED_PRECONDITION) without
 * asking it; when the process ends the container is EXITED with the
 * kernel's status and reason ContainerMonitorDied, in the record too. */
static void test_monitor_death(void **state)
{
    fixture_t *f = *state;
    const char *id = create_ok(f, "app");
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(start(f, id, &err), 0);
    exit_watcher_death_t dth = {.monitor_pid = 4242, .pid = 42, .running = true};
    assert_true(container_on_monitor_death(&f->fx->d, id, &dth));
    assert_false(container_on_monitor_death(&f->fx->d, "not-a-container", &dth));
    assert_int_equal(ctr_state(f, id, NULL, NULL, 0), CONTAINER_STATE_RUNNING);

    Runtime__V1__ExecSyncRequest x;
    runtime__v1__exec_sync_request__init(&x);
    char *cmd[] = {"true"};
    x.container_id = (char *)id;
    x.cmd = cmd;
    x.n_cmd = 1;
    Runtime__V1__ReopenContainerLogRequest rl;
    runtime__v1__reopen_container_log_request__init(&rl);
    rl.container_id = (char *)id;
    ProtobufCMessage *resp = NULL;
    cri_error_t e1 = CRI_ERROR_INIT, e2 = CRI_ERROR_INIT;
    assert_int_equal(handle_exec_sync(f->fx->ctx, &x.base, &resp, &e1), -1);
    assert_int_equal(e1.status, EOWNERDEAD);
    assert_non_null(strstr(e1.msg, "monitor"));
    assert_int_equal(handle_reopen_container_log(f->fx->ctx, &rl.base, &resp, &e2), -1);
    assert_int_equal(e2.status, EOWNERDEAD);
    assert_int_equal(fakes_calls(FAKE_OCI_EXEC_SYNC) + fakes_calls(FAKE_CONMON_REOPEN_LOG), 0);

    dth.running = false;
    dth.status_known = true;
    dth.wait_status = 9; /* killed by SIGKILL, as waitpid reports it */
    dth.finished_at = now_unix_ns();
    assert_true(container_on_monitor_death(&f->fx->d, id, &dth));
    int code = 0;
    char reason[64];
    assert_int_equal(ctr_state(f, id, &code, reason, sizeof(reason)), CONTAINER_STATE_EXITED);
    assert_int_equal(code, 137);
    assert_string_equal(reason, CONTAINER_REASON_MONITOR_DIED);
    assert_int_equal(recorded_state(f, id, &code, reason, sizeof(reason)), CONTAINER_STATE_EXITED);
    assert_int_equal(code, 137);
    assert_string_equal(reason, CONTAINER_REASON_MONITOR_DIED);
    /* a later report changes nothing; the status lost is 255 */
    dth.wait_status = 3 << 8;
    assert_true(container_on_monitor_death(&f->fx->d, id, &dth));
    assert_int_equal(ctr_state(f, id, &code, NULL, 0), CONTAINER_STATE_EXITED);
    assert_int_equal(code, 137);
    const char *b = create_ok(f, "b");
    assert_int_equal(start(f, b, &err), 0);
    exit_watcher_death_t lost = {.running = false};
    assert_true(container_on_monitor_death(&f->fx->d, b, &lost));
    assert_int_equal(ctr_state(f, b, &code, NULL, 0), CONTAINER_STATE_EXITED);
    assert_int_equal(code, 255);
}

/* An exit the watcher reports is written to the record at once: a reboot
 * that wipes the exit files keeps it. */
static void test_exit_is_recorded(void **state)
{
    fixture_t *f = *state;
    const char *id = create_ok(f, "app");
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(start(f, id, &err), 0);
    conmon_exit_t e = {.pid = 42, .exit_code = 3, .finished_at = now_unix_ns()};
    assert_true(container_on_exit(&f->fx->d, id, &e));
    int code = 0;
    char reason[64];
    assert_int_equal(recorded_state(f, id, &code, reason, sizeof(reason)), CONTAINER_STATE_EXITED);
    assert_int_equal(code, 3);
    assert_string_equal(reason, "Error");
}

/* RemovePodSandbox takes the pod's containers with it. */
static void test_remove_pod_removes_containers(void **state)
{
    fixture_t *f = *state;
    const char *a = create_ok(f, "a");
    create_ok(f, "b");
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(start(f, a, &err), 0);
    assert_int_equal(fake_remove_pod(f->fx, f->pod, &err), 0);
    assert_int_equal(fakes_containers(), 0);
    assert_int_equal(fakes_live(FAKE_LIVE_ROOTFS), 0);
    assert_int_equal(fake_store_count(f->fx, STORE_CONTAINERS), 0);
    assert_int_equal(fake_store_count(f->fx, STORE_PODS), 0);
    assert_int_equal(fake_store_count(f->fx, STORE_NAMES), 0);
    assert_int_equal(fake_dir_entries_at(f->fx->d.root, "containers"), 0);
}

/* ---- every rollback path of CreateContainer ---- */

typedef struct create_case {
    const char *name;
    const char *op; /* the fake step that fails; NULL: setup or tweak makes it fail */
    int status;     /* injected errno, or the expected one */
    void (*setup)(fixture_t *f);
    void (*undo)(fixture_t *f);
    void (*tweak)(create_req_t *c);
    const char *want_msg;
} create_case_t;

static void block_bundle(fixture_t *f)
{
    fake_replace_with_file(f->fx->d.runroot, "containers");
}

static void unblock_bundle(fixture_t *f)
{
    fake_restore_dir(f->fx->d.runroot, "containers");
}

static void block_container_dir(fixture_t *f)
{
    fake_replace_with_file(f->fx->d.root, "containers");
}

static void unblock_container_dir(fixture_t *f)
{
    fake_restore_dir(f->fx->d.root, "containers");
}

/* log_path's directory is a symlink planted in the pod's log directory */
static void plant_log_symlink(fixture_t *f)
{
    cleanup_free char *dir = xasprintf("%s/logs/web", f->fx->dir);
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(mkdir_p(dir, 0755, &err), 0);
    cleanup_free char *link = xasprintf("%s/app", dir);
    assert_int_equal(symlink("/tmp", link), 0);
}

static void remove_log_symlink(fixture_t *f)
{
    cleanup_free char *link = xasprintf("%s/logs/web/app", f->fx->dir);
    assert_int_equal(unlink(link), 0);
}

static void take_name(fixture_t *f)
{
    create_ok(f, "app");
}

static void stop_pod(fixture_t *f)
{
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(fake_stop_pod(f->fx, f->pod, &err), 0);
}

static void unknown_pod(create_req_t *c)
{
    c->req.pod_sandbox_id = "ffffffff";
}

static void unknown_image(create_req_t *c)
{
    c->image.image = "registry.test/nope:1";
}

static void privileged(create_req_t *c)
{
    c->sc.privileged = true;
}

static const create_case_t create_cases[] = {
    {.name = "create_fails_at_rootfs_mount", .op = FAKE_ROOTFS_MOUNT, .status = EPERM},
    {.name = "create_fails_at_monitor_create", .op = FAKE_CONMON_CREATE, .status = EIO},
    {.name = "create_monitor_create_times_out", .op = FAKE_CONMON_CREATE, .status = ETIMEDOUT},
    {.name = "create_fails_at_container_dir",
     .status = ENOTDIR,
     .setup = block_container_dir,
     .undo = unblock_container_dir},
    {.name = "create_fails_at_spec_write",
     .status = ENOTDIR,
     .setup = block_bundle,
     .undo = unblock_bundle},
    {.name = "create_fails_at_log_dir",
     .status = EINVAL,
     .setup = plant_log_symlink,
     .undo = remove_log_symlink,
     .want_msg = "symlink"},
    {.name = "create_fails_on_unknown_pod",
     .status = ENOENT,
     .tweak = unknown_pod,
     .want_msg = "pod_sandbox_id"},
    {.name = "create_fails_on_unknown_image",
     .status = ENOENT,
     .tweak = unknown_image,
     .want_msg = "config.image.image"},
    {.name = "create_fails_privileged_in_unprivileged_pod",
     .status = EINVAL,
     .tweak = privileged,
     .want_msg = "privileged"},
    {.name = "create_fails_in_stopped_pod",
     .status = EINVAL,
     .setup = stop_pod,
     .want_msg = "not ready"},
};

/* A second container under a taken name is refused before anything is
 * made, and the first one is kept. */
static void test_create_name_taken(void **state)
{
    fixture_t *f = *state;
    take_name(f);
    create_req_t c;
    create_req_init(&c, f->pod, "app");
    const char *id = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(create(f, &c, &id, &err), -1);
    assert_int_equal(err.status, EEXIST);
    assert_int_equal(fakes_calls(FAKE_ROOTFS_MOUNT), 1); /* the first one only */
    assert_int_equal(fake_store_count(f->fx, STORE_CONTAINERS), 1);
    assert_int_equal(fakes_live(FAKE_LIVE_ROOTFS), 1);
}

static void test_create_rollback(void **state)
{
    const create_case_t *c = *state;
    fixture_t *f = fixture_new();
    if (c->op)
        fakes_fail(c->op, 1, c->status);
    if (c->setup)
        c->setup(f);
    create_req_t r;
    create_req_init(&r, f->pod, "app");
    if (c->tweak)
        c->tweak(&r);
    const char *id = NULL;
    cri_error_t err = CRI_ERROR_INIT;
    assert_int_equal(create(f, &r, &id, &err), -1);
    fake_assert_error(&err, c->status, c->op ? "failed as told" : c->want_msg);
    if (c->setup == stop_pod) {
        assert_int_equal(fakes_live(FAKE_LIVE_ROOTFS), 0);
        assert_int_equal(fake_store_count(f->fx, STORE_CONTAINERS), 0);
        fixture_free(f);
        return; /* the pod is gone: no rerun */
    }
    assert_no_container_left(f);

    /* the name is free again and the same container can be made */
    if (c->undo)
        c->undo(f);
    create_ok(f, "app");
    fixture_free(f);
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_userns_pod_container, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_in_stopped_pod, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_releases_then_remove_skips_delete, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stop_created, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_kill_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_releases_runtime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_keeps_record_on_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_pod_removes_containers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_sync_and_reopen_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_name_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_rollback_failure_keeps_container, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_monitor_death, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_is_recorded, setup, teardown),
    };
    return fake_run_tests("handlers_container", fixed, sizeof(fixed) / sizeof(fixed[0]),
                          create_cases, sizeof(create_cases) / sizeof(create_cases[0]),
                          sizeof(create_cases[0]), test_create_rollback);
}
