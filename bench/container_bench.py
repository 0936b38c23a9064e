#!/usr/bin/python3
"""Container figures through the CRI socket, as kubelet sees them.

    bench/container_bench.py [BUILD_DIR] [-n RUNS] [-e EXECS] [-j PARALLEL]

Starts cricketd (from BUILD_DIR) on a temporary root with its own bridge and
subnet (bridge + host-local, the Debian CNI plugins) and a registry on
127.0.0.1 holding a busybox-static image (the test/e2e helpers), pulls it,
then prints:
- pod + container from nothing to RUNNING: RunPodSandbox + CreateContainer +
  StartContainer (`sleep`), median and p95 over RUNS, sequentially and with
  PARALLEL clients at once (RUNS in all), with the split per RPC;
- ExecSync round trip (`true`), median and p95 over EXECS;
- cricketd VmRSS and PSS idle (image pulled, after one warm-up pod) and with
  RUNS pods each running one container; the monitor of one container
  (VmRSS, PSS; median over the RUNS monitors).
Needs root, runc, busybox-static, containernetworking-plugins and Debian's
docker-registry. Removes its pods, stops its daemon and registry (by PID),
deletes its bridge, leases and temp dirs, and reports leaks."""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from benchlib import build_dir, opt, report_leaks, row, use_build

BUILD = build_dir("/tmp/build-ctr")
RUNS, EXECS, PAR = opt("-n", 20), opt("-e", 30), opt("-j", 4)
use_build(BUILD)

import test_sandbox as ts  # noqa: E402
from conftest import api_pb2  # noqa: E402
from registry import busybox_registry, registry_config  # noqa: E402


def mem_kb(pid):
    """(VmRSS, Pss) in kB."""
    with open("/proc/%d/status" % pid) as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    with open("/proc/%d/smaps_rollup" % pid) as f:
        pss = next(int(l.split()[1]) for l in f if l.startswith("Pss:"))
    return rss, pss


class Bench:
    def __init__(self, env):
        self.env, self.cri = env, env.cri
        self.logs = os.path.join(env.base, "logs")
        self.lock = threading.Lock()
        self.n = 0

    def pod_and_container(self, tag):
        """RunPodSandbox + CreateContainer + StartContainer; returns
        (pod id, container id, [run, create, start, total] in ms)."""
        cfg = self.env.config("b-" + tag, log_directory=self.logs)
        ccfg = api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name="c"), image=api_pb2.ImageSpec(image="busybox"),
            command=["/bin/sleep", "100000"], log_path="c-%s.log" % tag)
        t0 = time.perf_counter()
        pod = self.env.run(cfg)
        t1 = time.perf_counter()
        cid = self.cri.call("CreateContainer", timeout=60, pod_sandbox_id=pod, config=ccfg,
                            sandbox_config=cfg).container_id
        t2 = time.perf_counter()
        self.cri.call("StartContainer", timeout=60, container_id=cid)
        t3 = time.perf_counter()
        return pod, cid, [(t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t3 - t0) * 1e3]

    def check_running(self, cids):
        running = {c.id for c in self.cri.call("ListContainers", filter=api_pb2.ContainerFilter(
            state=api_pb2.ContainerStateValue(state=api_pb2.CONTAINER_RUNNING))).containers}
        missing = set(cids) - running
        if missing:
            raise AssertionError("not RUNNING: %r" % missing)

    def remove_all(self):
        for p in self.env.list():
            self.env.stop(p.id)
            self.env.remove(p.id)

    def exec_sync(self, cid, cmd):
        fn, req_cls = self.cri.stub("ExecSync")
        r = fn(req_cls(container_id=cid, cmd=cmd, timeout=10), timeout=40)
        if r.exit_code != 0:
            raise AssertionError("exec %r: %d %r" % (cmd, r.exit_code, r.stderr))
        return r


def report_split(title, samples):
    row(title, [s[3] for s in samples])
    row("  RunPodSandbox", [s[0] for s in samples])
    row("  CreateContainer", [s[1] for s in samples])
    row("  StartContainer", [s[2] for s in samples])


