"""Streaming against real containers (real runc, monitors and their attach
sockets): Attach over SPDY and WebSocket to a container that echoes its
stdin; Exec through the monitor's interactive exec mode (pipes and a tty with
resize), exit codes over both protocols, and a client that disconnects
mid-stream (no process, no daemon fd left behind)."""
import hashlib
import json
import os
import threading
import time

import grpc
import pytest

import api_pb2
import streaming_clients as sc
from test_container import Pod, exec_sync, expect_error, procs_with_cmdline, reg  # noqa: F401
from test_sandbox import envf, pytestmark  # noqa: F401 (fixture, skip mark)
from registry import registry_config

V4 = ["v4.channel.k8s.io"]


@pytest.fixture
def pod(envf, reg):  # noqa: F811
    env = envf(extra_config=registry_config(reg.host))
    p = Pod(env, reg)
    yield p
    if env.daemon.proc is not None and env.daemon.proc.poll() is None:
        for c in p.list():
            p.remove(c.id)


def cat_container(pod, name="cat"):
    return pod.run(name, command=["/bin/cat"], stdin=True, stdin_once=True)


def test_attach_spdy_echoes_stdin_and_ends_with_stdin(pod):
    cid = cat_container(pod)
    url = pod.cri.call("Attach", container_id=cid[:12], stdin=True, stdout=True,
                       stderr=True).url
    c, resp = sc.spdy_connect(url, V4)
    assert resp.status == 101
    ids = sc.exec_streams(c, stdin=True, stdout=True, stderr=True)
    c.send_data(ids["stdin"], b"hello\n")
    assert c.read_until(lambda: c.data.get(ids["stdout"], b"") == b"hello\n")
    # stdin_once: closing our stdin closes the container's, cat exits
    c.send_data(ids["stdin"], b"", fin=True)
    assert c.read_until(lambda: ids["error"] in c.fin)
    c.close()
    assert json.loads(bytes(c.data[ids["error"]]))["status"] == "Success"
    assert pod.wait_exit(cid).exit_code == 0


def test_attach_websocket_v5(pod):
    cid = cat_container(pod, "cat5")
    url = pod.cri.call("Attach", container_id=cid, stdin=True, stdout=True).url
    w, _ = sc.ws_connect(url, ["v5.channel.k8s.io"])
    w.send_channel(0, b"over websocket\n")
    got = b""
    while got != b"over websocket\n":
        m = w.read_message()
        if m[0] == 1:
            got += m[1]
    w.send_frame(2, bytes([255, 0]))  # v5 close signal: end stdin
    out, msgs = w.collect()
    w.close()
    assert json.loads(out[3])["status"] == "Success"
    assert msgs[-1] == ("close", 1000)
    assert pod.wait_exit(cid).exit_code == 0


def test_exec_and_attach_need_a_running_container(pod):
    cid = pod.create("idle", command=["/bin/cat"], stdin=True)
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, pod.cri.call, "Attach", container_id=cid,
                 stdout=True)
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, pod.cri.call, "Exec", container_id=cid,
                 cmd=["true"], stdout=True)
    pod.start(cid)
    url = pod.cri.call("Exec", container_id=cid, cmd=["true"], stdout=True).url
    c, _ = sc.spdy_connect(url, V4)
    ids = sc.exec_streams(c, stdout=True, stderr=False)
    assert c.read_until(lambda: ids["error"] in c.fin)
    c.close()
    assert json.loads(bytes(c.data[ids["error"]]))["status"] == "Success"
    pod.stop(cid, timeout=2)


def sleeper(pod, name="box"):
    return pod.run(name, command=["/bin/sleep", "100000"])


