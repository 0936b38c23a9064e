/* One upgraded streaming connection: state shared by session.c (the poll
 * loop, the backend thread, exec/attach streams), session_spdy.c,
 * session_ws.c and session_pf.c. Only the session's own thread touches it,
 * except the backend results, which are published through the done pipe. */
#ifndef CRICKET_SERVER_STREAMING_SESSION_INTERNAL_H
#define CRICKET_SERVER_STREAMING_SESSION_INTERNAL_H

#include <poll.h>
#include <pthread.h>

#include "server/streaming/streaming-internal.h"

#define SESSION_OUT_HIGH (256u << 10) /* stop reading backends past this much unsent */
#define SESSION_IN_HIGH (256u << 10)  /* stop reading the client past this much unwritten */
#define SESSION_CHUNK (32u << 10)
#define SESSION_STREAM_WAIT_MS 30000 /* all streams of an exec must exist by then */

typedef enum role {
    ROLE_ERROR = 0,
    ROLE_STDIN,
    ROLE_STDOUT,
    ROLE_STDERR,
    ROLE_RESIZE,
    ROLE_COUNT,
    ROLE_PF_DATA = ROLE_COUNT,
    ROLE_PF_ERROR,
} role_t;

/* One logical stream: a SPDY stream or a WebSocket channel. */
typedef struct chan {
    bool open;       /* SPDY: SYN_STREAM seen; WebSocket: always */
    uint32_t id;     /* SPDY stream id, WebSocket channel number */
    bool client_fin; /* the client closed its side */
    bool fin_sent;   /* no more frames go out on it (FIN sent, or reset) */
} chan_t;

typedef struct pf_pair {
    uint32_t request_id;
    uint16_t port;
    chan_t data, error;
    int fd;       /* connected socket in the pod, -1 before/after */
    sbuf_t to_fd; /* client bytes not yet written to fd */
    bool started; /* dial attempted */
    bool fd_eof;  /* fd gave EOF (FINs sent) */
    bool shut_wr; /* shutdown(fd, SHUT_WR) done */
} pf_pair_t;

struct streaming_session {
    int sock;
    bool websocket; /* the k8s.io channel protocols over WebSocket */
    /* SPDY tunneled in WebSocket binary messages: the session speaks SPDY
     * through in/out; the wire bytes are in wire_in/wire_out */
    bool tunnel;
    sbuf_t wire_in, wire_out;
    const proto_choice_t *proto;
    streaming_request_t *req;
    const streaming_backend_ops_t *ops;
    void *ops_data;

    sbuf_t in, out; /* bytes from / to the client */
    bool client_gone;
    bool closing; /* flush out, then close */
    int64_t started_ns;
    int64_t idle_timeout_ms; /* 0 = none */
    int64_t last_traffic_ms; /* last byte read from or written to the client */
    unsigned int max_pairs;  /* port-forward pairs open at once */

    spdy_zctx_t z;
    uint32_t last_stream;
    ws_reader_t wsr;

    /* exec / attach */
    chan_t ch[ROLE_COUNT];
    int in_w, out_r, err_r, resize_w, cancel_w, done_r;
    sbuf_t to_stdin;
    sbuf_t resize_text;
    bool backend_started, backend_done, status_sent;
    pthread_t backend;
    int brc, exit_code;
    cri_error_t berr;
    streaming_stdio_t bio; /* the backend's ends */
    int done_w;

    /* port-forward */
    pf_pair_t **pairs;
    size_t n_pairs;
};

typedef struct streaming_session session_t;

/* session.c */
void session_send(session_t *s, role_t role, chan_t *c, const void *p, size_t n);
void session_send_fin(session_t *s, chan_t *c);
void session_stdin_data(session_t *s, const uint8_t *p, size_t n);
void session_stdin_close(session_t *s);
void session_resize_data(session_t *s, const uint8_t *p, size_t n);
void session_start_backend(session_t *s);
int64_t session_now_ms(void);
/* Bytes not yet sent to the client: out, plus wire_out in a tunnel. */
size_t session_out_pending(const session_t *s);

/* session_spdy.c */
int spdy_session_input(session_t *s, cri_error_t *err);
void spdy_session_check_streams(session_t *s);

/* session_ws.c */
int ws_session_input(session_t *s, cri_error_t *err);
/* Tunnel: moves the payloads of the client's binary messages from wire_in
 * to in (answering pings and close), then runs the SPDY side on them. */
int ws_tunnel_input(session_t *s, cri_error_t *err);
/* Tunnel: wraps what the SPDY side wrote to out into one binary message on
 * wire_out. */
void ws_tunnel_output(session_t *s);
void ws_session_open(session_t *s);
void ws_session_close(session_t *s, uint16_t code);

/* session_pf.c */
pf_pair_t *pf_pair_get(session_t *s, uint32_t request_id, bool create);
void pf_pair_dial(session_t *s, pf_pair_t *p);
void pf_data_from_client(session_t *s, pf_pair_t *p, const uint8_t *d, size_t n);
void pf_client_fin(session_t *s, pf_pair_t *p);
/* The client reset one of p's streams: nothing more goes out on it, and a
 * reset data stream drops the connection into the pod. Frees p (and
 * removes it from s->pairs) once nothing is left of it. */
void pf_client_reset(session_t *s, pf_pair_t *p, bool data);
/* Bytes from the client waiting for the pods' sockets. */
size_t pf_pending_in(session_t *s);
/* Drops the pairs that are done (no socket, every open stream ended). */
void pf_reap(session_t *s);
/* Adds the pairs' fds to a poll set; handles their events. */
size_t pf_poll_add(session_t *s, struct pollfd *fds, size_t max);
void pf_poll_handle(session_t *s, const struct pollfd *fds, size_t n);
bool pf_all_done(session_t *s);
void pf_free_all(session_t *s);

#endif
