/* CRI seccomp settings -> OCI: the one mapping used by the pod's infra
 * container (server/sandbox/infra.c, checked early by validate.c) and by
 * containers (server/container/spec.c). */
#ifndef CRICKET_SERVER_SECCOMP_H
#define CRICKET_SERVER_SECCOMP_H

#include <stdbool.h>

#include "api/cri/v1/api.pb-c.h"
#include "common/error.h"
#include "oci/oci.h"

/* The seccomp of a security context, in order:
 * - privileged: unconfined (as containerd and CRI-O do);
 * - the SecurityProfile message when set: RuntimeDefault, Unconfined, or
 *   Localhost with an absolute localhost_ref;
 * - else the deprecated seccomp_profile_path: "unconfined",
 *   "runtime/default" or "docker/default", "localhost/<absolute path>";
 * - else (nothing set) `unset`: api.proto reads "" as unconfined for
 *   containers; the infra of a pod gets RuntimeDefault.
 * *ret_kind and *ret_path (a pointer into profile or deprecated_path, NULL
 * unless Localhost) are written only on success. EINVAL with a message that
 * starts with field (e.g. "security_context.seccomp.profile_type: invalid
 * 7") for an unknown profile type, a relative Localhost path or an unknown
 * deprecated string. */
int seccomp_from_cri(const Runtime__V1__SecurityProfile *profile, const char *deprecated_path,
                     bool privileged, oci_seccomp_kind_t unset, const char *field,
                     oci_seccomp_kind_t *ret_kind, const char **ret_path, cri_error_t *err);

#endif
