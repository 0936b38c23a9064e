#!/usr/bin/python3
"""cricket against Debian's containerd, side by side, in one run.

    bench/compare.py [BUILD_DIR] [-n PODS] [-p PARALLEL] [-e EXECS]
                     [--baseline OLD_BUILD_DIR] [--only cricket|containerd|baseline]

Both runtimes get the same registry (Debian's docker-registry on 127.0.0.1,
docker.io mirrored to it), the same CNI chain (bridge + host-local + portmap,
Debian's plugins, a bridge and subnet of the run's own), the same runc and
the same pause binary (cricket-pause; containerd gets it as its sandbox
image). Each runs alone on the CPUs, on a root, state dir and socket of its
own. Figures (median and p90 unless said otherwise):

  pod start        RunPodSandbox + CreateContainer + StartContainer of a
                   busybox `sleep`, PODS in sequence, then PODS with PARALLEL
                   clients (per-pod latency)
  ExecSync         `true` in a running container, EXECS times; again in a
                   container with the RuntimeDefault seccomp profile
  pull             three images, cold (absent from the store): busybox, a
                   toolchain-like image (gcc's and python's library trees:
                   compressible binaries and sources) and one of 40,000 small
                   files; then RemoveImage of each
  RemoveContainer  of a stopped container
  idle RSS         the daemon after the pulls, no pods
  restart          with PODS pods running: SIGTERM, start, time until
                   ListContainers shows them all RUNNING
  per-pod PSS      (daemon growth + the runtime's helper processes: monitors
                   or shims) / PODS
  CPU per pod      the whole machine's busy CPU time (/proc/stat) during the
                   sequential pod starts / PODS: daemon, monitors or shims,
                   runc, CNI plugins and the pods' own start

--baseline OLD_BUILD_DIR measures a second cricket (an older build: its
cricketd, cricket-conmon and cricket-pause) in the same run, so a change is
shown before and after beside containerd. Then one table: the columns,
cricket/containerd (and baseline/containerd), and the issue's goal for the
ratio (or the absolute figure) with whether cricket meets it. Nothing is
asserted; leaks are reported.

Pods carry the namespace options kubelet sends by default (pid CONTAINER):
cricket runs them without an infra process unless CRICKET_BENCH_DROPIN (a
cricket.d drop-in's text, e.g. "runtime:\n  drop_infra: false\n") says
otherwise. Needs root, runc, containerd, docker-registry,
busybox-static and containernetworking-plugins."""
import gzip
import io
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from benchlib import build_dir, opt, pct, use_build

BUILD = build_dir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build"))
PODS = opt("-n", 50)
PAR = opt("-p", 4)
EXECS = opt("-e", 50)
ONLY = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
BASELINE = sys.argv[sys.argv.index("--baseline") + 1] if "--baseline" in sys.argv else None
use_build(BUILD)

import test_sandbox as ts  # noqa: E402
from conftest import Cri, api_pb2  # noqa: E402
from registry import Registry, busybox_layer, push_image, registry_config, tar_bytes  # noqa: E402

CONTAINERD = shutil.which("containerd")


def ms(t0):
    return (time.perf_counter() - t0) * 1e3


def mem_kb(pid, key):
    path = "/proc/%d/%s" % (pid, "status" if key == "VmRSS:" else "smaps_rollup")
    try:
        with open(path) as f:
            return next(int(l.split()[1]) for l in f if l.startswith(key))
    except (OSError, StopIteration):
        return 0


# ---- images -------------------------------------------------------------


