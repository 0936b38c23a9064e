/* The gRPC core of cricketd: the completion queue, its poller threads, the
 * request slots of every method in the table (rpc_methods.c), and the call
 * lifecycle from dispatch to the final batch. This is the only file that
 * includes <grpc/grpc.h>; gRPC's C core makes no compatibility promise, so
 * everything it touches stays here.
 *
 * Threads: a few pollers wait on one completion queue and only dispatch.
 * FAST methods answer inline on the poller; SLOW ones go to the worker pool
 * and finish their own call. A slow call therefore never stalls a fast one.
 *
 * Calls end in one of three ways: a unary reply (call_finish), a finite
 * stream whose replies are all packed up front (stream_next), or a feed, a
 * long-lived stream (GetContainerEvents) that holds no worker: its source
 * wakes it, the kicker thread starts the send (so the thread that woke it,
 * an RPC publishing an event, pays nothing for it), and the next one starts
 * when the poller sees the previous one complete. */
#include "rpc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "server/arena.h"
#include "server/daemon.h"
#include "server/metrics.h"
#include "server/pool.h"
#include "server/rpc-ctx.h"
#include "server/rpc-internal.h"
#include "server/testhooks.h"

#define RPC_MAX_MESSAGE (16 * 1024 * 1024) /* kubelet's limit, both ways */
#define RPC_POLLERS 2
#define RPC_SLOTS_PER_METHOD 2 /* request_call slots kept posted per method */
#define RPC_POOL_MAX 64
/* slow calls that may wait for one of the RPC_POOL_MAX workers; past it
 * RESOURCE_EXHAUSTED (kubelet retries) instead of an unbounded queue */
#define RPC_POOL_QUEUE_MAX 256
#define RPC_POOL_IDLE_MS 30000

/* Every completion-queue tag starts with this: the poller calls done(). */
typedef struct tag {
    void (*done)(struct tag *tag, bool ok);
} tag_t;

struct rpc_server {
    daemon_t *daemon;
    grpc_server *server;
    grpc_completion_queue *cq;
    const rpc_method_t *methods; /* rpc_methods() */
    size_t n_methods;
    void **registered; /* grpc's handle of each method */
    pthread_t pollers[RPC_POLLERS];
    size_t n_pollers;
    pool_t *pool;
    size_t pool_queue_max;
    char *socket_path;

    pthread_mutex_t lock;
    pthread_cond_t changed; /* inflight dropped, or shutdown notified */
    size_t inflight;        /* calls accepted and not yet finished */
    bool shutdown_notified;
    struct rpc_feed *feeds; /* live feeds, ended with UNAVAILABLE at stop */
    atomic_bool stopping;

    /* The feed kicker: a woken feed is queued here and its send starts on
     * this thread, never on the thread that woke it (an RPC publishing an
     * event must not pay for the sends). */
    pthread_t kicker;
    bool kicker_started;
    pthread_mutex_t kick_lock;
    pthread_cond_t kick_cond;
    struct rpc_feed *kick_head, *kick_tail; /* behind kick_lock */
    bool kick_quit;
    tag_t shutdown_tag;
};

/* The client's deadline as struct rpc_ctx keeps it. */
static int64_t deadline_ns(gpr_timespec deadline)
{
    gpr_timespec d = gpr_convert_clock_type(deadline, GPR_CLOCK_MONOTONIC);
    if (gpr_time_cmp(d, gpr_inf_future(GPR_CLOCK_MONOTONIC)) == 0 || d.tv_sec > INT64_MAX / 2000)
        return -1;
    int64_t left_ms = gpr_time_to_millis(gpr_time_sub(d, gpr_now(GPR_CLOCK_MONOTONIC)));
    return rpc_mono_ns() + (left_ms < 0 ? 0 : left_ms) * 1000000;
}

/* A posted slot waiting for a call to a registered method. */
struct slot {
    tag_t tag;
    rpc_server_t *srv;
    size_t method;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload;
};

/* A posted slot for calls to methods nobody registered. */
struct generic_slot {
    tag_t tag;
    rpc_server_t *srv;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
};

