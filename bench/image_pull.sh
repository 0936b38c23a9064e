#!/usr/bin/env bash
# Pull benchmark: a ~50 MB multi-layer image (busybox-static + 5 layers of
# incompressible data) from Debian's docker-registry on 127.0.0.1, through
# cricketd's PullImage. Prints seconds and MB/s for a cold pull (empty store),
# a warm pull (everything present) and a pull after RemoveImage (cold again).
# Figures only; nothing is asserted.
#   bench/image_pull.sh [build-dir]     (default /tmp/build-image)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-/tmp/build-image}
export CRICKETD=$build/cricketd CRI_PY_GEN=$build/gen/py
exec /usr/bin/python3 - "$top" <<'PY'
import os, sys, time
top = sys.argv[1]
sys.path.insert(0, os.path.join(top, "test/e2e"))
sys.path.insert(0, os.environ["CRI_PY_GEN"])
from registry import Registry, busybox_layer, make_tmp, push_image, registry_config, rmtree, tar_bytes
from conftest import Daemon, Cri
import api_pb2

base = make_tmp("cricket-bench-")
reg = d = None
try:
    for sub in ("reg", "d"):
        os.makedirs(os.path.join(base, sub))
    reg = Registry(os.path.join(base, "reg"))
    layers = [busybox_layer()] + [tar_bytes([("data%d" % i, "file", os.urandom(10 << 20), {})])
                                  for i in range(5)]
    img = push_image(reg, "library/bench", "v1", layers)
    size = sum(len(l) for l in layers)
    d = Daemon(os.path.join(base, "d"), registry_config(reg.host))
    d.start()
    cri = Cri(d.socket)
    spec = api_pb2.ImageSpec(image="bench:v1")

    def run(label):
        t0 = time.monotonic()
        ref = cri.call("PullImage", timeout=600, image=spec).image_ref
        dt = time.monotonic() - t0
        assert ref == img.id
        print("%-28s %7.3f s  %8.1f MB/s" % (label, dt, size / dt / 1e6))

    print("image: %d layers, %.1f MB" % (len(layers), size / 1e6))
    run("cold pull")
    run("warm pull (all present)")
    cri.call("RemoveImage", image=spec)
    run("pull after RemoveImage")
    cri.close()
finally:
    if d:
        d.stop()
    if reg:
        reg.stop()
    rmtree(base)
PY
