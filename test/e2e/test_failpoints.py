"""Every failpoint of cricketd-test (issue 11): a whole life (PullImage,
RunPodSandbox, CreateContainer, StartContainer, StopContainer,
RemoveContainer, StopPodSandbox, RemovePodSandbox) runs with
CRICKET_FAILPOINT=<point>, the daemon SIGKILLs itself there, it is
restarted, and then the object the call was making is either complete and
usable or absent, and after removing everything through the CRI nothing is
left: mounts, netns pins, monitors, veths, IP leases, portmap rules, runc
state, bundles, records, blobs/ingest, layers/tmp.

The list of points comes from the daemon (CRICKET_FAILPOINT=list), and
every testhook_failpoint("...") in the sources must be in it."""
import os
import re
import signal
import subprocess

import grpc
import pytest

from conftest import CRICKETD_TEST, api_pb2
from crashenv import crash_envs
from registry import busybox_registry, registry_config
import test_sandbox

pytestmark = test_sandbox.pytestmark
SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def failpoints():
    if not CRICKETD_TEST or not os.path.exists(CRICKETD_TEST):
        return []
    out = subprocess.run([CRICKETD_TEST], env=dict(os.environ, CRICKET_FAILPOINT="list"),
                         capture_output=True, text=True, timeout=30)
    return out.stdout.split()


POINTS = failpoints()


def test_every_failpoint_in_the_sources_is_listed():
    used = set()
    for d in ("server", "cni", "common", "oci", "conmon"):
        for root, _, files in os.walk(os.path.join(SRC, d)):
            for f in files:
                if f.endswith(".c") and not f.startswith("testhooks"):
                    with open(os.path.join(root, f)) as fh:
                        used |= set(re.findall(r'testhook_failpoint\("([^"]+)"\)', fh.read()))
    assert POINTS, "cricketd-test lists no failpoint"
    assert used == set(POINTS), (sorted(used - set(POINTS)), sorted(set(POINTS) - used))


@pytest.fixture(scope="module")
def reg():
    with busybox_registry("cricket-fpreg-") as r:
        yield r


@pytest.fixture
def fp_env(reg):
    with crash_envs("cf-", ports=True, extra_config=registry_config(reg.host)) as make:
        yield lambda env: make(env=env)


def pod_config(env, name, infra=False):
    """With a hostPort, so portmap's iptables rules are part of the life.
    The pod shares its PID namespace (a pause process) only with `infra`;
    else it is kubelet's default pid CONTAINER: no infra, ipc/uts pins."""
    if not hasattr(env, "host_port"):
        env.host_port = test_sandbox.free_port()
    ns = api_pb2.NamespaceOption(pid=api_pb2.POD if infra else api_pb2.CONTAINER)
    return env.config(name=name, port_mappings=[api_pb2.PortMapping(
        protocol=api_pb2.TCP, container_port=80, host_port=env.host_port)],
        linux=api_pb2.LinuxPodSandboxConfig(
            security_context=api_pb2.LinuxSandboxSecurityContext(namespace_options=ns)))


def life(env, tag, steps_done, infra=False):
    """The whole life; steps_done gets each step's name before it runs."""
    steps_done.append("PullImage")
    env.pull()
    cfg = pod_config(env, tag, infra)
    steps_done.append("RunPodSandbox")
    pid = env.run(cfg)
    steps_done.append("CreateContainer")
    cid = env.create(pid, cfg)
    steps_done.append("StartContainer")
    env.cri.call("StartContainer", timeout=60, container_id=cid)
    steps_done.append("StopContainer")
    env.cri.call("StopContainer", timeout=60, container_id=cid)
    steps_done.append("RemoveContainer")
    env.cri.call("RemoveContainer", timeout=60, container_id=cid)
    steps_done.append("StopPodSandbox")
    env.stop(pid)
    steps_done.append("RemovePodSandbox")
    env.remove(pid)


def check_complete_or_absent(env, step):
    """After the restart: what `step` was making is whole or gone."""
    if step == "PullImage":
        for i in env.cri.call("ListImages").images:
            st = env.cri.call("ImageStatus", image=api_pb2.ImageSpec(image=i.id))
            assert st.image.id == i.id
    env.pull()  # (again) so pods and containers can be tried
    for p in env.list():
        if step in ("RunPodSandbox",):
            assert p.state == api_pb2.SANDBOX_READY, p
        if p.state == api_pb2.SANDBOX_READY:
            st = env.status(p.id).status
            assert st.network.ip.startswith(env.net.subnet_prefix + "."), st
            cfg = pod_config(env, p.metadata.name)
            cfg.metadata.uid, cfg.metadata.attempt = p.metadata.uid, p.metadata.attempt
            cid = env.create(p.id, cfg, name="usable")
            env.cri.call("StartContainer", timeout=60, container_id=cid)
    for c in env.cri.call("ListContainers").containers:
        if step == "CreateContainer":
            assert c.state in (api_pb2.CONTAINER_CREATED, api_pb2.CONTAINER_RUNNING), c
        if c.state == api_pb2.CONTAINER_CREATED:
            env.cri.call("StartContainer", timeout=60, container_id=c.id)
        if step == "StartContainer" and c.metadata.name == "c":
            assert c.state in (api_pb2.CONTAINER_RUNNING, api_pb2.CONTAINER_EXITED), c


def cases():
    """Every point with a pod without an infra (kubelet's default), except
    the infra's own points; the pod's points again with a shared-pid pod
    (a pause process, its monitor and runc container)."""
    out = []
    for p in POINTS:
        if "infra" not in p:
            out.append(pytest.param(p, False, id=p))
        if p.split(".")[0] in ("run", "cni", "stop_pod", "remove_pod"):
            out.append(pytest.param(p, True, id=p + "-infra"))
    return out


@pytest.mark.parametrize("point,infra", cases())
def test_failpoint(fp_env, point, infra):
    env = fp_env({"CRICKET_FAILPOINT": point})
    steps = []
    with pytest.raises(grpc.RpcError):
        life(env, "fp", steps, infra)
    rc = env.wait_exit(timeout=60)
    assert rc == -signal.SIGKILL, "daemon did not die at %s (rc %s, last step %s)\n%s" % (
        point, rc, steps[-1], env.daemon.logs()[-3000:])
    assert ("failpoint %s reached" % point) in env.daemon.logs()
    env.start_again(env={k: v for k, v in env.daemon.env.items() if k != "CRICKET_FAILPOINT"})
    check_complete_or_absent(env, steps[-1])
    # the daemon still does a whole life
    life(env, "again", [], infra)
    env.remove_everything()
    env.remove_images()
    leaks = env.full_leaks()
    assert not leaks, "after %s (died in %s): %r\n%s" % (point, steps[-1], leaks,
                                                         env.daemon.logs()[-6000:])


def test_leak_check_sees_everything_a_life_leaves(fp_env):
    """The leak check can fail: a pod with a hostPort and a running
    container, left in place, shows in every category it touches."""
    env = fp_env({})
    env.pull()
    cfg = pod_config(env, "left")
    pid = env.run(cfg)
    cid = env.create(pid, cfg)
    env.cri.call("StartContainer", timeout=60, container_id=cid)
    leaks = env.full_leaks()
    for what in ("pod records", "container records", "image records", "image store", "leases",
                 "veths", "netns pins", "ipc pins", "uts pins", "mounts", "monitors", "runc containers",
                 "runc state dirs", "bundles", "container bundles", "pod dirs", "container dirs",
                 "CNI cache", "iptables"):
        assert what in leaks, (what, leaks)
    env.remove_everything()
    env.remove_images()
    assert not env.full_leaks()