/* One call being served, from dispatch to the end of its final batch. */
struct call {
    tag_t tag;
    rpc_server_t *srv;
    grpc_call *call;
    const rpc_method_t *method; /* NULL for unknown methods */
    grpc_byte_buffer *payload;
    grpc_byte_buffer *response;
    grpc_byte_buffer **stream; /* server-streaming replies, sent one batch each */
    size_t n_stream, next_stream;
    bool sent_initial;
    grpc_slice details;
    int cancelled;
    int64_t start_ns;
    gpr_timespec deadline;
};

static void post_slot(rpc_server_t *srv, size_t method);
static void post_generic_slot(rpc_server_t *srv);

/* ---- finishing a call ---- */

static void call_free(struct call *c)
{
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->response)
        grpc_byte_buffer_destroy(c->response);
    for (size_t i = 0; i < c->n_stream; i++)
        grpc_byte_buffer_destroy(c->stream[i]);
    free(c->stream);
    grpc_slice_unref(c->details);
    if (c->call)
        grpc_call_unref(c->call);
    rpc_server_t *srv = c->srv;
    free(c);

    pthread_mutex_lock(&srv->lock);
    srv->inflight--;
    pthread_cond_broadcast(&srv->changed);
    pthread_mutex_unlock(&srv->lock);
}

static void call_done(tag_t *tag, bool ok)
{
    call_free((struct call *)tag);
}

/* Counts a finished call for the metrics endpoint (unknown methods are
 * not counted). */
static void call_observe(struct call *c, int code)
{
    if (c->method)
        metrics_rpc_observe(daemon_metrics(c->srv->daemon), (size_t)(c->method - c->srv->methods),
                            code, now_unix_ns() - c->start_ns);
}

/* Sends the reply (response may be NULL when code != OK) and ends the call. */
static void call_finish(struct call *c, int code, const char *message)
{
    call_observe(c, code);
    grpc_op ops[4];
    memset(ops, 0, sizeof(ops));
    size_t n = 0;

    c->details = grpc_slice_from_copied_string(message ? message : "");
    if (!c->sent_initial) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[n].data.send_initial_metadata.count = 0;
        n++;
    }
    if (code == RPC_OK && c->response) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = c->response;
        n++;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.trailing_metadata_count = 0;
    ops[n].data.send_status_from_server.status = (grpc_status_code)code;
    ops[n].data.send_status_from_server.status_details = &c->details;
    n++;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n].data.recv_close_on_server.cancelled = &c->cancelled;
    n++;

    c->tag.done = call_done;
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, &c->tag, NULL);
    if (e != GRPC_CALL_OK) {
        log_error("start reply batch: grpc error %d, dropping call", (int)e);
        call_free(c);
    }
}

/* ---- serving a registered method ---- */

/* Unpacks the request into the arena; NULL when the bytes do not parse.
 * The received bytes are freed here, not at the end of the call, so a big
 * request's buffers are free before arena_free() trims the heap. */
static ProtobufCMessage *unpack_request(struct call *c, arena_t *arena)
{
    grpc_byte_buffer_reader reader;
    if (!c->payload || !grpc_byte_buffer_reader_init(&reader, c->payload))
        return NULL;
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    grpc_byte_buffer_destroy(c->payload);
    c->payload = NULL;

    ProtobufCAllocator alloc;
    arena_protobuf_allocator(arena, &alloc);
    ProtobufCMessage *msg = protobuf_c_message_unpack(
        c->method->request, &alloc, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    return msg;
}

static grpc_byte_buffer *pack_response(const ProtobufCMessage *resp)
{
    size_t len = protobuf_c_message_get_packed_size(resp);
    grpc_slice slice = grpc_slice_malloc(len);
    protobuf_c_message_pack(resp, GRPC_SLICE_START_PTR(slice));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return bb;
}

static void stream_sent(tag_t *tag, bool ok);

/* Sends the next reply of a server-streaming call (one message in flight
 * at a time, as gRPC requires); the status follows the last one. */
static void stream_next(struct call *c)
{
    if (c->next_stream == c->n_stream) {
        call_finish(c, RPC_OK, NULL);
        return;
    }
    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    size_t n = 0;
    if (!c->sent_initial) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->sent_initial = true;
    }
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = c->stream[c->next_stream++];
    c->tag.done = stream_sent;
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, &c->tag, NULL);
    if (e != GRPC_CALL_OK) {
        log_error("start stream batch: grpc error %d, dropping call", (int)e);
        call_free(c);
    }
}

