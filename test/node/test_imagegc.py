"""Issue 12, scenario 11: kubelet's image GC removes an unused image from
cricket through RemoveImage, keeps the one a running pod uses, and cricket's
ImageFsInfo agrees with `du` before and after.

kubelet runs its periodic image GC every 5 minutes (ImageGCPeriod, a
constant). Its eviction manager looks every 10 s, and when imagefs.available
falls under evictionHard it reclaims node-level resources first: the unused
containers, then DeleteUnusedImages (pkg/kubelet/eviction/helpers.go,
buildSignalToNodeReclaimFuncs). The test restarts kubelet with
`evictionHard: {imagefs.available: 99%}` (above what any real disk has free)
and `imageMinimumGCAge: 1s`, so the reclaim runs within seconds. The node
gets its own module: under disk pressure kubelet would refuse new pods.
Static pods are critical pods, which the eviction manager never evicts."""
import os
import random
import subprocess
import time

import pytest

import kubenode
from test_node import container, running_ready, sleeper

ok, why = kubenode.prereqs()
pytestmark = pytest.mark.skipif(not ok, reason=why)

SPARE = "docker.io/library/spare:1"


@pytest.fixture(scope="module")
def node():
    yield from kubenode.module_node()


def du(paths, inodes=False):
    """`du -s -x` (bytes of blocks, or inodes) of PATHS, summed."""
    total = 0
    for p in paths:
        args = ["du", "-s", "-x"] + (["--inodes"] if inodes else ["-B1"]) + [p]
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        total += int(out.split()[0])
    return total


def image_fs_agrees_with_du(node):
    """ImageFsInfo's image filesystem against du of cricket's blobs and layers."""
    dirs = [os.path.join(node.daemon.root, d) for d in ("blobs", "layers")]
    fs = node.cri.call("ImageFsInfo").image_filesystems[0]
    assert fs.fs_id.mountpoint == node.daemon.root, fs
    want = (du(dirs), du(dirs, inodes=True))
    assert (fs.used_bytes.value, fs.inodes_used.value) == want, (fs, want)
    return fs.used_bytes.value


def image_refs(node):
    return {t for i in node.cri.call("ListImages").images for t in i.repo_tags}


def test_image_gc_removes_unused_image(node):
    # a 2 MiB layer of random bytes: its removal shows in ImageFsInfo
    blob = random.getrandbits(8 * (2 << 20)).to_bytes(2 << 20, "little")
    layer = kubenode.registry.tar_bytes([("spare.bin", "file", blob, {})])
    kubenode.registry.push_image(node.reg, "library/spare", "1", [layer])

    name = "inuse-%04x" % random.getrandbits(16)
    node.add_pod(name, {"containers": [{"name": "c", "command": sleeper("echo up")}]})
    try:
        node.wait_pod(name, running_ready, "Running and Ready")
        kubenode.pull(node.cri, SPARE)
        refs = image_refs(node)
        assert SPARE in refs and "docker.io/library/busybox:latest" in refs, refs
        before = image_fs_agrees_with_du(node)

        node.kubelet_config.update({
            "evictionHard": {"imagefs.available": "99%"},
            "imageMinimumGCAge": "1s",
            "evictionPressureTransitionPeriod": "5s",
        })
        node.restart_kubelet()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and SPARE in image_refs(node):
            time.sleep(1)
        refs = image_refs(node)
        assert SPARE not in refs, "spare image still there:\n" + node.diagnostics()
        # the running pod's image is in use: kept, the pod untouched
        assert "docker.io/library/busybox:latest" in refs, refs
        p = node.pod(name)
        assert running_ready(p) and container(p, "c")["restartCount"] == 0, p["status"]
        logs = node.kubelet_logs(tail=10 ** 7)
        assert "Attempting to delete unused images" in logs, logs[-4000:]
        assert "rpc RemoveImage" in node.daemon.logs()
        after = image_fs_agrees_with_du(node)
        assert after <= before - (2 << 20), (before, after)
    finally:
        node.remove_pod(name)
        node.wait_stopped(name)
