#!/usr/bin/python3
"""Daemon RSS and fd count under streaming abuse (run as root from a build
tree):

  CRICKETD=build/cricketd CRI_PY_GEN=build/gen/py bench/streaming_abuse.py [--no-config] \
      [ping-spdy ping-websocket syn-rst slowloris]

Each pattern against a fresh daemon (fake streaming backend), printing
VmRSS (kB) and open fds before, during and after:
- PING flood: a SPDY client sends PINGs and never reads the replies
  (the same with WebSocket pings);
- 100k SYN_STREAM + RST_STREAM pairs on one port-forward connection;
- 1,100 slowloris connections from 127.0.0.2 (partial request head, then
  nothing), with max_connections_per_client 64 and handshake_timeout 3s.
Meanwhile an exec from 127.0.0.1 must work ("exec ok").
--no-config: leave the streaming limits out of the config (for a daemon
built before they existed)."""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "e2e"))
import conftest  # noqa: E402
import streaming_clients as sc  # noqa: E402
import test_streaming_limits as tl  # noqa: E402
from test_streaming import del_netns, fd_count, make_netns, rss_kb  # noqa: E402

NO_CONFIG = "--no-config" in sys.argv


def figures(pid):
    return "RSS %6d kB, %4d fds" % (rss_kb(pid), fd_count(pid))


def exec_ok(cri):
    try:
        tl.normal_exec(cri)
        return "exec ok"
    except Exception as e:  # noqa: BLE001 (a figure, not a test)
        return "exec FAILED (%s)" % type(e).__name__


def daemon(**limits):
    base = tempfile.mkdtemp(prefix="cricket-abuse-")
    conf = "" if NO_CONFIG else tl.limits_conf(**limits)
    d = conftest.Daemon(base, conf, env=tl.HOOK).start()
    return base, d, conftest.Cri(d.socket)


def done(base, d, cri):
    cri.close()
    try:
        d.stop(timeout=30)
    except AssertionError as e:  # a daemon stuck in a session: killed
        print("  (%s)" % e)
    subprocess.run(["rm", "-rf", base])


def ping_flood(proto):
    base, d, cri = daemon()
    pid = d.proc.pid
    try:
        tl.normal_exec(cri)
        print("ping flood (%s), before: %s" % (proto, figures(pid)))
        url = tl.exec_url(cri, ["sleep"], stdin=True)
        if proto == "spdy":
            c, _ = sc.spdy_connect(url, tl.V4)
            sc.exec_streams(c, stdin=True, stdout=True, stderr=True)
            chunk = c.control(sc.PING, 0, struct.pack(">I", 1)) * 8192
        else:
            c, _ = sc.ws_connect(url, ["v4.channel.k8s.io"])
            chunk = tl.ws_ping_frame() * 800
        t0 = time.monotonic()
        sent = tl.flood(c.sock, chunk, 256 << 20)
        print("  during: %s, %d MiB of pings taken in %.1f s, %s" %
              (figures(pid), sent >> 20, time.monotonic() - t0, exec_ok(cri)))
        c.close()
        time.sleep(1)
        print("  after close: %s" % figures(pid))
    finally:
        done(base, d, cri)


def syn_rst():
    base, d, cri = daemon()
    pid = d.proc.pid
    ns = make_netns()
    try:
        url = cri.call("PortForward", pod_sandbox_id="fakens-" + ns).url
        c, _ = sc.spdy_connect(url, ["portforward.k8s.io"])
        c.keep_data = False
        n = 100000
        frames, c.next_id = tl.syn_rst_pairs(c, n, c.next_id)
        print("100k SYN_STREAM+RST_STREAM, before: %s" % figures(pid))
        c.sock.settimeout(120)
        reader = threading.Thread(target=c.read_until,
                                  args=(lambda: len(c.replied) + len(c.reset) >= n,))
        t0 = time.monotonic()
        reader.start()
        try:
            c.sock.sendall(frames)
        except OSError as e:
            print("  sending: %s" % e)
        reader.join(max(1, 120 - (time.monotonic() - t0)))
        print("  after: %s, %d replied, %d refused in %.1f s, %s" %
              (figures(pid), len(c.replied), len(c.reset), time.monotonic() - t0, exec_ok(cri)))
        c.close()
    finally:
        del_netns(ns)
        done(base, d, cri)


def slowloris():
    base, d, cri = daemon(max_connections_per_client=64, handshake_timeout="3s")
    pid = d.proc.pid
    port = tl.d_port(cri)
    socks = []
    try:
        tl.normal_exec(cri)
        print("1,100 slowloris connections, before: %s" % figures(pid))
        for _ in range(1100):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            try:
                s.connect(("127.0.0.1", port))
                s.send(b"POST /exec/AAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: x\r\n")
            except OSError:
                pass
            socks.append(s)
        time.sleep(0.5)
        during = figures(pid)
        still = sum(not tl.is_closed(s) for s in socks)
        print("  during: %s, %d of 1100 still open, %s" % (during, still, exec_ok(cri)))
        time.sleep(4)
        later = figures(pid)
        still = sum(not tl.is_closed(s) for s in socks)
        print("  4 s later: %s, %d still open" % (later, still))
    finally:
        for s in socks:
            s.close()
        time.sleep(1)
        print("  after close: %s" % figures(pid))
        done(base, d, cri)


def main():
    patterns = {"ping-spdy": lambda: ping_flood("spdy"),
                "ping-websocket": lambda: ping_flood("websocket"),
                "syn-rst": syn_rst, "slowloris": slowloris}
    chosen = [a for a in sys.argv[1:] if not a.startswith("--")] or list(patterns)
    for name in chosen:
        patterns[name]()


if __name__ == "__main__":
    main()
