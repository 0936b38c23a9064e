/* The method table of cricketd: every RuntimeService and ImageService
 * method, its request type, its handler and where it runs (RPC_FAST on a
 * poller, RPC_SLOW on the worker pool). The gRPC core (rpc.c) registers
 * each row; adding an RPC is one row here and one handler file. */
#include "rpc.h"

#include <stddef.h>

#include "api/cri/v1/api.pb-c.h"
#include "server/handlers.h"

/* Only feed methods fill the last column (feed); the other rows leave it
 * out, and C zeroes it. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
/* clang-format off */
static const rpc_method_t methods[] = {
    {"/runtime.v1.RuntimeService/Version", "Version", &runtime__v1__version_request__descriptor, handle_version, RPC_FAST, false, NULL},
    {"/runtime.v1.RuntimeService/RunPodSandbox", "RunPodSandbox", &runtime__v1__run_pod_sandbox_request__descriptor, handle_run_pod_sandbox, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/StopPodSandbox", "StopPodSandbox", &runtime__v1__stop_pod_sandbox_request__descriptor, handle_stop_pod_sandbox, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/RemovePodSandbox", "RemovePodSandbox", &runtime__v1__remove_pod_sandbox_request__descriptor, handle_remove_pod_sandbox, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/PodSandboxStatus", "PodSandboxStatus", &runtime__v1__pod_sandbox_status_request__descriptor, handle_pod_sandbox_status, RPC_FAST, false, NULL},
    {"/runtime.v1.RuntimeService/ListPodSandbox", "ListPodSandbox", &runtime__v1__list_pod_sandbox_request__descriptor, handle_list_pod_sandbox, RPC_FAST, false, NULL},
    {"/runtime.v1.RuntimeService/StreamPodSandboxes", "StreamPodSandboxes", &runtime__v1__stream_pod_sandboxes_request__descriptor, NULL, RPC_SLOW, true, handle_stream_pod_sandboxes},
    {"/runtime.v1.RuntimeService/CreateContainer", "CreateContainer", &runtime__v1__create_container_request__descriptor, handle_create_container, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/StartContainer", "StartContainer", &runtime__v1__start_container_request__descriptor, handle_start_container, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/StopContainer", "StopContainer", &runtime__v1__stop_container_request__descriptor, handle_stop_container, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/RemoveContainer", "RemoveContainer", &runtime__v1__remove_container_request__descriptor, handle_remove_container, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/ListContainers", "ListContainers", &runtime__v1__list_containers_request__descriptor, handle_list_containers, RPC_FAST, false, NULL},
    {"/runtime.v1.RuntimeService/StreamContainers", "StreamContainers", &runtime__v1__stream_containers_request__descriptor, NULL, RPC_SLOW, true, handle_stream_containers},
    {"/runtime.v1.RuntimeService/ContainerStatus", "ContainerStatus", &runtime__v1__container_status_request__descriptor, handle_container_status, RPC_FAST, false, NULL},
    {"/runtime.v1.RuntimeService/UpdateContainerResources", "UpdateContainerResources", &runtime__v1__update_container_resources_request__descriptor, handle_update_container_resources, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/ReopenContainerLog", "ReopenContainerLog", &runtime__v1__reopen_container_log_request__descriptor, handle_reopen_container_log, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/ExecSync", "ExecSync", &runtime__v1__exec_sync_request__descriptor, handle_exec_sync, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/Exec", "Exec", &runtime__v1__exec_request__descriptor, handle_exec, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/Attach", "Attach", &runtime__v1__attach_request__descriptor, handle_attach, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/PortForward", "PortForward", &runtime__v1__port_forward_request__descriptor, handle_port_forward, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/ContainerStats", "ContainerStats", &runtime__v1__container_stats_request__descriptor, handle_container_stats, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/ListContainerStats", "ListContainerStats", &runtime__v1__list_container_stats_request__descriptor, handle_list_container_stats, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/StreamContainerStats", "StreamContainerStats", &runtime__v1__stream_container_stats_request__descriptor, NULL, RPC_SLOW, true, handle_stream_container_stats},
    {"/runtime.v1.RuntimeService/PodSandboxStats", "PodSandboxStats", &runtime__v1__pod_sandbox_stats_request__descriptor, handle_pod_sandbox_stats, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/ListPodSandboxStats", "ListPodSandboxStats", &runtime__v1__list_pod_sandbox_stats_request__descriptor, handle_list_pod_sandbox_stats, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/StreamPodSandboxStats", "StreamPodSandboxStats", &runtime__v1__stream_pod_sandbox_stats_request__descriptor, NULL, RPC_SLOW, true, handle_stream_pod_sandbox_stats},
    {"/runtime.v1.RuntimeService/UpdateRuntimeConfig", "UpdateRuntimeConfig", &runtime__v1__update_runtime_config_request__descriptor, handle_update_runtime_config, RPC_FAST, false, NULL},
    {"/runtime.v1.RuntimeService/Status", "Status", &runtime__v1__status_request__descriptor, handle_status, RPC_FAST, false, NULL},
    {"/runtime.v1.RuntimeService/CheckpointContainer", "CheckpointContainer", &runtime__v1__checkpoint_container_request__descriptor, handle_checkpoint_container, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/CheckpointPod", "CheckpointPod", &runtime__v1__checkpoint_pod_request__descriptor, handle_checkpoint_pod, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/RestorePod", "RestorePod", &runtime__v1__restore_pod_request__descriptor, handle_restore_pod, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/GetContainerEvents", "GetContainerEvents", &runtime__v1__get_events_request__descriptor, NULL, RPC_SLOW, true, NULL, handle_get_container_events},
    {"/runtime.v1.RuntimeService/ListMetricDescriptors", "ListMetricDescriptors", &runtime__v1__list_metric_descriptors_request__descriptor, handle_list_metric_descriptors, RPC_FAST, false, NULL},
    {"/runtime.v1.RuntimeService/ListPodSandboxMetrics", "ListPodSandboxMetrics", &runtime__v1__list_pod_sandbox_metrics_request__descriptor, handle_list_pod_sandbox_metrics, RPC_SLOW, false, NULL},
    {"/runtime.v1.RuntimeService/StreamPodSandboxMetrics", "StreamPodSandboxMetrics", &runtime__v1__stream_pod_sandbox_metrics_request__descriptor, NULL, RPC_SLOW, true, handle_stream_pod_sandbox_metrics},
    {"/runtime.v1.RuntimeService/RuntimeConfig", "RuntimeConfig", &runtime__v1__runtime_config_request__descriptor, handle_runtime_config, RPC_FAST, false, NULL},
    {"/runtime.v1.RuntimeService/UpdatePodSandboxResources", "UpdatePodSandboxResources", &runtime__v1__update_pod_sandbox_resources_request__descriptor, handle_update_pod_sandbox_resources, RPC_SLOW, false, NULL},
    {"/runtime.v1.ImageService/ListImages", "ListImages", &runtime__v1__list_images_request__descriptor, handle_list_images, RPC_FAST, false, NULL},
    {"/runtime.v1.ImageService/StreamImages", "StreamImages", &runtime__v1__stream_images_request__descriptor, NULL, RPC_SLOW, true, handle_stream_images},
    {"/runtime.v1.ImageService/ImageStatus", "ImageStatus", &runtime__v1__image_status_request__descriptor, handle_image_status, RPC_FAST, false, NULL},
    {"/runtime.v1.ImageService/PullImage", "PullImage", &runtime__v1__pull_image_request__descriptor, handle_pull_image, RPC_SLOW, false, NULL},
    {"/runtime.v1.ImageService/RemoveImage", "RemoveImage", &runtime__v1__remove_image_request__descriptor, handle_remove_image, RPC_SLOW, false, NULL},
    {"/runtime.v1.ImageService/ImageFsInfo", "ImageFsInfo", &runtime__v1__image_fs_info_request__descriptor, handle_image_fs_info, RPC_SLOW, false, NULL},
};
/* clang-format on */
#pragma GCC diagnostic pop

#define N_METHODS (sizeof(methods) / sizeof(methods[0]))

const rpc_method_t *rpc_methods(size_t *ret_count)
{
    *ret_count = N_METHODS;
    return methods;
}
