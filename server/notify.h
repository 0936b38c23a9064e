/* Readiness for service managers: systemd's notify protocol (Type=notify),
 * spoken directly over $NOTIFY_SOCKET, so cricketd needs no libsystemd. */
#ifndef CRICKET_SERVER_NOTIFY_H
#define CRICKET_SERVER_NOTIFY_H

#include "common/error.h"

/* Sends `state` (e.g. "READY=1", "STOPPING=1") as one datagram to the unix
 * socket named by $NOTIFY_SOCKET (a path, or "@name" for the abstract
 * namespace). Returns 0 when sent, 1 when $NOTIFY_SOCKET is unset (nobody
 * asked), -1 with err set when sending failed. */
int notify_service_manager(const char *state, cri_error_t *err);

#endif
