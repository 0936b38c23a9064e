/* cri_bench: Version round trips per second against a CRI socket.
 *
 *   cri_bench SOCKET SECONDS INFLIGHT
 *
 * Keeps INFLIGHT calls outstanding on one channel for SECONDS and prints
 * "calls=N seconds=S rps=R p50_us=.. p99_us=..". Uses gRPC's C core so the
 * client costs little next to the server it measures. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>

#include "api/cri/v1/api.pb-c.h"

#define MAX_INFLIGHT 256

struct slot {
    grpc_call *call;
    grpc_byte_buffer *req, *resp;
    grpc_metadata_array md_init, md_trail;
    grpc_status_code status;
    grpc_slice details;
    int64_t started;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static grpc_slice request_bytes;

static void start(grpc_channel *ch, grpc_completion_queue *cq, grpc_slice method, struct slot *s)
{
    memset(s, 0, sizeof(*s));
    s->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    s->req = grpc_raw_byte_buffer_create(&request_bytes, 1);
    grpc_metadata_array_init(&s->md_init);
    grpc_metadata_array_init(&s->md_trail);
    s->started = now_ns();
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->req;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->md_init;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &s->resp;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &s->md_trail;
    ops[5].data.recv_status_on_client.status = &s->status;
    ops[5].data.recv_status_on_client.status_details = &s->details;
    if (grpc_call_start_batch(s->call, ops, 6, s, NULL) != GRPC_CALL_OK) {
        fprintf(stderr, "cri_bench: start batch failed\n");
        exit(1);
    }
}

static void finish(struct slot *s)
{
    grpc_byte_buffer_destroy(s->req);
    if (s->resp)
        grpc_byte_buffer_destroy(s->resp);
    grpc_metadata_array_destroy(&s->md_init);
    grpc_metadata_array_destroy(&s->md_trail);
    grpc_slice_unref(s->details);
    grpc_call_unref(s->call);
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: cri_bench SOCKET SECONDS INFLIGHT\n");
        return 2;
    }
    double seconds = strtod(argv[2], NULL);
    int inflight = (int)strtol(argv[3], NULL, 10);
    if (inflight < 1 || inflight > MAX_INFLIGHT || seconds <= 0) {
        fprintf(stderr, "cri_bench: bad arguments\n");
        return 2;
    }

    Runtime__V1__VersionRequest req = RUNTIME__V1__VERSION_REQUEST__INIT;
    req.version = "0.1.0";
    request_bytes = grpc_slice_malloc(runtime__v1__version_request__get_packed_size(&req));
    runtime__v1__version_request__pack(&req, GRPC_SLICE_START_PTR(request_bytes));

    grpc_init();
    char target[4096];
    snprintf(target, sizeof(target), "unix:%s", argv[1]);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(target, creds, NULL);
    grpc_channel_credentials_release(creds);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    grpc_slice method = grpc_slice_from_static_string("/runtime.v1.RuntimeService/Version");

    size_t cap = 1 << 20, n = 0;
    int64_t *lat = malloc(cap * sizeof(*lat));
    struct slot *slots = calloc((size_t)inflight, sizeof(*slots));
    int64_t t0 = now_ns(), end = t0 + (int64_t)(seconds * 1e9);
    int outstanding = 0, failed = 0;
    for (int i = 0; i < inflight; i++, outstanding++)
        start(ch, cq, method, &slots[i]);
    while (outstanding > 0) {
        grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        struct slot *s = ev.tag;
        int64_t t = now_ns();
        if (!ev.success || s->status != GRPC_STATUS_OK)
            failed++;
        else if (n < cap)
            lat[n++] = t - s->started;
        finish(s);
        outstanding--;
        if (t < end) {
            start(ch, cq, method, s);
            outstanding++;
        }
    }
    double took = (double)(now_ns() - t0) / 1e9;
    qsort(lat, n, sizeof(*lat), cmp64);
    printf("calls=%zu failed=%d seconds=%.2f rps=%.0f p50_us=%.0f p99_us=%.0f\n", n, failed, took,
           (double)n / took, n ? (double)lat[n / 2] / 1e3 : 0,
           n ? (double)lat[n * 99 / 100] / 1e3 : 0);

    free(lat);
    free(slots);
    grpc_channel_destroy(ch);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    grpc_slice_unref(request_bytes);
    grpc_shutdown();
    return failed ? 1 : 0;
}
