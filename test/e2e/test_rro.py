"""Recursive read-only mounts (CRI Mount.recursive_read_only, issue 13):
through the runtime's "rro" option when it has one, else (runc 1.1 here)
through cricket-rro, a createContainer hook that runs mount_setattr with
AT_RECURSIVE in the container's mount namespace. The handler feature flag
says so; readonly=false and a non-private propagation are refused."""
import json
import os
import subprocess
import tempfile

import grpc
import pytest

import api_pb2
from test_container import expect_error, pod, reg  # noqa: F401 (fixtures)
from test_sandbox import envf, pytestmark  # noqa: F401 (fixture, skip mark)


@pytest.fixture
def tree():
    """A host dir with a tmpfs mounted below it (a submount a plain
    read-only bind leaves writable)."""
    top = tempfile.mkdtemp(prefix="cricket-rro-")
    sub = os.path.join(top, "sub")
    os.mkdir(sub)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", sub], check=True)
    try:
        yield top
    finally:
        subprocess.run(["umount", "-l", sub], check=False)
        subprocess.run(["rm", "-rf", "--one-file-system", top], check=False)


def mount(host, ro=True, rro=True, prop=api_pb2.PROPAGATION_PRIVATE):
    return api_pb2.Mount(container_path="/data", host_path=host, readonly=ro,
                         recursive_read_only=rro, propagation=prop)


WRITE = ("for f in /data/x /data/sub/x; do touch $f 2>/dev/null && echo $f:rw || echo $f:ro;"
         " done")


def test_feature_flag_is_set(pod):
    st = pod.cri.call("Status")
    handlers = {h.name: h for h in st.runtime_handlers}
    assert handlers[""].features.recursive_read_only_mounts


def test_recursive_read_only_covers_submounts(pod, tree):
    cid = pod.run("rro", command=["sh", "-c", WRITE], mounts=[mount(tree)])
    assert pod.output(cid) == ["/data/x:ro", "/data/sub/x:ro"]
    spec = json.loads(pod.status(cid, verbose=True).info["info"])["runtimeSpec"]
    (m,) = [m for m in spec["mounts"] if m["destination"] == "/data"]
    if "rro" not in m["options"]:  # runc < 1.2: cricket-rro applies it
        (hook,) = spec["hooks"]["createContainer"]
        assert hook["path"].endswith("/cricket-rro")
        assert hook["args"] == ["cricket-rro", spec["root"]["path"], "/data"]
    # without recursive_read_only the submount stays writable
    cid = pod.run("ro", command=["sh", "-c", WRITE], mounts=[mount(tree, rro=False)])
    assert pod.output(cid) == ["/data/x:ro", "/data/sub/x:rw"]
    spec = json.loads(pod.status(cid, verbose=True).info["info"])["runtimeSpec"]
    assert "hooks" not in spec
    # the host side is untouched
    with open(os.path.join(tree, "sub", "host"), "w") as f:
        f.write("ok")


@pytest.mark.parametrize("kw,field", [
    ({"ro": False}, "mounts[0].recursive_read_only needs readonly"),
    ({"prop": api_pb2.PROPAGATION_HOST_TO_CONTAINER}, "needs propagation PROPAGATION_PRIVATE"),
    ({"prop": api_pb2.PROPAGATION_BIDIRECTIONAL}, "needs propagation PROPAGATION_PRIVATE"),
])
def test_refusals(pod, tree, kw, field):
    d = expect_error(grpc.StatusCode.INVALID_ARGUMENT, pod.create, "bad",
                     command=["true"], mounts=[mount(tree, **kw)])
    assert field in d, d
    assert pod.list() == []
