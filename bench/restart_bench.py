#!/usr/bin/python3
"""Daemon restart with pods running, as kubelet sees it.

    bench/restart_bench.py [BUILD_DIR] [-n PODS] [-k RESTARTS]

Starts cricketd (from BUILD_DIR) on a temporary root with its own bridge and
subnet and a registry on 127.0.0.1 holding busybox, starts PODS pods each
running one busybox `sleep`, then RESTARTS times: SIGTERM, start again, and
times (from the new process's start)
- until the socket answers Version,
- until ListContainers shows all PODS containers RUNNING and
  ListPodSandbox all PODS pods READY.
Prints the median and p95 of both and the load average. Asserts nothing;
removes its pods, stops its daemon and registry (by PID), deletes its
bridge, leases and temp dirs, and reports leaks."""
import os
import shutil
import sys
import tempfile
import time

from benchlib import build_dir, opt, report_leaks, row, use_build

BUILD = build_dir("/tmp/build-restart")
PODS, RESTARTS = opt("-n", 50), opt("-k", 7)
use_build(BUILD)

import test_sandbox as ts  # noqa: E402
from conftest import Cri, api_pb2  # noqa: E402
from registry import busybox_registry, registry_config  # noqa: E402


def start_pods(env, n):
    logs = os.path.join(env.base, "logs")
    for i in range(n):
        cfg = env.config("r-%d" % i, log_directory=logs)
        ccfg = api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name="c"), image=api_pb2.ImageSpec(image="busybox"),
            command=["/bin/sleep", "100000"], log_path="c-%d.log" % i)
        pod = env.run(cfg)
        cid = env.cri.call("CreateContainer", timeout=60, pod_sandbox_id=pod, config=ccfg,
                           sandbox_config=cfg).container_id
        env.cri.call("StartContainer", timeout=60, container_id=cid)


def served(cri, n):
    running = api_pb2.ContainerFilter(state=api_pb2.ContainerStateValue(
        state=api_pb2.CONTAINER_RUNNING))
    ready = api_pb2.PodSandboxFilter(state=api_pb2.PodSandboxStateValue(
        state=api_pb2.SANDBOX_READY))
    return (len(cri.call("ListContainers", timeout=10, filter=running).containers) >= n and
            len(cri.call("ListPodSandbox", timeout=10, filter=ready).items) >= n)


def restart_once(env):
    """(ms until Version answers, ms until all are served)"""
    env.cri.close()
    env.daemon.stop()
    env.daemon.proc = None
    t0 = time.perf_counter()
    env.daemon.start(wait=False)
    cri = env.cri = Cri(env.daemon.socket)
    answered = None
    while True:
        if env.daemon.proc.poll() is not None:
            raise RuntimeError("cricketd exited:\n" + env.daemon.logs()[-3000:])
        try:
            if answered is None and os.path.exists(env.daemon.socket):
                cri.call("Version", timeout=2, version="0.1.0")
                answered = (time.perf_counter() - t0) * 1e3
            if answered is not None and served(cri, PODS):
                return answered, (time.perf_counter() - t0) * 1e3
        except Exception:  # noqa: BLE001 (not serving yet)
            # a fresh channel: a failed one waits out gRPC's reconnect backoff
            cri.close()
            cri = env.cri = Cri(env.daemon.socket)
        if time.perf_counter() - t0 > 120:
            raise RuntimeError("not served 120 s after restart")
        time.sleep(0.002)


def main():
    with busybox_registry("cricket-rbench-reg-") as reg:
        base = tempfile.mkdtemp(prefix="rs-bench-", dir="/tmp")
        env = ts.Env(base, extra_config=registry_config(reg.host))
        env.daemon.extra_args = ["--log-level", "info"]
        try:
            env.start()
            env.cri.call("PullImage", timeout=300, image=api_pb2.ImageSpec(image="busybox"))
            start_pods(env, PODS)
            sock, total = [], []
            for _ in range(RESTARTS):
                a, b = restart_once(env)
                sock.append(a)
                total.append(b)
            print("cricketd %s, %d pods (1 container each), %d restarts, load average %s" %
                  (BUILD, PODS, RESTARTS, " ".join(open("/proc/loadavg").read().split()[:3])))
            row("socket answers Version", sock)
            row("all RUNNING and READY", total)
            for p in env.list():
                env.stop(p.id)
                env.remove(p.id)
            return report_leaks(env)
        finally:
            env.cleanup()
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
