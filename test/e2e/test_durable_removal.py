"""Issue 10, item 12: trees are removed through directory fds, so a container
that built a path longer than PATH_MAX in its rootfs is still removed; and a
tree that cannot be deleted is not forgotten: it waits in the trash (issue
15), and the next start tries again."""
import os
import subprocess

from crashenv import wait_for
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
    # the deleter removes it from the trash (through dir fds too)
    trash = os.path.join(pod.env.daemon.root, "trash")
    assert wait_for(lambda: os.listdir(trash) == [], timeout=120), os.listdir(trash)


def test_a_mount_inside_keeps_the_tree_in_the_trash_until_it_goes(pod):
    """Issue 15: the container's tree is renamed into the trash, so a mount
    inside no longer fails RemoveContainer (the record goes); the deleter
    cannot go through the mount, so the tree stays in the trash, logged,
    and the next start (after the unmount) deletes it."""
    cid = pod.run("c", command=["sh", "-c", "mkdir /held && echo x > /held/f"])
    pod.wait_exit(cid)
    held = os.path.join(pod.env.daemon.root, "containers", cid, "upper", "held")
    trash = os.path.join(pod.env.daemon.root, "trash")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", held], check=True)
    with open(os.path.join(held, "mine"), "w") as f:
        f.write("not the container's")
    moved = None
    try:
        pod.remove(cid)
        assert pod.list() == []
        assert not os.path.exists(os.path.join(pod.env.daemon.root, "containers", cid))
        stuck = [e for e in os.listdir(trash) if os.path.isdir(os.path.join(trash, e, "upper"))]
        assert len(stuck) == 1 and stuck[0].endswith(cid), os.listdir(trash)
        moved = os.path.join(trash, stuck[0], "upper", "held")
        assert wait_for(lambda: "trash: remove `%s`" % os.path.join(trash, stuck[0])
                        in pod.env.daemon.logs(), timeout=60), pod.env.daemon.logs()[-3000:]
        assert os.path.exists(os.path.join(moved, "mine"))  # nothing deleted through the mount
        pod.env.restart()
        pod.cri = pod.env.cri
        assert os.listdir(trash) == stuck  # still mounted: still there
    finally:
        subprocess.run(["umount", moved or held], check=True)
    pod.env.restart()
    pod.cri = pod.env.cri
    assert wait_for(lambda: os.listdir(trash) == [], timeout=120), os.listdir(trash)
