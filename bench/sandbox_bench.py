#!/usr/bin/python3
"""Pod sandbox latency through the CRI socket, as kubelet sees it.

    bench/sandbox_bench.py [BUILD_DIR] [-n RUNS]

Starts cricketd (from BUILD_DIR) on a temporary root with its own bridge and
subnet (bridge + host-local, the Debian CNI plugins), then N times:
RunPodSandbox, PodSandboxStatus(verbose), StopPodSandbox + RemovePodSandbox.
Prints median and p95 of RunPodSandbox and of Stop+Remove, and the split of
RunPodSandbox reported by the daemon in the verbose info (`timings`): netns
pinning, CNI ADD (after the pod files, on a second thread) and infra (shm
mount + spec, then monitor + runc create + runc start), which run
concurrently, and the rest. Needs root, runc, busybox-static and
containernetworking-plugins. Cleans up its pods, bridge and temp dir."""
import json
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import build_dir, opt, report_leaks, row as row40, use_build

BUILD = build_dir("/tmp/build-sandbox")
RUNS = opt("-n", 20)
use_build(BUILD)

import test_sandbox as ts  # noqa: E402


def row(name, values):
    row40(name, values, width=34)


def main():
    base = tempfile.mkdtemp(prefix="sb-bench-", dir="/tmp")
    env = ts.Env(base)
    env.daemon.extra_args = ["--log-level", "info"]
    try:
        env.start()
        # warm-up: builds the infra rootfs once
        pid = env.run(env.config("warm"))
        env.remove(pid)
        run, stop, netns, cni, infra, files, rest = [], [], [], [], [], [], []
        for i in range(RUNS):
            t0 = time.perf_counter()
            pid = env.run(env.config("bench-%d" % i))
            run.append((time.perf_counter() - t0) * 1000)
            t = env.info(pid)["timings"]
            netns.append(t["netnsNs"] / 1e6)
            cni.append(t["cniNs"] / 1e6)
            infra.append(t["infraNs"] / 1e6)
            files.append(t["filesNs"] / 1e6)
            rest.append(t["totalNs"] / 1e6 - t["netnsNs"] / 1e6 -
                        max(t["cniNs"], t["infraNs"]) / 1e6)
            t0 = time.perf_counter()
            env.stop(pid)
            env.remove(pid)
            stop.append((time.perf_counter() - t0) * 1000)
        print("cricketd %s, %d runs, bridge + host-local, runc" % (BUILD, RUNS))
        row("RunPodSandbox (client)", run)
        row("  netns pin", netns)
        row("  CNI ADD (concurrent)", cni)
        row("  infra (concurrent with CNI)", infra)
        row("    of which shm mount + spec", files)
        row("    of which monitor+runc create+start", [a - b for a, b in zip(infra, files)])
        row("  rest (validate, files, LMDB)", rest)
        row("StopPodSandbox+RemovePodSandbox", stop)
        return report_leaks(env)
    finally:
        env.cleanup()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
