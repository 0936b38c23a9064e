"""Containers end to end: the real daemon, real runc and monitors, real
overlay rootfs mounts, a pod on a bridge and subnet of the test's own (the
sandbox fixtures), and busybox images from a real registry on 127.0.0.1.
After every test: no mount under the test's base, no monitor, no runc
state, no container dirs (the sandbox fixture's leak checks plus ours)."""
import json
import os
import signal
import time

import grpc
import pytest

import api_pb2
from registry import busybox_registry, push_image, registry_config
from test_sandbox import envf, pytestmark, sh  # noqa: F401 (fixture, skip mark)

CREATED, RUNNING, EXITED = api_pb2.CONTAINER_CREATED, api_pb2.CONTAINER_RUNNING, \
    api_pb2.CONTAINER_EXITED


@pytest.fixture(scope="module")
def reg():
    with busybox_registry("cricket-creg-") as r:
        # an image with a USER name, an entrypoint, env and a stop signal
        r.custom = push_image(r, "library/custom", "1", [r.busybox_layer], config_extra={
            "User": "www-data", "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo from-image"],
            "Env": ["PATH=/bin", "FROM_IMAGE=1", "OVER=image"], "StopSignal": "SIGUSR1"})
        yield r


class Pod:
    """A pulled image and a READY pod in a fresh env."""

    def __init__(self, env, reg):
        self.env, self.cri, self.reg = env, env.cri, reg
        self.logs = os.path.join(env.base, "logs")
        self.pull("busybox")
        self.cfg = env.config("p", hostname="pod-host", log_directory=self.logs)
        self.id = env.run(self.cfg)

    def pull(self, ref):
        return self.cri.call("PullImage", timeout=120, image=api_pb2.ImageSpec(image=ref)).image_ref

    def create(self, name="c", image="busybox", cfg_kw=None, pod=None, sandbox_cfg=None, **kw):
        kw.setdefault("log_path", name + ".log")
        cfg = api_pb2.ContainerConfig(metadata=api_pb2.ContainerMetadata(name=name),
                                      image=api_pb2.ImageSpec(image=image), **kw)
        return self.cri.call("CreateContainer", timeout=60, pod_sandbox_id=pod or self.id,
                             config=cfg, sandbox_config=sandbox_cfg or self.cfg).container_id

    def start(self, cid):
        self.cri.call("StartContainer", timeout=60, container_id=cid)

    def run(self, name="c", **kw):
        cid = self.create(name, **kw)
        self.start(cid)
        return cid

    def status(self, cid, verbose=False):
        return self.cri.call("ContainerStatus", container_id=cid, verbose=verbose)

    def wait_exit(self, cid, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            st = self.status(cid).status
            if st.state == EXITED:
                return st
            time.sleep(0.05)
        raise AssertionError("container %s did not exit: %s" % (cid, st))

    def stop(self, cid, timeout=10):
        # the request's own `timeout` field clashes with Cri.call's deadline
        fn, req_cls = self.cri.stub("StopContainer")
        fn(req_cls(container_id=cid, timeout=timeout), timeout=timeout + 30)

    def stop_future(self, cid, timeout):
        fn, req_cls = self.cri.stub("StopContainer")
        return fn.future(req_cls(container_id=cid, timeout=timeout), timeout=timeout + 30)

    def remove(self, cid):
        self.cri.call("RemoveContainer", timeout=60, container_id=cid)

    def list(self, **filt):
        f = api_pb2.ContainerFilter(**filt) if filt else None
        return list(self.cri.call("ListContainers", filter=f).containers)

    def output(self, cid):
        """stdout lines of an exited container from its CRI log file."""
        st = self.wait_exit(cid)
        with open(st.log_path) as f:
            return [l.split(" ", 3)[3].rstrip("\n") for l in f if l.split(" ")[1] == "stdout"]


@pytest.fixture
def pod(envf, reg):
    env = envf(extra_config=registry_config(reg.host))
    p = Pod(env, reg)
    yield p
    # everything goes through the CRI (the pod's removal removes its containers)
    if env.daemon.proc is not None and env.daemon.proc.poll() is None:
        for c in p.list():
            p.remove(c.id)
        assert p.list() == []
        ctr_dir = os.path.join(env.daemon.root, "containers")
        assert not os.path.isdir(ctr_dir) or os.listdir(ctr_dir) == []
        bundles = os.path.join(env.daemon.runroot, "containers")
        assert not os.path.isdir(bundles) or os.listdir(bundles) == []


def expect_error(code, fn, *args, **kw):
    with pytest.raises(grpc.RpcError) as e:
        fn(*args, **kw)
    assert e.value.code() == code, e.value
    return e.value.details()


def test_create_start_list_status_stop_remove(pod):
    t0 = time.time_ns()
    cmd = ["sh", "-c", "trap 'exit 7' TERM; while true; do sleep 1; done"]
    cid = pod.create("web", command=cmd, labels={"app": "web"},
                     annotations={"a": "b=c"})
    assert len(cid) == 64
    st = pod.status(cid).status
    assert st.state == CREATED and st.id == cid and st.metadata.name == "web"
    assert t0 <= st.created_at <= time.time_ns() and st.started_at == 0
    assert st.image.image == "docker.io/library/busybox:latest"
    assert st.image_id == pod.reg.busybox.id
    assert st.image_ref.startswith("docker.io/library/busybox@sha256:")
    assert dict(st.labels) == {"app": "web"} and dict(st.annotations) == {"a": "b=c"}
    assert st.log_path == os.path.join(pod.logs, "web.log")
    assert st.stop_signal == api_pb2.SIGNAL_SIGTERM
    rootfs = os.path.join(pod.env.daemon.root, "containers", cid, "rootfs")
    assert os.path.ismount(rootfs)

    pod.start(cid)
    st = pod.status(cid).status
    assert st.state == RUNNING and st.started_at >= st.created_at
    info = json.loads(pod.status(cid, verbose=True).info["info"])
    assert info["pid"] > 0 and info["sandboxID"] == pod.id
    assert info["runtimeSpec"]["process"]["args"] == cmd
    # the process joined the pod's pinned netns
    netns = os.path.join(pod.env.daemon.runroot, "netns", pod.id)
    assert os.stat("/proc/%d/ns/net" % info["pid"]).st_ino == os.stat(netns).st_ino

    items = pod.list()
    assert [c.id for c in items] == [cid]
    assert items[0].image.image and items[0].metadata.name == "web"
    assert items[0].image_id == pod.reg.busybox.id and items[0].pod_sandbox_id == pod.id
    assert [c.id for c in pod.list(id=cid[:8])] == [cid]
    assert [c.id for c in pod.list(pod_sandbox_id=pod.id[:10])] == [cid]
    assert [c.id for c in pod.list(state=api_pb2.ContainerStateValue(state=RUNNING))] == [cid]
    assert pod.list(state=api_pb2.ContainerStateValue(state=CREATED)) == []
    assert [c.id for c in pod.list(label_selector={"app": "web"})] == [cid]
    assert pod.list(label_selector={"app": "db"}) == []
    # StreamContainers: the same entries, in chunks
    f = api_pb2.ContainerFilter(pod_sandbox_id=pod.id)
    streamed = [c for chunk in pod.cri.call("StreamContainers", filter=f) for c in chunk.containers]
    assert streamed == items

    # start again: a clear error
    assert "not created" in expect_error(grpc.StatusCode.INVALID_ARGUMENT, pod.start, cid)
    pod.stop(cid, timeout=10)  # exit 7 below: the trap got the SIGTERM, no SIGKILL came
    st = pod.status(cid).status
    assert st.state == EXITED and st.finished_at >= st.started_at
    assert st.exit_code == 7 and st.reason == "Error"
    pod.stop(cid)  # idempotent
    pod.remove(cid)
    assert not os.path.exists(rootfs) and pod.list() == []
    assert expect_error(grpc.StatusCode.NOT_FOUND, pod.status, cid)
    pod.remove(cid)
    pod.stop(cid)
    # start of a removed container
    expect_error(grpc.StatusCode.NOT_FOUND, pod.start, cid)


def test_log_file_format_and_exit_codes(pod):
    ok = pod.run("ok", command=["sh", "-c", "echo hello; echo oops >&2; exit 0"])
    st = pod.wait_exit(ok)
    assert st.exit_code == 0 and st.reason == "Completed"
    with open(st.log_path) as f:
        lines = f.read().splitlines()
    assert len(lines) == 2, lines
    parsed = [l.split(" ", 3) for l in lines]
    assert sorted((p[1], p[2], p[3]) for p in parsed) == [("stderr", "F", "oops"),
                                                          ("stdout", "F", "hello")]
    for p in parsed:  # RFC3339Nano
        assert p[0][4] == "-" and p[0][10] == "T" and (p[0].endswith("Z") or "+" in p[0])
    bad = pod.run("bad", command=["sh", "-c", "exit 3"])
    st = pod.wait_exit(bad)
    assert st.exit_code == 3 and st.reason == "Error" and st.finished_at > 0


def test_oom_killed(pod):
    res = api_pb2.LinuxContainerResources(memory_limit_in_bytes=16 << 20,
                                          memory_swap_limit_in_bytes=16 << 20)
    cid = pod.run("oom", command=["sh", "-c", "x=a; while true; do x=$x$x; done"],
                  linux=api_pb2.LinuxContainerConfig(resources=res))
    st = pod.wait_exit(cid, timeout=60)
    assert st.reason == "OOMKilled", st
    assert st.exit_code == 137
    assert pod.status(cid).status.resources.linux.memory_limit_in_bytes == 16 << 20


def test_env_command_and_user_from_image(pod):
    pod.pull("custom:1")
    # the image's Entrypoint + Cmd, its USER name, env merged with the config's
    cid = pod.run("img", image="custom:1", args=["echo $FROM_IMAGE $OVER $HOSTNAME; id"],
                  envs=[api_pb2.KeyValue(key="OVER", value=b"config")])
    out = pod.output(cid)
    assert out[0] == "1 config pod-host", out
    assert out[1].startswith("uid=33(www-data) gid=33"), out
    st = pod.status(cid).status
    assert st.user.linux.uid == 33 and st.stop_signal == api_pb2.SIGNAL_SIGUSR1
    # command replaces Entrypoint and Cmd; run_as_user beats the image USER
    sc = api_pb2.LinuxContainerSecurityContext(run_as_user=api_pb2.Int64Value(value=1234),
                                               supplemental_groups=[5000])
    cid = pod.run("num", image="custom:1", command=["id"],
                  linux=api_pb2.LinuxContainerConfig(security_context=sc))
    out = pod.output(cid)
    assert out[0].startswith("uid=1234 gid=0") and "5000" in out[0], out


def caps_of(pod, name, **sc):
    ctx = api_pb2.LinuxContainerSecurityContext(**sc)
    cid = pod.run(name, command=["sh", "-c", "exec cat /proc/self/status"],
                  linux=api_pb2.LinuxContainerConfig(security_context=ctx))
    out = pod.output(cid)
    return {l.split(":")[0]: l.split(":")[1].strip() for l in out if ":" in l}


def test_capabilities_and_seccomp(pod):
    default = caps_of(pod, "d")
    none = caps_of(pod, "n", capabilities=api_pb2.Capability(drop_capabilities=["ALL"]))
    assert none["CapBnd"] == "0000000000000000"
    added = caps_of(pod, "a", capabilities=api_pb2.Capability(add_capabilities=["NET_ADMIN"]))
    assert int(added["CapBnd"], 16) & (1 << 12) and not int(default["CapBnd"], 16) & (1 << 12)
    assert default["Seccomp"] == "0"  # deprecated string "" = unconfined
    assert caps_of(pod, "s", seccomp_profile_path="runtime/default")["Seccomp"] == "2"
    prof = api_pb2.SecurityProfile(profile_type=api_pb2.SecurityProfile.RuntimeDefault)
    assert caps_of(pod, "s2", seccomp=prof)["Seccomp"] == "2"
    assert caps_of(pod, "nnp", no_new_privs=True)["NoNewPrivs"] == "1"
    d = expect_error(grpc.StatusCode.INVALID_ARGUMENT, pod.create, "bad",
                     linux=api_pb2.LinuxContainerConfig(
                         security_context=api_pb2.LinuxContainerSecurityContext(
                             seccomp_profile_path="/etc/x.json")))
    assert "seccomp_profile_path" in d


def test_pod_ip_hostname_mounts_and_readonly_root(pod):
    host_dir = os.path.join(pod.env.base, "vol")
    link = os.path.join(pod.env.base, "vol-link")
    os.makedirs(host_dir)
    os.symlink(host_dir, link)
    missing = os.path.join(pod.env.base, "created", "by", "cricket")
    sc = api_pb2.LinuxContainerSecurityContext(readonly_rootfs=True)
    cid = pod.run("net", command=["sh", "-c",
                                  "busybox hostname; busybox ip -4 -o addr show eth0; "
                                  "echo hi > /vol/f; touch /x 2>&1; echo done > /new/g; "
                                  "cat /etc/hostname"],
                  mounts=[api_pb2.Mount(container_path="/vol", host_path=link),
                          api_pb2.Mount(container_path="/new", host_path=missing)],
                  linux=api_pb2.LinuxContainerConfig(security_context=sc))
    out = pod.output(cid)
    ip = pod.env.status(pod.id).status.network.ip
    assert out[0] == "pod-host" and (" %s/" % ip) in out[1], out
    assert "Read-only file system" in out[2], out
    assert out[3] == "pod-host"
    assert open(os.path.join(host_dir, "f")).read() == "hi\n"
    assert open(os.path.join(missing, "g")).read() == "done\n"
    st = pod.status(cid).status
    assert [(m.container_path, m.host_path) for m in st.mounts] == [("/vol", host_dir),
                                                                    ("/new", missing)]


def test_failures_change_nothing(pod):
    ctr_dir = os.path.join(pod.env.daemon.root, "containers")
    before = sorted(os.listdir(ctr_dir)) if os.path.isdir(ctr_dir) else []
    d = expect_error(grpc.StatusCode.NOT_FOUND, pod.create, "x", image="nothere:1")
    assert "nothere" in d
    d = expect_error(grpc.StatusCode.NOT_FOUND, pod.create, "x", pod="f" * 64)
    assert "pod_sandbox_id" in d
    d = expect_error(grpc.StatusCode.INVALID_ARGUMENT, pod.create, "x",
                     mounts=[api_pb2.Mount(container_path="/m", host_path="relative/p")])
    assert "mounts[0].host_path" in d
    d = expect_error(grpc.StatusCode.INVALID_ARGUMENT, pod.create, "x",
                     mounts=[api_pb2.Mount(container_path="/m", host_path="/tmp",
                                           propagation=7)])
    assert "propagation" in d
    priv = api_pb2.LinuxContainerSecurityContext(privileged=True)
    d = expect_error(grpc.StatusCode.INVALID_ARGUMENT, pod.create, "x",
                     linux=api_pb2.LinuxContainerConfig(security_context=priv))
    assert "privileged" in d
    sc = api_pb2.LinuxContainerSecurityContext(run_as_username="nobody-here")
    d = expect_error(grpc.StatusCode.NOT_FOUND, pod.create, "x",
                     linux=api_pb2.LinuxContainerConfig(security_context=sc))
    assert "nobody-here" in d
    cid = pod.create("dup", command=["true"])
    d = expect_error(grpc.StatusCode.ALREADY_EXISTS, pod.create, "dup", command=["true"])
    assert cid in d
    after = sorted(os.listdir(ctr_dir))
    assert after == sorted(before + [cid])
    assert [c.id for c in pod.list()] == [cid]
    pod.stop("0" * 64)
    pod.remove("0" * 64)
    expect_error(grpc.StatusCode.NOT_FOUND, pod.status, "0" * 64)
    pod.remove(cid)


def test_concurrent_stops_and_timeout_kill(pod):
    cid = pod.run("trap", command=["sh", "-c", "trap '' TERM; while true; do sleep 1; done"])
    time.sleep(0.3)
    futs = [pod.stop_future(cid, 2) for _ in range(3)]
    t0 = time.time()
    for f in futs:
        f.result()
    took = time.time() - t0
    assert 1.5 < took < 15, took
    st = pod.status(cid).status
    assert st.state == EXITED and st.exit_code == 137


def test_stop_signal_dropped_before_the_handler_is_sent_again(pod):
    """The kernel drops a SIGTERM sent to a pid namespace's init while it
    has no handler (critest stops `sh -c top` a few ms after starting it).
    Here the handler comes 2 s late: the SIGTERM sent before it is dropped,
    sent again once the trap is set, and the container exits 0 through its
    trap; without the resend Stop would wait its 60 s and SIGKILL (137)."""
    cid = pod.run("late", command=["sh", "-c", "sleep 2; trap 'exit 0' TERM; "
                                   "while true; do sleep 0.1; done"])
    time.sleep(0.3)
    pod.stop(cid, timeout=60)
    st = pod.status(cid).status
    assert st.state == EXITED and st.exit_code == 0, st
    assert "dropped (no handler yet), sending it again" in pod.env.daemon.logs()


def test_stop_pod_stops_containers_and_remove_pod_removes_them(pod):
    cid = pod.run("s", command=["sleep", "1000"])
    pod.env.stop(pod.id)
    assert pod.status(cid).status.state == EXITED
    pod.env.remove(pod.id)
    assert pod.list() == []
    expect_error(grpc.StatusCode.NOT_FOUND, pod.status, cid)


def test_daemon_killed_containers_survive_and_exit_while_down(pod):
    long = pod.run("long", command=["sleep", "1000"])
    short = pod.run("short", command=["sleep", "1001"])
    short_pid = json.loads(pod.status(short, verbose=True).info["info"])["pid"]
    pod.env.cri.close()
    pod.env.daemon.proc.send_signal(signal.SIGKILL)
    pod.env.daemon.proc.wait()
    # exits with a real code while the daemon is down
    os.kill(short_pid, signal.SIGKILL)
    time.sleep(0.5)
    pod.env.daemon.proc = None
    pod.env.start()
    pod.cri = pod.env.cri
    st = pod.status(long).status
    assert st.state == RUNNING, st
    st = pod.wait_exit(short)
    assert st.exit_code == 137 and st.reason == "Error"
    assert sorted(c.id for c in pod.list()) == sorted([long, short])
    pod.stop(long, timeout=0)
    assert pod.status(long).status.exit_code == 137


def exec_sync(pod, cid, cmd, timeout=0):
    fn, req_cls = pod.cri.stub("ExecSync")
    return fn(req_cls(container_id=cid, cmd=cmd, timeout=timeout), timeout=timeout + 30)


def procs_with_cmdline(cmdline, cid=None):
    """PIDs running cmdline; with cid, only those in that container's cgroup
    (other tests on the machine may run the same command)."""
    found = []
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                if f.read() != cmdline:
                    continue
            if cid is not None:
                with open("/proc/%s/cgroup" % p) as f:
                    if cid not in f.read():
                        continue
            found.append(int(p))
        except OSError:
            pass
    return found


def gone(cmdline, cid, timeout=5):
    """True once no process of the container runs cmdline (kills are
    delivered asynchronously; bounded wait)."""
    end = time.time() + timeout
    while procs_with_cmdline(cmdline, cid) and time.time() < end:
        time.sleep(0.05)
    return procs_with_cmdline(cmdline, cid) == []


def test_exec_sync(pod):
    sc = api_pb2.LinuxContainerSecurityContext(run_as_user=api_pb2.Int64Value(value=1234))
    cid = pod.run("ex", command=["sleep", "1000"], envs=[api_pb2.KeyValue(key="E", value=b"v")],
                  linux=api_pb2.LinuxContainerConfig(security_context=sc))
    r = exec_sync(pod, cid, ["echo", "-n", "hello"])
    assert r.stdout == b"hello" and r.stderr == b"" and r.exit_code == 0
    r = exec_sync(pod, cid, ["sh", "-c", "echo -n $E; id -u; echo err >&2; exit 5"])
    assert r.stdout == b"v1234\n" and r.stderr == b"err\n" and r.exit_code == 5
    t0 = time.time()
    d = expect_error(grpc.StatusCode.DEADLINE_EXCEEDED, exec_sync, pod, cid,
                     ["sh", "-c", "sleep 30"], timeout=1)
    assert "timed out" in d and time.time() - t0 < 10
    # killed, not left behind (busybox sh may exec the sleep in place)
    assert gone(b"sh\0-c\0sleep 30\0", cid)
    assert gone(b"sleep\x0030\0", cid)
    big = exec_sync(pod, cid, ["sh", "-c", "busybox seq 1 300000"])
    assert big.stdout.endswith(b"300000\n") and big.exit_code == 0
    expect_error(grpc.StatusCode.NOT_FOUND, exec_sync, pod, "0" * 64, ["true"])
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, exec_sync, pod, cid, [])
    pod.stop(cid, timeout=0)
    d = expect_error(grpc.StatusCode.INVALID_ARGUMENT, exec_sync, pod, cid, ["true"])
    assert "not running" in d


