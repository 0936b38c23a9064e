#!/usr/bin/python3
"""Per-pod start with and without an infra process, interleaved.

    bench/pod_start_ab.py [BUILD_DIR] [-n PODS] [-p PARALLEL]

Two cricketd (from BUILD_DIR) side by side, each on its own root, bridge and
subnet, sharing one registry (busybox on 127.0.0.1): A with
`runtime.drop_infra: false` (a pause process in every pod, as before), B with
the default (no infra for pods that do not share PID). Pods are kubelet's
default (namespace_options.pid CONTAINER). A pod start is RunPodSandbox +
CreateContainer + StartContainer of a busybox `sleep`, as in bench/compare.py.
The two daemons take turns (A, B, A, B ... sequentially; then rounds of
PARALLEL pods at once, A's round then B's), so a load change on the shared
machine hits both alike. Prints median and p90 per daemon, the ratio B/A,
the CPU each daemon and what it forks used per pod start (cgroup v2), the
processes per running pod, and the load average. Asserts nothing; cleans up
(leaks are reported)."""
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from benchlib import build_dir, opt, pct, report_leaks, use_build

BUILD = build_dir("/tmp/build-sandbox")
PODS = opt("-n", 20)
PAR = opt("-p", 4)
use_build(BUILD)

import test_sandbox as ts  # noqa: E402
from registry import busybox_registry, registry_config  # noqa: E402
from sandbox_bench import cpu_cgroup, cpu_usec, drop_cgroup  # noqa: E402

api = ts.api_pb2


class Side:
    def __init__(self, name, dropin, reg):
        self.name = name
        self.base = tempfile.mkdtemp(prefix="ab-bench-", dir="/tmp")
        self.env = ts.Env(self.base, extra_config=registry_config(reg.host))
        self.env.daemon.extra_args = ["--log-level", "info"]
        os.makedirs(os.path.join(self.base, "cricket.d"))
        with open(os.path.join(self.base, "cricket.d", "50-bench.yaml"), "w") as f:
            f.write(dropin)
        self.cg = None
        self.n = 0
        self.seq, self.par, self.cpu_us, self.started = [], [], 0, 0

    def start(self):
        self.env.start()
        self.cg = cpu_cgroup(self.env.daemon.proc.pid)
        self.env.cri.call("PullImage", timeout=120, image=api.ImageSpec(image="busybox"))
        self.pod()  # warm-up
        self.remove_all()

    def pod(self):
        self.n += 1
        tag = "%s-%d" % (self.name, self.n)
        ns = api.NamespaceOption(pid=api.CONTAINER)
        cfg = self.env.config(tag, hostname="h" + tag, linux=api.LinuxPodSandboxConfig(
            security_context=api.LinuxSandboxSecurityContext(namespace_options=ns)))
        ccfg = api.ContainerConfig(metadata=api.ContainerMetadata(name="c"),
                                   image=api.ImageSpec(image="busybox"),
                                   command=["sleep", "100000"])
        cri = self.env.cri
        c0, t0 = cpu_usec(self.cg), time.perf_counter()
        pid = cri.call("RunPodSandbox", timeout=120, config=cfg).pod_sandbox_id
        cid = cri.call("CreateContainer", timeout=60, pod_sandbox_id=pid, config=ccfg,
                       sandbox_config=cfg).container_id
        cri.call("StartContainer", timeout=60, container_id=cid)
        took = (time.perf_counter() - t0) * 1000
        self.cpu_us += cpu_usec(self.cg) - c0
        self.started += 1
        return took

    def processes_per_pod(self):
        """Monitors + processes of runc containers (pause, sleep) per pod."""
        pods = len(self.env.list())
        return (len(ts.monitors_under(self.base)) + len(self.env.runc_list())) / float(pods)

    def remove_all(self):
        for p in self.env.list():
            self.env.remove(p.id)

    def close(self):
        rc = 0
        try:
            if self.env.cri:
                self.remove_all()
                rc = report_leaks(self.env)
        finally:
            self.env.cleanup()
            drop_cgroup(self.cg)
            shutil.rmtree(self.base, ignore_errors=True)
        return rc


def show(what, a, b):
    ma, mb = statistics.median(a), statistics.median(b)
    print("%-30s %9.1f %9.1f   %9.1f %9.1f   %5.2f" % (what, ma, pct(a, 90), mb, pct(b, 90),
                                                      mb / ma))


def main():
    with busybox_registry("ab-bench-reg-") as reg:
        a = Side("a", "runtime:\n  drop_infra: false\n", reg)
        b = Side("b", "", reg)
        try:
            a.start()
            b.start()
            for _ in range(PODS):
                a.seq.append(a.pod())
                b.seq.append(b.pod())
            procs = (a.processes_per_pod(), b.processes_per_pod())
            cpu = (a.cpu_us / 1000.0 / a.started, b.cpu_us / 1000.0 / b.started)
            a.remove_all()
            b.remove_all()
            with ThreadPoolExecutor(PAR) as ex:
                for _ in range(max(1, PODS // PAR)):
                    for side in (a, b):
                        side.par += list(ex.map(lambda _i, s=side: s.pod(), range(PAR)))
            print("cricketd %s, %d pods each, pid CONTAINER, bridge + host-local, runc"
                  % (BUILD, PODS))
            print("%-30s %19s   %19s   %5s" % ("ms (median, p90)", "A: pause (before)",
                                                "B: no infra (after)", "B/A"))
            show("pod start sequential", a.seq, b.seq)
            show("pod start %d parallel" % PAR, a.par, b.par)
            print("%-30s %9.1f %9s   %9.1f %9s" % ("CPU per sequential pod start", cpu[0], "",
                                                   cpu[1], ""))
            print("%-30s %9.1f %9s   %9.1f" % ("processes per running pod", procs[0], "",
                                               procs[1]))
            print("load average %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
        finally:
            rc = a.close() | b.close()
    return rc


if __name__ == "__main__":
    sys.exit(main())
