"""Streaming under abuse (security issue 10, item 5): what a client can
make the daemon hold is bounded.

- a client that sends PINGs (SPDY) or WebSocket pings and never reads the
  replies: the daemon stops reading it once 256 KiB of replies wait, so its
  RSS and fds stay put while another client's exec works;
- 100k SYN_STREAM + RST_STREAM pairs on one port-forward connection: every
  reset stream is freed, memory stays put, the session still answers;
- port-forward connections per session are capped
  (streaming.max_port_forwards): one more gets an error naming the limit
  and REFUSED_STREAM, a reset pair frees its slot;
- 1,100 slowloris connections from one address: past
  streaming.max_connections_per_client they are closed at once, the rest
  at streaming.handshake_timeout (even while they trickle bytes); the
  daemon's fds come back, and a client from another address execs
  meanwhile;
- streaming.idle_timeout ends an upgraded session without traffic.

The fake backend (CRICKET_TEST_HOOK_STREAMING=fake) stands in for
containers; port-forward goes into a netns the test creates."""
import json
import resource
import select
import socket
import struct
import threading
import time

import grpc
import pytest

import streaming_clients as sc
from conftest import RSS_SKIP, Cri
from test_streaming import Httpd, del_netns, fd_count, http_body, make_netns, rss_kb, wait_fds

V4 = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"]
HOOK = {"CRICKET_TEST_HOOK_STREAMING": "fake"}
MiB = 1 << 20
REFUSED_STREAM = 3


def limits_conf(**kw):
    if not kw:
        return ""
    return "streaming:\n" + "".join("  %s: %s\n" % kv for kv in kw.items())


@pytest.fixture(autouse=True)
def nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def fakef(daemon_factory):
    made = []

    def make(**kw):
        d = daemon_factory(config_text=limits_conf(**kw), env=HOOK)
        c = Cri(d.socket)
        made.append((d, c))
        return d, c

    yield make
    for d, c in made:
        c.close()
        assert d.stop() == 0, d.logs()


def exec_url(cri, cmd, **kw):
    kw.setdefault("stdout", True)
    return cri.call("Exec", container_id="fake-1", cmd=cmd, **kw).url


def normal_exec(cri, source=None):
    """An ordinary exec (echo) over SPDY, end to end."""
    url = exec_url(cri, ["echo", "still", "here"], stderr=True)
    c, resp = sc.spdy_connect(url, V4, source=source)
    assert resp.status == 101
    c.sock.settimeout(10)
    ids = sc.exec_streams(c, stdout=True, stderr=True)
    c.read_until(lambda: ids["error"] in c.fin)
    c.close()
    assert bytes(c.data.get(ids["stdout"], b"")) == b"still here\n"
    assert b'"Success"' in bytes(c.data[ids["error"]])


def flood(sock, chunk, limit, stall=2.0):
    """Sends chunk over and over without reading, until limit bytes went
    out or the peer has not taken a byte for stall seconds. Returns the
    bytes sent."""
    sock.setblocking(False)
    sent, off = 0, 0
    while sent < limit:
        try:
            n = sock.send(chunk[off:])
        except BlockingIOError:
            _, w, _ = select.select([], [sock], [], stall)
            if not w:
                break
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += n
        off = (off + n) % len(chunk)
    sock.setblocking(True)
    return sent


def ws_ping_frame():
    # masked (key 0: payload as is), the largest control payload
    return bytes([0x89, 0x80 | 125]) + b"\0\0\0\0" + b"p" * 125


@pytest.mark.parametrize("proto", ["spdy", "websocket"])
def test_ping_flood_without_reading_is_bounded(fakef, proto):
    d, cri = fakef()
    pid = d.proc.pid
    normal_exec(cri)  # warm up what the daemon opens lazily
    rss0, fds0 = rss_kb(pid), fd_count(pid)
    url = exec_url(cri, ["sleep"], stdin=True)
    if proto == "spdy":
        c, resp = sc.spdy_connect(url, V4)
        sc.exec_streams(c, stdin=True, stdout=True, stderr=True)
        chunk = c.control(sc.PING, 0, struct.pack(">I", 1)) * 8192
    else:
        c, resp = sc.ws_connect(url, ["v4.channel.k8s.io"])
        chunk = ws_ping_frame() * 800
    assert resp.status == 101
    limit = 96 * MiB
    sent = flood(c.sock, chunk, limit)
    grown = rss_kb(pid) - rss0
    fds = fd_count(pid)
    # meanwhile, another client's exec works
    normal_exec(cri)
    c.close()
    # what the socket buffers hold (a few MiB) plus 256 KiB, not everything
    assert sent < 32 * MiB, "the daemon read %d MiB of pings nobody read replies to" % (
        sent >> 20)
    assert grown < 16 << 10, "daemon RSS grew %d kB during the flood" % grown
    assert fds <= fds0 + 16, (fds, fds0)
    assert wait_fds(pid, fds0), (fd_count(pid), fds0)


