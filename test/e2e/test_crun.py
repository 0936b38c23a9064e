"""crun as a runtime handler (issue 15).

A `crun` handler (its own state root) beside the default runc one: a pod,
a container with a memory limit, ExecSync and a restart, all through crun,
then Stop/Remove with nothing left in crun's root.

The handler's binary is contrib/crun/crun-hybrid: on a hybrid cgroup host
whose cgroup2 mount lists controllers (this Debian 12 host: hugetlb), crun
refuses every container ("cgroups in hybrid mode not supported"), with any
--cgroup-manager; the wrapper runs it in a mount namespace of its own where
the cgroup2 mount is hidden, so crun uses the v1 hierarchies as runc does
(oci/README.md, "crun"). Elsewhere it runs crun as it is.

Skipped only when a probe (a throwaway `run` of a busybox bundle through
the same binary the handler uses) fails: the skip names what the probe
printed."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

import api_pb2
import bundle
from registry import busybox_registry, registry_config
from test_container import EXITED, RUNNING
from test_sandbox import READY, Env, pytestmark  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
WRAPPER = os.path.join(HERE, "..", "..", "contrib", "crun", "crun-hybrid")
CRUN = shutil.which("crun")


def probe(binary):
    """None when binary (as a runtime) runs a container here, else why not."""
    base = tempfile.mkdtemp(prefix="crun-probe-", dir="/tmp")
    try:
        b = bundle.make_bundle(os.path.join(base, "b"), ["/bin/true"],
                               cgroups_path="/cricket-crun-probe-%d" % os.getpid(),
                               memory_limit=64 << 20)
        r = subprocess.run([binary, "--root", os.path.join(base, "root"), "run", "--bundle", b,
                            "probe"], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            return "`%s run` failed (%d): %s" % (binary, r.returncode,
                                                 (r.stderr + r.stdout).strip())
        return None
    finally:
        shutil.rmtree(base, ignore_errors=True)


def skip_reason():
    if not CRUN:
        return "crun not installed (apt-get install crun)"
    return probe(WRAPPER)


@pytest.fixture(scope="module")
def reg():
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with busybox_registry("cricket-crun-reg-") as r:
        yield r


@pytest.fixture
def env(reg):
    base = tempfile.mkdtemp(prefix="crun-", dir="/tmp")
    e = Env(base, extra_config=registry_config(reg.host))
    e.crun_root = os.path.join(base, "crun")
    with open(e.daemon.config) as f:
        text = f.read()
    anchor = "      root: %s\n" % e.runc_root
    assert anchor in text
    text = text.replace(anchor, anchor + "    crun:\n      path: %s\n      root: %s\n" %
                        (os.path.abspath(WRAPPER), e.crun_root), 1)
    with open(e.daemon.config, "w") as f:
        f.write(text)
    try:
        yield e.start()
        for p in e.list():
            e.remove(p.id)
        e.cri.close()
        assert e.daemon.stop() == 0, e.daemon.logs()[-3000:]
        assert crun_list(e) == []
        assert e.leaks() == {}
    finally:
        e.cleanup()
        for cid in crun_list(e):
            subprocess.run([CRUN, "--root", e.crun_root, "delete", "--force", cid])
        shutil.rmtree(base, ignore_errors=True)


def crun_list(e):
    if not os.path.isdir(e.crun_root):
        return []
    r = subprocess.run([CRUN, "--root", e.crun_root, "list", "-q"], capture_output=True,
                       text=True)
    return r.stdout.split()


def cgroup_v1_path(pid, controller):
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return path
    raise AssertionError("pid %d has no %s cgroup" % (pid, controller))


def test_pod_container_exec_restart_through_crun(env):
    cri = env.cri
    cri.call("PullImage", timeout=120, image=api_pb2.ImageSpec(image="busybox"))
    cfg = env.config("crun-pod", log_directory=os.path.join(env.base, "logs"))
    pod = env.run(cfg, handler="crun")
    assert env.status(pod).status.state == READY
    # the infra is crun's, not runc's
    assert pod in crun_list(env) and pod not in env.runc_list()
    ccfg = api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name="c"), image=api_pb2.ImageSpec(image="busybox"),
        command=["sleep", "600"], log_path="c.log",
        linux=api_pb2.LinuxContainerConfig(
            resources=api_pb2.LinuxContainerResources(memory_limit_in_bytes=96 << 20)))
    cid = cri.call("CreateContainer", timeout=60, pod_sandbox_id=pod, config=ccfg,
                   sandbox_config=cfg).container_id
    cri.call("StartContainer", timeout=60, container_id=cid)
    assert cid in crun_list(env)
    st = cri.call("ContainerStatus", container_id=cid, verbose=True)
    assert st.status.state == RUNNING
    pid = json.loads(st.info["info"])["pid"]
    # the limit is applied (through the v1 memory hierarchy on a hybrid host)
    mem = cgroup_v1_path(pid, "memory") if os.path.isdir("/sys/fs/cgroup/memory") else None
    if mem is not None:
        with open("/sys/fs/cgroup/memory%s/memory.limit_in_bytes" % mem) as f:
            assert int(f.read()) == 96 << 20
    fn, req = cri.stub("ExecSync")
    r = fn(req(container_id=cid, cmd=["sh", "-c", "echo out; echo err >&2; exit 3"],
               timeout=10), timeout=40)
    assert (r.exit_code, r.stdout, r.stderr) == (3, b"out\n", b"err\n")
    # recovery through crun's state: the container and the pod come back
    env.restart()
    assert cri is not env.cri
    cri = env.cri
    assert cri.call("ContainerStatus", container_id=cid).status.state == RUNNING
    assert env.status(pod).status.state == READY
    fn, req = cri.stub("ExecSync")
    assert fn(req(container_id=cid, cmd=["true"], timeout=10), timeout=40).exit_code == 0
    fn, req = cri.stub("StopContainer")
    fn(req(container_id=cid, timeout=0), timeout=40)
    assert cri.call("ContainerStatus", container_id=cid).status.state == EXITED
    cri.call("RemoveContainer", container_id=cid)
    env.stop(pod)
    env.remove(pod)
    assert crun_list(env) == []
