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
        # a test's own cgroup parent (named like the bridge) goes too
        for root, dirs, _ in os.walk("/sys/fs/cgroup"):
            if self.name in dirs:
                try:
                    os.rmdir(os.path.join(root, self.name))
                except OSError:
                    pass
            dirs[:] = [d for d in dirs if root == "/sys/fs/cgroup"]
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
        # the pins: netns, and the ipc/uts ones of pods without an infra
        for kind, what in (("netns", "netns pins"), ("ipcns", "ipc pins"),
                           ("utsns", "uts pins"), ("userns", "userns pins")):
            pin_dir = os.path.join(self.daemon.runroot, kind)
            if os.path.isdir(pin_dir) and os.listdir(pin_dir):
                leaks[what] = os.listdir(pin_dir)
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
        # plugins the test's wrappers started and recorded (hung on purpose)
        pidfile = os.path.join(self.base, "plugin.pid")
        pids = monitors_under(self.base)
        if os.path.exists(pidfile):
            with open(pidfile) as f:
                pids.append(int(f.read()))
        for pid in pids:
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


def test_two_pods_reach_each_other(env):
    a = env.run(env.config("a"))
    b = env.run(env.config("b"))
    ip_a = env.status(a).status.network.ip
    ip_b = env.status(b).status.network.ip
    assert ip_a != ip_b
    ns_a, ns_b = env.info(a)["netns"], env.info(b)["netns"]
    assert ping(ns_a, ip_b)
    assert ping(ns_b, ip_a)
    # lo is up in the pod
    assert ping(ns_a, "127.0.0.1")
    assert len(env.net.veths()) == 2 and len(env.net.leases()) == 2
    for p in (a, b):
        env.stop(p)
        env.remove(p)
    assert env.leaks() == {}


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(host, port):
    """The raw response to GET / (b"" when the connection fails)."""
    import socket
    try:
        with socket.create_connection((host, port), timeout=2) as c:
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                chunk = c.recv(4096)
                if not chunk:
                    return data
                data += chunk
    except OSError:
        return b""


def test_host_port_reaches_pod_from_localhost(envf):
    env = envf(ports=True)
    hp = free_port()
    cfg = env.config("hp", port_mappings=[
        api_pb2.PortMapping(protocol=api_pb2.TCP, container_port=8080, host_port=hp),
        api_pb2.PortMapping(protocol=api_pb2.TCP, container_port=9999)])
    pid = env.run(cfg)
    netns = env.info(pid)["netns"]
    www = os.path.join(env.base, "www")
    os.makedirs(www)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("hello from the pod\n")
    srv = subprocess.Popen(["nsenter", "--net=" + netns, bundle.BUSYBOX, "httpd", "-f", "-p",
                            "8080", "-h", www])
    try:
        body = b""
        for _ in range(50):
            body = http_get("127.0.0.1", hp)
            if body:
                break
            time.sleep(0.1)
        assert body.endswith(b"\r\n\r\nhello from the pod\n"), body
    finally:
        srv.kill()
        srv.wait()
    env.stop(pid)
    # portmap's DNAT chain for the pod is gone with the CNI DEL
    nat = sh("iptables-save", "-t", "nat", check=False).stdout
    assert pid not in nat and ("dport %d" % hp) not in nat
    env.remove(pid)


def test_dns_config_and_pod_files(env):
    dns = api_pb2.DNSConfig(servers=["10.10.10.10", "10.10.10.11"], searches=["google.com", "b.c"],
                            options=["ndots:8", "timeout:1"])
    pid = env.run(env.config("dns", hostname="dnshost", dns_config=dns))
    files = os.path.join(env.daemon.root, "sandboxes", pid)
    with open(os.path.join(files, "resolv.conf")) as f:
        text = f.read()
    assert text == ("search google.com b.c\nnameserver 10.10.10.10\nnameserver 10.10.10.11\n"
                    "options ndots:8 timeout:1\n")
    with open(os.path.join(files, "hostname")) as f:
        assert f.read() == "dnshost\n"
    with open(os.path.join(files, "hosts")) as f:
        assert "localhost" in f.read()
    shm = os.path.join(env.daemon.runroot, "sandboxes", pid, "shm")
    assert shm in mounts_under(env.base)
    # no dns_config: the host's resolv.conf
    pid2 = env.run(env.config("nodns"))
    with open(os.path.join(env.daemon.root, "sandboxes", pid2, "resolv.conf")) as f, \
            open("/etc/resolv.conf") as h:
        assert f.read() == h.read()
    for p in (pid, pid2):
        env.remove(p)  # running: Remove stops first
    assert not os.path.exists(files)