static void stream_sent(tag_t *tag, bool ok)
{
    struct call *c = (struct call *)tag;
    if (!ok) {
        call_finish(c, RPC_CANCELLED, "client went away");
        return;
    }
    stream_next(c);
}

/* Packs a streaming handler's replies; the first send starts at once. */
static void run_stream(struct call *c, rpc_ctx_t *ctx, ProtobufCMessage *req, cri_error_t *err)
{
    ProtobufCMessage **msgs = NULL;
    size_t n = 0;
    if (c->method->stream(ctx, req, &msgs, &n, err) < 0)
        return;
    c->stream = xcalloc(n + 1, sizeof(grpc_byte_buffer *));
    for (size_t i = 0; i < n; i++)
        c->stream[i] = pack_response(msgs[i]);
    c->n_stream = n;
}

/* ---- feeds: long-lived server streams ---- */

/* A feed owns its call from the handler's return to the end: two tags are
 * outstanding at most, the send in flight and RECV_CLOSE_ON_SERVER, and
 * the feed is freed when both have completed and the status went out.
 * Lock order: srv->lock, then a feed's lock, then whatever the source's
 * next() takes, then srv->kick_lock; the source's release() runs with no
 * feed lock held. A feed queued to kick counts as pending, so the kicker
 * never sees it freed. */
struct rpc_feed {
    tag_t send_tag;  /* initial metadata, a message or the status */
    tag_t close_tag; /* RECV_CLOSE_ON_SERVER */
    struct call *c;
    rpc_feed_source_t src;
    struct rpc_feed *next;      /* srv->feeds, behind srv->lock */
    struct rpc_feed *kick_next; /* srv's kick queue, behind srv->kick_lock */

    pthread_mutex_t lock; /* behind it: the rest */
    int pending;          /* tags outstanding, +1 while starting, +1 while queued to kick */
    bool kick_queued;     /* in srv's kick queue */
    bool dead;            /* nothing pending any more: being freed, wakes ignored */
    bool busy;            /* a send batch is in flight */
    bool ending;          /* the status batch went out */
    bool closed;          /* the client went away or the call is over */
    bool stop;            /* the server is stopping */
    grpc_byte_buffer *msg;
    uint64_t sent;
};

static void feed_sent(tag_t *tag, bool ok);

/* Starts one batch on the feed's send tag; false when gRPC refuses it. */
static bool feed_batch(struct rpc_feed *f, grpc_op *ops, size_t n)
{
    f->busy = true;
    f->pending++;
    grpc_call_error e = grpc_call_start_batch(f->c->call, ops, n, &f->send_tag, NULL);
    if (e == GRPC_CALL_OK)
        return true;
    log_error("start feed batch: grpc error %d, ending feed", (int)e);
    f->busy = false;
    f->pending--;
    f->ending = true;
    return false;
}

/* Sends the status that ends the feed. Lock held. */
static void feed_end(struct rpc_feed *f, int code, const char *message)
{
    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    size_t n = 0;
    struct call *c = f->c;
    if (!c->sent_initial) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->sent_initial = true;
    }
    grpc_slice_unref(c->details);
    c->details = grpc_slice_from_copied_string(message ? message : "");
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)code;
    ops[n].data.send_status_from_server.status_details = &c->details;
    n++;
    char kv[128];
    (void)snprintf(kv, sizeof(kv), "rpc=%s code=%d sent=%llu", c->method->name, code,
                   (unsigned long long)f->sent);
    call_observe(c, code);
    log_write(code == RPC_RESOURCE_EXHAUSTED ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, kv,
              "feed ended%s%s", message ? ": " : "", message ? message : "");
    if (feed_batch(f, ops, n))
        f->ending = true;
}

/* Starts the next send when none is in flight: the initial metadata first
 * (so a client knows it is subscribed), then what the source has, or the
 * status once the source, the client or the server ends the feed. */
