"""A standalone kubelet (static pods) driving a real cricketd: the node the
scenarios in test_node.py run on. Everything lives under one temporary
directory and is stopped by PID and cleaned up even when a test failed:
kubelet, cricketd, the docker-registry serving busybox as docker.io, the
test's own bridge and subnet, kubelet's cgroups and /var/log/pods dirs."""
import json
import os
import random
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.join(os.path.dirname(HERE), "e2e")
sys.path.insert(0, E2E)

import bundle  # noqa: E402
from conftest import Cri, Daemon, pull  # noqa: E402
import registry  # noqa: E402
from test_sandbox import HOST_LOCAL_DIR, Net, monitors_under, mounts_under  # noqa: E402

PAUSE = os.environ.get("CRICKET_PAUSE", "")
CONMON = os.environ.get("CRICKET_CONMON", "")
CNI_BIN = "/usr/lib/cni"
POD_LOGS = "/var/log/pods"
CONTAINER_LOGS = "/var/log/containers"
CGROUP = "/sys/fs/cgroup"
# kubelet's device manager socket: a fixed path, no flag moves it
KUBELET_DIR = "/var/lib/kubelet"
DEVICE_PLUGINS = os.path.join(KUBELET_DIR, "device-plugins")
DEVICE_SOCKET = os.path.join(DEVICE_PLUGINS, "kubelet.sock")
APPLETS = ("sh", "ls", "cat", "echo", "sleep", "id", "true", "false", "[", "test", "mkdir",
           "touch", "httpd", "env", "hostname", "tar", "tty", "kill", "date")


def find_kube_bin():
    """(dir, why): the kubelet build of test/node/build.sh, or why not."""
    if os.environ.get("KUBE_BIN"):
        return os.environ["KUBE_BIN"], ""
    go = shutil.which("go") or "/usr/local/go/bin/go"
    try:
        out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True,
                             timeout=60).stdout.strip()
    except OSError:
        return None, "no Go toolchain (Go >= 1.26 builds kubelet)"
    try:
        major, minor = out[2:].split(".")[:2]
        if (int(major), int(minor)) < (1, 26):
            return None, "Go %s < 1.26 (needed to build kubelet)" % out
    except ValueError:
        return None, "cannot read the Go version (%r)" % out
    r = subprocess.run([os.path.join(HERE, "build.sh")], capture_output=True, text=True,
                       timeout=3600, env=dict(os.environ, GO=go))
    if r.returncode != 0:
        raise AssertionError("test/node/build.sh failed:\n" + r.stderr[-4000:])
    return r.stdout.strip().splitlines()[-1], ""


def busybox_image_layer():
    with open(registry.BUSYBOX, "rb") as f:
        bb = f.read()
    entries = [("bin", "dir", None, {}), ("bin/busybox", "file", bb, {"mode": 0o755})]
    entries += [("bin/" + a, "symlink", "busybox", {}) for a in APPLETS]
    entries += [("etc", "dir", None, {}),
                ("etc/passwd", "file", "root:x:0:0:root:/root:/bin/sh\n", {}),
                ("tmp", "dir", None, {"mode": 0o1777})]
    return registry.tar_bytes(entries)


def sh(*args, check=False):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=60)


