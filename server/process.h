/* The argv a container's process runs, from the CRI request and the image
 * config. Shared by containers and the pod's pause image (server/sandbox/),
 * so it sits below both. */
#ifndef CRICKET_SERVER_PROCESS_H
#define CRICKET_SERVER_PROCESS_H

#include <stddef.h>

#include "common/error.h"

/* The container's argv, as kubelet expects (Docker's rules):
 * - command set: command + args; the image's Entrypoint and Cmd are ignored;
 * - else the image Entrypoint (unless it is [""]) followed by args, or by
 *   the image Cmd when there are no args.
 * An empty result is EINVAL ("no command specified"). *ret_argv is a
 * malloc'd NULL-terminated vector (strv_free). */
int process_argv(char *const *command, size_t n_command, char *const *args, size_t n_args,
                 char *const *image_entrypoint, char *const *image_cmd, char ***ret_argv,
                 cri_error_t *err);

#endif