static void feed_kick(struct rpc_feed *f)
{
    if (f->busy || f->ending)
        return;
    if (f->closed) {
        feed_end(f, RPC_CANCELLED, "client went away");
        return;
    }
    if (f->stop) {
        feed_end(f, RPC_UNAVAILABLE, "cricketd is shutting down; subscribe again");
        return;
    }
    grpc_op op;
    memset(&op, 0, sizeof(op));
    if (!f->c->sent_initial) {
        op.op = GRPC_OP_SEND_INITIAL_METADATA;
        f->c->sent_initial = true;
        feed_batch(f, &op, 1);
        return;
    }
    void *buf = NULL;
    size_t len = 0;
    cri_error_t err = CRI_ERROR_INIT;
    int r = f->src.next(f->src.data, &buf, &len, &err);
    if (r < 0) {
        feed_end(f, rpc_code_from_errno(err.status), err.msg);
        return;
    }
    if (r == 0)
        return;
    grpc_slice slice = grpc_slice_new(buf, len, free);
    f->msg = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = f->msg;
    if (feed_batch(f, &op, 1))
        f->sent++;
}

/* Queues f for the kicker thread (once: a queued feed is kicked once, and
 * each completed send kicks it again, so every message waiting goes). */
void rpc_feed_wake(rpc_feed_t *f)
{
    pthread_mutex_lock(&f->lock);
    bool queue = !f->dead && !f->kick_queued;
    if (queue) {
        f->kick_queued = true;
        f->pending++; /* the queue holds f until the kicker is done with it */
    }
    pthread_mutex_unlock(&f->lock);
    if (!queue)
        return;
    rpc_server_t *srv = f->c->srv;
    pthread_mutex_lock(&srv->kick_lock);
    f->kick_next = NULL;
    if (srv->kick_tail)
        srv->kick_tail->kick_next = f;
    else
        srv->kick_head = f;
    srv->kick_tail = f;
    pthread_cond_signal(&srv->kick_cond);
    pthread_mutex_unlock(&srv->kick_lock);
}

static void feed_free(struct rpc_feed *f)
{
    f->src.release(f->src.data); /* no wake after this */
    rpc_server_t *srv = f->c->srv;
    pthread_mutex_lock(&srv->lock);
    for (struct rpc_feed **p = &srv->feeds; *p; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            break;
        }
    }
    pthread_mutex_unlock(&srv->lock);
    if (f->msg)
        grpc_byte_buffer_destroy(f->msg);
    pthread_mutex_destroy(&f->lock);
    struct call *c = f->c;
    free(f);
    call_free(c);
}

/* Drops one outstanding tag and kicks; frees the feed after the last. */
static void feed_settle(struct rpc_feed *f)
{
    f->pending--;
    feed_kick(f);
    bool done = f->pending == 0;
    if (done)
        f->dead = true; /* no wake may queue it again */
    pthread_mutex_unlock(&f->lock);
    if (done)
        feed_free(f);
}

static void feed_sent(tag_t *tag, bool ok)
{
    struct rpc_feed *f = (struct rpc_feed *)tag;
    pthread_mutex_lock(&f->lock);
    f->busy = false;
    if (f->msg) {
        grpc_byte_buffer_destroy(f->msg);
        f->msg = NULL;
    }
    if (!ok)
        f->closed = true; /* the call is dead: only the status is left */
    feed_settle(f);
}

static void feed_closed(tag_t *tag, bool ok)
{
    struct rpc_feed *f = (struct rpc_feed *)((char *)tag - offsetof(struct rpc_feed, close_tag));
    pthread_mutex_lock(&f->lock);
    f->closed = true;
    feed_settle(f);
}

static void *kicker_main(void *data)
{
    rpc_server_t *srv = data;
    pthread_mutex_lock(&srv->kick_lock);
    for (;;) {
        while (!srv->kick_head && !srv->kick_quit)
            pthread_cond_wait(&srv->kick_cond, &srv->kick_lock);
        struct rpc_feed *f = srv->kick_head;
        if (!f)
            break; /* quitting, nothing queued */
        srv->kick_head = f->kick_next;
        if (!srv->kick_head)
            srv->kick_tail = NULL;
        pthread_mutex_unlock(&srv->kick_lock);
        pthread_mutex_lock(&f->lock);
        f->kick_queued = false;
        feed_settle(f); /* drops the queue's hold, kicks, may free f */
        pthread_mutex_lock(&srv->kick_lock);
    }
    pthread_mutex_unlock(&srv->kick_lock);
    return NULL;
}

