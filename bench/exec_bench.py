#!/usr/bin/python3
"""Container-side figures: CreateContainer + StartContainer and ExecSync,
wall time and the CPU they cost the daemon and its helpers.

    bench/exec_bench.py [BUILD_DIR] [-n CONTAINERS] [-e EXECS] [-s STRACE_OUT] [-P PERF_OUT]

Starts cricketd (from BUILD_DIR) on a temporary root, in a cpuacct cgroup of
its own (so the monitors and runc calls it starts are counted, the
containers themselves are not: runc moves them into theirs), with one pod
(busybox from a local registry), then prints:
- CreateContainer + StartContainer of a `sleep` container, CONTAINERS times
  in that pod: median and p90 wall ms, and CPU ms per container;
- ExecSync `true` (timeout 10 s), EXECS times: median and p90 wall ms, and
  CPU ms per exec.
With -s, one more ExecSync and one more create+start run under `strace -f -tt`
of the daemon, traced to STRACE_OUT.exec and STRACE_OUT.ctr. With -P, the
create+start loop runs under `perf record -g -p <cricketd>` (to PERF_OUT). Also prints the load average: the machine may be shared. Asserts nothing
but the answers (exit code 0). Needs root, runc, busybox-static, the CNI
plugins and Debian's docker-registry. Cleans up like container_bench.py."""
import os
import shutil
import subprocess
import statistics
import sys
import tempfile
import time

from benchlib import build_dir, opt, pct, report_leaks, use_build

BUILD = build_dir("/tmp/build-ctr")
N, EXECS = opt("-n", 20), opt("-e", 50)
STRACE = sys.argv[sys.argv.index("-s") + 1] if "-s" in sys.argv else None
PERF = sys.argv[sys.argv.index("-P") + 1] if "-P" in sys.argv else None
use_build(BUILD)

import test_sandbox as ts  # noqa: E402
from conftest import api_pb2  # noqa: E402
from registry import busybox_registry, registry_config  # noqa: E402

CPUACCT = "/sys/fs/cgroup/cpuacct"


class CpuGroup:
    """A cpuacct cgroup holding the daemon (and what it starts)."""

    def __init__(self):
        self.path = os.path.join(CPUACCT, "cricket-exec-bench-%d" % os.getpid())
        os.mkdir(self.path)

    def add(self, pid):
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write("%d\n" % pid)

    def usage_ms(self):
        with open(os.path.join(self.path, "cpuacct.usage")) as f:
            return int(f.read()) / 1e6

    def remove(self):
        # what is left (a killed daemon's monitors) goes back to the root
        try:
            with open(os.path.join(self.path, "cgroup.procs")) as f:
                pids = f.read().split()
            for p in pids:
                with open(os.path.join(CPUACCT, "cgroup.procs"), "w") as f:
                    f.write(p + "\n")
        except OSError:
            pass
        try:
            os.rmdir(self.path)
        except OSError as e:
            print("cgroup %s left: %s" % (self.path, e), file=sys.stderr)


def trace(pid, what, fn):
    """One fn() under `strace -f -tt` of the daemon, written to STRACE.what."""
    out = "%s.%s" % (STRACE, what)
    st = subprocess.Popen(["strace", "-f", "-tt", "-qq", "-o", out, "-p", str(pid)])
    time.sleep(1)  # attached
    print("traced %s: %.1f ms (to %s)" % (what, fn(), out))
    st.terminate()
    st.wait()


def own_cpu_ms(pid):
    """utime + stime of pid itself (all its threads), in ms."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")


def figures(name, wall, cpu_ms, own_ms, n):
    print("%-30s median %6.1f ms  p90 %6.1f ms  CPU %5.1f ms each (cricketd itself %4.1f)" % (
        name, statistics.median(wall), pct(wall, 90), cpu_ms / n, own_ms / n))


def main():
    with busybox_registry("cricket-ebench-reg-") as reg:
        return bench(reg)


def bench(reg):
    env, base, grp = None, tempfile.mkdtemp(prefix="ex-bench-", dir="/tmp"), None
    try:
        env = ts.Env(base, extra_config=registry_config(reg.host))
        env.daemon.extra_args = ["--log-level", "info"]
        env.start()
        grp = CpuGroup()
        grp.add(env.daemon.proc.pid)
        cri = env.cri
        cri.call("PullImage", timeout=120, image=api_pb2.ImageSpec(image="busybox"))
        cfg = env.config("eb", log_directory=os.path.join(base, "logs"))
        pod = env.run(cfg)

        def ctr(i):
            c = api_pb2.ContainerConfig(
                metadata=api_pb2.ContainerMetadata(name="c%d" % i),
                image=api_pb2.ImageSpec(image="busybox"), command=["/bin/sleep", "100000"],
                log_path="c%d.log" % i)
            t0 = time.perf_counter()
            cid = cri.call("CreateContainer", timeout=60, pod_sandbox_id=pod, config=c,
                           sandbox_config=cfg).container_id
            cri.call("StartContainer", timeout=60, container_id=cid)
            return cid, (time.perf_counter() - t0) * 1e3

        cid, _ = ctr(0)  # warm-up
        fn, req_cls = cri.stub("ExecSync")

        def ex():
            t0 = time.perf_counter()
            r = fn(req_cls(container_id=cid, cmd=["true"], timeout=10), timeout=40)
            if r.exit_code != 0:
                raise AssertionError("exec true: %d %r" % (r.exit_code, r.stderr))
            return (time.perf_counter() - t0) * 1e3

        ex()  # warm-up
        print("cricketd %s; load average %.1f %.1f %.1f" % ((BUILD,) + os.getloadavg()))
        if STRACE:
            trace(env.daemon.proc.pid, "exec", ex)
            trace(env.daemon.proc.pid, "ctr", lambda: ctr(N + 1)[1])
        dpid = env.daemon.proc.pid
        c0, o0 = grp.usage_ms(), own_cpu_ms(dpid)
        rec = subprocess.Popen(["perf", "record", "-q", "-g", "-o", PERF, "-p", str(dpid)],
                               stdout=subprocess.DEVNULL) if PERF else None
        walls = [ctr(i + 1)[1] for i in range(N)]
        if rec:
            rec.send_signal(2)
            rec.wait()
        figures("Create+StartContainer (%d)" % N, walls, grp.usage_ms() - c0,
                own_cpu_ms(dpid) - o0, N)
        c0, o0 = grp.usage_ms(), own_cpu_ms(dpid)
        walls = [ex() for _ in range(EXECS)]
        figures("ExecSync `true` (%d)" % EXECS, walls, grp.usage_ms() - c0,
                own_cpu_ms(dpid) - o0, EXECS)
        env.stop(pod)
        env.remove(pod)
        return report_leaks(env)
    finally:
        if env is not None:
            try:
                if env.cri and env.daemon.proc is not None and env.daemon.proc.poll() is None:
                    for p in env.list():
                        env.stop(p.id)
                        env.remove(p.id)
            except Exception as e:  # noqa: BLE001 (cleanup below still runs)
                print("cleanup through the CRI failed: %s" % e, file=sys.stderr)
            env.cleanup()
        if grp is not None:
            grp.remove()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
