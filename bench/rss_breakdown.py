#!/usr/bin/python3
"""What an idle cricketd's RSS is made of, before and after pulls.

    bench/rss_breakdown.py [BUILD_DIR] [--small]

Starts cricketd from BUILD_DIR (default ../build) on a throwaway root with
Debian's docker-registry on 127.0.0.1, reads /proc/<pid>/smaps right after
start, pulls busybox, a toolchain-like image and one of 40,000 small files
(the images of bench/compare.py; --small: busybox only), removes the two big
ones, waits a second and reads smaps again. Prints, per mapping group, RSS
and its anonymous part in KiB, both times, and the daemon's threads; and
every cricket-pull helper seen while the pulls ran (peak RSS). Figures only;
nothing is asserted.

Groups: a shared library (its text, data and the anonymous bss right after
it), [heap] (the main malloc arena), malloc arenas (anonymous regions inside
64 MiB aligned reservations, the per-thread arenas), thread stacks (8 MiB or
pool-sized anonymous regions after a guard page), LMDB (data.mdb), other."""
import os
import re
import sys
import threading
import time

from benchlib import build_dir, use_build

BUILD = build_dir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build"))
SMALL = "--small" in sys.argv
use_build(BUILD)

from conftest import Cri, Daemon, api_pb2  # noqa: E402
from registry import Registry, make_tmp, push_image, registry_config, rmtree  # noqa: E402
from registry import busybox_layer  # noqa: E402

HDR = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$")


def smaps(pid):
    """[(start, end, perms, name, {field: kB})] of /proc/pid/smaps."""
    out = []
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            m = HDR.match(line)
            if m:
                out.append((int(m.group(1), 16), int(m.group(2), 16), m.group(3),
                            m.group(4).strip(), {}))
            elif out and ":" in line:
                k, v = line.split(":", 1)
                parts = v.split()
                if parts and parts[0].isdigit():
                    out[-1][4][k] = int(parts[0])
    return out


def group_of(maps, i, prev_lib):
    start, end, perms, name, _ = maps[i]
    if name.endswith(".so") or ".so." in name:
        return os.path.basename(name).split(".so")[0]
    if name.endswith("data.mdb"):
        return "LMDB data.mdb"
    if name in ("[heap]", "[stack]", "[vdso]", "[vvar]", "[vsyscall]"):
        return name
    if name:
        return os.path.basename(name)
    # anonymous: bss right after a library, a thread stack after its guard,
    # or a piece of a 64 MiB malloc arena reservation
    prev = maps[i - 1] if i else None
    if prev and prev[1] == start and prev[3] and prev_lib:
        return prev_lib
    size_kb = (end - start) // 1024
    if prev and prev[1] == start and prev[2].startswith("---") and \
            (prev[1] - prev[0]) <= 64 * 1024 and size_kb <= 16384:
        return "thread stacks"
    if start % (64 << 20) == 0 or (prev and prev[2].startswith("---")) or \
            (i + 1 < len(maps) and maps[i + 1][2].startswith("---")
             and maps[i + 1][0] == end):
        return "malloc arenas"
    return "anon other"


def breakdown(pid):
    maps = smaps(pid)
    groups = {}
    prev_lib = None
    for i in range(len(maps)):
        g = group_of(maps, i, prev_lib)
        name = maps[i][3]
        prev_lib = g if (name.endswith(".so") or ".so." in name) else \
            (prev_lib if g == prev_lib else None)
        rss, anon = groups.get(g, (0, 0))
        f = maps[i][4]
        groups[g] = (rss + f.get("Rss", 0), anon + f.get("Anonymous", 0))
    return groups


def threads(pid):
    names = {}
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                n = f.read().strip()
        except OSError:
            continue
        names[n] = names.get(n, 0) + 1
    return names


def vmrss(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def helpers_of(pid):
    """{pid: rss kB} of children of pid named cricket-pull."""
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                st = f.read()
            comm = st[st.index("(") + 1:st.rindex(")")]
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            if ppid == pid and comm.startswith("cricket-pull"):
                out[int(p)] = vmrss(int(p))
        except (OSError, ValueError, StopIteration):
            continue
    return out


def table(before, after):
    keys = sorted(set(before) | set(after), key=lambda k: -after.get(k, (0, 0))[0])
    print("%-34s %10s %10s %10s %10s" % ("mapping group", "start RSS", "anon",
                                         "idle RSS", "anon"))
    tot = [0, 0, 0, 0]
    for k in keys:
        b, a = before.get(k, (0, 0)), after.get(k, (0, 0))
        tot = [tot[0] + b[0], tot[1] + b[1], tot[2] + a[0], tot[3] + a[1]]
        if max(b[0], a[0]) >= 16:
            print("%-34s %10d %10d %10d %10d" % (k, b[0], b[1], a[0], a[1]))
    print("%-34s %10d %10d %10d %10d  (KiB)" % ("total", *tot))


def main():
    base = make_tmp("cricket-rss-")
    reg = d = None
    try:
        for sub in ("reg", "d"):
            os.makedirs(os.path.join(base, sub))
        reg = Registry(os.path.join(base, "reg"))
        bb = busybox_layer()
        images = {"busybox": [bb]}
        if not SMALL:
            import compare  # the bench images
            images["toolchain"] = [bb, compare.tree_layer(["/usr/lib/gcc/x86_64-linux-gnu/12"]),
                                   compare.tree_layer(["/usr/lib/python3.11",
                                                       "/usr/include/linux"])]
            images["smallfiles"] = [bb, compare.small_files_layer()]
        for name, layers in images.items():
            push_image(reg, "library/" + name, "latest", layers)
        d = Daemon(os.path.join(base, "d"), registry_config(reg.host))
        d.extra_args = ["--log-level", "info"]
        d.start()
        cri = Cri(d.socket)
        pid = d.proc.pid
        time.sleep(1)
        before, rss0, thr0 = breakdown(pid), vmrss(pid), threads(pid)

        seen, stop = {}, threading.Event()

        def watch():
            while not stop.is_set():
                for hp, kb in helpers_of(pid).items():
                    seen[hp] = max(seen.get(hp, 0), kb)
                time.sleep(0.02)
        w = threading.Thread(target=watch)
        w.start()
        for name in images:
            ref = "docker.io/library/%s:latest" % name
            t0 = time.perf_counter()
            cri.call("PullImage", timeout=1200, image=api_pb2.ImageSpec(image=ref))
            print("pull %-12s %8.0f ms" % (name, (time.perf_counter() - t0) * 1e3))
            if name != "busybox":
                cri.call("RemoveImage", timeout=600, image=api_pb2.ImageSpec(image=ref))
        stop.set()
        w.join()
        time.sleep(1)
        after, rss1, thr1 = breakdown(pid), vmrss(pid), threads(pid)
        print()
        table(before, after)
        print("\nVmRSS: %d KiB at start, %d KiB idle after pulls" % (rss0, rss1))
        print("threads at start: %r" % thr0)
        print("threads idle:     %r" % thr1)
        if seen:
            print("cricket-pull helpers: %d, peak RSS %d KiB"
                  % (len(seen), max(seen.values())))
        cri.close()
    finally:
        if d:
            d.stop()
        if reg:
            reg.stop()
        rmtree(base)


if __name__ == "__main__":
    main()
