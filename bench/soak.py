#!/usr/bin/python3
"""Soak: many pod + container lifecycles under a steady exec load; every
resource the daemon holds must stay flat.

    bench/soak.py [BUILD_DIR] [-c CYCLES] [-j PARALLEL] [-p PODS] [-r EVERY]

Starts cricketd (from BUILD_DIR) on a temporary root with its own bridge and
subnet and a registry on 127.0.0.1 holding busybox (the test/e2e helpers),
then:
- PODS long-lived pods (default 50), one `sleep` container each, each get
  an ExecSync (`true`) every second for the whole run; not one may fail;
- CYCLES (default 1000) cycles, PARALLEL (default 4) at a time, of
  RunPodSandbox + CreateContainer + StartContainer + StopPodSandbox +
  RemovePodSandbox (which removes the container);
- every EVERY cycles (default 100) a row: daemon VmRSS, open fds, threads,
  LMDB file size (allocated), mounts under the test's base, netns pins,
  host-local leases, live monitors (cricket-conmon processes), and the
  execs of that window (done, failed, p95, ticks where a pod's exec was
  still running a second later);
- at the end, each column's least-squares slope per 1000 cycles over the
  rows after the first (the first holds the warm-up).
Not a test (not in ctest): figures for a human; the exit status is 1 when an
exec failed or anything leaked. Needs root, runc, busybox-static,
containernetworking-plugins and Debian's docker-registry. Removes its pods,
stops its daemon and registry (by PID), deletes its bridge, leases and temp
dirs, and reports leaks."""
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from benchlib import build_dir, opt, pct, report_leaks, use_build

BUILD = build_dir("/tmp/build-ctr")
CYCLES, PAR, PODS, EVERY = opt("-c", 1000), opt("-j", 4), opt("-p", 50), opt("-r", 100)
use_build(BUILD)

import test_sandbox as ts  # noqa: E402
from conftest import api_pb2  # noqa: E402
from registry import busybox_registry, registry_config  # noqa: E402

COLS = ["cycles", "rss_kB", "fds", "threads", "lmdb_kB", "mounts", "netns", "leases", "monitors",
        "execs", "exec_fail", "exec_p95_ms", "late"]


class Soak:
    def __init__(self, env):
        self.env, self.cri = env, env.cri
        self.logs = os.path.join(env.base, "logs")
        self.lock = threading.Lock()
        self.exec_ms, self.exec_fail, self.late = [], [], 0
        self.stop = threading.Event()

    def pod_and_container(self, tag, cmd):
        cfg = self.env.config("s-" + tag, log_directory=self.logs)
        ccfg = api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name="c"), image=api_pb2.ImageSpec(image="busybox"),
            command=cmd, log_path="c-%s.log" % tag)
        pod = self.env.run(cfg)
        cid = self.cri.call("CreateContainer", timeout=60, pod_sandbox_id=pod, config=ccfg,
                            sandbox_config=cfg).container_id
        self.cri.call("StartContainer", timeout=60, container_id=cid)
        return pod, cid

    def cycle(self, i):
        pod, _ = self.pod_and_container("c%d" % i, ["/bin/sleep", "100000"])
        self.env.stop(pod)
        self.env.remove(pod)

    def exec_one(self, cid):
        fn, req_cls = self.cri.stub("ExecSync")
        t0 = time.perf_counter()
        try:
            r = fn(req_cls(container_id=cid, cmd=["true"], timeout=30), timeout=60)
            ok, why = r.exit_code == 0, "exit %d %r" % (r.exit_code, r.stderr)
        except Exception as e:  # noqa: BLE001 (every failure counts)
            ok, why = False, str(e)
        with self.lock:
            if ok:
                self.exec_ms.append((time.perf_counter() - t0) * 1e3)
            else:
                self.exec_fail.append("%s: %s" % (cid[:12], why))

    def exec_loop(self, cids):
        """An ExecSync per container per second; a container whose last one
        is still running at its next tick counts as late (skipped)."""
        pending = {}
        with ThreadPoolExecutor(16) as ex:
            nxt = time.monotonic()
            while not self.stop.is_set():
                for cid in cids:
                    f = pending.get(cid)
                    if f is not None and not f.done():
                        with self.lock:
                            self.late += 1
                        continue
                    pending[cid] = ex.submit(self.exec_one, cid)
                nxt += 1.0
                self.stop.wait(max(0.0, nxt - time.monotonic()))

    def window(self):
        with self.lock:
            ms, fail, late = self.exec_ms, len(self.exec_fail), self.late
            self.exec_ms, self.late = [], 0
        return len(ms), fail, (pct(ms, 95) if ms else 0.0), late

    def figures(self, done):
        pid = self.env.daemon.proc.pid
        with open("/proc/%d/status" % pid) as f:
            st = dict(l.split(":", 1) for l in f)
        lmdb = 0
        for root, _, files in os.walk(self.env.daemon.root):
            for n in files:
                if n.endswith(".mdb"):
                    lmdb += os.stat(os.path.join(root, n)).st_blocks * 512
        netns = os.path.join(self.env.daemon.runroot, "netns")
        execs, fail, p95, late = self.window()
        return [done, int(st["VmRSS"].split()[0]), len(os.listdir("/proc/%d/fd" % pid)),
                int(st["Threads"]), lmdb // 1024, len(ts.mounts_under(self.env.base)),
                len(os.listdir(netns)) if os.path.isdir(netns) else 0, len(self.env.net.leases()),
                len(ts.monitors_under(self.env.base)), execs, fail, round(p95, 1), late]

    def remove_all(self):
        for p in self.env.list():
            self.env.stop(p.id)
            self.env.remove(p.id)


