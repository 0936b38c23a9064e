/* The real conmon_ops_t: the client functions of conmon.h. */
#include "conmon/conmon.h"

const conmon_ops_t conmon_monitor_ops = {
    .create = conmon_create,
    .exec_live_start = conmon_exec_live_start,
    .reopen_log = conmon_reopen_log,
    .resize = conmon_resize,
    .attach_connect = conmon_attach_connect,
};