def test_reopen_log_and_update_resources(pod):
    cid = pod.run("rot", command=["sh", "-c", "i=0; while true; do echo line$i; "
                                              "i=$((i+1)); sleep 0.2; done"])
    log = pod.status(cid).status.log_path
    time.sleep(0.7)
    os.rename(log, log + ".1")
    pod.cri.call("ReopenContainerLog", container_id=cid)
    assert os.path.exists(log)
    time.sleep(0.7)
    res = api_pb2.LinuxContainerResources(memory_limit_in_bytes=64 << 20, cpu_shares=512)
    pod.cri.call("UpdateContainerResources", container_id=cid, linux=res)
    st = pod.status(cid).status
    assert st.resources.linux.memory_limit_in_bytes == 64 << 20
    assert st.resources.linux.cpu_shares == 512
    pod.stop(cid, timeout=0)
    old = [l.split(" ", 3)[3].strip() for l in open(log + ".1")]
    new = [l.split(" ", 3)[3].strip() for l in open(log)]
    nums = [int(x[4:]) for x in old + new]
    assert new and old and nums == list(range(len(nums))), (old, new)  # no line lost
    d = expect_error(grpc.StatusCode.INVALID_ARGUMENT, pod.cri.call, "ReopenContainerLog",
                     container_id=cid)
    assert "not running" in d