def tree_layer(roots):
    """A layer with the host trees under roots, as they are (regular files,
    dirs and symlinks), owned by root."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for root in roots:
            def owner(ti):
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = ""
                return ti if ti.isfile() or ti.isdir() or ti.issym() else None
            t.add(root, arcname=root.lstrip("/"), filter=owner)
    return buf.getvalue()


def small_files_layer(n=40000, per_dir=400, seed=7):
    r = random.Random(seed)
    words = [bytes(r.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(r.randrange(3, 9)))
             for _ in range(2000)]
    entries = []
    for i in range(n):
        if i % per_dir == 0:
            entries.append(("data/d%03d" % (i // per_dir), "dir", None, {}))
        body = b" ".join(r.choice(words) for _ in range(r.randrange(20, 300)))
        entries.append(("data/d%03d/f%05d.txt" % (i // per_dir, i), "file", body, {}))
    return tar_bytes(entries)


def push_images(reg, pause_path):
    with open(pause_path, "rb") as f:
        pause = tar_bytes([("pause", "file", f.read(), {"mode": 0o755})])
    push_image(reg, "library/pause", "bench", [pause], config_extra={"Entrypoint": ["/pause"]})
    bb = busybox_layer()
    images = {"busybox": [bb],
              "toolchain": [bb, tree_layer(["/usr/lib/gcc/x86_64-linux-gnu/12"]),
                            tree_layer(["/usr/lib/python3.11", "/usr/include/linux"])],
              "smallfiles": [bb, small_files_layer()]}
    info = {}
    for name, layers in images.items():
        push_image(reg, "library/" + name, "latest", layers)
        blobs = sum(len(gzip.compress(l, compresslevel=1, mtime=0)) for l in layers)
        files = sum(len(tarfile.open(fileobj=io.BytesIO(l)).getnames()) for l in layers)
        info[name] = "%d layers, %.1f MB compressed, %.0f MiB, %d entries" % (
            len(layers), blobs / 1e6, sum(map(len, layers)) / 2**20, files)
    return info


# ---- the two runtimes ---------------------------------------------------


class Cricket:
    name = "cricket"

    def __init__(self, base, reg):
        self.env = ts.Env(base, ports=True, extra_config=registry_config(reg.host))
        self.env.daemon.extra_args = ["--log-level", "info"]
        if os.environ.get("CRICKET_BENCH_DROPIN"):  # e.g. "runtime:\n  drop_infra: false\n"
            os.makedirs(os.path.join(base, "cricket.d"), exist_ok=True)
            with open(os.path.join(base, "cricket.d", "50-bench.yaml"), "w") as f:
                f.write(os.environ["CRICKET_BENCH_DROPIN"])
        self.net = self.env.net
        self.base = base

    def start(self):
        self.env.start()
        self.cri = self.env.cri
        self.pid = self.env.daemon.proc.pid

    def restart(self):
        """SIGTERM, start again; returns the new process's start time."""
        self.cri.close()
        self.env.daemon.stop()
        self.env.daemon.proc = None
        t0 = time.perf_counter()
        self.env.daemon.start(wait=False)
        self.pid = self.env.daemon.proc.pid
        self.cri = self.env.cri = Cri(self.env.daemon.socket)
        return t0

    def helpers(self):
        return ts.monitors_under(self.base)

    def leaks(self):
        return self.env.leaks()

    def cleanup(self):
        self.env.cleanup()


class CricketBaseline(Cricket):
    """An older build of cricket, same config otherwise."""
    name = "baseline"

    def __init__(self, base, reg):
        super().__init__(base, reg)
        b = os.path.abspath(BASELINE)
        with open(self.env.daemon.config) as f:
            text = f.read()
        text = text.replace("conmon_path: %s" % ts.CONMON,
                            "conmon_path: %s" % os.path.join(b, "cricket-conmon"))
        with open(self.env.daemon.config, "w") as f:
            f.write(text)
        self.env.daemon.binary = os.path.join(b, "cricketd")


