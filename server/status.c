/* Status: is the runtime ready, is the network ready.
 *
 * Clients want both conditions, typed exactly "RuntimeReady" and
 * "NetworkReady"; a false one carries a CamelCase reason and a message.
 * NetworkReady is false with NetworkPluginNotReady while no usable CNI
 * config exists, as in containerd and CRI-O. */
#include <stdlib.h>

#include <jansson.h>

#include "api/cri/v1/api.pb-c.h"
#include "cni/cni.h"
#include "common/cleanup.h"
#include "server/daemon.h"
#include "server/handlers.h"
#include "server/streaming/streaming.h"

static Runtime__V1__RuntimeCondition *condition(rpc_ctx_t *ctx, const char *type, bool ok,
                                                const char *reason, const char *message)
{
    Runtime__V1__RuntimeCondition *c = rpc_alloc(ctx, sizeof(*c));
    runtime__v1__runtime_condition__init(c);
    c->type = (char *)type;
    c->status = ok;
    c->reason = rpc_strdup(ctx, reason ? reason : "");
    c->message = rpc_strdup(ctx, message ? message : "");
    return c;
}

/* crictl splices every info value into one JSON document: values must be
 * JSON themselves. json_value is taken as is; otherwise text is quoted. */
static Runtime__V1__StatusResponse__InfoEntry *info_entry(rpc_ctx_t *ctx, const char *key,
                                                          const char *json_value, const char *text)
{
    Runtime__V1__StatusResponse__InfoEntry *e = rpc_alloc(ctx, sizeof(*e));
    runtime__v1__status_response__info_entry__init(e);
    e->key = (char *)key;
    if (json_value) {
        e->value = rpc_strdup(ctx, json_value);
    } else {
        json_t *s = json_string(text);
        cleanup_free char *dumped = json_dumps(s, JSON_ENCODE_ANY);
        json_decref(s);
        e->value = rpc_strdup(ctx, dumped ? dumped : "null");
    }
    return e;
}

RPC_HANDLER(handle_status)
{
    const Runtime__V1__StatusRequest *in = (const Runtime__V1__StatusRequest *)req;
    daemon_t *d = rpc_daemon(ctx);

    cleanup_free char *cni_path = NULL;
    cri_error_t cni_err = CRI_ERROR_INIT;
    bool net_ok = daemon_cni_config(d, &cni_path, &cni_err) == 0;

    Runtime__V1__RuntimeStatus *st = rpc_alloc(ctx, sizeof(*st));
    runtime__v1__runtime_status__init(st);
    st->n_conditions = 2;
    st->conditions = rpc_alloc_array(ctx, 2, Runtime__V1__RuntimeCondition *);
    st->conditions[0] = condition(ctx, "RuntimeReady", true, NULL, NULL);
    st->conditions[1] =
        condition(ctx, "NetworkReady", net_ok, net_ok ? NULL : "NetworkPluginNotReady",
                  net_ok ? NULL : rpc_printf(ctx, "network plugin not ready: %s", cni_err.msg));

    Runtime__V1__StatusResponse *resp = rpc_alloc(ctx, sizeof(*resp));
    runtime__v1__status_response__init(resp);
    resp->status = st;

    /* the default handler (""), the only one until runtime classes land */
    Runtime__V1__RuntimeHandler *h = rpc_alloc(ctx, sizeof(*h));
    runtime__v1__runtime_handler__init(h);
    h->name = "";
    Runtime__V1__RuntimeHandlerFeatures *hf = rpc_alloc(ctx, sizeof(*hf));
    runtime__v1__runtime_handler_features__init(hf);
    /* pod user namespaces: runc joins the pinned one; layers are id-mapped */
    hf->user_namespaces = daemon_host(d)->userns_supported;
    hf->recursive_read_only_mounts = daemon_host(d)->rro_supported || daemon_host(d)->rro_hook;
    h->features = hf;
    Runtime__V1__RuntimeFeatures *f = rpc_alloc(ctx, sizeof(*f));
    runtime__v1__runtime_features__init(f);
    f->supplemental_groups_policy = true; /* Merge and Strict (server/container/user.c) */
    resp->features = f;
    resp->n_runtime_handlers = 1;
    resp->runtime_handlers = rpc_alloc_array(ctx, 1, Runtime__V1__RuntimeHandler *);
    resp->runtime_handlers[0] = h;

    if (in->verbose) {
        cleanup_free char *cidr = daemon_pod_cidr(d);
        resp->n_info = d->streaming ? 5 : 3;
        resp->info = rpc_alloc_array(ctx, 5, Runtime__V1__StatusResponse__InfoEntry *);
        cleanup_free char *config = daemon_config_json(d);
        resp->info[0] = info_entry(ctx, "config", config, NULL);
        resp->info[1] = info_entry(ctx, "podCIDR", NULL, cidr);
        resp->info[2] = info_entry(ctx, "cniConfig", NULL, cni_path ? cni_path : "");
        if (d->streaming) {
            resp->info[3] =
                info_entry(ctx, "streamingURL", NULL, streaming_server_base_url(d->streaming));
            resp->info[4] = info_entry(
                ctx, "streamingPort",
                rpc_printf(ctx, "%u", (unsigned)streaming_server_port(d->streaming)), NULL);
        }
    }
    *ret_resp = &resp->base;
    return 0;
}