# ---- stats ----

def test_container_stats_and_list(pod):
    busy = ["sh", "-c", "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; "
            "head -c 8000000 /dev/zero > /filler; touch /ready; sleep 1000"]
    cid = pod.create("stats", command=busy, labels={"app": "stats"})
    idle = pod.create("idle", command=["sleep", "1000"])
    pod.start(cid)
    deadline = time.time() + 20
    upper = os.path.join(pod.env.daemon.root, "containers", cid, "upper")
    while not os.path.exists(os.path.join(upper, "ready")) and time.time() < deadline:
        time.sleep(0.1)

    s = pod.cri.call("ContainerStats", container_id=cid[:12]).stats
    assert s.attributes.id == cid and s.attributes.metadata.name == "stats"
    assert dict(s.attributes.labels) == {"app": "stats"}
    assert s.cpu.timestamp > 0 and s.memory.timestamp > 0
    assert s.cpu.usage_core_nano_seconds.value > 1000000  # the loop burned >1 ms
    assert s.memory.working_set_bytes.value > 0
    assert s.memory.usage_bytes.value >= s.memory.working_set_bytes.value
    assert s.writable_layer.used_bytes.value >= 8000000  # /filler landed in the upper dir
    assert s.writable_layer.fs_id.mountpoint == pod.env.daemon.root
    # not running: zero usage, still answered
    s2 = pod.cri.call("ContainerStats", container_id=idle).stats
    assert s2.attributes.id == idle and s2.cpu.usage_core_nano_seconds.value == 0

    ids = lambda stats: sorted(x.attributes.id for x in stats)
    assert ids(pod.cri.call("ListContainerStats").stats) == [cid]  # running ones only
    f = api_pb2.ContainerStatsFilter(pod_sandbox_id=pod.id[:10])
    assert ids(pod.cri.call("ListContainerStats", filter=f).stats) == [cid]
    f = api_pb2.ContainerStatsFilter(label_selector={"app": "other"})
    assert list(pod.cri.call("ListContainerStats", filter=f).stats) == []
    assert "container_id" in expect_error(grpc.StatusCode.INVALID_ARGUMENT,
                                          pod.cri.call, "ContainerStats", container_id="")
    expect_error(grpc.StatusCode.NOT_FOUND, pod.cri.call, "ContainerStats",
                 container_id="f" * 64)
    pod.stop(cid, timeout=0)
    assert list(pod.cri.call("ListContainerStats").stats) == []