class Containerd:
    name = "containerd"

    def __init__(self, base, reg):
        self.base = base
        self.cni_dir = os.path.join(base, "net.d")
        os.makedirs(self.cni_dir)
        self.net = ts.Net(self.cni_dir, ports=True)
        self.sock = os.path.join(base, "containerd.sock")
        self.config = os.path.join(base, "config.toml")
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        with open(self.config, "w") as f:
            f.write("""version = 2
root = "{b}/root"
state = "{b}/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "{s}"
[ttrpc]
  address = "{s}.ttrpc"
[debug]
  level = "warn"
[{c}]
  sandbox_image = "docker.io/library/pause:bench"
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[{c}.cni]
  bin_dir = "{cni}"
  conf_dir = "{nd}"
  max_conf_num = 1
[{c}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[{c}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{c}.containerd.runtimes.runc.options]
  BinaryName = "{runc}"
  Root = "{b}/runc"
  SystemdCgroup = false
[{c}.registry.mirrors."docker.io"]
  endpoint = ["http://{host}"]
""".format(b=base, s=self.sock, c=cri, cni=ts.CNI_BIN, nd=self.cni_dir, runc=os.environ.get("COMPARE_RUNC") or shutil.which("runc"),
           host=reg.host))
        self.proc = None
        self.log = open(os.path.join(base, "containerd.log"), "w")

    def start(self):
        t0 = self._spawn()
        self._wait(t0)

    def _spawn(self):
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([CONTAINERD, "--config", self.config], stdout=self.log,
                                     stderr=self.log)
        self.pid = self.proc.pid
        return t0

    def _wait(self, t0):
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.perf_counter() - t0 > 30:
                raise RuntimeError("containerd did not start; see %s/containerd.log" % self.base)
            time.sleep(0.02)
        self.cri = Cri(self.sock)
        deadline = time.time() + 30
        while True:
            try:
                self.cri.call("Version", timeout=2)
                return
            except Exception:  # noqa: BLE001 (not serving yet)
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    def restart(self):
        self.cri.close()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        os.unlink(self.sock) if os.path.exists(self.sock) else None
        return self._spawn()

    def helpers(self):
        out = []
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    with open("/proc/%s/cmdline" % p, "rb") as f:
                        argv = f.read().split(b"\0")
                except OSError:
                    continue
                if argv and argv[0].endswith(b"containerd-shim-runc-v2") and \
                        self.sock.encode() in b" ".join(argv):
                    out.append(int(p))
        return out

    def leaks(self):
        out = {}
        if self.net.veths():
            out["veths"] = self.net.veths()
        if self.net.leases():
            out["leases"] = self.net.leases()
        if self.helpers():
            out["shims"] = self.helpers()
        return out

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        for pid in self.helpers():
            os.kill(pid, signal.SIGKILL)
        for m in sorted(ts.mounts_under(self.base), key=len, reverse=True):
            ts.sh("umount", "-l", m, check=False)
        self.net.destroy()
        self.log.close()


# ---- the workload -------------------------------------------------------


class Run:
    def __init__(self, rt):
        self.rt = rt
        self.logs = os.path.join(rt.base, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.n = 0
        self.lock = threading.Lock()

    def pod(self, tag, seccomp=api_pb2.SecurityProfile.Unconfined):
        meta = api_pb2.PodSandboxMetadata(name="b-" + tag, namespace="default", uid="u-" + tag)
        # the security contexts kubelet sends for a pod without
        # shareProcessNamespace and without seccompDefault: pid CONTAINER,
        # seccomp Unconfined (pod and container)
        ns = api_pb2.NamespaceOption(pid=api_pb2.CONTAINER)
        prof = api_pb2.SecurityProfile(profile_type=seccomp)
        cfg = api_pb2.PodSandboxConfig(metadata=meta, log_directory=self.logs + "/" + tag,
                                       hostname="b" + tag, linux=api_pb2.LinuxPodSandboxConfig(
                                           security_context=api_pb2.LinuxSandboxSecurityContext(
                                               namespace_options=ns, seccomp=prof)))
        ccfg = api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name="c"),
            image=api_pb2.ImageSpec(image="docker.io/library/busybox:latest"),
            command=["/bin/sleep", "100000"], log_path="c.log",
            linux=api_pb2.LinuxContainerConfig(
                security_context=api_pb2.LinuxContainerSecurityContext(
                    namespace_options=ns, seccomp=prof)))
        cri = self.rt.cri
        t0 = time.perf_counter()
        pod = cri.call("RunPodSandbox", timeout=120, config=cfg).pod_sandbox_id
        cid = cri.call("CreateContainer", timeout=60, pod_sandbox_id=pod, config=ccfg,
                       sandbox_config=cfg).container_id
        cri.call("StartContainer", timeout=60, container_id=cid)
        return pod, cid, ms(t0)

    def running(self):
        f = api_pb2.ContainerFilter(state=api_pb2.ContainerStateValue(
            state=api_pb2.CONTAINER_RUNNING))
        return len(self.rt.cri.call("ListContainers", timeout=10, filter=f).containers)

    def remove_all(self, timed=None, stops=None):
        cri = self.rt.cri
        for c in cri.call("ListContainers").containers:
            t0 = time.perf_counter()
            cri.call("StopContainer", timeout=60, container_id=c.id)
            if stops is not None:
                stops.append(ms(t0))
            t0 = time.perf_counter()
            cri.call("RemoveContainer", timeout=60, container_id=c.id)
            if timed is not None:
                timed.append(ms(t0))
        for p in cri.call("ListPodSandbox").items:
            cri.call("StopPodSandbox", timeout=60, pod_sandbox_id=p.id)
            cri.call("RemovePodSandbox", timeout=60, pod_sandbox_id=p.id)

    def pull(self, name):
        ref = "docker.io/library/%s:latest" % name
        t0 = time.perf_counter()
        self.rt.cri.call("PullImage", timeout=1200, image=api_pb2.ImageSpec(image=ref))
        pulled = ms(t0)
        t0 = time.perf_counter()
        self.rt.cri.call("RemoveImage", timeout=600, image=api_pb2.ImageSpec(image=ref))
        return pulled, ms(t0)

    def exec_true(self, cid):
        fn, req = self.rt.cri.stub("ExecSync")
        t0 = time.perf_counter()
        r = fn(req(container_id=cid, cmd=["true"], timeout=10), timeout=40)
        if r.exit_code != 0:
            raise RuntimeError("exec true: %d %r" % (r.exit_code, r.stderr))
        return ms(t0)