def slope(rows, col):
    """Least-squares slope of column col per 1000 cycles."""
    xs, ys = [r[0] for r in rows], [r[col] for r in rows]
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return 1000.0 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def print_row(r):
    print(" ".join("%*s" % (max(len(c), 7), v) for c, v in zip(COLS, r)), flush=True)


def main():
    with busybox_registry("cricket-soak-reg-") as reg:
        return soak(reg)


def soak(reg):
    env, base = None, tempfile.mkdtemp(prefix="cs-soak-", dir="/tmp")
    s = None
    try:
        env = ts.Env(base, extra_config=registry_config(reg.host))
        env.daemon.extra_args = ["--log-level", "warn"]
        env.start()
        s = Soak(env)
        env.cri.call("PullImage", timeout=120, image=api_pb2.ImageSpec(image="busybox"))
        cids = [s.pod_and_container("long%d" % i, ["/bin/sleep", "1000000"])[1]
                for i in range(PODS)]
        print("cricketd %s: %d long-lived pods with an ExecSync each per second; %d cycles "
              "(RunPodSandbox, CreateContainer, StartContainer, StopPodSandbox, "
              "RemovePodSandbox), %d in parallel" % (BUILD, PODS, CYCLES, PAR), flush=True)
        print(" ".join("%*s" % (max(len(c), 7), c) for c in COLS), flush=True)
        ex_thread = threading.Thread(target=s.exec_loop, args=(cids,), daemon=True)
        ex_thread.start()
        rows = [s.figures(0)]
        print_row(rows[-1])
        t0 = time.time()
        done = 0
        with ThreadPoolExecutor(PAR) as ex:
            while done < CYCLES:
                n = min(EVERY, CYCLES - done)
                list(ex.map(s.cycle, range(done, done + n)))
                done += n
                rows.append(s.figures(done))
                print_row(rows[-1])
        s.stop.set()
        ex_thread.join()
        wall = time.time() - t0
        print("%d cycles in %.0f s (%.2f cycles/s)" % (CYCLES, wall, CYCLES / wall))
        tail = rows[1:] if len(rows) > 2 else rows
        print("slope per 1000 cycles (rows from cycle %d): %s" % (tail[0][0], ", ".join(
            "%s %+.1f" % (c, slope(tail, i)) for i, c in enumerate(COLS[1:9], 1))))
        with s.lock:
            fails = list(s.exec_fail)
        if fails:
            print("EXEC FAILURES (%d): %s" % (len(fails), fails[:10]))
        s.remove_all()
        rc = report_leaks(env)
        return 1 if fails else rc
    finally:
        if s is not None:
            s.stop.set()
        if env is not None:
            try:
                if env.cri and env.daemon.proc is not None and env.daemon.proc.poll() is None:
                    Soak(env).remove_all()
            except Exception as e:  # noqa: BLE001 (cleanup below still runs)
                print("cleanup through the CRI failed: %s" % e, file=sys.stderr)
            env.cleanup()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
