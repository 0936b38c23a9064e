#!/usr/bin/python3
"""Pod sandbox latency through the CRI socket, as kubelet sees it.

    bench/sandbox_bench.py [BUILD_DIR] [-n RUNS] [-k PODS]

For each of two configs, with pods as kubelet sends them by default
(namespace_options.pid CONTAINER): `runtime.drop_infra: false` (a pause
process in every pod, as before) and the default (no infra process: the
netns, ipc and uts namespaces pinned), starts cricketd (from BUILD_DIR) on a
temporary root with its own bridge and subnet (bridge + host-local, the
Debian CNI plugins), then N times: RunPodSandbox, PodSandboxStatus(verbose),
StopPodSandbox + RemovePodSandbox. Prints median and p95 of RunPodSandbox
and of Stop+Remove, the split of RunPodSandbox reported by the daemon in
the verbose info (`timings`): namespace pinning, CNI ADD (after the pod
files) and infra (shm mount + spec, then monitor + runc create + runc
start; beside CNI), and the rest; the CPU time of a whole pod life (the
daemon and everything it forks: monitors, runc, CNI plugins, measured in a
cgroup v2 of the bench's own when /sys/fs/cgroup/unified or a unified
/sys/fs/cgroup is there), the processes each of K idle pods keeps
(monitors + infra processes) and the load average. Needs root, runc,
busybox-static and containernetworking-plugins. Cleans up its pods,
bridge, cgroup and temp dir."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import build_dir, opt, report_leaks, row as row40, use_build

BUILD = build_dir("/tmp/build-sandbox")
RUNS = opt("-n", 20)
KPODS = opt("-k", 5)
use_build(BUILD)

import test_sandbox as ts  # noqa: E402


def row(name, values):
    row40(name, values, width=34)


CG_ROOTS = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")
MODES = (("pause (drop_infra: false)", "runtime:\n  drop_infra: false\n"),
         ("no infra (drop_infra: true)", ""))


def pod_cfg(env, name):
    ns = ts.api_pb2.NamespaceOption(pid=ts.api_pb2.CONTAINER)
    return env.config(name, linux=ts.api_pb2.LinuxPodSandboxConfig(
        security_context=ts.api_pb2.LinuxSandboxSecurityContext(namespace_options=ns)))


def cpu_cgroup(pid):
    """A cgroup v2 holding pid (and so what it forks); None without one."""
    for root in CG_ROOTS:
        if os.path.exists(os.path.join(root, "cgroup.procs")) and \
                os.path.exists(os.path.join(root, "cpu.stat")):
            path = tempfile.mkdtemp(prefix="sb-bench-", dir=root)
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(pid))
            return path
    return None


def cpu_usec(cg):
    if not cg:
        return 0
    with open(os.path.join(cg, "cpu.stat")) as f:
        return int(dict(l.split() for l in f)["usage_usec"])


def drop_cgroup(cg):
    if not cg:
        return
    with open(os.path.join(cg, "cgroup.procs")) as f:
        pids = f.read().split()
    parent = os.path.join(os.path.dirname(cg), "cgroup.procs")
    for pid in pids:
        try:
            with open(parent, "w") as f:
                f.write(pid)
        except OSError:
            pass
    os.rmdir(cg)


def idle_processes(env, k):
    """Processes K idle pods keep: monitors + infra processes, per pod."""
    ids = [env.run(pod_cfg(env, "idle-%d" % i)) for i in range(k)]
    n = len(ts.monitors_under(env.base)) + len(env.runc_list())
    for i in ids:
        env.remove(i)
    return n / float(k)


def bench(title, dropin):
    base = tempfile.mkdtemp(prefix="sb-bench-", dir="/tmp")
    env = ts.Env(base)
    env.daemon.extra_args = ["--log-level", "info"]
    os.makedirs(os.path.join(base, "cricket.d"))
    with open(os.path.join(base, "cricket.d", "50-bench.yaml"), "w") as f:
        f.write(dropin)
    cg = None
    try:
        env.start()
        cg = cpu_cgroup(env.daemon.proc.pid)
        # warm-up: builds the infra rootfs once
        pid = env.run(pod_cfg(env, "warm"))
        env.remove(pid)
        run, stop, netns, cni, infra, files, rest = [], [], [], [], [], [], []
        cpu0 = cpu_usec(cg)
        for i in range(RUNS):
            t0 = time.perf_counter()
            pid = env.run(pod_cfg(env, "bench-%d" % i))
            run.append((time.perf_counter() - t0) * 1000)
            t = env.info(pid)["timings"]
            netns.append(t["netnsNs"] / 1e6)
            cni.append(t["cniNs"] / 1e6)
            infra.append(t["infraNs"] / 1e6)
            files.append(t["filesNs"] / 1e6)
            conc = max(t["cniNs"], t["infraNs"]) if env.info(pid)["infra"] else \
                t["cniNs"] + t["infraNs"]
            rest.append(t["totalNs"] / 1e6 - t["netnsNs"] / 1e6 - conc / 1e6)
            t0 = time.perf_counter()
            env.stop(pid)
            env.remove(pid)
            stop.append((time.perf_counter() - t0) * 1000)
        cpu = (cpu_usec(cg) - cpu0) / 1000.0 / RUNS
        procs = idle_processes(env, KPODS)
        print("== %s: cricketd %s, %d runs, bridge + host-local, runc, pid CONTAINER pods"
              % (title, BUILD, RUNS))
        row("RunPodSandbox (client)", run)
        row("  namespace pins", netns)
        row("  CNI ADD", cni)
        row("  infra (beside CNI) / shm", infra)
        row("    of which shm mount + spec", files)
        row("    of which monitor+runc create+start", [a - b for a, b in zip(infra, files)])
        row("  rest (validate, files, LMDB)", rest)
        row("StopPodSandbox+RemovePodSandbox", stop)
        print("%-34s %7.1f ms" % ("CPU per pod life (run+stop+remove)", cpu) if cg else
              "CPU per pod life: no cgroup v2 here")
        print("%-34s %7.1f" % ("processes per idle pod", procs))
        print("%-34s %s" % ("load average", " ".join(open("/proc/loadavg").read().split()[:3])))
        return report_leaks(env)
    finally:
        env.cleanup()
        drop_cgroup(cg)
        shutil.rmtree(base, ignore_errors=True)


def main():
    rc = 0
    for title, dropin in MODES:
        rc |= bench(title, dropin)
    return rc


if __name__ == "__main__":
    sys.exit(main())