def busy_ticks():
    """Busy clock ticks of the whole machine (user..steal, not idle/iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v[:8]) - v[3] - v[4]


def measure(rt):
    """figure name -> (value, unit)"""
    f = {}
    run = Run(rt)
    rt.start()
    for name in ("toolchain", "smallfiles"):
        p, r = run.pull(name)
        f["pull %s (s)" % name] = p / 1e3
        f["RemoveImage %s (ms)" % name] = r
    p, _ = run.pull("busybox")
    f["pull busybox (ms)"] = p
    rt.cri.call("PullImage", timeout=600,
                image=api_pb2.ImageSpec(image="docker.io/library/busybox:latest"))
    run.pod("warm")
    run.remove_all()
    time.sleep(1)
    f["idle daemon RSS (MiB)"] = mem_kb(rt.pid, "VmRSS:") / 1024
    pss0 = mem_kb(rt.pid, "Pss:")

    t0 = busy_ticks()
    seq = [run.pod("s%d" % i) for i in range(PODS)]
    f["CPU per pod start (ms)"] = (busy_ticks() - t0) * 1e3 / os.sysconf("SC_CLK_TCK") / PODS
    f["pod start sequential, median (ms)"] = statistics.median(s[2] for s in seq)
    f["pod start sequential, p90 (ms)"] = pct([s[2] for s in seq], 90)
    time.sleep(1)
    grown = mem_kb(rt.pid, "Pss:") - pss0 + sum(mem_kb(p, "Pss:") for p in rt.helpers())
    f["per-pod overhead PSS (MiB)"] = grown / PODS / 1024
    cid = seq[0][1]
    run.exec_true(cid)
    ex = [run.exec_true(cid) for _ in range(EXECS)]
    f["ExecSync true, median (ms)"] = statistics.median(ex)
    f["ExecSync true, p90 (ms)"] = pct(ex, 90)
    # the same in a container with the RuntimeDefault seccomp profile (kubelet
    # with seccompDefault): the runtime builds the filter on every exec
    _, sc_cid, _ = run.pod("seccomp", seccomp=api_pb2.SecurityProfile.RuntimeDefault)
    run.exec_true(sc_cid)
    ex = [run.exec_true(sc_cid) for _ in range(EXECS)]
    f["ExecSync true, RuntimeDefault seccomp, median (ms)"] = statistics.median(ex)

    t0 = rt.restart()
    if isinstance(rt, Containerd):
        rt._wait(t0)
    else:
        rt.env.daemon.wait_ready()
    while True:
        try:
            if run.running() >= PODS:
                break
        except Exception:  # noqa: BLE001 (not serving yet)
            pass
        if ms(t0) > 120e3:
            raise RuntimeError("pods not all RUNNING 120 s after restart")
        time.sleep(0.01)
    f["restart with %d pods, until served (s)" % PODS] = ms(t0) / 1e3

    rm, st = [], []
    run.remove_all(timed=rm, stops=st)
    f["StopContainer, median (ms)"] = statistics.median(st)
    f["RemoveContainer, median (ms)"] = statistics.median(rm)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(PAR) as ex_:
        par = list(ex_.map(lambda i: run.pod("p%d" % i), range(PODS)))
    wall = ms(t0)
    f["pod start %d parallel, median (ms)" % PAR] = statistics.median(p[2] for p in par)
    f["pod start %d parallel, p90 (ms)" % PAR] = pct([p[2] for p in par], 90)
    f["pods/s with %d clients" % PAR] = PODS / (wall / 1e3)
    run.remove_all()
    rt.cri.call("RemoveImage", timeout=60,
                image=api_pb2.ImageSpec(image="docker.io/library/busybox:latest"))
    return f


# issue 15's goals: figure name prefix -> (kind, bound); "ratio" bounds
# cricket/containerd, "abs" bounds cricket's own figure.
GOALS = [("pod start", ("ratio", 0.7)), ("ExecSync", ("ratio", 0.8)), ("pull ", ("ratio", 0.5)),
         ("RemoveImage", ("ratio", 1.0)), ("RemoveContainer", ("ratio", 1.0)),
         ("idle daemon RSS", ("abs", 10.0)), ("restart", ("ratio", 0.5)),
         ("per-pod overhead PSS", ("ratio", 0.1)), ("CPU per pod", ("ratio", 1.0))]


def goal(name, k, c):
    for prefix, (kind, bound) in GOALS:
        if name.startswith(prefix) and k is not None:
            if kind == "abs":
                return "<= %g %s" % (bound, "met" if k <= bound else "NOT met")
            if c:
                return "<= %g %s" % (bound, "met" if k / c <= bound else "NOT met")
    return ""


def main():
    if not CONTAINERD and ONLY != "cricket":
        print("containerd not installed (apt-get install containerd)", file=sys.stderr)
        return 2
    top = tempfile.mkdtemp(prefix="cricket-compare-", dir="/tmp")
    reg = None
    results, leaks = {}, {}
    try:
        os.makedirs(os.path.join(top, "reg"))
        reg = Registry(os.path.join(top, "reg"))
        print("building and pushing images ...", file=sys.stderr)
        info = push_images(reg, os.environ.get("CRICKET_PAUSE") or
                           os.path.join(BUILD, "cricket-pause"))
        for name, what in info.items():
            print("image %-10s %s" % (name, what))
        for cls in (Cricket, CricketBaseline, Containerd):
            if (ONLY and cls.name != ONLY) or (cls is CricketBaseline and not BASELINE):
                continue
            base = os.path.join(top, cls.name)
            os.makedirs(base)
            rt = cls(base, reg)
            print("measuring %s ..." % cls.name, file=sys.stderr)
            try:
                results[cls.name] = measure(rt)
                leaks[cls.name] = rt.leaks()
            finally:
                rt.cleanup()
    finally:
        if reg:
            reg.stop()
        if os.environ.get("COMPARE_KEEP"):
            print("kept %s" % top, file=sys.stderr)
        else:
            shutil.rmtree(top, ignore_errors=True)
    names = list(next(iter(results.values())).keys())
    cols = [c for c in ("containerd", "baseline", "cricket") if c in results]
    print("\n%-40s" % ("figure (%d pods, %d parallel, %d execs)" % (PODS, PAR, EXECS)) +
          "".join("%12s" % c for c in cols) +
          ("%8s" % "base/c" if "baseline" in cols else "") + "%8s  %s" % ("ratio", "goal"))
    for n in names:
        c = results.get("containerd", {}).get(n)
        k = results.get("cricket", {}).get(n)
        b = results.get("baseline", {}).get(n)
        line = "%-40s" % n + "".join("%12s" % ("%.2f" % results[col][n]
                                              if results[col].get(n) is not None else "-")
                                     for col in cols)
        if "baseline" in cols:
            line += "%8s" % ("%.2f" % (b / c) if c and b is not None else "-")
        line += "%8s" % ("%.2f" % (k / c) if c and k is not None else "-")
        g = goal(n, k, c)
        print(line + ("  " + g if g else ""))
    for name, l in leaks.items():
        if l:
            print("LEAKS (%s): %r" % (name, l))
    return 1 if any(leaks.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
