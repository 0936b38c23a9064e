/* Protocol negotiation and the exit status document.
 *
 * SPDY: the client sends X-Stream-Protocol-Version once per protocol, in
 * its order of preference; the first one the server supports wins (as
 * k8s.io/apimachinery httpstream.Handshake). WebSocket: the same over
 * Sec-WebSocket-Protocol, with "" standing for "no subprotocol" (binary
 * channel framing), as wsstream.Conn does. The tables follow what the
 * reference CRI streaming server (k8s.io/kubelet/pkg/cri/streaming) offers. */
#include <string.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/streaming/streaming-internal.h"

static const proto_choice_t spdy_exec[] = {
    {"v4.channel.k8s.io", PROTO_V4, false, false},
    {"v3.channel.k8s.io", PROTO_V3, false, false},
    {"v2.channel.k8s.io", PROTO_V2, false, false},
    {"channel.k8s.io", PROTO_V1, false, false},
    {NULL, PROTO_NONE, false, false},
};

static const proto_choice_t spdy_portforward[] = {
    {"portforward.k8s.io", PROTO_PORTFORWARD, false, false},
    {NULL, PROTO_NONE, false, false},
};

static const proto_choice_t ws_exec[] = {
    {"v5.channel.k8s.io", PROTO_V5, false, false},
    {"v4.channel.k8s.io", PROTO_V4, false, false},
    {"v4.base64.channel.k8s.io", PROTO_V4, true, false},
    {"channel.k8s.io", PROTO_V1, false, false},
    {"base64.channel.k8s.io", PROTO_V1, true, false},
    {"", PROTO_V1, false, false},
    {NULL, PROTO_NONE, false, false},
};

static const proto_choice_t ws_portforward[] = {
    /* SPDY over WebSocket: what kubectl and critest's websocket port-forward
     * dial (k8s.io/client-go portforward.NewSPDYOverWebsocketDialer) */
    {"SPDY/3.1+portforward.k8s.io", PROTO_PORTFORWARD, false, true},
    {"v4.channel.k8s.io", PROTO_PORTFORWARD, false, false},
    {"v4.base64.channel.k8s.io", PROTO_PORTFORWARD, true, false},
    {"", PROTO_PORTFORWARD, false, false},
    {NULL, PROTO_NONE, false, false},
};

static const proto_choice_t *table(streaming_kind_t kind, bool websocket)
{
    if (kind == STREAMING_PORTFORWARD)
        return websocket ? ws_portforward : spdy_portforward;
    return websocket ? ws_exec : spdy_exec;
}

const char *streaming_supported(streaming_kind_t kind, bool websocket)
{
    if (kind == STREAMING_PORTFORWARD)
        return websocket ? "SPDY/3.1+portforward.k8s.io, v4.channel.k8s.io, "
                           "v4.base64.channel.k8s.io"
                         : "portforward.k8s.io";
    return websocket ? "v5.channel.k8s.io, v4.channel.k8s.io, v4.base64.channel.k8s.io, "
                       "channel.k8s.io, base64.channel.k8s.io"
                     : "v4.channel.k8s.io, v3.channel.k8s.io, v2.channel.k8s.io, channel.k8s.io";
}

static const proto_choice_t *lookup(const proto_choice_t *t, const char *name, size_t len)
{
    for (; t->name; t++) {
        if (strlen(t->name) == len && strncmp(t->name, name, len) == 0)
            return t;
    }
    return NULL;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Walks the comma-separated items of one header value in order. */
static const proto_choice_t *match_value(const proto_choice_t *t, const char *v)
{
    while (*v) {
        while (is_space(*v) || *v == ',')
            v++;
        if (!*v)
            break;
        const char *start = v;
        while (*v && *v != ',')
            v++;
        const char *end = v;
        while (end > start && is_space(end[-1]))
            end--;
        const proto_choice_t *c = lookup(t, start, (size_t)(end - start));
        if (c)
            return c;
    }
    return NULL;
}

const proto_choice_t *streaming_negotiate(streaming_kind_t kind, bool websocket,
                                          const char *const *offers, size_t n_offers)
{
    const proto_choice_t *t = table(kind, websocket);
    if (n_offers == 0)
        return websocket ? lookup(t, "", 0) : NULL;
    for (size_t i = 0; i < n_offers; i++) {
        const proto_choice_t *c = match_value(t, offers[i]);
        if (c)
            return c;
    }
    return NULL;
}

/* metav1.Status as kubelet's remotecommand server writes it: TypeMeta
 * empty, "metadata":{}; for a non-zero exit, reason NonZeroExitCode and a
 * cause whose JSON key "reason" (StatusCause.Type) is ExitCode and whose
 * message is the decimal code, which client-go's v4 error decoder parses. */
char *streaming_status_json(int exit_code, const char *msg)
{
    json_t *st = NULL;
    if (msg) {
        st = json_pack("{s:{}, s:s, s:s+, s:s, s:{s:[{s:s}]}, s:i}", "metadata", "status",
                       "Failure", "message", "Internal error occurred: ", msg, "reason",
                       "InternalError", "details", "causes", "message", msg, "code", 500);
    } else if (exit_code == 0) {
        st = json_pack("{s:{}, s:s}", "metadata", "status", "Success");
    } else {
        cleanup_free char *code = xasprintf("%d", exit_code);
        cleanup_free char *text =
            xasprintf("command terminated with non-zero exit code: exit status %d", exit_code);
        st = json_pack("{s:{}, s:s, s:s, s:s, s:{s:[{s:s, s:s}]}}", "metadata", "status", "Failure",
                       "message", text, "reason", "NonZeroExitCode", "details", "causes", "reason",
                       "ExitCode", "message", code);
    }
    if (!st)
        return xstrdup("{\"metadata\":{},\"status\":\"Failure\"}");
    char *s = json_dumps(st, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(st);
    return s ? s : xstrdup("{\"metadata\":{},\"status\":\"Failure\"}");
}
