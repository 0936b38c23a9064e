#!/usr/bin/python3
"""What a pull costs beyond its transfer: PullImage of a small image
(busybox-static, one layer) N times in sequence, warm (everything present:
manifest GET, config check, record commit) and cold (RemoveImage before
each pull), then 4 concurrent warm pulls N/4 times.

    bench/pull_helper_bench.py [BUILD_DIR] [-n N]

With the cricket-pull helper each sequential pull starts a helper (exec,
loading libcurl and libarchive, opening the store); run it against a build
without the helper for the before figure. Figures only."""
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from benchlib import build_dir, opt, pct, use_build

BUILD = build_dir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build"))
N = opt("-n", 40)
use_build(BUILD)

from conftest import Cri, Daemon, api_pb2  # noqa: E402
from registry import Registry, busybox_layer, make_tmp, push_image, registry_config  # noqa: E402
from registry import rmtree  # noqa: E402


def main():
    base = make_tmp("cricket-pullbench-")
    reg = d = None
    try:
        for sub in ("reg", "d"):
            os.makedirs(os.path.join(base, sub))
        reg = Registry(os.path.join(base, "reg"))
        push_image(reg, "library/busybox", "latest", [busybox_layer()])
        d = Daemon(os.path.join(base, "d"), registry_config(reg.host))
        d.extra_args = ["--log-level", "info"]
        d.start()
        cri = Cri(d.socket)
        spec = api_pb2.ImageSpec(image="busybox")

        def pull():
            t0 = time.perf_counter()
            cri.call("PullImage", timeout=120, image=spec)
            return (time.perf_counter() - t0) * 1e3

        pull()
        rows = {"warm pull": [pull() for _ in range(N)]}
        cold = []
        for _ in range(N):
            cri.call("RemoveImage", image=spec)
            cold.append(pull())
        rows["cold pull (after RemoveImage)"] = cold
        par = []
        with ThreadPoolExecutor(4) as ex:
            for _ in range(max(1, N // 4)):
                par += list(ex.map(lambda _: pull(), range(4)))
        rows["warm pull, 4 concurrent"] = par
        print("load average %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
        for name, v in rows.items():
            print("%-32s median %7.1f ms   p90 %7.1f ms" % (name, statistics.median(v),
                                                           pct(v, 90)))
        cri.close()
    finally:
        if d:
            d.stop()
        if reg:
            reg.stop()
        rmtree(base)


if __name__ == "__main__":
    main()
