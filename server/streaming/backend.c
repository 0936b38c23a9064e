/* The backends: the daemon's default (exec is exec_backend.c, attach
 * attach_backend.c, port-forward netns.c) and the fake one the e2e
 * tests switch on with CRICKET_TEST_HOOK_STREAMING=fake, which exercises every stream of both
 * protocols without a container:
 *
 *   echo ARGS...   ARGS joined by spaces and a newline on stdout
 *   stderr ARGS... the same on stderr
 *   exit N         exit status N
 *   cat            stdin copied to stdout until EOF
 *   resize         "W H" on stdout for each resize event until stdin EOF
 *   big N          N bytes (byte i = i % 251) on stdout
 *   sleep          waits until stdin ends or the client goes away
 *
 * attach behaves like cat. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "server/streaming/streaming-internal.h"

static int default_portforward(void *data, const streaming_request_t *r, uint16_t port, int *ret_fd,
                               cri_error_t *err)
{
    return streaming_netns_connect(r->netns_path, port, ret_fd, err);
}

const streaming_backend_ops_t streaming_default_backend = {
    .exec = streaming_exec_conmon,
    .attach = streaming_attach_conmon,
    .portforward = default_portforward,
};

static void write_args(int fd, char **args)
{
    if (fd < 0)
        return;
    for (size_t i = 0; args[i]; i++) {
        if (i)
            write_all(fd, " ", 1);
        write_all(fd, args[i], strlen(args[i]));
    }
    write_all(fd, "\n", 1);
}

/* Copies stdin to out (when out >= 0) and reports resize events, until
 * stdin ends or cancel fires. */
static void pump(const streaming_stdio_t *io, int out, bool report_resize)
{
    for (;;) {
        struct pollfd p[3] = {{.fd = io->in, .events = POLLIN},
                              {.fd = io->resize, .events = POLLIN},
                              {.fd = io->cancel, .events = POLLIN}};
        if (poll(p, 3, -1) < 0 && errno != EINTR)
            return;
        if (p[2].revents)
            return;
        if (p[1].revents) {
            streaming_winsize_t ws;
            if (read(io->resize, &ws, sizeof(ws)) == sizeof(ws) && report_resize && out >= 0) {
                char line[32];
                int n = snprintf(line, sizeof(line), "%u %u\n", ws.width, ws.height);
                write_all(out, line, (size_t)n);
            }
        }
        if (p[0].revents) {
            char buf[16384];
            ssize_t k = read(io->in, buf, sizeof(buf));
            if (k <= 0)
                return;
            if (out >= 0 && !report_resize && write_all(out, buf, (size_t)k) < 0)
                return;
        }
        if (io->in < 0 && !p[1].revents)
            return;
    }
}

static void big(int out, const char *count)
{
    unsigned long long n = strtoull(count ? count : "0", NULL, 10), i = 0;
    unsigned char buf[16384];
    while (i < n && out >= 0) {
        size_t k = 0;
        for (; k < sizeof(buf) && i < n; k++, i++)
            buf[k] = (unsigned char)(i % 251);
        if (write_all(out, buf, k) < 0)
            return;
    }
}

static int fake_exec(void *data, const streaming_request_t *r, const streaming_stdio_t *io,
                     int *ret_exit_code, cri_error_t *err)
{
    const char *c = r->cmd && r->cmd[0] ? r->cmd[0] : "";
    int out = io->out;
    *ret_exit_code = 0;
    if (strcmp(c, "echo") == 0)
        write_args(out, r->cmd + 1);
    else if (strcmp(c, "stderr") == 0)
        write_args(io->err >= 0 ? io->err : out, r->cmd + 1);
    else if (strcmp(c, "exit") == 0)
        *ret_exit_code = r->cmd[1] ? (int)strtol(r->cmd[1], NULL, 10) : 0;
    else if (strcmp(c, "cat") == 0)
        pump(io, out, false);
    else if (strcmp(c, "resize") == 0)
        pump(io, out, true);
    else if (strcmp(c, "big") == 0)
        big(out, r->cmd[1]);
    else if (strcmp(c, "sleep") == 0)
        pump(io, -1, false);
    else
        return cri_error_set(err, ENOENT, "fake exec: no command `%s`", c);
    return 0;
}

static int fake_attach(void *data, const streaming_request_t *r, const streaming_stdio_t *io,
                       cri_error_t *err)
{
    pump(io, io->out, false);
    return 0;
}

const streaming_backend_ops_t streaming_fake_backend = {
    .exec = fake_exec,
    .attach = fake_attach,
    .portforward = default_portforward,
};
