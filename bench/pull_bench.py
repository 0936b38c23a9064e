#!/usr/bin/python3
"""Cold PullImage times, image by image (compare.py's images).

    bench/pull_bench.py [BUILD_DIR] [-n ROUNDS] [--only cricket|containerd]
                        [--image NAME]... [--perf DIR] [--strace DIR] [--settle S]

Pushes compare.py's images (busybox; "toolchain": 3 layers, ~70 MB
compressed; "smallfiles": 40,000 small files) to a local docker-registry,
starts the runtime(s) and pulls each image ROUNDS times cold (RemoveImage
after each pull, so blobs and layers are gone). Prints the median and the
single times, plus the load average at the start and at the end (the
machine may be shared). --perf DIR records `perf record -g` of the daemon
during each cricket pull (DIR/<image>.perf.data); --strace DIR counts its
syscalls (`strace -f -c`, DIR/<image>.strace; PULL_BENCH_STRACE replaces
"-c -w"). Only the PullImage call is traced and timed, not the RemoveImage
after it. --settle S sleeps S seconds after each RemoveImage: on an ext4
without a journal (this test machine's), inode allocation skips inodes freed
in the last 30 s, one buffer-cache lookup each, so creating 40,000 files
right after deleting 40,000 costs several times more (perf: ext4_create ->
find_inode_bit -> recently_deleted); --settle 31 takes that out of the
figure. Asserts nothing."""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import compare  # noqa: E402 (sets up BUILD and the e2e helpers' path)
from compare import Containerd, Cricket, api_pb2, push_images

ROUNDS = compare.opt("-n", 3)
SETTLE = compare.opt("--settle", 0)
IMAGES = [sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "--image"] or \
    ["busybox", "toolchain", "smallfiles"]


def arg(flag):
    return sys.argv[sys.argv.index(flag) + 1] if flag in sys.argv else None


def attach(tool, pid, out):
    if tool == "perf":
        cmd = ["perf", "record", "-q", "-g", "-p", str(pid), "-o", out]
    else:
        cmd = ["strace", "-f", "-p", str(pid), "-o", out] + \
            os.environ.get("PULL_BENCH_STRACE", "-c -w").split()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # let it attach
    return p


def detach(p):
    p.send_signal(signal.SIGINT)
    p.wait(timeout=60)


def cpu_s(pid):
    """user + system CPU seconds of pid and its threads (and waited-for children)."""
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in v[11:15]) / os.sysconf("SC_CLK_TCK")


def bench(rt):
    rt.start()
    times = {}
    perf_dir, strace_dir = arg("--perf"), arg("--strace")
    for name in IMAGES:
        times[name] = []
        for i in range(ROUNDS):
            tracer = None
            if rt.name == "cricket" and i == 0 and (perf_dir or strace_dir):
                tool, d = ("perf", perf_dir) if perf_dir else ("strace", strace_dir)
                tracer = attach(tool, rt.pid, os.path.join(d, "%s.%s" % (
                    name, "perf.data" if tool == "perf" else "strace")))
            ref = api_pb2.ImageSpec(image="docker.io/library/%s:latest" % name)
            t0, c0 = time.perf_counter(), cpu_s(rt.pid)
            rt.cri.call("PullImage", timeout=1200, image=ref)
            times[name].append((time.perf_counter() - t0, cpu_s(rt.pid) - c0))
            if tracer:
                detach(tracer)
            rt.cri.call("RemoveImage", timeout=600, image=ref)
            time.sleep(SETTLE)
    return times


def main():
    top = tempfile.mkdtemp(prefix="cricket-pullbench-", dir="/tmp")
    reg = None
    results = {}
    print("load average at start: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
    try:
        os.makedirs(os.path.join(top, "reg"))
        reg = compare.Registry(os.path.join(top, "reg"))
        info = push_images(reg, os.environ.get("CRICKET_PAUSE") or
                           os.path.join(compare.BUILD, "cricket-pause"))
        for name, what in info.items():
            print("image %-10s %s" % (name, what))
        for cls in (Cricket, Containerd):
            if compare.ONLY and cls.name != compare.ONLY:
                continue
            base = os.path.join(top, cls.name)
            os.makedirs(base)
            rt = cls(base, reg)
            try:
                results[cls.name] = bench(rt)
            finally:
                rt.cleanup()
    finally:
        if reg:
            reg.stop()
        shutil.rmtree(top, ignore_errors=True)
    print("load average at end:   %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
    print("\n%-12s %-11s %9s %9s   %s" % ("runtime", "image", "median s", "CPU s",
                                          "each (s, CPU s)"))
    for rt, per in results.items():
        for name, ts_ in per.items():
            print("%-12s %-11s %9.2f %9.2f   %s" % (
                rt, name, statistics.median(t for t, _ in ts_),
                statistics.median(c for _, c in ts_),
                " ".join("%.2f/%.2f" % t for t in ts_)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