def test_host_network_pod_has_no_netns_and_no_cni(env):
    ns = api_pb2.NamespaceOption(network=api_pb2.NODE, pid=api_pb2.NODE, ipc=api_pb2.NODE)
    lx = api_pb2.LinuxPodSandboxConfig(
        security_context=api_pb2.LinuxSandboxSecurityContext(namespace_options=ns))
    pid = env.run(env.config("hostnet", hostname="ignored", linux=lx))
    st = env.status(pid).status
    assert st.state == READY
    assert st.linux.namespaces.options.network == api_pb2.NODE
    assert st.linux.namespaces.options.pid == api_pb2.NODE
    assert st.network.ip == ""
    info = env.info(pid)
    assert info["netns"] == "" and info["cniNetwork"] == ""
    # every namespace is the host's and PID is not shared: no infra process
    # (runtime.drop_infra), no pin of any kind
    assert info["infra"] is False and info["pid"] == 0 and env.runc_list() == []
    assert info["ipcns"] == "" and info["utsns"] == ""
    for kind in ("netns", "ipcns", "utsns"):
        assert not os.path.isdir(os.path.join(env.daemon.runroot, kind)) or \
            os.listdir(os.path.join(env.daemon.runroot, kind)) == []
    assert env.net.veths() == [] and env.net.leases() == []
    # the host's /dev/shm, so no tmpfs of ours
    assert not any("/shm" in m for m in mounts_under(env.base))
    env.stop(pid)
    env.remove(pid)


def test_seccomp_of_the_pod_applies_to_infra(env):
    def spec_of(sc):
        lx = api_pb2.LinuxPodSandboxConfig(security_context=sc)
        pid = env.run(env.config("sc-%d" % len(env.list()), linux=lx))
        spec = env.info(pid)["runtimeSpec"]
        env.remove(pid)
        return spec
    assert "seccomp" in spec_of(api_pb2.LinuxSandboxSecurityContext())["linux"]
    unconfined = api_pb2.SecurityProfile(profile_type=api_pb2.SecurityProfile.Unconfined)
    assert "seccomp" not in spec_of(api_pb2.LinuxSandboxSecurityContext(seccomp=unconfined))["linux"]
    assert "seccomp" not in spec_of(api_pb2.LinuxSandboxSecurityContext(privileged=True))["linux"]
    spec = spec_of(api_pb2.LinuxSandboxSecurityContext(run_as_user=api_pb2.Int64Value(value=65534)))
    assert spec["process"]["user"]["uid"] == 65534
    assert spec["root"]["readonly"] is True


def test_shared_pid_namespace_infra_is_pid_1(env):
    ns = api_pb2.NamespaceOption(pid=api_pb2.POD)
    lx = api_pb2.LinuxPodSandboxConfig(
        security_context=api_pb2.LinuxSandboxSecurityContext(namespace_options=ns),
        sysctls={"kernel.shm_rmid_forced": "1", "net.ipv4.ip_unprivileged_port_start": "0",
                 "fs.mqueue.msg_max": "100"},
        cgroup_parent="/" + env.net.name,
        resources=api_pb2.LinuxContainerResources(cpu_shares=512, memory_limit_in_bytes=64 << 20))
    pid = env.run(env.config("pidpod", linux=lx))
    infra = env.info(pid)["pid"]
    assert os.stat("/proc/%d/ns/pid" % infra).st_ino != os.stat("/proc/self/ns/pid").st_ino
    with open("/proc/%d/status" % infra) as f:
        nspid = [l for l in f if l.startswith("NSpid:")][0].split()
    assert nspid[-1] == "1"
    spec = env.info(pid)["runtimeSpec"]
    assert spec["linux"]["sysctl"]["kernel.shm_rmid_forced"] == "1"
    assert spec["linux"]["cgroupsPath"] == "/%s/%s" % (env.net.name, pid)
    # the pod's resources ride along as annotations (kubelet sizes the pod
    # cgroup itself; a VM-based handler reads these); unset ones are absent
    assert spec["annotations"]["io.kubernetes.cri.sandbox-cpu-shares"] == "512"
    assert spec["annotations"]["io.kubernetes.cri.sandbox-memory"] == str(64 << 20)
    assert "io.kubernetes.cri.sandbox-cpu-quota" not in spec["annotations"]
    r = sh("nsenter", "--ipc=/proc/%d/ns/ipc" % infra, "cat",
           "/proc/sys/kernel/shm_rmid_forced")
    assert r.stdout.strip() == "1"
    r = sh("nsenter", "--net=/proc/%d/ns/net" % infra, "cat",
           "/proc/sys/net/ipv4/ip_unprivileged_port_start")
    assert r.stdout.strip() == "0"
    env.remove(pid)


