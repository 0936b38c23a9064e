"""Pod sandboxes end to end: the real daemon, real runc, the real CNI
plugins of Debian's containernetworking-plugins on a bridge and subnet each
test creates, and real network namespaces. Every test checks for leaks
afterwards (netns pins, mounts, veths, host-local leases, runc containers,
monitors) and cleans up whatever it finds, even when it failed."""
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import bundle
from conftest import Cri, Daemon, api_pb2
import grpc

PAUSE = os.environ.get("CRICKET_PAUSE", "")
CONMON = os.environ.get("CRICKET_CONMON", "")
CNI_BIN = "/usr/lib/cni"
HOST_LOCAL_DIR = "/var/lib/cni/networks"

ok, why = bundle.have_prereqs()
if ok and not os.path.exists(os.path.join(CNI_BIN, "bridge")):
    ok, why = False, "containernetworking-plugins not installed"
pytestmark = pytest.mark.skipif(not ok or not PAUSE or not CONMON,
                                reason=why or "CRICKET_PAUSE/CRICKET_CONMON not set")

READY = api_pb2.SANDBOX_READY
NOTREADY = api_pb2.SANDBOX_NOTREADY


def sh(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, capture_output=True, text=True,
                          timeout=60, **kw)


class Net:
    """A bridge + subnet + CNI config of the test's own."""

    def __init__(self, conf_dir, wrapper_dir=None, ports=False):
        r = random.Random()
        self.name = "crkt-%06x" % r.getrandbits(24)
        self.subnet_prefix = "10.%d.%d" % (200 + r.randrange(50), r.randrange(256))
        self.subnet = self.subnet_prefix + ".0/24"
        self.gateway = self.subnet_prefix + ".1"
        plugins = [{"type": "bridge", "bridge": self.name, "isGateway": True,
                    "ipMasq": False, "hairpinMode": True,
                    "ipam": {"type": "host-local", "ranges": [[{"subnet": self.subnet}]],
                             "routes": [{"dst": "0.0.0.0/0"}]}}]
        if ports:
            plugins.append({"type": "portmap", "capabilities": {"portMappings": True}})
        self.conf = {"cniVersion": "1.0.0", "name": self.name, "plugins": plugins}
        with open(os.path.join(conf_dir, "10-%s.conflist" % self.name), "w") as f:
            json.dump(self.conf, f)

    def veths(self):
        out = sh("ip", "-o", "link", "show", "master", self.name, check=False).stdout
        return [l for l in out.splitlines() if l.strip()]

    def leases(self):
        d = os.path.join(HOST_LOCAL_DIR, self.name)
        if not os.path.isdir(d):
            return []
        return [f for f in os.listdir(d) if not f.startswith("last_reserved_ip") and f != "lock"]

    def destroy(self):
        sh("ip", "link", "del", self.name, check=False)
        shutil.rmtree(os.path.join(HOST_LOCAL_DIR, self.name), ignore_errors=True)


