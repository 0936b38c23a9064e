/* libFuzzer entry for CRI requests: random bytes are unpacked as one
 * request type into an arena, as server/rpc.c does, and handed to that
 * request's validation (the pure function its handler calls first). Built
 * once per type: CMake defines FUZZ_REQ_<TYPE>, and the target is
 * fuzz_req_<type> with corpus/req_<type>/ (seeds from gen_req_seeds.py).
 *
 * Invariants: nothing crashes or reads out of bounds (ASan), and a refusal
 * is EINVAL with a one-line message, while an acceptance leaves err unset. */
#include "test/fuzz/fuzz.h"

#include <errno.h>

#include "api/cri/v1/api.pb-c.h"
#include "server/arena.h"
#include "server/container/container-internal.h"
#include "server/image/image.h"
#include "server/sandbox/sandbox-internal.h"
#include "server/streaming/streaming.h"

#if defined(FUZZ_REQ_RUN_POD_SANDBOX)
#define REQ_DESC runtime__v1__run_pod_sandbox_request__descriptor
static int req_validate(const ProtobufCMessage *m, cri_error_t *err)
{
    return sandbox_validate_config(((const Runtime__V1__RunPodSandboxRequest *)m)->config, err);
}
#elif defined(FUZZ_REQ_CREATE_CONTAINER)
#define REQ_DESC runtime__v1__create_container_request__descriptor
static int req_validate(const ProtobufCMessage *m, cri_error_t *err)
{
    return container_validate_create((const Runtime__V1__CreateContainerRequest *)m, err);
}
#elif defined(FUZZ_REQ_PULL_IMAGE)
#define REQ_DESC runtime__v1__pull_image_request__descriptor
static int req_validate(const ProtobufCMessage *m, cri_error_t *err)
{
    return image_validate_pull((const Runtime__V1__PullImageRequest *)m, err);
}
#elif defined(FUZZ_REQ_EXEC_SYNC)
#define REQ_DESC runtime__v1__exec_sync_request__descriptor
static int req_validate(const ProtobufCMessage *m, cri_error_t *err)
{
    return container_validate_exec_sync((const Runtime__V1__ExecSyncRequest *)m, err);
}
#elif defined(FUZZ_REQ_EXEC)
#define REQ_DESC runtime__v1__exec_request__descriptor
static int req_validate(const ProtobufCMessage *m, cri_error_t *err)
{
    return streaming_validate_exec((const Runtime__V1__ExecRequest *)m, err);
}
#elif defined(FUZZ_REQ_ATTACH)
#define REQ_DESC runtime__v1__attach_request__descriptor
static int req_validate(const ProtobufCMessage *m, cri_error_t *err)
{
    return streaming_validate_attach((const Runtime__V1__AttachRequest *)m, err);
}
#elif defined(FUZZ_REQ_PORT_FORWARD)
#define REQ_DESC runtime__v1__port_forward_request__descriptor
static int req_validate(const ProtobufCMessage *m, cri_error_t *err)
{
    return streaming_validate_port_forward((const Runtime__V1__PortForwardRequest *)m, err);
}
#elif defined(FUZZ_REQ_UPDATE_CONTAINER_RESOURCES)
#define REQ_DESC runtime__v1__update_container_resources_request__descriptor
static int req_validate(const ProtobufCMessage *m, cri_error_t *err)
{
    return container_validate_update((const Runtime__V1__UpdateContainerResourcesRequest *)m, err);
}
#else
#error "define one FUZZ_REQ_<TYPE> (see test/fuzz/CMakeLists.txt)"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_t *arena = arena_new();
    ProtobufCAllocator alloc;
    arena_protobuf_allocator(arena, &alloc);
    ProtobufCMessage *m = protobuf_c_message_unpack(&REQ_DESC, &alloc, size, data);
    if (m) {
        cri_error_t err = CRI_ERROR_INIT;
        if (req_validate(m, &err) < 0) {
            fuzz_check_error(&err, REQ_DESC.name);
            if (err.status != EINVAL)
                fuzz_fail("%s refused with status %d, not EINVAL: %s", REQ_DESC.name, err.status,
                          err.msg);
            if (strchr(err.msg, '\n'))
                fuzz_fail("%s: the message has a newline: %s", REQ_DESC.name, err.msg);
        } else if (err.status || err.msg[0]) {
            fuzz_fail("%s accepted but err was touched: %s", REQ_DESC.name, err.msg);
        }
    }
    arena_free(arena);
    return 0;
}