/* Runs the feed handler; on success the feed owns c and the call goes on
 * without this thread. On failure c is untouched (the caller finishes it). */
static int feed_start(struct call *c, rpc_ctx_t *ctx, ProtobufCMessage *req, cri_error_t *err)
{
    struct rpc_feed *f = xcalloc(1, sizeof(*f));
    f->c = c;
    f->send_tag.done = feed_sent;
    f->close_tag.done = feed_closed;
    f->pending = 1; /* held until the close op is posted */
    pthread_mutex_init(&f->lock, NULL);
    if (c->method->feed(ctx, req, f, &f->src, err) < 0) {
        pthread_mutex_destroy(&f->lock);
        free(f);
        return -1;
    }
    rpc_server_t *srv = c->srv;
    pthread_mutex_lock(&srv->lock);
    f->next = srv->feeds;
    srv->feeds = f;
    pthread_mutex_lock(&f->lock);
    f->stop = atomic_load(&srv->stopping);
    pthread_mutex_unlock(&srv->lock);

    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->cancelled;
    grpc_call_error e = grpc_call_start_batch(c->call, &op, 1, &f->close_tag, NULL);
    if (e == GRPC_CALL_OK)
        f->pending++;
    else
        f->closed = true;
    feed_settle(f); /* drops the start guard, sends the initial metadata */
    return 0;
}

/* Server stop: every live feed ends with UNAVAILABLE (the client
 * subscribes again to the next daemon). */
static void feeds_stop(rpc_server_t *srv)
{
    pthread_mutex_lock(&srv->lock);
    for (struct rpc_feed *f = srv->feeds; f; f = f->next) {
        pthread_mutex_lock(&f->lock);
        f->stop = true;
        feed_kick(f);
        pthread_mutex_unlock(&f->lock);
    }
    pthread_mutex_unlock(&srv->lock);
}

static bool method_logs_at_debug(const rpc_method_t *m)
{
    return m->klass == RPC_FAST || strcmp(m->name, "ImageFsInfo") == 0;
}

static void call_run(void *data)
{
    struct call *c = data;
    const rpc_method_t *m = c->method;
    cri_error_t err = CRI_ERROR_INIT;
    ProtobufCMessage *resp = NULL;
    int code = RPC_OK;
    rpc_ctx_t ctx = {.daemon = c->srv->daemon,
                     .method = m,
                     .arena = arena_new(),
                     .deadline_ns = deadline_ns(c->deadline)};

    log_write(method_logs_at_debug(m) ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, NULL, "rpc %s", m->name);
    testhook_slow_wait(m->name, &c->srv->stopping);

    ProtobufCMessage *req = unpack_request(c, ctx.arena);
    if (!req) {
        cri_error_set(&err, EINVAL, "malformed %s request", m->name);
    } else if (m->feed) {
        if (feed_start(c, &ctx, req, &err) == 0) {
            arena_free(ctx.arena); /* the feed owns the call from here */
            return;
        }
    } else if (m->stream) {
        run_stream(c, &ctx, req, &err);
    } else if (m->server_streaming || !m->handler) {
        cri_error_set(&err, ENOSYS, "method %s is not implemented", m->path);
    } else if (m->handler(&ctx, req, &resp, &err) == 0 && !resp) {
        cri_error_set(&err, EIO, "%s returned no response", m->name);
    }
    if (err.status) {
        code = rpc_code_from_errno(err.status);
        char kv[256];
        (void)snprintf(kv, sizeof(kv), "rpc=%s code=%d", m->name, code);
        log_level_t lvl =
            code == RPC_UNIMPLEMENTED || code == RPC_NOT_FOUND ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR;
        log_write(lvl, kv, "%s", err.msg);
    } else if (!c->stream) {
        c->response = pack_response(resp);
        if (log_get_level() >= LOG_LEVEL_TRACE) {
            char kv[128];
            (void)snprintf(kv, sizeof(kv), "rpc=%s took_us=%lld", m->name,
                           (long long)((now_unix_ns() - c->start_ns) / 1000));
            log_write(LOG_LEVEL_TRACE, kv, "rpc done");
        }
    }
    arena_free(ctx.arena);
    if (c->stream && !err.status)
        stream_next(c);
    else
        call_finish(c, code, err.status ? err.msg : NULL);
}

