#!/usr/bin/python3
"""runc against crun as cricket runtime handlers, side by side.

    bench/crun_bench.py [BUILD_DIR] [-n PODS] [-e EXECS]

Starts cricketd (from BUILD_DIR) with two handlers: runc (the default) and
crun (through contrib/crun/crun-hybrid, see oci/README.md), and a registry
on 127.0.0.1 holding busybox. Then, alternating the handlers so both see the
same load: PODS times RunPodSandbox + CreateContainer + StartContainer of a
busybox `sleep` per handler, and EXECS ExecSync `true` in one container of
each. Prints median and p95 per handler and the load average; asserts
nothing; removes its pods and reports leaks."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import build_dir, opt, report_leaks, row, use_build

BUILD = build_dir("/tmp/build-crun")
PODS, EXECS = opt("-n", 10), opt("-e", 30)
use_build(BUILD)

import test_sandbox as ts  # noqa: E402
from conftest import api_pb2  # noqa: E402
from registry import busybox_registry, registry_config  # noqa: E402

WRAPPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "contrib", "crun",
                       "crun-hybrid")


def add_crun(env):
    with open(env.daemon.config) as f:
        text = f.read()
    anchor = "      root: %s\n" % env.runc_root
    text = text.replace(anchor, anchor + "    crun:\n      path: %s\n      root: %s/crun\n" %
                        (os.path.abspath(WRAPPER), env.base), 1)
    with open(env.daemon.config, "w") as f:
        f.write(text)


def pod(env, handler, tag):
    cfg = env.config("b-%s-%s" % (handler, tag), log_directory=os.path.join(env.base, "logs"))
    ccfg = api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name="c"), image=api_pb2.ImageSpec(image="busybox"),
        command=["/bin/sleep", "100000"], log_path="c-%s-%s.log" % (handler, tag))
    t0 = time.perf_counter()
    p = env.run(cfg, handler=handler)
    cid = env.cri.call("CreateContainer", timeout=60, pod_sandbox_id=p, config=ccfg,
                       sandbox_config=cfg).container_id
    env.cri.call("StartContainer", timeout=60, container_id=cid)
    return cid, (time.perf_counter() - t0) * 1e3


def exec_true(env, cid):
    fn, req = env.cri.stub("ExecSync")
    t0 = time.perf_counter()
    r = fn(req(container_id=cid, cmd=["true"], timeout=10), timeout=40)
    assert r.exit_code == 0, r
    return (time.perf_counter() - t0) * 1e3


def main():
    if not shutil.which("crun"):
        print("crun not installed")
        return 1
    with busybox_registry("cricket-crunbench-reg-") as reg:
        base = tempfile.mkdtemp(prefix="crun-bench-", dir="/tmp")
        env = ts.Env(base, extra_config=registry_config(reg.host))
        add_crun(env)
        env.daemon.extra_args = ["--log-level", "info"]
        try:
            env.start()
            env.cri.call("PullImage", timeout=300, image=api_pb2.ImageSpec(image="busybox"))
            handlers = ("runc", "crun")
            for h in handlers:
                pod(env, h, "warm")
            starts = {h: [] for h in handlers}
            cids = {}
            for i in range(PODS):
                for h in handlers:
                    cid, t = pod(env, h, str(i))
                    starts[h].append(t)
                    cids[h] = cid
            execs = {h: [] for h in handlers}
            for _ in range(EXECS):
                for h in handlers:
                    execs[h].append(exec_true(env, cids[h]))
            ver = subprocess.run(["crun", "--version"], capture_output=True,
                                 text=True).stdout.splitlines()[0]
            print("cricketd %s, %d pods and %d execs per handler (%s), load average %s" %
                  (BUILD, PODS, EXECS, ver, " ".join(open("/proc/loadavg").read().split()[:3])))
            for h in handlers:
                row("%s: pod + container start" % h, starts[h])
            for h in handlers:
                row("%s: ExecSync true" % h, execs[h])
            for p in env.list():
                env.stop(p.id)
                env.remove(p.id)
            return report_leaks(env)
        finally:
            env.cleanup()
            subprocess.run("crun --root %s/crun list -q | xargs -r -n1 crun --root %s/crun "
                           "delete --force" % (base, base), shell=True)
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
