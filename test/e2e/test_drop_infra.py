"""Pods without an infra process (runtime.drop_infra, on by default): a pod
that does not share its PID namespace gets its net, ipc and uts namespaces
pinned under runroot and no pause process, no monitor, no runc container;
its containers join the pins. A pod sharing PID keeps its pause as PID 1;
`runtime.drop_infra: false` keeps a pause in every pod. Real daemon, runc,
CNI plugins and busybox from a registry on 127.0.0.1; the sandbox fixture
checks every test for leaks (pins of every kind, mounts, veths, leases,
runc containers, monitors)."""
import os
import socket

import grpc
import pytest

import api_pb2
import streaming_clients as sc
from registry import registry_config
from test_container import Pod, exec_sync, reg  # noqa: F401 (fixture)
from test_sandbox import NOTREADY, READY, envf, monitors_under, mounts_under, pytestmark, sh  # noqa: F401

PINS = ("netns", "ipcns", "utsns")


def ns_linux(**modes):
    return api_pb2.LinuxPodSandboxConfig(security_context=api_pb2.LinuxSandboxSecurityContext(
        namespace_options=api_pb2.NamespaceOption(**modes)))


class NsPod(Pod):
    """A READY pod with these namespace modes (pid CONTAINER by default, as
    kubelet sends for a pod without shareProcessNamespace)."""

    def __init__(self, env, reg, name="p", **modes):  # noqa: F811
        self.env, self.cri, self.reg = env, env.cri, reg
        self.logs = os.path.join(env.base, "logs")
        self.pull("busybox")
        modes.setdefault("pid", api_pb2.CONTAINER)
        self.cfg = env.config(name, hostname="pod-host", log_directory=self.logs,
                              linux=ns_linux(**modes))
        self.id = env.run(self.cfg)

    def sleeper(self, name):
        return self.run(name, command=["sleep", "1000"])

    def namespaces(self, cid):
        """{kind: 'kind:[inode]'} and the hostname, as the container sees them."""
        out = exec_sync(self, cid, ["sh", "-c", "for n in ipc uts net pid; do "
                                    "readlink /proc/self/ns/$n; done; hostname"])
        assert out.exit_code == 0, out
        lines = out.stdout.decode().split()
        return dict(zip(("ipc", "uts", "net", "pid", "hostname"), lines))


def pins_of(env, pod_id):
    """The pin files of the pod that exist, by kind."""
    return sorted(k for k in PINS if os.path.exists(os.path.join(env.daemon.runroot, k, pod_id)))


def pin_inode(env, kind, pod_id):
    return os.stat(os.path.join(env.daemon.runroot, kind, pod_id)).st_ino


def all_pins(env):
    return {k: os.listdir(os.path.join(env.daemon.runroot, k))
            for k in PINS if os.path.isdir(os.path.join(env.daemon.runroot, k))
            and os.listdir(os.path.join(env.daemon.runroot, k))}


@pytest.fixture
def env(envf, reg):  # noqa: F811
    return envf(extra_config=registry_config(reg.host))


def test_pod_without_infra_shares_net_ipc_uts_and_runs_no_process(env, reg):  # noqa: F811
    p = NsPod(env, reg)
    info = env.info(p.id)
    assert info["infra"] is False and info["pid"] == 0, info
    assert info["runtimeSpec"] is None and info["image"] == ""
    # no pause, no monitor, no runc container: only the pins hold the pod
    assert env.runc_list() == [] and monitors_under(env.base) == []
    assert pins_of(env, p.id) == ["ipcns", "netns", "utsns"]
    mounts = mounts_under(env.daemon.runroot)
    for k in PINS:
        assert os.path.join(env.daemon.runroot, k, p.id) in mounts, (k, mounts)
    a, b = p.sleeper("a"), p.sleeper("b")
    na, nb = p.namespaces(a), p.namespaces(b)
    for kind in ("ipc", "uts", "net"):
        assert na[kind] == nb[kind], (kind, na, nb)
    assert na["pid"] != nb["pid"]  # pid CONTAINER: one namespace each
    assert na["hostname"] == nb["hostname"] == "pod-host"
    assert na["ipc"] == "ipc:[%d]" % pin_inode(env, "ipcns", p.id)
    assert na["uts"] == "uts:[%d]" % pin_inode(env, "utsns", p.id)
    assert na["net"] == "net:[%d]" % pin_inode(env, "netns", p.id)
    # the pod's namespaces are its own, not the host's
    assert na["ipc"] != os.readlink("/proc/self/ns/ipc")
    assert na["uts"] != os.readlink("/proc/self/ns/uts")
    assert env.status(p.id).status.state == READY
    env.stop(p.id)
    assert env.status(p.id).status.state == NOTREADY
    assert pins_of(env, p.id) == [] and all_pins(env) == {}
    assert not any(p.id in m for m in mounts_under(env.base))
    env.remove(p.id)
    assert env.list() == []