static struct call *call_new(rpc_server_t *srv, grpc_call *gc, const rpc_method_t *m)
{
    struct call *c = xcalloc(1, sizeof(*c));
    c->srv = srv;
    c->call = gc;
    c->method = m;
    c->details = grpc_empty_slice();
    c->start_ns = now_unix_ns();
    c->deadline = gpr_inf_future(GPR_CLOCK_REALTIME);
    pthread_mutex_lock(&srv->lock);
    srv->inflight++;
    pthread_mutex_unlock(&srv->lock);
    return c;
}

static void slot_done(tag_t *tag, bool ok)
{
    struct slot *s = (struct slot *)tag;
    rpc_server_t *srv = s->srv;

    if (ok && !atomic_load(&srv->stopping))
        post_slot(srv, s->method);
    if (!ok || !s->call) {
        /* the server is shutting down: the slot is returned unused */
        if (s->payload)
            grpc_byte_buffer_destroy(s->payload);
        grpc_metadata_array_destroy(&s->md);
        free(s);
        return;
    }

    const rpc_method_t *m = &srv->methods[s->method];
    struct call *c = call_new(srv, s->call, m);
    c->payload = s->payload;
    c->deadline = s->deadline;
    grpc_metadata_array_destroy(&s->md);
    free(s);

    if (m->klass == RPC_FAST && !testhook_slow_method(m->name)) {
        call_run(c);
    } else if (pool_submit(srv->pool, call_run, c) < 0) {
        /* every worker busy and the queue full: refuse rather than grow */
        char msg[160];
        (void)snprintf(msg, sizeof(msg),
                       "%s refused: %zu calls already wait for a worker (limit %zu)", m->name,
                       pool_queued(srv->pool), srv->pool_queue_max);
        char kv[96];
        (void)snprintf(kv, sizeof(kv), "rpc=%s code=%d", m->name, RPC_RESOURCE_EXHAUSTED);
        log_write(LOG_LEVEL_WARN, kv, "%s", msg);
        call_finish(c, RPC_RESOURCE_EXHAUSTED, msg);
    }
}

static void post_slot(rpc_server_t *srv, size_t method)
{
    struct slot *s = xcalloc(1, sizeof(*s));
    s->tag.done = slot_done;
    s->srv = srv;
    s->method = method;
    grpc_metadata_array_init(&s->md);
    grpc_call_error e = grpc_server_request_registered_call(srv->server, srv->registered[method],
                                                            &s->call, &s->deadline, &s->md,
                                                            &s->payload, srv->cq, srv->cq, &s->tag);
    if (e != GRPC_CALL_OK) {
        log_warn("post request slot for %s: grpc error %d, ignoring", srv->methods[method].name,
                 (int)e);
        grpc_metadata_array_destroy(&s->md);
        free(s);
    }
}

/* ---- unknown methods: UNIMPLEMENTED at once ---- */

static void generic_done(tag_t *tag, bool ok)
{
    struct generic_slot *s = (struct generic_slot *)tag;
    rpc_server_t *srv = s->srv;

    if (ok && !atomic_load(&srv->stopping))
        post_generic_slot(srv);
    if (ok && s->call) {
        char *method = grpc_slice_to_c_string(s->details.method);
        char msg[512];
        (void)snprintf(msg, sizeof(msg), "unknown method %s", method);
        gpr_free(method);
        log_write(LOG_LEVEL_INFO, "code=12", "%s", msg);
        struct call *c = call_new(srv, s->call, NULL);
        call_finish(c, RPC_UNIMPLEMENTED, msg);
    }
    grpc_call_details_destroy(&s->details);
    grpc_metadata_array_destroy(&s->md);
    free(s);
}

static void post_generic_slot(rpc_server_t *srv)
{
    struct generic_slot *s = xcalloc(1, sizeof(*s));
    s->tag.done = generic_done;
    s->srv = srv;
    grpc_call_details_init(&s->details);
    grpc_metadata_array_init(&s->md);
    grpc_call_error e = grpc_server_request_call(srv->server, &s->call, &s->details, &s->md,
                                                 srv->cq, srv->cq, &s->tag);
    if (e != GRPC_CALL_OK) {
        log_warn("post generic request slot: grpc error %d, ignoring", (int)e);
        grpc_call_details_destroy(&s->details);
        grpc_metadata_array_destroy(&s->md);
        free(s);
    }
}

