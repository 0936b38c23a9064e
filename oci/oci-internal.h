/* Private helpers shared by the files of oci/. Not part of the contract. */
#ifndef CRICKET_OCI_OCI_INTERNAL_H
#define CRICKET_OCI_OCI_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/error.h"
#include "common/json.h"
#include "oci/oci.h"

/* Appends to a json array or sets an object key, taking the new reference. */
void oci_json_push(json_t *array, json_t *value);
void oci_json_set(json_t *object, const char *key, json_t *value);

/* A JSON array of the strings of a NULL-terminated vector (NULL = empty). */
json_t *oci_json_strv(const char *const *v);

/* --- capabilities (caps.c) --- */

/* ["CAP_CHOWN", ...] for every bit of caps, in number order. */
json_t *oci_caps_to_json(uint64_t caps);

/* The "capabilities" object runc wants: bounding, effective and permitted =
 * caps; inheritable and ambient left out (see caps.c). */
json_t *oci_caps_spec(uint64_t caps);

/* --- mounts (mounts.c) --- */

/* The "mounts" array: defaults (proc, dev, devpts, shm, mqueue, sysfs,
 * cgroup) with desc's mounts on top. */
/* The spec's "hooks" when recursive read-only mounts need cricket-rro (the
 * runtime does not know "rro"): a createContainer hook naming the rootfs
 * and every such destination. NULL when none is needed. */
json_t *oci_rro_hooks(const oci_desc_t *desc, const oci_host_t *host);

int oci_mounts_build(const oci_desc_t *desc, const oci_host_t *host, json_t **ret,
                     cri_error_t *err);

/* --- linux section (linux.c) --- */

/* The "linux" object: namespaces, cgroupsPath, resources, devices, sysctl,
 * masked/readonly paths, seccomp. caps is the final capability set (the
 * default seccomp profile depends on it). */
int oci_linux_build(const oci_desc_t *desc, const oci_host_t *host, uint64_t caps, json_t **ret,
                    cri_error_t *err);

/* --- devices (devices.c) --- */

/* Adds to `devices` (linux.devices) the node for one device and to `rules`
 * (linux.resources.devices) its allow rule. */
int oci_device_add(const oci_device_t *dev, json_t *devices, json_t *rules, cri_error_t *err);

/* Adds every char/block device under dev_root (skipping pts, shm, mqueue,
 * fd and console) to `devices`, as privileged containers get. */
int oci_devices_add_host(const char *dev_root, json_t *devices, cri_error_t *err);

/* --- seccomp tables (seccomp_table.c) --- */

enum {
    OCI_ARCH_X86_64 = 1u << 0,
    OCI_ARCH_X86 = 1u << 1,
    OCI_ARCH_X32 = 1u << 2,
    OCI_ARCH_AARCH64 = 1u << 3,
    OCI_ARCH_ARM = 1u << 4,
    OCI_ARCH_PPC64LE = 1u << 5,
    OCI_ARCH_S390X = 1u << 6,
    OCI_ARCH_S390 = 1u << 7,
    OCI_ARCH_RISCV64 = 1u << 8,
};

typedef enum oci_sc_cmp {
    OCI_SC_NONE = 0,
    OCI_SC_EQ,
    OCI_SC_NE,
    OCI_SC_MASKED_EQ, /* (arg & value) == value_two */
} oci_sc_cmp_t;

/* One group of the default profile. The group applies when the native arch
 * is in `arches` (0 = any), the container has cap_if (-1 = no condition) and
 * lacks cap_unless (-1 = no condition). With cmp set, one rule per entry of
 * `values` (0-terminated list, count n_values) is emitted, each comparing
 * argument arg_index. errno_ret != 0 makes it SCMP_ACT_ERRNO, else ALLOW. */
typedef struct oci_sc_group {
    const char *const *names;
    uint32_t arches;
    int cap_if;
    int cap_unless;
    oci_sc_cmp_t cmp;
    unsigned arg_index;
    const uint64_t *values;
    size_t n_values;
    uint64_t value_two;
    int errno_ret;
} oci_sc_group_t;

extern const oci_sc_group_t oci_sc_groups[];
extern const size_t oci_sc_n_groups;

/* --- runtime binary (exec_ops.c) --- */

/* Runs `<runtime> features` and returns its JSON output (new reference). */
int oci_runtime_features(oci_runtime_t *rt, json_t **ret, cri_error_t *err);

/* The message a failed runtime left: the last error-level "msg" of its JSON
 * log (made one line), else the last non-empty stderr line, else NULL.
 * Caller frees. */
char *oci_runtime_error_message(const char *log, size_t log_len, const char *stderr_text);

/* Starts the created container id the way `runc start` does, by reading
 * its exec fifo, without running the runtime (oci/fifo_start.c). 0 when
 * started; 1 when that does not apply (no runc state or fifo, the init
 * gone): the caller runs `<runtime> start`; -1 with err (ETIMEDOUT past
 * rt->timeout_ms, or the errno of a local failure). */
int oci_fifo_start(oci_runtime_t *rt, const char *id, cri_error_t *err);

#endif
