"""Recursive read-only mounts (CRI Mount.recursive_read_only, issue 13):
through the runtime's "rro" option when `runc features` lists it (Debian's
runc 1.1.5 does), else through cricket-rro, a createContainer hook that runs
mount_setattr with AT_RECURSIVE in the container's mount namespace (tested
with a runc wrapper that hides "rro"). The handler feature flag says which
is possible; readonly=false and a non-private propagation are refused."""
import json
import os
import shutil
import subprocess
import tempfile

import grpc
import pytest

import api_pb2
import test_sandbox
from registry import registry_config
from test_container import Pod, expect_error, pod, reg  # noqa: F401 (fixtures)
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
    assert "rro" in m["options"] and "hooks" not in spec  # runc applies it
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


HIDE_RRO = """#!/bin/sh
# runc, except that `features` does not list "rro"
for a in "$@"; do
    if [ "$a" = features ]; then
        %(runc)s "$@" | grep -v '"rro"'
        exit 0
    fi
done
exec %(runc)s "$@"
"""


def custom_pod(envf, reg, with_hook):
    """A pod whose runtime hides "rro"; cricket-rro beside cricket-conmon
    (the build dir) or not (cricket-conmon copied alone elsewhere)."""
    env = envf(extra_config=registry_config(reg.host))
    helpers = os.path.join(env.base, "helpers")
    os.makedirs(helpers)
    runc = os.path.join(helpers, "runc-no-rro")
    with open(runc, "w") as f:
        f.write(HIDE_RRO % {"runc": test_sandbox.bundle.RUNC})
    os.chmod(runc, 0o755)
    conmon = test_sandbox.CONMON
    if not with_hook:
        shutil.copy(conmon, helpers)
        conmon = os.path.join(helpers, "cricket-conmon")
    dropins = os.path.join(env.base, "cricket.d")
    os.makedirs(dropins, exist_ok=True)
    with open(os.path.join(dropins, "50-rro.yaml"), "w") as f:
        f.write("runtime:\n  conmon_path: %s\n  handlers:\n    runc:\n      path: %s\n"
                % (conmon, runc))
    env.restart()
    return Pod(env, reg)


def rro_flag(p):
    return {h.name: h for h in p.cri.call("Status").runtime_handlers}[
        ""].features.recursive_read_only_mounts


def test_through_the_hook_when_the_runtime_lacks_rro(envf, reg, tree):
    p = custom_pod(envf, reg, with_hook=True)
    assert rro_flag(p)
    cid = p.run("rro", command=["sh", "-c", WRITE], mounts=[mount(tree)])
    assert p.output(cid) == ["/data/x:ro", "/data/sub/x:ro"]
    spec = json.loads(p.status(cid, verbose=True).info["info"])["runtimeSpec"]
    (m,) = [m for m in spec["mounts"] if m["destination"] == "/data"]
    assert "rro" not in m["options"]
    (hook,) = spec["hooks"]["createContainer"]
    assert hook["path"] == os.path.join(os.path.dirname(test_sandbox.CONMON), "cricket-rro")
    assert hook["args"] == ["cricket-rro", spec["root"]["path"], "/data"]
    p.remove(cid)


def test_without_a_way_the_flag_is_false_and_rro_refused(envf, reg, tree):
    """No runtime "rro" and no cricket-rro beside cricket-conmon: the flag
    says false and a recursive read-only mount is refused naming it, with
    nothing left behind; a plain read-only mount still works."""
    p = custom_pod(envf, reg, with_hook=False)
    assert not rro_flag(p)
    d = expect_error(grpc.StatusCode.UNKNOWN, p.create, "rro", command=["true"],
                     mounts=[mount(tree)])
    assert "mount `/data`: recursive read-only is not supported" in d, d
    assert p.list() == []
    cid = p.run("ro", command=["sh", "-c", WRITE], mounts=[mount(tree, rro=False)])
    assert p.output(cid) == ["/data/x:ro", "/data/sub/x:rw"]
    p.remove(cid)