/* ---- server life ---- */

static void shutdown_done(tag_t *tag, bool ok)
{
    rpc_server_t *srv = (rpc_server_t *)((char *)tag - offsetof(rpc_server_t, shutdown_tag));
    pthread_mutex_lock(&srv->lock);
    srv->shutdown_notified = true;
    pthread_cond_broadcast(&srv->changed);
    pthread_mutex_unlock(&srv->lock);
}

static void *poller_main(void *data)
{
    rpc_server_t *srv = data;
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE && ev.tag)
            ((tag_t *)ev.tag)->done(ev.tag, ev.success != 0);
    }
    return NULL;
}

/* "unix:///run/x.sock", "unix:/run/x.sock" or "/run/x.sock" -> "/run/x.sock" */
static const char *listen_path(const char *listen)
{
    if (str_has_prefix(listen, "unix://"))
        return listen + strlen("unix://");
    if (str_has_prefix(listen, "unix:"))
        return listen + strlen("unix:");
    return listen;
}

/* Ends the kicker thread once its queue is empty. Idempotent. */
static void kicker_stop(rpc_server_t *srv)
{
    if (!srv->kicker_started)
        return;
    pthread_mutex_lock(&srv->kick_lock);
    srv->kick_quit = true;
    pthread_cond_signal(&srv->kick_cond);
    pthread_mutex_unlock(&srv->kick_lock);
    pthread_join(srv->kicker, NULL);
    srv->kicker_started = false;
}

static void server_free(rpc_server_t *srv)
{
    kicker_stop(srv);
    if (srv->server)
        grpc_server_destroy(srv->server);
    if (srv->cq)
        grpc_completion_queue_destroy(srv->cq);
    pthread_mutex_destroy(&srv->lock);
    pthread_cond_destroy(&srv->changed);
    pthread_mutex_destroy(&srv->kick_lock);
    pthread_cond_destroy(&srv->kick_cond);
    free(srv->registered);
    free(srv->socket_path);
    free(srv);
    grpc_shutdown();
}

