/* Port-forward inside a session: one pair of streams (data, error) per
 * request id, each with its own connection into the pod. Bytes from the
 * client's data stream go to the socket; the socket's bytes come back on
 * the data stream. The client's FIN half-closes the socket (SHUT_WR); the
 * socket's EOF ends the data stream and then the error stream. A failed
 * dial writes the error text on the error stream and ends both. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/streaming/session-internal.h"

pf_pair_t *pf_pair_get(session_t *s, uint32_t request_id, bool create)
{
    for (size_t i = 0; i < s->n_pairs; i++)
        if (s->pairs[i]->request_id == request_id)
            return s->pairs[i];
    if (!create)
        return NULL;
    pf_pair_t *p = xcalloc(1, sizeof(*p));
    p->request_id = request_id;
    p->fd = -1;
    s->pairs = xrealloc(s->pairs, (s->n_pairs + 1) * sizeof(pf_pair_t *));
    s->pairs[s->n_pairs++] = p;
    return p;
}

static void pf_end(session_t *s, pf_pair_t *p)
{
    session_send_fin(s, &p->data);
    session_send_fin(s, &p->error);
}

void pf_pair_dial(session_t *s, pf_pair_t *p)
{
    if (p->started)
        return;
    p->started = true;
    cri_error_t err = CRI_ERROR_INIT;
    int fd = -1;
    if (p->port == 0)
        cri_error_set(&err, EINVAL, "invalid port");
    else if (!s->ops->portforward)
        cri_error_set(&err, ENOSYS, "port-forward is not supported");
    else if (s->ops->portforward(s->ops_data, s->req, p->port, &fd, &err) == 0)
        p->fd = fd;
    if (p->fd >= 0)
        return;
    cleanup_free char *msg = xasprintf("error forwarding port %u to pod %s: %s", p->port,
                                       s->req->pod_id ? s->req->pod_id : "", err.msg);
    session_send(s, ROLE_PF_ERROR, &p->error, msg, strlen(msg));
    p->fd_eof = true;
    pf_end(s, p);
}

void pf_data_from_client(session_t *s, pf_pair_t *p, const uint8_t *d, size_t n)
{
    if (p->shut_wr || p->data.client_fin || n == 0)
        return;
    sbuf_append(&p->to_fd, d, n);
}

static void maybe_shut_wr(pf_pair_t *p)
{
    if (p->data.client_fin && p->to_fd.len == 0 && p->fd >= 0 && !p->shut_wr) {
        shutdown(p->fd, SHUT_WR);
        p->shut_wr = true;
    }
}

void pf_client_fin(session_t *s, pf_pair_t *p)
{
    p->data.client_fin = true;
    maybe_shut_wr(p);
    if (p->fd_eof && p->to_fd.len == 0 && p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
}

size_t pf_poll_add(session_t *s, struct pollfd *fds, size_t max)
{
    size_t n = 0;
    bool room = session_out_pending(s) < SESSION_OUT_HIGH;
    for (size_t i = 0; i < s->n_pairs && n < max; i++, n++) {
        pf_pair_t *p = s->pairs[i];
        fds[n].fd = p->fd;
        fds[n].events = (short)((room && !p->fd_eof ? POLLIN : 0) | (p->to_fd.len ? POLLOUT : 0));
        if (!fds[n].events)
            fds[n].fd = -1;
    }
    return n;
}

static void pf_read(session_t *s, pf_pair_t *p)
{
    uint8_t buf[SESSION_CHUNK];
    while (!p->fd_eof && session_out_pending(s) < SESSION_OUT_HIGH) {
        ssize_t k = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            return;
        if (k <= 0) {
            p->fd_eof = true;
            if (k < 0) {
                cleanup_free char *msg =
                    xasprintf("error reading port %u: %s", p->port, strerror(errno));
                session_send(s, ROLE_PF_ERROR, &p->error, msg, strlen(msg));
            }
            pf_end(s, p);
            return;
        }
        session_send(s, ROLE_PF_DATA, &p->data, buf, (size_t)k);
    }
}

static void pf_write(session_t *s, pf_pair_t *p)
{
    while (p->to_fd.len > 0) {
        ssize_t k = send(p->fd, p->to_fd.data, p->to_fd.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            return;
        if (k < 0) { /* the pod side is gone for writing: drop what is left */
            p->to_fd.len = 0;
            p->shut_wr = true;
            return;
        }
        sbuf_consume(&p->to_fd, (size_t)k);
    }
    maybe_shut_wr(p);
}

static bool chan_done(const chan_t *c)
{
    return !c->open || c->fin_sent;
}

/* SPDY: a pair whose socket is closed and whose open streams all ended (or
 * were reset) is dropped, so neither a long kubectl port-forward session
 * nor a client opening and resetting streams accumulates them. A pair
 * still waiting for its second stream stays (it counts against the
 * session's limit). WebSocket pairs are indexed by channel and live as
 * long as the session. */
void pf_reap(session_t *s)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n_pairs; i++) {
        pf_pair_t *p = s->pairs[i];
        if (!s->websocket && p->fd < 0 && chan_done(&p->data) && chan_done(&p->error)) {
            sbuf_free(&p->to_fd);
            free(p);
            continue;
        }
        s->pairs[k++] = p;
    }
    s->n_pairs = k;
}

void pf_poll_handle(session_t *s, const struct pollfd *fds, size_t n)
{
    for (size_t i = 0; i < n && i < s->n_pairs; i++) {
        pf_pair_t *p = s->pairs[i];
        if (p->fd < 0)
            continue;
        if (fds[i].revents & POLLOUT)
            pf_write(s, p);
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
            pf_read(s, p);
        if (p->to_fd.len)
            pf_write(s, p);
        /* both directions done: the connection into the pod can go */
        if (p->fd_eof && (p->data.client_fin || s->websocket)) {
            close(p->fd);
            p->fd = -1;
        }
    }
    pf_reap(s);
}

void pf_client_reset(session_t *s, pf_pair_t *p, bool data)
{
    chan_t *c = data ? &p->data : &p->error;
    c->client_fin = true;
    c->fin_sent = true;
    if (data) {
        sbuf_free(&p->to_fd);
        if (p->fd >= 0)
            close(p->fd);
        p->fd = -1;
        p->fd_eof = true;
        p->shut_wr = true;
    }
    pf_reap(s);
}

size_t pf_pending_in(session_t *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_pairs; i++)
        n += s->pairs[i]->to_fd.len;
    return n;
}

bool pf_all_done(session_t *s)
{
    for (size_t i = 0; i < s->n_pairs; i++)
        if (!s->pairs[i]->fd_eof)
            return false;
    return true;
}

void pf_free_all(session_t *s)
{
    for (size_t i = 0; i < s->n_pairs; i++) {
        if (s->pairs[i]->fd >= 0)
            close(s->pairs[i]->fd);
        sbuf_free(&s->pairs[i]->to_fd);
        free(s->pairs[i]);
    }
    free(s->pairs);
    s->pairs = NULL;
    s->n_pairs = 0;
}
