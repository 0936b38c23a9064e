"""Containers against hostile input (security issue 10): image files that
would block or exhaust CreateContainer, log paths planted with symlinks,
ExecSync output that would not fit one gRPC message, and a privileged
container in a pod that was not created privileged. Each test checks the
error names the culprit and that nothing is left behind (the sandbox and
pod fixtures' leak checks plus ours)."""
import io
import os
import tarfile
import tempfile
import time

import grpc
import pytest

import api_pb2
from registry import busybox_registry, push_image, registry_config, rmtree
from test_container import Pod, exec_sync, expect_error, pod  # noqa: F401 (fixture)
from test_sandbox import envf, mounts_under, pytestmark  # noqa: F401 (fixture, skip mark)


def layer_with(entries):
    """A tar layer of (name, TarInfo type, data or size) entries."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mode, ti.mtime, ti.type = 0o644, 1700000000, kind
            if kind == tarfile.REGTYPE:
                ti.size = len(data)
            t.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


@pytest.fixture(scope="module")
def reg():
    with busybox_registry("cricket-sreg-") as r:
        bb = r.busybox_layer
        fifos = layer_with([("etc/passwd", tarfile.FIFOTYPE, None),
                            ("etc/group", tarfile.FIFOTYPE, None)])
        r.fifo = push_image(r, "library/fifo", "1", [bb, fifos])
        # 8 MiB of zeros (compresses to little) past the 4 MiB bound
        big = layer_with([("etc/group", tarfile.REGTYPE, bytes(8 << 20))])
        r.big = push_image(r, "library/biggroup", "1", [bb, big])
        yield r


def container_mounts(pod):
    return [m for m in mounts_under(pod.env.base) if "/containers/" in m]


def assert_nothing_left(pod):
    assert pod.list() == []
    ctr_dir = os.path.join(pod.env.daemon.root, "containers")
    assert not os.path.isdir(ctr_dir) or os.listdir(ctr_dir) == []
    bundles = os.path.join(pod.env.daemon.runroot, "containers")
    assert not os.path.isdir(bundles) or os.listdir(bundles) == []
    assert container_mounts(pod) == []


# ---- item 4: image files never block CreateContainer ----

def test_fifo_passwd_is_refused_at_once(pod):
    pod.pull("fifo:1")
    with pytest.raises(grpc.RpcError) as e:
        cfg = api_pb2.ContainerConfig(metadata=api_pb2.ContainerMetadata(name="f"),
                                      image=api_pb2.ImageSpec(image="fifo:1"),
                                      command=["true"], log_path="f.log")
        # a short deadline: a hang shows up as DEADLINE_EXCEEDED
        pod.cri.call("CreateContainer", timeout=20, pod_sandbox_id=pod.id, config=cfg,
                     sandbox_config=pod.cfg)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value
    assert "/etc/passwd" in e.value.details() and "regular file" in e.value.details()
    assert_nothing_left(pod)
    # the pod still works and goes away cleanly
    cid = pod.create("ok", command=["true"])
    pod.remove(cid)
    pod.env.stop(pod.id)
    pod.env.remove(pod.id)
    assert pod.env.list() == [] and container_mounts(pod) == []


def test_huge_group_is_refused(pod):
    pod.pull("biggroup:1")
    d = expect_error(grpc.StatusCode.INVALID_ARGUMENT, pod.create, "g", image="biggroup:1",
                     command=["true"])
    assert "/etc/group" in d and "larger than" in d
    assert_nothing_left(pod)


# ---- item 6: logs never follow links ----

def test_log_symlink_is_refused_at_create(pod):
    os.makedirs(pod.logs, exist_ok=True)
    fd, victim = tempfile.mkstemp(prefix="cricket-victim-")
    os.close(fd)
    vdir = tempfile.mkdtemp(prefix="cricket-victim-dir-")
    try:
        os.symlink(victim, os.path.join(pod.logs, "evil.log"))
        d = expect_error(grpc.StatusCode.INVALID_ARGUMENT, pod.create, "evil",
                         command=["echo", "pwned"], log_path="evil.log")
        assert "evil.log" in d and "symlink" in d
        assert_nothing_left(pod)
        # a planted directory link in the middle of log_path
        os.symlink(vdir, os.path.join(pod.logs, "sub"))
        d = expect_error(grpc.StatusCode.INVALID_ARGUMENT, pod.create, "evil2",
                         command=["echo", "pwned"], log_path="sub/0.log")
        assert "sub" in d and "symlink" in d
        assert_nothing_left(pod)
        assert os.path.getsize(victim) == 0 and os.listdir(vdir) == []
        # a plain nested log path still works
        cid = pod.create("nested", command=["echo", "fine"], log_path="n/0.log")
        pod.start(cid)
        assert pod.output(cid) == ["fine"]
    finally:
        os.unlink(victim)
        rmtree(vdir)


def test_log_symlink_is_refused_at_reopen(pod):
    fd, victim = tempfile.mkstemp(prefix="cricket-victim-")
    os.close(fd)
    try:
        cid = pod.run("rot", command=["sh", "-c", "while true; do echo line; sleep 0.1; done"])
        log = pod.status(cid).status.log_path
        os.rename(log, log + ".1")
        os.symlink(victim, log)
        d = expect_error(grpc.StatusCode.INVALID_ARGUMENT, pod.cri.call, "ReopenContainerLog",
                         container_id=cid)
        assert log in d and "symlink" in d
        # the monitor keeps the old file; the victim never gets a byte
        size = os.path.getsize(log + ".1")
        exec_sync(pod, cid, ["sleep", "0.5"])
        assert os.path.getsize(log + ".1") > size
        assert os.path.getsize(victim) == 0
        os.unlink(log)
        pod.cri.call("ReopenContainerLog", container_id=cid)
        assert os.path.isfile(log) and not os.path.islink(log)
        pod.stop(cid, timeout=0)
        assert os.path.getsize(victim) == 0
    finally:
        os.unlink(victim)


# ---- item 7: writable-layer usage is walked at most every 2 s ----

def test_writable_layer_usage_is_cached_briefly(pod):
    cid = pod.run("du", command=["sleep", "1000"])
    upper = os.path.join(pod.env.daemon.root, "containers", cid, "upper")
    t0 = time.monotonic()
    s1 = pod.cri.call("ContainerStats", container_id=cid).stats.writable_layer
    with open(os.path.join(upper, "blob"), "wb") as f:
        f.write(os.urandom(4 << 20))
    os.link(os.path.join(upper, "blob"), os.path.join(upper, "blob2"))
    s2 = pod.cri.call("ListContainerStats").stats[0].writable_layer
    if time.monotonic() - t0 >= 1.5:
        pytest.skip("the machine is too slow to see the 2 s cache")
    # the same walk answers both: same figures, same timestamp
    assert (s2.timestamp, s2.used_bytes.value, s2.inodes_used.value) == \
        (s1.timestamp, s1.used_bytes.value, s1.inodes_used.value)
    time.sleep(2.1)
    s3 = pod.cri.call("ContainerStats", container_id=cid).stats.writable_layer
    assert s3.timestamp > s1.timestamp
    grew = s3.used_bytes.value - s1.used_bytes.value
    assert 4 << 20 <= grew < 8 << 20  # the hard link counts once
    assert s3.inodes_used.value == s1.inodes_used.value + 1
    pod.stop(cid, timeout=0)


# ---- item 8: ExecSync's reply fits the 16 MiB message limit ----

def test_exec_sync_output_fits_one_message(pod):
    cid = pod.run("big", command=["sleep", "1000"])
    r = exec_sync(pod, cid, ["sh", "-c", "busybox head -c 12582912 /dev/zero; "
                             "busybox head -c 12582912 /dev/zero >&2; exit 3"], timeout=60)
    assert r.exit_code == 3
    assert r.ByteSize() < 16 << 20
    # both streams kept a fair share, from their start
    assert len(r.stdout) >= 7 << 20 and len(r.stderr) >= 7 << 20
    assert r.stdout == bytes(len(r.stdout)) and r.stderr == bytes(len(r.stderr))
    # a lone stream may use (nearly) all of it
    r = exec_sync(pod, cid, ["sh", "-c", "busybox head -c 20000000 /dev/zero"], timeout=60)
    assert r.ByteSize() < 16 << 20 and len(r.stdout) > 15 << 20 and r.stderr == b""
    pod.stop(cid, timeout=0)


# ---- item 10: privileged is checked against the stored pod ----

def priv_ctr(name):
    sc = api_pb2.LinuxContainerSecurityContext(privileged=True)
    return dict(command=["true"], linux=api_pb2.LinuxContainerConfig(security_context=sc))


def test_privileged_container_needs_a_privileged_pod(pod):
    liar = api_pb2.PodSandboxConfig()
    liar.CopyFrom(pod.cfg)
    liar.linux.security_context.privileged = True
    d = expect_error(grpc.StatusCode.INVALID_ARGUMENT, pod.create, "p", sandbox_cfg=liar,
                     **priv_ctr("p"))
    assert "privileged" in d
    assert_nothing_left(pod)


def test_privileged_pod_allows_privileged_container_after_restart(envf, reg):
    env = envf(extra_config=registry_config(reg.host))
    p = Pod.__new__(Pod)
    p.env, p.cri, p.reg = env, env.cri, reg
    p.logs = os.path.join(env.base, "logs")
    p.pull("busybox")
    p.cfg = env.config("pp", log_directory=p.logs)
    p.cfg.linux.security_context.privileged = True
    p.id = env.run(p.cfg)
    env.restart()
    p.cri = env.cri
    # the request's copy of the pod config no longer matters
    cid = p.create("p", sandbox_cfg=env.config("pp", log_directory=p.logs), **priv_ctr("p"))
    p.remove(cid)