def syn_rst_pairs(c, n, first_id):
    """n SYN_STREAM (error stream, requestid i) + RST_STREAM pairs, encoded
    in one buffer (the header compression context is the connection's)."""
    out = bytearray()
    sid = first_id
    for i in range(n):
        block = c.header_block([("streamtype", "error"), ("port", "8080"),
                                ("requestid", str(i))])
        out += c.control(sc.SYN_STREAM, 0, struct.pack(">IIH", sid, 0, 0) + block)
        out += c.control(sc.RST_STREAM, 0, struct.pack(">II", sid, 5))
        sid += 2
    return bytes(out), sid


@RSS_SKIP
def test_100k_syn_rst_pairs_are_freed(fakef):
    d, cri = fakef()
    pid = d.proc.pid
    ns = make_netns()
    try:
        url = cri.call("PortForward", pod_sandbox_id="fakens-" + ns).url
        c, resp = sc.spdy_connect(url, ["portforward.k8s.io"])
        assert resp.status == 101
        c.keep_data = False
        n = 100000
        frames, c.next_id = syn_rst_pairs(c, n, c.next_id)
        rss0, fds0 = rss_kb(pid), fd_count(pid)
        c.sock.settimeout(60)
        reader = threading.Thread(target=c.read_until,
                                  args=(lambda: len(c.replied) + len(c.reset) >= n,))
        reader.start()
        c.sock.sendall(frames)
        reader.join(60)
        assert not reader.is_alive(), "%d of %d streams answered" % (
            len(c.replied) + len(c.reset), n)
        grown = rss_kb(pid) - rss0
        # no stream refused: each reset freed its slot at once
        assert len(c.replied) == n and not c.reset, (len(c.replied), len(c.reset))
        assert grown < 4 << 10, "daemon RSS grew %d kB over %d stream pairs" % (grown, n)
        assert fd_count(pid) <= fds0 + 2
        # the session still answers: a forward to a closed port says so
        e = c.open_stream([("streamtype", "error"), ("port", "8099"), ("requestid", "1000001")])
        dsid = c.open_stream([("streamtype", "data"), ("port", "8099"),
                              ("requestid", "1000001")])
        c.keep_data = True
        c.read_until(lambda: e in c.fin and dsid in c.fin)
        assert b"connection refused" in bytes(c.data.get(e, b"")).lower()
        c.close()
    finally:
        del_netns(ns)


def open_pair(c, rid, port=8080):
    hdr = [("port", str(port)), ("requestid", str(rid))]
    e = c.open_stream([("streamtype", "error")] + hdr)
    dsid = c.open_stream([("streamtype", "data")] + hdr)
    return e, dsid