# ---- failures ----

def expect_error(code, fn, *args, **kw):
    with pytest.raises(grpc.RpcError) as e:
        fn(*args, **kw)
    assert e.value.code() == code, e.value
    return e.value.details()


def test_failing_cni_plugin_fails_run_and_leaves_nothing(env):
    env.wrap_plugin("bridge", 'if [ "$CNI_COMMAND" = ADD ]; then\n'
                    '  echo \'{"cniVersion":"1.0.0","code":11,"msg":"injected bridge failure"}\'\n'
                    '  exit 1\nfi')
    msg = expect_error(grpc.StatusCode.UNKNOWN, env.run, env.config("failing"))
    assert "injected bridge failure" in msg
    assert env.list() == []
    assert env.leaks() == {}
    # the rollback released the name: the same pod can be created now
    os.unlink(os.path.join(env.wrapper_dir, "bridge"))
    pid = env.run(env.config("failing"))
    env.remove(pid)


def test_hung_cni_plugin_times_out(envf):
    env = envf(extra_config="  plugin_timeout: 3s\n")
    other = env.run(env.config("other"))
    env.wrap_plugin("bridge", 'if [ "$CNI_COMMAND" = ADD ]; then exec sleep 600; fi')
    t0 = time.monotonic()
    fut = env.cri.future("RunPodSandbox", timeout=60, config=env.config("hung"))
    # List and Status answer at once while RunPodSandbox hangs (FAST path)
    slowest = 0
    while not fut.done():
        t1 = time.monotonic()
        assert [p.id for p in env.list()] == [other]
        assert env.status(other).status.state == READY
        slowest = max(slowest, time.monotonic() - t1)
        time.sleep(0.05)
    assert slowest < 1.0, slowest  # the hung ADD lasts 3 s
    with pytest.raises(grpc.RpcError) as e:
        fut.result()
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.value
    msg = e.value.details()
    assert time.monotonic() - t0 < 20
    assert "bridge" in msg
    os.unlink(os.path.join(env.wrapper_dir, "bridge"))
    env.remove(other)
    assert env.list() == []
    assert env.leaks() == {}


def test_netns_removed_by_hand_still_stops_and_removes(env):
    pid = env.run(env.config("gone"))
    netns = env.info(pid)["netns"]
    sh("umount", netns)
    os.unlink(netns)
    env.stop(pid)
    assert env.status(pid).status.state == NOTREADY
    env.remove(pid)
    assert env.leaks() == {}


def test_infra_killed_by_hand_stop_still_works(env):
    pid = env.run(env.config("killed"))
    sh(bundle.RUNC, "--root", env.runc_root, "kill", pid, "KILL")
    # the monitor's exit file reaches the exit watcher: NOTREADY without a Stop
    deadline = time.monotonic() + 10
    while env.status(pid).status.state != NOTREADY:
        assert time.monotonic() < deadline, "pod still READY after its infra died"
        time.sleep(0.05)
    env.stop(pid)
    env.remove(pid)
    assert env.leaks() == {}


def test_duplicate_name_already_exists(env):
    pid = env.run(env.config("dup"))
    msg = expect_error(grpc.StatusCode.ALREADY_EXISTS, env.run, env.config("dup"))
    assert pid in msg and "k8s_POD_dup_default_uid-dup_0" in msg
    # another attempt is another name
    pid2 = env.run(env.config("dup", attempt=1))
    assert len(env.list()) == 2
    env.remove(pid)
    env.remove(pid2)


