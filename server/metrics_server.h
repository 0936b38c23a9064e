/* The Prometheus endpoint (config section `metrics`, off by default): an
 * HTTP server (libmicrohttpd, its own thread) answering GET /metrics with
 * the text format: the daemon's counters (metrics.h), and, read at scrape
 * time, pods and containers by state, monitors alive, event subscribers
 * and drops, and the process's own metrics. */
#ifndef CRICKET_SERVER_METRICS_SERVER_H
#define CRICKET_SERVER_METRICS_SERVER_H

#include "common/error.h"
#include "server/metrics.h"

struct daemon;
typedef struct metrics_server metrics_server_t;

/* Everything one scrape answers, appended to b (also for tests). */
void metrics_render(struct daemon *d, metrics_buf_t *b);

/* Listens on address:port (IPv4 or IPv6; port 0 picks a free one).
 * EINVAL for an address that is not an IP, the bind's errno otherwise.
 * Stop with metrics_server_stop(). */
int metrics_server_start(struct daemon *d, const char *address, int port, metrics_server_t **ret,
                         cri_error_t *err);
/* The port it listens on. */
int metrics_server_port(const metrics_server_t *s);
/* Stops and frees. NULL is fine. */
void metrics_server_stop(metrics_server_t *s);

#endif
