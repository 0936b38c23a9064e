"""Issue 10, item 12: trees are removed through directory fds, so a container
that built a path longer than PATH_MAX in its rootfs is still removed; and a
removal that fails keeps the container's record, so a later RemoveContainer
(or one after a restart) finishes the job instead of leaking the disk."""
import os
import subprocess

import grpc
import pytest

from test_container import Pod, pod, reg  # noqa: F401 (fixtures)
from test_sandbox import envf, pytestmark  # noqa: F401 (fixture, skip mark)

def make_deep(top, levels=60):
    """levels of a 100-char name under top (~6 KB of path), built through
    dir fds as a container's own processes could (busybox's cd cannot)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(levels):
            os.mkdir("x" * 100, dir_fd=fd)
            nfd = os.open("x" * 100, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
            with open(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
                f.write("data")
    finally:
        os.close(fd)
    return os.path.join(top, *(["x" * 100] * levels))


def test_remove_container_with_a_path_longer_than_path_max(pod):
    cid = pod.run("deep", command=["sleep", "600"])
    rootfs = os.path.join(pod.env.daemon.root, "containers", cid, "rootfs")
    deep = make_deep(os.path.join(rootfs, "tmp"))
    assert len(deep) > 4096
    # the container sees it (through its rootfs, not a host path)
    r = pod.cri.call("ExecSync", timeout=30, container_id=cid,
                     cmd=["sh", "-c", "find /tmp -name f | wc -l"])
    assert int(r.stdout) >= 30  # busybox find stops at PATH_MAX
    pod.stop(cid, timeout=0)
    pod.remove(cid)
    assert not os.path.exists(os.path.join(pod.env.daemon.root, "containers", cid))
    assert pod.list() == []


def test_failed_removal_keeps_the_record_and_is_retried(pod):
    cid = pod.run("c", command=["sh", "-c", "mkdir /held && echo x > /held/f"])
    pod.wait_exit(cid)
    held = os.path.join(pod.env.daemon.root, "containers", cid, "upper", "held")
    # something mounted inside the container's tree: its removal must fail
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", held], check=True)
    try:
        with pytest.raises(grpc.RpcError) as e:
            pod.remove(cid)
        assert "remove files of container" in e.value.details()
        assert [c.id for c in pod.list()] == [cid]  # still listed, statusable
        assert pod.status(cid).status.id == cid
        # and still there after a restart
        pod.env.restart()
        pod.cri = pod.env.cri
        assert [c.id for c in pod.list()] == [cid]
    finally:
        subprocess.run(["umount", held], check=True)
    pod.remove(cid)  # the retry finishes the job
    assert pod.list() == []
    assert not os.path.exists(os.path.join(pod.env.daemon.root, "containers", cid))
