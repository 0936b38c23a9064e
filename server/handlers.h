/* Every RPC handler, one per file under server/ and its subfolders. The
 * method table in rpc.c is the only caller. */
#ifndef CRICKET_SERVER_HANDLERS_H
#define CRICKET_SERVER_HANDLERS_H

#include "server/rpc.h"

#define RPC_HANDLER(name)                                                              \
    int name(rpc_ctx_t *ctx, const ProtobufCMessage *req, ProtobufCMessage **ret_resp, \
             cri_error_t *err)

/* server/version.c */
RPC_HANDLER(handle_version);
/* server/status.c */
RPC_HANDLER(handle_status);
/* server/runtime_config.c */
RPC_HANDLER(handle_runtime_config);
/* server/update_runtime_config.c */
RPC_HANDLER(handle_update_runtime_config);
/* server/image/fs_info.c */
RPC_HANDLER(handle_image_fs_info);
/* server/image/pull.c, list.c, status.c, remove.c */
RPC_HANDLER(handle_pull_image);
RPC_HANDLER(handle_list_images);
RPC_HANDLER(handle_image_status);
RPC_HANDLER(handle_remove_image);
/* server/sandbox/run.c, stop.c, remove.c, status.c, list.c */
RPC_HANDLER(handle_run_pod_sandbox);
RPC_HANDLER(handle_stop_pod_sandbox);
RPC_HANDLER(handle_remove_pod_sandbox);
RPC_HANDLER(handle_pod_sandbox_status);
RPC_HANDLER(handle_list_pod_sandbox);
/* server/container/create.c, start.c, stop.c, remove.c, list.c, status.c */
RPC_HANDLER(handle_create_container);
RPC_HANDLER(handle_start_container);
RPC_HANDLER(handle_stop_container);
RPC_HANDLER(handle_remove_container);
RPC_HANDLER(handle_list_containers);
/* server/container/stats.c, list_stats.c */
RPC_HANDLER(handle_container_stats);
RPC_HANDLER(handle_list_container_stats);
RPC_HANDLER(handle_container_status);
/* server/container/pod_stats.c, list_pod_stats.c, metrics.c */
RPC_HANDLER(handle_pod_sandbox_stats);
RPC_HANDLER(handle_list_pod_sandbox_stats);
RPC_HANDLER(handle_list_metric_descriptors);
RPC_HANDLER(handle_list_pod_sandbox_metrics);
/* server/sandbox/update_resources.c */
RPC_HANDLER(handle_update_pod_sandbox_resources);
/* server/checkpoint.c: UNIMPLEMENTED, saying why */
RPC_HANDLER(handle_checkpoint_container);
RPC_HANDLER(handle_checkpoint_pod);
RPC_HANDLER(handle_restore_pod);
/* server/container/update.c, reopen_log.c, exec_sync.c */
RPC_HANDLER(handle_update_container_resources);
RPC_HANDLER(handle_reopen_container_log);
RPC_HANDLER(handle_exec_sync);
/* server/streaming/exec.c, attach.c, port_forward.c */
RPC_HANDLER(handle_exec);
RPC_HANDLER(handle_attach);
RPC_HANDLER(handle_port_forward);

#define RPC_STREAM_HANDLER(name)                                                        \
    int name(rpc_ctx_t *ctx, const ProtobufCMessage *req, ProtobufCMessage ***ret_msgs, \
             size_t *ret_n, cri_error_t *err)

/* server/image/stream.c */
RPC_STREAM_HANDLER(handle_stream_images);
/* server/sandbox/stream.c */
RPC_STREAM_HANDLER(handle_stream_pod_sandboxes);
/* server/container/stream.c */
RPC_STREAM_HANDLER(handle_stream_containers);
/* server/container/stream_stats.c, list_pod_stats.c, metrics.c */
RPC_STREAM_HANDLER(handle_stream_container_stats);
RPC_STREAM_HANDLER(handle_stream_pod_sandbox_stats);
RPC_STREAM_HANDLER(handle_stream_pod_sandbox_metrics);

#define RPC_FEED_HANDLER(name)                                              \
    int name(rpc_ctx_t *ctx, const ProtobufCMessage *req, rpc_feed_t *feed, \
             rpc_feed_source_t *ret_source, cri_error_t *err)

/* server/container/events.c */
RPC_FEED_HANDLER(handle_get_container_events);

#endif
