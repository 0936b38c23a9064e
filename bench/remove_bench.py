#!/usr/bin/python3
"""Removal figures through the CRI socket (issue 15, "removal off the
request path").

    bench/remove_bench.py [BUILD_DIR] [-n CONTAINERS] [-r ROUNDS] [-f FILES] [--no-images]

Starts cricketd (from BUILD_DIR) on a temporary root with its own bridge and
subnet and a registry on 127.0.0.1 holding the three images of
bench/compare.py (busybox, a toolchain-like image and one of 40,000 small
files), then prints, with the load average before and after:
- RemoveImage of each image, ROUNDS times (pull, RemoveImage): median and
  max of the RPC, and the time until nothing of the image is left on disk
  (layers/ and the trash, when there is one: the background deletion);
- RemoveContainer of CONTAINERS stopped busybox containers (each wrote
  FILES small files, default 1,000, into its rootfs first), and RemovePodSandbox of their
  pods (half while the trash of the containers is still being deleted,
  half after): median and p95.
Nothing is asserted. Needs root, runc, busybox-static,
containernetworking-plugins and Debian's docker-registry."""
import os
import shutil
import statistics
import sys
import tempfile
import time

from benchlib import build_dir, opt, pct, report_leaks, use_build

BUILD = build_dir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build"))
CTRS, ROUNDS, FILES = opt("-n", 20), opt("-r", 3), opt("-f", 1000)
use_build(BUILD)

import test_sandbox as ts  # noqa: E402
from compare import push_images  # noqa: E402
from conftest import api_pb2  # noqa: E402
from registry import Registry, registry_config  # noqa: E402


def ms(t0):
    return (time.perf_counter() - t0) * 1e3


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def entries(path):
    return os.listdir(path) if os.path.isdir(path) else []


def disk_busy(root, layers=True):
    """Trash entries (and layers, tmp aside, when asked) still on disk."""
    n = len([e for e in entries(os.path.join(root, "layers")) if e != "tmp"]) if layers else 0
    return n + len(entries(os.path.join(root, "trash")))


def wait_quiet(root, layers=True, timeout=300):
    t0 = time.perf_counter()
    while disk_busy(root, layers) and ms(t0) < timeout * 1e3:
        time.sleep(0.005)
    return ms(t0)


def bench_images(env):
    root = env.daemon.root
    for name in ("busybox", "toolchain", "smallfiles"):
        ref = "docker.io/library/%s:latest" % name
        rpc, total = [], []
        for _ in range(ROUNDS):
            env.cri.call("PullImage", timeout=1200, image=api_pb2.ImageSpec(image=ref))
            os.sync()
            t0 = time.perf_counter()
            env.cri.call("RemoveImage", timeout=600, image=api_pb2.ImageSpec(image=ref))
            rpc.append(ms(t0))
            total.append(rpc[-1] + wait_quiet(root))
        print("RemoveImage %-10s  RPC median %7.1f ms  max %7.1f   on disk until %7.1f ms" % (
            name, statistics.median(rpc), max(rpc), statistics.median(total)))
        sys.stdout.flush()


def bench_containers(env):
    cri = env.cri
    cri.call("PullImage", timeout=600,
             image=api_pb2.ImageSpec(image="docker.io/library/busybox:latest"))
    pods = []
    for i in range(CTRS):
        cfg = env.config(name="rm%d" % i)
        pod = cri.call("RunPodSandbox", timeout=120, config=cfg).pod_sandbox_id
        ccfg = api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name="c"),
            image=api_pb2.ImageSpec(image="docker.io/library/busybox:latest"),
            command=["sh", "-c", "mkdir /data && cd /data && "
                     "for i in $(seq %d); do echo $i > f$i; done; sleep 100000" % FILES])
        cid = cri.call("CreateContainer", timeout=60, pod_sandbox_id=pod, config=ccfg,
                       sandbox_config=cfg).container_id
        cri.call("StartContainer", timeout=60, container_id=cid)
        pods.append((pod, cid))
    time.sleep(2)  # the files written
    for _, cid in pods:
        cri.call("StopContainer", timeout=60, container_id=cid)
    os.sync()
    rc, rp = [], []
    for pod, cid in pods:
        t0 = time.perf_counter()
        cri.call("RemoveContainer", timeout=60, container_id=cid)
        rc.append(ms(t0))
    for pod, _ in pods:
        cri.call("StopPodSandbox", timeout=60, pod_sandbox_id=pod)
    busy = disk_busy(env.daemon.root, False) > 0  # the deleter at the containers' trees
    half = len(pods) // 2
    for pod, _ in pods[:half]:
        t0 = time.perf_counter()
        cri.call("RemovePodSandbox", timeout=60, pod_sandbox_id=pod)
        rp.append(ms(t0))
    quiet = wait_quiet(env.daemon.root, False)
    rq = []
    for pod, _ in pods[half:]:
        t0 = time.perf_counter()
        cri.call("RemovePodSandbox", timeout=60, pod_sandbox_id=pod)
        rq.append(ms(t0))
    print("RemoveContainer (%d, stopped, %d files)  median %6.1f ms  p95 %6.1f ms" % (
        CTRS, FILES, statistics.median(rc), pct(rc, 95)))
    print("RemovePodSandbox (%d, %s)  median %6.1f ms  p95 %6.1f ms" % (
        half, "trash being deleted" if busy else "nothing to delete", statistics.median(rp),
        pct(rp, 95)))
    print("RemovePodSandbox (%d, after)  median %6.1f ms  p95 %6.1f ms   (trash emptied %.0f ms "
          "after the last RemoveContainer)" % (len(rq), statistics.median(rq), pct(rq, 95), quiet))
    wait_quiet(env.daemon.root, False)
    cri.call("RemoveImage", timeout=60,
             image=api_pb2.ImageSpec(image="docker.io/library/busybox:latest"))
    wait_quiet(env.daemon.root)


def main():
    top = tempfile.mkdtemp(prefix="cricket-rmbench-", dir="/tmp")
    reg = env = None
    try:
        os.makedirs(os.path.join(top, "reg"))
        reg = Registry(os.path.join(top, "reg"))
        print("building and pushing images ...", file=sys.stderr)
        for name, what in push_images(reg, os.environ["CRICKET_PAUSE"]).items():
            print("image %-10s %s" % (name, what))
        env = ts.Env(os.path.join(top, "cricket"), extra_config=registry_config(reg.host))
        env.start()
        print("load average before: %s" % load())
        if "--no-images" not in sys.argv:
            bench_images(env)
        bench_containers(env)
        print("load average after:  %s" % load())
        return report_leaks(env)
    finally:
        if env:
            env.cleanup()
        if reg:
            reg.stop()
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