def monitors_under(base):
    """PIDs of cricket-conmon processes working for this test's daemon."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"cricket-conmon") and any(base.encode() in a for a in argv):
            found.append(int(p))
    return found


def mounts_under(base):
    with open("/proc/self/mountinfo") as f:
        return [l.split()[4] for l in f if l.split()[4].startswith(base)]


class Env:
    """Daemon + network + leak checks for one test."""

    def __init__(self, base, wrapper=None, ports=False, extra_config="", env=None):
        self.base = base
        self.runc_root = os.path.join(base, "runc")
        self.wrapper_dir = os.path.join(base, "wrap")
        os.makedirs(self.wrapper_dir, exist_ok=True)
        self.cni_dir = os.path.join(base, "net.d")
        os.makedirs(self.cni_dir, exist_ok=True)
        self.net = Net(self.cni_dir, ports=ports)
        self.cni_cache = os.path.join(base, "cni-cache")
        config = ("runtime:\n  handlers:\n    runc:\n      path: %s\n      root: %s\n"
                  "  conmon_path: %s\n  pause_path: %s\n"
                  "network:\n  conf_dir: %s\n  plugin_dirs: [%s, %s]\n" %
                  (bundle.RUNC, self.runc_root, CONMON, PAUSE, self.cni_dir,
                   self.wrapper_dir, CNI_BIN)) + extra_config
        # conftest's Daemon writes network.conf_dir itself: keep ours last
        self.daemon = Daemon(base, "", env=env)
        with open(self.daemon.config, "w") as f:
            f.write("listen: unix://%s\nroot: %s\nrunroot: %s\nlog_level: debug\n" %
                    (self.daemon.socket, self.daemon.root, self.daemon.runroot))
            f.write(config)
        self.daemon.env["CRICKET_MONITOR_LOG"] = os.environ.get(
            "CONMON_TEST_MONITOR_LOG", os.path.join(base, "monitor.log"))
        self.cri = None

    def start(self):
        self.daemon.start()
        self.cri = Cri(self.daemon.socket)
        return self

    def restart(self):
        self.cri.close()
        assert self.daemon.stop() == 0, self.daemon.logs()
        self.daemon.proc = None
        self.start()

    def runc_list(self):
        if not os.path.isdir(self.runc_root):
            return []
        out = sh(bundle.RUNC, "--root", self.runc_root, "list", "-q", check=False).stdout
        return out.split()

    def leaks(self):
        leaks = {}
        netns_dir = os.path.join(self.daemon.runroot, "netns")
        if os.path.isdir(netns_dir) and os.listdir(netns_dir):
            leaks["netns pins"] = os.listdir(netns_dir)
        if mounts_under(self.base):
            leaks["mounts"] = mounts_under(self.base)
        if self.net.veths():
            leaks["veths"] = self.net.veths()
        if self.net.leases():
            leaks["leases"] = self.net.leases()
        if self.runc_list():
            leaks["runc containers"] = self.runc_list()
        if monitors_under(self.base):
            leaks["monitors"] = monitors_under(self.base)
        return leaks

    def cleanup(self):
        if self.cri:
            self.cri.close()
        if self.daemon.proc is not None and self.daemon.proc.poll() is None:
            self.daemon.stop()
        for cid in self.runc_list():
            sh(bundle.RUNC, "--root", self.runc_root, "delete", "--force", cid, check=False)
        for pid in monitors_under(self.base):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for m in sorted(mounts_under(self.base), key=len, reverse=True):
            sh("umount", "-l", m, check=False)
        self.net.destroy()

    # ---- CRI helpers ----

    def config(self, name="pod", uid=None, attempt=0, **kw):
        meta = api_pb2.PodSandboxMetadata(name=name, namespace="default",
                                          uid=uid or "uid-" + name, attempt=attempt)
        return api_pb2.PodSandboxConfig(metadata=meta, **kw)

    def run(self, cfg, handler="", timeout=120):
        return self.cri.call("RunPodSandbox", timeout=timeout, config=cfg,
                             runtime_handler=handler).pod_sandbox_id

    def status(self, pid, verbose=False):
        return self.cri.call("PodSandboxStatus", pod_sandbox_id=pid, verbose=verbose)

    def info(self, pid):
        return json.loads(self.status(pid, verbose=True).info["info"])

    def stop(self, pid):
        self.cri.call("StopPodSandbox", timeout=60, pod_sandbox_id=pid)

    def remove(self, pid):
        self.cri.call("RemovePodSandbox", timeout=60, pod_sandbox_id=pid)

    def list(self, **filt):
        f = api_pb2.PodSandboxFilter(**filt) if filt else None
        return list(self.cri.call("ListPodSandbox", filter=f).items)

    def wrap_plugin(self, name, body):
        """A plugin `name` in the wrapper dir (searched first) running `body`,
        then the real plugin."""
        path = os.path.join(self.wrapper_dir, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n%s\nexec %s/%s \"$@\"\n" % (body, CNI_BIN, name))
        os.chmod(path, 0o755)


@pytest.fixture
def envf():
    made = []

    def make(**kw):
        base = tempfile.mkdtemp(prefix="cs-", dir="/tmp")
        e = Env(base, **kw)
        made.append(e)
        return e.start()

    yield make
    failures = []
    for e in made:
        try:
            if e.daemon.proc is not None and e.daemon.proc.poll() is None:
                # everything the test left must go through the CRI first
                for p in e.list():
                    e.remove(p.id)
                e.cri.close()
                rc = e.daemon.stop()
                if rc != 0:
                    failures.append("cricketd exited with %s" % rc)
            leaks = e.leaks()
            if leaks:
                failures.append("leaks: %r\n%s" % (leaks, e.daemon.logs()[-4000:]))
        finally:
            e.cleanup()
            shutil.rmtree(e.base, ignore_errors=True)
    assert not failures, failures


@pytest.fixture
def env(envf):
    return envf()


def netns_exec(path, *cmd):
    return sh("nsenter", "--net=" + path, *cmd, check=False)


def ping(src_netns, ip):
    cmd = ["ping", "-c", "1", "-W", "2", ip]
    if src_netns:
        return netns_exec(src_netns, bundle.BUSYBOX, *cmd).returncode == 0
    return sh(bundle.BUSYBOX, *cmd, check=False).returncode == 0


# ---- the happy path ----

def test_run_status_list_stop_remove(env):
    cfg = env.config("web", hostname="web-1", labels={"app": "web", "tier": "a"},
                     annotations={"note": "x=y"}, log_directory=os.path.join(env.base, "logs"))
    t0 = time.time_ns()
    pid = env.run(cfg)
    assert len(pid) == 64
    st = env.status(pid).status
    assert st.id == pid and st.state == READY
    assert st.metadata.name == "web" and st.metadata.namespace == "default"
    assert st.metadata.uid == "uid-web" and st.metadata.attempt == 0
    assert t0 <= st.created_at <= time.time_ns()
    assert dict(st.labels) == {"app": "web", "tier": "a"}
    assert dict(st.annotations) == {"note": "x=y"}
    assert st.linux.namespaces.options.network == api_pb2.POD
    assert st.network.ip.startswith(env.net.subnet_prefix + ".")
    assert list(st.network.additional_ips) == []
    # the IP answers ping from the host side of the bridge
    assert ping(None, st.network.ip)

    info = env.info(pid)
    assert info["pid"] > 0
    assert info["runtimeSpec"]["process"]["args"] == ["/pause"]
    assert info["runtimeSpec"]["hostname"] == "web-1"
    assert info["netns"] == os.path.join(env.daemon.runroot, "netns", pid)
    with open("/proc/%d/cmdline" % info["pid"], "rb") as f:
        assert f.read() == b"/pause\0"
    # the infra joined the pinned netns
    assert os.stat("/proc/%d/ns/net" % info["pid"]).st_ino == os.stat(info["netns"]).st_ino

    items = env.list()
    assert [p.id for p in items] == [pid]
    assert items[0].metadata.attempt == 0 and dict(items[0].labels)["app"] == "web"

    env.stop(pid)
    assert env.status(pid).status.state == NOTREADY
    assert [p.state for p in env.list()] == [NOTREADY]
    assert not os.path.exists(info["netns"])
    assert not env.net.veths() and not env.net.leases()
    assert not os.path.exists("/proc/%d" % info["pid"]) or \
        open("/proc/%d/cmdline" % info["pid"], "rb").read() != b"/pause\0"
    env.stop(pid)  # idempotent
    env.remove(pid)
    assert env.list() == []
    with pytest.raises(grpc.RpcError) as e:
        env.status(pid)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    env.remove(pid)  # idempotent
    env.stop(pid)  # unknown id: OK
    assert env.leaks() == {}
