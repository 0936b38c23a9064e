/* Exit files and sync-pipe messages: the JSON both sides of the monitor
 * protocol read and write (see PROTOCOL.md). */
#include "conmon.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

/* json_dumps() with a trailing newline: one record, one line. */
static int dump_line(json_t *j, char **ret, cri_error_t *err)
{
    cleanup_free char *s = json_dumps(j, JSON_COMPACT);
    if (!s)
        return cri_error_set(err, ENOMEM, "encode json");
    *ret = xasprintf("%s\n", s);
    return 0;
}

int conmon_exit_format(const char *id, const conmon_exit_t *e, char **ret_json, cri_error_t *err)
{
    cleanup_json json_t *j =
        json_pack("{s:s, s:I, s:i, s:i, s:b, s:I}", "id", id, "pid", (json_int_t)e->pid,
                  "exit_code", e->exit_code, "signal", e->signal, "oom_killed", e->oom_killed,
                  "finished_at", (json_int_t)e->finished_at);
    if (!j)
        return cri_error_set(err, EINVAL, "encode exit file for `%s`", id);
    return dump_line(j, ret_json, err);
}

int conmon_exit_parse(const char *data, size_t len, conmon_exit_t *ret, cri_error_t *err)
{
    json_error_t jerr;
    cleanup_json json_t *j = json_loadb(data, len, 0, &jerr);
    if (!j)
        return cri_error_set(err, EINVAL, "parse exit file: %s", jerr.text);
    json_int_t pid = 0, finished = 0;
    int code = 0, sig = 0, oom = 0;
    /* unknown keys are allowed: newer monitors may add fields */
    if (json_unpack_ex(j, &jerr, 0, "{s:I, s:i, s:i, s:b, s:I}", "pid", &pid, "exit_code", &code,
                       "signal", &sig, "oom_killed", &oom, "finished_at", &finished) < 0)
        return cri_error_set(err, EINVAL, "parse exit file: %s", jerr.text);
    ret->pid = (pid_t)pid;
    ret->exit_code = code;
    ret->signal = sig;
    ret->oom_killed = oom != 0;
    ret->finished_at = (int64_t)finished;
    return 0;
}

int conmon_exit_read(const char *path, conmon_exit_t *ret, cri_error_t *err)
{
    cleanup_free char *data = NULL;
    size_t len = 0;
    if (read_file(path, (size_t)64 * 1024, &data, &len, err) < 0)
        return -1;
    if (conmon_exit_parse(data, len, ret, err) < 0)
        return cri_error_wrap(err, "read `%s`", path);
    return 0;
}

static const char *const sync_names[] = {
    [CONMON_SYNC_MONITOR] = "monitor",
    [CONMON_SYNC_CREATED] = "created",
    [CONMON_SYNC_ERROR] = "error",
    [CONMON_SYNC_EXEC] = "exec",
};

/* json_string() refuses invalid UTF-8: runtime stderr may hold anything, so
 * bytes that break it become '?'. */
static json_t *string_lossy(const char *s)
{
    json_t *v = json_string(s);
    if (v)
        return v;
    cleanup_free char *copy = xstrdup(s);
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80 || ((unsigned char)*p < 0x20 && *p != '\t'))
            *p = '?';
    return json_string(copy);
}

int conmon_sync_format(const conmon_sync_msg_t *msg, char **ret_line, cri_error_t *err)
{
    if (msg->type < CONMON_SYNC_MONITOR || msg->type > CONMON_SYNC_EXEC)
        return cri_error_set(err, EINVAL, "encode sync message: bad type %d", (int)msg->type);
    cleanup_json json_t *j = json_pack("{s:s}", "type", sync_names[msg->type]);
    if (!j)
        return cri_error_set(err, ENOMEM, "encode sync message");
    switch (msg->type) {
    case CONMON_SYNC_MONITOR:
    case CONMON_SYNC_CREATED:
        json_object_set_new(j, "pid", json_integer(msg->pid));
        break;
    case CONMON_SYNC_ERROR:
        json_object_set_new(j, "errno", json_integer(msg->status ? msg->status : EIO));
        json_object_set_new(j, "message", string_lossy(msg->message ? msg->message : ""));
        break;
    case CONMON_SYNC_EXEC:
        json_object_set_new(j, "pid", json_integer(msg->pid));
        json_object_set_new(j, "exit_code", json_integer(msg->exit_code));
        json_object_set_new(j, "signal", json_integer(msg->signal));
        json_object_set_new(j, "timed_out", json_boolean(msg->timed_out));
        json_object_set_new(j, "stdout_len", json_integer((json_int_t)msg->stdout_len));
        json_object_set_new(j, "stderr_len", json_integer((json_int_t)msg->stderr_len));
        json_object_set_new(j, "stdout_truncated", json_boolean(msg->stdout_trunc));
        json_object_set_new(j, "stderr_truncated", json_boolean(msg->stderr_trunc));
        break;
    }
    return dump_line(j, ret_line, err);
}

