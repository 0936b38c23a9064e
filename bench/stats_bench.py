#!/usr/bin/python3
"""Writable-layer usage figures: ListContainerStats and ImageFsInfo on a
container whose upper dir holds many hard-linked files.

    bench/stats_bench.py [BUILD_DIR] [-n FILES] [-l LINKS]

Starts cricketd (from BUILD_DIR) on a temporary root with its own bridge and
subnet and a registry on 127.0.0.1 holding busybox-static (the test/e2e
helpers), runs one pod with one `sleep` container, then writes FILES files
(default 200000) into the container's upper dir, each with LINKS extra hard
links (default 2), in directories of 1000. Prints the time of:
- ListContainerStats, first call (cold: the walk) and right after (warm:
  the per-container cache, when the daemon has one);
- ImageFsInfo, twice (it walks every container's upper dir);
with the inode count each reported. Removes its pod, stops its daemon and
registry (by PID), deletes its bridge, leases and temp dirs."""
import os
import shutil
import sys
import tempfile
import time

from benchlib import HERE, build_dir, opt, report_leaks, use_build

BUILD = build_dir(os.path.join(HERE, "..", "build"))
FILES, LINKS = opt("-n", 200000), opt("-l", 2)
use_build(BUILD)

import test_sandbox as ts  # noqa: E402
from conftest import api_pb2  # noqa: E402
from registry import busybox_registry, registry_config  # noqa: E402


def fill(upper):
    data = os.path.join(upper, "data")
    for i in range(FILES):
        d = os.path.join(data, "d%d" % (i // 1000))
        if i % 1000 == 0:
            os.makedirs(d)
        f = os.path.join(d, "f%d" % i)
        with open(f, "wb") as fh:
            fh.write(b"x")
        for k in range(LINKS):
            os.link(f, os.path.join(d, "f%d.l%d" % (i, k)))


def timed(fn):
    t0 = time.perf_counter()
    r = fn()
    return (time.perf_counter() - t0) * 1e3, r


def main():
    with busybox_registry("cricket-sbench-reg-") as reg:
        return bench(reg)


def bench(reg):
    env, base = None, tempfile.mkdtemp(prefix="sb-bench-", dir="/tmp")
    try:
        env = ts.Env(base, extra_config=registry_config(reg.host))
        env.start()
        cri = env.cri
        cri.call("PullImage", timeout=120, image=api_pb2.ImageSpec(image="busybox"))
        logs = os.path.join(base, "logs")
        cfg = env.config("stats", log_directory=logs)
        pod = env.run(cfg)
        ccfg = api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name="c"), image=api_pb2.ImageSpec(image="busybox"),
            command=["/bin/sleep", "100000"], log_path="c.log")
        cid = cri.call("CreateContainer", timeout=60, pod_sandbox_id=pod, config=ccfg,
                       sandbox_config=cfg).container_id
        cri.call("StartContainer", timeout=60, container_id=cid)
        upper = os.path.join(env.daemon.root, "containers", cid, "upper")
        t0 = time.perf_counter()
        fill(upper)
        print("cricketd %s; %d files x %d names in the upper dir (written in %.1f s)" % (
            BUILD, FILES, LINKS + 1, time.perf_counter() - t0))

        def stats():
            s = cri.call("ListContainerStats", timeout=1800).stats
            return s[0].writable_layer.inodes_used.value

        def fsinfo():
            r = cri.call("ImageFsInfo", timeout=1800)
            return r.container_filesystems[0].inodes_used.value

        for name, fn in (("ListContainerStats, cold", stats), ("ListContainerStats, again", stats),
                         ("ImageFsInfo", fsinfo), ("ImageFsInfo, again", fsinfo)):
            ms, inodes = timed(fn)
            print("%-32s %10.1f ms   inodes %d" % (name, ms, inodes))
        # drop the files first: RemovePodSandbox would spend minutes on them
        t0 = time.perf_counter()
        shutil.rmtree(os.path.join(upper, "data"))
        print("(files removed in %.1f s)" % (time.perf_counter() - t0))
        env.stop(pod)
        env.cri.call("RemovePodSandbox", timeout=600, pod_sandbox_id=pod)
        return report_leaks(env)
    finally:
        try:
            if env is not None:
                env.cleanup()
        finally:
            if env is not None:
                env.net.destroy()  # even when the daemon would not stop
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