def container_monitors(base, cids):
    pids = []
    for pid in ts.monitors_under(base):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read()
        except OSError:
            continue
        if any(c.encode() in argv for c in cids):
            pids.append(pid)
    return pids


def main():
    with busybox_registry("cricket-cbench-reg-") as reg:
        return bench(reg)


def bench(reg):
    env, base = None, tempfile.mkdtemp(prefix="cb-bench-", dir="/tmp")
    try:
        env = ts.Env(base, extra_config=registry_config(reg.host))
        env.daemon.extra_args = ["--log-level", "info"]
        env.start()
        b = Bench(env)
        env.cri.call("PullImage", timeout=120, image=api_pb2.ImageSpec(image="busybox"))
        # warm-up: the infra rootfs, the image's layers mounted once
        b.pod_and_container("warm")
        b.remove_all()
        time.sleep(0.5)
        dpid = env.daemon.proc.pid
        idle = mem_kb(dpid)

        seq, cids = [], []
        for i in range(RUNS):
            _, cid, t = b.pod_and_container("s%d" % i)
            seq.append(t)
            cids.append(cid)
        b.check_running(cids)
        time.sleep(0.5)
        loaded = mem_kb(dpid)
        mons = container_monitors(base, cids)
        if len(mons) != RUNS:
            raise AssertionError("expected %d container monitors, found %r" % (RUNS, mons))
        mon = [mem_kb(p) for p in mons]

        b.exec_sync(cids[0], ["true"])  # warm-up
        execs = []
        for _ in range(EXECS):
            t0 = time.perf_counter()
            b.exec_sync(cids[0], ["true"])
            execs.append((time.perf_counter() - t0) * 1e3)
        b.remove_all()

        t0 = time.perf_counter()
        with ThreadPoolExecutor(PAR) as ex:
            res = list(ex.map(lambda i: b.pod_and_container("p%d" % i), range(RUNS)))
        wall = time.perf_counter() - t0
        b.check_running([r[1] for r in res])
        par = [r[2] for r in res]
        b.remove_all()

        print("cricketd %s, busybox from a local registry, bridge + host-local, runc" % BUILD)
        report_split("pod+container to RUNNING, sequential (%d)" % RUNS, seq)
        report_split("pod+container to RUNNING, %d parallel (%d)" % (PAR, RUNS), par)
        print("%-40s %7.1f pods/s (%d in %.2f s)" % ("  throughput with %d clients" % PAR,
                                                      RUNS / wall, RUNS, wall))
        row("ExecSync `true` round trip (%d)" % EXECS, execs)
        print("%-40s VmRSS %6d kB   PSS %6d kB" % ("cricketd idle (image pulled)", *idle))
        print("%-40s VmRSS %6d kB   PSS %6d kB" % ("cricketd with %d pods + containers" % RUNS,
                                                   *loaded))
        print("%-40s VmRSS %+6d kB   PSS %+6d kB   (%.0f / %.0f kB per pod)" % (
            "  growth", loaded[0] - idle[0], loaded[1] - idle[1],
            (loaded[0] - idle[0]) / RUNS, (loaded[1] - idle[1]) / RUNS))
        print("%-40s VmRSS %6d kB   PSS %6d kB   (median of %d; RSS %d-%d)" % (
            "one container monitor", statistics.median(m[0] for m in mon),
            statistics.median(m[1] for m in mon), len(mon), min(m[0] for m in mon),
            max(m[0] for m in mon)))
        return report_leaks(env)
    finally:
        if env is not None:
            try:
                if env.cri and env.daemon.proc is not None and env.daemon.proc.poll() is None:
                    Bench(env).remove_all()
            except Exception as e:  # noqa: BLE001 (cleanup below still runs)
                print("cleanup through the CRI failed: %s" % e, file=sys.stderr)
            env.cleanup()  # daemon, runc state, monitors by PID, mounts, bridge, leases
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
