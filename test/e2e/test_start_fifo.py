"""StartContainer without `runc start` (issue 15, CPU per pod): the daemon
reads the container's exec fifo itself, as `runc start` would. The runtime
is a wrapper that records its verbs, so the tests see that no `start` ran,
and that runc itself then reports the container running (the fifo is gone,
which is how runc, and the recovery that asks it, tell running from
created)."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import grpc
import pytest

import bundle
from conftest import api_pb2
from registry import registry_config
from test_container import Pod, expect_error, reg  # noqa: F401 (fixture)
from test_sandbox import Env, pytestmark  # noqa: F401 (skip mark)


@pytest.fixture
def wpod(reg):  # noqa: F811 (reg is a fixture)
    base = tempfile.mkdtemp(prefix="sf-", dir="/tmp")
    env = Env(base, extra_config=registry_config(reg.host))
    verbs = os.path.join(base, "verbs")
    wrapper = os.path.join(base, "logging-runc")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\necho "$*" >> %s\nexec %s "$@"\n' % (verbs, bundle.RUNC))
    os.chmod(wrapper, 0o755)
    with open(env.daemon.config) as f:
        text = f.read()
    with open(env.daemon.config, "w") as f:
        f.write(text.replace("path: %s\n" % bundle.RUNC, "path: %s\n" % wrapper))
    env.start()
    p = Pod(env, reg)
    p.verbs = verbs
    try:
        yield p
        for c in p.list():
            p.remove(c.id)
        env.stop(p.id)
        env.remove(p.id)
        assert not env.leaks(), env.leaks()
    finally:
        env.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def runc_state(env, cid):
    out = subprocess.run([bundle.RUNC, "--root", env.runc_root, "state", cid],
                         capture_output=True, check=True).stdout
    return json.loads(out)["status"]


def started_by_runc(p, cid):
    with open(p.verbs) as f:
        return [line for line in f if " start " in line and cid in line]


def test_start_reads_the_exec_fifo(wpod):
    cid = wpod.create("f", command=["sleep", "1000"])
    assert runc_state(wpod.env, cid) == "created"
    fifo = os.path.join(wpod.env.runc_root, cid, "exec.fifo")
    assert os.path.exists(fifo)
    wpod.start(cid)
    assert started_by_runc(wpod, cid) == []
    assert not os.path.exists(fifo)
    assert runc_state(wpod.env, cid) == "running"
    st = wpod.status(cid).status
    assert st.state == api_pb2.CONTAINER_RUNNING
    # the process runs the command (not runc init any more)
    pid = int(json.loads(subprocess.run(
        [bundle.RUNC, "--root", wpod.env.runc_root, "state", cid],
        capture_output=True, check=True).stdout)["pid"])
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        assert f.read() == b"sleep\x001000\x00"
    # and a second start is refused, as before
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, wpod.start, cid)
    wpod.stop(cid, timeout=0)


def test_start_of_a_container_whose_init_died(wpod):
    """The init dies between create and start: StartContainer answers (an
    error, or the exit seen first), never hangs."""
    cid = wpod.create("d", command=["sleep", "1000"])
    pid = int(json.loads(subprocess.run(
        [bundle.RUNC, "--root", wpod.env.runc_root, "state", cid],
        capture_output=True, check=True).stdout)["pid"])
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)  # not a timing assertion: either order below is fine
    t0 = time.time()
    try:
        wpod.start(cid)
        started = True
    except grpc.RpcError as e:
        started = False
        assert e.code() in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INVALID_ARGUMENT), e
    assert time.time() - t0 < 50  # answered well within the RPC timeout (60 s)
    assert not started
    st = wpod.wait_exit(cid)
    assert st.state == api_pb2.CONTAINER_EXITED