class Node:
    """cricketd + kubelet on a temporary directory; pods as static manifests."""

    def __init__(self, kube_bin):
        self.kube_bin = kube_bin
        self.base = tempfile.mkdtemp(prefix="cricket-node-")
        self.tag = "%06x" % random.getrandbits(24)
        self.node_name = "crkt-node-" + self.tag
        self.namespace = "crkt-" + self.tag
        self.manifests = os.path.join(self.base, "manifests")
        os.makedirs(self.manifests)
        self.kubelet_root = os.path.join(self.base, "kubelet")
        # kubelet's cgroupRoot, this node's own: a kubelet kills every process
        # of a pod cgroup under its root that is not one of its pods ("Clean up
        # orphaned pod cgroups"), so two nodes sharing /kubepods on one machine
        # kill each other's pods
        self.cgroup_root = "/" + self.node_name
        self.cgroup_dirs = []
        # KubeletConfiguration keys and flags a subclass or a test adds
        self.kubelet_config = {}
        self.kubelet_args = []
        self.kubelet_host = "127.0.0.1"  # where kubelet serves
        self.kubelet_proc = None
        self.kubelet_log = None
        self.created_dirs = None
        self.reg = None
        self.daemon = None
        self.cri = None
        self.net = None

    # ---- setup ----

    def start(self):
        regdir = os.path.join(self.base, "registry")
        os.makedirs(regdir)
        self.reg = registry.Registry(regdir)
        registry.push_image(self.reg, "library/busybox", "latest", [busybox_image_layer()])
        self._start_cricketd()
        self._start_kubelet()
        return self

    def _start_cricketd(self):
        cni_dir = os.path.join(self.base, "net.d")
        os.makedirs(cni_dir, exist_ok=True)
        self.net = Net(cni_dir, ports=True)
        self.runc_root = os.path.join(self.base, "runc")
        self.daemon = Daemon(self.base, "")
        host = "127.0.0.1:%d" % self.reg.port
        with open(self.daemon.config, "w") as f:
            f.write("listen: unix://%s\nroot: %s\nrunroot: %s\nlog_level: debug\n" %
                    (self.daemon.socket, self.daemon.root, self.daemon.runroot))
            f.write("runtime:\n  cgroup_manager: cgroupfs\n  handlers:\n    runc:\n"
                    "      path: %s\n      root: %s\n  conmon_path: %s\n  pause_path: %s\n"
                    "network:\n  conf_dir: %s\n  plugin_dirs: [%s]\n" %
                    (bundle.RUNC, self.runc_root, CONMON, PAUSE, cni_dir, CNI_BIN))
            f.write(registry.registry_config(host))
        self.daemon.start()
        self.cri = Cri(self.daemon.socket)

    def _start_kubelet(self):
        self.port = registry.free_port()
        self.healthz_port = registry.free_port()
        cfg = {
            "kind": "KubeletConfiguration",
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "containerRuntimeEndpoint": "unix://" + self.daemon.socket,
            "staticPodPath": self.manifests,
            "fileCheckFrequency": "2s",
            # kubelet writes a pod's status at the start of each sync: without
            # periodic syncs a crash-looping container's CrashLoopBackOff shows
            # only in the instant before its restart
            "syncFrequency": "3s",
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.cgroup_root,
            "failCgroupV1": False,
            "failSwapOn": False,
            "address": self.kubelet_host,
            "port": self.port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": self.healthz_port,
            "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
            "authorization": {"mode": "AlwaysAllow"},
            "containerLogMaxSize": "1Mi",
            "containerLogMaxFiles": 3,
            "containerLogMonitorInterval": "3s",
        }
        cfg.update(self.kubelet_config)
        path = os.path.join(self.base, "kubelet.yaml")
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.kubelet_log_path = os.path.join(self.base, "kubelet.log")
        if self.created_dirs is None:  # first start only
            self.cgroup_dirs = make_cgroup_root(self.cgroup_root)
            self.created_dirs = [d for d in (KUBELET_DIR, DEVICE_PLUGINS)
                                 if not os.path.exists(d)]
        self.kubelet_log = open(self.kubelet_log_path, "ab")
        if not hasattr(self, "started"):
            self.started = time.time() - 1
        argv = [os.path.join(self.kube_bin, "kubelet"), "--config", path,
                "--root-dir", self.kubelet_root, "--cert-dir", os.path.join(self.base, "pki"),
                "--hostname-override", self.node_name, "--v=2"] + self.kubelet_args
        self.kubelet_proc = subprocess.Popen(argv, stdout=self.kubelet_log,
                                             stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.kubelet_proc.poll() is not None:
                raise AssertionError("kubelet exited with %d:\n%s" %
                                     (self.kubelet_proc.returncode, self.kubelet_logs()))
            try:
                self.pods()
                return
            except OSError:
                time.sleep(0.5)
        raise AssertionError("kubelet not serving in 60s:\n" + self.kubelet_logs())

    def restart_kubelet(self):
        """SIGTERM, wait, start again on the same root-dir and config."""
        self.kubelet_proc.send_signal(signal.SIGTERM)
        self.kubelet_proc.wait(timeout=30)
        self.kubelet_log.close()
        self._start_kubelet()

    def kill_restart_cricketd(self):
        """kill -9 cricketd (monitors live on), then start it again."""
        self.cri.close()
        self.daemon.proc.kill()
        self.daemon.proc.wait()
        self.daemon.log.close()
        self.daemon.start()
        self.cri = Cri(self.daemon.socket)

    def kubelet_logs(self, tail=6000):
        try:
            with open(self.kubelet_log_path, "rb") as f:
                return f.read().decode(errors="replace")[-tail:]
        except OSError:
            return ""

    def diagnostics(self):
        return "--- kubelet ---\n%s\n--- cricketd ---\n%s" % (
            self.kubelet_logs(), self.daemon.logs()[-4000:] if self.daemon else "")

    # ---- kubelet's view ----

    def get(self, path):
        """The body of kubelet's https://<kubelet_host>:<port><path> (bytes)."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        url = "https://%s:%d%s" % (self.kubelet_host, self.port, path)
        with urllib.request.urlopen(url, context=ctx, timeout=30) as r:
            return r.read()

    def pods(self):
        return json.loads(self.get("/pods")).get("items") or []

    def pod(self, name):
        """kubelet's PodList entry for static pod NAME (None when gone)."""
        full = "%s-%s" % (name, self.node_name)
        for p in self.pods():
            if p["metadata"]["name"] == full and p["metadata"]["namespace"] == self.namespace:
                return p
        return None

    def wait_pod(self, name, pred, what, timeout=120):
        """Polls kubelet's /pods until pred(pod) holds; returns the pod."""
        deadline = time.monotonic() + timeout
        p = None
        while time.monotonic() < deadline:
            p = self.pod(name)
            if p is not None and pred(p):
                return p
            time.sleep(0.5)
        raise AssertionError("pod %s: %s not reached in %ds; last status:\n%s\n%s" % (
            name, what, timeout, json.dumps(p and p.get("status"), indent=1),
            self.diagnostics()))

    def log_dir(self, pod):
        m = pod["metadata"]
        return os.path.join(POD_LOGS, "%s_%s_%s" % (m["namespace"], m["name"], m["uid"]))

    # ---- manifests ----

    def manifest_path(self, name):
        return os.path.join(self.manifests, name + ".json")

    def add_pod(self, name, spec):
        spec.setdefault("terminationGracePeriodSeconds", 1)
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            c.setdefault("image", "busybox:latest")
            c.setdefault("imagePullPolicy", "IfNotPresent")
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": self.namespace}, "spec": spec}
        # written beside, then renamed in: kubelet never reads half a file
        tmp = os.path.join(self.base, name + ".json.tmp")
        with open(tmp, "w") as f:
            json.dump(pod, f)
        os.rename(tmp, self.manifest_path(name))

    def remove_pod(self, name):
        try:
            os.unlink(self.manifest_path(name))
        except FileNotFoundError:
            pass

    def sandboxes(self, name):
        """cricket's sandboxes of static pod NAME (any state)."""
        full = "%s-%s" % (name, self.node_name)
        resp = self.cri.call("ListPodSandbox")
        return [s for s in resp.items
                if s.metadata.name == full and s.metadata.namespace == self.namespace]

    def wait_gone(self, name, timeout=150):
        """After remove_pod: kubelet drops the pod, cricket holds no sandbox of it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pod(name) is None and not self.sandboxes(name):
                return
            time.sleep(1)
        raise AssertionError("pod %s still there after %ds: kubelet %s, sandboxes %s\n%s" % (
            name, timeout, self.pod(name) is not None,
            [(s.id, s.state) for s in self.sandboxes(name)], self.diagnostics()))

    def wait_stopped(self, name, timeout=60):
        """After remove_pod: no sandbox of the pod is ready any more (cleanup)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(s.state != 0 for s in self.sandboxes(name)):
                return True
            time.sleep(1)
        return False

    # ---- leak accounting ----

    def resources(self):
        """What a pod may leave behind, as sets (compared before/after)."""
        netns_dir = os.path.join(self.daemon.runroot, "netns")
        return {
            "netns pins": set(os.listdir(netns_dir)) if os.path.isdir(netns_dir) else set(),
            "mounts": set(mounts_under(self.base)),
            "veths": {l.split(":")[1].strip().split("@")[0] for l in self.net.veths()},
            "leases": set(self.net.leases()),
            "monitors": set(monitors_under(self.base)),
            "runc containers": set(self._runc_list()),
        }

    def _runc_list(self):
        if not os.path.isdir(self.runc_root):
            return []
        return sh(bundle.RUNC, "--root", self.runc_root, "list", "-q").stdout.split()

    # ---- teardown ----

    def stop(self):
        for f in os.listdir(self.manifests):
            os.unlink(os.path.join(self.manifests, f))
        if self.kubelet_proc is not None and self.kubelet_proc.poll() is None:
            self.kubelet_proc.send_signal(signal.SIGTERM)
            try:
                self.kubelet_proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kubelet_proc.kill()
                self.kubelet_proc.wait()
        if self.kubelet_log:
            self.kubelet_log.close()
            # what kubelet made outside its --root-dir (its socket is stale now)
            if os.path.exists(DEVICE_SOCKET) and os.stat(DEVICE_SOCKET).st_mtime >= self.started:
                os.unlink(DEVICE_SOCKET)
            for d in reversed(self.created_dirs):
                shutil.rmtree(d, ignore_errors=True)
        if self.cri is not None:
            try:
                for s in self.cri.call("ListPodSandbox").items:
                    self.cri.call("StopPodSandbox", timeout=60, pod_sandbox_id=s.id)
                    self.cri.call("RemovePodSandbox", timeout=60, pod_sandbox_id=s.id)
            except Exception:  # noqa: BLE001 -- best effort, leftovers handled below
                pass
            self.cri.close()
        if self.daemon is not None and self.daemon.proc is not None:
            try:
                self.daemon.stop()
            except AssertionError:
                pass
        for cid in self._runc_list():
            sh(bundle.RUNC, "--root", self.runc_root, "delete", "--force", cid)
        for pid in monitors_under(self.base):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for m in sorted(mounts_under(self.base), key=len, reverse=True):
            sh("umount", "-l", m)
        if self.net is not None:
            self.net.destroy()
        if self.reg is not None:
            self.reg.stop()
        remove_cgroups(self.cgroup_dirs)
        keep = os.environ.get("CRICKET_NODE_KEEP_LOGS")
        if keep:  # a directory to copy kubelet's and cricketd's logs into
            os.makedirs(keep, exist_ok=True)
            for f in ("kubelet.log", "cricketd.log"):
                if os.path.exists(os.path.join(self.base, f)):
                    shutil.copy(os.path.join(self.base, f),
                                os.path.join(keep, "%s-%s" % (self.node_name, f)))
        for d in (POD_LOGS, CONTAINER_LOGS):
            if os.path.isdir(d):
                for n in os.listdir(d):
                    if self.namespace in n:
                        p = os.path.join(d, n)
                        if os.path.islink(p) or not os.path.isdir(p):
                            os.unlink(p)
                        else:
                            shutil.rmtree(p, ignore_errors=True)
        shutil.rmtree(self.base, ignore_errors=True)


def make_cgroup_root(rel):
    """Creates cgroup REL in every hierarchy kubelet uses (v1: each controller
    mount; v2: the one tree, with the controllers enabled below it); returns
    the directories made."""
    rel = rel.strip("/")
    if os.path.exists(os.path.join(CGROUP, "cgroup.controllers")):  # v2
        d = os.path.join(CGROUP, rel)
        os.mkdir(d)
        with open(os.path.join(CGROUP, "cgroup.subtree_control")) as f:
            ctrls = f.read().split()
        with open(os.path.join(d, "cgroup.subtree_control"), "w") as f:
            f.write(" ".join("+" + c for c in ctrls))
        return [d]
    made = []
    for ctrl in sorted(os.listdir(CGROUP)):
        top = os.path.join(CGROUP, ctrl)
        if ctrl == "unified" or os.path.islink(top) or not os.path.isdir(top):
            continue
        d = os.path.join(top, rel)
        os.mkdir(d)
        made.append(d)
        if os.path.exists(os.path.join(top, "cpuset.cpus")):  # empty in a new cpuset
            for f in ("cpuset.cpus", "cpuset.mems"):
                with open(os.path.join(top, f)) as src, open(os.path.join(d, f), "w") as dst:
                    dst.write(src.read())
    return made


def remove_cgroups(dirs):
    """The node's cgroup root and kubelet's QoS and pod cgroups below it
    (empty once kubelet and cricketd are gone), depth first."""
    for top in dirs:
        for root, subdirs, _ in os.walk(top, topdown=False):
            for d in subdirs:
                try:
                    os.rmdir(os.path.join(root, d))
                except OSError:
                    pass
        try:
            os.rmdir(top)
        except OSError:
            pass


def prereqs(cni=True):
    """(ok, why): what a node test module needs here, why not (its skip
    reason); cni: the CNI bridge plugin too."""
    ok, why = bundle.have_prereqs()
    if ok and not (PAUSE and CONMON):
        ok, why = False, "CRICKET_PAUSE/CRICKET_CONMON not set"
    if cni and ok and not os.path.exists(os.path.join(CNI_BIN, "bridge")):
        ok, why = False, "containernetworking-plugins not installed"
    return ok, why


def module_node(cls=Node, kubelet_config=None):
    """The body of a module-scoped node fixture (`yield from` it): a started
    cls (kubelet_config entries added before the start), stopped after; the
    module is skipped when there is no kubelet build."""
    kube_bin, reason = find_kube_bin()
    if kube_bin is None:
        pytest.skip(reason)
    n = cls(kube_bin)
    n.kubelet_config.update(kubelet_config or {})
    try:
        n.start()
        yield n
    finally:
        n.stop()
