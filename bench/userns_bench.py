#!/usr/bin/python3
"""What a pod user namespace costs, through the CRI socket.

    bench/userns_bench.py [BUILD_DIR] [-n RUNS] [-l LAYERS]

Starts cricketd (from BUILD_DIR) on a temporary root with its own bridge and
a registry on 127.0.0.1 holding the busybox-static image and one of LAYERS
layers, then for a pod in the host's user namespace and a pod with
userns_options POD (0 -> 300000, 65536) prints, over RUNS each:
RunPodSandbox (and its namespace pinning: the netns, or the user
namespace with the netns made inside it), and CreateContainer of the
one-layer and the LAYERS-layer image (the id-mapped rootfs: one open_tree
+ mount_setattr per layer, no copy, no chown: the layers are shared, so a
userns container adds no disk). Needs root, runc, busybox-static, containernetworking-plugins and
Debian's docker-registry. Cleans up its pods, daemon, registry, bridge
and temp dirs, and reports leaks."""
import os
import shutil
import sys
import tempfile
import time

from benchlib import build_dir, opt, report_leaks, row, use_build

BUILD = build_dir("/tmp/build-userns")
RUNS, LAYERS = opt("-n", 10), opt("-l", 20)
use_build(BUILD)

import test_sandbox as ts  # noqa: E402
from conftest import api_pb2  # noqa: E402
from registry import busybox_registry, push_image, registry_config, tar_bytes  # noqa: E402


def userns_linux(pod):
    m = [api_pb2.IDMapping(container_id=0, host_id=300000, length=65536)]
    u = api_pb2.UserNamespace(mode=api_pb2.POD, uids=m, gids=m)
    ns = api_pb2.NamespaceOption(userns_options=u)
    if pod:
        return api_pb2.LinuxPodSandboxConfig(
            security_context=api_pb2.LinuxSandboxSecurityContext(namespace_options=ns))
    return api_pb2.LinuxContainerConfig(
        security_context=api_pb2.LinuxContainerSecurityContext(namespace_options=ns))


def measure(env, userns, image, tag):
    run, create, pin = [], [], []
    for i in range(RUNS):
        kw = {"linux": userns_linux(True)} if userns else {}
        cfg = env.config("b-%s-%d" % (tag, i), **kw)
        t0 = time.perf_counter()
        pid = env.run(cfg)
        run.append((time.perf_counter() - t0) * 1000)
        pin.append(env.info(pid)["timings"]["netnsNs"] / 1e6)
        ckw = {"linux": userns_linux(False)} if userns else {}
        ccfg = api_pb2.ContainerConfig(metadata=api_pb2.ContainerMetadata(name="c"),
                                       image=api_pb2.ImageSpec(image=image),
                                       command=["true"], **ckw)
        t0 = time.perf_counter()
        env.cri.call("CreateContainer", timeout=60, pod_sandbox_id=pid, config=ccfg,
                     sandbox_config=cfg)
        create.append((time.perf_counter() - t0) * 1000)
        env.stop(pid)
        env.remove(pid)
    return run, create, pin


def main():
    base = tempfile.mkdtemp(prefix="userns-bench-", dir="/tmp")
    os.chmod(base, 0o711)  # the mapped root walks to root (checked at start)
    rc = 0
    with busybox_registry("userns-bench-reg-") as reg:
        layers = [reg.busybox_layer] + [
            tar_bytes([("l%d" % i, "dir", None, {}), ("l%d/f" % i, "file", "x" * 4096, {})])
            for i in range(LAYERS - 1)]
        push_image(reg, "library/many", "1", layers)
        env = ts.Env(base, extra_config=registry_config(reg.host))
        env.daemon.extra_args = ["--log-level", "info"]
        try:
            env.start()
            for ref in ("busybox", "many:1"):
                env.cri.call("PullImage", timeout=120, image=api_pb2.ImageSpec(image=ref))
            measure(env, True, "busybox", "warm")
            print("cricketd %s, %d runs each, runc 1.1.5, kernel %s" %
                  (BUILD, RUNS, os.uname().release))
            for userns in (False, True):
                for image, n in (("busybox", 1), ("many:1", LAYERS)):
                    run, create, pin = measure(env, userns, image, "%s-%d" % (userns, n))
                    what = "userns POD" if userns else "host userns"
                    row("%s RunPodSandbox" % what, run)
                    row("%s  of which namespace pins" % what, pin)
                    row("%s CreateContainer (%d layer%s)" % (what, n, "s" if n > 1 else ""),
                        create)
            rc = report_leaks(env)
        finally:
            env.cleanup()
            shutil.rmtree(base, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
