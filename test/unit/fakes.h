/* Fakes of everything a handler runs outside the process, for the handler
 * unit tests (test_handlers_*.c): the OCI runtime, the monitor client, CNI
 * and the root-only host changes (netns pins, shm and rootfs mounts).
 *
 * One fake world per test binary (the ops tables carry no userdata): it
 * records every call, keeps what is alive (pinned netns, mounts, CNI
 * attachments, runtime containers) and fails the nth call of an op on
 * demand. Thread-safe: RunPodSandbox runs CNI ADD on a second thread.
 *
 * fake_daemon_new() opens a real daemon (daemon_open: real LMDB store,
 * image, sandbox and container stores in a temp dir) and swaps the fakes
 * in. Nothing needs root. */
#ifndef CRICKET_TEST_UNIT_FAKES_H
#define CRICKET_TEST_UNIT_FAKES_H

#include <stdbool.h>
#include <stddef.h>

#include "cni/cni.h"
#include "conmon/conmon.h"
#include "oci/oci.h"
#include "server/daemon.h"
#include "server/host_ops.h"
#include "server/rpc.h"
#include "server/store.h"
#include "api/cri/v1/api.pb-c.h"

extern const cni_ops_t fake_cni_ops;
extern const conmon_ops_t fake_conmon_ops;
extern const host_ops_t fake_host_ops;
extern const struct oci_runtime_ops fake_oci_ops;

/* Op names, as recorded and as fakes_fail() takes them. */
#define FAKE_NETNS_PIN "netns_pin"
#define FAKE_NETNS_UNPIN "netns_unpin"
#define FAKE_USERNS_PIN "userns_pin"
#define FAKE_SHM_MOUNT "shm_mount"
#define FAKE_SHM_UNMOUNT "shm_unmount"
#define FAKE_ROOTFS_MOUNT "rootfs_mount"
#define FAKE_ROOTFS_UNMOUNT "rootfs_unmount"
#define FAKE_CNI_ADD "cni_add"
#define FAKE_CNI_DEL "cni_del"
#define FAKE_CONMON_CREATE "conmon_create"
#define FAKE_CONMON_REOPEN_LOG "conmon_reopen_log"
#define FAKE_OCI_START "oci_start"
#define FAKE_OCI_KILL "oci_kill"
#define FAKE_OCI_DELETE "oci_delete"
#define FAKE_OCI_STATE "oci_state"
#define FAKE_OCI_EXEC_SYNC "oci_exec_sync"

/* Kinds of live resources (fakes_live()). */
#define FAKE_LIVE_NETNS "netns"   /* pinned netns paths */
#define FAKE_LIVE_SHM "shm"       /* mounted pod shm dirs */
#define FAKE_LIVE_ROOTFS "rootfs" /* mounted overlay targets */
#define FAKE_LIVE_CNI "cni"       /* "<network>/<container id>" attachments */

/* Forgets every call, failure and live resource. Kill writes exit files
 * into exit_dir, as the monitor would. */
void fakes_reset(const char *exit_dir);

/* The nth call (1-based) of op, from now on, fails with status. A failing
 * conmon_create leaves its container in the runtime (half created, as a
 * runtime that failed or timed out may), so the caller must delete it. */
void fakes_fail(const char *op, int nth, int status);

/* Calls of op so far. */
int fakes_calls(const char *op);
/* What the nth call (1-based) of op got, as "key=value ..." text (see
 * fakes.c for each op's format); NULL when there was no such call. The
 * string lives until fakes_reset(). */
const char *fakes_arg(const char *op, int nth);

/* Live resources of a kind. */
int fakes_live(const char *kind);
/* Containers the fake runtime knows. */
int fakes_containers(void);
/* A container's status; OCI_STATUS_UNKNOWN when the runtime has none. */
oci_status_t fakes_container_status(const char *id);
/* Puts a container into the fake runtime (or changes its status). */
void fakes_set_container(const char *id, oci_status_t status);

/* A daemon on a temp root with the fakes in place. */
typedef struct fake_daemon {
    char dir[64];
    daemon_t d;
    rpc_ctx_t *ctx; /* for calling handlers; its arena lives as long as fx */
} fake_daemon_t;

fake_daemon_t *fake_daemon_new(void);
/* Closes the daemon and removes the temp dir. NULL is fine. */
void fake_daemon_free(fake_daemon_t *fx);

/* Adds an image record named `ref` with no layers (the rootfs is an empty
 * overlay) and config_json as its config blob. */
void fake_daemon_add_image(fake_daemon_t *fx, const char *ref, const char *config_json);

/* Records of a kind in the daemon's LMDB store. */
int fake_store_count(fake_daemon_t *fx, store_kind_t kind);

/* A RunPodSandbox request for pod `name` (uid "uid-<name>", namespace
 * "default", pod network, IPC and PID; log directory <dir>/logs/<name>). */
typedef struct fake_pod_req {
    Runtime__V1__RunPodSandboxRequest req;
    Runtime__V1__PodSandboxConfig cfg;
    Runtime__V1__PodSandboxMetadata meta;
    Runtime__V1__LinuxPodSandboxConfig lx;
    Runtime__V1__LinuxSandboxSecurityContext sc;
    Runtime__V1__NamespaceOption ns;
    char uid[64], log_dir[128];
} fake_pod_req_t;

void fake_pod_req_init(fake_daemon_t *fx, fake_pod_req_t *p, const char *name);

/* RunPodSandbox of p through handle_run_pod_sandbox: 0 and the id (it
 * lives as long as fx), or -1 and err. */
int fake_run_pod_req(fake_daemon_t *fx, fake_pod_req_t *p, const char **ret_id, cri_error_t *err);

/* Runs pod `name` through handle_run_pod_sandbox (it must succeed); its id
 * lives as long as fx. */
const char *fake_run_pod(fake_daemon_t *fx, const char *name);

/* StopPodSandbox and RemovePodSandbox of pod `id` through their handlers. */
int fake_stop_pod(fake_daemon_t *fx, const char *id, cri_error_t *err);
int fake_remove_pod(fake_daemon_t *fx, const char *id, cri_error_t *err);

/* Entries of a dir (0 when it is missing). */
int fake_dir_entries(const char *path);
/* Entries of <base>/<name> (0 when it is missing). */
int fake_dir_entries_at(const char *base, const char *name);

/* Puts an empty file where the dir <base>/<name> was (so making anything
 * under it fails with ENOTDIR), and an empty dir back in its place. */
void fake_replace_with_file(const char *base, const char *name);
void fake_restore_dir(const char *base, const char *name);

/* Fails the test unless err has `status` and, when want is not NULL, its
 * message says want. */
void fake_assert_error(const cri_error_t *err, int status, const char *want);

/* Runs group `group`: the n_fixed tests, then test_func once per case of
 * the array `cases` (n_cases elements of case_size bytes, each starting
 * with its `const char *name`), the case as its initial state. */
struct CMUnitTest;
int fake_run_tests(const char *group, const struct CMUnitTest *fixed, size_t n_fixed,
                   const void *cases, size_t n_cases, size_t case_size,
                   void (*test_func)(void **state));

#endif
