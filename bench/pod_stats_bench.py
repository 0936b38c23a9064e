#!/usr/bin/python3
"""PodSandboxStats figures: ListPodSandboxStats (and ListPodSandboxMetrics,
StreamPodSandboxStats) over many pods.

    bench/pod_stats_bench.py [BUILD_DIR] [-p PODS] [-n CALLS] [-c 0|1]

Starts cricketd (from BUILD_DIR) on a temporary root with its own bridge and
subnet and a registry on 127.0.0.1 holding busybox-static (the test/e2e
helpers), runs PODS pods (default 50), each in a cgroup parent of its own
and, with -c 1 (the default), with one `sleep` container. Then calls each
RPC CALLS times (default 30) and prints the median and p90 of the call
time, plus what one call costs per pod. A figure to read, not a test: no
assertion on time. Removes its pods, stops its daemon and registry (by
PID), deletes its bridge, cgroups, leases and temp dirs."""
import os
import shutil
import statistics
import sys
import tempfile
import time

from benchlib import HERE, build_dir, opt, pct, report_leaks, use_build

BUILD = build_dir(os.path.join(HERE, "..", "build"))
PODS, CALLS, CONTAINERS = opt("-p", 50), opt("-n", 30), opt("-c", 1)
use_build(BUILD)

import test_sandbox as ts  # noqa: E402
from conftest import api_pb2  # noqa: E402
from registry import busybox_registry, registry_config  # noqa: E402


def times(fn, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def report(name, values):
    med = statistics.median(values)
    print("%-34s median %7.1f ms   p90 %7.1f ms   (%.2f ms a pod)" % (
        name, med, pct(values, 90), med / PODS))


def setup(env):
    cri = env.cri
    cri.call("PullImage", timeout=120, image=api_pb2.ImageSpec(image="busybox"))
    logs = os.path.join(env.base, "logs")
    t0 = time.perf_counter()
    for i in range(PODS):
        lx = api_pb2.LinuxPodSandboxConfig(cgroup_parent="/%s/pod%d" % (env.net.name, i))
        cfg = env.config("b%d" % i, log_directory=logs, linux=lx, labels={"bench": "1"})
        pod = env.run(cfg)
        if CONTAINERS:
            ccfg = api_pb2.ContainerConfig(
                metadata=api_pb2.ContainerMetadata(name="c"),
                image=api_pb2.ImageSpec(image="busybox"), command=["/bin/sleep", "100000"],
                log_path="c%d.log" % i)
            cid = cri.call("CreateContainer", timeout=60, pod_sandbox_id=pod, config=ccfg,
                           sandbox_config=cfg).container_id
            cri.call("StartContainer", timeout=60, container_id=cid)
    print("cricketd %s; %d pods, %d container(s) each (set up in %.1f s)" % (
        BUILD, PODS, CONTAINERS, time.perf_counter() - t0))


def remove_cgroups(name):
    for root, dirs, _ in os.walk("/sys/fs/cgroup", topdown=False):
        if name in root.split("/"):
            try:
                os.rmdir(root)
            except OSError:
                pass


def main():
    with busybox_registry("cricket-psbench-reg-") as reg:
        return bench(reg)


def bench(reg):
    env, base = None, tempfile.mkdtemp(prefix="psb-bench-", dir="/tmp")
    try:
        env = ts.Env(base, extra_config=registry_config(reg.host))
        env.start()
        setup(env)
        cri = env.cri
        n = len(cri.call("ListPodSandboxStats", timeout=120).stats)
        assert n == PODS, n
        report("ListPodSandboxStats", times(
            lambda: cri.call("ListPodSandboxStats", timeout=120), CALLS))
        report("StreamPodSandboxStats", times(
            lambda: list(cri.call("StreamPodSandboxStats", timeout=120)), CALLS))
        report("ListPodSandboxMetrics", times(
            lambda: cri.call("ListPodSandboxMetrics", timeout=120), CALLS))
        report("ListContainerStats", times(
            lambda: cri.call("ListContainerStats", timeout=120), CALLS))
        one = cri.call("ListPodSandboxStats").stats[0].attributes.id
        report("PodSandboxStats (one pod)", times(
            lambda: cri.call("PodSandboxStats", pod_sandbox_id=one), CALLS))
        for p in env.list():
            env.remove(p.id)
        return report_leaks(env)
    finally:
        try:
            if env is not None:
                env.cleanup()
        finally:
            if env is not None:
                env.net.destroy()  # even when the daemon would not stop
                remove_cgroups(env.net.name)
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