def test_port_forward_streams_per_connection_capped(fakef, tmp_path):
    d, cri = fakef(max_port_forwards=4)
    ns = make_netns()
    srv = Httpd(str(tmp_path), "/run/netns/" + ns, size=1000)
    try:
        url = cri.call("PortForward", pod_sandbox_id="fakens-" + ns).url
        c, resp = sc.spdy_connect(url, ["portforward.k8s.io"])
        c.sock.settimeout(10)
        pairs = [open_pair(c, rid) for rid in range(4)]
        assert not c.reset
        # one more: the error stream says why, the data stream is refused
        e, dsid = open_pair(c, 4)
        c.read_until(lambda: e in c.fin and dsid in c.reset)
        msg = bytes(c.data.get(e, b"")).decode()
        assert "too many port-forward connections" in msg and "limit 4" in msg, msg
        assert "streaming.max_port_forwards" in msg
        assert c.reset[dsid] == REFUSED_STREAM
        # the open ones work; resetting one frees its slot
        c.send_rst(pairs[0][1])
        c.send_rst(pairs[0][0])
        e, dsid = open_pair(c, 5)
        assert dsid not in c.reset
        c.send_data(dsid, b"GET /big HTTP/1.0\r\n\r\n", fin=True)
        c.read_until(lambda: dsid in c.fin and e in c.fin)
        assert http_body(bytes(c.data[dsid])) == srv.body
        assert bytes(c.data.get(e, b"")) == b""
        c.close()
        # WebSocket port-forward takes its ports from the request: capped there
        with pytest.raises(grpc.RpcError) as err:
            cri.call("PortForward", pod_sandbox_id="fakens-" + ns, port=[8080] * 5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "max_port_forwards (4)" in err.value.details()
    finally:
        srv.stop()
        del_netns(ns)


def is_closed(s):
    """True when the server closed s (EOF or reset); never blocks."""
    try:
        return s.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_slowloris_connections_are_cut(fakef):
    d, cri = fakef(max_connections_per_client=64, handshake_timeout="3s")
    pid = d.proc.pid
    port = d_port(cri)
    normal_exec(cri)
    fds0 = fd_count(pid)
    socks = []
    try:
        for _ in range(1100):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", port))
            try:
                s.send(b"POST /exec/AAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: x\r\n")
            except OSError:
                pass  # already closed: over the limit
            socks.append(s)
        time.sleep(0.5)
        open_now = [s for s in socks if not is_closed(s)]
        held = fd_count(pid) - fds0
        # a client from another address is not held up
        normal_exec(cri)
        assert len(open_now) <= 64, "%d slowloris connections still open" % len(open_now)
        assert held <= 64 + 4, "daemon holds %d more fds" % held
        # the rest go at the handshake timeout
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(is_closed(s) for s in open_now):
            time.sleep(0.2)
        assert all(is_closed(s) for s in open_now), \
            "%d connections outlived the handshake timeout" % sum(
                not is_closed(s) for s in open_now)
        assert wait_fds(pid, fds0), (fd_count(pid), fds0)
        normal_exec(cri, source="127.0.0.2")
    finally:
        for s in socks:
            s.close()


def test_trickling_request_head_is_cut_at_handshake_timeout(fakef):
    """MHD's own timeout restarts with every byte; the handshake one does not."""
    d, cri = fakef(handshake_timeout="2s")
    port = d_port(cri)
    head = b"POST /exec/AAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 40
    s = socket.create_connection(("127.0.0.1", port))
    t0 = time.monotonic()
    cut = False
    try:
        for b in head:  # ~16 s at this pace
            try:
                s.send(bytes([b]))
            except OSError:
                cut = True
                break
            time.sleep(0.2)
            if is_closed(s):
                cut = True
                break
    finally:
        s.close()
    took = time.monotonic() - t0
    assert cut, "a request head trickled for %.1f s without being cut" % took


def test_per_client_limit_counts_upgraded_sessions(fakef):
    d, cri = fakef(max_connections_per_client=4)
    sessions = []
    for _ in range(4):
        c, resp = sc.spdy_connect(exec_url(cri, ["sleep"], stdin=True), V4)
        assert resp.status == 101
        sc.exec_streams(c, stdin=True, stdout=True, stderr=True)
        sessions.append(c)
    url = exec_url(cri, ["echo", "x"])
    with pytest.raises(OSError):
        sc.spdy_connect(url, V4)
    # another address has its own count
    normal_exec(cri, source="127.0.0.3")
    sessions.pop().close()
    deadline = time.monotonic() + 10
    while True:
        try:
            normal_exec(cri)
            break
        except OSError:
            assert time.monotonic() < deadline, "the freed slot never came back"
            time.sleep(0.2)
    for c in sessions:
        c.close()


def d_port(cri):
    return json.loads(cri.call("Status", verbose=True).info["streamingPort"])


def test_idle_session_is_closed(fakef):
    d, cri = fakef(idle_timeout="2s")
    pid = d.proc.pid
    normal_exec(cri)
    fds0 = fd_count(pid)
    # an idle exec session ends
    c, _ = sc.spdy_connect(exec_url(cri, ["sleep"], stdin=True), V4)
    sc.exec_streams(c, stdin=True, stdout=True, stderr=True)
    c.sock.settimeout(20)
    try:
        c.read_until(lambda: False)
    except socket.timeout:
        pass
    assert c.closed, "an idle session was not closed"
    c.close()
    assert wait_fds(pid, fds0), (fd_count(pid), fds0)
    # an active one (a PING every 0.5 s, past the idle timeout) does not
    c, _ = sc.spdy_connect(exec_url(cri, ["cat"], stdin=True), V4)
    ids = sc.exec_streams(c, stdin=True, stdout=True, stderr=True)
    c.sock.settimeout(10)
    for i in range(8):
        c.send_ping(2 * i + 1)
        c.read_until(lambda: 2 * i + 1 in c.pings)
        time.sleep(0.5)
    assert not c.closed
    c.send_data(ids["stdin"], b"alive\n", fin=True)
    c.read_until(lambda: ids["error"] in c.fin)
    assert bytes(c.data[ids["stdout"]]) == b"alive\n"
    c.close()