int rpc_server_start(daemon_t *daemon, const char *listen, rpc_server_t **ret, cri_error_t *err)
{
    const char *path = listen_path(listen);
    if (path[0] != '/')
        return cri_error_set(err, EINVAL, "listen address `%s` is not an absolute unix path",
                             listen);

    grpc_init();
    rpc_server_t *srv = xcalloc(1, sizeof(*srv));
    srv->daemon = daemon;
    srv->socket_path = xstrdup(path);
    srv->methods = rpc_methods(&srv->n_methods);
    srv->registered = xcalloc(srv->n_methods, sizeof(*srv->registered));
    if (daemon_metrics(daemon)) {
        const char **names = xcalloc(srv->n_methods, sizeof(*names));
        for (size_t i = 0; i < srv->n_methods; i++)
            names[i] = srv->methods[i].name;
        metrics_rpc_methods(daemon_metrics(daemon), names, srv->n_methods);
        free(names);
    }
    srv->shutdown_tag.done = shutdown_done;
    pthread_mutex_init(&srv->lock, NULL);
    pthread_cond_init(&srv->changed, NULL);
    pthread_mutex_init(&srv->kick_lock, NULL);
    pthread_cond_init(&srv->kick_cond, NULL);
    srv->kicker_started = pthread_create(&srv->kicker, NULL, kicker_main, srv) == 0;
    if (!srv->kicker_started) {
        server_free(srv);
        return cri_error_set(err, EAGAIN, "start the feed thread");
    }

    grpc_arg args[2];
    memset(args, 0, sizeof(args));
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = RPC_MAX_MESSAGE;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    args[1].value.integer = RPC_MAX_MESSAGE;
    grpc_channel_args chargs = {.num_args = 2, .args = args};

    srv->cq = grpc_completion_queue_create_for_next(NULL);
    srv->server = grpc_server_create(&chargs, NULL);
    grpc_server_register_completion_queue(srv->server, srv->cq, NULL);
    for (size_t i = 0; i < srv->n_methods; i++) {
        srv->registered[i] = grpc_server_register_method(
            srv->server, srv->methods[i].path, NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        if (!srv->registered[i]) {
            cri_error_set(err, EIO, "register method `%s`", srv->methods[i].path);
            server_free(srv);
            return -1;
        }
    }

    /* A stale socket from a dead daemon is ours to replace: the caller holds
     * the lock file, so nobody else is serving it. The socket takes the
     * umask, so narrow it to get 0660. */
    if (unlink(path) < 0 && errno != ENOENT) {
        int e = errno;
        server_free(srv);
        return cri_error_make(err, e, "remove stale socket `%s`", path);
    }
    cleanup_free char *addr = xasprintf("unix:%s", path);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    mode_t old = umask(0117);
    int port = grpc_server_add_http2_port(srv->server, addr, creds);
    umask(old);
    grpc_server_credentials_release(creds);
    if (port == 0) {
        server_free(srv);
        return cri_error_set(err, EADDRNOTAVAIL, "listen on `%s`: grpc could not bind", addr);
    }
    grpc_server_start(srv->server);
    if (chmod(path, 0660) < 0)
        log_warn("chmod `%s`: %s, ignoring", path, strerror(errno));

    size_t pool_max = RPC_POOL_MAX;
    srv->pool_queue_max = RPC_POOL_QUEUE_MAX;
    testhook_pool_limits(&pool_max, &srv->pool_queue_max);
    srv->pool = pool_new(pool_max, srv->pool_queue_max, RPC_POOL_IDLE_MS);
    for (size_t i = 0; i < srv->n_methods; i++)
        for (int k = 0; k < RPC_SLOTS_PER_METHOD; k++)
            post_slot(srv, i);
    post_generic_slot(srv);
    for (size_t i = 0; i < RPC_POLLERS; i++) {
        if (pthread_create(&srv->pollers[i], NULL, poller_main, srv) != 0)
            break;
        srv->n_pollers++;
    }
    if (srv->n_pollers == 0) {
        rpc_server_stop(srv, 0);
        return cri_error_set(err, EAGAIN, "start poller threads");
    }
    *ret = srv;
    return 0;
}

/* Waits until pred holds or ms pass; true when it holds. Lock held. */
static bool wait_until(rpc_server_t *srv, bool (*pred)(rpc_server_t *), int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (!pred(srv))
        if (pthread_cond_timedwait(&srv->changed, &srv->lock, &ts) == ETIMEDOUT)
            return pred(srv);
    return true;
}

static bool no_inflight(rpc_server_t *srv)
{
    return srv->inflight == 0;
}

static bool all_done(rpc_server_t *srv)
{
    return srv->inflight == 0 && srv->shutdown_notified;
}

void rpc_server_stop(rpc_server_t *srv, int grace_ms)
{
    if (!srv)
        return;
    atomic_store(&srv->stopping, true);
    grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
    feeds_stop(srv);

    pthread_mutex_lock(&srv->lock);
    bool drained = wait_until(srv, no_inflight, grace_ms);
    pthread_mutex_unlock(&srv->lock);
    if (!drained) {
        log_warn("%zu calls still running after %d ms, cancelling them", srv->inflight, grace_ms);
        grpc_server_cancel_all_calls(srv->server);
    }
    pthread_mutex_lock(&srv->lock);
    bool done = wait_until(srv, all_done, 30000);
    pthread_mutex_unlock(&srv->lock);

    if (unlink(srv->socket_path) < 0 && errno != ENOENT)
        log_warn("remove socket `%s`: %s, ignoring", srv->socket_path, strerror(errno));
    if (!done) {
        /* a handler is stuck: leave its memory to process exit */
        log_error("calls still running 30 s after cancel; leaving them");
        return;
    }
    kicker_stop(srv); /* every feed is gone (inflight is 0): nothing is queued */
    grpc_completion_queue_shutdown(srv->cq);
    for (size_t i = 0; i < srv->n_pollers; i++)
        pthread_join(srv->pollers[i], NULL);
    pool_free(srv->pool);
    server_free(srv);
}
