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
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = next((a for a in sys.argv[1:] if not a.startswith("-") and os.path.isdir(a)),
             "/tmp/build-sandbox")
RUNS = int(sys.argv[sys.argv.index("-n") + 1]) if "-n" in sys.argv else 20
os.environ.setdefault("CRICKETD", os.path.join(BUILD, "cricketd"))
os.environ.setdefault("CRICKET_CONMON", os.path.join(BUILD, "cricket-conmon"))
os.environ.setdefault("CRICKET_PAUSE", os.path.join(BUILD, "cricket-pause"))
os.environ.setdefault("CRI_PY_GEN", os.path.join(BUILD, "gen", "py"))
sys.path.insert(0, os.path.join(HERE, "..", "test", "e2e"))

import test_sandbox as ts  # noqa: E402


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def row(name, values):
    print("%-34s median %7.1f ms   p95 %7.1f ms" % (name, statistics.median(values),
                                                   pct(values, 95)))


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
        leaks = env.leaks()
        if leaks:
            print("LEAKS: %r" % leaks)
            return 1
        return 0
    finally:
        env.cleanup()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