@pytest.mark.parametrize("what,kw,field", [
    ("no metadata", {}, "config.metadata"),
    ("empty uid", {"metadata": api_pb2.PodSandboxMetadata(name="x", namespace="d")}, "uid"),
    ("bad sysctl", {"linux": api_pb2.LinuxPodSandboxConfig(sysctls={"kernel.hostname": "x"})},
     "kernel.hostname"),
    ("net sysctl on host network", {"linux": api_pb2.LinuxPodSandboxConfig(
        sysctls={"net.ipv4.ip_forward": "1"},
        security_context=api_pb2.LinuxSandboxSecurityContext(
            namespace_options=api_pb2.NamespaceOption(network=api_pb2.NODE)))},
     "net.ipv4.ip_forward"),
    ("bad namespace mode", {"linux": api_pb2.LinuxPodSandboxConfig(
        security_context=api_pb2.LinuxSandboxSecurityContext(
            namespace_options=api_pb2.NamespaceOption(ipc=7)))}, "ipc"),
    ("bad protocol", {"port_mappings": [api_pb2.PortMapping(protocol=9, container_port=80)]},
     "protocol"),
])
def test_invalid_requests(env, what, kw, field):
    if "metadata" not in kw and what != "no metadata":
        kw = dict(kw, metadata=api_pb2.PodSandboxMetadata(name="bad", namespace="d", uid="u"))
    cfg = api_pb2.PodSandboxConfig(**kw)
    msg = expect_error(grpc.StatusCode.INVALID_ARGUMENT, env.run, cfg)
    assert field in msg, msg
    assert env.list() == []
    assert env.leaks() == {}


def test_unknown_runtime_handler(env):
    msg = expect_error(grpc.StatusCode.INVALID_ARGUMENT, env.run, env.config("rh"),
                       handler="kata")
    assert "kata" in msg
    assert env.list() == []


def test_list_filters(env):
    a = env.run(env.config("fa", labels={"app": "x", "n": "1"}))
    b = env.run(env.config("fb", labels={"app": "x", "n": "2"}))
    env.stop(b)
    ids = lambda items: sorted(p.id for p in items)
    assert ids(env.list()) == sorted([a, b])
    assert ids(env.list(id=a[:13])) == [a]
    assert ids(env.list(id="zz")) == []
    assert ids(env.list(state=api_pb2.PodSandboxStateValue(state=READY))) == [a]
    assert ids(env.list(state=api_pb2.PodSandboxStateValue(state=NOTREADY))) == [b]
    assert ids(env.list(label_selector={"app": "x"})) == sorted([a, b])
    assert ids(env.list(label_selector={"app": "x", "n": "2"})) == [b]
    assert ids(env.list(label_selector={"app": "y"})) == []
    assert ids(env.list(id=b, state=api_pb2.PodSandboxStateValue(state=READY))) == []
    # a unique prefix works for status too
    assert env.status(a[:13]).status.id == a
    for p in (a, b):
        env.remove(p)


# ---- restarts ----

def test_daemon_restart_keeps_pods(env):
    a = env.run(env.config("ra", labels={"k": "v"}))
    b = env.run(env.config("rb"))
    ip_a = env.status(a).status.network.ip
    infra_b = env.info(b)["pid"]
    env.stop(b)
    env.restart()
    items = {p.id: p for p in env.list()}
    assert set(items) == {a, b}
    assert items[a].state == READY and items[b].state == NOTREADY
    st = env.status(a).status
    assert st.network.ip == ip_a and dict(st.labels) == {"k": "v"}
    assert env.info(a)["runtimeSpec"]["process"]["args"] == ["/pause"]
    assert ping(None, ip_a)
    # the infra of a died while the daemon was down: NOTREADY after restart
    env.cri.close()
    assert env.daemon.stop() == 0
    env.daemon.proc = None
    sh(bundle.RUNC, "--root", env.runc_root, "kill", a, "KILL")
    time.sleep(0.3)
    env.start()
    assert env.status(a).status.state == NOTREADY
    assert not os.path.exists("/proc/%d" % infra_b) or True
    for p in (a, b):
        env.stop(p)
        env.remove(p)
    assert env.leaks() == {}


def test_restart_after_reboot_like_loss(env):
    """runroot state lost (netns pin, runc state, infra) as after a reboot:
    the pod reads NOTREADY, and Stop still releases its IP (CNI cache)."""
    pid = env.run(env.config("reboot"))
    netns = env.info(pid)["netns"]
    env.cri.close()
    assert env.daemon.stop() == 0
    env.daemon.proc = None
    sh(bundle.RUNC, "--root", env.runc_root, "delete", "--force", pid)
    for m in mounts_under(env.daemon.runroot):
        sh("umount", "-l", m)
    shutil.rmtree(env.daemon.runroot)
    env.start()
    assert env.status(pid).status.state == NOTREADY
    assert len(env.net.leases()) == 1
    env.stop(pid)
    assert env.net.leases() == []
    env.remove(pid)
    assert not os.path.exists(netns)
    assert env.leaks() == {}