static int parse_exec(json_t *j, conmon_sync_msg_t *m, json_error_t *jerr)
{
    json_int_t pid = 0, out_len = 0, err_len = 0;
    int code = 0, sig = 0, timed_out = 0, out_trunc = 0, err_trunc = 0;
    if (json_unpack_ex(j, jerr, 0, "{s:I, s:i, s:i, s:b, s:I, s:I, s?b, s?b}", "pid", &pid,
                       "exit_code", &code, "signal", &sig, "timed_out", &timed_out, "stdout_len",
                       &out_len, "stderr_len", &err_len, "stdout_truncated", &out_trunc,
                       "stderr_truncated", &err_trunc) < 0)
        return -1;
    if (out_len < 0 || err_len < 0) {
        (void)snprintf(jerr->text, sizeof(jerr->text), "negative output length");
        return -1;
    }
    m->pid = (pid_t)pid;
    m->exit_code = code;
    m->signal = sig;
    m->timed_out = timed_out != 0;
    m->stdout_len = (size_t)out_len;
    m->stderr_len = (size_t)err_len;
    m->stdout_trunc = out_trunc != 0;
    m->stderr_trunc = err_trunc != 0;
    return 0;
}

static int parse_body(json_t *j, const char *type, conmon_sync_msg_t *m, json_error_t *jerr)
{
    json_int_t pid = 0;
    if (strcmp(type, "monitor") == 0 || strcmp(type, "created") == 0) {
        m->type = type[0] == 'm' ? CONMON_SYNC_MONITOR : CONMON_SYNC_CREATED;
        if (json_unpack_ex(j, jerr, 0, "{s:I}", "pid", &pid) < 0)
            return -1;
        if (pid <= 0) {
            (void)snprintf(jerr->text, sizeof(jerr->text), "pid must be positive");
            return -1;
        }
        m->pid = (pid_t)pid;
        return 0;
    }
    if (strcmp(type, "error") == 0) {
        const char *text = NULL;
        int status = EIO;
        m->type = CONMON_SYNC_ERROR;
        if (json_unpack_ex(j, jerr, 0, "{s:s, s?i}", "message", &text, "errno", &status) < 0)
            return -1;
        m->status = status > 0 ? status : EIO;
        m->message = xstrdup(text);
        return 0;
    }
    if (strcmp(type, "exec") == 0) {
        m->type = CONMON_SYNC_EXEC;
        return parse_exec(j, m, jerr);
    }
    (void)snprintf(jerr->text, sizeof(jerr->text), "unknown message type `%.64s`", type);
    return -1;
}

int conmon_sync_parse(const char *line, size_t len, conmon_sync_msg_t *ret, cri_error_t *err)
{
    json_error_t jerr;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    cleanup_json json_t *j = json_loadb(line, len, 0, &jerr);
    if (!j)
        return cri_error_set(err, EINVAL, "parse sync message: %s", jerr.text);
    const char *type = NULL;
    if (json_unpack_ex(j, &jerr, 0, "{s:s}", "type", &type) < 0)
        return cri_error_set(err, EINVAL, "parse sync message: %s", jerr.text);
    conmon_sync_msg_t m = {0};
    if (parse_body(j, type, &m, &jerr) < 0) {
        conmon_sync_msg_clear(&m);
        return cri_error_set(err, EINVAL, "parse sync message: %s", jerr.text);
    }
    *ret = m;
    return 0;
}

void conmon_sync_msg_clear(conmon_sync_msg_t *msg)
{
    if (!msg)
        return;
    free(msg->message);
    memset(msg, 0, sizeof(*msg));
}
