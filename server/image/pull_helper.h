/* The cricket-pull helper's own pieces (pull_helper.c, pull_sandbox.c). */
#ifndef CRICKET_SERVER_IMAGE_PULL_HELPER_H
#define CRICKET_SERVER_IMAGE_PULL_HELPER_H

#include "common/error.h"

/* Confines the calling process (all its threads): no_new_privs; every
 * capability but those writing layer trees with any owner, mode, device
 * node and xattr needs (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
 * CAP_FOWNER, CAP_FSETID, CAP_MKNOD, CAP_SETFCAP, and CAP_SYS_ADMIN for the
 * trusted.overlay.opaque xattr of OCI opaque whiteouts) dropped from every
 * set, the bounding set included; and a seccomp filter refusing (EPERM)
 * what a pull never needs: mounts, namespaces, exec, ptrace, modules, BPF,
 * keyrings, id changes, clock and host settings.
 * err->status: errno of prctl/capset/seccomp. */
int pull_sandbox_enter(cri_error_t *err);

#endif
