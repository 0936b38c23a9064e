#!/usr/bin/python3
"""cricket-conmon footprint and latency, printed next to a baseline.

    bench/conmon_bench.py [BUILD_DIR] [-n RUNS] [-m MONITORS]

1. Memory of monitors supervising running containers (`sleep`): RSS
   (VmRSS) and PSS (/proc/PID/smaps_rollup), for one monitor and averaged
   over M monitors running at once (shared pages are split between them in
   PSS). Baseline: a `sleep` process (dynamic coreutils) on the same host.
2. Latency, median and p90 over N runs, interleaved in the same run:
   monitor + `runc create` + `runc start` (through conmonctl, i.e. the client
   library cricketd uses) vs plain `runc run -d`.

Needs root, runc and busybox-static. Cleans up its containers and temp dir."""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test",
                                "e2e"))
import bundle  # noqa: E402

BUILD = next((a for a in sys.argv[1:] if not a.startswith("-") and os.path.isdir(a)),
             "/tmp/build-conmon")
RUNS = int(sys.argv[sys.argv.index("-n") + 1]) if "-n" in sys.argv else 20
MONS = int(sys.argv[sys.argv.index("-m") + 1]) if "-m" in sys.argv else 10
CONMON = os.path.join(BUILD, "cricket-conmon")
CTL = os.path.join(BUILD, "conmonctl")


def mem(pid):
    rss = pss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


class Bench:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="cb-", dir="/tmp")
        self.root = os.path.join(self.dir, "runc")
        self.ids = []
        rootfs = os.path.join(self.dir, "rootfs")
        bundle.make_rootfs(rootfs)
        self.bundle = bundle.make_bundle(os.path.join(self.dir, "b"), ["sleep", "1000"],
                                         rootfs=rootfs)

    def runc(self, *args):
        subprocess.run([bundle.RUNC, "--root", self.root] + list(args), check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def conmon_start(self, cid):
        self.ids.append(cid)
        out = subprocess.run(
            [CTL, "create", "--monitor", CONMON, "--runtime", bundle.RUNC, "--runtime-arg",
             "--root", "--runtime-arg", self.root, "--exit-dir", os.path.join(self.dir, "exits"),
             "--socket-dir", os.path.join(self.dir, "s"), "--id", cid, "--bundle", self.bundle,
             "--log-path", os.path.join(self.dir, cid + ".log")],
            check=True, stdout=subprocess.PIPE).stdout
        res = json.loads(out)
        if "error" in res:
            raise RuntimeError(res["error"])
        self.runc("start", cid)
        return res

    def runc_run(self, cid):
        self.ids.append(cid)
        self.runc("run", "-d", "--bundle", self.bundle, cid)

    def delete(self, cid):
        bundle.runc_delete(self.root, cid)

    def cleanup(self):
        for cid in self.ids:
            self.delete(cid)
        shutil.rmtree(self.dir, ignore_errors=True)


def memory(b):
    first = b.conmon_start("mem-0")
    time.sleep(0.3)
    one = mem(first["monitor_pid"])  # the only monitor: PSS counts its pages whole
    res = [first] + [b.conmon_start("mem-%d" % i) for i in range(1, MONS)]
    time.sleep(0.3)
    all_ = [mem(r["monitor_pid"]) for r in res]
    sleeper = subprocess.Popen(["sleep", "100"])
    time.sleep(0.2)
    base = mem(sleeper.pid)
    sleeper.kill()
    sleeper.wait()
    print("memory (KiB)                         RSS      PSS")
    print("  cricket-conmon, alone              %6d   %6d" % one)
    print("  cricket-conmon, mean of %-3d       %6d   %6d" %
          (MONS, statistics.mean(r for r, _ in all_), statistics.mean(p for _, p in all_)))
    print("  baseline: coreutils sleep          %6d   %6d" % base)
    for i in range(MONS):
        b.delete("mem-%d" % i)


def latency(b):
    ours, plain, split = [], [], []
    for i in range(RUNS):
        t0 = time.perf_counter()
        b.conmon_start("lat-c-%d" % i)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        b.runc_run("lat-r-%d" % i)
        plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        b.ids.append("lat-s-%d" % i)
        b.runc("create", "--bundle", b.bundle, "lat-s-%d" % i)
        b.runc("start", "lat-s-%d" % i)
        split.append(time.perf_counter() - t0)
        for p in "crs":
            b.delete("lat-%s-%d" % (p, i))

    def q(v, p):
        return sorted(v)[min(len(v) - 1, int(p * len(v)))] * 1000

    print("create+start latency over %d runs (ms)   median      p90" % RUNS)
    for name, v in (("monitor + runc create + runc start", ours),
                    ("baseline: runc run -d", plain),
                    ("baseline: runc create + runc start", split)):
        print("  %-35s %8.1f %8.1f" % (name, statistics.median(v) * 1000, q(v, 0.9)))


def main():
    ok, why = bundle.have_prereqs()
    if not ok:
        print("skip: " + why)
        return 77
    static = subprocess.run(["file", "-L", CONMON], capture_output=True, text=True).stdout
    print("cricket-conmon: %s (%s)" % (CONMON, "static" if "statically" in static else
                                       "dynamic" if "dynamic" in static else "?"))
    b = Bench()
    try:
        memory(b)
        latency(b)
    finally:
        b.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
