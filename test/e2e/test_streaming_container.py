"""Streaming against real containers (real runc, monitors and their attach
sockets): Attach over SPDY and WebSocket to a container that echoes its
stdin, and what Exec does while the monitor has no interactive exec mode."""
import json

import grpc
import pytest

import api_pb2
import streaming_clients as sc
from test_container import Pod, expect_error, reg  # noqa: F401 (fixture)
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
    # the URL is issued; the stream reports that exec is not wired to the
    # monitor yet (an InternalError status, not a hang)
    url = pod.cri.call("Exec", container_id=cid, cmd=["true"], stdout=True).url
    c, _ = sc.spdy_connect(url, V4)
    ids = sc.exec_streams(c, stdout=True, stderr=False)
    assert c.read_until(lambda: ids["error"] in c.fin)
    c.close()
    st = json.loads(bytes(c.data[ids["error"]]))
    assert st["status"] == "Failure" and "interactive exec" in st["message"]
    pod.stop(cid, timeout=2)
