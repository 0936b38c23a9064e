/* CRI status messages one module builds and another sends: the event
 * snapshots of GetContainerEvents carry the pod's PodSandboxStatus and
 * its containers' ContainerStatus exactly as PodSandboxStatus and
 * ContainerStatus answer them. Both read memory only (no runc, no disk)
 * and allocate from ctx's arena. */
#ifndef CRICKET_SERVER_STATUS_REPLIES_H
#define CRICKET_SERVER_STATUS_REPLIES_H

#include "api/cri/v1/api.pb-c.h"
#include "server/rpc.h"

struct sandbox;
struct container;

/* server/sandbox/status.c */
Runtime__V1__PodSandboxStatus *sandbox_reply_status(rpc_ctx_t *ctx, struct sandbox *sb);
/* server/container/status.c */
Runtime__V1__ContainerStatus *container_reply_status(rpc_ctx_t *ctx, struct container *c);

#endif