def test_daemon_killed_during_run_is_cleaned_up_on_restart(envf):
    """SIGKILL while RunPodSandbox waits on a hung CNI ADD: the "creating"
    record makes the next start tear down the half-made pod (infra, netns,
    shm, record, name)."""
    env = envf()
    pidfile = os.path.join(env.base, "plugin.pid")
    env.wrap_plugin("bridge", 'if [ "$CNI_COMMAND" = ADD ]; then echo $$ > %s; '
                    'exec sleep 600; fi' % pidfile)
    fut = env.cri.future("RunPodSandbox", timeout=60, config=env.config("crash"))
    deadline = time.monotonic() + 20
    while not os.path.exists(pidfile) or not env.runc_list():
        assert time.monotonic() < deadline, env.daemon.logs()
        time.sleep(0.05)
    env.cri.close()
    env.daemon.stop(signal.SIGKILL)
    with open(pidfile) as f:
        os.kill(int(f.read()), signal.SIGKILL)
    with pytest.raises(grpc.RpcError):
        fut.result()
    os.unlink(os.path.join(env.wrapper_dir, "bridge"))
    env.daemon.proc = None
    env.start()
    assert env.list() == []
    assert env.leaks() == {}, env.daemon.logs()[-3000:]
    pid = env.run(env.config("crash"))  # the name is free again
    env.remove(pid)


CRICTL = os.environ.get("CRICTL") or shutil.which("crictl")


@pytest.mark.skipif(not CRICTL, reason="crictl not installed")
def test_crictl_runp_pods_inspectp_stopp_rmp(env):
    def crictl(*args):
        r = subprocess.run([CRICTL, "--runtime-endpoint", "unix://" + env.daemon.socket,
                            "--image-endpoint", "unix://" + env.daemon.socket, "--timeout",
                            "60s"] + list(args), capture_output=True, text=True, timeout=90)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout
    cfg = os.path.join(env.base, "pod.json")
    with open(cfg, "w") as f:
        json.dump({"metadata": {"name": "crictl-pod", "namespace": "default", "uid": "u-crictl",
                                "attempt": 1},
                   "hostname": "crictl-host", "labels": {"app": "crictl"},
                   "log_directory": os.path.join(env.base, "logs"),
                   "dns_config": {"servers": ["10.10.10.10"], "searches": ["google.com"],
                                  "options": ["ndots:8"]},
                   "linux": {}}, f)
    pid = crictl("runp", cfg).strip()
    assert len(pid) == 64
    out = crictl("pods")
    assert pid[:13] in out and "crictl-pod" in out and "Ready" in out
    assert crictl("pods", "-q", "--label", "app=crictl").split() == [pid]
    assert crictl("pods", "-q", "--state", "NotReady").split() == []
    inspect = json.loads(crictl("inspectp", pid[:13]))
    assert inspect["status"]["id"] == pid
    assert inspect["status"]["state"] == "SANDBOX_READY"
    assert inspect["status"]["metadata"]["attempt"] == 1
    assert inspect["status"]["network"]["ip"].startswith(env.net.subnet_prefix + ".")
    assert inspect["info"]["pid"] > 0
    assert inspect["info"]["runtimeSpec"]["hostname"] == "crictl-host"
    crictl("stopp", pid[:13])
    assert crictl("pods", "-q", "--state", "NotReady").split() == [pid]
    crictl("rmp", pid[:13])
    assert crictl("pods", "-q") == ""
    assert env.leaks() == {}


def test_concurrent_runs_and_removes(env):
    futs = [env.cri.future("RunPodSandbox", timeout=120, config=env.config("c%d" % i))
            for i in range(8)]
    ids = [f.result().pod_sandbox_id for f in futs]
    assert len(set(ids)) == 8
    ips = {env.status(p).status.network.ip for p in ids}
    assert len(ips) == 8
    assert all(p.state == READY for p in env.list())
    # Stop and Remove racing on the same pods, twice each
    futs = []
    for p in ids:
        futs.append(env.cri.future("StopPodSandbox", timeout=120, pod_sandbox_id=p))
        futs.append(env.cri.future("RemovePodSandbox", timeout=120, pod_sandbox_id=p))
        futs.append(env.cri.future("RemovePodSandbox", timeout=120, pod_sandbox_id=p))
    for f in futs:
        f.result()
    assert env.list() == []
    assert env.leaks() == {}