def test_shared_pid_pod_keeps_pause_as_pid_1(env, reg):  # noqa: F811
    p = NsPod(env, reg, pid=api_pb2.POD)
    info = env.info(p.id)
    assert info["infra"] is True and info["pid"] > 0, info
    assert env.runc_list() == [p.id] and len(monitors_under(env.base)) == 1
    assert pins_of(env, p.id) == ["netns"]  # ipc, uts (and pid): the pause's
    cid = p.run("c", command=["sleep", "1000"], linux=api_pb2.LinuxContainerConfig(
        security_context=api_pb2.LinuxContainerSecurityContext(
            namespace_options=api_pb2.NamespaceOption(pid=api_pb2.POD))))
    out = exec_sync(p, cid, ["cat", "/proc/1/cmdline"])
    assert out.stdout.rstrip(b"\0") == b"/pause", out
    assert p.namespaces(cid)["hostname"] == "pod-host"
    env.stop(p.id)
    assert p.id not in env.runc_list() and all_pins(env) == {}


def test_drop_infra_false_keeps_a_pause_in_every_pod(env, reg):  # noqa: F811
    dropins = os.path.join(env.base, "cricket.d")
    os.makedirs(dropins, exist_ok=True)
    with open(os.path.join(dropins, "50-infra.yaml"), "w") as f:
        f.write("runtime:\n  drop_infra: false\n")
    env.restart()
    p = NsPod(env, reg)  # pid CONTAINER
    info = env.info(p.id)
    assert info["infra"] is True and info["pid"] > 0, info
    assert env.runc_list() == [p.id] and pins_of(env, p.id) == ["netns"]
    cid = p.sleeper("c")
    ns = p.namespaces(cid)
    assert ns["hostname"] == "pod-host"
    assert ns["ipc"] == os.readlink("/proc/%d/ns/ipc" % info["pid"])
    env.stop(p.id)
    env.remove(p.id)


def test_host_ipc_and_host_network_pin_nothing_for_them(env, reg):  # noqa: F811
    hipc = NsPod(env, reg, name="hostipc", ipc=api_pb2.NODE)
    assert pins_of(env, hipc.id) == ["netns", "utsns"]
    ns = hipc.namespaces(hipc.sleeper("c"))
    assert ns["ipc"] == os.readlink("/proc/self/ns/ipc") and ns["hostname"] == "pod-host"
    hnet = NsPod(env, reg, name="hostnet", network=api_pb2.NODE)
    assert pins_of(env, hnet.id) == ["ipcns"]
    ns = hnet.namespaces(hnet.sleeper("c"))
    assert ns["net"] == os.readlink("/proc/self/ns/net")
    assert ns["uts"] == os.readlink("/proc/self/ns/uts")
    assert ns["hostname"] == socket.gethostname()
    assert ns["ipc"] == "ipc:[%d]" % pin_inode(env, "ipcns", hnet.id)
    assert env.runc_list() and all(i not in env.runc_list() for i in (hipc.id, hnet.id))
    for pod_id in (hipc.id, hnet.id):
        env.remove(pod_id)
    assert all_pins(env) == {}


def test_restart_keeps_infraless_pods_and_a_lost_pin_makes_one_notready(env, reg):  # noqa: F811
    keep = NsPod(env, reg, name="keep")
    lose = NsPod(env, reg, name="lose")
    ck, cl = keep.sleeper("c"), lose.sleeper("c")
    before = keep.namespaces(ck)
    env.restart()
    keep.cri = lose.cri = env.cri
    for p in (keep, lose):
        assert env.status(p.id).status.state == READY
    assert keep.namespaces(ck) == before  # the container runs on, exec works
    assert keep.status(ck).status.state == api_pb2.CONTAINER_RUNNING
    # a pin unmounted by hand: that pod is no longer whole
    sh("umount", os.path.join(env.daemon.runroot, "ipcns", lose.id))
    env.restart()
    keep.cri = lose.cri = env.cri
    assert env.status(keep.id).status.state == READY
    assert env.status(lose.id).status.state == NOTREADY
    # a container of it cannot start; Stop and Remove clean up every pin
    with pytest.raises(grpc.RpcError):
        lose.create("new")
    env.stop(lose.id)
    assert pins_of(env, lose.id) == []
    env.remove(lose.id)
    assert pins_of(env, keep.id) == ["ipcns", "netns", "utsns"]
    env.remove(keep.id)
    assert all_pins(env) == {}
    assert cl not in [c.id for c in keep.list()]  # it went with its pod


def test_cni_add_failure_after_the_pins_leaves_no_pin(env, reg):  # noqa: F811
    env.wrap_plugin("bridge", 'if [ "$CNI_COMMAND" = ADD ]; then '
                    'echo \'{"cniVersion":"1.0.0","code":11,"msg":"add refused by test"}\'; '
                    'exit 1; fi')
    with pytest.raises(grpc.RpcError) as e:
        NsPod(env, reg)
    assert "add refused by test" in e.value.details()
    assert env.list() == [] and all_pins(env) == {}
    assert not mounts_under(env.base)