def exit3_status(st):
    assert st["status"] == "Failure" and st["reason"] == "NonZeroExitCode", st
    assert st["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


SH_EXIT3 = ["/bin/sh", "-c", "echo -n hello; echo -n oops >&2; exit 3"]


def test_exec_spdy_pipes_exit_code(pod):
    cid = sleeper(pod)
    url = pod.cri.call("Exec", container_id=cid[:13], cmd=SH_EXIT3, stdout=True,
                       stderr=True).url
    c, resp = sc.spdy_connect(url, V4)
    assert resp.status == 101
    ids = sc.exec_streams(c, stdout=True, stderr=True)
    assert c.read_until(lambda: ids["error"] in c.fin)
    c.close()
    assert bytes(c.data[ids["stdout"]]) == b"hello"
    assert bytes(c.data[ids["stderr"]]) == b"oops"
    exit3_status(json.loads(bytes(c.data[ids["error"]])))


def test_exec_websocket_v5_exit_code(pod):
    cid = sleeper(pod)
    url = pod.cri.call("Exec", container_id=cid, cmd=SH_EXIT3, stdout=True, stderr=True).url
    w, resp = sc.ws_connect(url, ["v5.channel.k8s.io"])
    assert resp.status == 101 and w.protocol == "v5.channel.k8s.io"
    out, msgs = w.collect()
    w.close()
    assert out.get(1) == b"hello" and out.get(2) == b"oops"
    exit3_status(json.loads(out[3]))
    assert msgs[-1] == ("close", 1000)


def test_exec_stdin_pipe_round_trip_1mb(pod):
    """cat in the container: 1 MiB in, the same bytes out (no loss, no
    deadlock between stdin and stdout), stdin EOF ends cat with status 0."""
    cid = sleeper(pod)
    url = pod.cri.call("Exec", container_id=cid, cmd=["/bin/cat"], stdin=True, stdout=True,
                       stderr=True).url
    c, _ = sc.spdy_connect(url, V4)
    ids = sc.exec_streams(c, stdin=True, stdout=True, stderr=True)
    blob = os.urandom(1 << 20)
    # read while writing, as kubectl does (its streams are goroutines)
    reader = threading.Thread(target=c.read_until, args=(lambda: ids["error"] in c.fin,))
    reader.start()
    for i in range(0, len(blob), 32768):  # kubectl's chunk size
        c.send_data(ids["stdin"], blob[i:i + 32768])
    c.send_data(ids["stdin"], b"", fin=True)
    reader.join(60)
    assert ids["error"] in c.fin
    c.close()
    got = bytes(c.data.get(ids["stdout"], b""))
    assert len(got) == len(blob) and hashlib.sha256(got).digest() == hashlib.sha256(blob).digest()
    assert json.loads(bytes(c.data[ids["error"]]))["status"] == "Success"


def test_exec_big_output_to_a_stalled_client_arrives_whole(pod):
    """16 MiB of random bytes written in the container, read through the
    real exec backend (monitor, attach packets, session queue) by a client
    that stops reading for a second first: every byte arrives, in order
    (sha256 against the container's own sha256sum)."""
    cid = sleeper(pod, "bigout")
    size = 16 << 20
    r = exec_sync(pod, cid, ["/bin/sh", "-c", "head -c %d /dev/urandom > /blob && "
                             "sha256sum /blob" % size])
    assert r.exit_code == 0, r.stderr
    want = r.stdout.split()[0].decode()
    url = pod.cri.call("Exec", container_id=cid, cmd=["/bin/cat", "/blob"], stdout=True,
                       stderr=True).url
    c, _ = sc.spdy_connect(url, V4)
    c.sock.settimeout(60)
    ids = sc.exec_streams(c, stdout=True, stderr=True)
    time.sleep(1)  # not reading: the output waits in the monitor and the pipes
    assert c.read_until(lambda: ids["error"] in c.fin)
    c.close()
    assert not c.reset and not c.data.get(ids["stderr"]), (c.reset, c.data.get(ids["stderr"]))
    assert c.received.get(ids["stdout"], 0) == size
    assert c.digest[ids["stdout"]].hexdigest() == want
    assert json.loads(bytes(c.data[ids["error"]]))["status"] == "Success"


def read_stdout_until(c, sid, want, timeout=10):
    c.sock.settimeout(timeout)
    try:
        return c.read_until(lambda: want in bytes(c.data.get(sid, b"")))
    except OSError:
        return False
    finally:
        c.sock.settimeout(None)


def test_exec_tty_stdin_resize_and_exit(pod):
    cid = sleeper(pod)
    url = pod.cri.call("Exec", container_id=cid, cmd=["/bin/sh"], tty=True, stdin=True,
                       stdout=True).url
    c, _ = sc.spdy_connect(url, V4)
    ids = sc.exec_streams(c, stdin=True, stdout=True, stderr=False, tty=True)
    assert "resize" in ids and "stderr" not in ids
    c.send_data(ids["resize"], b'{"Width":123,"Height":45}')
    # the resize and the input travel on different sockets: ask until seen
    for _ in range(20):
        c.send_data(ids["stdin"], b"stty size\n")
        if read_stdout_until(c, ids["stdout"], b"45 123", timeout=0.5):
            break
    assert b"45 123" in bytes(c.data[ids["stdout"]])
    c.send_data(ids["stdin"], b"echo hel''lo; tty\n")
    assert read_stdout_until(c, ids["stdout"], b"hello")
    assert read_stdout_until(c, ids["stdout"], b"/dev/pts/")
    c.send_data(ids["stdin"], b"exit 3\n")
    assert c.read_until(lambda: ids["error"] in c.fin)
    c.close()
    exit3_status(json.loads(bytes(c.data[ids["error"]])))


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def settle(pred, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


@pytest.mark.parametrize("tty,ws", [(False, False), (True, False), (False, True)])
def test_exec_client_disconnect_kills_process(pod, tty, ws):
    cid = sleeper(pod)
    dpid = pod.env.daemon.proc.pid
    # one exec first, so lazily opened daemon fds do not count as leaks
    exec_sync(pod, cid, ["true"])
    before = fd_count(dpid)
    marker = "4242%d%d" % (tty, ws)
    cmdline = ("/bin/sleep\0%s\0" % marker).encode()
    url = pod.cri.call("Exec", container_id=cid, cmd=["/bin/sleep", marker], tty=tty,
                       stdin=True, stdout=True, stderr=not tty).url
    if ws:
        c, _ = sc.ws_connect(url, ["v5.channel.k8s.io"])
    else:
        c, _ = sc.spdy_connect(url, V4)
        sc.exec_streams(c, stdin=True, stdout=True, stderr=not tty, tty=tty)
    assert settle(lambda: procs_with_cmdline(cmdline)), "exec'd process never started"
    c.close()  # mid-stream, no FIN, no close frame
    assert settle(lambda: not procs_with_cmdline(cmdline)), "exec'd process left behind"
    # and as the container sees it (its image has no ps)
    ps = exec_sync(pod, cid, ["/bin/sh", "-c", "cat /proc/[0-9]*/cmdline"]).stdout
    assert b"100000" in ps and marker.encode() not in ps, ps
    assert settle(lambda: fd_count(dpid) <= before), (before, os.listdir("/proc/%d/fd" % dpid))
