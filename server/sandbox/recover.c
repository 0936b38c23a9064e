/* Startup recovery: rebuild the sandbox store from STORE_PODS and what is
 * left on the host. A pod whose RunPodSandbox never finished (the daemon
 * died half way) is torn down and forgotten; a READY pod whose infra
 * container is gone (runtime state, exit file; a reboot empties both) now
 * reads NOTREADY. Its netns pin may be gone too: Stop copes with that. */
#include <errno.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "server/daemon.h"
#include "server/sandbox/sandbox-internal.h"
#include "server/store.h"

#define RECOVER_SPEC_MAX (4 * 1024 * 1024)

struct records {
    char **texts;
    size_t n;
};

static int collect(const char *key, const void *val, size_t len, void *data, cri_error_t *err)
{
    struct records *r = data;
    r->texts = xrealloc(r->texts, (r->n + 2) * sizeof(char *));
    r->texts[r->n++] = xstrndup(val, len);
    r->texts[r->n] = NULL;
    return 0;
}

static int read_records(daemon_t *d, struct records *ret, cri_error_t *err)
{
    cleanup_store_txn store_txn_t *txn = NULL;
    if (store_txn_begin(d->store, false, &txn, err) < 0)
        return -1;
    if (store_foreach(txn, STORE_PODS, collect, ret, err) < 0)
        return -1;
    return 0;
}

static void load_spec(daemon_t *d, sandbox_t *sb)
{
    cleanup_free char *bundle = sandbox_bundle_dir(d, sb->id);
    cleanup_free char *path = xasprintf("%s/config.json", bundle);
    char *text = NULL;
    cri_error_t ignore = CRI_ERROR_INIT;
    if (read_file(path, RECOVER_SPEC_MAX, &text, NULL, &ignore) == 0) {
        free(sb->spec_json);
        sb->spec_json = text;
    }
}

/* One record: 1 when it was kept, 0 when torn down, -1 on error. */
static int recover_one(daemon_t *d, const char *text, cri_error_t *err)
{
    cleanup_sandbox sandbox_t *sb = NULL;
    bool creating = false;
    if (sandbox_record_parse(text, strlen(text), &sb, &creating, err) < 0)
        return -1;
    if (creating) {
        /* RunPodSandbox died half way: undo whatever it got to */
        if (sandbox_stop_locked(d, sb, err) < 0 || sandbox_remove_locked(d, sb, err) < 0)
            return cri_error_wrap(err, "tear down unfinished pod `%s`", sb->id);
        return 0;
    }
    load_spec(d, sb);
    pid_t pid = 0;
    if (sandbox_get_state(sb, NULL) == SANDBOX_STATE_READY) {
        bool alive = sandbox_infra_running(d, sb, &pid);
        sandbox_set_state(sb, alive ? SANDBOX_STATE_READY : SANDBOX_STATE_NOTREADY,
                          alive ? pid : 0);
        if (!alive && sandbox_store_persist(d->sandboxes, sb, false, err) < 0)
            return cri_error_wrap(err, "record pod `%s` as not ready", sb->id);
    }
    if (sandbox_store_add(d->sandboxes, sb, err) < 0)
        return -1;
    return 1;
}

int sandbox_recover(daemon_t *d, size_t *ret_loaded, cri_error_t *err)
{
    struct records recs = {0};
    int rc = read_records(d, &recs, err);
    size_t loaded = 0;
    for (size_t i = 0; rc == 0 && i < recs.n; i++) {
        cri_error_t perr = CRI_ERROR_INIT;
        int r = recover_one(d, recs.texts[i], &perr);
        if (r < 0)
            log_warn("recover pod sandbox: %s, ignoring", perr.msg);
        else
            loaded += (size_t)r;
    }
    strv_free(recs.texts);
    if (rc < 0)
        return cri_error_wrap(err, "recover pod sandboxes");
    if (ret_loaded)
        *ret_loaded = loaded;
    return 0;
}

bool sandbox_on_infra_exit(daemon_t *d, const char *id)
{
    cleanup_sandbox sandbox_t *sb = NULL;
    cri_error_t ignore = CRI_ERROR_INIT;
    if (!d->sandboxes || sandbox_store_get(d->sandboxes, id, &sb, &ignore) < 0 ||
        strcmp(sb->id, id) != 0)
        return false;
    sandbox_set_state(sb, SANDBOX_STATE_NOTREADY, 0);
    return true;
}