def test_port_forward_into_infraless_pod(env, reg):  # noqa: F811
    p = NsPod(env, reg)
    cid = p.run("web", command=["sh", "-c", "mkdir /w && echo hello-pf > /w/f && "
                                "exec httpd -f -p 8080 -h /w"])
    # wait until httpd listens (inside the pod's netns)
    sh("sh", "-c", "for i in $(seq 100); do nsenter --net=%s sh -c "
       "'cat /proc/net/tcp /proc/net/tcp6 | grep -q :1F90' && exit 0; sleep 0.1; done; exit 1"
       % os.path.join(env.daemon.runroot, "netns", p.id))
    url = env.cri.call("PortForward", pod_sandbox_id=p.id, port=[8080]).url
    c, resp = sc.spdy_connect(url, ["portforward.k8s.io"])
    assert resp.status == 101
    hdr = [("port", "8080"), ("requestid", "0")]
    e = c.open_stream([("streamtype", "error")] + hdr)
    dsid = c.open_stream([("streamtype", "data")] + hdr)
    c.send_data(dsid, b"GET /f HTTP/1.0\r\n\r\n", fin=True)
    c.read_until(lambda: dsid in c.fin and e in c.fin)
    c.close()
    assert c.data.get(e, b"") == b""
    assert c.data.get(dsid, b"").endswith(b"\r\n\r\nhello-pf\n"), c.data
    assert p.status(cid).status.state == api_pb2.CONTAINER_RUNNING


def test_events_of_a_pod_without_infra(env, reg):  # noqa: F811
    """The same pod events as with an infra: CREATED and STARTED on Run,
    STOPPED once on Stop (no process exit precedes it), DELETED on Remove
    with the last status."""
    from test_events import CREATED, DELETED, STARTED, STOPPED, Sub, brief
    sub = Sub(env.daemon.socket)
    try:
        p = NsPod(env, reg)
        env.stop(p.id)
        env.stop(p.id)  # idempotent: no second STOPPED
        env.remove(p.id)
        evs = sub.until(lambda e: e.container_id == p.id and
                        e.container_event_type == DELETED)
        kinds = [e.container_event_type for e in evs if e.container_id == p.id]
        assert kinds == [CREATED, STARTED, STOPPED, DELETED], brief(evs)
        assert evs[1].pod_sandbox_status.state == READY
        assert evs[-1].pod_sandbox_status.state == NOTREADY
    finally:
        sub.close()


def test_pod_sysctls_land_in_the_pinned_namespaces(env, reg):  # noqa: F811
    """With no infra for runc to write them into, the pin thread writes the
    pod's sysctls (net.* in its netns, kernel.shm* in its ipc namespace);
    the host's stay as they were. A sysctl the kernel refuses fails
    RunPodSandbox naming it, and leaves no pin."""
    host_port = open("/proc/sys/net/ipv4/ip_unprivileged_port_start").read().strip()
    host_rmid = open("/proc/sys/kernel/shm_rmid_forced").read().strip()
    p = NsPod.__new__(NsPod)
    p.env, p.cri, p.reg = env, env.cri, reg
    p.logs = os.path.join(env.base, "logs")
    p.pull("busybox")
    lx = ns_linux(pid=api_pb2.CONTAINER)
    lx.sysctls["kernel.shm_rmid_forced"] = "1"
    lx.sysctls["net.ipv4.ip_unprivileged_port_start"] = "0"
    p.cfg = env.config("sys", hostname="pod-host", log_directory=p.logs, linux=lx)
    p.id = env.run(p.cfg)
    assert env.info(p.id)["infra"] is False
    out = exec_sync(p, p.sleeper("c"), ["cat", "/proc/sys/kernel/shm_rmid_forced",
                                        "/proc/sys/net/ipv4/ip_unprivileged_port_start"])
    assert out.stdout.split() == [b"1", b"0"], out
    assert open("/proc/sys/net/ipv4/ip_unprivileged_port_start").read().strip() == host_port
    assert open("/proc/sys/kernel/shm_rmid_forced").read().strip() == host_rmid
    env.remove(p.id)
    bad = ns_linux(pid=api_pb2.CONTAINER)
    bad.sysctls["net.ipv4.ip_unprivileged_port_start"] = "not-a-number"
    with pytest.raises(grpc.RpcError) as e:
        env.run(env.config("badsys", linux=bad))
    assert "net/ipv4/ip_unprivileged_port_start" in e.value.details(), e.value.details()
    assert env.list() == [] and all_pins(env) == {}


def test_pod_without_infra_stays_ready_when_its_containers_exit(env, reg):  # noqa: F811
    """No process holds the pod, so nothing ends it but StopPodSandbox: its
    containers exiting (or being killed) leaves it READY, and a new
    container still joins its namespaces."""
    p = NsPod(env, reg)
    done = p.run("done", command=["sh", "-c", "exit 0"])
    assert p.wait_exit(done).exit_code == 0
    killed = p.sleeper("killed")
    p.stop(killed, timeout=0)
    assert env.status(p.id).status.state == READY
    assert [i.state for i in env.list()] == [READY]
    again = p.sleeper("again")
    assert p.namespaces(again)["uts"] == "uts:[%d]" % pin_inode(env, "utsns", p.id)
    env.remove(p.id)
